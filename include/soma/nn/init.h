// soma/nn/init.h — parameter initialisation (torch.nn.init), in place, without recording.
//
//     soma::nn::init::kaiming_normal_(conv.weight, {.mode = FanMode::fan_out, .nonlinearity =
//     "relu"}); soma::nn::init::zeros_(conv.bias);
#pragma once

#include <string>

#include "soma/tensor.h"

namespace soma::nn::init {

enum class FanMode { fan_in, fan_out };

/// PyTorch's calculate_gain: linear/conv/sigmoid 1, tanh 5/3, relu √2, leaky_relu √(2/(1+a²)),
/// selu 3/4.
double calculate_gain(const std::string& nonlinearity, double param = 0.01);
/// fan_in = size(1) * receptive field, fan_out = size(0) * receptive field (needs >= 2 dims).
std::pair<int64_t, int64_t> fan_in_and_fan_out(const Tensor& t);

struct KaimingArgs {
    double a = 0;
    FanMode mode = FanMode::fan_in;
    std::string nonlinearity = "leaky_relu";
};
Tensor& uniform_(Tensor& t, double lo = 0, double hi = 1);
Tensor& normal_(Tensor& t, double mean = 0, double std = 1);
Tensor& constant_(Tensor& t, double value);
Tensor& zeros_(Tensor& t);
Tensor& ones_(Tensor& t);
Tensor& xavier_uniform_(Tensor& t, double gain = 1);
Tensor& xavier_normal_(Tensor& t, double gain = 1);
Tensor& kaiming_uniform_(Tensor& t, KaimingArgs args = {});
Tensor& kaiming_normal_(Tensor& t, KaimingArgs args = {});

}  // namespace soma::nn::init
