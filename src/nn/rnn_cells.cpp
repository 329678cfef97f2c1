// Fused LSTM / GRU step kernels with their own backward, and the single-step cell modules.
//
// Why fused: one time step of an LSTM written in ops is a dozen tiny nodes (4 slices, 3
// sigmoids, 2 tanh, 3 products, a sum); here it is one node whose forward keeps the gate
// activations it needs for the backward ([B, 5H] for LSTM: i, f, g, o, tanh(c'); [B, 4H] for GRU:
// r, z, n, gh_n). The backward is a direct loop (no double backward through these nodes).
//
// LSTM (gates a = gx + gh, order i, f, g, o):
//   i = σ(a_i), f = σ(a_f), g = tanh(a_g), o = σ(a_o), c' = f c + i g, h' = o tanh(c')
//   dc_t = dc' + dh' o (1 - tanh²c');  da_i = dc_t g i(1-i);  da_f = dc_t c f(1-f);
//   da_g = dc_t i (1-g²);  da_o = dh' tanh(c') o(1-o);  dc = dc_t f
// GRU (order r, z, n):
//   r = σ(gx_r + gh_r), z = σ(gx_z + gh_z), n = tanh(gx_n + r gh_n), h' = (1-z) n + z h
//   dn_pre = dh'(1-z)(1-n²);  dz_pre = dh'(h-n) z(1-z);  dr_pre = dn_pre gh_n r(1-r)
//   dgx = [dr_pre, dz_pre, dn_pre];  dgh = [dr_pre, dz_pre, dn_pre r];  dh = dh' z
#include <cmath>
#include <sstream>

#include "ops/op_util.h"
#include "soma/nn/functional.h"
#include "soma/nn/init.h"
#include "soma/nn/rnn.h"

namespace soma::nn {
namespace functional {
namespace {

// A 2-D operand with unit column stride (copied when it has none), read through a row stride.
template <class T>
struct Rows {
    Tensor keep;
    const T* p = nullptr;
    int64_t rs = 0;
    explicit Rows(const Tensor& t) : keep(t.detach()) {
        if (keep.dim() != 2 || (keep.size(1) > 1 && keep.stride(1) != 1)) {
            Tensor c = make_tensor(keep.shape(), keep.dtype(), keep.device());
            backend(keep).copy(keep, c);
            keep = c;
        }
        p = keep.template data_ptr<T>();
        rs = keep.size(1) > 0 ? keep.stride(0) : 0;
    }
    const T& operator()(int64_t r, int64_t c) const { return p[r * rs + c]; }
};

template <class T>
T sigm(T x) {
    return T(1) / (T(1) + std::exp(-x));
}

void check_step(const char* op, const Tensor& gx, const Tensor& gh, const Tensor& s, int64_t g) {
    check_defined(gx, op);
    check_defined(gh, op);
    check_defined(s, op);
    check_floating(gx, op);
    SOMA_CHECK_SHAPE(s.dim() == 2, op, ": state must be [B, H]: got ", s.shape(), ".");
    const int64_t b = s.size(0), h = s.size(1);
    const Shape want{b, g * h};
    SOMA_CHECK_SHAPE(gx.shape() == want && gh.shape() == want, op,
                     ": gates must be [B, G*H] with the state's B and H: got gx ", gx.shape(),
                     ", gh ", gh.shape(), ", expected ", want, " (state ", s.shape(), ").");
    SOMA_CHECK_DTYPE(gx.dtype() == gh.dtype() && gx.dtype() == s.dtype(), op,
                     ": gates and state must share a dtype: got ", gx.dtype(), ", ", gh.dtype(),
                     ", ", s.dtype(), ".");
    SOMA_CHECK_DTYPE(gx.dtype() == DType::float32 || gx.dtype() == DType::float64, op,
                     ": expected float32 or float64: got ", gx.dtype(), ".");
}

template <class T>
void lstm_fwd(const Tensor& gx, const Tensor& gh, const Tensor& c, const Tensor& out,
              const Tensor& acts) {
    Rows<T> X(gx), G(gh), C(c);
    const int64_t B = c.size(0), H = c.size(1);
    T* o = out.data_ptr<T>();
    T* a = acts.data_ptr<T>();
    for (int64_t b = 0; b < B; ++b) {
        const T* xr = X.p + b * X.rs;
        const T* gr = G.p + b * G.rs;
        T* orow = o + b * 2 * H;
        T* arow = a + b * 5 * H;
        for (int64_t j = 0; j < H; ++j) {
            T i = sigm(xr[j] + gr[j]);
            T f = sigm(xr[H + j] + gr[H + j]);
            T g = std::tanh(xr[2 * H + j] + gr[2 * H + j]);
            T og = sigm(xr[3 * H + j] + gr[3 * H + j]);
            T cn = f * C(b, j) + i * g;
            T tc = std::tanh(cn);
            orow[j] = og * tc;
            orow[H + j] = cn;
            arow[j] = i;
            arow[H + j] = f;
            arow[2 * H + j] = g;
            arow[3 * H + j] = og;
            arow[4 * H + j] = tc;
        }
    }
}

template <class T>
void lstm_bwd(const Tensor& grad, const Tensor& acts, const Tensor& c, const Tensor& dgates,
              const Tensor& dc) {
    Rows<T> D(grad), C(c);
    const int64_t B = c.size(0), H = c.size(1);
    const T* a = acts.data_ptr<T>();
    T* dg = dgates.data_ptr<T>();
    T* dcp = dc.data_ptr<T>();
    for (int64_t b = 0; b < B; ++b) {
        const T* arow = a + b * 5 * H;
        T* drow = dg + b * 4 * H;
        for (int64_t j = 0; j < H; ++j) {
            T i = arow[j], f = arow[H + j], g = arow[2 * H + j], og = arow[3 * H + j],
              tc = arow[4 * H + j];
            T dh = D(b, j), dct = D(b, H + j) + dh * og * (T(1) - tc * tc);
            drow[j] = dct * g * i * (T(1) - i);
            drow[H + j] = dct * C(b, j) * f * (T(1) - f);
            drow[2 * H + j] = dct * i * (T(1) - g * g);
            drow[3 * H + j] = dh * tc * og * (T(1) - og);
            dcp[b * H + j] = dct * f;
        }
    }
}

template <class T>
void gru_fwd(const Tensor& gx, const Tensor& gh, const Tensor& h, const Tensor& out,
             const Tensor& acts) {
    Rows<T> X(gx), G(gh), S(h);
    const int64_t B = h.size(0), H = h.size(1);
    T* o = out.data_ptr<T>();
    T* a = acts.data_ptr<T>();
    for (int64_t b = 0; b < B; ++b) {
        const T* xr = X.p + b * X.rs;
        const T* gr = G.p + b * G.rs;
        T* arow = a + b * 4 * H;
        for (int64_t j = 0; j < H; ++j) {
            T r = sigm(xr[j] + gr[j]);
            T z = sigm(xr[H + j] + gr[H + j]);
            T hn = gr[2 * H + j];
            T n = std::tanh(xr[2 * H + j] + r * hn);
            o[b * H + j] = (T(1) - z) * n + z * S(b, j);
            arow[j] = r;
            arow[H + j] = z;
            arow[2 * H + j] = n;
            arow[3 * H + j] = hn;
        }
    }
}

template <class T>
void gru_bwd(const Tensor& grad, const Tensor& acts, const Tensor& h, const Tensor& dgx,
             const Tensor& dgh, const Tensor& dh) {
    Rows<T> D(grad), S(h);
    const int64_t B = h.size(0), H = h.size(1);
    const T* a = acts.data_ptr<T>();
    T* px = dgx.data_ptr<T>();
    T* ph = dgh.data_ptr<T>();
    T* pd = dh.data_ptr<T>();
    for (int64_t b = 0; b < B; ++b) {
        const T* arow = a + b * 4 * H;
        T* xr = px + b * 3 * H;
        T* hr = ph + b * 3 * H;
        for (int64_t j = 0; j < H; ++j) {
            T r = arow[j], z = arow[H + j], n = arow[2 * H + j], hn = arow[3 * H + j];
            T d = D(b, j);
            T dn = d * (T(1) - z) * (T(1) - n * n);
            T dz = d * (S(b, j) - n) * z * (T(1) - z);
            T dr = dn * hn * r * (T(1) - r);
            xr[j] = hr[j] = dr;
            xr[H + j] = hr[H + j] = dz;
            xr[2 * H + j] = dn;
            hr[2 * H + j] = dn * r;
            pd[b * H + j] = d * z;
        }
    }
}

}  // namespace

Tensor lstm_step(const Tensor& gx, const Tensor& gh, const Tensor& c) {
    check_step("lstm_step", gx, gh, c, 4);
    const int64_t B = c.size(0), H = c.size(1);
    Tensor out = make_tensor({B, 2 * H}, c.dtype(), c.device());
    Tensor acts = make_tensor({B, 5 * H}, c.dtype(), c.device());
    if (c.dtype() == DType::float64)
        lstm_fwd<double>(gx, gh, c, out, acts);
    else
        lstm_fwd<float>(gx, gh, c, out, acts);
    Tensor cs = c.detach();
    // d[gx] = d[gh] = dgates (see the file comment), d[c] = dc_t f
    return record("lstm_step", out, {gx, gh, c},
                  [acts, cs](const Tensor& g) -> std::vector<Tensor> {
                      const int64_t B = cs.size(0), H = cs.size(1);
                      Tensor dg = make_tensor({B, 4 * H}, cs.dtype(), cs.device());
                      Tensor dc = make_tensor({B, H}, cs.dtype(), cs.device());
                      if (cs.dtype() == DType::float64)
                          lstm_bwd<double>(g, acts, cs, dg, dc);
                      else
                          lstm_bwd<float>(g, acts, cs, dg, dc);
                      return {dg, dg, dc};
                  },
                  {c});
}

Tensor gru_step(const Tensor& gx, const Tensor& gh, const Tensor& h) {
    check_step("gru_step", gx, gh, h, 3);
    const int64_t B = h.size(0), H = h.size(1);
    Tensor out = make_tensor({B, H}, h.dtype(), h.device());
    Tensor acts = make_tensor({B, 4 * H}, h.dtype(), h.device());
    if (h.dtype() == DType::float64)
        gru_fwd<double>(gx, gh, h, out, acts);
    else
        gru_fwd<float>(gx, gh, h, out, acts);
    Tensor hs = h.detach();
    // d[gx] = [dr, dz, dn], d[gh] = [dr, dz, dn r], d[h] = dh' z (see the file comment)
    return record("gru_step", out, {gx, gh, h},
                  [acts, hs](const Tensor& g) -> std::vector<Tensor> {
                      const int64_t B = hs.size(0), H = hs.size(1);
                      Tensor dgx = make_tensor({B, 3 * H}, hs.dtype(), hs.device());
                      Tensor dgh = make_tensor({B, 3 * H}, hs.dtype(), hs.device());
                      Tensor dh = make_tensor({B, H}, hs.dtype(), hs.device());
                      if (hs.dtype() == DType::float64)
                          gru_bwd<double>(g, acts, hs, dgx, dgh, dh);
                      else
                          gru_bwd<float>(g, acts, hs, dgx, dgh, dh);
                      return {dgx, dgh, dh};
                  },
                  {h});
}

RNNState rnn_step(RNNMode mode, const Tensor& gx, const Tensor& gh, const RNNState& state) {
    switch (mode) {
        case RNNMode::rnn_tanh: return {soma::tanh(gx + gh), {}};
        case RNNMode::rnn_relu: return {soma::relu(gx + gh), {}};
        case RNNMode::lstm: {
            const int64_t H = state.h.size(-1);
            Tensor hc = lstm_step(gx, gh, state.c);
            return {hc.narrow(1, 0, H), hc.narrow(1, H, H)};
        }
        case RNNMode::gru: return {gru_step(gx, gh, state.h), {}};
    }
    return {};
}

}  // namespace functional

// ---- cells -------------------------------------------------------------------------------------

namespace {
int64_t gates_of(RNNMode m) { return m == RNNMode::lstm ? 4 : m == RNNMode::gru ? 3 : 1; }
const char* cell_name(RNNMode m) {
    return m == RNNMode::lstm ? "LSTMCell" : m == RNNMode::gru ? "GRUCell" : "RNNCell";
}
}  // namespace

RNNCellBase::RNNCellBase(RNNMode m, RNNCellOptions o) : options(std::move(o)), mode(m) {
    const char* name = cell_name(m);
    SOMA_CHECK_VALUE(options.input_size > 0 && options.hidden_size > 0, name,
                     ": input_size and hidden_size must be positive: got ", options.input_size,
                     " and ", options.hidden_size, ".");
    if (m == RNNMode::rnn_relu || m == RNNMode::rnn_tanh)
        mode = options.nonlinearity == "relu" ? RNNMode::rnn_relu : RNNMode::rnn_tanh;
    const int64_t G = gates_of(m) * options.hidden_size;
    weight_ih = register_parameter("weight_ih", empty({G, options.input_size}));
    weight_hh = register_parameter("weight_hh", empty({G, options.hidden_size}));
    if (options.bias) {
        bias_ih = register_parameter("bias_ih", empty({G}));
        bias_hh = register_parameter("bias_hh", empty({G}));
    }
    const double k = 1.0 / std::sqrt(static_cast<double>(options.hidden_size));
    for (auto& [n, p] : params_) init::uniform_(p, -k, k);
}

RNNCell::RNNCell(RNNCellOptions o) : RNNCellBase(RNNMode::rnn_tanh, std::move(o)) {
    SOMA_CHECK_VALUE(options.nonlinearity == "tanh" || options.nonlinearity == "relu",
                     "RNNCell: unknown nonlinearity: got \"", options.nonlinearity,
                     "\", expected \"tanh\" or \"relu\".");
}

RNNState RNNCellBase::forward(const Tensor& x_in, const RNNState& state) {
    const char* name = cell_name(mode);
    const int64_t H = options.hidden_size;
    SOMA_CHECK_SHAPE(x_in.defined() && (x_in.dim() == 1 || x_in.dim() == 2) &&
                         x_in.size(-1) == options.input_size,
                     name, ": expected input [B, ", options.input_size, "] or [",
                     options.input_size, "]: got ", x_in.defined() ? x_in.shape() : Shape{}, ".");
    const bool unbatched = x_in.dim() == 1;
    Tensor x = unbatched ? x_in.unsqueeze(0) : x_in;
    const int64_t B = x.size(0);
    auto prep = [&](const Tensor& s, const char* what) {
        if (!s.defined()) return zeros({B, H}, {.dtype = x.dtype(), .device = x.device()});
        Tensor t = unbatched && s.dim() == 1 ? s.unsqueeze(0) : s;
        SOMA_CHECK_SHAPE(t.shape() == Shape({B, H}), name, ": ", what, " must be [", B, ", ", H,
                         "]: got ", s.shape(), " (input ", x_in.shape(), ").");
        return t;
    };
    RNNState st{prep(state.h, "h"), {}};
    if (mode == RNNMode::lstm) st.c = prep(state.c, "c");
    Tensor gx = functional::linear(x, weight_ih, bias_ih);
    Tensor gh = functional::linear(st.h, weight_hh, bias_hh);
    RNNState out = functional::rnn_step(mode, gx, gh, st);
    if (unbatched) {
        out.h = out.h.squeeze(0);
        if (out.c.defined()) out.c = out.c.squeeze(0);
    }
    return out;
}

RNNState RNNCellBase::operator()(const Tensor& x, const RNNState& state) {
    return forward(x, state);
}

std::string RNNCellBase::extra_repr() const {
    std::string s = std::to_string(options.input_size) + ", " + std::to_string(options.hidden_size);
    if (!options.bias) s += ", bias=False";
    if (mode == RNNMode::rnn_relu) s += ", nonlinearity=relu";
    return s;
}

}  // namespace soma::nn
