// soma/nn/functional.h — stateless neural-network ops (torch.nn.functional).
//
// Layouts are PyTorch's: NCHW images, NCL sequences, weights [out, in/groups, kh, kw].
// Every op checks its inputs (errors name the op, the shapes and a hint) and records its
// backward; conv, pooling, batch norm and softmax + cross-entropy have fused backward kernels.
//
//     namespace F = soma::nn::functional;
//     auto y = F::conv2d(x, w, b, {.stride = {2, 2}, .padding = {1, 1}});
//     auto loss = F::cross_entropy(logits, labels, {.label_smoothing = 0.1});
#pragma once

#include <array>
#include <optional>
#include <vector>

#include "soma/tensor.h"

namespace soma::nn::functional {

/// y = x W^T + b;  x [..., in], W [out, in], b [out] (optional).
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});

struct Conv1dArgs {
    int64_t stride = 1, padding = 0, dilation = 1, groups = 1;
};
struct Conv2dArgs {
    std::array<int64_t, 2> stride{1, 1}, padding{0, 0}, dilation{1, 1};
    int64_t groups = 1;
};
struct ConvTranspose2dArgs {
    std::array<int64_t, 2> stride{1, 1}, padding{0, 0}, output_padding{0, 0}, dilation{1, 1};
    int64_t groups = 1;
};
/// x [N, C, L] (or [C, L]), w [O, C/groups, K] -> [N, O, L'].
Tensor conv1d(const Tensor& x, const Tensor& w, const Tensor& bias = {}, Conv1dArgs args = {});
/// x [N, C, H, W] (or [C, H, W]), w [O, C/groups, kh, kw] -> [N, O, H', W'].
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias = {}, Conv2dArgs args = {});
/// x [N, C, H, W], w [C, O/groups, kh, kw] -> [N, O, H', W'].
Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& bias = {},
                        ConvTranspose2dArgs args = {});

struct Pool2dArgs {
    std::array<int64_t, 2> kernel{2, 2};
    std::optional<std::array<int64_t, 2>> stride{};  // default: kernel
    std::array<int64_t, 2> padding{0, 0}, dilation{1, 1};
    bool ceil_mode = false;
    bool count_include_pad = true;  // avg_pool2d only
};
Tensor max_pool2d(const Tensor& x, Pool2dArgs args);
Tensor avg_pool2d(const Tensor& x, Pool2dArgs args);
Tensor adaptive_avg_pool2d(const Tensor& x, std::array<int64_t, 2> output_size);

/// Training: normalises with batch statistics over all dims but 1 and updates the running
/// statistics in place (running = (1 - momentum) running + momentum batch; unbiased variance).
/// Eval: uses the running statistics. weight/bias/running stats may be undefined.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum = 0.1,
                  double eps = 1e-5);
/// Normalises over the trailing `normalized_shape` dims.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = {},
                  const Tensor& bias = {}, double eps = 1e-5);
/// Zeroes elements with probability p and scales the rest by 1/(1-p) when training.
Tensor dropout(const Tensor& x, double p = 0.5, bool training = true);

// ---- losses ----------------------------------------------------------------------------------
enum class Reduction { none, mean, sum, batchmean };

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction r = Reduction::mean);
Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction r = Reduction::mean);
Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, Reduction r = Reduction::mean,
                      double beta = 1.0);
Tensor huber_loss(const Tensor& input, const Tensor& target, Reduction r = Reduction::mean,
                  double delta = 1.0);

struct CrossEntropyArgs {
    Tensor weight = {};  // [C] class weights (optional)
    int64_t ignore_index = -100;
    Reduction reduction = Reduction::mean;
    double label_smoothing = 0.0;
};
/// input [N, C] or [N, C, d1, ...] logits; target int64 class indices [N, d1, ...] or float
/// class probabilities of input's shape. Fused log-softmax + NLL.
Tensor cross_entropy(const Tensor& input, const Tensor& target, const CrossEntropyArgs& args = {});
/// input: log-probabilities [N, C, ...]; target int64.
Tensor nll_loss(const Tensor& input, const Tensor& target, const CrossEntropyArgs& args = {});
Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight = {},
                            Reduction r = Reduction::mean);
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                        const Tensor& weight = {}, const Tensor& pos_weight = {},
                                        Reduction r = Reduction::mean);
/// input: log-probabilities; target: probabilities (or log-probabilities with log_target).
Tensor kl_div(const Tensor& input, const Tensor& target, Reduction r = Reduction::mean,
              bool log_target = false);

}  // namespace soma::nn::functional
