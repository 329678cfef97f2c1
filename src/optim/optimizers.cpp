// SGD, Adam, AdamW, RMSprop, Adagrad: validation and the fused update loops.
//
// Each loop is PyTorch 1.13's single-tensor implementation written out per element, with its
// operations in the same order (so float64 results agree to the last bits or nearly):
//   add(a, b, alpha)        = a + alpha * b
//   addcmul(a, b, c, value) = a + value * b * c
//   addcdiv(a, b, c, value) = a + value * b / c
// Arithmetic is done in the parameter's dtype with the scalar coefficients rounded to it, as
// PyTorch's CPU kernels do. One pass over the parameter and its state per step.
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "backend/cpu/parallel_for.h"
#include "core/dispatch.h"
#include "core/tensor_impl.h"
#include "soma/optim/optimizer.h"

namespace soma::optim {

namespace {

void check_ge0(const char* opt, const char* option, double v, const std::string& where) {
    SOMA_CHECK_VALUE(v >= 0, opt, ": invalid ", option, where, ": got ", v, ", expected ", option,
                     " >= 0");
}

void check_betas(const char* opt, const std::array<double, 2>& betas, const std::string& where) {
    for (int i = 0; i < 2; ++i)
        SOMA_CHECK_VALUE(betas[i] >= 0 && betas[i] < 1, opt, ": invalid betas[", i, "]", where,
                         ": got ", betas[i], ", expected 0 <= betas[", i, "] < 1");
}

// torch.maximum: NaN in either operand propagates.
template <class T>
T nan_max(T a, T b) {
    if (std::isnan(a) || std::isnan(b)) return a + b;
    return a > b ? a : b;
}

// Adam and AdamW share the loop; `decoupled` selects AdamW's weight decay.
struct AdamArgs {
    double lr, beta1, beta2, eps, weight_decay;
    bool amsgrad, maximize, decoupled;
};

// The plain passes (no weight decay, nesterov, maximize or amsgrad) over [lo, hi), with the
// coefficients by value and restrict pointers so the compiler vectorises them; on x86 the float
// passes are also built for AVX2 (eight lanes, no FMA: the same operations, the same bits).
template <class T>
struct PlainAdam {
    T b1, one_m_b1, b2, one_m_b2, bc2_sqrt, eps, neg_step_size;
};
template <class T>
__attribute__((always_inline)) inline void adam_plain(const PlainAdam<T> c, T* __restrict p,
                                                      T* __restrict m, T* __restrict v,
                                                      const T* __restrict g, int64_t lo,
                                                      int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
        const T gi = g[i];
        const T mi = m[i] * c.b1 + c.one_m_b1 * gi;
        const T vi = v[i] * c.b2 + c.one_m_b2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] + c.neg_step_size * mi / (std::sqrt(vi) / c.bc2_sqrt + c.eps);
    }
}
template <class T>
__attribute__((always_inline)) inline void sgd_momentum_plain(T momentum, T one_m_dampening,
                                                              T neg_lr, T* __restrict p,
                                                              T* __restrict buf,
                                                              const T* __restrict g, int64_t lo,
                                                              int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
        const T b = buf[i] * momentum + one_m_dampening * g[i];
        buf[i] = b;
        p[i] = p[i] + neg_lr * b;
    }
}
#if defined(__x86_64__)
__attribute__((target("avx2"))) void adam_plain_avx2(const PlainAdam<float> c, float* p, float* m,
                                                     float* v, const float* g, int64_t lo,
                                                     int64_t hi) {
    adam_plain(c, p, m, v, g, lo, hi);
}
__attribute__((target("avx2"))) void sgd_momentum_plain_avx2(float momentum, float one_m_dampening,
                                                             float neg_lr, float* p, float* buf,
                                                             const float* g, int64_t lo,
                                                             int64_t hi) {
    sgd_momentum_plain(momentum, one_m_dampening, neg_lr, p, buf, g, lo, hi);
}
bool has_avx2() {
    static const bool ok = __builtin_cpu_supports("avx2");
    return ok;
}
#endif

void adam_update(const AdamArgs& a, const Tensor& param, const Tensor& grad, Tensor exp_avg,
                 Tensor exp_avg_sq, Tensor max_exp_avg_sq, double step) {
    const double bias_correction1 = 1 - std::pow(a.beta1, step);
    const double bias_correction2 = 1 - std::pow(a.beta2, step);
    const double step_size = a.lr / bias_correction1;
    const double bias_correction2_sqrt = std::sqrt(bias_correction2);
    dispatch_floating(param.dtype(), [&](auto tag) {
        using T = decltype(tag);
        T* p = param.data_ptr<T>();
        const T* g = grad.data_ptr<T>();
        T* m = exp_avg.data_ptr<T>();
        T* v = exp_avg_sq.data_ptr<T>();
        T* vmax = a.amsgrad ? max_exp_avg_sq.data_ptr<T>() : nullptr;
        const T decay = static_cast<T>(1 - a.lr * a.weight_decay);  // AdamW
        const T wd = static_cast<T>(a.weight_decay);                // Adam (L2)
        const T b1 = static_cast<T>(a.beta1), one_m_b1 = static_cast<T>(1 - a.beta1);
        const T b2 = static_cast<T>(a.beta2), one_m_b2 = static_cast<T>(1 - a.beta2);
        const T bc2_sqrt = static_cast<T>(bias_correction2_sqrt);
        const T eps = static_cast<T>(a.eps);
        const T neg_step_size = static_cast<T>(-step_size);
        const int64_t n = param.numel();
        if (!a.maximize && !a.decoupled && a.weight_decay == 0 && !vmax) {
            // Plain Adam as one vectorisable pass; the same formulas as below.
            const PlainAdam<T> c{b1, one_m_b1, b2, one_m_b2, bc2_sqrt, eps, neg_step_size};
            cpu::parallel_for(n, int64_t{1} << 15, [&](int64_t lo, int64_t hi) {
#if defined(__x86_64__)
                if constexpr (std::is_same_v<T, float>)
                    if (has_avx2()) return adam_plain_avx2(c, p, m, v, g, lo, hi);
#endif
                adam_plain(c, p, m, v, g, lo, hi);
            });
            return;
        }
        for (int64_t i = 0; i < n; ++i) {
            T gi = a.maximize ? -g[i] : g[i];
            if (a.decoupled)
                p[i] = p[i] * decay;  // param.mul_(1 - lr * weight_decay)
            else if (a.weight_decay != 0)
                gi = gi + wd * p[i];  // grad = grad + weight_decay * param
            // m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
            m[i] = m[i] * b1 + one_m_b1 * gi;
            v[i] = v[i] * b2 + one_m_b2 * gi * gi;
            T vi = v[i];
            if (vmax) vi = vmax[i] = nan_max(vmax[i], vi);
            // p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)
            const T denom = std::sqrt(vi) / bc2_sqrt + eps;
            p[i] = p[i] + neg_step_size * m[i] / denom;
        }
    });
}

}  // namespace

// ---- SGD ---------------------------------------------------------------------------------------

SGD::SGD(std::vector<Tensor> params, SGDOptions options)
    : SGD(std::vector<ParamGroup>{ParamGroup{std::move(params), {}}}, options) {}

SGD::SGD(std::vector<ParamGroup> groups, SGDOptions defaults)
    : Optimizer(std::move(groups)), defaults_(defaults) {
    setup_groups();
}

void SGD::validate(const GroupOptions& options, const std::string& where) const {
    const auto& o = std::get<SGDOptions>(options);
    SOMA_CHECK_VALUE(!std::isnan(o.lr), "SGD: lr is required", where,
                     ": got nan, expected lr >= 0. Pass it, e.g. {.lr = 0.01}");
    check_ge0("SGD", "lr", o.lr, where);
    check_ge0("SGD", "momentum", o.momentum, where);
    check_ge0("SGD", "weight_decay", o.weight_decay, where);
    SOMA_CHECK_VALUE(!o.nesterov || (o.momentum > 0 && o.dampening == 0),
                     "SGD: nesterov momentum requires a momentum and zero dampening", where,
                     ": got momentum ", o.momentum, " and dampening ", o.dampening,
                     ", expected momentum > 0 and dampening == 0");
}

std::vector<std::string> SGD::state_names(const GroupOptions& options) const {
    if (std::get<SGDOptions>(options).momentum != 0) return {"momentum_buffer"};
    return {};
}

void SGD::update(const ParamGroup& group, const Tensor& param, const Tensor& grad, ParamState& st) {
    const auto& o = group.options_as<SGDOptions>();
    Tensor buf_t;
    bool first = false;
    if (o.momentum != 0) {
        first = !st.has("momentum_buffer");
        buf_t = st.get("momentum_buffer", param);
    }
    dispatch_floating(param.dtype(), [&](auto tag) {
        using T = decltype(tag);
        T* p = param.data_ptr<T>();
        const T* g = grad.data_ptr<T>();
        T* buf = buf_t.defined() ? buf_t.data_ptr<T>() : nullptr;
        const T wd = static_cast<T>(o.weight_decay);
        const T momentum = static_cast<T>(o.momentum);
        const T one_m_dampening = static_cast<T>(1 - o.dampening);
        const T neg_lr = static_cast<T>(-o.lr);
        const int64_t n = param.numel();
        if (buf && !first && !o.maximize && o.weight_decay == 0 && !o.nesterov) {
            // The usual case (momentum, nothing else) as one vectorisable pass; same formulas.
            cpu::parallel_for(n, int64_t{1} << 15, [&](int64_t lo, int64_t hi) {
#if defined(__x86_64__)
                if constexpr (std::is_same_v<T, float>)
                    if (has_avx2())
                        return sgd_momentum_plain_avx2(momentum, one_m_dampening, neg_lr, p, buf, g,
                                                       lo, hi);
#endif
                sgd_momentum_plain(momentum, one_m_dampening, neg_lr, p, buf, g, lo, hi);
            });
            return;
        }
        for (int64_t i = 0; i < n; ++i) {
            T d = o.maximize ? -g[i] : g[i];
            if (o.weight_decay != 0) d = d + wd * p[i];  // d = g + weight_decay * p
            if (buf) {
                // buf = d the first time, then buf = momentum buf + (1 - dampening) d
                const T b = first ? d : buf[i] * momentum + one_m_dampening * d;
                buf[i] = b;
                d = o.nesterov ? d + momentum * b : b;
            }
            p[i] = p[i] + neg_lr * d;  // p -= lr d
        }
    });
}

// ---- Adam --------------------------------------------------------------------------------------

Adam::Adam(std::vector<Tensor> params, AdamOptions options)
    : Adam(std::vector<ParamGroup>{ParamGroup{std::move(params), {}}}, options) {}

Adam::Adam(std::vector<ParamGroup> groups, AdamOptions defaults)
    : Optimizer(std::move(groups)), defaults_(defaults) {
    setup_groups();
}

void Adam::validate(const GroupOptions& options, const std::string& where) const {
    const auto& o = std::get<AdamOptions>(options);
    check_ge0("Adam", "lr", o.lr, where);
    check_ge0("Adam", "eps", o.eps, where);
    check_betas("Adam", o.betas, where);
    check_ge0("Adam", "weight_decay", o.weight_decay, where);
}

std::vector<std::string> Adam::state_names(const GroupOptions& options) const {
    if (std::get<AdamOptions>(options).amsgrad) return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
    return {"exp_avg", "exp_avg_sq"};
}

void Adam::update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
                  ParamState& st) {
    const auto& o = group.options_as<AdamOptions>();
    st.step += 1;
    Tensor m = st.get("exp_avg", param), v = st.get("exp_avg_sq", param);
    Tensor vmax = o.amsgrad ? st.get("max_exp_avg_sq", param) : Tensor();
    adam_update({o.lr, o.betas[0], o.betas[1], o.eps, o.weight_decay, o.amsgrad, o.maximize,
                 /*decoupled=*/false},
                param, grad, m, v, vmax, st.step);
}

// ---- AdamW -------------------------------------------------------------------------------------

AdamW::AdamW(std::vector<Tensor> params, AdamWOptions options)
    : AdamW(std::vector<ParamGroup>{ParamGroup{std::move(params), {}}}, options) {}

AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions defaults)
    : Optimizer(std::move(groups)), defaults_(defaults) {
    setup_groups();
}

void AdamW::validate(const GroupOptions& options, const std::string& where) const {
    const auto& o = std::get<AdamWOptions>(options);
    check_ge0("AdamW", "lr", o.lr, where);
    check_ge0("AdamW", "eps", o.eps, where);
    check_betas("AdamW", o.betas, where);
    check_ge0("AdamW", "weight_decay", o.weight_decay, where);
}

std::vector<std::string> AdamW::state_names(const GroupOptions& options) const {
    if (std::get<AdamWOptions>(options).amsgrad) return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
    return {"exp_avg", "exp_avg_sq"};
}

void AdamW::update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
                   ParamState& st) {
    const auto& o = group.options_as<AdamWOptions>();
    st.step += 1;
    Tensor m = st.get("exp_avg", param), v = st.get("exp_avg_sq", param);
    Tensor vmax = o.amsgrad ? st.get("max_exp_avg_sq", param) : Tensor();
    adam_update({o.lr, o.betas[0], o.betas[1], o.eps, o.weight_decay, o.amsgrad, o.maximize,
                 /*decoupled=*/true},
                param, grad, m, v, vmax, st.step);
}

// ---- RMSprop -----------------------------------------------------------------------------------

RMSprop::RMSprop(std::vector<Tensor> params, RMSpropOptions options)
    : RMSprop(std::vector<ParamGroup>{ParamGroup{std::move(params), {}}}, options) {}

RMSprop::RMSprop(std::vector<ParamGroup> groups, RMSpropOptions defaults)
    : Optimizer(std::move(groups)), defaults_(defaults) {
    setup_groups();
}

void RMSprop::validate(const GroupOptions& options, const std::string& where) const {
    const auto& o = std::get<RMSpropOptions>(options);
    check_ge0("RMSprop", "lr", o.lr, where);
    check_ge0("RMSprop", "eps", o.eps, where);
    check_ge0("RMSprop", "momentum", o.momentum, where);
    check_ge0("RMSprop", "weight_decay", o.weight_decay, where);
    check_ge0("RMSprop", "alpha", o.alpha, where);
}

std::vector<std::string> RMSprop::state_names(const GroupOptions& options) const {
    const auto& o = std::get<RMSpropOptions>(options);
    std::vector<std::string> names = {"square_avg"};
    if (o.momentum > 0) names.push_back("momentum_buffer");
    if (o.centered) names.push_back("grad_avg");
    return names;
}

void RMSprop::update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
                     ParamState& st) {
    const auto& o = group.options_as<RMSpropOptions>();
    st.step += 1;
    Tensor sq_t = st.get("square_avg", param);
    Tensor buf_t = o.momentum > 0 ? st.get("momentum_buffer", param) : Tensor();
    Tensor ga_t = o.centered ? st.get("grad_avg", param) : Tensor();
    dispatch_floating(param.dtype(), [&](auto tag) {
        using T = decltype(tag);
        T* p = param.data_ptr<T>();
        const T* g = grad.data_ptr<T>();
        T* sq = sq_t.data_ptr<T>();
        T* buf = buf_t.defined() ? buf_t.data_ptr<T>() : nullptr;
        T* ga = ga_t.defined() ? ga_t.data_ptr<T>() : nullptr;
        const T wd = static_cast<T>(o.weight_decay);
        const T alpha = static_cast<T>(o.alpha), one_m_alpha = static_cast<T>(1 - o.alpha);
        const T eps = static_cast<T>(o.eps);
        const T momentum = static_cast<T>(o.momentum);
        const T neg_lr = static_cast<T>(-o.lr);
        const int64_t n = param.numel();
        for (int64_t i = 0; i < n; ++i) {
            T gi = o.maximize ? -g[i] : g[i];
            if (o.weight_decay != 0) gi = gi + wd * p[i];
            sq[i] = sq[i] * alpha + one_m_alpha * gi * gi;  // sq = alpha sq + (1 - alpha) g^2
            T avg;
            if (ga) {
                // centered: avg = sqrt(sq - ga^2), ga = alpha ga + (1 - alpha) g
                ga[i] = ga[i] * alpha + one_m_alpha * gi;
                avg = std::sqrt(sq[i] + T(-1) * ga[i] * ga[i]);
            } else {
                avg = std::sqrt(sq[i]);
            }
            avg = avg + eps;
            if (buf) {
                buf[i] = buf[i] * momentum + gi / avg;  // buf = momentum buf + g / avg
                p[i] = p[i] + neg_lr * buf[i];
            } else {
                p[i] = p[i] + neg_lr * gi / avg;  // p -= lr g / avg
            }
        }
    });
}

// ---- Adagrad -----------------------------------------------------------------------------------

Adagrad::Adagrad(std::vector<Tensor> params, AdagradOptions options)
    : Adagrad(std::vector<ParamGroup>{ParamGroup{std::move(params), {}}}, options) {}

Adagrad::Adagrad(std::vector<ParamGroup> groups, AdagradOptions defaults)
    : Optimizer(std::move(groups)), defaults_(defaults) {
    setup_groups();
}

void Adagrad::validate(const GroupOptions& options, const std::string& where) const {
    const auto& o = std::get<AdagradOptions>(options);
    check_ge0("Adagrad", "lr", o.lr, where);
    check_ge0("Adagrad", "lr_decay", o.lr_decay, where);
    check_ge0("Adagrad", "weight_decay", o.weight_decay, where);
    check_ge0("Adagrad", "initial_accumulator_value", o.initial_accumulator_value, where);
    check_ge0("Adagrad", "eps", o.eps, where);
}

std::vector<std::string> Adagrad::state_names(const GroupOptions&) const { return {"sum"}; }

void Adagrad::init_state(const ParamGroup& group, const Tensor& param, ParamState& st) const {
    st.get("sum", param, group.options_as<AdagradOptions>().initial_accumulator_value);
}

void Adagrad::update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
                     ParamState& st) {
    const auto& o = group.options_as<AdagradOptions>();
    st.step += 1;
    const double clr = o.lr / (1 + (st.step - 1) * o.lr_decay);  // lr / (1 + (t - 1) lr_decay)
    Tensor sum_t = st.get("sum", param, o.initial_accumulator_value);
    dispatch_floating(param.dtype(), [&](auto tag) {
        using T = decltype(tag);
        T* p = param.data_ptr<T>();
        const T* g = grad.data_ptr<T>();
        T* sum = sum_t.data_ptr<T>();
        const T wd = static_cast<T>(o.weight_decay);
        const T eps = static_cast<T>(o.eps);
        const T neg_clr = static_cast<T>(-clr);
        const int64_t n = param.numel();
        for (int64_t i = 0; i < n; ++i) {
            T gi = o.maximize ? -g[i] : g[i];
            if (o.weight_decay != 0) gi = gi + wd * p[i];
            sum[i] = sum[i] + T(1) * gi * gi;         // sum += g^2
            const T std_i = std::sqrt(sum[i]) + eps;  // std = sqrt(sum) + eps
            p[i] = p[i] + neg_clr * gi / std_i;       // p -= clr g / std
        }
    });
}

}  // namespace soma::optim
