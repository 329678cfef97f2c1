// Losses (torch.nn.functional, PyTorch 1.13 semantics).
//
// Elementwise losses (mse, l1, smooth_l1, huber, kl_div) are compositions of soma ops, so their
// gradients (input and target) and double backward come from the ops. binary_cross_entropy and
// the with-logits form record their own backward (PyTorch's clamped / stable formulas).
// cross_entropy and nll_loss are fused kernels over the input viewed as [N, C, S]
// (S = d1 * ... * dk; unbatched [C] is N = S = 1):
//
//   logp[n, c, s] = x[n, c, s] - lse[n, s],   lse = m + log Σ_c exp(x - m),  m = max_c x
//   index targets t, class weights w (1 when absent), smoothing ε:
//     nll[n, s]    = -w[t] logp[t]                       (0 where t == ignore_index)
//     smooth[n, s] = -Σ_c w[c] logp[c]                   (0 where t == ignore_index)
//     loss         = ((1 - ε) nll + ε / C * smooth) / D
//   mean: D = Σ w[t] over non-ignored targets (their count when unweighted); sum/none: D = 1.
//   d loss / dx[c] = g (a p[c] - q[c]) / D,  a = (1 - ε) w[t] + ε Σw / C,
//                                            q[c] = (1 - ε) w[t] [c == t] + ε w[c] / C
//   probability targets y: y' = (1 - ε) y + ε / C,  loss = -Σ_c w[c] y'[c] logp[c] (mean: / N S)
//     dx[c] = g (Σ_k w[k] y'[k] p[c] - w[c] y'[c]) / D,  dy[c] = -g (1 - ε) w[c] logp[c] / D
#include <cmath>
#include <limits>
#include <memory>
#include <sstream>

#include "backend/cpu/parallel_for.h"
#include "backend/cpu/simd_exp.h"
#include "core/dispatch.h"
#include "ops/op_util.h"
#include "soma/nn/functional.h"

namespace soma::nn::functional {
namespace {

using Grads = std::vector<Tensor>;

void check_reduction(Reduction r, const char* op) {
    SOMA_CHECK_VALUE(r != Reduction::batchmean, op,
                     ": reduction 'batchmean' is only valid for kl_div: got batchmean, expected "
                     "none, mean or sum.");
}

// Reduces an elementwise loss. mean of an empty loss is NaN, as in PyTorch.
Tensor reduce(const Tensor& l, Reduction r, const char* op) {
    check_reduction(r, op);
    if (r == Reduction::none) return l;
    Tensor s = soma::sum(l);
    if (r == Reduction::sum) return s;
    return s / static_cast<double>(l.numel());
}

void check_input(const Tensor& x, const char* op, const char* what = "input") {
    SOMA_CHECK(x.defined(), op, ": ", what, " is undefined");
    SOMA_CHECK_DTYPE(is_floating(x.dtype()), op, ": ", what, " must be floating point: got ",
                     x.dtype(), " with shape ", x.shape(),
                     ", expected float32 or float64. Convert with .to(soma::DType::float32).");
}

// PyTorch refuses gradients for loss weights; a silent zero gradient would be worse.
void check_not_differentiable(const Tensor& w, const char* op, const char* what) {
    SOMA_CHECK_VALUE(!(w.defined() && w.requires_grad() && is_grad_enabled()), op,
                     ": not differentiable with respect to ", what, ": got a ", what,
                     " that requires grad. Pass ", what, ".detach().");
}

void check_same_shape(const Tensor& input, const Tensor& target, const char* op) {
    SOMA_CHECK_SHAPE(input.shape() == target.shape(), op, ": target has shape ", target.shape(),
                     ", expected the input's shape ", input.shape(),
                     ". Reshape the target (e.g. target.view(input.shape())).");
}

// A weight broadcast to `shape` (it may not grow the shape).
Tensor broadcast_weight(const Tensor& w, const Shape& shape, DType dt, const char* op,
                        const char* what) {
    check_input(w, op, what);
    const int64_t lead = static_cast<int64_t>(shape.size()) - w.dim();
    bool ok = lead >= 0;
    for (int64_t i = 0; ok && i < w.dim(); ++i) ok = w.size(i) == 1 || w.size(i) == shape[lead + i];
    SOMA_CHECK_SHAPE(ok, op, ": ", what, " has shape ", w.shape(),
                     ", expected a shape broadcastable to the input's shape ", shape,
                     " (e.g. one value per class along the last dim).");
    return cast(w, dt);
}

std::vector<double> to_doubles(const Tensor& t) {
    NoGradGuard ng;
    return t.contiguous().to_vector<double>();
}

// ---- cross_entropy / nll_loss ----------------------------------------------------------------

// Everything forward and backward share. Input viewed as [n, c, s].
struct ClassCtx {
    const char* op = "";
    bool softmax = true;  // cross_entropy (true) or nll_loss (input already log-probs)
    bool prob_target = false;
    int64_t n = 1, c = 0, s = 1;
    int64_t class_dim = 1;
    Shape input_shape, pos_shape, keep_shape;  // keep_shape: input shape with class dim 1
    DType dtype = DType::float32;
    std::vector<double> w;  // class weights; empty = unweighted
    double wtot = 0;        // Σ w (C when unweighted)
    int64_t ignore_index = -100;
    double eps = 0;  // label smoothing
    Reduction red = Reduction::mean;
    double denom = 1;  // D (see the header comment)
    Tensor x;          // contiguous input
    Tensor target;     // contiguous target (int64 or input's dtype)
    Tensor probs;      // softmax of x (cross_entropy)
    std::vector<double> lse;
    double weight(int64_t k) const { return w.empty() ? 1.0 : w[k]; }
};

std::string position_str(const Shape& pos_shape, int64_t flat) {
    if (pos_shape.empty()) return "";
    std::vector<int64_t> idx(pos_shape.size());
    for (int64_t d = static_cast<int64_t>(pos_shape.size()) - 1; d >= 0; --d) {
        idx[d] = flat % pos_shape[d];
        flat /= pos_shape[d];
    }
    std::ostringstream os;
    os << " at position [";
    for (size_t i = 0; i < idx.size(); ++i) os << (i ? ", " : "") << idx[i];
    os << "]";
    return os.str();
}

// Shapes, dtypes and options; fills the geometry of ctx.
void check_class_args(ClassCtx& k, const Tensor& input, const Tensor& target,
                      const CrossEntropyArgs& args) {
    const char* op = k.op;
    check_input(input, op);
    SOMA_CHECK(target.defined(), op, ": target is undefined");
    check_same_device(input, target, op);
    check_reduction(args.reduction, op);
    SOMA_CHECK_SHAPE(input.dim() >= 1, op,
                     ": input has shape [], expected [C], [N, C] or [N, C, d1, ...]. The input "
                     "holds one score per class.");
    SOMA_CHECK_VALUE(args.label_smoothing >= 0.0 && args.label_smoothing <= 1.0, op,
                     ": label_smoothing must be between 0.0 and 1.0, got ", args.label_smoothing,
                     ".");
    k.input_shape = input.shape();
    k.dtype = input.dtype();
    k.red = args.reduction;
    k.ignore_index = args.ignore_index;
    k.eps = args.label_smoothing;
    if (input.dim() == 1) {
        k.class_dim = 0;
        k.c = input.size(0);
    } else {
        k.n = input.size(0);
        k.c = input.size(1);
        for (int64_t d = 2; d < input.dim(); ++d) k.s *= input.size(d);
    }
    for (int64_t d = 0; d < input.dim(); ++d) {
        if (d != k.class_dim) k.pos_shape.push_back(input.size(d));
        k.keep_shape.push_back(d == k.class_dim ? 1 : input.size(d));
    }

    if (args.weight.defined()) {
        check_input(args.weight, op, "weight");
        check_not_differentiable(args.weight, op, "weight");
        SOMA_CHECK_SHAPE(args.weight.dim() == 1 && args.weight.size(0) == k.c, op,
                         ": weight has shape ", args.weight.shape(), ", expected [", k.c,
                         "] (one weight per class) for input ", input.shape(), ".");
        k.w = to_doubles(args.weight);
    }
    k.wtot = 0;
    for (int64_t j = 0; j < k.c; ++j) k.wtot += k.weight(j);

    // Probability targets: floating, the input's own shape (cross_entropy only).
    if (k.softmax && target.shape() == input.shape()) {
        SOMA_CHECK_DTYPE(is_floating(target.dtype()), op, ": target has the input's shape ",
                         input.shape(), " and dtype ", target.dtype(),
                         ", expected floating class probabilities. For one-hot labels pass "
                         "target.to(soma::DType::float32), or class indices target.argmax(",
                         k.class_dim, ").");
        SOMA_CHECK_VALUE(args.ignore_index < 0, op,
                         ": ignore_index is not supported for class-probability targets: got "
                         "ignore_index ",
                         args.ignore_index, ", expected a negative value (the default -100).");
        k.prob_target = true;
        return;
    }

    // Class-index targets: input shape without the class dim.
    if (target.shape() != k.pos_shape) {
        std::string hint =
            input.dim() == 1
                ? "An unbatched input [C] takes a 0-dim target (one class index)."
                : "Targets are class indices of shape [N, d1, ...] (the input without dim 1).";
        Shape t = target.shape();
        if (t.size() == k.pos_shape.size() + 1 && input.dim() >= 2 && t[1] == 1) {
            Shape sq = t;
            sq.erase(sq.begin() + 1);
            if (sq == k.pos_shape) hint = "Targets are class indices; use target.squeeze(1).";
        }
        if (!k.softmax && t == input.shape())
            hint = "nll_loss takes class indices; for class probabilities use cross_entropy.";
        SOMA_CHECK_SHAPE(false, op, ": target has shape ", target.shape(), ", expected ",
                         k.pos_shape, " for input ", input.shape(), ". ", hint);
    }
    SOMA_CHECK_DTYPE(target.dtype() == DType::int64, op, ": target has dtype ", target.dtype(),
                     " with shape ", target.shape(), ", expected int64 class indices for input ",
                     input.shape(), ". Convert with target.to(soma::DType::int64).");
}

// Softmax of one position's C classes (stride S) into pr; returns log Σ exp. In double.
template <class T>
double softmax_row(const T* xr, T* pr, int64_t C, int64_t S) {
    double m = -std::numeric_limits<double>::infinity();
    for (int64_t c = 0; c < C; ++c) m = std::max(m, static_cast<double>(xr[c * S]));
    if (!std::isfinite(m)) m = 0;  // all -inf (or inf): let the NaN/inf propagate
    // One exp per class: e is kept (in P) and divided by the sum afterwards.
    double se = 0;
    for (int64_t c = 0; c < C; ++c) {
        const double e = std::exp(xr[c * S] - m);
        se += e;
        pr[c * S] = static_cast<T>(e);
    }
    const double inv = 1.0 / se;
    for (int64_t c = 0; c < C; ++c) pr[c * S] = static_cast<T>(pr[c * S] * inv);
    return m + std::log(se);
}

#if defined(__x86_64__)
// The same for float rows with contiguous classes, eight float exponentials at a time (relative
// error ~2e-7 each, as float rounding); rows with a NaN or infinity take softmax_row.
__attribute__((target("avx2"))) double softmax_row_avx2(const float* xr, float* pr, int64_t C) {
    float m = -std::numeric_limits<float>::infinity();
    bool finite = true;
    for (int64_t c = 0; c < C; ++c) {
        finite &= std::isfinite(xr[c]);
        m = std::max(m, xr[c]);
    }
    if (!finite) return softmax_row(xr, pr, C, 1);
    const __m256 vm = _mm256_set1_ps(m);
    __m256 acc = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 8 <= C; c += 8) {
        const __m256 e = simd::exp256(_mm256_sub_ps(_mm256_loadu_ps(xr + c), vm));
        _mm256_storeu_ps(pr + c, e);
        acc = _mm256_add_ps(acc, e);
    }
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, acc);
    double se = 0;
    for (float v : lanes) se += v;
    for (; c < C; ++c) {
        pr[c] = simd::exp_scalar(xr[c] - m);
        se += pr[c];
    }
    const __m256 inv = _mm256_set1_ps(static_cast<float>(1.0 / se));
    c = 0;
    for (; c + 8 <= C; c += 8)
        _mm256_storeu_ps(pr + c, _mm256_mul_ps(_mm256_loadu_ps(pr + c), inv));
    for (; c < C; ++c) pr[c] = static_cast<float>(pr[c] * (1.0 / se));
    return m + std::log(se);
}
#endif

// Softmax of every position into P and k.lse, positions split over the threads (each row is
// independent, so the result does not depend on the split).
template <class T>
void softmax_all(ClassCtx& k, const T* x, T* P) {
    const int64_t C = k.c, S = k.s;
    bool fast = false;
#if defined(__x86_64__)
    if constexpr (std::is_same_v<T, float>) fast = S == 1 && C >= 8 && simd::cpu_has_avx2();
#endif
    cpu::parallel_for(k.n * S, std::max<int64_t>(1, 8192 / std::max<int64_t>(C, 1)),
                      [&](int64_t lo, int64_t hi) {
                          for (int64_t pos = lo; pos < hi; ++pos) {
                              const int64_t base = (pos / S) * C * S + pos % S;
#if defined(__x86_64__)
                              if constexpr (std::is_same_v<T, float>)
                                  if (fast) {
                                      k.lse[pos] = softmax_row_avx2(x + base, P + base, C);
                                      continue;
                                  }
#endif
                              k.lse[pos] = softmax_row(x + base, P + base, C, S);
                          }
                      });
}

// Forward over index targets. Returns per-position losses (none) or the reduced 0-dim loss.
template <class T>
Tensor class_index_forward(ClassCtx& k) {
    const T* x = k.x.template data_ptr<T>();
    const int64_t* tg = k.target.template data_ptr<int64_t>();
    const int64_t C = k.c, S = k.s, npos = k.n * k.s;
    if (k.softmax) {
        k.probs = make_tensor(k.input_shape, k.dtype, k.x.device());
        k.lse.assign(npos, 0.0);
        softmax_all<T>(k, x, k.probs.template data_ptr<T>());
    }
    Tensor none = make_tensor(k.pos_shape, k.dtype, k.x.device());
    T* L = none.template data_ptr<T>();
    double nll_sum = 0, smooth_sum = 0, wsum = 0;
    for (int64_t n = 0; n < k.n; ++n) {
        for (int64_t s = 0; s < S; ++s) {
            const int64_t pos = n * S + s, base = n * C * S + s;
            const T* xr = x + base;
            const double lse = k.softmax ? k.lse[pos] : 0.0;
            const int64_t t = tg[pos];
            if (t == k.ignore_index) {
                L[pos] = 0;
                continue;
            }
            SOMA_CHECK_INDEX(t >= 0 && t < C, k.op, ": target ", t, " is out of bounds",
                             position_str(k.pos_shape, pos), ": expected a class index in [0, ",
                             C - 1, "] (or ignore_index ", k.ignore_index, ") for input ",
                             k.input_shape, ".");
            const double wt = k.weight(t);
            wsum += wt;
            const double nll = -wt * (xr[t * S] - lse);
            double sm = 0;
            if (k.eps > 0)
                for (int64_t c = 0; c < C; ++c) sm -= k.weight(c) * (xr[c * S] - lse);
            nll_sum += nll;
            smooth_sum += sm;
            L[pos] = static_cast<T>(k.eps > 0 ? (1 - k.eps) * nll + k.eps / C * sm : nll);
        }
    }
    if (k.red == Reduction::none) return none;
    if (k.red == Reduction::mean) k.denom = wsum;
    double v = k.eps > 0 ? (1 - k.eps) * nll_sum + k.eps / C * smooth_sum : nll_sum;
    v /= k.denom;
    return full({}, v, {.dtype = k.dtype, .device = k.x.device()});
}

// Forward over probability targets (cross_entropy only).
template <class T>
Tensor class_prob_forward(ClassCtx& k) {
    const T* x = k.x.template data_ptr<T>();
    const T* y = k.target.template data_ptr<T>();
    const int64_t C = k.c, S = k.s, npos = k.n * k.s;
    k.probs = make_tensor(k.input_shape, k.dtype, k.x.device());
    T* P = k.probs.template data_ptr<T>();
    k.lse.assign(npos, 0.0);
    Tensor none = make_tensor(k.pos_shape, k.dtype, k.x.device());
    T* L = none.template data_ptr<T>();
    double total = 0;
    for (int64_t n = 0; n < k.n; ++n) {
        for (int64_t s = 0; s < S; ++s) {
            const int64_t pos = n * S + s, base = n * C * S + s;
            double m = -std::numeric_limits<double>::infinity();
            for (int64_t c = 0; c < C; ++c) m = std::max(m, static_cast<double>(x[base + c * S]));
            if (!std::isfinite(m)) m = 0;
            double se = 0;
            for (int64_t c = 0; c < C; ++c) se += std::exp(x[base + c * S] - m);
            const double lse = m + std::log(se);
            k.lse[pos] = lse;
            double l = 0;
            for (int64_t c = 0; c < C; ++c) {
                const int64_t i = base + c * S;
                P[i] = static_cast<T>(std::exp(x[i] - m) / se);
                const double yp = (1 - k.eps) * y[i] + k.eps / C;
                l -= k.weight(c) * yp * (x[i] - lse);
            }
            L[pos] = static_cast<T>(l);
            total += l;
        }
    }
    if (k.red == Reduction::none) return none;
    if (k.red == Reduction::mean)
        k.denom = npos == 0 ? std::numeric_limits<double>::quiet_NaN() : static_cast<double>(npos);
    return full({}, total / k.denom, {.dtype = k.dtype, .device = k.x.device()});
}

// The incoming gradient per position (none) or one scalar.
template <class T>
struct GradIn {
    std::vector<T> v;
    T at(int64_t pos) const { return v.size() == 1 ? v[0] : v[pos]; }
};
template <class T>
GradIn<T> grad_in(const Tensor& g) {
    return {g.contiguous().to_vector<T>()};
}

// One pass: dx = g (a p - q) (cross_entropy) or dx = -g q (nll_loss), index targets.
template <class T>
Tensor class_index_backward(const ClassCtx& k, const Tensor& g) {
    GradIn<T> gi = grad_in<T>(g);
    const int64_t* tg = k.target.template data_ptr<int64_t>();
    const T* P = k.softmax ? k.probs.template data_ptr<T>() : nullptr;
    Tensor dx = make_tensor(k.input_shape, k.dtype, k.x.device());
    T* D = dx.template data_ptr<T>();
    const int64_t C = k.c, S = k.s;
    const double a2 = k.eps / (C * k.denom);
    for (int64_t n = 0; n < k.n; ++n) {
        for (int64_t s = 0; s < S; ++s) {
            const int64_t pos = n * S + s, base = n * C * S + s;
            const int64_t t = tg[pos];
            if (t == k.ignore_index) {
                for (int64_t c = 0; c < C; ++c) D[base + c * S] = 0;
                continue;
            }
            const double gv = gi.at(pos);
            const double a1 = (1 - k.eps) * k.weight(t) / k.denom;
            if (!k.softmax) {
                for (int64_t c = 0; c < C; ++c) D[base + c * S] = 0;
                D[base + t * S] = static_cast<T>(-gv * a1);
                continue;
            }
            const double a = a1 + a2 * k.wtot;
            for (int64_t c = 0; c < C; ++c) {
                const int64_t i = base + c * S;
                const double q = (c == t ? a1 : 0.0) + a2 * k.weight(c);
                D[i] = static_cast<T>(gv * (a * P[i] - q));
            }
        }
    }
    return dx;
}

// One pass over probability targets: dx and (if wanted) dy.
template <class T>
Grads class_prob_backward(const ClassCtx& k, const Tensor& g, bool want_dy) {
    GradIn<T> gi = grad_in<T>(g);
    const T* x = k.x.template data_ptr<T>();
    const T* y = k.target.template data_ptr<T>();
    const T* P = k.probs.template data_ptr<T>();
    Tensor dx = make_tensor(k.input_shape, k.dtype, k.x.device());
    Tensor dy = want_dy ? make_tensor(k.input_shape, k.dtype, k.x.device()) : Tensor();
    T* DX = dx.template data_ptr<T>();
    T* DY = want_dy ? dy.template data_ptr<T>() : nullptr;
    const int64_t C = k.c, S = k.s;
    for (int64_t n = 0; n < k.n; ++n) {
        for (int64_t s = 0; s < S; ++s) {
            const int64_t pos = n * S + s, base = n * C * S + s;
            const double gv = gi.at(pos) / k.denom;
            double a = 0;
            for (int64_t c = 0; c < C; ++c)
                a += k.weight(c) * ((1 - k.eps) * y[base + c * S] + k.eps / C);
            for (int64_t c = 0; c < C; ++c) {
                const int64_t i = base + c * S;
                const double wc = k.weight(c);
                DX[i] = static_cast<T>(gv * (a * P[i] - wc * ((1 - k.eps) * y[i] + k.eps / C)));
                if (DY) DY[i] = static_cast<T>(-gv * (1 - k.eps) * wc * (x[i] - k.lse[pos]));
            }
        }
    }
    return {dx, dy};
}

// Constant tensors for the differentiable (double backward) path.
Tensor keep_tensor(const ClassCtx& k, const std::vector<double>& v) {
    return from_vector<double>(v, k.keep_shape).to(k.dtype);
}
Tensor class_weight_view(const ClassCtx& k) {
    Shape ws(k.input_shape.size(), 1);
    ws[k.class_dim] = k.c;
    return from_vector<double>(k.w, ws).to(k.dtype);
}

// log-softmax of the original (differentiable) input, shifted by the saved lse for stability.
Tensor diff_log_softmax(const ClassCtx& k, const Tensor& input) {
    Tensor shift = keep_tensor(k, k.lse);
    Tensor z = input - shift;
    return z - soma::log(soma::sum(soma::exp(z), {k.class_dim}, true));
}

// The gradient as differentiable ops (used when backward itself is recorded: create_graph).
Grads class_backward_diff(const ClassCtx& k, const Tensor& input, const Tensor& target,
                          const Tensor& g) {
    Tensor ge = k.red == Reduction::none ? g.unsqueeze(k.class_dim) : g;
    if (k.prob_target) {
        Tensor logp = diff_log_softmax(k, input);
        Tensor yp = cast(target, k.dtype) * (1 - k.eps) + k.eps / static_cast<double>(k.c);
        Tensor wb = k.w.empty() ? Tensor() : class_weight_view(k);
        Tensor wyp = wb.defined() ? yp * wb : yp;
        Tensor a = soma::sum(wyp, {k.class_dim}, true);
        Tensor gd = ge / k.denom;
        Tensor dx = gd * (a * soma::exp(logp) - wyp);
        Tensor dy = gd * (wb.defined() ? wb * logp : logp) * -(1 - k.eps);
        return {dx, dy};
    }
    // q[c] and a per position, as in the one-pass kernel.
    std::vector<int64_t> tg = k.target.to_vector<int64_t>();
    const int64_t C = k.c, S = k.s;
    std::vector<double> q(static_cast<size_t>(k.n * C * S), 0.0), a(k.n * S, 0.0);
    const double a2 = k.eps / (C * k.denom);
    for (int64_t pos = 0; pos < k.n * S; ++pos) {
        const int64_t t = tg[pos], n = pos / S, s = pos % S;
        if (t == k.ignore_index) continue;
        const double a1 = (1 - k.eps) * k.weight(t) / k.denom;
        a[pos] = a1 + a2 * k.wtot;
        for (int64_t c = 0; c < C; ++c)
            q[(n * C + c) * S + s] = (c == t ? a1 : 0.0) + (k.softmax ? a2 * k.weight(c) : 0.0);
    }
    Tensor qt = from_vector<double>(q, k.input_shape).to(k.dtype);
    if (!k.softmax) return {-(ge * qt)};
    Tensor p = soma::exp(diff_log_softmax(k, input));
    return {ge * (keep_tensor(k, a) * p - qt)};
}

Tensor class_loss(const char* op, bool softmax, const Tensor& input, const Tensor& target,
                  const CrossEntropyArgs& args) {
    auto k = std::make_shared<ClassCtx>();
    k->op = op;
    k->softmax = softmax;
    check_class_args(*k, input, target, args);
    Tensor out;
    {
        NoGradGuard ng;
        k->x = input.contiguous();
        k->target = k->prob_target ? cast(target, k->dtype).contiguous() : target.contiguous();
        out = dispatch_floating(k->dtype, [&](auto z) {
            using T = decltype(z);
            return k->prob_target ? class_prob_forward<T>(*k) : class_index_forward<T>(*k);
        });
    }
    std::vector<Tensor> inputs{input};
    if (k->prob_target) inputs.push_back(target);
    bool want_dy = k->prob_target && target.requires_grad();
    auto backward = [k, input, target, want_dy](const Tensor& g) -> Grads {
        // create_graph: the gradient must itself be differentiable.
        if (is_grad_enabled()) return class_backward_diff(*k, input, target, g);
        return dispatch_floating(k->dtype, [&](auto z) -> Grads {
            using T = decltype(z);
            if (!k->prob_target) return {class_index_backward<T>(*k, g)};
            Grads r = class_prob_backward<T>(*k, g, want_dy);
            if (r[1].defined() && r[1].dtype() != target.dtype()) r[1] = cast(r[1], target.dtype());
            return r;
        });
    };
    return record(op, out, inputs, backward, {input, target});
}

// Elementwise pieces of binary_cross_entropy: max(log x, -100) and max(log(1 - x), -100).
Tensor clamped_log(const Tensor& x) { return soma::clamp(soma::log(x), -100.0, std::nullopt); }
Tensor clamped_log1m(const Tensor& x) { return soma::clamp(soma::log1p(-x), -100.0, std::nullopt); }
// softplus(-x) = log(1 + e^-x), stable for any x.
Tensor softplus_neg(const Tensor& x) {
    return soma::relu(-x) + soma::log1p(soma::exp(-soma::abs(x)));
}

}  // namespace

// ---- elementwise regression losses -------------------------------------------------------------

// mse_loss: (x - y)^2;  dx = 2 (x - y) g, dy = -dx  (via the ops)
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction r) {
    check_input(input, "mse_loss");
    SOMA_CHECK(target.defined(), "mse_loss: target is undefined");
    check_reduction(r, "mse_loss");
    return reduce(soma::square(input - target), r, "mse_loss");
}

// l1_loss: |x - y|;  dx = sign(x - y) g
Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction r) {
    check_input(input, "l1_loss");
    SOMA_CHECK(target.defined(), "l1_loss: target is undefined");
    check_reduction(r, "l1_loss");
    return reduce(soma::abs(input - target), r, "l1_loss");
}

// smooth_l1_loss: z = |x - y|;  z < β ? z^2 / (2β) : z - β/2;  β = 0 is l1_loss
Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, Reduction r, double beta) {
    check_input(input, "smooth_l1_loss");
    SOMA_CHECK(target.defined(), "smooth_l1_loss: target is undefined");
    check_reduction(r, "smooth_l1_loss");
    SOMA_CHECK_VALUE(beta >= 0, "smooth_l1_loss: beta must be >= 0, got ", beta,
                     ". beta = 0 gives l1_loss.");
    if (beta == 0) return l1_loss(input, target, r);
    Tensor d = input - target;
    Tensor z = soma::abs(d);
    Tensor l = soma::where(soma::lt(z, beta), d * d * (0.5 / beta), z - 0.5 * beta);
    return reduce(l, r, "smooth_l1_loss");
}

// huber_loss: z = |x - y|;  z < δ ? z^2 / 2 : δ (z - δ/2)
Tensor huber_loss(const Tensor& input, const Tensor& target, Reduction r, double delta) {
    check_input(input, "huber_loss");
    SOMA_CHECK(target.defined(), "huber_loss: target is undefined");
    check_reduction(r, "huber_loss");
    SOMA_CHECK_VALUE(delta > 0, "huber_loss: delta must be > 0, got ", delta, ".");
    Tensor d = input - target;
    Tensor z = soma::abs(d);
    Tensor l = soma::where(soma::lt(z, delta), d * d * 0.5, (z - 0.5 * delta) * delta);
    return reduce(l, r, "huber_loss");
}

// ---- classification ----------------------------------------------------------------------------

Tensor cross_entropy(const Tensor& input, const Tensor& target, const CrossEntropyArgs& args) {
    return class_loss("cross_entropy", true, input, target, args);
}

Tensor nll_loss(const Tensor& input, const Tensor& target, const CrossEntropyArgs& args) {
    SOMA_CHECK_VALUE(args.label_smoothing == 0.0,
                     "nll_loss: label_smoothing is not supported: got ", args.label_smoothing,
                     ", expected 0. Use cross_entropy(logits, target, {.label_smoothing = ...}).");
    return class_loss("nll_loss", false, input, target, args);
}

// binary_cross_entropy: l = -w (y max(log x, -100) + (1 - y) max(log(1 - x), -100))
//   dx = g w (x - y) / max(x (1 - x), 1e-12);  dy = g w (max(log(1-x), -100) - max(log x, -100))
Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight,
                            Reduction r) {
    const char* op = "binary_cross_entropy";
    check_input(input, op);
    check_input(target, op, "target");
    check_reduction(r, op);
    check_same_shape(input, target, op);
    check_not_differentiable(weight, op, "weight");
    DType dt = promote_types(input.dtype(), target.dtype());
    Tensor w =
        weight.defined() ? broadcast_weight(weight, input.shape(), dt, op, "weight") : Tensor();
    {
        NoGradGuard ng;
        for (double v : to_doubles(input))
            SOMA_CHECK_VALUE(v >= 0 && v <= 1, op,
                             ": all elements of input should be between 0 and 1: got ", v,
                             " in input of shape ", input.shape(),
                             ". Apply sigmoid first, or use binary_cross_entropy_with_logits.");
    }
    Tensor x = cast(input, dt), y = cast(target, dt);
    Tensor l;
    {
        NoGradGuard ng;
        l = -(y * clamped_log(x) + (1 - y) * clamped_log1m(x));
        if (w.defined()) l = l * w;
    }
    l = record(op, l, {x, y},
               [x, y, w](const Tensor& g) {
                   Tensor gw = w.defined() ? g * w : g;
                   Tensor dx = gw * (x - y) / soma::clamp(x * (1 - x), 1e-12, std::nullopt);
                   Tensor dy = gw * (clamped_log1m(x) - clamped_log(x));
                   return Grads{dx, dy};
               },
               {x, y});
    return reduce(l, r, op);
}

// binary_cross_entropy_with_logits, stable:  lw = 1 + (pw - 1) y  (lw = 1 without pos_weight)
//   l  = w ((1 - y) x + lw softplus(-x))
//   dx = g w ((pw y + 1 - y) σ(x) - pw y);  dy = g w ((pw - 1) softplus(-x) - x)
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                        const Tensor& weight, const Tensor& pos_weight,
                                        Reduction r) {
    const char* op = "binary_cross_entropy_with_logits";
    check_input(input, op);
    check_input(target, op, "target");
    check_reduction(r, op);
    check_same_shape(input, target, op);
    check_not_differentiable(weight, op, "weight");
    check_not_differentiable(pos_weight, op, "pos_weight");
    DType dt = promote_types(input.dtype(), target.dtype());
    Tensor w =
        weight.defined() ? broadcast_weight(weight, input.shape(), dt, op, "weight") : Tensor();
    Tensor pw;
    if (pos_weight.defined()) {
        // [C] broadcasts over the last dim: one weight per class.
        pw = broadcast_weight(pos_weight, input.shape(), dt, op, "pos_weight");
    }
    Tensor x = cast(input, dt), y = cast(target, dt);
    Tensor l;
    {
        NoGradGuard ng;
        Tensor lw = pw.defined() ? (pw - 1) * y + 1 : Tensor();
        Tensor sp = softplus_neg(x);
        l = (1 - y) * x + (lw.defined() ? lw * sp : sp);
        if (w.defined()) l = l * w;
    }
    l = record(op, l, {x, y},
               [x, y, w, pw](const Tensor& g) {
                   Tensor gw = w.defined() ? g * w : g;
                   Tensor s = soma::sigmoid(x);
                   Tensor dx, dy;
                   if (pw.defined()) {
                       Tensor t = pw * y;
                       dx = gw * ((t + 1 - y) * s - t);
                       dy = gw * ((pw - 1) * softplus_neg(x) - x);
                   } else {
                       dx = gw * (s - y);
                       dy = -(gw * x);
                   }
                   return Grads{dx, dy};
               },
               {x, y});
    return reduce(l, r, op);
}

// kl_div: l = y (log y - x)  (0 where y == 0, as xlogy);  log_target: l = e^y (y - x)
//   mean averages over all elements; batchmean divides the sum by the batch size x.size(0)
Tensor kl_div(const Tensor& input, const Tensor& target, Reduction r, bool log_target) {
    const char* op = "kl_div";
    check_input(input, op);
    check_input(target, op, "target");
    Tensor l;
    if (log_target) {
        l = soma::exp(target) * (target - input);
    } else {
        // y log y with y = 0 -> 0 (and a zero gradient there rather than NaN).
        Tensor safe = soma::where(soma::eq(target, 0), soma::ones_like(target), target);
        l = target * soma::log(safe) - target * input;
    }
    if (r != Reduction::batchmean) return reduce(l, r, op);
    Tensor s = soma::sum(l);
    return input.dim() == 0 ? s : s / static_cast<double>(input.size(0));
}

}  // namespace soma::nn::functional
