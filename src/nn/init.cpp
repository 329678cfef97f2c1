// torch.nn.init equivalents. All fills run without recording and keep the tensor's identity.
#include "soma/nn/init.h"

#include <cmath>

#include "soma/autograd.h"
#include "soma/ops.h"

namespace soma::nn::init {

double calculate_gain(const std::string& nl, double param) {
    if (nl == "linear" || nl == "conv1d" || nl == "conv2d" || nl == "conv_transpose2d" ||
        nl == "sigmoid" || nl == "identity")
        return 1.0;
    if (nl == "tanh") return 5.0 / 3.0;
    if (nl == "relu") return std::sqrt(2.0);
    if (nl == "leaky_relu") return std::sqrt(2.0 / (1 + param * param));
    if (nl == "selu") return 0.75;
    throw ValueError("calculate_gain: unsupported nonlinearity \"" + nl +
                     "\" (linear, conv1d, conv2d, sigmoid, tanh, relu, leaky_relu, selu)");
}

std::pair<int64_t, int64_t> fan_in_and_fan_out(const Tensor& t) {
    SOMA_CHECK_SHAPE(t.dim() >= 2,
                     "init: fan in and fan out can not be computed for a tensor "
                     "with fewer than 2 dimensions: shape ",
                     t.shape());
    int64_t receptive = 1;
    for (int64_t d = 2; d < t.dim(); ++d) receptive *= t.size(d);
    return {t.size(1) * receptive, t.size(0) * receptive};
}

Tensor& uniform_(Tensor& t, double lo, double hi) {
    NoGradGuard ng;
    t.uniform_(lo, hi);
    return t;
}
Tensor& normal_(Tensor& t, double mean, double std) {
    NoGradGuard ng;
    t.normal_(mean, std);
    return t;
}
Tensor& constant_(Tensor& t, double v) {
    NoGradGuard ng;
    t.fill_(v);
    return t;
}
Tensor& zeros_(Tensor& t) { return constant_(t, 0); }
Tensor& ones_(Tensor& t) { return constant_(t, 1); }

Tensor& xavier_uniform_(Tensor& t, double gain) {
    auto [fi, fo] = fan_in_and_fan_out(t);
    double a = gain * std::sqrt(6.0 / static_cast<double>(fi + fo));
    return uniform_(t, -a, a);
}
Tensor& xavier_normal_(Tensor& t, double gain) {
    auto [fi, fo] = fan_in_and_fan_out(t);
    return normal_(t, 0, gain * std::sqrt(2.0 / static_cast<double>(fi + fo)));
}

static double kaiming_std(const Tensor& t, const KaimingArgs& a) {
    auto [fi, fo] = fan_in_and_fan_out(t);
    int64_t fan = a.mode == FanMode::fan_in ? fi : fo;
    SOMA_CHECK_VALUE(fan > 0, "kaiming init: fan is zero for shape ", t.shape());
    return calculate_gain(a.nonlinearity, a.a) / std::sqrt(static_cast<double>(fan));
}
Tensor& kaiming_uniform_(Tensor& t, KaimingArgs a) {
    double bound = std::sqrt(3.0) * kaiming_std(t, a);
    return uniform_(t, -bound, bound);
}
Tensor& kaiming_normal_(Tensor& t, KaimingArgs a) { return normal_(t, 0, kaiming_std(t, a)); }

}  // namespace soma::nn::init
