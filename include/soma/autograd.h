// soma/autograd.h — reverse-mode automatic differentiation.
//
// Define-by-run: ops on tensors that require grad record a graph; Tensor::backward() or
// autograd::grad() walks it in reverse topological order with an iterative engine (no recursion,
// so a 100,000-op chain is fine). Leaf rules, retain_graph, create_graph (double backward) and the
// in-place version check follow PyTorch.
//
//     auto w = soma::randn({3}).requires_grad_();
//     auto y = (w * w).sum();
//     auto [g] = soma::autograd::grad({y}, {w}, {}, /*create_graph=*/true);   // g = 2w
//     { soma::NoGradGuard ng; w.sub_(g * 0.1); }
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "soma/tensor.h"

namespace soma {

bool is_grad_enabled();
void set_grad_enabled(bool enabled);

/// RAII: disables recording in this scope (this thread).
class NoGradGuard {
  public:
    NoGradGuard() : prev_(is_grad_enabled()) { set_grad_enabled(false); }
    ~NoGradGuard() { set_grad_enabled(prev_); }
    NoGradGuard(const NoGradGuard&) = delete;
    NoGradGuard& operator=(const NoGradGuard&) = delete;

  private:
    bool prev_;
};
/// RAII: enables (or sets) grad mode in this scope.
class EnableGradGuard {
  public:
    explicit EnableGradGuard(bool enabled = true) : prev_(is_grad_enabled()) {
        set_grad_enabled(enabled);
    }
    ~EnableGradGuard() { set_grad_enabled(prev_); }
    EnableGradGuard(const EnableGradGuard&) = delete;
    EnableGradGuard& operator=(const EnableGradGuard&) = delete;

  private:
    bool prev_;
};

namespace autograd {

/// Anomaly mode: the first op whose forward or backward produces NaN or Inf raises an
/// AutogradError naming the op.
bool is_anomaly_enabled();
void set_anomaly_enabled(bool enabled);
class AnomalyGuard {
  public:
    explicit AnomalyGuard(bool enabled = true) : prev_(is_anomaly_enabled()) {
        set_anomaly_enabled(enabled);
    }
    ~AnomalyGuard() { set_anomaly_enabled(prev_); }
    AnomalyGuard(const AnomalyGuard&) = delete;
    AnomalyGuard& operator=(const AnomalyGuard&) = delete;

  private:
    bool prev_;
};

/// Accumulates d(sum outputs·grad_outputs)/d(leaf) into every reachable leaf's .grad().
/// grad_outputs may be empty when every output is a scalar (then ones are used).
void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs = {},
              bool retain_graph = false, bool create_graph = false);

/// Returns d(outputs)/d(inputs) without touching any .grad(). With create_graph the results are
/// themselves differentiable (double backward). An input the outputs do not depend on raises
/// unless allow_unused, in which case its gradient is an undefined Tensor.
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs = {}, bool create_graph = false,
                         std::optional<bool> retain_graph = std::nullopt,
                         bool allow_unused = false);

}  // namespace autograd
}  // namespace soma
