// soma::gradcheck / gradgradcheck themselves: they pass correct gradients, catch wrong ones
// (naming input and element), reject non-float64 inputs and never touch the caller's tensors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "soma/soma.h"

namespace soma {
namespace {

using ::testing::HasSubstr;
using Tensors = std::vector<Tensor>;

Tensor leaf(const std::vector<double>& v, const Shape& s) {
    return from_vector<double>(v, s).requires_grad_();
}

TEST(Gradcheck, PassesOnCorrectGradients) {
    Tensor x = leaf({0.3, -1.2, 0.7, 2.0, -0.4, 1.1}, {2, 3});
    EXPECT_EQ(gradcheck([](const Tensors& in) { return tanh(in[0]); }, {x}), "");
    EXPECT_EQ(gradcheck([](const Tensors& in) { return exp(in[0]) * in[0]; }, {x}), "");
    EXPECT_EQ(gradcheck([](const Tensors& in) { return sum(in[0] * in[0], {1}); }, {x}), "");
}

TEST(Gradcheck, SeveralInputsWithBroadcasting) {
    Tensor a = leaf({0.3, -1.2, 0.7, 2.0, -0.4, 1.1}, {2, 3});
    Tensor b = leaf({0.5, 1.5, -2.0}, {3});
    EXPECT_EQ(gradcheck([](const Tensors& in) { return in[0] * in[1] + in[1]; }, {a, b}), "");
}

TEST(Gradcheck, SkipsInputsThatDoNotRequireGrad) {
    Tensor a = leaf({0.3, -1.2, 0.7}, {3});
    Tensor idx = from_vector<int64_t>({1, 0, 2});  // e.g. indices: never perturbed
    Tensor c = from_vector<double>({1.0, 2.0, 3.0});
    EXPECT_EQ(gradcheck([](const Tensors& in) { return in[0] * in[2]; }, {a, idx, c}), "");
}

TEST(Gradcheck, CatchesAWrongGradientAndNamesTheInput) {
    Tensor a = leaf({0.3, -1.2, 0.7}, {3});
    Tensor b = leaf({0.5, 1.5, -2.0}, {3});
    // (Hooks only where recording: the numeric pass runs without grad.)
    // The hook doubles the gradient flowing into b's branch: d/db is wrong, d/da is right.
    auto fn = [](const Tensors& in) {
        Tensor b2 = in[1] * 1.0;
        if (b2.requires_grad()) b2.register_hook([](const Tensor& g) { return g * 2.0; });
        return in[0] + b2;
    };
    std::string err = gradcheck(fn, {a, b});
    EXPECT_THAT(err, HasSubstr("gradcheck: Jacobian mismatch for input 1"));
    EXPECT_THAT(err, HasSubstr("element 0"));
    EXPECT_THAT(err, HasSubstr("analytic 2"));
    EXPECT_THAT(err, HasSubstr("numeric 1"));
}

TEST(Gradcheck, RejectsNonFloat64Inputs) {
    Tensor x = from_vector<float>({1.f, 2.f}).requires_grad_();
    try {
        gradcheck([](const Tensors& in) { return in[0] * in[0]; }, {x});
        FAIL() << "no exception";
    } catch (const DTypeError& e) {
        EXPECT_THAT(e.what(), HasSubstr("gradcheck: input 0 (shape [2]) has dtype float32"));
        EXPECT_THAT(e.what(), HasSubstr("expected float64"));
    }
    EXPECT_THROW(gradgradcheck([](const Tensors& in) { return in[0] * in[0]; }, {x}), DTypeError);
}

TEST(Gradcheck, RejectsWhenNothingRequiresGrad) {
    Tensor x = from_vector<double>({1.0, 2.0});
    EXPECT_THROW(gradcheck([](const Tensors& in) { return in[0] * 2.0; }, {x}), ValueError);
}

TEST(Gradcheck, LeavesTheCallersTensorsAlone) {
    Tensor x = leaf({0.3, -1.2, 0.7}, {3});
    const auto before = x.to_vector<double>();
    const uint64_t version = x.version();
    EXPECT_EQ(gradcheck([](const Tensors& in) { return sin(in[0]); }, {x}), "");
    EXPECT_EQ(gradgradcheck([](const Tensors& in) { return sin(in[0]); }, {x}), "");
    EXPECT_EQ(x.to_vector<double>(), before);
    EXPECT_EQ(x.version(), version);
    EXPECT_FALSE(x.grad().defined());
}

TEST(Gradcheck, NonContiguousInput) {
    Tensor base = from_vector<double>({0.3, -1.2, 0.7, 2.0, -0.4, 1.1}, {2, 3});
    Tensor xt = base.t().requires_grad_();  // a [3, 2] leaf view with strides [1, 3]
    ASSERT_FALSE(xt.is_contiguous());
    EXPECT_EQ(gradcheck([](const Tensors& in) { return in[0] * in[0] * in[0]; }, {xt}), "");
}

TEST(Gradcheck, OutputThatIgnoresAnInput) {
    Tensor a = leaf({0.3, -1.2}, {2});
    Tensor b = leaf({0.5, 1.5}, {2});
    EXPECT_EQ(gradcheck([](const Tensors& in) { return exp(in[0]); }, {a, b}), "");
}

TEST(GradGradcheck, PassesOnCorrectSecondDerivatives) {
    Tensor x = leaf({0.3, -1.2, 0.7, 2.0}, {2, 2});
    Tensor y = leaf({0.5, -1.5}, {2});
    EXPECT_EQ(gradgradcheck([](const Tensors& in) { return tanh(in[0]); }, {x}), "");
    EXPECT_EQ(gradgradcheck([](const Tensors& in) { return in[0] * in[0] * in[1]; }, {x, y}), "");
    // Linear in the inputs: the gradient is constant, the second derivative 0.
    EXPECT_EQ(gradgradcheck([](const Tensors& in) { return in[0] + in[1]; }, {x, y}), "");
}

TEST(GradGradcheck, CatchesAWrongDoubleBackward) {
    Tensor x = leaf({0.3, -1.2, 0.7}, {3});
    // The hook adds (x - x.detach()): zero in value, so the first derivative stays right, but
    // its derivative with respect to x is 1, so the second derivative is wrong.
    auto fn = [](const Tensors& in) {
        Tensor x = in[0];
        Tensor y = x * x;
        if (y.requires_grad())
            y.register_hook([x](const Tensor& g) { return g + (x - x.detach()); });
        return y;
    };
    EXPECT_EQ(gradcheck(fn, {x}), "");
    std::string err = gradgradcheck(fn, {x});
    EXPECT_THAT(err, HasSubstr("gradgradcheck: Jacobian mismatch for input 0"));
    EXPECT_THAT(err, HasSubstr("gradient of input 0"));
}

}  // namespace
}  // namespace soma
