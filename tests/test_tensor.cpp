// Tensor core: dtypes, factories, views, element access, printing (golden strings from
// PyTorch 1.13), type promotion, broadcasting, in-place ops and the version counter.
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "soma/autograd.h"
#include "soma/ops.h"
#include "soma/random.h"
#include "soma/tensor.h"
#include "test_util.h"

using namespace soma;
using namespace soma::testing;

namespace {}  // namespace

// ---- dtypes -------------------------------------------------------------------------------------

TEST(TensorDType, NamesSizesAndPromotion) {
    EXPECT_STREQ(dtype_name(DType::float32), "float32");
    EXPECT_STREQ(dtype_name(DType::float64), "float64");
    EXPECT_STREQ(dtype_name(DType::int64), "int64");
    EXPECT_STREQ(dtype_name(DType::boolean), "bool");
    EXPECT_EQ(dtype_size(DType::float32), 4u);
    EXPECT_EQ(dtype_size(DType::float64), 8u);
    EXPECT_EQ(dtype_size(DType::int64), 8u);
    EXPECT_EQ(dtype_size(DType::boolean), 1u);
    EXPECT_EQ(promote_types(DType::boolean, DType::int64), DType::int64);
    EXPECT_EQ(promote_types(DType::int64, DType::float32), DType::float32);
    EXPECT_EQ(promote_types(DType::float64, DType::float32), DType::float64);
    EXPECT_EQ(promote_types(DType::boolean, DType::boolean), DType::boolean);
    EXPECT_TRUE(is_floating(DType::float64));
    EXPECT_FALSE(is_floating(DType::int64));
    EXPECT_TRUE(is_integral(DType::boolean, true));
    EXPECT_FALSE(is_integral(DType::boolean));
}

TEST(TensorDType, EveryDTypeStoresItsValues) {
    for (DType dt : {DType::float32, DType::float64, DType::int64, DType::boolean}) {
        Tensor t = full({2, 3}, 1, {.dtype = dt});
        EXPECT_EQ(t.dtype(), dt);
        EXPECT_EQ(t.numel(), 6);
        for (double v : vd(t)) EXPECT_EQ(v, 1.0);
    }
    Tensor f = zeros({2}, {.dtype = DType::float64});
    EXPECT_NE(f.data_ptr<double>(), nullptr);
    EXPECT_CONTAINS(error_of<DTypeError>([&] { f.data_ptr<float>(); }), "data_ptr");
    Tensor b = full({3}, true, {.dtype = DType::boolean});
    EXPECT_EQ(vb(b), (std::vector<bool>{true, true, true}));
    Tensor i = full({2}, int64_t{1} << 40, {.dtype = DType::int64});
    EXPECT_EQ(vi(i), (std::vector<int64_t>{int64_t{1} << 40, int64_t{1} << 40}));
}

// ---- factories ----------------------------------------------------------------------------------

TEST(TensorFactory, ZerosOnesFull) {
    Tensor z = zeros({2, 3});
    EXPECT_EQ(z.shape(), (Shape{2, 3}));
    EXPECT_EQ(z.dtype(), DType::float32);
    EXPECT_TRUE(z.is_contiguous());
    EXPECT_EQ(z.strides(), (Shape{3, 1}));
    EXPECT_EQ(vf(z), std::vector<float>(6, 0.f));
    EXPECT_EQ(vf(ones({4})), std::vector<float>(4, 1.f));
    Tensor f = full({2}, 2.5, {.dtype = DType::float64});
    EXPECT_EQ(f.dtype(), DType::float64);
    EXPECT_EQ(vd(f), (std::vector<double>{2.5, 2.5}));
    Tensor g = ones({3}, {.requires_grad = true});
    EXPECT_TRUE(g.requires_grad());
    EXPECT_TRUE(g.is_leaf());
    EXPECT_EQ(zeros({}).dim(), 0);
    EXPECT_EQ(zeros({}).numel(), 1);
    EXPECT_EQ(zeros({0, 3}).numel(), 0);
    EXPECT_TRUE(zeros({0, 3}).is_contiguous());
    EXPECT_TRUE(zeros({2, 0}).is_contiguous());
    EXPECT_CONTAINS(error_of<ShapeError>([] { zeros({2, -1}); }), "negative dimension");
}

TEST(TensorFactory, ArangeIntAndFloatForms) {
    Tensor a = arange(5);
    EXPECT_EQ(a.dtype(), DType::int64);
    EXPECT_EQ(vi(a), (std::vector<int64_t>{0, 1, 2, 3, 4}));
    Tensor b = arange(2, 10, 3);
    EXPECT_EQ(b.dtype(), DType::int64);
    EXPECT_EQ(vi(b), (std::vector<int64_t>{2, 5, 8}));
    Tensor c = arange(0, 1, 0.25);
    EXPECT_EQ(c.dtype(), DType::float32);
    EXPECT_EQ(vf(c), (std::vector<float>{0.f, 0.25f, 0.5f, 0.75f}));
    Tensor d = arange(5.0);
    EXPECT_EQ(d.dtype(), DType::float32);
    EXPECT_EQ(d.numel(), 5);
    EXPECT_EQ(vi(arange(5, 0, -2)), (std::vector<int64_t>{5, 3, 1}));
    EXPECT_EQ(arange(0).numel(), 0);
    EXPECT_EQ(arange(3, 3).numel(), 0);
    Tensor e = arange(0, 3, 1, {.dtype = DType::float64});
    EXPECT_EQ(e.dtype(), DType::float64);
    EXPECT_EQ(vd(e), (std::vector<double>{0, 1, 2}));
    EXPECT_CONTAINS(error_of<ValueError>([] { arange(0, 5, 0); }), "step must be nonzero");
    EXPECT_CONTAINS(error_of<ValueError>([] { arange(5, 0, 1); }), "arange");
}

TEST(TensorFactory, Linspace) {
    EXPECT_EQ(vf(linspace(0, 1, 5)), (std::vector<float>{0.f, 0.25f, 0.5f, 0.75f, 1.f}));
    EXPECT_EQ(vf(linspace(-1, 1, 3)), (std::vector<float>{-1.f, 0.f, 1.f}));
    // torch.linspace(0, 10, 1) == tensor([0.])
    EXPECT_EQ(vf(linspace(0, 10, 1)), (std::vector<float>{0.f}));
    EXPECT_EQ(linspace(0, 1, 0).numel(), 0);
    Tensor d = linspace(0, 1, 11, {.dtype = DType::float64});
    EXPECT_EQ(d.dtype(), DType::float64);
    EXPECT_DOUBLE_EQ(d.at({3}), 0.3);
    EXPECT_DOUBLE_EQ(d.at({10}), 1.0);
    EXPECT_CONTAINS(error_of<ValueError>([] { linspace(0, 1, -1); }), "non-negative");
}

TEST(TensorFactory, Eye) {
    EXPECT_EQ(vf(eye(3)), (std::vector<float>{1, 0, 0, 0, 1, 0, 0, 0, 1}));
    Tensor r = eye(2, 3);
    EXPECT_EQ(r.shape(), (Shape{2, 3}));
    EXPECT_EQ(vf(r), (std::vector<float>{1, 0, 0, 0, 1, 0}));
    EXPECT_EQ(vf(eye(3, 2)), (std::vector<float>{1, 0, 0, 1, 0, 0}));
    EXPECT_EQ(eye(2, 2, {.dtype = DType::int64}).dtype(), DType::int64);
    EXPECT_EQ(eye(0).numel(), 0);
}

TEST(TensorFactory, RandomFactories) {
    manual_seed(1);
    Tensor r = rand({3, 4});
    EXPECT_EQ(r.shape(), (Shape{3, 4}));
    EXPECT_EQ(r.dtype(), DType::float32);
    for (float v : vf(r)) {
        EXPECT_GE(v, 0.f);
        EXPECT_LT(v, 1.f);
    }
    EXPECT_EQ(randn({5}, {.dtype = DType::float64}).dtype(), DType::float64);
    Tensor i = randint(3, 7, {50});
    EXPECT_EQ(i.dtype(), DType::int64);
    for (int64_t v : vi(i)) {
        EXPECT_GE(v, 3);
        EXPECT_LT(v, 7);
    }
    Tensor n = normal(10.0, 0.0, {4});
    EXPECT_EQ(vf(n), std::vector<float>(4, 10.f));
    EXPECT_TRUE(rand({2}, {.requires_grad = true}).requires_grad());
    EXPECT_CONTAINS(error_of<DTypeError>([] { rand({2}, {.dtype = DType::int64}); }),
                    "must be floating");
    EXPECT_CONTAINS(error_of<ValueError>([] { randint(3, 3, {2}); }), "must be greater");
    EXPECT_CONTAINS(error_of<ValueError>([] { normal(0, -1, {2}); }), "std must be >= 0");
}

TEST(TensorFactory, LikeFactoriesKeepShapeAndDType) {
    Tensor i = arange(6).view({2, 3});
    Tensor z = zeros_like(i);
    EXPECT_EQ(z.shape(), (Shape{2, 3}));
    EXPECT_EQ(z.dtype(), DType::int64);
    EXPECT_EQ(vi(ones_like(i)), std::vector<int64_t>(6, 1));
    EXPECT_EQ(vi(full_like(i, 7)), std::vector<int64_t>(6, 7));
    EXPECT_EQ(empty_like(i).shape(), (Shape{2, 3}));
    Tensor d = zeros({4}, {.dtype = DType::float64});
    EXPECT_EQ(rand_like(d).dtype(), DType::float64);
    EXPECT_EQ(randn_like(d).shape(), (Shape{4}));
    // *_like never copies requires_grad (as torch.zeros_like).
    Tensor w = ones({2}, {.requires_grad = true});
    EXPECT_FALSE(zeros_like(w).requires_grad());
}

TEST(TensorFactory, FromVectorAndTensorLiterals) {
    Tensor a = from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
    EXPECT_EQ(a.shape(), (Shape{2, 3}));
    EXPECT_EQ(a.dtype(), DType::float32);
    EXPECT_FLOAT_EQ(a.at({1, 2}), 6.f);
    Tensor b = from_vector(std::vector<int64_t>{4, 5});
    EXPECT_EQ(b.dtype(), DType::int64);
    EXPECT_EQ(vi(b), (std::vector<int64_t>{4, 5}));
    Tensor c = from_vector(std::vector<bool>{true, false, true});
    EXPECT_EQ(c.dtype(), DType::boolean);
    EXPECT_EQ(vb(c), (std::vector<bool>{true, false, true}));
    Tensor d = from_vector(std::vector<double>{1.5, 2.5}, {2},
                           {.dtype = DType::float32, .requires_grad = true});
    EXPECT_EQ(d.dtype(), DType::float32);
    EXPECT_TRUE(d.requires_grad());
    EXPECT_TRUE(d.is_leaf());
    Tensor e = from_vector(std::vector<float>{}, {0, 2});
    EXPECT_EQ(e.shape(), (Shape{0, 2}));
    EXPECT_CONTAINS(error_of<ShapeError>([] {
                        from_vector(std::vector<float>{1, 2, 3}, {2, 2});
                    }),
                    "from_vector: 3 values do not fill shape [2, 2]");

    Tensor t = tensor({1, 2, 3});
    EXPECT_EQ(t.dtype(), DType::float32);
    EXPECT_EQ(vf(t), (std::vector<float>{1, 2, 3}));
    Tensor m = tensor({{1, 2}, {3, 4}, {5, 6}});
    EXPECT_EQ(m.shape(), (Shape{3, 2}));
    EXPECT_FLOAT_EQ(m.at({2, 0}), 5.f);
    Tensor ti = tensor({1, 2}, {.dtype = DType::int64});
    EXPECT_EQ(ti.dtype(), DType::int64);
    Tensor tg = tensor({1, 2}, {.requires_grad = true});
    EXPECT_TRUE(tg.requires_grad() && tg.is_leaf());
    EXPECT_CONTAINS(error_of<ShapeError>([] { tensor({{1, 2}, {3}}); }), "different lengths");
}

TEST(TensorFactory, ScalarTensor) {
    Tensor i = scalar_tensor(3);
    EXPECT_EQ(i.dim(), 0);
    EXPECT_EQ(i.dtype(), DType::int64);
    EXPECT_EQ(i.item<int64_t>(), 3);
    Tensor f = scalar_tensor(2.5);
    EXPECT_EQ(f.dtype(), DType::float32);
    EXPECT_EQ(f.item<float>(), 2.5f);
    EXPECT_EQ(scalar_tensor(true).dtype(), DType::boolean);
    Tensor d = scalar_tensor(1, {.dtype = DType::float64});
    EXPECT_EQ(d.dtype(), DType::float64);
    EXPECT_EQ(d.item(), 1.0);
}

// ---- views --------------------------------------------------------------------------------------

TEST(TensorView, ViewSharesStorageAndWritesThrough) {
    Tensor base = arange(0, 6, 1, {.dtype = DType::float32});
    Tensor v = base.view({2, 3});
    EXPECT_TRUE(v.shares_storage(base));
    EXPECT_EQ(v.shape(), (Shape{2, 3}));
    v.select(0, 1).fill_(9);
    EXPECT_EQ(vf(base), (std::vector<float>{0, 1, 2, 9, 9, 9}));
    EXPECT_EQ(base.view({-1, 2}).shape(), (Shape{3, 2}));
    EXPECT_EQ(base.view({3, -1}).shape(), (Shape{3, 2}));
    EXPECT_CONTAINS(error_of<ShapeError>([&] { base.view({4, -1}); }), "view");
    EXPECT_CONTAINS(error_of<ShapeError>([&] {
                        base.view({-1, -1});
                    }),
                    "only one dimension can be inferred");
    EXPECT_CONTAINS(error_of<ShapeError>([&] { base.view({7}); }),
                    "view: shape [7] is invalid for input of size 6");
}

TEST(TensorView, ViewOfIncompatibleLayoutRaises) {
    Tensor t = arange(0, 6, 1, {.dtype = DType::float32}).view({2, 3}).t();
    EXPECT_FALSE(t.is_contiguous());
    EXPECT_EQ(error_of<ShapeError>([&] { t.view({6}); }),
              "view: size [6] is not compatible with input shape [3, 2] and strides [1, 3] (at "
              "least one dimension spans across two contiguous subspaces). Use reshape() "
              "instead.");
    // Splitting a dim that is itself contiguous is fine even on a transposed tensor.
    Tensor u = arange(0, 24, 1, {.dtype = DType::float32}).view({4, 6}).t();  // [6, 4]
    Tensor w = u.view({2, 3, 4});
    EXPECT_TRUE(w.shares_storage(u));
    EXPECT_FLOAT_EQ(w.at({1, 2, 3}), u.at({5, 3}));
}

TEST(TensorView, ReshapeCopiesOnlyWhenNeeded) {
    Tensor base = arange(0, 6, 1, {.dtype = DType::float32}).view({2, 3});
    Tensor r = base.reshape({3, 2});
    EXPECT_TRUE(r.shares_storage(base));
    Tensor t = base.t();
    Tensor c = t.reshape({6});
    EXPECT_FALSE(c.shares_storage(base));
    EXPECT_EQ(vf(c), (std::vector<float>{0, 3, 1, 4, 2, 5}));
    EXPECT_TRUE(t.reshape({3, 2}).shares_storage(base));  // same shape: a view
    EXPECT_EQ(base.reshape({-1}).shape(), (Shape{6}));
}

TEST(TensorView, ZeroDimViews) {
    Tensor s = scalar_tensor(3.5);
    EXPECT_EQ(s.view({1}).shape(), (Shape{1}));
    EXPECT_EQ(s.view({1, 1}).shape(), (Shape{1, 1}));
    EXPECT_EQ(s.reshape({1}).shape(), (Shape{1}));
    EXPECT_EQ(s.flatten().shape(), (Shape{1}));
    EXPECT_EQ(s.unsqueeze(0).shape(), (Shape{1}));
    EXPECT_EQ(ones({1, 1}).view({}).dim(), 0);
    EXPECT_EQ(s.squeeze().dim(), 0);
    EXPECT_EQ(s.t().dim(), 0);
}

TEST(TensorView, PermuteAndTranspose) {
    Tensor x = arange(0, 24, 1, {.dtype = DType::float32}).view({2, 3, 4});
    Tensor p = x.permute({2, 0, 1});
    EXPECT_EQ(p.shape(), (Shape{4, 2, 3}));
    EXPECT_EQ(p.strides(), (Shape{1, 12, 4}));
    EXPECT_FLOAT_EQ(p.at({3, 1, 2}), x.at({1, 2, 3}));
    EXPECT_TRUE(p.shares_storage(x));
    Tensor t = x.transpose(0, -1);
    EXPECT_EQ(t.shape(), (Shape{4, 3, 2}));
    EXPECT_FLOAT_EQ(t.at({1, 2, 0}), x.at({0, 2, 1}));
    t.select(0, 0).fill_(-1);  // x[..., 0] = -1
    EXPECT_FLOAT_EQ(x.at({1, 2, 0}), -1.f);
    EXPECT_FLOAT_EQ(x.at({1, 2, 1}), 21.f);
    EXPECT_CONTAINS(error_of<ShapeError>([&] { x.permute({0, 1}); }), "permute");
    EXPECT_CONTAINS(error_of<ShapeError>([&] { x.permute({0, 1, 1}); }), "repeated dim");
    EXPECT_CONTAINS(error_of<IndexError>([&] { x.transpose(0, 3); }), "dimension out of range");
    EXPECT_CONTAINS(error_of<ShapeError>([&] { x.t(); }), "t: expects a tensor with <= 2 dims");
}

TEST(TensorView, NarrowSliceSelect) {
    Tensor x = arange(0, 10, 1, {.dtype = DType::float32});
    Tensor n = x.narrow(0, 2, 3);
    EXPECT_EQ(vf(n), (std::vector<float>{2, 3, 4}));
    EXPECT_EQ(n.storage_offset(), 2);
    EXPECT_EQ(vf(x.narrow(0, -3, 2)), (std::vector<float>{7, 8}));
    Tensor s = x.slice(0, 1, 8, 3);
    EXPECT_EQ(vf(s), (std::vector<float>{1, 4, 7}));
    EXPECT_EQ(s.stride(0), 3);
    EXPECT_EQ(vf(x.slice(0, -4, -1, 2)), (std::vector<float>{6, 8}));
    EXPECT_EQ(vf(x.slice(0, -100, 100, 4)), (std::vector<float>{0, 4, 8}));
    EXPECT_EQ(x.slice(0, 5, 2).numel(), 0);
    s.fill_(0);  // writes through the strided view
    EXPECT_EQ(vf(x), (std::vector<float>{0, 0, 2, 3, 0, 5, 6, 0, 8, 9}));

    Tensor m = arange(0, 12, 1, {.dtype = DType::float32}).view({3, 4});
    Tensor col = m.select(1, -1);
    EXPECT_EQ(col.shape(), (Shape{3}));
    EXPECT_EQ(vf(col), (std::vector<float>{3, 7, 11}));
    EXPECT_EQ(vf(m[1]), (std::vector<float>{4, 5, 6, 7}));
    Tensor sub = m.slice(1, 1, 4, 2);  // columns 1 and 3
    EXPECT_EQ(vf(sub), (std::vector<float>{1, 3, 5, 7, 9, 11}));
    EXPECT_CONTAINS(error_of<IndexError>([&] { m.select(0, 3); }),
                    "select: index 3 is out of bounds for dim 0 with size 3");
    EXPECT_CONTAINS(error_of<IndexError>([&] { m.narrow(1, 2, 3); }), "out of bounds");
    EXPECT_CONTAINS(error_of<ValueError>([&] { m.slice(0, 0, 2, 0); }), "step must be positive");
}

TEST(TensorView, Expand) {
    Tensor x = tensor({1, 2, 3});
    Tensor e = x.expand({2, 3});
    EXPECT_EQ(e.shape(), (Shape{2, 3}));
    EXPECT_EQ(e.strides(), (Shape{0, 1}));
    EXPECT_TRUE(e.shares_storage(x));
    EXPECT_EQ(vf(e), (std::vector<float>{1, 2, 3, 1, 2, 3}));
    Tensor c = tensor({1, 2}).view({2, 1});  // tensor({{1}, {2}}) is ambiguous
    EXPECT_EQ(vf(c.expand({-1, 3})), (std::vector<float>{1, 1, 1, 2, 2, 2}));
    EXPECT_EQ(c.expand_as(zeros({4, 2, 3})).shape(), (Shape{4, 2, 3}));
    EXPECT_CONTAINS(error_of<ShapeError>([&] {
                        x.expand({2, 4});
                    }),
                    "expand: the expanded size 4 must match the existing size 3");
    EXPECT_CONTAINS(error_of<ShapeError>([&] { x.expand({}); }), "expand");
    EXPECT_CONTAINS(error_of<ShapeError>([&] { c.expand({2, -3}); }), "expand");
}

TEST(TensorView, SqueezeUnsqueezeFlatten) {
    Tensor x = zeros({2, 1, 3, 1});
    EXPECT_EQ(x.squeeze().shape(), (Shape{2, 3}));
    EXPECT_EQ(x.squeeze(1).shape(), (Shape{2, 3, 1}));
    EXPECT_EQ(x.squeeze(-1).shape(), (Shape{2, 1, 3}));
    EXPECT_EQ(x.squeeze(0).shape(), (Shape{2, 1, 3, 1}));  // size 2: unchanged
    EXPECT_EQ(x.unsqueeze(0).shape(), (Shape{1, 2, 1, 3, 1}));
    EXPECT_EQ(x.unsqueeze(-1).shape(), (Shape{2, 1, 3, 1, 1}));
    EXPECT_TRUE(x.squeeze().shares_storage(x));
    Tensor y = arange(0, 24, 1, {.dtype = DType::float32}).view({2, 3, 4});
    EXPECT_EQ(y.flatten().shape(), (Shape{24}));
    EXPECT_EQ(y.flatten(1).shape(), (Shape{2, 12}));
    EXPECT_EQ(y.flatten(0, 1).shape(), (Shape{6, 4}));
    EXPECT_TRUE(y.flatten().shares_storage(y));
    Tensor yt = y.transpose(0, 2);  // flatten of a non-contiguous tensor copies
    Tensor f = yt.flatten();
    EXPECT_FALSE(f.shares_storage(y));
    EXPECT_FLOAT_EQ(f.at({1}), 12.f);
    Tensor u = y.select(2, 1).unsqueeze(1);  // unsqueeze of a strided view
    EXPECT_EQ(u.shape(), (Shape{2, 1, 3}));
    EXPECT_FLOAT_EQ(u.at({1, 0, 2}), y.at({1, 2, 1}));
    EXPECT_CONTAINS(error_of<ValueError>([&] { y.flatten(2, 1); }), "flatten");
}

TEST(TensorView, ContiguousAndClone) {
    Tensor x = arange(0, 6, 1, {.dtype = DType::float32}).view({2, 3});
    EXPECT_TRUE(x.contiguous().is_same(x));
    Tensor t = x.t();
    Tensor c = t.contiguous();
    EXPECT_TRUE(c.is_contiguous());
    EXPECT_FALSE(c.shares_storage(x));
    EXPECT_EQ(vf(c), (std::vector<float>{0, 3, 1, 4, 2, 5}));
    Tensor k = x.clone();
    EXPECT_FALSE(k.shares_storage(x));
    k.fill_(7);
    EXPECT_FLOAT_EQ(x.at({0, 0}), 0.f);
    Tensor kt = t.clone();
    EXPECT_TRUE(kt.is_contiguous());
    EXPECT_EQ(kt.shape(), (Shape{3, 2}));
    EXPECT_EQ(vf(kt), vf(c));
}

TEST(TensorView, DetachSharesStorage) {
    Tensor x = ones({3}, {.requires_grad = true});
    Tensor d = x.detach();
    EXPECT_FALSE(d.requires_grad());
    EXPECT_TRUE(d.shares_storage(x));
    d.fill_(4);
    EXPECT_FLOAT_EQ(x.at({0}), 4.f);
    EXPECT_EQ(x.version(), d.version());
}

// ---- dims ---------------------------------------------------------------------------------------

TEST(TensorDims, UndefinedTensorRaises) {
    Tensor u;
    EXPECT_FALSE(u.defined());
    EXPECT_EQ(error_of<Error>([&] { u.shape(); }), "tensor: operation on an undefined tensor");
    EXPECT_CONTAINS(error_of<Error>([&] { u.dim(); }), "undefined tensor");
    EXPECT_CONTAINS(error_of<Error>([&] { u.storage_offset(); }), "undefined tensor");
    EXPECT_CONTAINS(error_of<Error>([&] { u.name(); }), "undefined tensor");
    EXPECT_CONTAINS(error_of<Error>([&] { u.is_contiguous(); }), "undefined tensor");
    EXPECT_CONTAINS(error_of<Error>([&] { u + ones({1}); }), "undefined tensor");
}

TEST(TensorDims, UpToEightDims) {
    Tensor x = ones({1, 2, 1, 2, 1, 2, 1, 2});
    EXPECT_EQ(x.dim(), 8);
    EXPECT_EQ(x.numel(), 16);
    EXPECT_FLOAT_EQ(x.sum().item<float>(), 16.f);
    EXPECT_EQ(x.permute({7, 6, 5, 4, 3, 2, 1, 0}).shape(), (Shape{2, 1, 2, 1, 2, 1, 2, 1}));
    EXPECT_EQ(error_of<ShapeError>([] {
                  zeros({1, 1, 1, 1, 1, 1, 1, 1, 1});
              }),
              "tensor: at most 8 dims are supported: got shape [1, 1, 1, 1, 1, 1, 1, 1, 1]");
    EXPECT_CONTAINS(error_of<ShapeError>([&] { x.unsqueeze(0); }), "at most 8 dims");
    EXPECT_CONTAINS(error_of<ShapeError>([&] {
                        x.view({1, 1, 2, 1, 2, 1, 2, 1, 2});
                    }),
                    "at most 8 dims");
    EXPECT_CONTAINS(error_of<ShapeError>([&] {
                        x.expand({1, 1, 2, 1, 2, 1, 2, 1, 2});
                    }),
                    "at most 8 dims");
    EXPECT_CONTAINS(error_of<ShapeError>([&] {
                        x.reshape({1, 1, 2, 1, 2, 1, 2, 1, 2});
                    }),
                    "at most 8 dims");
}

// ---- element access -----------------------------------------------------------------------------

TEST(TensorAccess, ItemAtToVector) {
    EXPECT_EQ(scalar_tensor(2.5).item(), 2.5);
    EXPECT_EQ(tensor({7}).item<int64_t>(), 7);
    EXPECT_EQ(ones({1, 1, 1}).item<float>(), 1.f);
    EXPECT_EQ(arange(3).sum().item<int>(), 3);
    EXPECT_EQ(error_of<ValueError>([] { ones({2}).item(); }),
              "item: a tensor with 2 elements cannot be converted to a scalar (shape [2])");
    Tensor m = arange(0, 12, 1, {.dtype = DType::float32}).view({3, 4});
    EXPECT_EQ(m.at({2, 1}), 9.0);
    EXPECT_EQ(m.at({-1, -1}), 11.0);
    EXPECT_EQ(m.at<int64_t>({1, 2}), 6);
    EXPECT_CONTAINS(error_of<IndexError>([&] {
                        m.at({3, 0});
                    }),
                    "at: index 3 is out of bounds for dim 0 with size 3");
    EXPECT_CONTAINS(error_of<IndexError>([&] { m.at({1}); }), "at: got 1 indices");
    EXPECT_EQ(vf(m.t().slice(0, 1, 3)), (std::vector<float>{1, 5, 9, 2, 6, 10}));
    EXPECT_EQ(tensor({1.5, -2.5}).to_vector<int64_t>(), (std::vector<int64_t>{1, -2}));
    EXPECT_EQ(vb(tensor({0, 2})), (std::vector<bool>{false, true}));
    EXPECT_TRUE(zeros({0}).to_vector<float>().empty());
}

TEST(TensorAccess, DTypeConversion) {
    Tensor x = tensor({1.75, -1.75, 0});
    Tensor i = x.to(DType::int64);
    EXPECT_EQ(i.dtype(), DType::int64);
    EXPECT_EQ(vi(i), (std::vector<int64_t>{1, -1, 0}));  // truncation, as PyTorch
    EXPECT_EQ(vb(x.to(DType::boolean)), (std::vector<bool>{true, true, false}));
    Tensor d = x.to(DType::float64);
    EXPECT_EQ(d.dtype(), DType::float64);
    EXPECT_TRUE(x.to(DType::float32).is_same(x));
    EXPECT_EQ(x.to(Device::cpu()).device(), Device::cpu());
    EXPECT_CONTAINS(error_of<DeviceError>([&] { x.to(Device::cuda()); }), "cuda:0");
}

// ---- printing (golden strings from PyTorch 1.13's str(tensor)) ---------------------------------

TEST(TensorPrint, LikePyTorch) {
    EXPECT_EQ(tensor({{1.5, -2.25, 3.0}, {0.125, 4.0, -5.5}}).to_string(),
              "tensor([[ 1.5000, -2.2500,  3.0000],\n        [ 0.1250,  4.0000, -5.5000]])");
    EXPECT_EQ(from_vector(std::vector<int64_t>{1, -2, 3, 40, 5, 6}, {2, 3}).to_string(),
              "tensor([[ 1, -2,  3],\n        [40,  5,  6]])");
    EXPECT_EQ(from_vector(std::vector<bool>{true, false, true}).to_string(),
              "tensor([ True, False,  True])");
    EXPECT_EQ(from_vector(std::vector<bool>{true, false, false, true}, {2, 2}).to_string(),
              "tensor([[ True, False],\n        [False,  True]])");
    EXPECT_EQ(tensor({1., 2.}).to_string(), "tensor([1., 2.])");
    EXPECT_EQ(tensor({-1., 2.}).to_string(), "tensor([-1.,  2.])");
    EXPECT_EQ(tensor({1.5, 2.0}, {.dtype = DType::float64}).to_string(),
              "tensor([1.5000, 2.0000], dtype=torch.float64)");
    EXPECT_EQ(tensor({1., 2.}, {.dtype = DType::float64}).to_string(),
              "tensor([1., 2.], dtype=torch.float64)");
    EXPECT_EQ(tensor({1.5, 2.0}, {.requires_grad = true}).to_string(),
              "tensor([1.5000, 2.0000], requires_grad=True)");
    EXPECT_EQ(tensor({0.5, -0.25}, {.dtype = DType::float64, .requires_grad = true}).to_string(),
              "tensor([ 0.5000, -0.2500], dtype=torch.float64, requires_grad=True)");
    Tensor x = tensor({1.5, 2.0}, {.requires_grad = true});
    EXPECT_EQ((x * 2).to_string(), "tensor([3., 4.], grad_fn=<mul>)");
    EXPECT_EQ(scalar_tensor(3.5).to_string(), "tensor(3.5000)");
    EXPECT_EQ(scalar_tensor(3).to_string(), "tensor(3)");
    EXPECT_EQ(scalar_tensor(2.5, {.dtype = DType::float64}).to_string(),
              "tensor(2.5000, dtype=torch.float64)");
    EXPECT_EQ((x * x).sum().to_string(), "tensor(6.2500, grad_fn=<sum>)");
    EXPECT_EQ(tensor({1, 2}, {.requires_grad = true}).sum().to_string(),
              "tensor(3., grad_fn=<sum>)");
    EXPECT_EQ(zeros({0}, {.requires_grad = true}).to_string(), "tensor([], requires_grad=True)");
    EXPECT_EQ(arange(1, 9, 1, {.dtype = DType::float32}).view({2, 2, 2}).to_string(),
              "tensor([[[1., 2.],\n         [3., 4.]],\n\n        [[5., 6.],\n         [7., "
              "8.]]])");
    EXPECT_EQ(arange(0, 12, 1, {.dtype = DType::float32}).view({3, 4}).t().to_string(),
              "tensor([[ 0.,  4.,  8.],\n        [ 1.,  5.,  9.],\n        [ 2.,  6., 10.],\n    "
              "    [ 3.,  7., 11.]])");
}

TEST(TensorPrint, ScientificNonFiniteAndEmpty) {
    EXPECT_EQ(tensor({0.0001, 1000.0}).to_string(), "tensor([1.0000e-04, 1.0000e+03])");
    EXPECT_EQ(tensor({1e-5, 1.0}).to_string(), "tensor([1.0000e-05, 1.0000e+00])");
    EXPECT_EQ(tensor({123456789.0, 1.0}).to_string(), "tensor([1.2346e+08, 1.0000e+00])");
    EXPECT_EQ(tensor({1e10, 1.0}).to_string(), "tensor([1.0000e+10, 1.0000e+00])");
    EXPECT_EQ(tensor({NAN, 1.5, INFINITY}).to_string(), "tensor([   nan, 1.5000,    inf])");
    EXPECT_EQ(tensor({NAN, 0.}).to_string(), "tensor([nan, 0.])");
    EXPECT_EQ(tensor({-INFINITY, 1.}).to_string(), "tensor([-inf, 1.])");
    EXPECT_EQ(zeros({0}).to_string(), "tensor([])");
    EXPECT_EQ(zeros({2, 0}).to_string(), "tensor([], size=(2, 0))");
    EXPECT_EQ(zeros({2, 0}, {.dtype = DType::int64}).to_string(),
              "tensor([], size=(2, 0), dtype=torch.int64)");
    EXPECT_EQ(zeros({0}, {.dtype = DType::boolean}).to_string(), "tensor([], dtype=torch.bool)");
}

TEST(TensorPrint, LongRowsWrapAndLargeTensorsAreElided) {
    // torch.arange(30.) / 7
    EXPECT_EQ((arange(0, 30, 1, {.dtype = DType::float32}) / 7).to_string(),
              "tensor([0.0000, 0.1429, 0.2857, 0.4286, 0.5714, 0.7143, 0.8571, 1.0000, 1.1429,\n"
              "        1.2857, 1.4286, 1.5714, 1.7143, 1.8571, 2.0000, 2.1429, 2.2857, 2.4286,\n"
              "        2.5714, 2.7143, 2.8571, 3.0000, 3.1429, 3.2857, 3.4286, 3.5714, 3.7143,\n"
              "        3.8571, 4.0000, 4.1429])");
    // torch.arange(2000) and torch.arange(2000.)
    EXPECT_EQ(arange(2000).to_string(), "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])");
    Tensor f = arange(0, 2000, 1, {.dtype = DType::float32});
    const std::string f_str =
        "tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, 1.9980e+03,\n"
        "        1.9990e+03])";
    EXPECT_EQ(f.to_string(), f_str);
    // The format is chosen from the printed (summarized) elements only: 0.5 is elided.
    f.narrow(0, 1000, 1).fill_(0.5);
    EXPECT_EQ(f.to_string(), f_str);
    // torch.arange(1001, dtype=torch.float64) * 0.5: the dtype suffix moves to its own line.
    EXPECT_EQ((arange(0, 1001, 1, {.dtype = DType::float64}) * 0.5).to_string(),
              "tensor([  0.0000,   0.5000,   1.0000,  ..., 499.0000, 499.5000, 500.0000],\n"
              "       dtype=torch.float64)");
    // torch.arange(2000.).reshape(40, 50)
    EXPECT_EQ(arange(0, 2000, 1, {.dtype = DType::float32}).view({40, 50}).to_string(),
              "tensor([[0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 4.7000e+01, 4.8000e+01,\n"
              "         4.9000e+01],\n"
              "        [5.0000e+01, 5.1000e+01, 5.2000e+01,  ..., 9.7000e+01, 9.8000e+01,\n"
              "         9.9000e+01],\n"
              "        [1.0000e+02, 1.0100e+02, 1.0200e+02,  ..., 1.4700e+02, 1.4800e+02,\n"
              "         1.4900e+02],\n"
              "        ...,\n"
              "        [1.8500e+03, 1.8510e+03, 1.8520e+03,  ..., 1.8970e+03, 1.8980e+03,\n"
              "         1.8990e+03],\n"
              "        [1.9000e+03, 1.9010e+03, 1.9020e+03,  ..., 1.9470e+03, 1.9480e+03,\n"
              "         1.9490e+03],\n"
              "        [1.9500e+03, 1.9510e+03, 1.9520e+03,  ..., 1.9970e+03, 1.9980e+03,\n"
              "         1.9990e+03]])");
    // torch.arange(2000).reshape(10, 10, 20): "..." rows between 3-D blocks keep blank lines.
    EXPECT_EQ(arange(2000).view({10, 10, 20}).to_string(),
              "tensor([[[   0,    1,    2,  ...,   17,   18,   19],\n"
              "         [  20,   21,   22,  ...,   37,   38,   39],\n"
              "         [  40,   41,   42,  ...,   57,   58,   59],\n"
              "         ...,\n"
              "         [ 140,  141,  142,  ...,  157,  158,  159],\n"
              "         [ 160,  161,  162,  ...,  177,  178,  179],\n"
              "         [ 180,  181,  182,  ...,  197,  198,  199]],\n"
              "\n"
              "        [[ 200,  201,  202,  ...,  217,  218,  219],\n"
              "         [ 220,  221,  222,  ...,  237,  238,  239],\n"
              "         [ 240,  241,  242,  ...,  257,  258,  259],\n"
              "         ...,\n"
              "         [ 340,  341,  342,  ...,  357,  358,  359],\n"
              "         [ 360,  361,  362,  ...,  377,  378,  379],\n"
              "         [ 380,  381,  382,  ...,  397,  398,  399]],\n"
              "\n"
              "        [[ 400,  401,  402,  ...,  417,  418,  419],\n"
              "         [ 420,  421,  422,  ...,  437,  438,  439],\n"
              "         [ 440,  441,  442,  ...,  457,  458,  459],\n"
              "         ...,\n"
              "         [ 540,  541,  542,  ...,  557,  558,  559],\n"
              "         [ 560,  561,  562,  ...,  577,  578,  579],\n"
              "         [ 580,  581,  582,  ...,  597,  598,  599]],\n"
              "\n"
              "        ...,\n"
              "\n"
              "        [[1400, 1401, 1402,  ..., 1417, 1418, 1419],\n"
              "         [1420, 1421, 1422,  ..., 1437, 1438, 1439],\n"
              "         [1440, 1441, 1442,  ..., 1457, 1458, 1459],\n"
              "         ...,\n"
              "         [1540, 1541, 1542,  ..., 1557, 1558, 1559],\n"
              "         [1560, 1561, 1562,  ..., 1577, 1578, 1579],\n"
              "         [1580, 1581, 1582,  ..., 1597, 1598, 1599]],\n"
              "\n"
              "        [[1600, 1601, 1602,  ..., 1617, 1618, 1619],\n"
              "         [1620, 1621, 1622,  ..., 1637, 1638, 1639],\n"
              "         [1640, 1641, 1642,  ..., 1657, 1658, 1659],\n"
              "         ...,\n"
              "         [1740, 1741, 1742,  ..., 1757, 1758, 1759],\n"
              "         [1760, 1761, 1762,  ..., 1777, 1778, 1779],\n"
              "         [1780, 1781, 1782,  ..., 1797, 1798, 1799]],\n"
              "\n"
              "        [[1800, 1801, 1802,  ..., 1817, 1818, 1819],\n"
              "         [1820, 1821, 1822,  ..., 1837, 1838, 1839],\n"
              "         [1840, 1841, 1842,  ..., 1857, 1858, 1859],\n"
              "         ...,\n"
              "         [1940, 1941, 1942,  ..., 1957, 1958, 1959],\n"
              "         [1960, 1961, 1962,  ..., 1977, 1978, 1979],\n"
              "         [1980, 1981, 1982,  ..., 1997, 1998, 1999]]])");
    std::ostringstream os;
    os << tensor({1., 2.});
    EXPECT_EQ(os.str(), "tensor([1., 2.])");
    EXPECT_EQ(Tensor().to_string(), "tensor(undefined)");
}

// ---- type promotion -----------------------------------------------------------------------------

TEST(TensorPromotion, LikePyTorch) {
    Tensor i = tensor({1, 2}, {.dtype = DType::int64});
    Tensor a = i + 2.5;
    EXPECT_EQ(a.dtype(), DType::float32);
    EXPECT_EQ(vf(a), (std::vector<float>{3.5f, 4.5f}));
    EXPECT_EQ((i + 2).dtype(), DType::int64);
    EXPECT_EQ((i * true).dtype(), DType::int64);
    Tensor f = tensor({1, 2});
    Tensor m = f * 0.1;  // a C++ double never raises float32 to float64
    EXPECT_EQ(m.dtype(), DType::float32);
    EXPECT_FLOAT_EQ(m.at({1}), 0.2f);
    EXPECT_EQ((2.0 * f).dtype(), DType::float32);
    EXPECT_EQ((scalar_tensor(3) + f).dtype(), DType::float32);  // int64 0-dim + float32
    EXPECT_EQ(vf(scalar_tensor(3) + f), (std::vector<float>{4, 5}));
    EXPECT_EQ((scalar_tensor(1, {.dtype = DType::float64}) + f).dtype(), DType::float32);
    EXPECT_EQ((scalar_tensor(1.5) + i).dtype(), DType::float32);
    EXPECT_EQ((scalar_tensor(1.5, {.dtype = DType::float64}) + i).dtype(), DType::float32);
    EXPECT_EQ((f + tensor({1, 1}, {.dtype = DType::float64})).dtype(), DType::float64);
    EXPECT_EQ((f + i).dtype(), DType::float32);
    Tensor b1 = from_vector(std::vector<bool>{true, false, false});
    Tensor b2 = from_vector(std::vector<bool>{true, true, false});
    Tensor bb = b1 + b2;
    EXPECT_EQ(bb.dtype(), DType::boolean);
    EXPECT_EQ(vb(bb), (std::vector<bool>{true, true, false}));
    EXPECT_EQ(vb(b1 * b2), (std::vector<bool>{true, false, false}));
    EXPECT_EQ((b1 + i.narrow(0, 0, 1)).dtype(), DType::int64);
    EXPECT_EQ(vi(b1 + i.narrow(0, 0, 1)), (std::vector<int64_t>{2, 1, 1}));
    Tensor q = tensor({1, 3}, {.dtype = DType::int64}) / 2;  // true division
    EXPECT_EQ(q.dtype(), DType::float32);
    EXPECT_EQ(vf(q), (std::vector<float>{0.5f, 1.5f}));
    EXPECT_EQ((i / i).dtype(), DType::float32);
    EXPECT_EQ((3 / i).dtype(), DType::float32);
    EXPECT_EQ((1 - i).dtype(), DType::int64);
    EXPECT_EQ(vi(1 - i), (std::vector<int64_t>{0, -1}));
    EXPECT_EQ((i < 1.5).dtype(), DType::boolean);
    EXPECT_EQ(vb(i < 1.5), (std::vector<bool>{true, false}));
    EXPECT_CONTAINS(error_of<DTypeError>([&] { b1 - b2; }), "sub");
}

// ---- broadcasting -------------------------------------------------------------------------------

TEST(TensorBroadcast, Shapes) {
    Tensor a = tensor({1, 2, 3}).view({3, 1});
    Tensor b = tensor({10, 20, 30, 40}).view({1, 4});  // [1, 4]
    Tensor c = a + b;
    EXPECT_EQ(c.shape(), (Shape{3, 4}));
    EXPECT_FLOAT_EQ(c.at({2, 3}), 43.f);
    Tensor m = arange(0, 6, 1, {.dtype = DType::float32}).view({2, 3});
    EXPECT_EQ(vf(m * tensor({1, 10, 100})), (std::vector<float>{0, 10, 200, 3, 40, 500}));
    EXPECT_EQ(vf(m - scalar_tensor(1.0)), (std::vector<float>{-1, 0, 1, 2, 3, 4}));
    EXPECT_EQ((zeros({0, 3}) + ones({3})).shape(), (Shape{0, 3}));
    EXPECT_EQ((ones({2, 1, 3}) + ones({4, 1})).shape(), (Shape{2, 4, 3}));
    EXPECT_EQ(error_of<ShapeError>([&] { m + ones({2}); }),
              "add: shapes [2, 3] and [2] are not broadcastable (size 3 vs 2 at dim 1). Sizes "
              "must match or be 1.");
    // Non-contiguous operands.
    EXPECT_EQ(vf(m.t() + tensor({1, 2})), (std::vector<float>{1, 5, 2, 6, 3, 7}));
}

// ---- in-place -----------------------------------------------------------------------------------

TEST(TensorInplace, Arithmetic) {
    Tensor x = tensor({1, 2, 3});
    uint64_t v0 = x.version();
    x.add_(tensor({1, 1, 1}), 2);
    EXPECT_EQ(vf(x), (std::vector<float>{3, 4, 5}));
    EXPECT_GT(x.version(), v0);
    x.add_(1);
    EXPECT_EQ(vf(x), (std::vector<float>{4, 5, 6}));
    x.sub_(tensor({1, 2, 3}));
    EXPECT_EQ(vf(x), (std::vector<float>{3, 3, 3}));
    x.sub_(1.5);
    x.mul_(tensor({2, 4, 6}));
    EXPECT_EQ(vf(x), (std::vector<float>{3, 6, 9}));
    x.mul_(2);
    x.div_(tensor({2, 3, 6}));
    EXPECT_EQ(vf(x), (std::vector<float>{3, 4, 3}));
    x.div_(2);
    EXPECT_EQ(vf(x), (std::vector<float>{1.5, 2, 1.5}));
    Tensor m = zeros({2, 3});
    m.add_(tensor({1, 2, 3}));  // broadcast other
    EXPECT_EQ(vf(m), (std::vector<float>{1, 2, 3, 1, 2, 3}));
    m.add_(m);  // aliasing
    EXPECT_EQ(vf(m), (std::vector<float>{2, 4, 6, 2, 4, 6}));
    m.add_(m.select(0, 0));  // partial aliasing through broadcast
    EXPECT_EQ(vf(m), (std::vector<float>{4, 8, 12, 4, 8, 12}));
    EXPECT_CONTAINS(error_of<ShapeError>([&] {
                        tensor({1, 2}).add_(ones({2, 2}));
                    }),
                    "add_: output with shape [2] doesn't match the broadcast shape [2, 2]");
}

TEST(TensorInplace, IntegerTensorsRefuseFloatResults) {
    Tensor i = tensor({1, 2}, {.dtype = DType::int64});
    i.add_(3);
    EXPECT_EQ(vi(i), (std::vector<int64_t>{4, 5}));
    i.mul_(tensor({2, 3}, {.dtype = DType::int64}));
    EXPECT_EQ(vi(i), (std::vector<int64_t>{8, 15}));
    EXPECT_CONTAINS(error_of<DTypeError>([&] { i.add_(2.5); }),
                    "add_: result type float32 can't be cast to the desired output type int64");
    EXPECT_CONTAINS(error_of<DTypeError>([&] { i.mul_(0.5); }), "mul_: result type float32");
    EXPECT_CONTAINS(error_of<DTypeError>([&] { i.div_(2); }), "div_: result type float32");
    EXPECT_CONTAINS(error_of<DTypeError>([&] { i.add_(tensor({1, 1})); }), "add_");
    EXPECT_EQ(vi(i), (std::vector<int64_t>{8, 15}));  // untouched by the failed ops
    Tensor f = tensor({1, 2});
    f.add_(tensor({1, 2}, {.dtype = DType::int64}));
    EXPECT_EQ(vf(f), (std::vector<float>{2, 4}));
}

TEST(TensorInplace, ZeroFillCopy) {
    Tensor x = ones({2, 3});
    x.zero_();
    EXPECT_EQ(vf(x), std::vector<float>(6, 0.f));
    x.fill_(2.5);
    EXPECT_EQ(vf(x), std::vector<float>(6, 2.5f));
    x.copy_(tensor({1, 2, 3}));  // broadcast
    EXPECT_EQ(vf(x), (std::vector<float>{1, 2, 3, 1, 2, 3}));
    Tensor i = zeros({3}, {.dtype = DType::int64});
    i.copy_(tensor({1.9, -1.9, 2.0}));  // dtype conversion truncates
    EXPECT_EQ(vi(i), (std::vector<int64_t>{1, -1, 2}));
    Tensor d = zeros({2, 2}, {.dtype = DType::float64});
    d.copy_(tensor({{1, 2}, {3, 4}}).t());  // strided source
    EXPECT_EQ(vd(d), (std::vector<double>{1, 3, 2, 4}));
    Tensor s = arange(0, 4, 1, {.dtype = DType::float32});
    s.narrow(0, 1, 3).copy_(s.narrow(0, 0, 3));  // overlapping source and destination
    EXPECT_EQ(vf(s), (std::vector<float>{0, 0, 1, 2}));
    Tensor b = zeros({2}, {.dtype = DType::boolean});
    b.fill_(true);
    EXPECT_EQ(vb(b), (std::vector<bool>{true, true}));
    EXPECT_CONTAINS(error_of<ShapeError>([&] { x.copy_(ones({2})); }), "copy_");
    Tensor t = zeros({3, 2});
    t.t().copy_(tensor({{1, 2, 3}, {4, 5, 6}}));  // into a transposed view
    EXPECT_EQ(vf(t), (std::vector<float>{1, 4, 2, 5, 3, 6}));
}

TEST(TensorInplace, ClampAndMaskedFill) {
    Tensor x = tensor({-2, -0.5, 0.5, 2});
    x.clamp_(-1, 1);
    EXPECT_EQ(vf(x), (std::vector<float>{-1, -0.5, 0.5, 1}));
    Tensor ci = arange(5);
    ci.clamp_(1, 3);
    EXPECT_EQ(vi(ci), (std::vector<int64_t>{1, 1, 2, 3, 3}));
    EXPECT_CONTAINS(error_of<DTypeError>([&] { ci.clamp_(0.5, 1.5); }),
                    "clamp_: result type float32 can't be cast to the desired output type int64");
    Tensor h = tensor({-3, 0, 3}, {.requires_grad = true});
    Tensor hc = h * 1;
    hc.clamp_(-1, 1);
    hc.sum().backward();
    EXPECT_EQ(vf(h.grad()), (std::vector<float>{0, 1, 0}));
    Tensor m = zeros({2, 3});
    m.masked_fill_(from_vector(std::vector<bool>{true, false, true}), 5);  // broadcast mask
    EXPECT_EQ(vf(m), (std::vector<float>{5, 0, 5, 5, 0, 5}));
    Tensor i = arange(4);
    i.masked_fill_(i > 1, -1);
    EXPECT_EQ(vi(i), (std::vector<int64_t>{0, 1, -1, -1}));
    EXPECT_CONTAINS(error_of<DTypeError>([&] { m.masked_fill_(ones({3}), 1); }), "bool");
}

TEST(TensorInplace, ThroughViews) {
    Tensor base = zeros({3, 4});
    base.select(1, 2).add_(1);
    base.t().narrow(0, 0, 1).mul_(0).add_(7);  // column 0
    base.slice(0, 0, 3, 2).sub_(tensor({1, 1, 1, 1}));
    EXPECT_EQ(vf(base), (std::vector<float>{6, -1, 0, -1, 7, 0, 1, 0, 6, -1, 0, -1}));
    Tensor v = base.view({12});
    uint64_t before = base.version();
    v.add_(1);
    EXPECT_GT(base.version(), before);  // the version counter is shared by all views
}

TEST(TensorInplace, LeafThatRequiresGradRefuses) {
    Tensor w = ones({2}, {.requires_grad = true});
    EXPECT_EQ(error_of<AutogradError>([&] { w.add_(1); }),
              "add_: a leaf tensor that requires grad is being used in an in-place operation. "
              "Wrap the update in soma::NoGradGuard or use an out-of-place op.");
    EXPECT_CONTAINS(error_of<AutogradError>([&] { w.zero_(); }), "fill_: a leaf tensor");
    EXPECT_CONTAINS(error_of<AutogradError>([&] { w.copy_(zeros({2})); }), "copy_");
    EXPECT_CONTAINS(error_of<AutogradError>([&] { w.mul_(w); }), "mul_");
    EXPECT_CONTAINS(error_of<AutogradError>([&] { w.clamp_(0, 1); }), "clamp_");
    EXPECT_CONTAINS(error_of<AutogradError>([&] { w.uniform_(); }), "uniform_");
    {
        NoGradGuard ng;
        w.sub_(tensor({0.5, 0.25}));
        w.mul_(2);
    }
    EXPECT_EQ(vf(w), (std::vector<float>{1, 1.5}));
    EXPECT_TRUE(w.requires_grad());
    EXPECT_TRUE(w.is_leaf());
}

TEST(TensorInplace, NonLeafRebasesHistory) {
    Tensor x = tensor({1, 2}, {.requires_grad = true});
    Tensor h = x * 2;
    h.mul_(3);  // h = 6x
    EXPECT_FALSE(h.is_leaf());
    h.sum().backward();
    EXPECT_EQ(vf(x.grad()), (std::vector<float>{6, 6}));

    // A constant tensor that takes an input requiring grad becomes part of the graph.
    Tensor w = tensor({3, 4}, {.requires_grad = true});
    Tensor c = zeros({2});
    c.add_(w * w);
    EXPECT_TRUE(c.requires_grad());
    c.sum().backward();
    EXPECT_EQ(vf(w.grad()), (std::vector<float>{6, 8}));

    // Overwriting a non-leaf with a constant cuts the old history (gradient 0), as PyTorch.
    Tensor y = tensor({1, 2}, {.requires_grad = true});
    Tensor k = y * 5;
    k.copy_(tensor({7, 7}));
    EXPECT_EQ(vf(k), (std::vector<float>{7, 7}));
    (k * y).sum().backward();
    EXPECT_EQ(vf(y.grad()), (std::vector<float>{7, 7}));

    Tensor z = tensor({1, 2}, {.requires_grad = true});
    Tensor q = z * 5;
    q.fill_(2);
    EXPECT_TRUE(q.requires_grad());
    (q * z).sum().backward(Tensor(), /*retain_graph=*/true);
    EXPECT_EQ(vf(z.grad()), (std::vector<float>{2, 2}));
    q.sum().backward();  // reaches z with a zero gradient
    EXPECT_EQ(vf(z.grad()), (std::vector<float>{2, 2}));

    // copy_ from a tensor that requires grad: gradient flows to the source, summed over the
    // broadcast.
    Tensor src = tensor({1, 2}, {.requires_grad = true});
    Tensor dst = zeros({3, 2});
    dst.copy_(src * 1);
    (dst * 2).sum().backward();
    EXPECT_EQ(vf(src.grad()), (std::vector<float>{6, 6}));

    // Both sides require grad: the old value of the destination gets 0.
    Tensor p = tensor({1, 2}, {.requires_grad = true});
    Tensor s2 = tensor({5, 6}, {.requires_grad = true});
    Tensor d2 = p * 3;
    d2.copy_(s2 * 2);
    EXPECT_EQ(d2.name(), "copy_");
    d2.sum().backward();
    EXPECT_EQ(vf(p.grad()), (std::vector<float>{0, 0}));
    EXPECT_EQ(vf(s2.grad()), (std::vector<float>{2, 2}));
}

TEST(TensorInplace, ViewsUnderAutogradRefuse) {
    // The base's graph would not see the change (PyTorch rebases it with CopySlices), so
    // in-place ops on views that involve gradients raise instead of giving wrong gradients.
    Tensor x = tensor({1, 2, 3}, {.requires_grad = true});
    EXPECT_EQ(error_of<AutogradError>([&] { x.select(0, 0).add_(1); }),
              "add_: in-place modification of a view is not supported when it or the other "
              "operand requires grad (the base tensor's gradient would be wrong). Use an "
              "out-of-place op (cat, stack, where, ...) or clone() the view first.");
    Tensor h = x * 2;
    EXPECT_CONTAINS(error_of<AutogradError>([&] { h.narrow(0, 0, 1).mul_(10); }), "mul_: in-place");
    EXPECT_CONTAINS(error_of<AutogradError>([&] { h.view({3}).fill_(0); }), "fill_: in-place");
    EXPECT_CONTAINS(error_of<AutogradError>([&] { h.t().clamp_(0, 1); }), "clamp_: in-place");
    Tensor buf = zeros({2, 3});
    EXPECT_CONTAINS(error_of<AutogradError>([&] { buf.select(0, 1).copy_(x); }), "copy_: in-place");
    EXPECT_EQ(vf(buf), std::vector<float>(6, 0.f));
    EXPECT_EQ(vf(x), (std::vector<float>{1, 2, 3}));
    // Without gradients involved, or under NoGradGuard, views are written as usual.
    buf.select(0, 1).copy_(tensor({1, 2, 3}));
    EXPECT_EQ(vf(buf), (std::vector<float>{0, 0, 0, 1, 2, 3}));
    {
        NoGradGuard ng;
        x.select(0, 0).add_(1);
        buf.select(0, 0).copy_(x);
    }
    EXPECT_EQ(vf(buf), (std::vector<float>{2, 2, 3, 1, 2, 3}));
    // A reshape that had to copy is not a view of anything shared.
    Tensor y2 = tensor({{1, 2}, {3, 4}}, {.requires_grad = true});
    Tensor rc = (y2 * 1).t().reshape({4});
    rc.mul_(tensor({1, 2, 3, 4}));
    rc.sum().backward();
    EXPECT_EQ(vf(y2.grad()), (std::vector<float>{1, 3, 2, 4}));
    // Detached tensors are not views in this sense.
    Tensor d = h.detach();
    d.add_(1);
}

TEST(TensorVersion, ModifiedSavedTensorRaises) {
    Tensor x = tensor({1, 2}, {.requires_grad = true});
    Tensor w = tensor({3, 4}, {.requires_grad = true});
    Tensor y = x * w;  // saves x and w
    {
        NoGradGuard ng;
        w.mul_(2);
    }
    EXPECT_EQ(error_of<AutogradError>([&] { y.sum().backward(); }),
              "backward: one of the tensors needed for the gradient of 'mul' has been modified "
              "by an in-place operation: it is at version 1, expected version 0. Use an "
              "out-of-place op or clone() before modifying it.");

    // A non-leaf saved for backward and then modified.
    Tensor a = tensor({1, 2}, {.requires_grad = true});
    Tensor h = a * 2;
    Tensor z = h * h;
    h.add_(1);
    EXPECT_CONTAINS(error_of<AutogradError>([&] { z.sum().backward(); }),
                    "has been modified by an in-place operation");

    // Modification through a view of the saved tensor is caught too.
    Tensor b = tensor({1, 2, 3}, {.requires_grad = true});
    Tensor e = b.exp();  // saves its output
    {
        NoGradGuard ng;
        e.detach().narrow(0, 1, 1).zero_();
    }
    EXPECT_CONTAINS(error_of<AutogradError>([&] { e.sum().backward(); }), "'exp'");

    // Unrelated in-place ops do not trip the check.
    Tensor c = tensor({1, 2}, {.requires_grad = true});
    Tensor u = c * 3;  // scalar multiply saves nothing
    Tensor v = u + 1;
    u.add_(1);
    v.sum().backward();
    EXPECT_EQ(vf(c.grad()), (std::vector<float>{3, 3}));
}
