// The whole recurrence of one layer and direction as one autograd node (functional::
// rnn_sequence).
//
// Why: written per step, a T-step layer is T GEMM nodes, T step nodes and T slices of the input
// projection, and the backward of every slice allocates and adds a zero tensor of the whole
// sequence (O(T^2) memory traffic). Here the forward runs all T steps into one preallocated
// buffer and the backward runs the whole reverse-time loop at once.
//
// Forward, for k = 0 .. T-1 with t = k (forward) or T-1-k (reverse):
//   a_t = gx[t] + h_prev W_hh^T + b_hh              one [B, H] x [H, G*H] GEMM
//   (h, c) = cell(a_t, h_prev, c_prev)              fused pointwise kernel (see rnn_cells.cpp)
//   masked rows (t >= length_b): h, c stay, out[t, b] = 0
// The node's single output is Y [T + 1 (+1 for LSTM), B, H]: rows 0..T-1 the outputs, row T the
// final h, row T+1 the final c; the caller narrows it.
//
// Backward, for k = T-1 .. 0: dh += dout[t] (valid rows), the cell backward gives dgates_t and
// dc_prev, then dh_prev = dgh_t W_hh (one GEMM; + dh z for GRU; passthrough for masked rows).
// At the end dW_hh = sum_t dgh_t^T h_prev_t is a single [G*H, T*B] x [T*B, H] GEMM and
// db_hh = sum over T*B rows of dgh. For LSTM and RNN dgh = dgx; for GRU dgh_n = dgx_n r.
// The backward is computed by direct loops: no double backward through this node.
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <memory>
#include <type_traits>
#include <vector>

#include "backend/backend.h"
#include "ops/op_util.h"
#include "soma/nn/rnn.h"

namespace soma::nn::functional {
namespace {

// Activations over arrays. float: a branch-free exp (Cephes' expf: k = round(x log2 e),
// r = x - k ln 2 in two parts, exp(r) by a polynomial, 2^k from the exponent bits; relative error
// about 2e-7) four lanes at a time with SSE2 intrinsics (GCC does not vectorize the scalar form
// without -fno-trapping-math); σ(x) = 1 / (1 + e^-x), tanh(x) = 2 σ(2x) - 1 (absolute error
// ~1e-7). double: the libm functions (the gradchecks and PyTorch fixtures run in double).
inline float exp_scalar(float x) {
    x = x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x;
    const float t = x * 1.44269504088896341f + 0.5f;
    float k = static_cast<float>(static_cast<int32_t>(t));
    if (k > t) k -= 1.0f;  // floor
    const float r = x - k * 0.693359375f + k * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    return p * std::bit_cast<float>((static_cast<int32_t>(k) + 127) << 23);
}

#if defined(__SSE2__)
inline __m128 exp_ps(__m128 x) {
    x = _mm_min_ps(_mm_max_ps(x, _mm_set1_ps(-87.0f)), _mm_set1_ps(88.0f));
    const __m128 t =
        _mm_add_ps(_mm_mul_ps(x, _mm_set1_ps(1.44269504088896341f)), _mm_set1_ps(0.5f));
    __m128 k = _mm_cvtepi32_ps(_mm_cvttps_epi32(t));
    k = _mm_sub_ps(k, _mm_and_ps(_mm_cmpgt_ps(k, t), _mm_set1_ps(1.0f)));  // floor
    const __m128 r = _mm_add_ps(_mm_sub_ps(x, _mm_mul_ps(k, _mm_set1_ps(0.693359375f))),
                                _mm_mul_ps(k, _mm_set1_ps(2.12194440e-4f)));
    __m128 p = _mm_set1_ps(1.9875691500e-4f);
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(1.3981999507e-3f));
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(8.3334519073e-3f));
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(4.1665795894e-2f));
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(1.6666665459e-1f));
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(5.0000001201e-1f));
    p = _mm_add_ps(_mm_add_ps(_mm_mul_ps(_mm_mul_ps(p, r), r), r), _mm_set1_ps(1.0f));
    const __m128i e = _mm_slli_epi32(_mm_add_epi32(_mm_cvttps_epi32(k), _mm_set1_epi32(127)), 23);
    return _mm_mul_ps(p, _mm_castsi128_ps(e));
}
#endif

// out[j] = σ(a * in[j]) * b + c: σ itself (a = 1, b = 1, c = 0) or tanh (a = 2, b = 2, c = -1).
inline void sigmoid_affine(const float* in, float* out, int64_t n, float a, float b, float c) {
    int64_t j = 0;
#if defined(__SSE2__)
    const __m128 na = _mm_set1_ps(-a), vb = _mm_set1_ps(b), vc = _mm_set1_ps(c),
                 one = _mm_set1_ps(1.0f);
    for (; j + 4 <= n; j += 4) {
        __m128 e = exp_ps(_mm_mul_ps(_mm_loadu_ps(in + j), na));
        _mm_storeu_ps(out + j, _mm_add_ps(_mm_div_ps(vb, _mm_add_ps(one, e)), vc));
    }
#endif
    for (; j < n; ++j) out[j] = b / (1.0f + exp_scalar(-a * in[j])) + c;
}
inline void sigmoid_affine(const double* in, double* out, int64_t n, double a, double b, double c) {
    if (a == 2)
        for (int64_t j = 0; j < n; ++j) out[j] = std::tanh(in[j]);
    else
        for (int64_t j = 0; j < n; ++j) out[j] = 1.0 / (1.0 + std::exp(-in[j]));
    (void)b;
    (void)c;
}
template <class T>
void sigmoid_n(const T* in, T* out, int64_t n) {
    sigmoid_affine(in, out, n, T(1), T(1), T(0));
}
template <class T>
void tanh_n(const T* in, T* out, int64_t n) {
    sigmoid_affine(in, out, n, T(2), T(2), T(-1));
}

template <class T>
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b,
          int64_t ldb, T* c, int64_t ldc, double beta) {
    Backend::Gemm g;
    g.trans_a = ta;
    g.trans_b = tb;
    g.m = m;
    g.n = n;
    g.k = k;
    g.a = a;
    g.lda = lda;
    g.b = b;
    g.ldb = ldb;
    g.c = c;
    g.ldc = ldc;
    g.beta = beta;
    g.dtype = std::is_same_v<T, double> ? DType::float64 : DType::float32;
    cpu_backend().gemm(g);
}

// Everything the backward needs, in time order t (not processing order).
struct Saved {
    RNNMode mode;
    bool reverse;
    int64_t T, B, H, G;
    std::vector<int64_t> len;  // empty: every sequence is T long
    Tensor w_hh;               // detached [G*H, H]
    Tensor hprev;              // [T, B, H]: the state each step started from
    Tensor cprev;              // LSTM [T, B, H]
    Tensor acts;               // LSTM [T, B, 5H] i f g o tanh(c'); GRU [T, B, 4H] r z n gh_n;
                               // RNN [T, B, H] h'
    bool valid(int64_t t, int64_t b) const {
        return len.empty() || t < len[static_cast<size_t>(b)];
    }
};

template <class T>
void forward_loop(const Saved& s, const T* gx, const T* whh, const T* bhh, const T* bih,
                  const T* h0, const T* c0, T* y) {
    const int64_t Tn = s.T, B = s.B, H = s.H, GH = s.G * H;
    std::vector<T> h(h0, h0 + B * H), c;
    if (s.mode == RNNMode::lstm) c.assign(c0, c0 + B * H);
    std::vector<T> a(static_cast<size_t>(B * GH));
    std::vector<T> bias(static_cast<size_t>(GH), T(0));  // b_ih + b_hh
    for (int64_t j = 0; j < GH; ++j)
        bias[static_cast<size_t>(j)] = (bhh ? bhh[j] : T(0)) + (bih ? bih[j] : T(0));
    T* hp_all = s.hprev.data_ptr<T>();
    T* cp_all = s.mode == RNNMode::lstm ? s.cprev.data_ptr<T>() : nullptr;
    T* acts = s.acts.data_ptr<T>();
    const int64_t A = s.acts.size(2);
    for (int64_t k = 0; k < Tn; ++k) {
        const int64_t t = s.reverse ? Tn - 1 - k : k;
        T* hp = hp_all + t * B * H;
        std::memcpy(hp, h.data(), sizeof(T) * static_cast<size_t>(B * H));
        if (cp_all) std::memcpy(cp_all + t * B * H, c.data(), sizeof(T) * c.size());
        // a = gx[t] + b_ih + b_hh + h_prev W_hh^T (GRU: a = b_hh + h_prev W_hh^T, as its n gate
        // needs the recurrent part alone)
        const T* gxt = gx + t * B * GH;
        for (int64_t b = 0; b < B; ++b) {
            T* ar = a.data() + b * GH;
            const T* xr = gxt + b * GH;
            if (s.mode == RNNMode::gru)
                for (int64_t j = 0; j < GH; ++j) ar[j] = bhh ? bhh[j] : T(0);
            else
                for (int64_t j = 0; j < GH; ++j) ar[j] = xr[j] + bias[static_cast<size_t>(j)];
        }
        gemm<T>(false, true, B, GH, H, hp, H, whh, H, a.data(), GH, 1.0);
        T* yt = y + t * B * H;
        T* at = acts + t * B * A;
        for (int64_t b = 0; b < B; ++b) {
            T* hr = h.data() + b * H;
            T* yr = yt + b * H;
            T* ar = at + b * A;
            const T* gr = a.data() + b * GH;
            if (!s.valid(t, b)) {
                std::memset(yr, 0, sizeof(T) * static_cast<size_t>(H));
                std::memset(ar, 0, sizeof(T) * static_cast<size_t>(A));
                continue;
            }
            switch (s.mode) {
                case RNNMode::lstm: {
                    // ar = [i, f, g, o, tanh(c')]
                    T* cr = c.data() + b * H;
                    sigmoid_n(gr, ar, 2 * H);
                    tanh_n(gr + 2 * H, ar + 2 * H, H);
                    sigmoid_n(gr + 3 * H, ar + 3 * H, H);
                    T* tc = ar + 4 * H;
                    for (int64_t j = 0; j < H; ++j) {
                        cr[j] = ar[H + j] * cr[j] + ar[j] * ar[2 * H + j];
                        tc[j] = cr[j];
                    }
                    tanh_n(tc, tc, H);
                    for (int64_t j = 0; j < H; ++j) hr[j] = yr[j] = ar[3 * H + j] * tc[j];
                    break;
                }
                case RNNMode::gru: {
                    // ar = [r, z, n, gh_n]
                    const T* xr = gxt + b * GH;
                    for (int64_t j = 0; j < 2 * H; ++j)
                        ar[j] = xr[j] + gr[j] + (bih ? bih[j] : T(0));
                    sigmoid_n(ar, ar, 2 * H);
                    for (int64_t j = 0; j < H; ++j) {
                        ar[3 * H + j] = gr[2 * H + j];
                        ar[2 * H + j] =
                            xr[2 * H + j] + (bih ? bih[2 * H + j] : T(0)) + ar[j] * gr[2 * H + j];
                    }
                    tanh_n(ar + 2 * H, ar + 2 * H, H);
                    for (int64_t j = 0; j < H; ++j) {
                        const T z = ar[H + j], n = ar[2 * H + j];
                        hr[j] = yr[j] = (T(1) - z) * n + z * hr[j];
                    }
                    break;
                }
                case RNNMode::rnn_tanh:
                    tanh_n(gr, ar, H);
                    for (int64_t j = 0; j < H; ++j) hr[j] = yr[j] = ar[j];
                    break;
                case RNNMode::rnn_relu:
                    for (int64_t j = 0; j < H; ++j)
                        hr[j] = yr[j] = ar[j] = gr[j] > T(0) ? gr[j] : T(0);
                    break;
            }
        }
    }
    std::memcpy(y + Tn * B * H, h.data(), sizeof(T) * h.size());
    if (s.mode == RNNMode::lstm) std::memcpy(y + (Tn + 1) * B * H, c.data(), sizeof(T) * c.size());
}

// Fills dgx [T, B, G*H], dgh (GRU only, else aliases dgx), dh0, dc0, dW [G*H, H], db [G*H].
template <class T>
void backward_loop(const Saved& s, const T* gy, T* dgx, T* dgh, T* dh0, T* dc0, T* dw, T* db,
                   T* dbi) {
    const int64_t Tn = s.T, B = s.B, H = s.H, GH = s.G * H;
    const bool lstm = s.mode == RNNMode::lstm, gru = s.mode == RNNMode::gru;
    const int64_t A = s.acts.size(2);
    std::vector<T> dh(gy + Tn * B * H, gy + (Tn + 1) * B * H), dc, dhn(static_cast<size_t>(B * H));
    if (lstm) dc.assign(gy + (Tn + 1) * B * H, gy + (Tn + 2) * B * H);
    const T* hp_all = s.hprev.data_ptr<T>();
    const T* cp_all = lstm ? s.cprev.data_ptr<T>() : nullptr;
    const T* acts = s.acts.data_ptr<T>();
    const T* whh = s.w_hh.data_ptr<T>();
    for (int64_t k = Tn - 1; k >= 0; --k) {
        const int64_t t = s.reverse ? Tn - 1 - k : k;
        const T* gyt = gy + t * B * H;
        const T* at = acts + t * B * A;
        T* dxt = dgx + t * B * GH;
        T* dht = dgh + t * B * GH;
        for (int64_t b = 0; b < B; ++b) {
            T* d = dh.data() + b * H;
            T* dxr = dxt + b * GH;
            T* dhr = dht + b * GH;
            if (!s.valid(t, b)) {
                std::memset(dxr, 0, sizeof(T) * static_cast<size_t>(GH));
                if (gru) std::memset(dhr, 0, sizeof(T) * static_cast<size_t>(GH));
                continue;
            }
            const T* gr = gyt + b * H;
            for (int64_t j = 0; j < H; ++j) d[j] += gr[j];
            const T* ar = at + b * A;
            switch (s.mode) {
                case RNNMode::lstm: {
                    T* dcr = dc.data() + b * H;
                    const T* cpr = cp_all + t * B * H + b * H;
                    for (int64_t j = 0; j < H; ++j) {
                        T i = ar[j], f = ar[H + j], g = ar[2 * H + j], o = ar[3 * H + j],
                          tc = ar[4 * H + j];
                        T dct = dcr[j] + d[j] * o * (T(1) - tc * tc);
                        dxr[j] = dct * g * i * (T(1) - i);
                        dxr[H + j] = dct * cpr[j] * f * (T(1) - f);
                        dxr[2 * H + j] = dct * i * (T(1) - g * g);
                        dxr[3 * H + j] = d[j] * tc * o * (T(1) - o);
                        dcr[j] = dct * f;
                    }
                    break;
                }
                case RNNMode::gru: {
                    const T* hpr = hp_all + t * B * H + b * H;
                    for (int64_t j = 0; j < H; ++j) {
                        T r = ar[j], z = ar[H + j], n = ar[2 * H + j], hn = ar[3 * H + j];
                        T dn = d[j] * (T(1) - z) * (T(1) - n * n);
                        T dz = d[j] * (hpr[j] - n) * z * (T(1) - z);
                        T dr = dn * hn * r * (T(1) - r);
                        dxr[j] = dhr[j] = dr;
                        dxr[H + j] = dhr[H + j] = dz;
                        dxr[2 * H + j] = dn;
                        dhr[2 * H + j] = dn * r;
                    }
                    break;
                }
                case RNNMode::rnn_tanh:
                    for (int64_t j = 0; j < H; ++j) dxr[j] = d[j] * (T(1) - ar[j] * ar[j]);
                    break;
                case RNNMode::rnn_relu:
                    for (int64_t j = 0; j < H; ++j) dxr[j] = ar[j] > T(0) ? d[j] : T(0);
                    break;
            }
        }
        // dh_prev = dgh_t W_hh, plus what reaches h_prev directly.
        gemm<T>(false, false, B, H, GH, dht, GH, whh, H, dhn.data(), H, 0.0);
        for (int64_t b = 0; b < B; ++b) {
            T* dn = dhn.data() + b * H;
            const T* d = dh.data() + b * H;
            if (!s.valid(t, b)) {
                for (int64_t j = 0; j < H; ++j) dn[j] += d[j];  // frozen state: passthrough
            } else if (gru) {
                const T* z = at + b * A + H;
                for (int64_t j = 0; j < H; ++j) dn[j] += d[j] * z[j];
            }
        }
        std::swap(dh, dhn);
    }
    std::memcpy(dh0, dh.data(), sizeof(T) * dh.size());
    if (lstm) std::memcpy(dc0, dc.data(), sizeof(T) * dc.size());
    // dW_hh = dgh^T [G*H, T*B] x h_prev [T*B, H]; db_hh = column sums of dgh.
    gemm<T>(true, false, GH, H, Tn * B, dgh, GH, hp_all, H, dw, H, 0.0);
    auto colsum = [&](const T* m, T* out) {
        std::vector<double> acc(static_cast<size_t>(GH), 0.0);
        for (int64_t r = 0; r < Tn * B; ++r)
            for (int64_t j = 0; j < GH; ++j) acc[static_cast<size_t>(j)] += m[r * GH + j];
        for (int64_t j = 0; j < GH; ++j) out[j] = static_cast<T>(acc[static_cast<size_t>(j)]);
    };
    if (db) colsum(dgh, db);
    if (dbi) {
        if (db && dgh == dgx)
            std::memcpy(dbi, db, sizeof(T) * static_cast<size_t>(GH));
        else
            colsum(dgx, dbi);
    }
}

int64_t gates(RNNMode m) { return m == RNNMode::lstm ? 4 : m == RNNMode::gru ? 3 : 1; }

}  // namespace

RNNOutput rnn_sequence(RNNMode mode, const Tensor& gx_in, const Tensor& w_hh_in,
                       const Tensor& b_hh_in, const RNNState& state,
                       const std::vector<int64_t>& lengths, bool reverse, const Tensor& b_ih_in) {
    const char* op = "rnn_sequence";
    const bool lstm = mode == RNNMode::lstm;
    check_defined(gx_in, op);
    check_defined(w_hh_in, op);
    check_defined(state.h, op);
    if (lstm) check_defined(state.c, op);
    SOMA_CHECK_SHAPE(gx_in.dim() == 3, op, ": gx must be [T, B, G*H]: got ", gx_in.shape(), ".");
    const int64_t Tn = gx_in.size(0), B = gx_in.size(1), G = gates(mode),
                  H = w_hh_in.dim() == 2 ? w_hh_in.size(1) : 0;
    auto bias_ok = [&](const Tensor& b) { return !b.defined() || b.shape() == Shape({G * H}); };
    SOMA_CHECK_SHAPE(Tn > 0 && H > 0 && gx_in.size(2) == G * H &&
                         w_hh_in.shape() == Shape({G * H, H}) && state.h.shape() == Shape({B, H}) &&
                         (!lstm || state.c.shape() == Shape({B, H})) && bias_ok(b_hh_in) &&
                         bias_ok(b_ih_in),
                     op,
                     ": expected gx [T, B, G*H], w_hh [G*H, H], biases [G*H], h (c) [B, H]: got "
                     "gx ",
                     gx_in.shape(), ", w_hh ", w_hh_in.shape(), ", h ", state.h.shape(), ".");
    const DType dt = gx_in.dtype();
    auto dt_ok = [&](const Tensor& t) { return !t.defined() || t.dtype() == dt; };
    SOMA_CHECK_DTYPE((dt == DType::float32 || dt == DType::float64) && dt_ok(w_hh_in) &&
                         dt_ok(state.h) && (!lstm || dt_ok(state.c)) && dt_ok(b_hh_in) &&
                         dt_ok(b_ih_in),
                     op, ": expected float32 or float64 operands of one dtype: got gx ", dt,
                     ", w_hh ", w_hh_in.dtype(), ", h ", state.h.dtype(), ".");
    SOMA_CHECK_VALUE(lengths.empty() || static_cast<int64_t>(lengths.size()) == B, op,
                     ": lengths must have B = ", B, " entries: got ", lengths.size(), ".");
    for (int64_t v : lengths)
        SOMA_CHECK_VALUE(v >= 1 && v <= Tn, op, ": every length must be in [1, T = ", Tn, "]: got ",
                         v, ".");
    SOMA_CHECK_T(gx_in.device().type == DeviceType::cpu, ::soma::DeviceError, op,
                 ": CPU only: got ", gx_in.device(), ".");

    auto saved = std::make_shared<Saved>();
    Saved& s = *saved;
    s.mode = mode;
    s.reverse = reverse;
    s.T = Tn;
    s.B = B;
    s.H = H;
    s.G = G;
    s.len = lengths;
    s.w_hh = w_hh_in.detach().contiguous();
    auto prep = [](const Tensor& t) { return t.defined() ? t.detach().contiguous() : Tensor(); };
    Tensor gx = prep(gx_in), h0 = prep(state.h), c0 = lstm ? prep(state.c) : Tensor();
    Tensor bhh = prep(b_hh_in), bih = prep(b_ih_in);
    const int64_t A = lstm ? 5 * H : mode == RNNMode::gru ? 4 * H : H;
    const Device dev = gx.device();
    s.hprev = make_tensor({Tn, B, H}, dt, dev);
    if (lstm) s.cprev = make_tensor({Tn, B, H}, dt, dev);
    s.acts = make_tensor({Tn, B, A}, dt, dev);
    Tensor y = make_tensor({Tn + (lstm ? 2 : 1), B, H}, dt, dev);
    auto run = [&]<class T>(T*) {
        auto ptr = [](const Tensor& t) { return t.defined() ? t.data_ptr<T>() : nullptr; };
        forward_loop<T>(s, ptr(gx), ptr(s.w_hh), ptr(bhh), ptr(bih), ptr(h0), ptr(c0),
                        y.data_ptr<T>());
    };
    if (dt == DType::float64)
        run(static_cast<double*>(nullptr));
    else
        run(static_cast<float*>(nullptr));

    const bool has_bhh = b_hh_in.defined(), has_bih = b_ih_in.defined();
    // d[gx] = dgates, d[h0] = dh after the reverse loop, d[c0] likewise, d[W_hh] = sum_t
    // dgh_t^T h_prev_t, d[b_hh] = sum_t dgh_t, d[b_ih] = sum_t dgx_t (see the file comment).
    // No double backward: the closure computes with loops, not differentiable ops.
    y = record(
        "rnn_sequence", y, {gx_in, state.h, lstm ? state.c : Tensor(), w_hh_in, b_hh_in, b_ih_in},
        [saved, has_bhh, has_bih](const Tensor& g_in) -> std::vector<Tensor> {
            const Saved& s = *saved;
            const int64_t GH = s.G * s.H;
            const DType dt = s.w_hh.dtype();
            const Device dev = s.w_hh.device();
            const bool lstm = s.mode == RNNMode::lstm;
            Tensor g = g_in.contiguous();
            Tensor dgx = make_tensor({s.T, s.B, GH}, dt, dev);
            Tensor dgh = s.mode == RNNMode::gru ? make_tensor({s.T, s.B, GH}, dt, dev) : dgx;
            Tensor dh0 = make_tensor({s.B, s.H}, dt, dev);
            Tensor dc0 = lstm ? make_tensor({s.B, s.H}, dt, dev) : Tensor();
            Tensor dw = make_tensor({GH, s.H}, dt, dev);
            Tensor db = has_bhh ? make_tensor({GH}, dt, dev) : Tensor();
            Tensor dbi = has_bih ? make_tensor({GH}, dt, dev) : Tensor();
            auto run = [&]<class T>(T*) {
                auto ptr = [](const Tensor& t) { return t.defined() ? t.data_ptr<T>() : nullptr; };
                backward_loop<T>(s, g.data_ptr<T>(), ptr(dgx), ptr(dgh), ptr(dh0), ptr(dc0),
                                 ptr(dw), ptr(db), ptr(dbi));
            };
            if (dt == DType::float64)
                run(static_cast<double*>(nullptr));
            else
                run(static_cast<float*>(nullptr));
            return {dgx, dh0, dc0, dw, db, dbi};
        },
        {w_hh_in});
    RNNOutput r;
    r.output = y.narrow(0, 0, Tn);
    r.h = y[Tn];
    if (lstm) r.c = y[Tn + 1];
    return r;
}

}  // namespace soma::nn::functional
