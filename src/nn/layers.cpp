// Standard layers: parameters, PyTorch default initialisation, input checks, forward.
#include "soma/nn/layers.h"

#include <cmath>
#include <sstream>

#include "soma/autograd.h"
#include "soma/nn/init.h"
#include "soma/ops.h"

namespace soma::nn {
namespace F = functional;

namespace {
std::string b2s(bool b) { return b ? "True" : "False"; }
std::string pair_str(const std::array<int64_t, 2>& a) {
    return "(" + std::to_string(a[0]) + ", " + std::to_string(a[1]) + ")";
}
// PyTorch's default for Linear/Conv: kaiming_uniform(a=√5) = U(±1/√fan_in), bias U(±1/√fan_in).
void default_init(Tensor& weight, Tensor& bias) {
    init::kaiming_uniform_(weight, {.a = std::sqrt(5.0)});
    if (bias.defined()) {
        auto [fan_in, fan_out] = init::fan_in_and_fan_out(weight);
        double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0;
        init::uniform_(bias, -bound, bound);
    }
}
void check_positive(int64_t v, const char* what, const char* layer) {
    SOMA_CHECK_VALUE(v > 0, layer, ": ", what, " must be positive, got ", v);
}
}  // namespace

// ---- Linear ------------------------------------------------------------------------------------
Linear::Linear(LinearOptions o) : options(o) {
    check_positive(o.in, "in", "Linear");
    check_positive(o.out, "out", "Linear");
    weight = register_parameter("weight", empty({o.out, o.in}));
    if (o.bias) bias = register_parameter("bias", empty({o.out}));
    reset_parameters();
}
void Linear::reset_parameters() { default_init(weight, bias); }
Tensor Linear::forward(const Tensor& x) {
    SOMA_CHECK_SHAPE(x.dim() >= 1 && x.size(-1) == options.in, "input has ",
                     x.dim() ? x.size(-1) : 0, " features, expected ", options.in, ": input shape ",
                     x.shape());
    return F::linear(x, weight, bias);
}
std::string Linear::extra_repr() const {
    return "in_features=" + std::to_string(options.in) +
           ", out_features=" + std::to_string(options.out) + ", bias=" + b2s(options.bias);
}

// ---- convolutions ------------------------------------------------------------------------------
Conv1d::Conv1d(Conv1dOptions o) : options(o) {
    check_positive(o.in, "in", "Conv1d");
    check_positive(o.out, "out", "Conv1d");
    SOMA_CHECK_VALUE(o.groups > 0 && o.in % o.groups == 0 && o.out % o.groups == 0, "Conv1d: in (",
                     o.in, ") and out (", o.out, ") must be divisible by groups (", o.groups, ")");
    weight = register_parameter("weight", empty({o.out, o.in / o.groups, o.kernel}));
    if (o.bias) bias = register_parameter("bias", empty({o.out}));
    default_init(weight, bias);
}
Tensor Conv1d::forward(const Tensor& x) {
    return F::conv1d(x, weight, bias,
                     {.stride = options.stride,
                      .padding = options.padding,
                      .dilation = options.dilation,
                      .groups = options.groups});
}
std::string Conv1d::extra_repr() const {
    std::ostringstream os;
    os << options.in << ", " << options.out << ", kernel_size=(" << options.kernel << ",), stride=("
       << options.stride << ",)";
    if (options.padding) os << ", padding=(" << options.padding << ",)";
    if (options.dilation != 1) os << ", dilation=(" << options.dilation << ",)";
    if (options.groups != 1) os << ", groups=" << options.groups;
    if (!options.bias) os << ", bias=False";
    return os.str();
}

Conv2d::Conv2d(Conv2dOptions o) : options(o) {
    check_positive(o.in, "in", "Conv2d");
    check_positive(o.out, "out", "Conv2d");
    SOMA_CHECK_VALUE(o.groups > 0 && o.in % o.groups == 0 && o.out % o.groups == 0, "Conv2d: in (",
                     o.in, ") and out (", o.out, ") must be divisible by groups (", o.groups, ")");
    weight =
        register_parameter("weight", empty({o.out, o.in / o.groups, o.kernel[0], o.kernel[1]}));
    if (o.bias) bias = register_parameter("bias", empty({o.out}));
    default_init(weight, bias);
}
Tensor Conv2d::forward(const Tensor& x) {
    return F::conv2d(x, weight, bias,
                     {.stride = options.stride,
                      .padding = options.padding,
                      .dilation = options.dilation,
                      .groups = options.groups});
}
std::string Conv2d::extra_repr() const {
    std::ostringstream os;
    os << options.in << ", " << options.out << ", kernel_size=" << pair_str(options.kernel)
       << ", stride=" << pair_str(options.stride);
    if (options.padding != std::array<int64_t, 2>{0, 0})
        os << ", padding=" << pair_str(options.padding);
    if (options.dilation != std::array<int64_t, 2>{1, 1})
        os << ", dilation=" << pair_str(options.dilation);
    if (options.groups != 1) os << ", groups=" << options.groups;
    if (!options.bias) os << ", bias=False";
    return os.str();
}

ConvTranspose2d::ConvTranspose2d(ConvTranspose2dOptions o) : options(o) {
    check_positive(o.in, "in", "ConvTranspose2d");
    check_positive(o.out, "out", "ConvTranspose2d");
    SOMA_CHECK_VALUE(o.groups > 0 && o.in % o.groups == 0 && o.out % o.groups == 0,
                     "ConvTranspose2d: in (", o.in, ") and out (", o.out,
                     ") must be divisible by groups (", o.groups, ")");
    weight =
        register_parameter("weight", empty({o.in, o.out / o.groups, o.kernel[0], o.kernel[1]}));
    if (o.bias) bias = register_parameter("bias", empty({o.out}));
    default_init(weight, bias);
}
Tensor ConvTranspose2d::forward(const Tensor& x) {
    return F::conv_transpose2d(x, weight, bias,
                               {.stride = options.stride,
                                .padding = options.padding,
                                .output_padding = options.output_padding,
                                .dilation = options.dilation,
                                .groups = options.groups});
}
std::string ConvTranspose2d::extra_repr() const {
    std::ostringstream os;
    os << options.in << ", " << options.out << ", kernel_size=" << pair_str(options.kernel)
       << ", stride=" << pair_str(options.stride);
    if (options.padding != std::array<int64_t, 2>{0, 0})
        os << ", padding=" << pair_str(options.padding);
    if (options.output_padding != std::array<int64_t, 2>{0, 0})
        os << ", output_padding=" << pair_str(options.output_padding);
    if (options.groups != 1) os << ", groups=" << options.groups;
    if (!options.bias) os << ", bias=False";
    return os.str();
}

// ---- pooling -----------------------------------------------------------------------------------
static std::string pool_repr(const F::Pool2dArgs& a) {
    auto st = a.stride.value_or(a.kernel);
    std::ostringstream os;
    os << "kernel_size=" << pair_str(a.kernel) << ", stride=" << pair_str(st)
       << ", padding=" << pair_str(a.padding);
    if (a.ceil_mode) os << ", ceil_mode=True";
    return os.str();
}
std::string MaxPool2d::extra_repr() const { return pool_repr(args); }
std::string AvgPool2d::extra_repr() const { return pool_repr(args); }
Tensor AdaptiveAvgPool2d::forward(const Tensor& x) {
    return F::adaptive_avg_pool2d(x, output_size);
}
std::string AdaptiveAvgPool2d::extra_repr() const { return "output_size=" + pair_str(output_size); }

// ---- normalisation -----------------------------------------------------------------------------
BatchNorm::BatchNorm(BatchNormOptions o, int spatial) : options(o), spatial_(spatial) {
    check_positive(o.features, "features", spatial == 2 ? "BatchNorm2d" : "BatchNorm1d");
    if (o.affine) {
        weight = register_parameter("weight", ones({o.features}));
        bias = register_parameter("bias", zeros({o.features}));
    }
    if (o.track_running_stats) {
        running_mean = register_buffer("running_mean", zeros({o.features}));
        running_var = register_buffer("running_var", ones({o.features}));
        num_batches_tracked =
            register_buffer("num_batches_tracked", zeros({}, {.dtype = DType::int64}));
    }
}
Tensor BatchNorm::forward(const Tensor& x) {
    if (spatial_ == 2)
        SOMA_CHECK_SHAPE(x.dim() == 4, "expected 4D input [N, C, H, W], got shape ", x.shape());
    else
        SOMA_CHECK_SHAPE(x.dim() == 2 || x.dim() == 3,
                         "expected 2D [N, C] or 3D [N, C, L] input, got shape ", x.shape());
    SOMA_CHECK_SHAPE(x.size(1) == options.features, "input has ", x.size(1), " channels, expected ",
                     options.features, ": input shape ", x.shape());
    bool use_batch = training_ || !options.track_running_stats;
    if (training_ && options.track_running_stats) {
        NoGradGuard ng;
        num_batches_tracked.add_(1);
    }
    return F::batch_norm(x, training_ ? running_mean : running_mean,
                         training_ ? running_var : running_var, weight, bias, use_batch,
                         options.momentum, options.eps);
}
std::string BatchNorm::extra_repr() const {
    std::ostringstream os;
    os << options.features << ", eps=" << options.eps << ", momentum=" << options.momentum
       << ", affine=" << b2s(options.affine)
       << ", track_running_stats=" << b2s(options.track_running_stats);
    return os.str();
}

LayerNorm::LayerNorm(LayerNormOptions o) : options(std::move(o)) {
    SOMA_CHECK_VALUE(!options.normalized_shape.empty(),
                     "LayerNorm: normalized_shape must not be empty");
    if (options.elementwise_affine) {
        weight = register_parameter("weight", ones(options.normalized_shape));
        bias = register_parameter("bias", zeros(options.normalized_shape));
    }
}
Tensor LayerNorm::forward(const Tensor& x) {
    return F::layer_norm(x, options.normalized_shape, weight, bias, options.eps);
}
std::string LayerNorm::extra_repr() const {
    std::ostringstream os;
    os << "(";
    for (size_t i = 0; i < options.normalized_shape.size(); ++i)
        os << options.normalized_shape[i]
           << (options.normalized_shape.size() == 1
                   ? ","
                   : (i + 1 < options.normalized_shape.size() ? ", " : ""));
    os << "), eps=" << options.eps << ", elementwise_affine=" << b2s(options.elementwise_affine);
    return os.str();
}

Dropout::Dropout(double p) : p(p) {
    SOMA_CHECK_VALUE(p >= 0 && p <= 1, "Dropout: probability has to be between 0 and 1, got ", p);
}
Tensor Dropout::forward(const Tensor& x) { return F::dropout(x, p, training_); }
std::string Dropout::extra_repr() const {
    std::ostringstream os;
    os << "p=" << p << ", inplace=False";
    return os.str();
}

std::string Flatten::extra_repr() const {
    return "start_dim=" + std::to_string(start) + ", end_dim=" + std::to_string(end);
}

Embedding::Embedding(EmbeddingOptions o) : options(o) {
    check_positive(o.num, "num", "Embedding");
    check_positive(o.dim, "dim", "Embedding");
    if (o.padding_idx) {
        int64_t p = *o.padding_idx;
        SOMA_CHECK_INDEX(p >= -o.num && p < o.num, "Embedding: padding_idx ", p,
                         " must be within num_embeddings (", o.num, ")");
        if (p < 0) options.padding_idx = p + o.num;
    }
    weight = register_parameter("weight", empty({o.num, o.dim}));
    init::normal_(weight);
    if (options.padding_idx) {
        NoGradGuard ng;
        weight.select(0, *options.padding_idx).zero_();
    }
}
Tensor Embedding::forward(const Tensor& idx) {
    SOMA_CHECK_DTYPE(idx.dtype() == DType::int64, "indices must be int64, got ", idx.dtype(),
                     " with shape ", idx.shape());
    return embedding(weight, idx, options.padding_idx.value_or(-1));
}
std::string Embedding::extra_repr() const {
    std::string s = std::to_string(options.num) + ", " + std::to_string(options.dim);
    if (options.padding_idx) s += ", padding_idx=" + std::to_string(*options.padding_idx);
    return s;
}

// ---- activations -------------------------------------------------------------------------------
Tensor ReLU::forward(const Tensor& x) { return relu(x); }
Tensor LeakyReLU::forward(const Tensor& x) { return leaky_relu(x, negative_slope); }
std::string LeakyReLU::extra_repr() const {
    std::ostringstream os;
    os << "negative_slope=" << negative_slope;
    return os.str();
}
Tensor Sigmoid::forward(const Tensor& x) { return sigmoid(x); }
Tensor Tanh::forward(const Tensor& x) { return tanh(x); }
Tensor GELU::forward(const Tensor& x) { return gelu(x, approximate); }
std::string GELU::extra_repr() const { return "approximate='" + approximate + "'"; }
Tensor SiLU::forward(const Tensor& x) { return silu(x); }
Tensor Softmax::forward(const Tensor& x) { return softmax(x, dim); }
std::string Softmax::extra_repr() const { return "dim=" + std::to_string(dim); }
Tensor LogSoftmax::forward(const Tensor& x) { return log_softmax(x, dim); }
std::string LogSoftmax::extra_repr() const { return "dim=" + std::to_string(dim); }

}  // namespace soma::nn
