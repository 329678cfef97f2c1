// soma/nn/layers.h — the standard layers, with PyTorch's parameter names, shapes and default
// initialisation. Options are aggregates: Linear({.in = 784, .out = 256, .bias = true}).
//
// Shapes: Linear [..., in] -> [..., out]; Conv2d [N, C, H, W] -> [N, O, H', W'];
// BatchNorm2d [N, C, H, W]; Embedding int64 [...] -> [..., dim].
#pragma once

#include <array>
#include <optional>

#include "soma/nn/functional.h"
#include "soma/nn/module.h"

namespace soma::nn {

struct LinearOptions {
    int64_t in = 0, out = 0;
    bool bias = true;
};
class Linear : public Module {
  public:
    explicit Linear(LinearOptions o);
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "Linear"; }
    std::string extra_repr() const override;
    void reset_parameters();
    LinearOptions options;
    Tensor weight, bias;  // [out, in], [out]
};

struct Conv1dOptions {
    int64_t in = 0, out = 0, kernel = 1, stride = 1, padding = 0, dilation = 1, groups = 1;
    bool bias = true;
};
class Conv1d : public Module {
  public:
    explicit Conv1d(Conv1dOptions o);
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "Conv1d"; }
    std::string extra_repr() const override;
    Conv1dOptions options;
    Tensor weight, bias;  // [out, in/groups, k], [out]
};

struct Conv2dOptions {
    int64_t in = 0, out = 0;
    std::array<int64_t, 2> kernel{1, 1}, stride{1, 1}, padding{0, 0}, dilation{1, 1};
    int64_t groups = 1;
    bool bias = true;
};
class Conv2d : public Module {
  public:
    explicit Conv2d(Conv2dOptions o);
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "Conv2d"; }
    std::string extra_repr() const override;
    Conv2dOptions options;
    Tensor weight, bias;  // [out, in/groups, kh, kw], [out]
};

struct ConvTranspose2dOptions {
    int64_t in = 0, out = 0;
    std::array<int64_t, 2> kernel{1, 1}, stride{1, 1}, padding{0, 0}, output_padding{0, 0},
        dilation{1, 1};
    int64_t groups = 1;
    bool bias = true;
};
class ConvTranspose2d : public Module {
  public:
    explicit ConvTranspose2d(ConvTranspose2dOptions o);
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "ConvTranspose2d"; }
    std::string extra_repr() const override;
    ConvTranspose2dOptions options;
    Tensor weight, bias;  // [in, out/groups, kh, kw], [out]
};

class MaxPool2d : public Module {
  public:
    explicit MaxPool2d(functional::Pool2dArgs a) : args(a) {}
    Tensor forward(const Tensor& x) override { return functional::max_pool2d(x, args); }
    std::string type_name() const override { return "MaxPool2d"; }
    std::string extra_repr() const override;
    functional::Pool2dArgs args;
};
class AvgPool2d : public Module {
  public:
    explicit AvgPool2d(functional::Pool2dArgs a) : args(a) {}
    Tensor forward(const Tensor& x) override { return functional::avg_pool2d(x, args); }
    std::string type_name() const override { return "AvgPool2d"; }
    std::string extra_repr() const override;
    functional::Pool2dArgs args;
};
class AdaptiveAvgPool2d : public Module {
  public:
    explicit AdaptiveAvgPool2d(std::array<int64_t, 2> out) : output_size(out) {}
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "AdaptiveAvgPool2d"; }
    std::string extra_repr() const override;
    std::array<int64_t, 2> output_size;
};

struct BatchNormOptions {
    int64_t features = 0;
    double eps = 1e-5, momentum = 0.1;
    bool affine = true, track_running_stats = true;
};
/// BatchNorm1d ([N, C] or [N, C, L]) and BatchNorm2d ([N, C, H, W]) differ only in the rank
/// they accept. Buffers: running_mean, running_var, num_batches_tracked (int64).
class BatchNorm : public Module {
  public:
    BatchNorm(BatchNormOptions o, int spatial_dims);
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return spatial_ == 2 ? "BatchNorm2d" : "BatchNorm1d"; }
    std::string extra_repr() const override;
    BatchNormOptions options;
    Tensor weight, bias, running_mean, running_var, num_batches_tracked;

  private:
    int spatial_;
};
class BatchNorm1d : public BatchNorm {
  public:
    explicit BatchNorm1d(BatchNormOptions o) : BatchNorm(o, 1) {}
};
class BatchNorm2d : public BatchNorm {
  public:
    explicit BatchNorm2d(BatchNormOptions o) : BatchNorm(o, 2) {}
};

struct LayerNormOptions {
    Shape normalized_shape;
    double eps = 1e-5;
    bool elementwise_affine = true;
};
class LayerNorm : public Module {
  public:
    explicit LayerNorm(LayerNormOptions o);
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "LayerNorm"; }
    std::string extra_repr() const override;
    LayerNormOptions options;
    Tensor weight, bias;
};

class Dropout : public Module {
  public:
    explicit Dropout(double p = 0.5);
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "Dropout"; }
    std::string extra_repr() const override;
    double p;
};

class Flatten : public Module {
  public:
    explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1)
        : start(start_dim), end(end_dim) {}
    Tensor forward(const Tensor& x) override { return x.flatten(start, end); }
    std::string type_name() const override { return "Flatten"; }
    std::string extra_repr() const override;
    int64_t start, end;
};

struct EmbeddingOptions {
    int64_t num = 0, dim = 0;
    std::optional<int64_t> padding_idx = std::nullopt;
};
/// y[..., :] = weight[indices[...], :]. When the rows go straight into a Linear or an RNN layer
/// and the table has at most a quarter as many rows as were looked up (a character model), that
/// layer computes (weight Wᵀ + b)[indices] instead of the full product, with the same values up
/// to summation order (SOMA_EMBEDDING_FOLD=0 turns this off).
class Embedding : public Module {
  public:
    explicit Embedding(EmbeddingOptions o);
    Tensor forward(const Tensor& indices) override;
    std::string type_name() const override { return "Embedding"; }
    std::string extra_repr() const override;
    EmbeddingOptions options;
    Tensor weight;  // [num, dim], N(0, 1) init, padding row zero
};

class Identity : public Module {
  public:
    Tensor forward(const Tensor& x) override { return x; }
    std::string type_name() const override { return "Identity"; }
};

// ---- activations ---------------------------------------------------------------------------
class ReLU : public Module {
  public:
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "ReLU"; }
};
class LeakyReLU : public Module {
  public:
    explicit LeakyReLU(double slope = 0.01) : negative_slope(slope) {}
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "LeakyReLU"; }
    std::string extra_repr() const override;
    double negative_slope;
};
class Sigmoid : public Module {
  public:
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "Sigmoid"; }
};
class Tanh : public Module {
  public:
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "Tanh"; }
};
class GELU : public Module {
  public:
    explicit GELU(std::string approximate = "none") : approximate(std::move(approximate)) {}
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "GELU"; }
    std::string extra_repr() const override;
    std::string approximate;
};
class SiLU : public Module {
  public:
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "SiLU"; }
};
class Softmax : public Module {
  public:
    explicit Softmax(int64_t dim) : dim(dim) {}
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "Softmax"; }
    std::string extra_repr() const override;
    int64_t dim;
};
class LogSoftmax : public Module {
  public:
    explicit LogSoftmax(int64_t dim) : dim(dim) {}
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "LogSoftmax"; }
    std::string extra_repr() const override;
    int64_t dim;
};

}  // namespace soma::nn
