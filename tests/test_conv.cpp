// linear, conv1d, conv2d, conv_transpose2d and the 2-D pools (soma::nn::functional).
//
// Golden values: tests/fixtures/conv.json, written by scripts/gen_conv_fixtures.py with PyTorch
// 1.13: float64 inputs, outputs and the gradients of every input for a random grad_output.
// Then float64 gradcheck and gradgradcheck (conv's backward is itself differentiable, for
// gradient penalties), a direct-loop reference convolution as an oracle for the im2col + GEMM
// kernels on random geometries, float32 against float64, and the error messages.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "soma/nn/functional.h"
#include "soma/soma.h"

namespace soma {
namespace {

namespace F = soma::nn::functional;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using json = nlohmann::json;
using Tensors = std::vector<Tensor>;
using Arr2 = std::array<int64_t, 2>;

// ---- fixtures ----------------------------------------------------------------------------------

const json& fixtures() {
    static const json j = [] {
        std::ifstream f(SOMA_FIXTURE_DIR "/conv.json");
        if (!f) return json::object();
        return json::parse(f);
    }();
    return j;
}

Tensor from_json(const json& t, bool requires_grad = false) {
    Tensor x = from_vector<double>(t["data"].get<std::vector<double>>(), t["shape"].get<Shape>());
    if (requires_grad) x.requires_grad_();
    return x;
}

Arr2 arr2(const json& args, const char* key, Arr2 def) {
    if (!args.contains(key)) return def;
    auto v = args[key].get<std::vector<int64_t>>();
    return {v[0], v[1]};
}

// Calls the op a fixture case names on inputs {x, w, b} (w and b may be undefined).
Tensor call_op(const json& c, const Tensor& x, const Tensor& w, const Tensor& b) {
    const std::string op = c["op"];
    const json& a = c["args"];
    if (op == "linear") return F::linear(x, w, b);
    if (op == "conv1d")
        return F::conv1d(x, w, b,
                         {.stride = a.value("stride", int64_t{1}),
                          .padding = a.value("padding", int64_t{0}),
                          .dilation = a.value("dilation", int64_t{1}),
                          .groups = a.value("groups", int64_t{1})});
    if (op == "conv2d")
        return F::conv2d(x, w, b,
                         {.stride = arr2(a, "stride", {1, 1}),
                          .padding = arr2(a, "padding", {0, 0}),
                          .dilation = arr2(a, "dilation", {1, 1}),
                          .groups = a.value("groups", int64_t{1})});
    if (op == "conv_transpose2d")
        return F::conv_transpose2d(x, w, b,
                                   {.stride = arr2(a, "stride", {1, 1}),
                                    .padding = arr2(a, "padding", {0, 0}),
                                    .output_padding = arr2(a, "output_padding", {0, 0}),
                                    .dilation = arr2(a, "dilation", {1, 1}),
                                    .groups = a.value("groups", int64_t{1})});
    if (op == "adaptive_avg_pool2d") return F::adaptive_avg_pool2d(x, arr2(a, "output_size", {}));
    F::Pool2dArgs p;
    p.kernel = arr2(a, "kernel_size", {2, 2});
    if (a.contains("stride")) p.stride = arr2(a, "stride", {});
    p.padding = arr2(a, "padding", {0, 0});
    p.dilation = arr2(a, "dilation", {1, 1});
    p.ceil_mode = a.value("ceil_mode", false);
    p.count_include_pad = a.value("count_include_pad", true);
    if (op == "max_pool2d") return F::max_pool2d(x, p);
    if (op == "avg_pool2d") return F::avg_pool2d(x, p);
    throw std::runtime_error("unknown op " + op);
}

// |got - want| <= rtol * max(1, |want|) elementwise (values here are O(1)).
void expect_close(const Tensor& got, const std::vector<double>& want, const Shape& shape,
                  double rtol, const std::string& what) {
    ASSERT_TRUE(got.defined()) << what << ": undefined";
    ASSERT_EQ(got.shape(), shape) << what;
    std::vector<double> g = got.to_vector<double>();
    for (size_t i = 0; i < g.size(); ++i)
        ASSERT_NEAR(g[i], want[i], rtol * std::max(1.0, std::fabs(want[i])))
            << what << " element " << i;
}
void expect_close(const Tensor& got, const json& want, double rtol, const std::string& what) {
    expect_close(got, want["data"].get<std::vector<double>>(), want["shape"].get<Shape>(), rtol,
                 what);
}
void expect_close(const Tensor& got, const Tensor& want, double rtol, const std::string& what) {
    expect_close(got, want.to_vector<double>(), want.shape(), rtol, what);
}

// Runs every fixture case of `op`: output and gradients against PyTorch (float64, 1e-8).
int run_fixture_cases(const std::string& op) {
    int n = 0;
    for (const json& c : fixtures()["cases"]) {
        if (c["op"] != op) continue;
        ++n;
        SCOPED_TRACE(c["name"].get<std::string>());
        const json& in = c["inputs"];
        Tensor x = from_json(in["x"], true);
        Tensor w = in.contains("w") ? from_json(in["w"], true) : Tensor();
        Tensor b = in.contains("b") ? from_json(in["b"], true) : Tensor();
        Tensor y = call_op(c, x, w, b);
        expect_close(y, c["out"], 1e-8, "output");
        y.backward(from_json(c["grad_out"]));
        expect_close(x.grad(), c["grads"]["x"], 1e-8, "grad x");
        if (w.defined()) expect_close(w.grad(), c["grads"]["w"], 1e-8, "grad w");
        if (b.defined()) expect_close(b.grad(), c["grads"]["b"], 1e-8, "grad b");
    }
    return n;
}

TEST(LinearFixture, MatchesPyTorch) { EXPECT_EQ(run_fixture_cases("linear"), 3); }
TEST(ConvFixture, Conv1dMatchesPyTorch) { EXPECT_EQ(run_fixture_cases("conv1d"), 3); }
TEST(ConvFixture, Conv2dMatchesPyTorch) { EXPECT_EQ(run_fixture_cases("conv2d"), 8); }
TEST(ConvFixture, ConvTranspose2dMatchesPyTorch) {
    EXPECT_EQ(run_fixture_cases("conv_transpose2d"), 5);
}
TEST(PoolFixture, MaxPool2dMatchesPyTorch) { EXPECT_EQ(run_fixture_cases("max_pool2d"), 5); }
TEST(PoolFixture, AvgPool2dMatchesPyTorch) { EXPECT_EQ(run_fixture_cases("avg_pool2d"), 5); }
TEST(PoolFixture, AdaptiveAvgPool2dMatchesPyTorch) {
    EXPECT_EQ(run_fixture_cases("adaptive_avg_pool2d"), 4);
}

// ---- helpers for the remaining tests -----------------------------------------------------------

int64_t numel_of(const Shape& s) {
    int64_t n = 1;
    for (int64_t d : s) n *= d;
    return n;
}
std::vector<double> random_values(int64_t n, std::mt19937& rng) {
    std::normal_distribution<double> d(0.0, 1.0);
    std::vector<double> v(static_cast<size_t>(n));
    for (auto& e : v) e = d(rng);
    return v;
}
Tensor rand64(const Shape& s, std::mt19937& rng, bool requires_grad = true) {
    Tensor t = from_vector<double>(random_values(numel_of(s), rng), s);
    if (requires_grad) t.requires_grad_();
    return t;
}
template <class E, class Fn>
std::string error_of(Fn f) {
    try {
        f();
    } catch (const E& e) {
        return e.what();
    } catch (const std::exception& e) {
        return std::string("wrong exception type: ") + e.what();
    }
    return "no error";
}

// ---- float64 gradcheck -------------------------------------------------------------------------

TEST(ConvGradcheck, Conv2dStridePaddingDilationGroups) {
    std::mt19937 rng(1);
    Tensors in{rand64({2, 4, 5, 4}, rng), rand64({6, 2, 3, 2}, rng), rand64({6}, rng)};
    auto fn = [](const Tensors& t) {
        return F::conv2d(t[0], t[1], t[2],
                         {.stride = {2, 1}, .padding = {1, 1}, .dilation = {1, 2}, .groups = 2});
    };
    EXPECT_EQ(gradcheck(fn, in), "");
}

TEST(ConvGradcheck, Conv1d) {
    std::mt19937 rng(2);
    Tensors in{rand64({2, 2, 7}, rng), rand64({3, 2, 3}, rng), rand64({3}, rng)};
    auto fn = [](const Tensors& t) {
        return F::conv1d(t[0], t[1], t[2], {.stride = 2, .padding = 1});
    };
    EXPECT_EQ(gradcheck(fn, in), "");
}

TEST(ConvGradcheck, ConvTranspose2d) {
    std::mt19937 rng(3);
    Tensors in{rand64({1, 4, 3, 3}, rng), rand64({4, 2, 2, 3}, rng), rand64({4}, rng)};
    auto fn = [](const Tensors& t) {
        return F::conv_transpose2d(
            t[0], t[1], t[2],
            {.stride = {2, 2}, .padding = {1, 1}, .output_padding = {1, 1}, .groups = 2});
    };
    EXPECT_EQ(gradcheck(fn, in), "");
}

TEST(LinearGradcheck, FirstAndSecondOrder) {
    std::mt19937 rng(4);
    Tensors in{rand64({2, 3, 4}, rng), rand64({5, 4}, rng), rand64({5}, rng)};
    auto fn = [](const Tensors& t) { return F::linear(t[0], t[1], t[2]); };
    EXPECT_EQ(gradcheck(fn, in), "");
    // linear is bilinear in (x, W): its second derivatives are exercised through (x, W) only.
    auto fn2 = [](const Tensors& t) { return F::linear(t[0], t[1], t[2]) * F::linear(t[0], t[1]); };
    EXPECT_EQ(gradgradcheck(fn2, in), "");
}

TEST(PoolGradcheck, MaxAvgAdaptive) {
    std::mt19937 rng(5);
    Tensors in{rand64({1, 2, 6, 5}, rng)};
    F::Pool2dArgs a{.kernel = {3, 3}, .stride = Arr2{2, 2}, .padding = {1, 1}, .ceil_mode = true};
    EXPECT_EQ(gradcheck([&](const Tensors& t) { return F::max_pool2d(t[0], a); }, in), "");
    F::Pool2dArgs d{.kernel = {2, 2}, .stride = Arr2{1, 1}, .dilation = {2, 2}};
    EXPECT_EQ(gradcheck([&](const Tensors& t) { return F::max_pool2d(t[0], d); }, in), "");
    a.count_include_pad = false;
    EXPECT_EQ(gradcheck([&](const Tensors& t) { return F::avg_pool2d(t[0], a); }, in), "");
    EXPECT_EQ(gradcheck(
                  [](const Tensors& t) {
                      return F::adaptive_avg_pool2d(t[0], {3, 4});
                  },
                  in),
              "");
}

// ---- double backward ---------------------------------------------------------------------------

TEST(ConvDoubleBackward, Conv2dGradgradcheck) {
    std::mt19937 rng(6);
    Tensors in{rand64({2, 2, 4, 5}, rng), rand64({4, 1, 2, 3}, rng), rand64({4}, rng)};
    auto fn = [](const Tensors& t) {
        return F::conv2d(t[0], t[1], t[2],
                         {.stride = {2, 1}, .padding = {1, 1}, .dilation = {1, 2}, .groups = 2});
    };
    EXPECT_EQ(gradgradcheck(fn, in), "");
}

TEST(ConvDoubleBackward, ConvTranspose2dAndConv1dGradgradcheck) {
    std::mt19937 rng(7);
    Tensors in{rand64({1, 2, 3, 3}, rng), rand64({2, 2, 2, 2}, rng), rand64({2}, rng)};
    auto fn = [](const Tensors& t) {
        return F::conv_transpose2d(t[0], t[1], t[2],
                                   {.stride = {2, 2}, .padding = {1, 0}, .output_padding = {1, 1}});
    };
    EXPECT_EQ(gradgradcheck(fn, in), "");
    Tensors in1{rand64({2, 2, 6}, rng), rand64({2, 2, 3}, rng)};
    auto fn1 = [](const Tensors& t) { return F::conv1d(t[0], t[1], {}, {.padding = 1}); };
    EXPECT_EQ(gradgradcheck(fn1, in1), "");
}

TEST(ConvDoubleBackward, GradientPenaltyMatchesFiniteDifferences) {
    // WGAN-GP style: P(w) = || d/dx Σ conv(x, w)² ||², and dP/dw through conv's backward.
    std::mt19937 rng(8);
    Tensor x = rand64({2, 2, 5, 5}, rng);
    Tensor w = rand64({3, 2, 3, 3}, rng);
    F::Conv2dArgs args{.stride = {2, 2}, .padding = {1, 1}};
    auto penalty = [&](const Tensor& wv, bool create_graph) {
        Tensor y = F::conv2d(x, wv, {}, args);
        Tensor s = (y * y).sum();
        Tensor gx = autograd::grad({s}, {x}, {}, create_graph)[0];
        return (gx * gx).sum();
    };
    Tensor p = penalty(w, true);
    Tensor gw = autograd::grad({p}, {w})[0];
    std::vector<double> wv = w.to_vector<double>(), got = gw.to_vector<double>();
    const double eps = 1e-6;
    for (size_t k = 0; k < wv.size(); ++k) {
        auto at = [&](double delta) {
            std::vector<double> v = wv;
            v[k] += delta;
            return penalty(from_vector<double>(v, w.shape()), false).item();
        };
        const double num = (at(eps) - at(-eps)) / (2 * eps);
        ASSERT_NEAR(got[k], num, 1e-5 * std::max(1.0, std::fabs(num))) << "element " << k;
    }
}

TEST(PoolDoubleBackward, Gradgradcheck) {
    std::mt19937 rng(9);
    Tensors in{rand64({1, 2, 5, 5}, rng)};
    F::Pool2dArgs a{.kernel = {3, 3}, .stride = Arr2{2, 2}, .padding = {1, 1}, .ceil_mode = true};
    // A pool is piecewise linear; square it so the second derivative is not identically 0.
    auto sq = [](const Tensor& t) { return t * t; };
    EXPECT_EQ(gradgradcheck([&](const Tensors& t) { return sq(F::max_pool2d(t[0], a)); }, in), "");
    EXPECT_EQ(gradgradcheck([&](const Tensors& t) { return sq(F::avg_pool2d(t[0], a)); }, in), "");
    EXPECT_EQ(gradgradcheck(
                  [&](const Tensors& t) {
                      return sq(F::adaptive_avg_pool2d(t[0], {2, 3}));
                  },
                  in),
              "");
}

// ---- reference (direct loops) vs the im2col + GEMM kernels -------------------------------------

struct Geo {
    int64_t n, c, h, w, o, kh, kw, sh, sw, ph, pw, dh, dw, groups, ho, wo;
};

// y[n, o, i, j] = b[o] + Σ_{c in group(o), a, e} w[o, c, a, e] x[n, c, i sh - ph + a dh, ...]
// and its adjoints: dx, dw, db for upstream gy. Plain loops, no lowering.
struct RefConv {
    Geo g;
    template <class Fn>
    void each(Fn f) const {  // f(x_index, w_index, y_index)
        const int64_t cg = g.c / g.groups, og = g.o / g.groups;
        for (int64_t n = 0; n < g.n; ++n)
            for (int64_t o = 0; o < g.o; ++o)
                for (int64_t i = 0; i < g.ho; ++i)
                    for (int64_t j = 0; j < g.wo; ++j)
                        for (int64_t cc = 0; cc < cg; ++cc)
                            for (int64_t a = 0; a < g.kh; ++a)
                                for (int64_t e = 0; e < g.kw; ++e) {
                                    const int64_t c = (o / og) * cg + cc;
                                    const int64_t ih = i * g.sh - g.ph + a * g.dh;
                                    const int64_t iw = j * g.sw - g.pw + e * g.dw;
                                    if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;
                                    f(((n * g.c + c) * g.h + ih) * g.w + iw,
                                      ((o * cg + cc) * g.kh + a) * g.kw + e,
                                      ((n * g.o + o) * g.ho + i) * g.wo + j);
                                }
    }
    std::vector<double> forward(const std::vector<double>& x, const std::vector<double>& w,
                                const std::vector<double>& b) const {
        std::vector<double> y(static_cast<size_t>(g.n * g.o * g.ho * g.wo), 0.0);
        const int64_t plane = g.ho * g.wo;
        if (!b.empty())
            for (size_t i = 0; i < y.size(); ++i) y[i] = b[(i / plane) % g.o];
        each([&](int64_t xi, int64_t wi, int64_t yi) { y[yi] += w[wi] * x[xi]; });
        return y;
    }
    std::vector<double> input_grad(const std::vector<double>& gy,
                                   const std::vector<double>& w) const {
        std::vector<double> dx(static_cast<size_t>(g.n * g.c * g.h * g.w), 0.0);
        each([&](int64_t xi, int64_t wi, int64_t yi) { dx[xi] += w[wi] * gy[yi]; });
        return dx;
    }
    std::vector<double> weight_grad(const std::vector<double>& x,
                                    const std::vector<double>& gy) const {
        std::vector<double> dw(static_cast<size_t>(g.o * (g.c / g.groups) * g.kh * g.kw), 0.0);
        each([&](int64_t xi, int64_t wi, int64_t yi) { dw[wi] += x[xi] * gy[yi]; });
        return dw;
    }
    std::vector<double> channel_sum(const std::vector<double>& t, int64_t ch) const {
        std::vector<double> s(static_cast<size_t>(ch), 0.0);
        const int64_t plane = static_cast<int64_t>(t.size()) / (g.n * ch);
        for (size_t i = 0; i < t.size(); ++i) s[(i / plane) % ch] += t[i];
        return s;
    }
};

Geo random_geo(std::mt19937& rng) {
    auto r = [&](int64_t lo, int64_t hi) {
        return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
    };
    Geo g{};
    g.groups = r(1, 3);
    g.n = r(1, 3);
    g.c = g.groups * r(1, 3);
    g.o = g.groups * r(1, 3);
    g.kh = r(1, 4);
    g.kw = r(1, 4);
    g.sh = r(1, 3);
    g.sw = r(1, 3);
    g.dh = r(1, 2);
    g.dw = r(1, 2);
    g.ph = r(0, 2);
    g.pw = r(0, 2);
    g.h = std::max<int64_t>(1, g.dh * (g.kh - 1) + 1 - 2 * g.ph + r(0, 6));
    g.w = std::max<int64_t>(1, g.dw * (g.kw - 1) + 1 - 2 * g.pw + r(0, 6));
    g.ho = (g.h + 2 * g.ph - g.dh * (g.kh - 1) - 1) / g.sh + 1;
    g.wo = (g.w + 2 * g.pw - g.dw * (g.kw - 1) - 1) / g.sw + 1;
    return g;
}

TEST(ConvReference, Conv2dMatchesDirectLoopsOnRandomGeometries) {
    std::mt19937 rng(10);
    for (int trial = 0; trial < 40; ++trial) {
        Geo g = random_geo(rng);
        if (g.ho < 1 || g.wo < 1) continue;
        SCOPED_TRACE(::testing::Message()
                     << "trial " << trial << ": x [" << g.n << ", " << g.c << ", " << g.h << ", "
                     << g.w << "], w [" << g.o << ", k " << g.kh << "x" << g.kw << "] s " << g.sh
                     << "," << g.sw << " p " << g.ph << "," << g.pw << " d " << g.dh << "," << g.dw
                     << " groups " << g.groups);
        const bool with_bias = trial % 3 != 0;
        Tensor x = rand64({g.n, g.c, g.h, g.w}, rng);
        Tensor w = rand64({g.o, g.c / g.groups, g.kh, g.kw}, rng);
        Tensor b = with_bias ? rand64({g.o}, rng) : Tensor();
        Tensor y = F::conv2d(x, w, b,
                             {.stride = {g.sh, g.sw},
                              .padding = {g.ph, g.pw},
                              .dilation = {g.dh, g.dw},
                              .groups = g.groups});
        RefConv ref{g};
        auto xv = x.to_vector<double>(), wv = w.to_vector<double>();
        auto bv = with_bias ? b.to_vector<double>() : std::vector<double>{};
        Shape ys{g.n, g.o, g.ho, g.wo};
        expect_close(y, ref.forward(xv, wv, bv), ys, 1e-12, "output");
        Tensor gy = rand64(ys, rng, false);
        y.backward(gy);
        auto gyv = gy.to_vector<double>();
        expect_close(x.grad(), ref.input_grad(gyv, wv), x.shape(), 1e-12, "grad x");
        expect_close(w.grad(), ref.weight_grad(xv, gyv), w.shape(), 1e-12, "grad w");
        if (with_bias) expect_close(b.grad(), ref.channel_sum(gyv, g.o), b.shape(), 1e-12, "db");
    }
}

TEST(ConvReference, ConvTranspose2dMatchesDirectLoopsOnRandomGeometries) {
    // conv_transpose2d(x, w) is the input gradient of the conv whose output has x's shape.
    std::mt19937 rng(11);
    for (int trial = 0; trial < 30; ++trial) {
        Geo g = random_geo(rng);
        if (g.ho < 1 || g.wo < 1) continue;
        // The transposed conv's output size (h, w) from its input (ho, wo) plus output_padding.
        const int64_t oph = (g.h + 2 * g.ph - g.dh * (g.kh - 1) - 1) % g.sh;
        const int64_t opw = (g.w + 2 * g.pw - g.dw * (g.kw - 1) - 1) % g.sw;
        SCOPED_TRACE(::testing::Message() << "trial " << trial);
        Tensor x = rand64({g.n, g.o, g.ho, g.wo}, rng);
        Tensor w = rand64({g.o, g.c / g.groups, g.kh, g.kw}, rng);
        Tensor b = rand64({g.c}, rng);
        Tensor y = F::conv_transpose2d(x, w, b,
                                       {.stride = {g.sh, g.sw},
                                        .padding = {g.ph, g.pw},
                                        .output_padding = {oph, opw},
                                        .dilation = {g.dh, g.dw},
                                        .groups = g.groups});
        RefConv ref{g};
        auto xv = x.to_vector<double>(), wv = w.to_vector<double>(), bv = b.to_vector<double>();
        std::vector<double> want = ref.input_grad(xv, wv);
        const int64_t plane = g.h * g.w;
        for (size_t i = 0; i < want.size(); ++i) want[i] += bv[(i / plane) % g.c];
        expect_close(y, want, {g.n, g.c, g.h, g.w}, 1e-12, "output");
        Tensor gy = rand64(y.shape(), rng, false);
        y.backward(gy);
        auto gyv = gy.to_vector<double>();
        expect_close(x.grad(), ref.forward(gyv, wv, {}), x.shape(), 1e-12, "grad x");
        expect_close(w.grad(), ref.weight_grad(gyv, xv), w.shape(), 1e-12, "grad w");
        expect_close(b.grad(), ref.channel_sum(gyv, g.c), b.shape(), 1e-12, "grad b");
    }
}

// Direct-loop pools with PyTorch's definitions: max with -inf padding (first maximum wins),
// avg with the divisor of avg_pool2d (count_include_pad counts padding inside the bounds).
struct RefPool {
    int64_t planes, h, w, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo;
    bool ceil_mode, count_include_pad;
    static int64_t out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
        const double v = static_cast<double>(in + 2 * p - d * (k - 1) - 1) / static_cast<double>(s);
        int64_t o = static_cast<int64_t>(ceil_mode ? std::ceil(v) : std::floor(v)) + 1;
        if (ceil_mode && (o - 1) * s >= in + p) --o;
        return o;
    }
    void maxpool(const std::vector<double>& x, std::vector<double>& y,
                 std::vector<int64_t>& arg) const {
        y.assign(static_cast<size_t>(planes * ho * wo), 0);
        arg.assign(y.size(), -1);
        for (int64_t p = 0; p < planes; ++p)
            for (int64_t i = 0; i < ho; ++i)
                for (int64_t j = 0; j < wo; ++j) {
                    double best = -std::numeric_limits<double>::infinity();
                    int64_t bi = -1;
                    for (int64_t a = 0; a < kh; ++a)
                        for (int64_t e = 0; e < kw; ++e) {
                            int64_t ih = i * sh - ph + a * dh, iw = j * sw - pw + e * dw;
                            if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue;
                            double v = x[(p * h + ih) * w + iw];
                            if (bi < 0 || v > best) best = v, bi = (p * h + ih) * w + iw;
                        }
                    y[(p * ho + i) * wo + j] = best;
                    arg[(p * ho + i) * wo + j] = bi;
                }
    }
    std::vector<double> avgpool(const std::vector<double>& x) const {
        std::vector<double> y(static_cast<size_t>(planes * ho * wo), 0);
        for (int64_t p = 0; p < planes; ++p)
            for (int64_t i = 0; i < ho; ++i)
                for (int64_t j = 0; j < wo; ++j) {
                    int64_t hs = i * sh - ph, ws = j * sw - pw;
                    int64_t he = std::min(hs + kh, h + ph), we = std::min(ws + kw, w + pw);
                    int64_t pool = (he - hs) * (we - ws);
                    hs = std::max<int64_t>(hs, 0), ws = std::max<int64_t>(ws, 0);
                    he = std::min(he, h), we = std::min(we, w);
                    double s = 0;
                    for (int64_t a = hs; a < he; ++a)
                        for (int64_t e = ws; e < we; ++e) s += x[(p * h + a) * w + e];
                    y[(p * ho + i) * wo + j] =
                        s / static_cast<double>(count_include_pad ? pool : (he - hs) * (we - ws));
                }
        return y;
    }
};

TEST(PoolReference, MaxAndAvgMatchDirectLoopsOnRandomGeometries) {
    std::mt19937 rng(12);
    auto r = [&](int64_t lo, int64_t hi) {
        return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
    };
    for (int trial = 0; trial < 40; ++trial) {
        RefPool rp{};
        rp.planes = r(1, 4);
        rp.kh = r(1, 4), rp.kw = r(1, 4), rp.sh = r(1, 3), rp.sw = r(1, 3);
        rp.ph = r(0, rp.kh / 2), rp.pw = r(0, rp.kw / 2);
        rp.dh = r(1, 2), rp.dw = r(1, 2);
        rp.h = r(rp.dh * (rp.kh - 1) + 1, 12), rp.w = r(rp.dw * (rp.kw - 1) + 1, 12);
        rp.ceil_mode = r(0, 1), rp.count_include_pad = r(0, 1);
        rp.ho = RefPool::out(rp.h, rp.kh, rp.sh, rp.ph, rp.dh, rp.ceil_mode);
        rp.wo = RefPool::out(rp.w, rp.kw, rp.sw, rp.pw, rp.dw, rp.ceil_mode);
        SCOPED_TRACE(::testing::Message() << "trial " << trial);
        F::Pool2dArgs args{.kernel = {rp.kh, rp.kw},
                           .stride = Arr2{rp.sh, rp.sw},
                           .padding = {rp.ph, rp.pw},
                           .dilation = {rp.dh, rp.dw},
                           .ceil_mode = rp.ceil_mode,
                           .count_include_pad = rp.count_include_pad};
        Tensor x = rand64({1, rp.planes, rp.h, rp.w}, rng);
        auto xv = x.to_vector<double>();
        Tensor y = F::max_pool2d(x, args);
        std::vector<double> want;
        std::vector<int64_t> arg;
        rp.maxpool(xv, want, arg);
        expect_close(y, want, {1, rp.planes, rp.ho, rp.wo}, 0, "max");
        Tensor gy = rand64(y.shape(), rng, false);
        y.backward(gy);
        std::vector<double> dx(xv.size(), 0.0), gyv = gy.to_vector<double>();
        for (size_t i = 0; i < arg.size(); ++i) dx[static_cast<size_t>(arg[i])] += gyv[i];
        expect_close(x.grad(), dx, x.shape(), 1e-15, "max grad");

        rp.dh = rp.dw = 1;
        rp.ho = RefPool::out(rp.h, rp.kh, rp.sh, rp.ph, 1, rp.ceil_mode);
        rp.wo = RefPool::out(rp.w, rp.kw, rp.sw, rp.pw, 1, rp.ceil_mode);
        args.dilation = {1, 1};
        expect_close(F::avg_pool2d(x, args), rp.avgpool(xv), {1, rp.planes, rp.ho, rp.wo}, 1e-13,
                     "avg");
        // Backward of a linear map: <A x, gy> == <x, Aᵀ gy>.
        Tensor xa = rand64(x.shape(), rng);
        Tensor ya = F::avg_pool2d(xa, args);
        Tensor gya = rand64(ya.shape(), rng, false);
        ya.backward(gya);
        double lhs = (ya * gya).sum().item(), rhs = (xa * xa.grad()).sum().item();
        EXPECT_NEAR(lhs, rhs, 1e-10 * std::max(1.0, std::fabs(lhs)));
    }
}

// ---- float32 vs float64 ------------------------------------------------------------------------

TEST(ConvFloat32, AgreesWithFloat64OnEveryFixture) {
    int n = 0;
    for (const json& c : fixtures()["cases"]) {
        SCOPED_TRACE(c["name"].get<std::string>());
        const json& in = c["inputs"];
        auto load32 = [&](const char* k) {
            return in.contains(k) ? from_json(in[k]).to(DType::float32).requires_grad_() : Tensor();
        };
        Tensor x = load32("x"), w = load32("w"), b = load32("b");
        Tensor y = call_op(c, x, w, b);
        ASSERT_EQ(y.dtype(), DType::float32);
        expect_close(y, c["out"], 1e-4, "output");
        y.backward(from_json(c["grad_out"]).to(DType::float32));
        expect_close(x.grad(), c["grads"]["x"], 1e-4, "grad x");
        if (w.defined()) expect_close(w.grad(), c["grads"]["w"], 1e-4, "grad w");
        if (b.defined()) expect_close(b.grad(), c["grads"]["b"], 1e-4, "grad b");
        ++n;
    }
    EXPECT_EQ(n, 33);
}

// ---- layouts, shapes, special values -----------------------------------------------------------

TEST(ConvLayout, NonContiguousInputsGiveTheSameResult) {
    std::mt19937 rng(13);
    Tensor base = rand64({2, 5, 6, 3}, rng, false);  // NHWC storage
    Tensor x = base.permute({0, 3, 1, 2});           // [2, 3, 5, 6] view, non-contiguous
    Tensor w = rand64({4, 3, 3, 3}, rng, false);
    Tensor y1 = F::conv2d(x, w, {}, {.padding = {1, 1}});
    Tensor y2 = F::conv2d(x.contiguous(), w, {}, {.padding = {1, 1}});
    expect_close(y1, y2, 0, "conv2d");
    F::Pool2dArgs a{.kernel = {2, 2}};
    expect_close(F::max_pool2d(x, a), F::max_pool2d(x.contiguous(), a), 0, "max_pool2d");
    expect_close(F::avg_pool2d(x, a), F::avg_pool2d(x.contiguous(), a), 0, "avg_pool2d");
}

TEST(LinearLayout, TransposedViewsGoToGemmAsFlags) {
    std::mt19937 rng(14);
    Tensor xt = rand64({4, 6}, rng, false);  // x = xt.t(): [6, 4] column-major
    Tensor wt = rand64({4, 3}, rng, false);  // w = wt.t(): [3, 4] column-major
    Tensor b = rand64({3}, rng, false);
    Tensor y1 = F::linear(xt.t(), wt.t(), b);
    Tensor y2 = F::linear(xt.t().contiguous(), wt.t().contiguous(), b);
    expect_close(y1, y2, 1e-14, "linear");
    // A strided (every other column) input needs a copy and still works.
    Tensor wide = rand64({6, 8}, rng, false);
    Tensor xs = wide.slice(1, 0, 8, 2);
    expect_close(F::linear(xs, wt.t()), F::linear(xs.contiguous(), wt.t()), 1e-14, "strided");
}

TEST(ConvShapes, UnbatchedAndEmptyBatch) {
    Tensor x = ones({3, 6, 6}, {.dtype = DType::float64});
    Tensor w = ones({4, 3, 3, 3}, {.dtype = DType::float64}).requires_grad_();
    Tensor y = F::conv2d(x, w, {}, {.padding = {1, 1}});
    EXPECT_EQ(y.shape(), (Shape{4, 6, 6}));
    EXPECT_DOUBLE_EQ(y.at({0, 2, 2}), 27.0);
    EXPECT_DOUBLE_EQ(y.at({0, 0, 0}), 12.0);

    Tensor x0 = zeros({0, 3, 6, 6}, {.dtype = DType::float64});
    Tensor y0 = F::conv2d(x0, w, {}, {.stride = {2, 2}});
    EXPECT_EQ(y0.shape(), (Shape{0, 4, 2, 2}));
    y0.sum().backward();
    EXPECT_EQ(w.grad().shape(), w.shape());
    EXPECT_DOUBLE_EQ(w.grad().abs().sum().item(), 0.0);
    EXPECT_EQ(F::max_pool2d(x0, {.kernel = {2, 2}}).shape(), (Shape{0, 3, 3, 3}));
    EXPECT_EQ(
        F::conv_transpose2d(ones({2, 3, 3}), ones({2, 5, 2, 2}), {}, {.stride = {2, 2}}).shape(),
        (Shape{5, 6, 6}));
    EXPECT_EQ(F::conv1d(ones({2, 10}), ones({3, 2, 3})).shape(), (Shape{3, 8}));
    EXPECT_EQ(F::linear(ones({4}), ones({3, 4})).shape(), (Shape{3}));
    EXPECT_EQ(F::linear(ones({0, 4}), ones({3, 4}), ones({3})).shape(), (Shape{0, 3}));
}

TEST(PoolValues, MaxPoolPadsWithMinusInfinityAndPropagatesNaN) {
    Tensor x = full({1, 1, 2, 2}, -5.0);
    Tensor y = F::max_pool2d(x, {.kernel = {3, 3}, .stride = Arr2{1, 1}, .padding = {1, 1}});
    EXPECT_EQ(y.to_vector<float>(), std::vector<float>(4, -5.0f));
    Tensor xn = tensor({1.0, 2.0, std::nan(""), 0.0}).reshape({1, 1, 2, 2});
    EXPECT_TRUE(std::isnan(F::max_pool2d(xn, {.kernel = {2, 2}}).item()));
    Tensor xi = full({1, 1, 2, 2}, -std::numeric_limits<double>::infinity()).requires_grad_();
    Tensor yi = F::max_pool2d(xi, {.kernel = {2, 2}});
    yi.sum().backward();
    EXPECT_DOUBLE_EQ(xi.grad().sum().item(), 1.0);  // the gradient still goes somewhere
}

TEST(ConvAutograd, RecordsOnlyWhenNeededAndSkipsUnneededGrads) {
    Tensor x = ones({1, 1, 4, 4});
    Tensor w = ones({2, 1, 3, 3}).requires_grad_();
    Tensor y = F::conv2d(x, w);
    EXPECT_EQ(y.name(), "conv2d");
    y.sum().backward();
    EXPECT_FALSE(x.grad().defined());
    EXPECT_DOUBLE_EQ(w.grad().sum().item(), 2 * 9 * 4.0);
    {
        NoGradGuard ng;
        EXPECT_FALSE(F::conv2d(x, w).requires_grad());
    }
    EXPECT_EQ(F::max_pool2d(x.requires_grad_(), {}).name(), "max_pool2d");
    EXPECT_EQ(F::avg_pool2d(x, {}).name(), "avg_pool2d");
    EXPECT_EQ(F::linear(x.reshape({4, 4}), ones({2, 4})).name(), "linear");
}

// ---- errors ------------------------------------------------------------------------------------

TEST(ConvErrors, MessagesNameTheOpShapesAndAHint) {
    Tensor w = zeros({32, 1, 3, 3});
    std::string e = error_of<ShapeError>([&] { F::conv2d(zeros({8, 3, 28, 28}), w); });
    EXPECT_THAT(e, StartsWith("conv2d: input has 3 channels, expected 1 (weight [32, 1, 3, 3], "
                              "input [8, 3, 28, 28])"));
    EXPECT_THAT(e, HasSubstr("in_channels"));
    e = error_of<ShapeError>([&] { F::conv2d(zeros({1, 1, 2, 2}), w); });
    EXPECT_THAT(e, StartsWith("conv2d: kernel [3, 3] (dilated [3, 3]) is larger than the padded "
                              "input [2, 2] (input [1, 1, 2, 2], weight [32, 1, 3, 3], padding "
                              "[0, 0])"));
    e = error_of<ShapeError>([&] {
        F::conv2d(zeros({1, 1, 4, 4}), w, {}, {.padding = {1, 1}, .dilation = {3, 3}});
    });
    EXPECT_THAT(e, HasSubstr("kernel [3, 3] (dilated [7, 7]) is larger than the padded input "
                             "[6, 6]"));
    e = error_of<ShapeError>([&] {
        F::conv2d(zeros({1, 6, 8, 8}), zeros({32, 2, 3, 3}), {}, {.groups = 3});
    });
    EXPECT_THAT(e, StartsWith("conv2d: groups 3 does not divide the 32 output channels of weight "
                              "[32, 2, 3, 3]"));
    e = error_of<ShapeError>([&] {
        F::conv2d(zeros({1, 5, 8, 8}), zeros({4, 2, 3, 3}), {}, {.groups = 2});
    });
    EXPECT_THAT(e, StartsWith("conv2d: groups 2 does not divide the input's 5 channels"));
    e = error_of<ShapeError>([&] { F::conv2d(zeros({1, 1, 8, 8}), w, zeros({10})); });
    EXPECT_THAT(e, StartsWith("conv2d: bias has shape [10], expected [32]"));
    e = error_of<ShapeError>([&] { F::conv2d(zeros({28, 28}), w); });
    EXPECT_THAT(e, StartsWith("conv2d: expected a 3-D (unbatched) or 4-D (batched) input "
                              "[N, C, H, W]: got input [28, 28] (2-D)."));
    e = error_of<ShapeError>([&] { F::conv2d(zeros({1, 1, 8, 8}), zeros({32, 1, 3})); });
    EXPECT_THAT(e, StartsWith("conv2d: expected a 4-D weight"));
    e = error_of<DTypeError>([&] { F::conv2d(zeros({1, 1, 8, 8}, {.dtype = DType::float64}), w); });
    EXPECT_THAT(e, StartsWith("conv2d: input and weight must have the same dtype: got input "
                              "float64 and weight float32"));
    e = error_of<ValueError>([&] { F::conv2d(zeros({1, 1, 8, 8}), w, {}, {.stride = {0, 1}}); });
    EXPECT_THAT(e, StartsWith("conv2d: stride must be positive: got [0, 1]"));
    e = error_of<ShapeError>([&] { F::conv1d(zeros({2, 3, 10}), zeros({4, 2, 3})); });
    EXPECT_THAT(e, StartsWith("conv1d: input has 3 channels, expected 2 (weight [4, 2, 3], input "
                              "[2, 3, 10])"));
    e = error_of<ValueError>([&] {
        F::conv_transpose2d(zeros({1, 2, 4, 4}), zeros({2, 2, 3, 3}), {},
                            {.stride = {2, 2}, .output_padding = {2, 0}});
    });
    EXPECT_THAT(e, StartsWith("conv_transpose2d: output_padding must be smaller than stride or "
                              "dilation: got output_padding [2, 0], stride [2, 2], dilation "
                              "[1, 1]."));
    e = error_of<ShapeError>([&] {
        F::conv_transpose2d(zeros({1, 3, 4, 4}), zeros({2, 2, 3, 3}));
    });
    EXPECT_THAT(e, StartsWith("conv_transpose2d: input has 3 channels, expected 2 (weight "
                              "[2, 2, 3, 3], input [1, 3, 4, 4])"));
    e = error_of<ShapeError>([&] {
        F::conv_transpose2d(zeros({1, 2, 1, 1}), zeros({2, 2, 1, 1}), {}, {.padding = {1, 1}});
    });
    EXPECT_THAT(e, StartsWith("conv_transpose2d: output size [-1, -1] is not positive"));
}

TEST(PoolErrors, MessagesNameTheOpShapesAndAHint) {
    Tensor x = zeros({1, 1, 4, 4});
    std::string e = error_of<ValueError>([&] {
        F::max_pool2d(x, {.kernel = {3, 3}, .padding = {2, 2}});
    });
    EXPECT_THAT(e, StartsWith("max_pool2d: padding must be at most half the kernel size: got "
                              "padding [2, 2], expected at most [1, 1] (kernel [3, 3])."));
    e = error_of<ShapeError>([&] { F::max_pool2d(zeros({1, 1, 2, 2}), {.kernel = {3, 3}}); });
    EXPECT_THAT(e, StartsWith("max_pool2d: output size [0, 0] is too small (input [1, 1, 2, 2], "
                              "kernel [3, 3]"));
    e = error_of<ValueError>([&] { F::avg_pool2d(x, {.dilation = {2, 2}}); });
    EXPECT_THAT(e, StartsWith("avg_pool2d: dilation is not supported"));
    e = error_of<ShapeError>([&] { F::avg_pool2d(zeros({4, 4}), {}); });
    EXPECT_THAT(e, StartsWith("avg_pool2d: expected a 3-D [C, H, W] or 4-D [N, C, H, W] input: "
                              "got input [4, 4] (2-D)."));
    e = error_of<DTypeError>([&] {
        F::max_pool2d(zeros({1, 1, 4, 4}, {.dtype = DType::int64}), {});
    });
    EXPECT_THAT(e, StartsWith("max_pool2d: expected a floating point input: got int64"));
    e = error_of<ValueError>([&] { F::adaptive_avg_pool2d(x, {0, 2}); });
    EXPECT_THAT(e, StartsWith("adaptive_avg_pool2d: output size must be positive: got [0, 2]"));
}

TEST(LinearErrors, MessagesNameTheShapes) {
    std::string e = error_of<ShapeError>([&] {
        F::linear(zeros({32, 17}), zeros({256, 256}), zeros({256}));
    });
    EXPECT_THAT(e, StartsWith("linear: input has 17 features, expected 256 (input [32, 17], "
                              "weight [256, 256])"));
    e = error_of<ShapeError>([&] { F::linear(zeros({2, 4}), zeros({3, 4}), zeros({4})); });
    EXPECT_THAT(e, StartsWith("linear: bias has shape [4], expected [3]"));
    e = error_of<ShapeError>([&] { F::linear(zeros({2, 4}), zeros({4})); });
    EXPECT_THAT(e, StartsWith("linear: expected a 2-D weight [out_features, in_features]"));
}

}  // namespace
}  // namespace soma
