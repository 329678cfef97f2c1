// float32 convolution on oneDNN (src/nn/conv_dnnl.cpp) against the im2col + GEMM reference in
// float32 and float64: conv2d and conv_transpose2d forward, input and weight (and bias)
// gradients, and the weight-gradient op's own backward (double backward), on geometries with
// stride, padding, dilation, groups (depthwise too), non-square shapes, output_padding and
// batch 1. The reference path is forced with the internal soma::conv::set_use_dnnl.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "soma/nn/functional.h"
#include "soma/soma.h"

namespace soma::conv {  // internal (src/nn/conv_dnnl.h)
void set_use_dnnl(bool on);
bool use_dnnl();
uint64_t dnnl_conv_calls();
}  // namespace soma::conv

namespace soma {
namespace {

namespace F = soma::nn::functional;
using Arr2 = std::array<int64_t, 2>;
using Tensors = std::vector<Tensor>;

struct Case {
    std::string name;
    Shape x, w;  // w as the op takes it ([O, C/g, kh, kw]; transposed: [C, O/g, kh, kw])
    Arr2 stride{1, 1}, padding{0, 0}, dilation{1, 1}, output_padding{0, 0};
    int64_t groups = 1;
    bool transposed = false, bias = true;
};

// Restores the routing when a test ends.
class DnnlGuard {
  public:
    explicit DnnlGuard(bool on) : prev_(conv::use_dnnl()) { conv::set_use_dnnl(on); }
    ~DnnlGuard() { conv::set_use_dnnl(prev_); }
    DnnlGuard(const DnnlGuard&) = delete;
    DnnlGuard& operator=(const DnnlGuard&) = delete;

  private:
    bool prev_;
};

Tensor apply(const Case& c, const Tensor& x, const Tensor& w, const Tensor& b) {
    if (c.transposed)
        return F::conv_transpose2d(x, w, b,
                                   {.stride = c.stride,
                                    .padding = c.padding,
                                    .output_padding = c.output_padding,
                                    .dilation = c.dilation,
                                    .groups = c.groups});
    return F::conv2d(
        x, w, b,
        {.stride = c.stride, .padding = c.padding, .dilation = c.dilation, .groups = c.groups});
}

// {y, dx, dw, db (when bias), ddy} in float64: y = op(x, w, b), the gradients for the upstream
// gradient gy, and d<dw, v>/d(gy) (the weight-gradient op's backward, i.e. conv again).
std::vector<std::vector<double>> run(const Case& c, DType dt, bool dnnl, uint64_t seed) {
    DnnlGuard guard(dnnl);
    manual_seed(seed);
    const int64_t out_ch = c.transposed ? c.w[1] * c.groups : c.w[0];
    Tensor x = randn(c.x, {.dtype = DType::float64}).to(dt).requires_grad_();
    Tensor w = randn(c.w, {.dtype = DType::float64}).to(dt).requires_grad_();
    Tensor b =
        c.bias ? randn({out_ch}, {.dtype = DType::float64}).to(dt).requires_grad_() : Tensor();
    Tensor y = apply(c, x, w, b);
    Tensor gy = randn(y.shape(), {.dtype = DType::float64}).to(dt).requires_grad_();
    Tensors in = {x, w};
    if (c.bias) in.push_back(b);
    Tensors g = autograd::grad({y}, in, {gy}, /*create_graph=*/true);
    // d<dw, v>/d(gy) runs the weight-gradient op's backward (a forward conv of x with v).
    Tensor v = randn(c.w, {.dtype = DType::float64}).to(dt);
    Tensor ddy = autograd::grad({(g[1] * v).sum()}, {gy})[0];
    std::vector<std::vector<double>> out = {y.to_vector<double>()};
    for (const Tensor& t : g) out.push_back(t.to_vector<double>());
    out.push_back(ddy.to_vector<double>());
    return out;
}

// max |a - b| <= tol * max(1, max |b|), per output.
void expect_close(const std::vector<std::vector<double>>& a,
                  const std::vector<std::vector<double>>& b, double tol, const std::string& what) {
    static const char* names[] = {"y", "dx", "dw", "db", "ddy"};
    ASSERT_EQ(a.size(), b.size()) << what;
    for (size_t k = 0; k < a.size(); ++k) {
        const std::string name = k + 1 == a.size() ? "ddy" : names[k];
        ASSERT_EQ(a[k].size(), b[k].size()) << what << " " << name;
        double err = 0, scale = 1;
        for (size_t i = 0; i < a[k].size(); ++i) {
            err = std::max(err, std::abs(a[k][i] - b[k][i]));
            scale = std::max(scale, std::abs(b[k][i]));
        }
        EXPECT_LE(err, tol * scale) << what << ": " << name << " (max |ref| " << scale << ")";
    }
}

std::vector<Case> cases() {
    std::vector<Case> v = {
        // The workloads of `soma bench` (cnn, gan), at batch 2 and 1.
        {.name = "cnn1", .x = {2, 1, 28, 28}, .w = {32, 1, 3, 3}, .padding = {1, 1}},
        {.name = "cnn2", .x = {2, 32, 14, 14}, .w = {64, 32, 3, 3}, .padding = {1, 1}},
        {.name = "cnn2_b1", .x = {1, 32, 14, 14}, .w = {64, 32, 3, 3}, .padding = {1, 1}},
        {.name = "gan_g1",
         .x = {2, 128, 7, 7},
         .w = {128, 64, 4, 4},
         .stride = {2, 2},
         .padding = {1, 1},
         .transposed = true},
        {.name = "gan_g2",
         .x = {2, 64, 14, 14},
         .w = {64, 1, 4, 4},
         .stride = {2, 2},
         .padding = {1, 1},
         .transposed = true},
        {.name = "gan_d1",
         .x = {2, 1, 28, 28},
         .w = {64, 1, 4, 4},
         .stride = {2, 2},
         .padding = {1, 1},
         .bias = false},
        {.name = "gan_d2",
         .x = {2, 64, 14, 14},
         .w = {128, 64, 4, 4},
         .stride = {2, 2},
         .padding = {1, 1},
         .bias = false},
        // Stride, padding, dilation, non-square.
        {.name = "plain", .x = {3, 4, 9, 9}, .w = {5, 4, 3, 3}},
        {.name = "stride2_odd", .x = {2, 3, 9, 8}, .w = {4, 3, 3, 3}, .stride = {2, 2}},
        {.name = "stride_unused_rows", .x = {2, 3, 8, 10}, .w = {4, 3, 3, 2}, .stride = {3, 2}},
        {.name = "nonsquare",
         .x = {2, 3, 7, 12},
         .w = {6, 3, 2, 5},
         .stride = {1, 2},
         .padding = {0, 2}},
        {.name = "dilation",
         .x = {2, 3, 11, 10},
         .w = {4, 3, 3, 3},
         .padding = {2, 1},
         .dilation = {2, 3}},
        {.name = "big_pad", .x = {1, 2, 5, 5}, .w = {3, 2, 3, 3}, .padding = {3, 3}},
        {.name = "1x1", .x = {2, 8, 5, 6}, .w = {16, 8, 1, 1}, .bias = false},
        {.name = "kernel_is_input", .x = {2, 3, 4, 4}, .w = {5, 3, 4, 4}},
        // Groups.
        {.name = "groups2", .x = {2, 4, 8, 8}, .w = {6, 2, 3, 3}, .padding = {1, 1}, .groups = 2},
        {.name = "groups3_stride",
         .x = {2, 6, 9, 7},
         .w = {9, 2, 3, 2},
         .stride = {2, 1},
         .padding = {1, 0},
         .groups = 3},
        {.name = "depthwise",
         .x = {2, 8, 10, 10},
         .w = {8, 1, 3, 3},
         .padding = {1, 1},
         .groups = 8},
        {.name = "depthwise_mult2",
         .x = {1, 4, 9, 9},
         .w = {8, 1, 5, 5},
         .stride = {2, 2},
         .padding = {2, 2},
         .groups = 4},
        // Transposed, with output_padding, dilation and groups.
        {.name = "t_outpad",
         .x = {2, 4, 5, 6},
         .w = {4, 3, 3, 3},
         .stride = {2, 2},
         .padding = {1, 1},
         .output_padding = {1, 1},
         .transposed = true},
        {.name = "t_outpad_asym",
         .x = {1, 3, 4, 5},
         .w = {3, 2, 4, 3},
         .stride = {3, 2},
         .padding = {1, 0},
         .output_padding = {2, 1},
         .transposed = true},
        {.name = "t_dilation_groups",
         .x = {2, 4, 5, 5},
         .w = {4, 3, 3, 3},
         .stride = {2, 1},
         .padding = {1, 2},
         .dilation = {2, 2},
         .groups = 2,
         .transposed = true},
        {.name = "t_stride1_nobias",
         .x = {2, 5, 6, 6},
         .w = {5, 4, 3, 3},
         .transposed = true,
         .bias = false},
        {.name = "t_depthwise",
         .x = {1, 6, 5, 5},
         .w = {6, 1, 4, 4},
         .stride = {2, 2},
         .padding = {1, 1},
         .groups = 6,
         .transposed = true},
    };
    return v;
}

class ConvDnnl : public ::testing::TestWithParam<Case> {};

TEST_P(ConvDnnl, MatchesReference) {
    const Case& c = GetParam();
    const uint64_t calls = conv::dnnl_conv_calls();
    const auto fast = run(c, DType::float32, true, 7);
    // Forward, input grad, weight grad, the weight grad's backward: every pass on oneDNN.
    EXPECT_GE(conv::dnnl_conv_calls() - calls, 4u) << c.name << " fell back to im2col";
    const auto ref32 = run(c, DType::float32, false, 7);
    const auto ref64 = run(c, DType::float64, false, 7);
    expect_close(fast, ref32, 1e-4, c.name + " vs im2col float32");
    expect_close(fast, ref64, 1e-4, c.name + " vs im2col float64");
}

INSTANTIATE_TEST_SUITE_P(Geometries, ConvDnnl, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

// Batch 64 on the bench's shapes: the cached primitives, reused across calls, give the same
// result as the first call (no state left behind by the cache's buffers).
TEST(ConvDnnlCache, RepeatedCallsAgree) {
    DnnlGuard guard(true);
    manual_seed(3);
    Tensor x = randn({64, 32, 14, 14});
    Tensor w = randn({64, 32, 3, 3});
    Tensor b = randn({64});
    Tensor y1 = F::conv2d(x, w, b, {.padding = {1, 1}});
    Tensor y2 = F::conv2d(x, w, b, {.padding = {1, 1}});
    EXPECT_EQ(y1.to_vector<float>(), y2.to_vector<float>());
    Tensor x2 = randn({64, 32, 14, 14});
    Tensor y3 = F::conv2d(x2, w, b, {.padding = {1, 1}});
    conv::set_use_dnnl(false);
    Tensor r3 = F::conv2d(x2, w, b, {.padding = {1, 1}});
    const auto a = y3.to_vector<float>(), r = r3.to_vector<float>();
    double err = 0;
    for (size_t i = 0; i < a.size(); ++i) err = std::max(err, std::abs(double(a[i]) - r[i]));
    EXPECT_LE(err, 1e-3);
}

// Thread counts: the batch is split over Soma's threads (5 images: slices of 2 and 3; the
// weight gradient sums the slices' partials). 1, 2 and 3 threads agree with the reference.
TEST(ConvDnnlCache, ThreadCounts) {
    const int prev = get_num_threads();
    const Case c{.name = "threads", .x = {5, 16, 12, 12}, .w = {24, 16, 3, 3}, .padding = {1, 1}};
    const auto ref = run(c, DType::float64, false, 9);
    for (int t : {1, 2, 3}) {
        set_num_threads(t);
        expect_close(run(c, DType::float32, true, 9), ref, 1e-4, "threads " + std::to_string(t));
    }
    set_num_threads(prev);
}

}  // namespace
}  // namespace soma
