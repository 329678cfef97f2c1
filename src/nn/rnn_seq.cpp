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
//
// Fast path (float32 on CPUs with AVX2 + FMA; switch in nn/rnn_fast.h): W_hh is packed once per
// forward and once per backward into 16-column panels and the per-step products run on an
// AVX2 micro-kernel (gemm_panels, ~85-90 GFLOP/s on one Zen 3 core at these shapes, against
// ~55-70 for cblas_sgemm, which repacks W_hh on every call), split over Soma's threads by
// panels. For LSTM with H % 16 == 0 a forward step is one parallel region: each thread adds
// the bias, multiplies and runs the cell for its block of hidden units. The activations and the
// LSTM cell backward use eight AVX2 lanes. Measured alternative: oneDNN 2.6's lstm_forward +
// lstm_backward (Debian build, "ref" RNN implementation on AVX2, plain ldigo weights) took
// about as long as cblas_sgemm for the same products alone, so it is not used.
#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>
#if defined(__x86_64__)
#include <immintrin.h>
#define SOMA_RNN_X86 1
#endif
#include <memory>
#include <type_traits>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/parallel_for.h"
#include "backend/cpu/simd_exp.h"
#include "nn/rnn_fast.h"
#include "ops/op_util.h"
#include "soma/nn/rnn.h"

namespace soma::nn::detail {
namespace {
std::atomic<bool>& fast_flag() {
    static std::atomic<bool> on{[] {
        const char* e = std::getenv("SOMA_RNN_FAST");
        return !(e && std::string_view(e) == "0");
    }()};
    return on;
}
bool cpu_has_avx2_fma() {
#if defined(SOMA_RNN_X86)
    static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return ok;
#else
    return false;
#endif
}
}  // namespace

void set_use_fast_rnn(bool on) { fast_flag() = on; }
bool use_fast_rnn() { return fast_flag() && cpu_has_avx2_fma(); }

}  // namespace soma::nn::detail

namespace soma::nn::functional {
namespace {

// ---- Packed GEMM for the recurrent products (float32, AVX2 + FMA) ---------------------------
//
// C[M, N] (+)= A[M, K] B[K, N] with B packed once into panels of 16 columns, [N/16][K][16]
// (the last panel zero-padded): the micro-kernel keeps a 6 x 16 block of C in 12 registers
// and streams one panel row (two vectors) and six broadcasts of A per k. K is blocked by 256
// so a panel slice stays in L1 while the row blocks of A pass over it. Panels are split over
// Soma's threads (disjoint columns of C, so the result does not depend on the thread count).
constexpr int64_t kNr = 16, kMr = 6, kKc = 256;

struct PackedB {
    std::vector<float> p;
    int64_t K = 0, N = 0, np = 0;
};

// B(k, n) = trans ? w[n * K + k] : w[k * N + n].
void pack_b(PackedB& P, const float* w, int64_t K, int64_t N, bool trans) {
    P.K = K;
    P.N = N;
    P.np = (N + kNr - 1) / kNr;
    P.p.assign(static_cast<size_t>(P.np * K * kNr), 0.0f);
    for (int64_t q = 0; q < P.np; ++q) {
        float* dst = P.p.data() + q * K * kNr;
        const int64_t n0 = q * kNr, nn = std::min(kNr, N - n0);
        if (trans) {
            for (int64_t j = 0; j < nn; ++j)
                for (int64_t k = 0; k < K; ++k) dst[k * kNr + j] = w[(n0 + j) * K + k];
        } else {
            for (int64_t k = 0; k < K; ++k)
                for (int64_t j = 0; j < nn; ++j) dst[k * kNr + j] = w[k * N + n0 + j];
        }
    }
}

#if defined(SOMA_RNN_X86)
template <int MR>
__attribute__((target("avx2,fma"))) void micro_kernel(int64_t K, const float* a, int64_t lda,
                                                      const float* b, float* c, int64_t ldc,
                                                      bool accumulate) {
    __m256 c0[MR], c1[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
        c0[i] = accumulate ? _mm256_loadu_ps(c + i * ldc) : _mm256_setzero_ps();
        c1[i] = accumulate ? _mm256_loadu_ps(c + i * ldc + 8) : _mm256_setzero_ps();
    }
    for (int64_t k = 0; k < K; ++k) {
        const __m256 b0 = _mm256_loadu_ps(b + k * kNr), b1 = _mm256_loadu_ps(b + k * kNr + 8);
#pragma GCC unroll 8
        for (int i = 0; i < MR; ++i) {
            const __m256 av = _mm256_broadcast_ss(a + i * lda + k);
            c0[i] = _mm256_fmadd_ps(av, b0, c0[i]);
            c1[i] = _mm256_fmadd_ps(av, b1, c1[i]);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
        _mm256_storeu_ps(c + i * ldc, c0[i]);
        _mm256_storeu_ps(c + i * ldc + 8, c1[i]);
    }
}

__attribute__((target("avx2,fma"))) void micro_any(int mr, int64_t K, const float* a, int64_t lda,
                                                   const float* b, float* c, int64_t ldc,
                                                   bool accumulate) {
    switch (mr) {
        case 6: micro_kernel<6>(K, a, lda, b, c, ldc, accumulate); break;
        case 5: micro_kernel<5>(K, a, lda, b, c, ldc, accumulate); break;
        case 4: micro_kernel<4>(K, a, lda, b, c, ldc, accumulate); break;
        case 3: micro_kernel<3>(K, a, lda, b, c, ldc, accumulate); break;
        case 2: micro_kernel<2>(K, a, lda, b, c, ldc, accumulate); break;
        default: micro_kernel<1>(K, a, lda, b, c, ldc, accumulate); break;
    }
}

// Panels [q0, q1) of C[M, N] (+)= A P.
__attribute__((target("avx2,fma"))) void gemm_panels(int64_t M, int64_t q0, int64_t q1,
                                                     const float* a, int64_t lda, const PackedB& P,
                                                     float* c, int64_t ldc, bool accumulate) {
    const int64_t K = P.K;
    for (int64_t q = q0; q < q1; ++q) {
        const int64_t n0 = q * kNr, nn = std::min(kNr, P.N - n0);
        const float* panel = P.p.data() + q * K * kNr;
        for (int64_t k0 = 0; k0 < K; k0 += kKc) {
            const int64_t kc = std::min(kKc, K - k0);
            const bool acc = accumulate || k0 > 0;
            // Row blocks of near-equal size (32 rows: 6 6 5 5 5 5), so no block is a short,
            // latency-bound tail.
            const int64_t nb = (M + kMr - 1) / kMr;
            for (int64_t blk = 0, i = 0; blk < nb; ++blk) {
                const int mr = static_cast<int>(M / nb + (blk < M % nb ? 1 : 0));
                const int64_t i0 = i;
                i += mr;
                const float* ai = a + i0 * lda + k0;
                float* ci = c + i0 * ldc + n0;
                if (nn == kNr) {
                    micro_any(mr, kc, ai, lda, panel + k0 * kNr, ci, ldc, acc);
                } else {
                    float tmp[kMr * kNr] = {};
                    if (acc)
                        for (int r = 0; r < mr; ++r)
                            std::memcpy(tmp + r * kNr, ci + r * ldc, sizeof(float) * nn);
                    micro_any(mr, kc, ai, lda, panel + k0 * kNr, tmp, kNr, true);
                    for (int r = 0; r < mr; ++r)
                        std::memcpy(ci + r * ldc, tmp + r * kNr, sizeof(float) * nn);
                }
            }
        }
    }
}
#endif

// C[M, N] (+)= A[M, K] P over Soma's threads.
void gemm_packed(int64_t M, const float* a, int64_t lda, const PackedB& P, float* c, int64_t ldc,
                 bool accumulate) {
#if defined(SOMA_RNN_X86)
    cpu::parallel_for(P.np, 4, [&](int64_t q0, int64_t q1) {
        gemm_panels(M, q0, q1, a, lda, P, c, ldc, accumulate);
    });
#else
    (void)M, (void)a, (void)lda, (void)P, (void)c, (void)ldc, (void)accumulate;
#endif
}

// Activations over arrays. float: a branch-free exp (Cephes' expf: k = round(x log2 e),
// r = x - k ln 2 in two parts, exp(r) by a polynomial, 2^k from the exponent bits; relative error
// about 2e-7) eight lanes at a time with AVX2 intrinsics where the CPU has them (GCC does not
// vectorize the scalar form without -fno-trapping-math), the scalar form otherwise and for tails;
// σ(x) = 1 / (1 + e^-x), tanh(x) = 2 σ(2x) - 1 (absolute error ~1e-7). double: the libm functions
// (the gradchecks and PyTorch fixtures run in double). exp_scalar / exp256: backend/cpu/simd_exp.h.
using simd::exp_scalar;
#if defined(__x86_64__)
using simd::exp256;
// The first n - n % 8 elements of sigmoid_affine below; returns how many it did.
__attribute__((target("avx2"))) int64_t sigmoid_affine_avx2(const float* in, float* out, int64_t n,
                                                            float a, float b, float c) {
    const __m256 na = _mm256_set1_ps(-a), vb = _mm256_set1_ps(b), vc = _mm256_set1_ps(c),
                 one = _mm256_set1_ps(1.0f);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 e = exp256(_mm256_mul_ps(_mm256_loadu_ps(in + j), na));
        _mm256_storeu_ps(out + j, _mm256_add_ps(_mm256_div_ps(vb, _mm256_add_ps(one, e)), vc));
    }
    return j;
}
#endif

// out[j] = σ(a * in[j]) * b + c: σ itself (a = 1, b = 1, c = 0) or tanh (a = 2, b = 2, c = -1).
inline void sigmoid_affine(const float* in, float* out, int64_t n, float a, float b, float c) {
    int64_t j = 0;
#if defined(__x86_64__)
    if (detail::use_fast_rnn()) j = sigmoid_affine_avx2(in, out, n, a, b, c);
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

// One LSTM step of the fast path (H a multiple of 16), split over Soma's threads by blocks of
// 16 hidden units: each thread fills a = gx[t] + bias for the four gate columns of its units,
// multiplies them by W_hh (the four panel ranges of its units), and runs the cell for them, so a
// step needs one parallel region. Same formulas as the cell in forward_loop.
void lstm_step_fused(const Saved& s, int64_t t, const float* gxt, const float* bias,
                     const float* hp, const PackedB& packed, float* a, float* h, float* c,
                     float* yt, float* at) {
    const int64_t B = s.B, H = s.H, GH = 4 * H, A = 5 * H, ub = H / kNr;
    cpu::parallel_for(ub, 4, [&](int64_t ub0, int64_t ub1) {
        const int64_t u0 = ub0 * kNr, u1 = ub1 * kNr, n = u1 - u0;
        for (int64_t b = 0; b < B; ++b)
            for (int64_t g = 0; g < 4; ++g) {
                float* ar = a + b * GH + g * H;
                const float* xr = gxt + b * GH + g * H;
                const float* br = bias + g * H;
                for (int64_t j = u0; j < u1; ++j) ar[j] = xr[j] + br[j];
            }
#if defined(SOMA_RNN_X86)
        for (int64_t g = 0; g < 4; ++g)
            gemm_panels(B, g * ub + ub0, g * ub + ub1, hp, H, packed, a, GH, true);
#endif
        for (int64_t b = 0; b < B; ++b) {
            float* yr = yt + b * H;
            float* ar = at + b * A;
            if (!s.valid(t, b)) {
                std::memset(yr + u0, 0, sizeof(float) * static_cast<size_t>(n));
                for (int64_t g = 0; g < 5; ++g)
                    std::memset(ar + g * H + u0, 0, sizeof(float) * static_cast<size_t>(n));
                continue;
            }
            const float* gr = a + b * GH;
            float* hr = h + b * H;
            float* cr = c + b * H;
            sigmoid_n(gr + u0, ar + u0, n);
            sigmoid_n(gr + H + u0, ar + H + u0, n);
            tanh_n(gr + 2 * H + u0, ar + 2 * H + u0, n);
            sigmoid_n(gr + 3 * H + u0, ar + 3 * H + u0, n);
            float* tc = ar + 4 * H;
            for (int64_t j = u0; j < u1; ++j) {
                cr[j] = ar[H + j] * cr[j] + ar[j] * ar[2 * H + j];
                tc[j] = cr[j];
            }
            tanh_n(tc + u0, tc + u0, n);
            for (int64_t j = u0; j < u1; ++j) hr[j] = yr[j] = ar[3 * H + j] * tc[j];
        }
    });
}

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
    PackedB packed;  // W_hh^T [H, G*H], fast path only
    bool fast = false;
    if constexpr (std::is_same_v<T, float>) {
        fast = detail::use_fast_rnn();
        if (fast) pack_b(packed, whh, H, GH, true);
    }
    // LSTM with gates aligned to the panels: the GEMM and the cell of each step in one parallel
    // region split by hidden units.
    const bool fused = fast && s.mode == RNNMode::lstm && H % kNr == 0;
    for (int64_t k = 0; k < Tn; ++k) {
        const int64_t t = s.reverse ? Tn - 1 - k : k;
        T* hp = hp_all + t * B * H;
        std::memcpy(hp, h.data(), sizeof(T) * static_cast<size_t>(B * H));
        if (cp_all) std::memcpy(cp_all + t * B * H, c.data(), sizeof(T) * c.size());
        // a = gx[t] + b_ih + b_hh + h_prev W_hh^T (GRU: a = b_hh + h_prev W_hh^T, as its n gate
        // needs the recurrent part alone)
        const T* gxt = gx + t * B * GH;
        if constexpr (std::is_same_v<T, float>) {
            if (fused) {
                lstm_step_fused(s, t, gxt, bias.data(), hp, packed, a.data(), h.data(), c.data(),
                                y + t * B * H, acts + t * B * A);
                continue;
            }
        }
        for (int64_t b = 0; b < B; ++b) {
            T* ar = a.data() + b * GH;
            const T* xr = gxt + b * GH;
            if (s.mode == RNNMode::gru)
                for (int64_t j = 0; j < GH; ++j) ar[j] = bhh ? bhh[j] : T(0);
            else
                for (int64_t j = 0; j < GH; ++j) ar[j] = xr[j] + bias[static_cast<size_t>(j)];
        }
        if (fast)
            gemm_packed(B, reinterpret_cast<const float*>(hp), H, packed,
                        reinterpret_cast<float*>(a.data()), GH, true);
        else
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

#if defined(SOMA_RNN_X86)
// The LSTM cell backward below (the same formulas) on units [0, n) of rows with gate stride H,
// eight units at a time; returns how many units it did (n - n % 8).
__attribute__((target("avx2"))) int64_t lstm_cell_backward_avx2(int64_t H, const float* ar,
                                                                const float* cpr, const float* d,
                                                                float* dcr, float* dxr, int64_t n) {
    const __m256 one = _mm256_set1_ps(1.0f);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        const __m256 i = _mm256_loadu_ps(ar + j), f = _mm256_loadu_ps(ar + H + j),
                     g = _mm256_loadu_ps(ar + 2 * H + j), o = _mm256_loadu_ps(ar + 3 * H + j),
                     tc = _mm256_loadu_ps(ar + 4 * H + j), dj = _mm256_loadu_ps(d + j);
        const __m256 dct = _mm256_add_ps(
            _mm256_loadu_ps(dcr + j),
            _mm256_mul_ps(_mm256_mul_ps(dj, o), _mm256_sub_ps(one, _mm256_mul_ps(tc, tc))));
        _mm256_storeu_ps(
            dxr + j, _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(dct, g), i), _mm256_sub_ps(one, i)));
        _mm256_storeu_ps(
            dxr + H + j,
            _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(dct, _mm256_loadu_ps(cpr + j)), f),
                          _mm256_sub_ps(one, f)));
        _mm256_storeu_ps(dxr + 2 * H + j, _mm256_mul_ps(_mm256_mul_ps(dct, i),
                                                        _mm256_sub_ps(one, _mm256_mul_ps(g, g))));
        _mm256_storeu_ps(dxr + 3 * H + j, _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(dj, tc), o),
                                                        _mm256_sub_ps(one, o)));
        _mm256_storeu_ps(dcr + j, _mm256_mul_ps(dct, f));
    }
    return j;
}
#endif

// The reverse-time loop of backward_loop for LSTM on the fast path (H a multiple of 16), one
// parallel region per step split by blocks of 16 hidden units. Region r runs, for its units,
// the product dh_prev = dgates W_hh of the step processed in region r - 1 (it reads every gate
// column of that step, all written before the region started) with the passthrough of masked
// rows, then the cell backward of the next step, which only needs dh and dc of its own units.
// dh holds dh0 and dc holds dc0 at the end.
void lstm_backward_fused(const Saved& s, const float* gy, float* dgx, std::vector<float>& dh,
                         std::vector<float>& dc, std::vector<float>& dhn, const PackedB& packed) {
    const int64_t Tn = s.T, B = s.B, H = s.H, GH = 4 * H, A = 5 * H, ub = H / kNr;
    const float* cp_all = s.cprev.data_ptr<float>();
    const float* acts = s.acts.data_ptr<float>();
    auto step_of = [&](int64_t k) { return s.reverse ? Tn - 1 - k : k; };
    for (int64_t r = 0; r <= Tn; ++r) {
        const int64_t tg = r > 0 ? step_of(Tn - r) : -1;       // its product
        const int64_t tc = r < Tn ? step_of(Tn - 1 - r) : -1;  // its cell
        float* cur = dh.data();                                // the dh the cell of step tg used
        float* nxt = dhn.data();
        cpu::parallel_for(ub, 4, [&](int64_t ub0, int64_t ub1) {
            const int64_t u0 = ub0 * kNr, u1 = ub1 * kNr, n = u1 - u0;
            float* src = cur;
            if (tg >= 0) {
#if defined(SOMA_RNN_X86)
                gemm_panels(B, ub0, ub1, dgx + tg * B * GH, GH, packed, nxt, H, false);
#endif
                for (int64_t b = 0; b < B; ++b)
                    if (!s.valid(tg, b))
                        for (int64_t j = u0; j < u1; ++j) nxt[b * H + j] += cur[b * H + j];
                src = nxt;
            }
            if (tc < 0) return;
            const float* gyt = gy + tc * B * H;
            const float* at = acts + tc * B * A;
            float* dxt = dgx + tc * B * GH;
            for (int64_t b = 0; b < B; ++b) {
                float* dxr = dxt + b * GH;
                if (!s.valid(tc, b)) {
                    for (int64_t g = 0; g < 4; ++g)
                        std::memset(dxr + g * H + u0, 0, sizeof(float) * static_cast<size_t>(n));
                    continue;
                }
                float* d = src + b * H;
                const float* gr = gyt + b * H;
                for (int64_t j = u0; j < u1; ++j) d[j] += gr[j];
                const float* ar = at + b * A;
                float* dcr = dc.data() + b * H;
                const float* cpr = cp_all + tc * B * H + b * H;
                // The cell backward of backward_loop on units [u0, u1): shift every row by u0.
                int64_t j = u0;
#if defined(SOMA_RNN_X86)
                j += lstm_cell_backward_avx2(H, ar + u0, cpr + u0, d + u0, dcr + u0, dxr + u0, n);
#endif
                for (; j < u1; ++j) {
                    const float i = ar[j], f = ar[H + j], g = ar[2 * H + j], o = ar[3 * H + j],
                                tcj = ar[4 * H + j];
                    const float dct = dcr[j] + d[j] * o * (1.0f - tcj * tcj);
                    dxr[j] = dct * g * i * (1.0f - i);
                    dxr[H + j] = dct * cpr[j] * f * (1.0f - f);
                    dxr[2 * H + j] = dct * i * (1.0f - g * g);
                    dxr[3 * H + j] = d[j] * tcj * o * (1.0f - o);
                    dcr[j] = dct * f;
                }
            }
        });
        if (tg >= 0) std::swap(dh, dhn);
    }
}

// Fills dgx [T, B, G*H], dgh (GRU only, else aliases dgx), dh0, dc0, dW [G*H, H].
template <class T>
void backward_loop(const Saved& s, const T* gy, T* dgx, T* dgh, T* dh0, T* dc0, T* dw) {
    const int64_t Tn = s.T, B = s.B, H = s.H, GH = s.G * H;
    const bool lstm = s.mode == RNNMode::lstm, gru = s.mode == RNNMode::gru;
    const int64_t A = s.acts.size(2);
    std::vector<T> dh(gy + Tn * B * H, gy + (Tn + 1) * B * H), dc, dhn(static_cast<size_t>(B * H));
    if (lstm) dc.assign(gy + (Tn + 1) * B * H, gy + (Tn + 2) * B * H);
    const T* hp_all = s.hprev.data_ptr<T>();
    const T* cp_all = lstm ? s.cprev.data_ptr<T>() : nullptr;
    const T* acts = s.acts.data_ptr<T>();
    const T* whh = s.w_hh.data_ptr<T>();
    PackedB packed;  // W_hh [G*H, H], fast path only
    bool fast = false;
    if constexpr (std::is_same_v<T, float>) {
        fast = detail::use_fast_rnn();
        if (fast) pack_b(packed, whh, GH, H, false);
    }
    bool fused = false;
    if constexpr (std::is_same_v<T, float>) {
        fused = fast && lstm && H % kNr == 0;
        if (fused) lstm_backward_fused(s, gy, dgx, dh, dc, dhn, packed);
    }
    for (int64_t k = fused ? -1 : Tn - 1; k >= 0; --k) {
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
                    int64_t j0 = 0;
#if defined(SOMA_RNN_X86)
                    if constexpr (std::is_same_v<T, float>)
                        if (fast) j0 = lstm_cell_backward_avx2(H, ar, cpr, d, dcr, dxr, H);
#endif
                    for (int64_t j = j0; j < H; ++j) {
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
        if (fast)
            gemm_packed(B, reinterpret_cast<const float*>(dht), GH, packed,
                        reinterpret_cast<float*>(dhn.data()), H, false);
        else
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
    // dW_hh = dgh^T [G*H, T*B] x h_prev [T*B, H].
    gemm<T>(true, false, GH, H, Tn * B, dgh, GH, hp_all, H, dw, H, 0.0);
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
            auto run = [&]<class T>(T*) {
                auto ptr = [](const Tensor& t) { return t.defined() ? t.data_ptr<T>() : nullptr; };
                backward_loop<T>(s, g.data_ptr<T>(), ptr(dgx), ptr(dgh), ptr(dh0), ptr(dc0),
                                 ptr(dw));
            };
            if (dt == DType::float64)
                run(static_cast<double*>(nullptr));
            else
                run(static_cast<float*>(nullptr));
            // d[b_hh] = Σ_{t,b} dgh, d[b_ih] = Σ_{t,b} dgx (the same sum for LSTM and RNN):
            // column sums in double, rows in order (Backend::reduce).
            Tensor db = has_bhh ? dgh.reshape({s.T * s.B, GH}).sum({0}) : Tensor();
            Tensor dbi;
            if (has_bih)
                dbi = has_bhh && s.mode != RNNMode::gru ? db.clone()
                                                        : dgx.reshape({s.T * s.B, GH}).sum({0});
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
