// soma/nn/loss.h — loss modules (thin wrappers over nn::functional with PyTorch's options).
//
//     soma::nn::CrossEntropyLoss ce({.label_smoothing = 0.1});
//     auto loss = ce(logits, labels);   // logits [N, C], labels int64 [N]
#pragma once

#include "soma/nn/functional.h"

namespace soma::nn {

using functional::Reduction;

/// Base: loss(input, target) -> Tensor (0-dim unless reduction none).
class Loss {
  public:
    virtual ~Loss() = default;
    virtual Tensor operator()(const Tensor& input, const Tensor& target) const = 0;
    virtual std::string type_name() const = 0;
};

class MSELoss : public Loss {
  public:
    explicit MSELoss(Reduction r = Reduction::mean) : reduction(r) {}
    Tensor operator()(const Tensor& i, const Tensor& t) const override {
        return functional::mse_loss(i, t, reduction);
    }
    std::string type_name() const override { return "MSELoss"; }
    Reduction reduction;
};
class L1Loss : public Loss {
  public:
    explicit L1Loss(Reduction r = Reduction::mean) : reduction(r) {}
    Tensor operator()(const Tensor& i, const Tensor& t) const override {
        return functional::l1_loss(i, t, reduction);
    }
    std::string type_name() const override { return "L1Loss"; }
    Reduction reduction;
};
class SmoothL1Loss : public Loss {
  public:
    explicit SmoothL1Loss(Reduction r = Reduction::mean, double beta = 1.0)
        : reduction(r), beta(beta) {}
    Tensor operator()(const Tensor& i, const Tensor& t) const override {
        return functional::smooth_l1_loss(i, t, reduction, beta);
    }
    std::string type_name() const override { return "SmoothL1Loss"; }
    Reduction reduction;
    double beta;
};
class HuberLoss : public Loss {
  public:
    explicit HuberLoss(Reduction r = Reduction::mean, double delta = 1.0)
        : reduction(r), delta(delta) {}
    Tensor operator()(const Tensor& i, const Tensor& t) const override {
        return functional::huber_loss(i, t, reduction, delta);
    }
    std::string type_name() const override { return "HuberLoss"; }
    Reduction reduction;
    double delta;
};
class CrossEntropyLoss : public Loss {
  public:
    explicit CrossEntropyLoss(functional::CrossEntropyArgs a = {}) : args(std::move(a)) {}
    Tensor operator()(const Tensor& i, const Tensor& t) const override {
        return functional::cross_entropy(i, t, args);
    }
    std::string type_name() const override { return "CrossEntropyLoss"; }
    functional::CrossEntropyArgs args;
};
class NLLLoss : public Loss {
  public:
    explicit NLLLoss(functional::CrossEntropyArgs a = {}) : args(std::move(a)) {}
    Tensor operator()(const Tensor& i, const Tensor& t) const override {
        return functional::nll_loss(i, t, args);
    }
    std::string type_name() const override { return "NLLLoss"; }
    functional::CrossEntropyArgs args;
};
class BCELoss : public Loss {
  public:
    explicit BCELoss(Tensor weight = {}, Reduction r = Reduction::mean)
        : weight(std::move(weight)), reduction(r) {}
    Tensor operator()(const Tensor& i, const Tensor& t) const override {
        return functional::binary_cross_entropy(i, t, weight, reduction);
    }
    std::string type_name() const override { return "BCELoss"; }
    Tensor weight;
    Reduction reduction;
};
class BCEWithLogitsLoss : public Loss {
  public:
    explicit BCEWithLogitsLoss(Tensor weight = {}, Tensor pos_weight = {},
                               Reduction r = Reduction::mean)
        : weight(std::move(weight)), pos_weight(std::move(pos_weight)), reduction(r) {}
    Tensor operator()(const Tensor& i, const Tensor& t) const override {
        return functional::binary_cross_entropy_with_logits(i, t, weight, pos_weight, reduction);
    }
    std::string type_name() const override { return "BCEWithLogitsLoss"; }
    Tensor weight, pos_weight;
    Reduction reduction;
};
class KLDivLoss : public Loss {
  public:
    explicit KLDivLoss(Reduction r = Reduction::mean, bool log_target = false)
        : reduction(r), log_target(log_target) {}
    Tensor operator()(const Tensor& i, const Tensor& t) const override {
        return functional::kl_div(i, t, reduction, log_target);
    }
    std::string type_name() const override { return "KLDivLoss"; }
    Reduction reduction;
    bool log_target;
};

}  // namespace soma::nn
