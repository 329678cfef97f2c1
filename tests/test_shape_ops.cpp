// Focused unit tests for the shape and indexing ops (src/ops/shape.cpp): hand-computed values,
// PyTorch edge cases (zero-size inputs, legacy empty cat), error messages, and float64
// central-difference checks of the backward passes through soma::autograd::grad.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "soma/autograd.h"
#include "soma/ops.h"
#include "soma/tensor.h"

namespace soma {
// Internal differentiable helper defined in src/ops/shape.cpp (not in the public header).
Tensor index_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& src);
}  // namespace soma

namespace {

using soma::DType;
using soma::Shape;
using soma::Tensor;

Tensor ints(const std::vector<int64_t>& v, const Shape& shape = {}) {
    return soma::from_vector(v, shape.empty() ? Shape{static_cast<int64_t>(v.size())} : shape);
}
Tensor f64(const std::vector<double>& v, const Shape& shape) { return soma::from_vector(v, shape); }
// arange(n) as float32 in `shape`.
Tensor seq(const Shape& shape, DType dt = DType::float32) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return soma::arange(0, n, 1, {.dtype = dt}).reshape(shape);
}
std::vector<double> vals(const Tensor& t) { return t.to_vector<double>(); }

// Runs f and returns the exception message (empty when nothing was thrown).
template <class E, class F>
std::string error_of(F f) {
    try {
        f();
    } catch (const E& e) {
        return e.what();
    }
    return "";
}
#define EXPECT_ERROR(Type, expr, ...)                                \
    do {                                                             \
        std::string msg_ = error_of<Type>([&] { (void)(expr); });    \
        ASSERT_FALSE(msg_.empty()) << #expr " did not throw " #Type; \
        for (const char* part : {__VA_ARGS__})                       \
            EXPECT_NE(msg_.find(part), std::string::npos)            \
                << "message: " << msg_ << "\nmissing: " << part;     \
    } while (0)

// Compares autograd::grad of L = sum(f(inputs) * w) with central differences, for float64
// contiguous leaf inputs (w: fixed, non-uniform weights so every output element matters).
void expect_grads_match(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                        std::vector<Tensor> inputs, double eps = 1e-6, double tol = 1e-6) {
    for (auto& x : inputs) x.requires_grad_();
    Tensor y = f(inputs);
    std::vector<double> wv(static_cast<size_t>(y.numel()));
    for (size_t i = 0; i < wv.size(); ++i) wv[i] = 0.5 + 0.25 * static_cast<double>(i % 7);
    Tensor w = f64(wv, y.shape());
    auto loss = [&] { return (f(inputs) * w).sum(); };
    std::vector<Tensor> analytic = soma::autograd::grad({loss()}, inputs);
    soma::NoGradGuard ng;
    for (size_t k = 0; k < inputs.size(); ++k) {
        ASSERT_EQ(analytic[k].shape(), inputs[k].shape());
        std::vector<double> a = vals(analytic[k]);
        double* p = inputs[k].data_ptr<double>();
        for (int64_t j = 0; j < inputs[k].numel(); ++j) {
            double old = p[j];
            p[j] = old + eps;
            double lp = loss().item<double>();
            p[j] = old - eps;
            double lm = loss().item<double>();
            p[j] = old;
            EXPECT_NEAR(a[j], (lp - lm) / (2 * eps), tol) << "input " << k << " element " << j;
        }
    }
}

// Double backward of a linear op f: the backward g -> Jᵀg is itself differentiated. With
// gx = grad(f(x), x, grad_outputs = w, create_graph) we get d(Σ gx·v)/dw = J v, which central
// differences give as (f(x + εv) - f(x - εv)) / 2ε.
void expect_double_backward_matches(const std::function<Tensor(const Tensor&)>& f, Tensor x,
                                    double eps = 1e-6, double tol = 1e-6) {
    x.requires_grad_();
    Tensor y = f(x);
    std::vector<double> wv(static_cast<size_t>(y.numel())), vv(static_cast<size_t>(x.numel()));
    for (size_t i = 0; i < wv.size(); ++i) wv[i] = 1.0 + 0.5 * static_cast<double>(i % 5);
    for (size_t i = 0; i < vv.size(); ++i) vv[i] = 0.3 + 0.2 * static_cast<double>(i % 3);
    Tensor w = f64(wv, y.shape()).requires_grad_();
    Tensor v = f64(vv, x.shape());
    Tensor gx = soma::autograd::grad({y}, {x}, {w}, /*create_graph=*/true)[0];
    ASSERT_TRUE(gx.requires_grad()) << "backward of " << y.name() << " is not differentiable";
    Tensor jv = soma::autograd::grad({(gx * v).sum()}, {w})[0];
    soma::NoGradGuard ng;
    Tensor x0 = x.detach();
    Tensor numeric = (f(x0 + v * eps) - f(x0 - v * eps)) / (2 * eps);
    ASSERT_EQ(jv.shape(), numeric.shape());
    std::vector<double> a = vals(jv), n = vals(numeric);
    for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], n[i], tol) << "element " << i;
}

// ---- cat / stack ---------------------------------------------------------------------------

TEST(ShapeOps, CatValuesAlongEachDim) {
    Tensor a = seq({2, 2}), b = seq({2, 1}) + 10;
    Tensor c1 = soma::cat({a, b}, 1);
    EXPECT_EQ(c1.shape(), (Shape{2, 3}));
    EXPECT_EQ(vals(c1), (std::vector<double>{0, 1, 10, 2, 3, 11}));
    Tensor c0 = soma::cat({a, seq({1, 2}) + 5}, -2);
    EXPECT_EQ(c0.shape(), (Shape{3, 2}));
    EXPECT_EQ(vals(c0), (std::vector<double>{0, 1, 2, 3, 5, 6}));
    // Non-contiguous input (a transposed view).
    Tensor ct = soma::cat({a.t(), a}, 0);
    EXPECT_EQ(vals(ct), (std::vector<double>{0, 2, 1, 3, 0, 1, 2, 3}));
}

TEST(ShapeOps, CatPromotesTypes) {
    Tensor r = soma::cat({ints({1, 2}), soma::tensor({0.5})});
    EXPECT_EQ(r.dtype(), DType::float32);
    EXPECT_EQ(vals(r), (std::vector<double>{1, 2, 0.5}));
    Tensor b = soma::ones({2}, {.dtype = DType::boolean});
    Tensor ri = soma::cat({b, ints({7})});
    EXPECT_EQ(ri.dtype(), DType::int64);
    EXPECT_EQ(vals(ri), (std::vector<double>{1, 1, 7}));
}

TEST(ShapeOps, CatLegacyEmptyAndZeroSize) {
    // 1-D [0] tensors are skipped whatever the other shapes, but still take part in promotion.
    Tensor e = soma::zeros({0}, {.dtype = DType::float64});
    Tensor r = soma::cat({e, seq({2, 3})}, -1);
    EXPECT_EQ(r.shape(), (Shape{2, 3}));
    EXPECT_EQ(r.dtype(), DType::float64);
    EXPECT_EQ(soma::cat({soma::zeros({0}), soma::zeros({0})}, 1).shape(), (Shape{0}));
    // Other zero-size tensors are not skipped: they must match, and contribute nothing.
    EXPECT_EQ(soma::cat({soma::zeros({2, 0}), seq({2, 3})}, 1).shape(), (Shape{2, 3}));
    Tensor r0 = soma::cat({soma::zeros({0, 3}), seq({2, 3})}, 0);
    EXPECT_EQ(vals(r0), vals(seq({2, 3})));
    EXPECT_ERROR(soma::ShapeError, soma::cat({soma::zeros({0, 2}), seq({2, 3})}, 0), "cat", "dim 0",
                 "[0, 2]", "[2, 3]");
}

TEST(ShapeOps, CatErrors) {
    EXPECT_ERROR(soma::ValueError, soma::cat({}, 0), "cat", "non-empty");
    EXPECT_ERROR(soma::ShapeError, soma::cat({seq({2, 3}), seq({2, 4})}, 0), "cat", "dim 0",
                 "[2, 3]", "[2, 4]", "tensor 1");
    EXPECT_ERROR(soma::ShapeError, soma::cat({seq({2, 3}), seq({2, 3, 1})}, 0), "cat",
                 "same number of dims", "[2, 3, 1]");
    EXPECT_ERROR(soma::ShapeError, soma::cat({soma::tensor({1.0}).sum(), seq({2})}),
                 "zero-dimensional tensor (at position 0)");
    EXPECT_ERROR(soma::IndexError, soma::cat({seq({2, 3})}, 2), "cat", "dimension out of range");
}

TEST(ShapeOps, CatBackwardSplitsGradient) {
    Tensor a = seq({2, 2}).requires_grad_();
    Tensor b = seq({2, 1}, DType::float64).requires_grad_();
    Tensor i = ints({4, 5}, {2, 1});
    Tensor y = soma::cat({a, b, i}, 1);  // float64 [2, 4]
    EXPECT_EQ(y.dtype(), DType::float64);
    (y * f64({1, 2, 3, 4, 5, 6, 7, 8}, {2, 4})).sum().backward();
    EXPECT_EQ(a.grad().dtype(), DType::float32);
    EXPECT_EQ(vals(a.grad()), (std::vector<double>{1, 2, 5, 6}));
    EXPECT_EQ(vals(b.grad()), (std::vector<double>{3, 7}));
    expect_grads_match(
        [](const std::vector<Tensor>& in) {
            return soma::cat({in[0], in[1]}, 0);
        },
        {f64({1, 2, 3, 4}, {2, 2}), f64({5, 6}, {1, 2})});
}

TEST(ShapeOps, StackValuesBackwardAndErrors) {
    Tensor a = soma::tensor({1, 2}).requires_grad_(), b = soma::tensor({3, 4});
    Tensor s = soma::stack({a, b}, 1);
    EXPECT_EQ(s.shape(), (Shape{2, 2}));
    EXPECT_EQ(vals(s), (std::vector<double>{1, 3, 2, 4}));
    (s * soma::tensor({{1, 2}, {3, 4}})).sum().backward();
    EXPECT_EQ(vals(a.grad()), (std::vector<double>{1, 3}));
    EXPECT_EQ(soma::stack({soma::zeros({0}), soma::zeros({0})}, 1).shape(), (Shape{0, 2}));
    Tensor s0 = soma::stack({soma::tensor({1.0}).sum(), soma::tensor({2.0}).sum()});
    EXPECT_EQ(vals(s0), (std::vector<double>{1, 2}));
    EXPECT_ERROR(soma::ShapeError, soma::stack({seq({2, 3}), seq({2, 4})}), "stack", "[2, 4]",
                 "entry 1", "[2, 3]");
    EXPECT_ERROR(soma::ValueError, soma::stack({}), "stack", "non-empty");
    EXPECT_ERROR(soma::IndexError, soma::stack({seq({2, 3})}, 3), "stack");
}

// ---- split / chunk -------------------------------------------------------------------------

TEST(ShapeOps, SplitReturnsViews) {
    Tensor x = seq({5, 2});
    auto parts = soma::split(x, 2);
    ASSERT_EQ(parts.size(), 3u);
    EXPECT_EQ(parts[0].shape(), (Shape{2, 2}));
    EXPECT_EQ(parts[2].shape(), (Shape{1, 2}));
    EXPECT_EQ(vals(parts[2]), (std::vector<double>{8, 9}));
    for (auto& p : parts) EXPECT_TRUE(p.shares_storage(x));
    EXPECT_EQ(soma::split(seq({3}), 5).size(), 1u);
    EXPECT_EQ(soma::split(soma::zeros({0}), 0).size(), 1u);
    auto cols = soma::split(x, std::vector<int64_t>{1, 1}, -1);
    EXPECT_EQ(vals(cols[1]), (std::vector<double>{1, 3, 5, 7, 9}));
    auto z = soma::split(x, std::vector<int64_t>{0, 5, 0});
    EXPECT_EQ(z[0].shape(), (Shape{0, 2}));
    EXPECT_EQ(z[1].shape(), (Shape{5, 2}));
}

TEST(ShapeOps, ChunkSizesLikePyTorch) {
    auto sizes = [](const std::vector<Tensor>& v) {
        std::vector<int64_t> s;
        for (auto& t : v) s.push_back(t.size(0));
        return s;
    };
    EXPECT_EQ(sizes(soma::chunk(seq({5}), 3)), (std::vector<int64_t>{2, 2, 1}));
    EXPECT_EQ(sizes(soma::chunk(seq({6}), 4)), (std::vector<int64_t>{2, 2, 2}));
    EXPECT_EQ(sizes(soma::chunk(soma::zeros({0}), 3)), (std::vector<int64_t>{0, 0, 0}));
    EXPECT_EQ(sizes(soma::chunk(seq({2}), 5)), (std::vector<int64_t>{1, 1}));
}

TEST(ShapeOps, SplitErrorsAndBackward) {
    EXPECT_ERROR(soma::ValueError, soma::split(seq({3}), -1), "split", "non-negative", "-1");
    EXPECT_ERROR(soma::ValueError, soma::split(seq({3}), 0), "split", "size 3");
    EXPECT_ERROR(soma::ShapeError, soma::split(soma::tensor({1.0}).sum(), 1), "split",
                 "1-dimensional");
    EXPECT_ERROR(soma::ValueError, soma::split(seq({5}), std::vector<int64_t>{2, 2}), "split",
                 "[2, 2]", "5");
    EXPECT_ERROR(soma::ValueError, soma::split(seq({5}), std::vector<int64_t>{6, -1}), "split",
                 "non-negative");
    EXPECT_ERROR(soma::ValueError, soma::chunk(seq({5}), 0), "chunk", "greater than 0");
    Tensor x = seq({5}).requires_grad_();
    auto parts = soma::chunk(x, 2);  // [3], [2]
    ((parts[0] * 2).sum() + (parts[1] * 3).sum()).backward();
    EXPECT_EQ(vals(x.grad()), (std::vector<double>{2, 2, 2, 3, 3}));
}

// ---- index_select / index_add --------------------------------------------------------------

TEST(ShapeOps, IndexSelectValues) {
    Tensor x = seq({2, 3});
    EXPECT_EQ(vals(soma::index_select(x, 1, ints({2, 0, 2}))),
              (std::vector<double>{2, 0, 2, 5, 3, 5}));
    Tensor r0 = soma::index_select(x, 0, ints({1}, {}).reshape({}));
    EXPECT_EQ(r0.shape(), (Shape{1, 3}));  // a 0-dim index counts as one
    EXPECT_EQ(vals(r0), (std::vector<double>{3, 4, 5}));
    Tensor e = soma::index_select(x, 1, soma::zeros({0}, {.dtype = DType::int64}));
    EXPECT_EQ(e.shape(), (Shape{2, 0}));
    Tensor s = soma::index_select(soma::tensor({5.0}).sum(), 0, ints({0}));
    EXPECT_EQ(s.dim(), 0);
    EXPECT_EQ(s.item<double>(), 5.0);
    // strided input
    EXPECT_EQ(vals(soma::index_select(x.t(), 0, ints({2}))), (std::vector<double>{2, 5}));
}

TEST(ShapeOps, IndexSelectErrors) {
    Tensor x = seq({2, 3});
    EXPECT_ERROR(soma::IndexError, soma::index_select(x, 1, ints({3})), "index_select", "index 3",
                 "dim 1", "size 3");
    EXPECT_ERROR(soma::IndexError, soma::index_select(x, 0, ints({0, -1})), "index -1");
    EXPECT_ERROR(soma::DTypeError, soma::index_select(x, 0, soma::tensor({0.0})), "index_select",
                 "int64");
    EXPECT_ERROR(soma::ShapeError, soma::index_select(x, 0, ints({0}, {1, 1})), "index_select",
                 "1-D");
    EXPECT_ERROR(soma::IndexError, soma::index_select(x, 2, ints({0})), "index_select");
}

TEST(ShapeOps, IndexSelectBackwardAccumulatesRepeats) {
    Tensor x = seq({3, 2}).requires_grad_();
    Tensor y = soma::index_select(x, 0, ints({2, 0, 2}));
    (y * soma::tensor({{1, 2}, {3, 4}, {5, 6}})).sum().backward();
    EXPECT_EQ(vals(x.grad()), (std::vector<double>{3, 4, 0, 0, 6, 8}));
    expect_grads_match(
        [](const std::vector<Tensor>& in) {
            return soma::index_select(in[0], 1, ints({1, 1, 0}));
        },
        {f64({1, 2, 3, 4, 5, 6}, {2, 3})});
}

TEST(ShapeOps, IndexSelectDoubleBackward) {
    // L = Σ y², y = x[idx];  dL/dx_i = 2 x_i c_i (c_i = count of i in idx);  d(Σ dL/dx)/dx = 2c
    Tensor x = f64({1, 2, 3}, {3}).requires_grad_();
    Tensor y = soma::index_select(x, 0, ints({2, 2, 0, 2}));
    auto g = soma::autograd::grad({(y * y).sum()}, {x}, {}, /*create_graph=*/true);
    EXPECT_EQ(vals(g[0]), (std::vector<double>{2, 0, 18}));
    auto h = soma::autograd::grad({g[0].sum()}, {x});
    EXPECT_EQ(vals(h[0]), (std::vector<double>{2, 0, 6}));
}

TEST(ShapeOps, IndexAddHelper) {
    Tensor base = soma::zeros({3, 2});
    Tensor src = soma::tensor({{1, 2}, {3, 4}, {5, 6}});
    Tensor r = soma::index_add(base, 0, ints({2, 0, 2}), src);
    EXPECT_EQ(vals(r), (std::vector<double>{3, 4, 0, 0, 6, 8}));
    EXPECT_EQ(vals(base), (std::vector<double>(6, 0)));  // out of place
    EXPECT_ERROR(soma::IndexError, soma::index_add(base, 0, ints({3}), seq({1, 2})), "index_add",
                 "index 3");
    EXPECT_ERROR(soma::ShapeError, soma::index_add(base, 0, ints({1}), seq({2, 2})), "index_add",
                 "[2, 2]", "[1, 2]");
    expect_grads_match(
        [](const std::vector<Tensor>& in) {
            return soma::index_add(in[0], 1, ints({1, 0, 1}), in[1]);
        },
        {f64({1, 2, 3, 4}, {2, 2}), f64({1, 2, 3, 4, 5, 6}, {2, 3})});
}

// ---- gather / scatter_add ------------------------------------------------------------------

TEST(ShapeOps, GatherValues) {
    Tensor x = seq({2, 3});
    EXPECT_EQ(vals(soma::gather(x, 1, ints({2, 0, 1, 1}, {2, 2}))),
              (std::vector<double>{2, 0, 4, 4}));
    // index may be longer than x along dim, and smaller elsewhere
    Tensor r = soma::gather(x, 1, ints({2, 0, 1, 1, 1}, {1, 5}));
    EXPECT_EQ(r.shape(), (Shape{1, 5}));
    EXPECT_EQ(vals(r), (std::vector<double>{2, 0, 1, 1, 1}));
    EXPECT_EQ(vals(soma::gather(x, 0, ints({1, 0, 1}, {1, 3}))), (std::vector<double>{3, 1, 5}));
    EXPECT_EQ(soma::gather(x, 1, soma::zeros({2, 0}, {.dtype = DType::int64})).shape(),
              (Shape{2, 0}));
    EXPECT_EQ(soma::gather(x, 1, soma::zeros({0}, {.dtype = DType::int64})).shape(), (Shape{0}));
}

TEST(ShapeOps, GatherErrors) {
    Tensor x = seq({2, 3});
    EXPECT_ERROR(soma::IndexError, soma::gather(x, 1, ints({3}, {1, 1})), "gather", "index 3",
                 "dim 1", "size 3");
    EXPECT_ERROR(soma::IndexError, soma::gather(x, 1, ints({-1}, {1, 1})), "index -1");
    EXPECT_ERROR(soma::ShapeError, soma::gather(x, 1, ints({2, 0})), "gather",
                 "same number of dims", "[2]");
    EXPECT_ERROR(soma::ShapeError, soma::gather(x, 1, ints({0, 0, 0, 0, 0, 0}, {3, 2})), "gather",
                 "[3, 2]", "[2, 3]", "dim 0");
    EXPECT_ERROR(soma::DTypeError, soma::gather(x, 1, soma::zeros({1, 1})), "gather", "int64");
}

TEST(ShapeOps, GatherBackward) {
    Tensor x = seq({2, 3}).requires_grad_();
    soma::gather(x, 1, ints({2, 2, 0, 1}, {2, 2})).sum().backward();
    EXPECT_EQ(vals(x.grad()), (std::vector<double>{0, 0, 2, 1, 1, 0}));
    expect_grads_match(
        [](const std::vector<Tensor>& in) {
            return soma::gather(in[0], 0, ints({1, 0, 1, 1, 1, 0}, {2, 3}));
        },
        {f64({1, 2, 3, 4, 5, 6}, {2, 3})});
}

TEST(ShapeOps, ScatterAddValues) {
    Tensor x = seq({2, 3});
    Tensor idx = ints({2, 2, 0, 1}, {2, 2});
    Tensor r = soma::scatter_add(x, 1, idx, soma::full({2, 2}, 10));
    EXPECT_EQ(vals(r), (std::vector<double>{0, 1, 22, 13, 14, 5}));
    EXPECT_EQ(vals(x), (std::vector<double>{0, 1, 2, 3, 4, 5}));  // out of place
    // src larger than index: only index's box is used
    EXPECT_EQ(vals(soma::scatter_add(x, 1, idx, soma::full({3, 3}, 10))), vals(r));
    Tensor e = soma::scatter_add(x, 1, soma::zeros({0}, {.dtype = DType::int64}), seq({2, 2}));
    EXPECT_EQ(vals(e), vals(x));
}

TEST(ShapeOps, ScatterAddErrors) {
    Tensor x = seq({2, 3});
    Tensor idx = ints({2, 2, 0, 1}, {2, 2});
    EXPECT_ERROR(soma::ShapeError, soma::scatter_add(x, 1, idx, soma::ones({2, 1})), "scatter_add",
                 "[2, 2]", "[2, 1]");
    EXPECT_ERROR(soma::DTypeError,
                 soma::scatter_add(x, 1, idx, soma::ones({2, 2}, {.dtype = DType::float64})),
                 "scatter_add", "float64", "float32");
    EXPECT_ERROR(soma::IndexError, soma::scatter_add(x, 1, ints({3}, {1, 1}), soma::ones({2, 2})),
                 "scatter_add", "index 3", "dim 1");
    EXPECT_ERROR(soma::ShapeError, soma::scatter_add(x, 1, ints({1}), soma::ones({2, 2})),
                 "scatter_add", "same number of dims");
}

TEST(ShapeOps, ScatterAddBackward) {
    Tensor x = seq({2, 3}).requires_grad_();
    Tensor src = soma::ones({3, 3}).requires_grad_();
    Tensor y = soma::scatter_add(x, 1, ints({2, 2, 0, 1}, {2, 2}), src);
    (y * seq({2, 3})).sum().backward();
    EXPECT_EQ(vals(x.grad()), (std::vector<double>{0, 1, 2, 3, 4, 5}));
    // dsrc = gather(dy, 1, index) inside index's box, 0 outside it
    EXPECT_EQ(vals(src.grad()), (std::vector<double>{2, 2, 0, 3, 4, 0, 0, 0, 0}));
    expect_grads_match(
        [](const std::vector<Tensor>& in) {
            return soma::scatter_add(in[0], 0, ints({1, 1, 0, 1}, {2, 2}), in[1]);
        },
        {f64({1, 2, 3, 4, 5, 6}, {2, 3}), f64({1, 2, 3, 4, 5, 6}, {2, 3})});
}

// ---- embedding / one_hot -------------------------------------------------------------------

TEST(ShapeOps, EmbeddingValuesAndShapes) {
    Tensor w = seq({4, 3});
    Tensor y = soma::embedding(w, ints({1, 3, 0, 0}, {2, 2}));
    EXPECT_EQ(y.shape(), (Shape{2, 2, 3}));
    EXPECT_EQ(vals(y), (std::vector<double>{3, 4, 5, 9, 10, 11, 0, 1, 2, 0, 1, 2}));
    Tensor y0 = soma::embedding(w, ints({2}).reshape({}));
    EXPECT_EQ(y0.shape(), (Shape{3}));
    EXPECT_EQ(vals(y0), (std::vector<double>{6, 7, 8}));
    EXPECT_EQ(soma::embedding(w, soma::zeros({0, 2}, {.dtype = DType::int64})).shape(),
              (Shape{0, 2, 3}));
}

TEST(ShapeOps, EmbeddingErrors) {
    Tensor w = seq({4, 3});
    EXPECT_ERROR(soma::IndexError, soma::embedding(w, ints({1, 4})), "embedding", "index 4",
                 "num_embeddings 4");
    EXPECT_ERROR(soma::IndexError, soma::embedding(w, ints({-1})), "index -1");
    EXPECT_ERROR(soma::DTypeError, soma::embedding(w, soma::tensor({1.0})), "embedding", "int64");
    EXPECT_ERROR(soma::ShapeError, soma::embedding(seq({3}), ints({1})), "embedding", "2-D");
    EXPECT_ERROR(soma::ValueError, soma::embedding(w, ints({1}), 4), "padding_idx");
}

TEST(ShapeOps, EmbeddingBackwardSkipsPadding) {
    Tensor w = seq({4, 2}).requires_grad_();
    Tensor y = soma::embedding(w, ints({1, 3, 1, 0}, {2, 2}), /*padding_idx=*/3);
    (y * seq({2, 2, 2})).sum().backward();
    // row 1 gets rows 0 and 2 of dy; row 0 gets row 3; row 3 (padding) gets nothing
    EXPECT_EQ(vals(w.grad()), (std::vector<double>{6, 7, 4, 6, 0, 0, 0, 0}));
    // (no padding here: a padding row is read but deliberately gets no gradient)
    expect_grads_match(
        [](const std::vector<Tensor>& in) {
            return soma::embedding(in[0], ints({2, 0, 2, 1}, {2, 2}));
        },
        {f64({1, 2, 3, 4, 5, 6}, {3, 2})});
}

TEST(ShapeOps, OneHot) {
    Tensor r = soma::one_hot(ints({0, 2}));
    EXPECT_EQ(r.dtype(), DType::int64);
    EXPECT_EQ(r.shape(), (Shape{2, 3}));
    EXPECT_EQ(vals(r), (std::vector<double>{1, 0, 0, 0, 0, 1}));
    EXPECT_EQ(soma::one_hot(ints({1, 0, 0, 1}, {2, 2}), 4).shape(), (Shape{2, 2, 4}));
    EXPECT_EQ(vals(soma::one_hot(ints({2}).reshape({}))), (std::vector<double>{0, 0, 1}));
    EXPECT_EQ(soma::one_hot(soma::zeros({2, 0}, {.dtype = DType::int64}), 3).shape(),
              (Shape{2, 0, 3}));
    EXPECT_ERROR(soma::ValueError, soma::one_hot(ints({0, -2}), 4), "one_hot", "non-negative");
    EXPECT_ERROR(soma::ValueError, soma::one_hot(ints({0, 4}), 4), "one_hot", "smaller than", "4");
    EXPECT_ERROR(soma::ValueError, soma::one_hot(soma::zeros({0}, {.dtype = DType::int64})),
                 "one_hot", "empty");
    EXPECT_ERROR(soma::DTypeError, soma::one_hot(soma::zeros({2})), "one_hot", "int64");
}

TEST(ShapeOps, DoubleBackwardThroughIndexingOps) {
    Tensor x23 = f64({1, 2, 3, 4, 5, 6}, {2, 3});
    Tensor i3 = ints({2, 0, 2});
    Tensor i22 = ints({2, 2, 0, 1}, {2, 2});
    Tensor z23 = soma::zeros({2, 3}, {.dtype = DType::float64});
    expect_double_backward_matches([&](const Tensor& x) { return soma::index_select(x, 1, i3); },
                                   x23);
    expect_double_backward_matches([&](const Tensor& x) { return soma::gather(x, 1, i22); }, x23);
    // through src, with src larger than index (zero-extended gradient)
    expect_double_backward_matches(
        [&](const Tensor& s) { return soma::scatter_add(z23, 1, i22, s); },
        f64({1, 2, 3, 4, 5, 6, 7, 8, 9}, {3, 3}));
    expect_double_backward_matches(
        [&](const Tensor& w) {
            return soma::embedding(w, ints({2, 0, 2, 1}, {2, 2}));
        },
        f64({1, 2, 3, 4, 5, 6}, {3, 2}));
    expect_double_backward_matches([&](const Tensor& x) { return soma::cat({x, x * 2}, 1); }, x23);
}

TEST(ShapeOps, DoubleBackwardThroughShapeOps) {
    Tensor x23 = f64({1, 2, 3, 4, 5, 6}, {2, 3});
    expect_double_backward_matches(
        [](const Tensor& x) {
            return soma::pad(x, {1, -1, -1, 2});
        },
        x23);
    expect_double_backward_matches([](const Tensor& x) { return soma::repeat(x, {2, 1, 2}); }, x23);
    expect_double_backward_matches([](const Tensor& x) { return soma::flip(x, {0, 1}); }, x23);
    expect_double_backward_matches([](const Tensor& x) { return soma::tril(x, 1); }, x23);
}

// ---- pad / repeat / flip / tril / triu -----------------------------------------------------

TEST(ShapeOps, PadConstantAndCrop) {
    Tensor x = seq({2, 3});
    Tensor p = soma::pad(x, {1, 2}, -1);
    EXPECT_EQ(p.shape(), (Shape{2, 6}));
    EXPECT_EQ(vals(p), (std::vector<double>{-1, 0, 1, 2, -1, -1, -1, 3, 4, 5, -1, -1}));
    Tensor q = soma::pad(x, {-1, 0, 1, 0});  // crop one column on the left, one zero row on top
    EXPECT_EQ(q.shape(), (Shape{3, 2}));
    EXPECT_EQ(vals(q), (std::vector<double>{0, 0, 1, 2, 4, 5}));
    EXPECT_EQ(soma::pad(x, {-3, 0}).shape(), (Shape{2, 0}));
    EXPECT_EQ(vals(soma::pad(x, {2, -4})), (std::vector<double>{0, 0}));
    EXPECT_EQ(soma::pad(soma::zeros({0, 3}), {1, 1}).shape(), (Shape{0, 5}));
    EXPECT_EQ(vals(soma::pad(soma::zeros({3, 0}), {1, 0})), (std::vector<double>{0, 0, 0}));
    EXPECT_EQ(vals(soma::pad(ints({1, 1}), {1, 1}, 2.7)), (std::vector<double>{2, 1, 1, 2}));
    EXPECT_ERROR(soma::ValueError, soma::pad(x, {1, 2, 3}), "pad", "divisible by 2");
    EXPECT_ERROR(soma::ValueError, soma::pad(x, {1, 2, 3, 4, 5, 6}), "pad", "too large", "[2, 3]");
    EXPECT_ERROR(soma::ShapeError, soma::pad(x, {-3, -1}), "pad", "negative output size");
}

TEST(ShapeOps, PadBackward) {
    Tensor x = seq({2, 3}).requires_grad_();
    (soma::pad(x, {-1, 1, 1, 0}) * seq({3, 3})).sum().backward();
    // y[1 + i][j] = x[i][j + 1]: x[i][0] was cropped
    EXPECT_EQ(vals(x.grad()), (std::vector<double>{0, 3, 4, 0, 6, 7}));
    expect_grads_match(
        [](const std::vector<Tensor>& in) {
            return soma::pad(in[0], {2, -1, 0, 1}, 0.5);
        },
        {f64({1, 2, 3, 4, 5, 6}, {2, 3})});
}

TEST(ShapeOps, RepeatValuesAndBackward) {
    Tensor x = seq({2, 3});
    Tensor r = soma::repeat(x, {2, 1, 2});
    EXPECT_EQ(r.shape(), (Shape{2, 2, 6}));
    EXPECT_EQ(vals(r.select(0, 1)), (std::vector<double>{0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5}));
    EXPECT_EQ(soma::repeat(x, {0, 2}).shape(), (Shape{0, 6}));
    EXPECT_EQ(vals(soma::repeat(soma::tensor({2.0}).sum(), {3})), (std::vector<double>{2, 2, 2}));
    EXPECT_FALSE(soma::repeat(x, {1, 1}).shares_storage(x));
    EXPECT_ERROR(soma::ValueError, soma::repeat(x, {2}), "repeat", "[2, 3]");
    EXPECT_ERROR(soma::ValueError, soma::repeat(x, {-1, 2}), "repeat", "non-negative");

    Tensor xg = seq({2, 3}).requires_grad_();
    (soma::repeat(xg, {2, 1, 2}) * seq({2, 2, 6})).sum().backward();
    // each x[i][j] appears at r[t][i][j + 3u]; Σ over t in {0,1}, u in {0,1} of arange values
    std::vector<double> want(6);
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 3; ++j)
            for (int t = 0; t < 2; ++t)
                for (int u = 0; u < 2; ++u) want[i * 3 + j] += t * 12 + i * 6 + j + 3 * u;
    EXPECT_EQ(vals(xg.grad()), want);
    expect_grads_match(
        [](const std::vector<Tensor>& in) {
            return soma::repeat(in[0], {2, 1, 3});
        },
        {f64({1, 2, 3, 4}, {2, 2})});
}

TEST(ShapeOps, RepeatManyDims) {
    // 5 repeated dims: [r0, s0, ..., r4, s4] would need 10 dims, past the 8-dim limit.
    Tensor x = seq({1, 2, 1, 2, 1});
    Tensor r = soma::repeat(x, {2, 2, 2, 2, 2});
    EXPECT_EQ(r.shape(), (Shape{2, 4, 2, 4, 2}));
    EXPECT_EQ(r.sum().item<double>(), 6.0 * 32);
    Tensor xg = seq({1, 2, 1, 2, 1}).requires_grad_();
    soma::repeat(xg, {2, 2, 2, 2, 2}).sum().backward();
    EXPECT_EQ(vals(xg.grad()), (std::vector<double>(4, 32)));
}

TEST(ShapeOps, FlipValuesBackwardErrors) {
    Tensor x = seq({2, 3});
    EXPECT_EQ(vals(soma::flip(x, {0, 1})), (std::vector<double>{5, 4, 3, 2, 1, 0}));
    EXPECT_EQ(vals(soma::flip(x, {-1})), (std::vector<double>{2, 1, 0, 5, 4, 3}));
    EXPECT_EQ(vals(soma::flip(x.t(), {0})), (std::vector<double>{2, 5, 1, 4, 0, 3}));
    Tensor same = soma::flip(x, {});
    EXPECT_EQ(vals(same), vals(x));
    EXPECT_FALSE(same.shares_storage(x));
    EXPECT_EQ(soma::flip(soma::zeros({0, 2}), {0, 1}).shape(), (Shape{0, 2}));
    EXPECT_ERROR(soma::IndexError, soma::flip(x, {0, -2}), "flip", "multiple times");
    EXPECT_ERROR(soma::IndexError, soma::flip(x, {2}), "flip", "out of range");
    Tensor xg = seq({2, 3}).requires_grad_();
    (soma::flip(xg, {1}) * seq({2, 3})).sum().backward();
    EXPECT_EQ(vals(xg.grad()), (std::vector<double>{2, 1, 0, 5, 4, 3}));
}

TEST(ShapeOps, TrilTriu) {
    Tensor x = seq({2, 3}) + 1;
    EXPECT_EQ(vals(soma::tril(x)), (std::vector<double>{1, 0, 0, 4, 5, 0}));
    EXPECT_EQ(vals(soma::tril(x, -1)), (std::vector<double>{0, 0, 0, 4, 0, 0}));
    EXPECT_EQ(vals(soma::triu(x, 1)), (std::vector<double>{0, 2, 3, 0, 0, 6}));
    Tensor b = soma::triu(seq({2, 2, 3}) + 1, 1);  // batch dims
    EXPECT_EQ(vals(b), (std::vector<double>{0, 2, 3, 0, 0, 6, 0, 8, 9, 0, 0, 12}));
    Tensor tb = soma::tril(soma::ones({2, 2}, {.dtype = DType::boolean}));
    EXPECT_EQ(tb.dtype(), DType::boolean);
    EXPECT_EQ(vals(tb), (std::vector<double>{1, 0, 1, 1}));
    EXPECT_EQ(vals(soma::tril(ints({1, 2, 3, 4}, {2, 2}), 5)), (std::vector<double>{1, 2, 3, 4}));
    EXPECT_EQ(soma::triu(soma::zeros({0, 3})).shape(), (Shape{0, 3}));
    EXPECT_ERROR(soma::ShapeError, soma::triu(seq({3})), "triu", "at least 2 dims", "[3]");
    Tensor xg = seq({2, 2}).requires_grad_();
    (soma::tril(xg) * soma::tensor({{1, 2}, {3, 4}})).sum().backward();
    EXPECT_EQ(vals(xg.grad()), (std::vector<double>{1, 0, 3, 4}));
    expect_grads_match([](const std::vector<Tensor>& in) { return soma::triu(in[0], -1); },
                       {f64({1, 2, 3, 4, 5, 6, 7, 8, 9}, {3, 3})});
}

}  // namespace
