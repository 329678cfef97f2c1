// float32 convolution on oneDNN (src/nn/conv_dnnl.cpp) against the im2col + GEMM reference in
// float32 and float64: conv2d and conv_transpose2d forward, input and weight (and bias)
// gradients, and the weight-gradient op's own backward (double backward), on geometries with
// stride, padding, dilation, groups (depthwise too), non-square shapes, output_padding and
// batch 1. The reference path is forced with the internal soma::conv::set_use_dnnl.
// The Winograd path for 4x4 stride-2 convolutions (src/nn/conv_winograd.cpp) is checked the
// same way, against the reference and against oneDNN, on the geometries it takes.
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
void set_use_winograd(bool on);
bool use_winograd();
uint64_t winograd_calls();
uint64_t winograd_reuses();
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

// Which float32 path a run takes: the im2col reference, oneDNN (Winograd off), or Winograd
// where it applies (oneDNN elsewhere).
enum class Path { ref, dnnl, winograd };

// Sets the routing for a scope and restores it when the scope ends.
class DnnlGuard {
  public:
    explicit DnnlGuard(Path p) : prev_(conv::use_dnnl()), prev_wino_(conv::use_winograd()) {
        conv::set_use_dnnl(p != Path::ref);
        conv::set_use_winograd(p == Path::winograd);
    }
    explicit DnnlGuard(bool dnnl) : DnnlGuard(dnnl ? Path::dnnl : Path::ref) {}
    ~DnnlGuard() {
        conv::set_use_dnnl(prev_);
        conv::set_use_winograd(prev_wino_);
    }
    DnnlGuard(const DnnlGuard&) = delete;
    DnnlGuard& operator=(const DnnlGuard&) = delete;

  private:
    bool prev_, prev_wino_;
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
std::vector<std::vector<double>> run(const Case& c, DType dt, Path path, uint64_t seed) {
    DnnlGuard guard(path);
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
    const auto fast = run(c, DType::float32, Path::dnnl, 7);
    // Forward, input grad, weight grad, the weight grad's backward: every pass on oneDNN.
    EXPECT_GE(conv::dnnl_conv_calls() - calls, 4u) << c.name << " fell back to im2col";
    const auto ref32 = run(c, DType::float32, Path::ref, 7);
    const auto ref64 = run(c, DType::float64, Path::ref, 7);
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
    DnnlGuard ref(Path::ref);
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
    const auto ref = run(c, DType::float64, Path::ref, 9);
    for (int t : {1, 2, 3}) {
        set_num_threads(t);
        expect_close(run(c, DType::float32, Path::dnnl, 9), ref, 1e-4,
                     "threads " + std::to_string(t));
    }
    set_num_threads(prev);
}

// ---- Winograd F(4x4, 2x2) for 4x4 stride-2 convolutions ----------------------------------

std::vector<Case> winograd_cases() {
    const Arr2 s2{2, 2}, p1{1, 1};
    return {
        {.name = "d16_24", .x = {3, 16, 14, 14}, .w = {24, 16, 4, 4}, .stride = s2, .padding = p1},
        // Odd and non-square inputs: partial tiles at the bottom and right edges.
        {.name = "odd", .x = {2, 16, 15, 9}, .w = {16, 16, 4, 4}, .stride = s2, .padding = p1},
        {.name = "tiny", .x = {1, 16, 2, 2}, .w = {16, 16, 4, 4}, .stride = s2, .padding = p1},
        {.name = "b1_28", .x = {1, 32, 28, 28}, .w = {64, 32, 4, 4}, .stride = s2, .padding = p1},
        // The bench's DCGAN: the discriminator's second conv and the generator's first
        // transposed conv (its forward is the input-gradient pass).
        {.name = "gan_d2",
         .x = {2, 64, 14, 14},
         .w = {128, 64, 4, 4},
         .stride = s2,
         .padding = p1,
         .bias = false},
        {.name = "gan_g1",
         .x = {2, 128, 7, 7},
         .w = {128, 64, 4, 4},
         .stride = s2,
         .padding = p1,
         .transposed = true},
        {.name = "t_outpad",
         .x = {2, 16, 5, 5},
         .w = {16, 24, 4, 4},
         .stride = s2,
         .padding = p1,
         .output_padding = {1, 1},
         .transposed = true},
    };
}

class ConvWinograd : public ::testing::TestWithParam<Case> {};

TEST_P(ConvWinograd, MatchesReferenceAndOneDnn) {
    const Case& c = GetParam();
    const uint64_t calls = conv::winograd_calls(), reuses = conv::winograd_reuses();
    const auto wino = run(c, DType::float32, Path::winograd, 11);
    // Forward, input grad, weight grad, the weight grad's backward: every pass on Winograd.
    EXPECT_GE(conv::winograd_calls() - calls, 4u) << c.name << " did not take the Winograd path";
    // The backward's weight-gradient pass takes dy's transform (conv2d: from the input-gradient
    // pass; conv_transpose2d: from the forward conv of dy) instead of computing it again.
    EXPECT_GE(conv::winograd_reuses() - reuses, 1u) << c.name;
    const auto ref64 = run(c, DType::float64, Path::ref, 11);
    const auto dnnl = run(c, DType::float32, Path::dnnl, 11);
    // Rounding: a few float32 ulps of each output's scale (1e-5 relative seen; direct: 2e-6).
    expect_close(wino, ref64, 5e-5, c.name + " vs im2col float64");
    expect_close(wino, dnnl, 5e-5, c.name + " vs oneDNN");
}

INSTANTIATE_TEST_SUITE_P(Geometries, ConvWinograd, ::testing::ValuesIn(winograd_cases()),
                         [](const auto& info) { return info.param.name; });

// Geometries it must leave to oneDNN: other kernels, strides, paddings, groups, dilation,
// channel counts that are not multiples of 8 or below 16.
TEST(ConvWinogradRouting, DeclinesOtherGeometries) {
    DnnlGuard guard(Path::winograd);
    const Arr2 s2{2, 2}, p1{1, 1};
    const std::vector<Case> other = {
        {.name = "k3", .x = {1, 16, 8, 8}, .w = {16, 16, 3, 3}, .stride = s2, .padding = p1},
        {.name = "s1", .x = {1, 16, 8, 8}, .w = {16, 16, 4, 4}, .padding = p1},
        {.name = "p0", .x = {1, 16, 8, 8}, .w = {16, 16, 4, 4}, .stride = s2},
        {.name = "c8", .x = {1, 8, 8, 8}, .w = {16, 8, 4, 4}, .stride = s2, .padding = p1},
        {.name = "c20", .x = {1, 20, 8, 8}, .w = {16, 20, 4, 4}, .stride = s2, .padding = p1},
        {.name = "g2",
         .x = {1, 32, 8, 8},
         .w = {32, 16, 4, 4},
         .stride = s2,
         .padding = p1,
         .groups = 2},
        {.name = "dil",
         .x = {1, 16, 12, 12},
         .w = {16, 16, 4, 4},
         .stride = s2,
         .padding = p1,
         .dilation = {2, 2}},
        // The transformed batch would take 14.7M + 3.7M floats of scratch (> 16M, 64 MB).
        {.name = "huge",
         .x = {1, 16, 1024, 1024},
         .w = {16, 16, 4, 4},
         .stride = s2,
         .padding = p1},
    };
    for (const Case& c : other) {
        const uint64_t calls = conv::winograd_calls();
        manual_seed(1);
        Tensor y = apply(c, randn(c.x), randn(c.w), Tensor());
        EXPECT_EQ(conv::winograd_calls(), calls) << c.name;
        EXPECT_GT(y.numel(), 0) << c.name;
    }
}

// 1, 2 and 3 threads agree with the reference, and a repeated call gives the same bits.
TEST(ConvWinogradRouting, ThreadCountsAndRepeats) {
    const int prev = get_num_threads();
    const Arr2 s2{2, 2}, p1{1, 1};
    const Case c{
        .name = "threads", .x = {5, 16, 12, 12}, .w = {24, 16, 4, 4}, .stride = s2, .padding = p1};
    const auto ref = run(c, DType::float64, Path::ref, 9);
    for (int t : {1, 2, 3}) {
        set_num_threads(t);
        const auto a = run(c, DType::float32, Path::winograd, 9);
        expect_close(a, ref, 5e-5, "threads " + std::to_string(t));
        EXPECT_EQ(a, run(c, DType::float32, Path::winograd, 9)) << "threads " << t;
    }
    set_num_threads(prev);
}

}  // namespace
}  // namespace soma
