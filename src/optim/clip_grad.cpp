// Gradient clipping, as torch.nn.utils.clip_grad_norm_ / clip_grad_value_ (PyTorch 1.13).
//
// The norms are direct loops accumulated in double: per-tensor norms first, then the norm of
// those norms (PyTorch's torch.norm(torch.stack([torch.norm(g) ...]))). The scale factor is
// applied to every grad even when it is 1, as PyTorch does.
#include "soma/optim/clip_grad.h"

#include <algorithm>
#include <cmath>

#include "core/dispatch.h"
#include "core/tensor_impl.h"
#include "soma/autograd.h"

namespace soma::optim {

namespace {

std::vector<Tensor> grads_of(const std::vector<Tensor>& params, const char* who) {
    std::vector<Tensor> grads;
    for (size_t i = 0; i < params.size(); ++i) {
        SOMA_CHECK_VALUE(params[i].defined(), who, ": tensor ", i, " is undefined");
        Tensor g = params[i].grad();
        if (!g.defined()) continue;
        SOMA_CHECK_DTYPE(g.is_floating_point(), who, ": grad of tensor ", i, " has dtype ",
                         g.dtype(), ", expected a floating dtype");
        SOMA_CHECK_T(g.device() == Device::cpu(), DeviceError, who, ": grad of tensor ", i,
                     " is on ", g.device(), ", expected cpu");
        grads.push_back(g);
    }
    return grads;
}

// Applies f(T* data, n) to a contiguous version of g and writes it back; bumps the version.
template <class F>
void modify_in_place(const Tensor& g, F&& f) {
    Tensor c = g.is_contiguous() ? g : g.contiguous();
    dispatch_floating(c.dtype(), [&](auto tag) {
        using T = decltype(tag);
        f(c.data_ptr<T>(), c.numel());
    });
    if (c.is_same(g)) {
        ++g.impl()->storage->version;
    } else {
        Tensor dst = g;
        dst.copy_(c);  // bumps the version
    }
}

}  // namespace

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type,
                       bool error_if_nonfinite) {
    constexpr const char* who = "clip_grad_norm_";
    SOMA_CHECK_VALUE(max_norm >= 0, who, ": invalid max_norm: got ", max_norm,
                     ", expected max_norm >= 0");
    SOMA_CHECK_VALUE(norm_type > 0, who, ": invalid norm_type: got ", norm_type,
                     ", expected a positive number or soma::optim::kInfNorm");
    NoGradGuard no_grad;
    std::vector<Tensor> grads = grads_of(params, who);
    if (grads.empty()) return 0.0;
    const bool inf_norm = std::isinf(norm_type);

    // Per-tensor norms.
    std::vector<double> norms;
    for (auto& g0 : grads) {
        Tensor g = g0.is_contiguous() ? g0 : g0.contiguous();
        double acc = 0;
        dispatch_floating(g.dtype(), [&](auto tag) {
            using T = decltype(tag);
            const T* d = g.data_ptr<T>();
            const int64_t n = g.numel();
            if (inf_norm) {
                for (int64_t i = 0; i < n; ++i) {
                    const double a = std::abs(static_cast<double>(d[i]));
                    if (std::isnan(a)) acc = a;
                    if (a > acc) acc = a;
                }
            } else if (norm_type == 2) {
                for (int64_t i = 0; i < n; ++i) acc += static_cast<double>(d[i]) * d[i];
            } else if (norm_type == 1) {
                for (int64_t i = 0; i < n; ++i) acc += std::abs(static_cast<double>(d[i]));
            } else {
                for (int64_t i = 0; i < n; ++i)
                    acc += std::pow(std::abs(static_cast<double>(d[i])), norm_type);
            }
        });
        if (inf_norm || norm_type == 1)
            norms.push_back(acc);
        else if (norm_type == 2)
            norms.push_back(std::sqrt(acc));
        else
            norms.push_back(std::pow(acc, 1.0 / norm_type));
    }

    // The norm of the norms.
    double total = 0;
    if (inf_norm) {
        for (double v : norms) total = (std::isnan(v) || v > total) ? v : total;
    } else if (norm_type == 2) {
        for (double v : norms) total += v * v;
        total = std::sqrt(total);
    } else if (norm_type == 1) {
        for (double v : norms) total += v;
    } else {
        for (double v : norms) total += std::pow(v, norm_type);
        total = std::pow(total, 1.0 / norm_type);
    }
    SOMA_CHECK_VALUE(!error_if_nonfinite || std::isfinite(total), who, ": the total norm of order ",
                     norm_type, " for gradients is non-finite: got ", total,
                     ", expected a finite value. Pass error_if_nonfinite = false to clip anyway.");

    // coef = min(1, max_norm / (total + 1e-6))
    const double coef = std::min(max_norm / (total + 1e-6), 1.0);
    for (auto& g : grads) {
        modify_in_place(g, [coef](auto* d, int64_t n) {
            using T = std::remove_pointer_t<decltype(d)>;
            const T c = static_cast<T>(coef);
            for (int64_t i = 0; i < n; ++i) d[i] = d[i] * c;
        });
    }
    return total;
}

void clip_grad_value_(const std::vector<Tensor>& params, double clip_value) {
    constexpr const char* who = "clip_grad_value_";
    SOMA_CHECK_VALUE(clip_value >= 0, who, ": invalid clip_value: got ", clip_value,
                     ", expected clip_value >= 0");
    NoGradGuard no_grad;
    for (auto& g : grads_of(params, who)) {
        modify_in_place(g, [clip_value](auto* d, int64_t n) {
            using T = std::remove_pointer_t<decltype(d)>;
            const T hi = static_cast<T>(clip_value), lo = -hi;
            // clamp(g, -v, v); NaN stays NaN as in torch.clamp
            for (int64_t i = 0; i < n; ++i) d[i] = d[i] < lo ? lo : (d[i] > hi ? hi : d[i]);
        });
    }
}

}  // namespace soma::optim
