// Normalisation and dropout (torch.nn.functional, PyTorch 1.13 semantics).
//
// batch_norm, training: the input is viewed as [N, C, S] (S = L or H * W); per channel c over
// the M = N * S values:
//   mean = Σ x / M,  var = Σ (x - mean)^2 / M (biased),  inv = 1 / sqrt(var + eps)
//   xhat = (x - mean) inv,  y = w xhat + b
//   running_mean = (1 - momentum) running_mean + momentum mean
//   running_var  = (1 - momentum) running_var  + momentum var M / (M - 1)   (unbiased)
// Fused backward, two passes per channel over contiguous data:
//   db = Σ g,  dw = Σ g xhat,  dx = w inv / M (M g - db - xhat dw)
// With create_graph the same formula is built from soma ops (differentiable).
// batch_norm eval, layer_norm and dropout are compositions of soma ops.
#include <algorithm>
#include <cmath>

#include "backend/cpu/parallel_for.h"
#include "backend/cpu/row_sum.h"
#include "core/dispatch.h"
#include "ops/op_util.h"
#include "soma/nn/functional.h"

namespace soma::nn::functional {
namespace {

using Grads = std::vector<Tensor>;

void check_channel_param(const Tensor& t, const char* what, int64_t C, const Tensor& x) {
    if (!t.defined()) return;
    SOMA_CHECK_DTYPE(is_floating(t.dtype()), "batch_norm: ", what, " must be floating point: got ",
                     t.dtype(), ", expected float32 or float64.");
    SOMA_CHECK_SHAPE(t.dim() == 1 && t.size(0) == C, "batch_norm: ", what, " has shape ", t.shape(),
                     ", expected [", C, "] (one value per channel, C = x.size(1)) for input ",
                     x.shape(), ".");
}

// Shape of a per-channel [C] tensor broadcast against x: [1, C, 1, ...].
Shape channel_shape(const Tensor& x) {
    Shape s(x.dim(), 1);
    s[1] = x.size(1);
    return s;
}

Shape non_channel_dims(const Tensor& x) {
    Shape d{0};
    for (int64_t i = 2; i < x.dim(); ++i) d.push_back(i);
    return d;
}

struct BnCtx {
    Tensor x;  // contiguous input
    int64_t n = 0, c = 0, s = 0;
    std::vector<double> mean, inv, w;  // w empty = no affine weight
    bool has_weight = false, has_bias = false;
    DType dtype = DType::float32;
};

// Row sums for the per-channel loops: eight partial sums in T (they vectorise), combined in
// double per row (cpu::row_sum); rows are combined in double per channel.
using cpu::row_sum;

// Σ (p - mu)^2 over a row.
template <class T>
double row_sqdev(const T* p, int64_t S, T mu) {
    T acc[8] = {};
    int64_t s = 0;
    for (; s + 8 <= S; s += 8)
        for (int l = 0; l < 8; ++l) acc[l] += (p[s + l] - mu) * (p[s + l] - mu);
    double r = 0;
    for (; s < S; ++s) r += static_cast<double>(p[s] - mu) * static_cast<double>(p[s] - mu);
    for (int l = 0; l < 8; ++l) r += acc[l];
    return r;
}

// Σ g and Σ g (x - mu) over a row.
template <class T>
void row_gsums(const T* g, const T* x, int64_t S, T mu, double& sg, double& sgx) {
    T a[8] = {}, b[8] = {};
    int64_t s = 0;
    for (; s + 8 <= S; s += 8)
        for (int l = 0; l < 8; ++l) {
            a[l] += g[s + l];
            b[l] += g[s + l] * (x[s + l] - mu);
        }
    for (; s < S; ++s) {
        sg += g[s];
        sgx += static_cast<double>(g[s]) * static_cast<double>(x[s] - mu);
    }
    for (int l = 0; l < 8; ++l) {
        sg += a[l];
        sgx += b[l];
    }
}

// Channels per parallel chunk: about 32k values each.
int64_t channel_grain(int64_t per_channel) {
    return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, per_channel));
}

// Per-channel mean and biased variance (two passes). S == 1 ([N, C] input) walks rows with the
// channels innermost; otherwise channels run in parallel, each over its N rows of S values.
template <class T>
std::vector<double> bn_stats(BnCtx& k) {
    const T* x = k.x.template data_ptr<T>();
    const int64_t N = k.n, C = k.c, S = k.s;
    const double M = static_cast<double>(N * S);
    k.mean.assign(C, 0.0);
    std::vector<double> var(C, 0.0);
    double* mean = k.mean.data();
    double* v = var.data();
    if (S == 1) {
        for (int64_t n = 0; n < N; ++n)
            for (int64_t c = 0; c < C; ++c) mean[c] += x[n * C + c];
        for (int64_t c = 0; c < C; ++c) mean[c] /= M;
        for (int64_t n = 0; n < N; ++n)
            for (int64_t c = 0; c < C; ++c) {
                const double d = x[n * C + c] - mean[c];
                v[c] += d * d;
            }
        for (int64_t c = 0; c < C; ++c) v[c] /= M;
        return var;
    }
    cpu::parallel_for(C, channel_grain(N * S), [=](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c) {
            double sum = 0;
            for (int64_t n = 0; n < N; ++n) sum += row_sum(x + (n * C + c) * S, S);
            const double mu = sum / M;
            double sq = 0;
            for (int64_t n = 0; n < N; ++n)
                sq += row_sqdev(x + (n * C + c) * S, S, static_cast<T>(mu));
            mean[c] = mu;
            v[c] = sq / M;
        }
    });
    return var;
}

// y = (x - mean) inv w + b = x a + b'
template <class T>
Tensor bn_normalise(const BnCtx& k, const std::vector<double>& bias) {
    const T* x = k.x.template data_ptr<T>();
    Tensor y = make_tensor(k.x.shape(), k.dtype, k.x.device());
    T* Y = y.template data_ptr<T>();
    const int64_t N = k.n, C = k.c, S = k.s;
    std::vector<T> av(C), bv(C);
    for (int64_t c = 0; c < C; ++c) {
        const double a = k.inv[c] * (k.w.empty() ? 1.0 : k.w[c]);
        av[c] = static_cast<T>(a);
        bv[c] = static_cast<T>((bias.empty() ? 0.0 : bias[c]) - k.mean[c] * a);
    }
    const T* A = av.data();
    const T* B = bv.data();
    if (S == 1) {
        for (int64_t n = 0; n < N; ++n)
            for (int64_t c = 0; c < C; ++c) Y[n * C + c] = x[n * C + c] * A[c] + B[c];
        return y;
    }
    cpu::parallel_for(N * C, channel_grain(S), [=](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            const T a = A[r % C], b = B[r % C];
            const T* p = x + r * S;
            T* q = Y + r * S;
            for (int64_t s = 0; s < S; ++s) q[s] = p[s] * a + b;
        }
    });
    return y;
}

// Two passes per channel: (Σ g, Σ g xhat), then dx.
template <class T>
Grads bn_train_backward(const BnCtx& k, const Tensor& g0) {
    Tensor g = g0.contiguous();
    if (g.dtype() != k.dtype) g = cast(g, k.dtype);
    const T* x = k.x.template data_ptr<T>();
    const T* G = g.template data_ptr<T>();
    Tensor dx = make_tensor(k.x.shape(), k.dtype, k.x.device());
    T* DX = dx.template data_ptr<T>();
    const int64_t N = k.n, C = k.c, S = k.s;
    const double M = static_cast<double>(N * S);
    std::vector<double> dw(C, 0.0), db(C, 0.0);
    double* pdw = dw.data();
    double* pdb = db.data();
    const double* mean = k.mean.data();
    const double* inv = k.inv.data();
    const double* w = k.w.empty() ? nullptr : k.w.data();
    // dx = f (M g - db - xhat dw) = P g + Q x + R per channel, with f = w inv / M:
    // P = f M, Q = -f inv dw, R = -f db + f inv dw mean.
    auto coeffs = [=](int64_t c, T& P, T& Q, T& R) {
        const double f = (w ? w[c] : 1.0) * inv[c] / M;
        P = static_cast<T>(f * M);
        Q = static_cast<T>(-f * inv[c] * pdw[c]);
        R = static_cast<T>(-f * pdb[c] + f * inv[c] * pdw[c] * mean[c]);
    };
    if (S == 1) {
        for (int64_t n = 0; n < N; ++n)
            for (int64_t c = 0; c < C; ++c) {
                const double gv = G[n * C + c];
                pdb[c] += gv;
                pdw[c] += gv * (x[n * C + c] - mean[c]);
            }
        for (int64_t c = 0; c < C; ++c) pdw[c] *= inv[c];
        std::vector<T> P(C), Q(C), R(C);
        for (int64_t c = 0; c < C; ++c) coeffs(c, P[c], Q[c], R[c]);
        for (int64_t n = 0; n < N; ++n)
            for (int64_t c = 0; c < C; ++c)
                DX[n * C + c] = P[c] * G[n * C + c] + Q[c] * x[n * C + c] + R[c];
    } else {
        cpu::parallel_for(C, channel_grain(N * S), [=](int64_t c0, int64_t c1) {
            for (int64_t c = c0; c < c1; ++c) {
                const T mu = static_cast<T>(mean[c]);
                double sg = 0, sgx = 0;
                for (int64_t n = 0; n < N; ++n) {
                    const int64_t o = (n * C + c) * S;
                    row_gsums(G + o, x + o, S, mu, sg, sgx);
                }
                pdb[c] = sg;
                pdw[c] = sgx * inv[c];
                T P, Q, R;
                coeffs(c, P, Q, R);
                for (int64_t n = 0; n < N; ++n) {
                    const int64_t o = (n * C + c) * S;
                    for (int64_t s = 0; s < S; ++s) DX[o + s] = P * G[o + s] + Q * x[o + s] + R;
                }
            }
        });
    }
    Grads out{dx, Tensor(), Tensor()};
    if (k.has_weight) out[1] = from_vector<double>(dw, {C}).to(k.dtype);
    if (k.has_bias) out[2] = from_vector<double>(db, {C}).to(k.dtype);
    return out;
}

// The same gradient as differentiable ops of x, w and g (for create_graph).
Grads bn_train_backward_diff(const Tensor& x, const Tensor& w, bool has_bias, double eps,
                             const Tensor& g) {
    Shape dims = non_channel_dims(x), cs = channel_shape(x);
    const double M = static_cast<double>(x.numel()) / static_cast<double>(x.size(1));
    Tensor xc = x - soma::sum(x, dims, true) / M;
    Tensor inv = soma::rsqrt(soma::sum(xc * xc, dims, true) / M + eps);
    Tensor xhat = xc * inv;
    Tensor sg = soma::sum(g, dims, true), sgx = soma::sum(g * xhat, dims, true);
    Tensor f = w.defined() ? w.reshape(cs) * inv / M : inv / M;
    Tensor dx = f * (g * M - sg - xhat * sgx);
    Shape c1{x.size(1)};
    return {dx, w.defined() ? sgx.reshape(c1) : Tensor(), has_bias ? sg.reshape(c1) : Tensor()};
}

std::vector<double> doubles(const Tensor& t) {
    NoGradGuard ng;
    return t.contiguous().to_vector<double>();
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum,
                  double eps) {
    check_defined(x, "batch_norm");
    check_floating(x, "batch_norm");
    SOMA_CHECK_SHAPE(x.dim() >= 2, "batch_norm: input has shape ", x.shape(),
                     ", expected [N, C], [N, C, L] or [N, C, H, W]. For a single sample use "
                     "x.unsqueeze(0).");
    const int64_t C = x.size(1);
    check_channel_param(running_mean, "running_mean", C, x);
    check_channel_param(running_var, "running_var", C, x);
    check_channel_param(weight, "weight", C, x);
    check_channel_param(bias, "bias", C, x);
    const DType dt = x.dtype();
    Tensor w = weight.defined() ? cast(weight, dt) : Tensor();
    Tensor b = bias.defined() ? cast(bias, dt) : Tensor();
    const Shape cs = channel_shape(x);

    if (!training) {
        SOMA_CHECK_VALUE(running_mean.defined() && running_var.defined(),
                         "batch_norm: running_mean and running_var must be given in eval mode "
                         "(training = false), got undefined tensors. Pass the running statistics "
                         "or use training = true.");
        // y = (x - running_mean) * w / sqrt(running_var + eps) + b
        Tensor rm, inv;
        {
            NoGradGuard ng;
            rm = cast(running_mean.detach(), dt).reshape(cs);
            inv = soma::rsqrt(cast(running_var.detach(), dt) + eps).reshape(cs);
        }
        Tensor y = (x - rm) * (w.defined() ? w.reshape(cs) * inv : inv);
        return b.defined() ? y + b.reshape(cs) : y;
    }

    int64_t M = 1;  // values per channel
    for (int64_t d = 0; d < x.dim(); ++d)
        if (d != 1) M *= x.size(d);
    SOMA_CHECK_VALUE(M > 1,
                     "batch_norm: expected more than 1 value per channel when training, "
                     "got input shape ",
                     x.shape(), ". Use a batch of at least 2 samples, or eval mode.");
    auto k = std::make_shared<BnCtx>();
    k->dtype = dt;
    k->n = x.size(0);
    k->c = C;
    k->s = M / k->n;
    k->has_weight = w.defined();
    k->has_bias = b.defined();
    Tensor y;
    {
        NoGradGuard ng;
        k->x = x.contiguous();
        if (w.defined()) k->w = doubles(w);
        std::vector<double> bv = b.defined() ? doubles(b) : std::vector<double>();
        std::vector<double> var =
            dispatch_floating(dt, [&](auto z) { return bn_stats<decltype(z)>(*k); });
        k->inv.resize(C);
        for (int64_t c = 0; c < C; ++c) k->inv[c] = 1.0 / std::sqrt(var[c] + eps);
        y = dispatch_floating(dt, [&](auto z) { return bn_normalise<decltype(z)>(*k, bv); });
        const double unbias = static_cast<double>(M) / static_cast<double>(M - 1);
        if (running_mean.defined()) {
            std::vector<double> r = doubles(running_mean);
            for (int64_t c = 0; c < C; ++c) r[c] = (1 - momentum) * r[c] + momentum * k->mean[c];
            Tensor rm = running_mean;
            rm.copy_(from_vector<double>(r, {C}));
        }
        if (running_var.defined()) {
            std::vector<double> r = doubles(running_var);
            for (int64_t c = 0; c < C; ++c)
                r[c] = (1 - momentum) * r[c] + momentum * var[c] * unbias;
            Tensor rv = running_var;
            rv.copy_(from_vector<double>(r, {C}));
        }
    }
    return record("batch_norm", y, {x, w, b},
                  [k, x, w, eps](const Tensor& g) -> Grads {
                      if (is_grad_enabled())
                          return bn_train_backward_diff(x, w, k->has_bias, eps, g);
                      return dispatch_floating(
                          k->dtype, [&](auto z) { return bn_train_backward<decltype(z)>(*k, g); });
                  },
                  {x});
}

// layer_norm: over the trailing dims D (M values): y = (x - mean) / sqrt(var + eps) * w + b,
// var biased. Composition of ops (gradients and double backward from the ops).
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps) {
    check_defined(x, "layer_norm");
    check_floating(x, "layer_norm");
    const int64_t k = static_cast<int64_t>(normalized_shape.size());
    SOMA_CHECK_SHAPE(k >= 1,
                     "layer_norm: normalized_shape is [], expected at least one dim (the "
                     "trailing dims of the input ",
                     x.shape(), " to normalise over).");
    bool ok = x.dim() >= k;
    for (int64_t i = 0; ok && i < k; ++i) ok = x.size(x.dim() - k + i) == normalized_shape[i];
    SOMA_CHECK_SHAPE(ok, "layer_norm: normalized_shape ", normalized_shape,
                     " doesn't match the trailing dims of input ", x.shape(),
                     ". normalized_shape must equal input.shape()[-", k, ":].");
    for (const auto& [t, what] : {std::pair{&weight, "weight"}, std::pair{&bias, "bias"}}) {
        if (!t->defined()) continue;
        check_floating(*t, "layer_norm");
        SOMA_CHECK_SHAPE(t->shape() == normalized_shape, "layer_norm: ", what, " has shape ",
                         t->shape(), ", expected normalized_shape ", normalized_shape, ".");
    }
    Shape dims;
    for (int64_t i = x.dim() - k; i < x.dim(); ++i) dims.push_back(i);
    const double M = static_cast<double>(shape_numel(normalized_shape));
    Tensor xc = x - soma::sum(x, dims, true) / M;
    Tensor y = xc * soma::rsqrt(soma::sum(xc * xc, dims, true) / M + eps);
    if (weight.defined()) y = y * weight;
    if (bias.defined()) y = y + bias;
    return y;
}

// dropout: y = x m / (1 - p), m ~ Bernoulli(1 - p) from the default generator;  dx = g m / (1 - p)
Tensor dropout(const Tensor& x, double p, bool training) {
    check_defined(x, "dropout");
    check_floating(x, "dropout");
    SOMA_CHECK_VALUE(p >= 0 && p <= 1, "dropout: probability has to be between 0 and 1, got ", p,
                     ".");
    if (!training || p == 0) return x;
    Tensor m, y;
    {
        NoGradGuard ng;
        if (p == 1) {
            m = zeros_like(x);
        } else {
            Tensor u = soma::rand(x.shape(), {.dtype = x.dtype(), .device = x.device()});
            m = soma::lt(u, 1 - p).to(x.dtype()) * (1 / (1 - p));
        }
        y = x * m;
    }
    return record("dropout", y, {x}, [m](const Tensor& g) { return Grads{g * m}; });
}

}  // namespace soma::nn::functional
