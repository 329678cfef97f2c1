// Quick unit tests for the reductions (src/ops/reduce.cpp) and linear algebra
// (src/ops/linalg.cpp): shapes, hand-computed values, keepdim, negative dims, error messages,
// and float64 gradient / double-gradient checks against central differences.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "soma/autograd.h"
#include "soma/ops.h"
#include "soma/tensor.h"

namespace {

using soma::DType;
using soma::Shape;
using soma::Tensor;

constexpr double kInf = std::numeric_limits<double>::infinity();
const soma::TensorOptions kF64{.dtype = DType::float64};

Tensor f64(std::initializer_list<double> v) { return soma::tensor(v, kF64); }
Tensor f64(std::initializer_list<std::initializer_list<double>> v) { return soma::tensor(v, kF64); }
Tensor randn64(const Shape& s) { return soma::randn(s, kF64); }

std::vector<double> vals(const Tensor& t) { return t.to_vector<double>(); }

void expect_near_vec(const Tensor& t, const std::vector<double>& want, double tol = 1e-6) {
    auto got = vals(t);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        if (std::isinf(want[i]) || std::isnan(want[i])) {
            EXPECT_EQ(std::isnan(got[i]), std::isnan(want[i])) << "at " << i;
            if (std::isinf(want[i])) {
                EXPECT_EQ(got[i], want[i]) << "at " << i;
            }
        } else {
            EXPECT_NEAR(got[i], want[i], tol) << "at " << i;
        }
    }
}

// Runs f and returns the message of the soma::Error it throws ("" if none).
std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const soma::Error& e) {
        return e.what();
    }
    return "";
}

// ---- central differences -------------------------------------------------------------------

using ScalarFn = std::function<Tensor(const std::vector<Tensor>&)>;

std::vector<Tensor> leaves(const std::vector<Tensor>& in) {
    std::vector<Tensor> out;
    for (const Tensor& t : in) out.push_back(t.detach().clone().requires_grad_());
    return out;
}

// Compares autograd's gradient of the scalar F at `inputs` (float64) with central differences.
void expect_gradients(const ScalarFn& F, const std::vector<Tensor>& inputs, double eps = 1e-6,
                      double tol = 1e-5) {
    auto xs = leaves(inputs);
    Tensor y = F(xs);
    // A first derivative that is constant in x (linear ops) has no graph: second derivative 0.
    std::vector<Tensor> gs(xs.size());
    if (y.requires_grad())
        gs = soma::autograd::grad({y}, xs, {}, false, std::nullopt, /*allow_unused=*/true);
    for (size_t j = 0; j < inputs.size(); ++j) {
        int64_t n = inputs[j].numel();
        std::vector<double> analytic =
            gs[j].defined() ? vals(gs[j]) : std::vector<double>(static_cast<size_t>(n), 0.0);
        for (int64_t i = 0; i < n; ++i) {
            auto at = [&](double delta) {
                auto ps = leaves(inputs);
                ps[j].data_ptr<double>()[i] += delta;
                return F(ps).item<double>();
            };
            double numeric = (at(eps) - at(-eps)) / (2 * eps);
            EXPECT_NEAR(analytic[static_cast<size_t>(i)], numeric, tol * (1 + std::abs(numeric)))
                << "input " << j << " element " << i;
        }
    }
}

// F(x) = Σ f(x) · w for a fixed random w (so every output element matters).
ScalarFn weighted(const std::function<Tensor(const std::vector<Tensor>&)>& f, const Shape& out) {
    Tensor w = randn64(out);
    return [f, w](const std::vector<Tensor>& xs) { return (f(xs) * w).sum(); };
}

// Checks first derivatives of f and second derivatives (double backward) via
// G(x) = Σ_j Σ dF/dx_j · v_j.
void check_grads(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                 const std::vector<Tensor>& inputs, bool second = true) {
    Tensor out;
    {
        soma::NoGradGuard ng;
        out = f(inputs);
    }
    ScalarFn F = weighted(f, out.shape());
    expect_gradients(F, inputs);
    if (!second) return;
    std::vector<Tensor> vs;
    for (const Tensor& t : inputs) vs.push_back(randn64(t.shape()));
    ScalarFn G = [F, vs](const std::vector<Tensor>& xs) {
        auto gs = soma::autograd::grad({F(xs)}, xs, {}, /*create_graph=*/true, std::nullopt,
                                       /*allow_unused=*/true);
        Tensor s = soma::zeros({}, kF64);
        for (size_t j = 0; j < xs.size(); ++j)
            if (gs[j].defined()) s = s + (gs[j] * vs[j]).sum();
        return s;
    };
    expect_gradients(G, inputs, 1e-5, 1e-4);
}

Tensor grad_of(const std::function<Tensor(const Tensor&)>& f, const Tensor& x) {
    Tensor xr = x.detach().clone().requires_grad_();
    return soma::autograd::grad({f(xr).sum()}, {xr})[0];
}

// Naive row-major reference for 2-D products.
std::vector<double> naive_mm(const Tensor& a, const Tensor& b) {
    int64_t n = a.size(0), k = a.size(1), m = b.size(1);
    std::vector<double> out(static_cast<size_t>(n * m), 0.0);
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < m; ++j) {
            double s = 0;
            for (int64_t t = 0; t < k; ++t) s += a.at<double>({i, t}) * b.at<double>({t, j});
            out[static_cast<size_t>(i * m + j)] = s;
        }
    return out;
}

// ---- mean / prod ---------------------------------------------------------------------------

TEST(ReduceLinalgReduce, ColumnSumsEqualRowSumsBitForBit) {
    // A sum over a dim whose kept elements are adjacent in memory takes the column-sum kernel;
    // the same data laid out the other way takes the per-element loop. Both add in double in
    // row order, so the results are identical, for blocks past 512 columns, leading kept dims
    // and broadcast (stride 0) rows.
    for (DType dt : {DType::float32, DType::float64}) {
        Tensor x = soma::randn({37, 515}, {.dtype = dt}) * 100.0;
        EXPECT_TRUE(soma::equal(x.sum({0}), x.t().contiguous().sum({1})));
        Tensor y = soma::randn({3, 5, 7}, {.dtype = dt});
        EXPECT_TRUE(soma::equal(y.sum({1}), y.transpose(1, 2).contiguous().sum({2})));
        Tensor e = soma::randn({1, 9}, {.dtype = dt}).expand({6, 9});
        EXPECT_TRUE(soma::equal(e.sum({0}), e.t().contiguous().sum({1})));
        EXPECT_TRUE(soma::allclose(e.sum({0}), e[0] * 6.0, 1e-6, 1e-6));
    }
}

TEST(ReduceLinalgReduce, MeanShapesAndValues) {
    Tensor x = f64({{0, 1, 2}, {3, 4, 5}});
    EXPECT_EQ(soma::mean(x).shape(), Shape{});
    EXPECT_DOUBLE_EQ(soma::mean(x).item(), 2.5);
    expect_near_vec(soma::mean(x, {1}), {1, 4});
    expect_near_vec(soma::mean(x, {-2}), {1.5, 2.5, 3.5});
    EXPECT_EQ(soma::mean(x, {-1}, true).shape(), (Shape{2, 1}));
    EXPECT_EQ(soma::mean(x, {0, 1}, true).shape(), (Shape{1, 1}));
    EXPECT_EQ(soma::mean(x, {1}).dtype(), DType::float64);
    EXPECT_TRUE(std::isnan(soma::mean(soma::zeros({0})).item()));
    EXPECT_EQ(soma::mean(soma::zeros({0, 3}), {0}).shape(), Shape{3});
}

TEST(ReduceLinalgReduce, MeanErrors) {
    std::string e = error_of([] { soma::mean(soma::arange(6)); });
    EXPECT_NE(e.find("mean"), std::string::npos) << e;
    EXPECT_NE(e.find("floating"), std::string::npos) << e;
    EXPECT_THROW(soma::mean(soma::arange(6)), soma::DTypeError);
    Tensor x = soma::zeros({2, 3});
    e = error_of([&] { soma::mean(x, {1, -1}); });
    EXPECT_NE(e.find("mean: dim 1 appears multiple times"), std::string::npos) << e;
    EXPECT_THROW(soma::mean(x, {2}), soma::IndexError);
}

TEST(ReduceLinalgReduce, ProdValuesAndDtypes) {
    Tensor x = f64({{1, 2, 3}, {4, 5, 6}});
    EXPECT_DOUBLE_EQ(soma::prod(x).item(), 720);
    expect_near_vec(soma::prod(x, {1}), {6, 120});
    expect_near_vec(soma::prod(x, {-2}, true), {4, 10, 18});
    EXPECT_EQ(soma::prod(x, {-2}, true).shape(), (Shape{1, 3}));
    Tensor b = soma::from_vector<bool>({true, true, false}, {3});
    EXPECT_EQ(soma::prod(b).dtype(), DType::int64);
    EXPECT_EQ(soma::prod(b).item<int64_t>(), 0);
    EXPECT_EQ(soma::prod(soma::arange(1, 6)).item<int64_t>(), 120);
    EXPECT_DOUBLE_EQ(soma::prod(soma::zeros({0})).item(), 1.0);
    EXPECT_DOUBLE_EQ(soma::sum(soma::zeros({0})).item(), 0.0);
}

TEST(ReduceLinalgReduce, ProdGradientWithZeros) {
    // Hand values: d/dx prod([2, 0, 3]) = [0, 6, 0]; two zeros: all zero.
    expect_near_vec(grad_of([](const Tensor& t) { return soma::prod(t); }, f64({2, 0, 3})),
                    {0, 6, 0});
    expect_near_vec(grad_of([](const Tensor& t) { return soma::prod(t); }, f64({0, 2, 0})),
                    {0, 0, 0});
    auto f = [](const std::vector<Tensor>& x) { return soma::prod(x[0], {1}); };
    check_grads(f, {randn64({3, 4})});
    check_grads(f, {f64({{1.5, 0, -2, 0.5}, {0, 0, 3, 1}, {0, 0, 0, 2}})});
    check_grads([](const std::vector<Tensor>& x) { return soma::prod(x[0]); },
                {f64({{1.5, 0.7}, {-2, 0}})});
}

TEST(ReduceLinalgReduce, MeanGradient) {
    check_grads(
        [](const std::vector<Tensor>& x) {
            return soma::mean(x[0], {0, 2}, true);
        },
        {randn64({2, 3, 4})});
}

// ---- max / min -----------------------------------------------------------------------------

TEST(ReduceLinalgReduce, MaxMinAll) {
    Tensor x = f64({{1, 5, -2}, {5, 0, 3}});
    EXPECT_DOUBLE_EQ(soma::max(x).item(), 5);
    EXPECT_DOUBLE_EQ(soma::min(x).item(), -2);
    EXPECT_EQ(soma::max(x).shape(), Shape{});
    EXPECT_EQ(soma::max(soma::arange(7)).item<int64_t>(), 6);
    // Ties split the gradient evenly.
    expect_near_vec(grad_of([](const Tensor& t) { return soma::max(t); }, x),
                    {0, 0.5, 0, 0.5, 0, 0});
    expect_near_vec(grad_of([](const Tensor& t) { return soma::min(t); }, x), {0, 0, 1, 0, 0, 0});
}

TEST(ReduceLinalgReduce, MaxMinEmptyErrors) {
    std::string e = error_of([] { soma::max(soma::zeros({0, 3})); });
    EXPECT_NE(e.find("max: cannot reduce an empty tensor"), std::string::npos) << e;
    e = error_of([] { soma::amin(soma::zeros({0, 3}), {0}); });
    EXPECT_NE(e.find("amin: cannot reduce over dim 0 of size 0"), std::string::npos) << e;
    e = error_of([] { soma::argmax(soma::zeros({0})); });
    EXPECT_NE(e.find("argmax"), std::string::npos) << e;
    e = error_of([] { soma::max(soma::zeros({2, 0}), 1); });
    EXPECT_NE(e.find("max: cannot reduce over dim 1"), std::string::npos) << e;
    // Reducing a non-empty dim of an empty tensor is fine.
    EXPECT_EQ(soma::amax(soma::zeros({0, 3}), {1}).shape(), Shape{0});
}

TEST(ReduceLinalgReduce, MaxMinAlongDim) {
    Tensor x = f64({{1, 7, 7}, {4, 2, 9}});
    auto [v, i] = soma::max(x, 1);
    expect_near_vec(v, {7, 9});
    EXPECT_EQ(i.dtype(), DType::int64);
    EXPECT_EQ(i.to_vector<int64_t>(), (std::vector<int64_t>{1, 2}));  // first of ties
    auto [v2, i2] = soma::min(x, -2, true);
    EXPECT_EQ(v2.shape(), (Shape{1, 3}));
    EXPECT_EQ(i2.shape(), (Shape{1, 3}));
    expect_near_vec(v2, {1, 2, 7});
    EXPECT_EQ(i2.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 0}));
    // Values' gradient goes to the index position only (no split for max(x, dim)).
    expect_near_vec(grad_of([](const Tensor& t) { return soma::max(t, 1).values; }, x),
                    {0, 1, 0, 0, 0, 1});
    check_grads([](const std::vector<Tensor>& t) { return soma::min(t[0], 0, true).values; },
                {randn64({3, 4})});
    // 0-dim input: dim 0 / -1 accepted, index 0.
    auto [v0, i0] = soma::max(soma::scalar_tensor(3.0), -1);
    EXPECT_DOUBLE_EQ(v0.item(), 3.0);
    EXPECT_EQ(i0.item<int64_t>(), 0);
}

TEST(ReduceLinalgReduce, AmaxAminTies) {
    Tensor x = soma::from_vector<double>({1, 3, 3, 0, 2, 2, -1, 2}, {2, 2, 2});
    expect_near_vec(soma::amax(x, {1, 2}), {3, 2});
    expect_near_vec(soma::amin(x, {-1}), {1, 0, 2, -1});
    EXPECT_EQ(soma::amax(x, {0, -1}, true).shape(), (Shape{1, 2, 1}));
    expect_near_vec(grad_of(
                        [](const Tensor& t) {
                            return soma::amax(t, {1, 2});
                        },
                        x),
                    {0, 0.5, 0.5, 0, 1.0 / 3, 1.0 / 3, 0, 1.0 / 3});
    check_grads(
        [](const std::vector<Tensor>& t) {
            return soma::amax(t[0], {0, 2});
        },
        {randn64({3, 2, 4})});
}

TEST(ReduceLinalgReduce, ArgmaxArgmin) {
    Tensor x = f64({{1, 9, 3}, {9, 0, -4}});
    EXPECT_EQ(soma::argmax(x).item<int64_t>(), 1);
    EXPECT_EQ(soma::argmin(x).item<int64_t>(), 5);
    EXPECT_EQ(soma::argmax(x).dtype(), DType::int64);
    EXPECT_EQ(soma::argmax(x, 0).to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 0}));
    EXPECT_EQ(soma::argmin(x, -1, true).shape(), (Shape{2, 1}));
    EXPECT_EQ(soma::argmin(x, -1, true).to_vector<int64_t>(), (std::vector<int64_t>{0, 2}));
    EXPECT_EQ(x.argmax(1).to_vector<int64_t>(), (std::vector<int64_t>{1, 0}));
    // Flattened index of a transposed view follows the view's logical order.
    EXPECT_EQ(soma::argmax(x.t()).item<int64_t>(), 1);
    EXPECT_THROW(soma::argmax(x, 2), soma::IndexError);
}

// ---- var / std / norm ----------------------------------------------------------------------

TEST(ReduceLinalgReduce, VarStdValues) {
    Tensor x = f64({1, 2, 3, 4});
    EXPECT_NEAR(soma::var(x).item(), 5.0 / 3, 1e-12);
    EXPECT_NEAR(soma::var(x, {}, false).item(), 1.25, 1e-12);
    EXPECT_NEAR(soma::std(x).item(), std::sqrt(5.0 / 3), 1e-12);
    EXPECT_NEAR(soma::std(x, {0}, false).item(), std::sqrt(1.25), 1e-12);
    Tensor y = f64({{1, 3}, {2, 6}});
    expect_near_vec(soma::var(y, {1}), {2, 8});
    expect_near_vec(soma::var(y, {0}, true, true), {0.5, 4.5});
    EXPECT_EQ(soma::var(y, {0}, true, true).shape(), (Shape{1, 2}));
    EXPECT_TRUE(std::isnan(soma::var(f64({3})).item()));  // N - 1 = 0
    // std of a constant: gradient 0 (not NaN), as PyTorch.
    expect_near_vec(grad_of([](const Tensor& t) { return soma::std(t); }, f64({2, 2})), {0, 0});
    std::string e = error_of([] { soma::var(soma::arange(4)); });
    EXPECT_NE(e.find("var: std and var only support floating point"), std::string::npos) << e;
}

TEST(ReduceLinalgReduce, VarStdGradients) {
    check_grads([](const std::vector<Tensor>& x) { return soma::var(x[0], {1}); },
                {randn64({3, 4})});
    check_grads(
        [](const std::vector<Tensor>& x) {
            return soma::var(x[0], {0, -1}, false, true);
        },
        {randn64({2, 3, 2})});
    check_grads([](const std::vector<Tensor>& x) { return soma::std(x[0], {-1}); },
                {randn64({3, 5})});
    check_grads([](const std::vector<Tensor>& x) { return soma::std(x[0], {}, false); },
                {randn64({4})});
}

TEST(ReduceLinalgReduce, NormValues) {
    Tensor x = f64({{3, -4}, {0, 0}});
    EXPECT_DOUBLE_EQ(soma::norm(x).item(), 5);
    expect_near_vec(soma::norm(x, 2, {1}), {5, 0});
    expect_near_vec(soma::norm(x, 1, {-1}, true), {7, 0});
    EXPECT_DOUBLE_EQ(soma::norm(x, kInf).item(), 4);
    EXPECT_NEAR(soma::norm(f64({1, 2}), 0.5).item(), std::pow(1 + std::sqrt(2.0), 2), 1e-12);
    EXPECT_NEAR(soma::norm(f64({1, -2, 2}), 3).item(), std::cbrt(17.0), 1e-12);
    // The gradient at the zero vector is 0, not NaN.
    expect_near_vec(grad_of([](const Tensor& t) { return soma::norm(t, 2, {1}); }, x),
                    {0.6, -0.8, 0, 0});
    expect_near_vec(grad_of([](const Tensor& t) { return soma::norm(t, 0.5, {1}); }, x),
                    {1 + 2 / std::sqrt(3.0), -(1 + std::sqrt(3.0) / 2), 0, 0});
    expect_near_vec(grad_of([](const Tensor& t) { return soma::norm(t, 0.5); }, f64({0, 4})),
                    {0, 1});
    expect_near_vec(grad_of([](const Tensor& t) { return soma::norm(t, kInf); }, f64({3, -3, 1})),
                    {0.5, -0.5, 0});
    std::string e = error_of([] { soma::norm(soma::arange(3)); });
    EXPECT_NE(e.find("norm"), std::string::npos) << e;
    EXPECT_THROW(soma::norm(soma::ones({2}), 0), soma::ValueError);
}

TEST(ReduceLinalgReduce, NormGradients) {
    for (double p : {2.0, 1.0, 3.0, 1.5, kInf}) {
        SCOPED_TRACE(p);
        check_grads([p](const std::vector<Tensor>& x) { return soma::norm(x[0], p, {1}); },
                    {randn64({3, 4})}, /*second=*/p != 1.0 && !std::isinf(p));
    }
}

// ---- logsumexp / softmax -------------------------------------------------------------------

TEST(ReduceLinalgReduce, LogsumexpStable) {
    Tensor x = f64({{1000, 1000}, {-kInf, -kInf}});
    expect_near_vec(soma::logsumexp(x, {1}), {1000 + std::log(2.0), -kInf});
    EXPECT_EQ(soma::logsumexp(x, {-1}, true).shape(), (Shape{2, 1}));
    EXPECT_NEAR(soma::logsumexp(f64({0, std::log(3.0)}), {0}).item(), std::log(4.0), 1e-12);
    EXPECT_EQ(soma::logsumexp(soma::zeros({0}), {0}).item(), -kInf);
    EXPECT_EQ(soma::logsumexp(soma::arange(3), {0}).dtype(), DType::float32);
    EXPECT_NEAR(soma::logsumexp(f64({{0, 0}, {0, 0}}), {}).item(), std::log(4.0), 1e-12);
    check_grads(
        [](const std::vector<Tensor>& t) {
            return soma::logsumexp(t[0], {0, 2});
        },
        {randn64({2, 3, 2})});
}

TEST(ReduceLinalgReduce, SoftmaxValues) {
    Tensor x = f64({{1, 2, 3}, {1000, 1000, -kInf}});
    Tensor y = soma::softmax(x, -1);
    double e1 = std::exp(1.0), e2 = std::exp(2.0), e3 = std::exp(3.0), s = e1 + e2 + e3;
    expect_near_vec(y, {e1 / s, e2 / s, e3 / s, 0.5, 0.5, 0}, 1e-12);
    expect_near_vec(soma::log_softmax(x, 1),
                    {std::log(e1 / s), std::log(e2 / s), std::log(e3 / s), -std::log(2.0),
                     -std::log(2.0), -kInf},
                    1e-12);
    expect_near_vec(soma::softmax(x, 0).sum({0}), {1, 1, 1});
    EXPECT_DOUBLE_EQ(soma::softmax(soma::scalar_tensor(2.0), 0).item(), 1.0);
    EXPECT_EQ(soma::softmax(soma::zeros({0, 3}), 0).shape(), (Shape{0, 3}));
    std::string e = error_of([] { soma::softmax(soma::arange(3), 0); });
    EXPECT_NE(e.find("softmax"), std::string::npos) << e;
    EXPECT_THROW(soma::log_softmax(soma::ones({2}), 1), soma::IndexError);
}

TEST(ReduceLinalgReduce, SoftmaxGradients) {
    check_grads([](const std::vector<Tensor>& x) { return soma::softmax(x[0], 1); },
                {randn64({3, 4})});
    check_grads([](const std::vector<Tensor>& x) { return soma::log_softmax(x[0], -2); },
                {randn64({3, 4})});
    check_grads([](const std::vector<Tensor>& x) { return soma::softmax(x[0].t(), 0); },
                {randn64({3, 4})});
}

// ---- matmul --------------------------------------------------------------------------------

TEST(ReduceLinalgMatmul, OneAndTwoDim) {
    Tensor a = f64({{1, 2, 3}, {4, 5, 6}});
    Tensor v = f64({1, 0, -1});
    Tensor d = soma::matmul(f64({1, 2, 3}), f64({4, 5, 6}));
    EXPECT_EQ(d.shape(), Shape{});
    EXPECT_DOUBLE_EQ(d.item(), 32);
    Tensor mv = soma::matmul(a, v);
    EXPECT_EQ(mv.shape(), Shape{2});
    expect_near_vec(mv, {-2, -2});
    Tensor vm = soma::matmul(f64({1, -1}), a);
    EXPECT_EQ(vm.shape(), Shape{3});
    expect_near_vec(vm, {-3, -3, -3});
    Tensor b = randn64({3, 4});
    Tensor mm = soma::matmul(a, b);
    EXPECT_EQ(mm.shape(), (Shape{2, 4}));
    expect_near_vec(mm, naive_mm(a, b), 1e-12);
    expect_near_vec(soma::mm(a, b), naive_mm(a, b), 1e-12);
    expect_near_vec(a.matmul(b), naive_mm(a, b), 1e-12);
}

TEST(ReduceLinalgMatmul, TransposedAndStridedViews) {
    Tensor a = randn64({5, 3}), b = randn64({4, 5});
    // a.t() and b.t() are column-major: they go to the GEMM as flags.
    Tensor at = a.t(), bt = b.t();
    Tensor ref_a = at.contiguous(), ref_b = bt.contiguous();
    expect_near_vec(soma::matmul(at, bt), naive_mm(ref_a, ref_b), 1e-12);
    expect_near_vec(soma::matmul(at, a), naive_mm(ref_a, a), 1e-12);
    expect_near_vec(soma::matmul(b, bt), naive_mm(b, ref_b), 1e-12);
    // Neither row- nor column-major (step-2 slices): copied.
    Tensor big = randn64({6, 10});
    Tensor s = big.slice(0, 0, 6, 2).slice(1, 0, 10, 2);  // [3, 5], strides [20, 2]
    expect_near_vec(soma::matmul(s, a), naive_mm(s.contiguous(), a), 1e-12);
    // Strided 1-D operands.
    Tensor v = big.select(1, 3);  // [6], stride 10
    Tensor m = randn64({6, 2});
    expect_near_vec(soma::matmul(v, m), naive_mm(v.reshape({1, 6}), m), 1e-12);
    expect_near_vec(soma::matmul(m.t(), v), naive_mm(m.t().contiguous(), v.reshape({6, 1})), 1e-12);
    // float32 path.
    Tensor af = a.to(DType::float32), bf = b.to(DType::float32);
    Tensor pf = soma::matmul(bf, af);
    EXPECT_EQ(pf.dtype(), DType::float32);
    expect_near_vec(pf, naive_mm(b, a), 1e-4);
    expect_near_vec(soma::matmul(af.t(), bf.t()), naive_mm(ref_a, ref_b), 1e-4);
}

TEST(ReduceLinalgMatmul, BatchedBroadcast) {
    Tensor a = randn64({2, 1, 3, 4}), b = randn64({5, 4, 2});
    Tensor c = soma::matmul(a, b);
    ASSERT_EQ(c.shape(), (Shape{2, 5, 3, 2}));
    for (int64_t i = 0; i < 2; ++i)
        for (int64_t j = 0; j < 5; ++j)
            expect_near_vec(c.select(0, i).select(0, j), naive_mm(a[i][0], b[j]), 1e-12);
    // [B, n, k] x [k, m] (folded into one GEMM) and with a transposed right operand.
    Tensor x = randn64({3, 2, 4}), w = randn64({5, 4});
    Tensor y = soma::matmul(x, w.t());
    ASSERT_EQ(y.shape(), (Shape{3, 2, 5}));
    for (int64_t i = 0; i < 3; ++i)
        expect_near_vec(y[i], naive_mm(x[i], w.t().contiguous()), 1e-12);
    // [k, m] on the left of a batch, 1-D operands with batches, bmm.
    Tensor l = randn64({2, 4});
    Tensor r = soma::matmul(l, x.transpose(1, 2));  // [3, 2, 2]
    for (int64_t i = 0; i < 3; ++i)
        expect_near_vec(r[i], naive_mm(l, x[i].t().contiguous()), 1e-12);
    Tensor vb = soma::matmul(f64({1, 2}), x);  // [3, 4]
    EXPECT_EQ(vb.shape(), (Shape{3, 4}));
    Tensor bv = soma::matmul(x, f64({1, 0, 0, 1}));  // [3, 2]
    EXPECT_EQ(bv.shape(), (Shape{3, 2}));
    EXPECT_DOUBLE_EQ(bv.at<double>({1, 1}), x.at<double>({1, 1, 0}) + x.at<double>({1, 1, 3}));
    Tensor q = randn64({3, 4, 2});
    Tensor z = soma::bmm(x, q);
    for (int64_t i = 0; i < 3; ++i) expect_near_vec(z[i], naive_mm(x[i], q[i]), 1e-12);
    // Irregular batch strides (a permuted batch) loop per batch element.
    Tensor p = randn64({2, 3, 4, 5}).permute({1, 0, 2, 3});  // [3, 2, 4, 5]
    Tensor pq = soma::matmul(p, randn64({5, 2}).expand({3, 2, 5, 2}));
    EXPECT_EQ(pq.shape(), (Shape{3, 2, 4, 2}));
}

TEST(ReduceLinalgMatmul, DtypesAndZeroSize) {
    Tensor ai = soma::arange(6).reshape({2, 3});
    Tensor bi = soma::arange(3);
    Tensor ci = soma::matmul(ai, bi);
    EXPECT_EQ(ci.dtype(), DType::int64);
    EXPECT_EQ(ci.to_vector<int64_t>(), (std::vector<int64_t>{5, 14}));
    Tensor mixed = soma::matmul(ai, f64({1, 1, 1}));
    EXPECT_EQ(mixed.dtype(), DType::float64);
    expect_near_vec(mixed, {3, 12});
    Tensor z = soma::matmul(soma::ones({2, 0}), soma::ones({0, 3}));
    EXPECT_EQ(z.shape(), (Shape{2, 3}));
    expect_near_vec(z, std::vector<double>(6, 0.0));
    EXPECT_EQ(soma::matmul(soma::ones({0, 4}), soma::ones({4, 3})).shape(), (Shape{0, 3}));
    EXPECT_EQ(soma::matmul(soma::ones({2, 0, 4}), soma::ones({4})).shape(), (Shape{2, 0}));
    Tensor o = soma::outer(f64({1, 2}), f64({3, 4, 5}));
    EXPECT_EQ(o.shape(), (Shape{2, 3}));
    expect_near_vec(o, {3, 4, 5, 6, 8, 10});
}

TEST(ReduceLinalgMatmul, Errors) {
    std::string e = error_of([] { soma::matmul(soma::ones({2, 3}), soma::ones({4, 5})); });
    EXPECT_EQ(e, "matmul: shapes [2, 3] and [4, 5] cannot be multiplied (3 != 4)");
    e = error_of([] { soma::matmul(soma::ones({3}), soma::ones({4})); });
    EXPECT_EQ(e, "matmul: shapes [3] and [4] cannot be multiplied (3 != 4)");
    e = error_of([] { soma::mm(soma::ones({2, 3, 4}), soma::ones({4, 5})); });
    EXPECT_NE(e.find("mm: expected 2-D tensors: got shapes [2, 3, 4] and [4, 5]"),
              std::string::npos)
        << e;
    e = error_of([] { soma::mm(soma::ones({2, 3}), soma::ones({2, 3})); });
    EXPECT_EQ(e, "mm: shapes [2, 3] and [2, 3] cannot be multiplied (3 != 2)");
    e = error_of([] { soma::bmm(soma::ones({2, 3, 4}), soma::ones({3, 4, 5})); });
    EXPECT_NE(e.find("bmm: batch sizes differ"), std::string::npos) << e;
    e = error_of([] { soma::matmul(soma::ones({2, 3, 4}), soma::ones({3, 4, 5})); });
    EXPECT_NE(e.find("matmul: shapes [2, 3, 4] and [3, 4, 5] have batch dims [2] and [3] that "
                     "are not broadcastable (2 vs 3)"),
              std::string::npos)
        << e;
    EXPECT_THROW(soma::matmul(soma::ones({3, 4}), soma::ones({2, 5, 4})), soma::ShapeError);
    e = error_of([] {
        soma::matmul(soma::ones({2, 2}, {.dtype = DType::boolean}), soma::ones({2, 2}));
    });
    EXPECT_NE(e.find("matmul: bool tensors are not supported"), std::string::npos) << e;
    EXPECT_THROW(soma::matmul(soma::ones({}), soma::ones({2})), soma::ShapeError);
    EXPECT_THROW(soma::outer(soma::ones({2, 1}), soma::ones({2})), soma::ShapeError);
}

TEST(ReduceLinalgMatmul, Gradients) {
    using V = std::vector<Tensor>;
    auto mm = [](const V& x) { return soma::matmul(x[0], x[1]); };
    check_grads(mm, {randn64({3}), randn64({3})});
    check_grads(mm, {randn64({2, 3}), randn64({3})});
    check_grads(mm, {randn64({3}), randn64({3, 2})});
    check_grads(mm, {randn64({2, 3}), randn64({3, 4})});
    check_grads(mm, {randn64({2, 1, 3, 2}), randn64({4, 2, 3})});
    check_grads(mm, {randn64({3, 2, 4}), randn64({4, 2})});
    check_grads(mm, {randn64({2, 4}), randn64({3, 4, 2})});
    check_grads(mm, {randn64({2, 2, 3}), randn64({3})});
    check_grads(mm, {randn64({3}), randn64({2, 3, 2})});
    // Transposed inputs (the flags path in forward and backward).
    check_grads([](const V& x) { return soma::matmul(x[0].t(), x[1].transpose(-1, -2)); },
                {randn64({3, 2}), randn64({2, 4, 3})});
    check_grads([](const V& x) { return soma::mm(x[0].t(), x[1].t()); },
                {randn64({3, 2}), randn64({4, 3})});
    check_grads([](const V& x) { return soma::matmul(x[0].t(), x[1]); },
                {randn64({3, 2}), randn64({3})});
    check_grads([](const V& x) { return soma::bmm(x[0], x[1]); },
                {randn64({2, 2, 3}), randn64({2, 3, 2})});
    check_grads([](const V& x) { return soma::outer(x[0], x[1]); }, {randn64({3}), randn64({2})});
}

}  // namespace
