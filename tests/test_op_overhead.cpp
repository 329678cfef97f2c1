// The per-op fast paths: Shape (a std::vector<int64_t> look-alike with inline storage), pooled
// tensor/node objects and small buffers, the leaf's cached gradient accumulator, and add's
// same-shape path. Behaviour must be exactly what it was with plain vectors and make_shared.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <thread>
#include <vector>

#include "soma/autograd.h"
#include "soma/ops.h"
#include "soma/tensor.h"

using namespace soma;

namespace {

std::vector<int64_t> iota_vec(int64_t n, int64_t start = 0) {
    std::vector<int64_t> v(static_cast<size_t>(n));
    std::iota(v.begin(), v.end(), start);
    return v;
}

}  // namespace

// ---- Shape ------------------------------------------------------------------------------------

TEST(ShapeSmallVector, ConstructsLikeVector) {
    Shape a;
    EXPECT_TRUE(a.empty());
    Shape b{2, 3, 4};
    EXPECT_EQ(b.size(), 3u);
    EXPECT_EQ(b[1], 3);
    EXPECT_EQ(b.front(), 2);
    EXPECT_EQ(b.back(), 4);
    Shape c(3);  // three zeros
    EXPECT_EQ(c, (Shape{0, 0, 0}));
    Shape d(2, 7);  // (count, value), not an iterator range
    EXPECT_EQ(d, (Shape{7, 7}));
    std::vector<int64_t> v{5, 6};
    Shape e(v.begin(), v.end());
    EXPECT_EQ(e, (Shape{5, 6}));
    Shape f = v;  // implicit from std::vector
    EXPECT_EQ(f, v);
    EXPECT_EQ(v, f);
    std::vector<int64_t> g = b;  // implicit to std::vector
    EXPECT_EQ(g, (std::vector<int64_t>{2, 3, 4}));
}

TEST(ShapeSmallVector, GrowsPastInlineStorageAndBack) {
    for (int64_t n : {0, 1, 5, 6, 7, 8, 20, 100}) {
        Shape s;
        for (int64_t i = 0; i < n; ++i) s.push_back(i * 3);
        ASSERT_EQ(static_cast<int64_t>(s.size()), n);
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(s[static_cast<size_t>(i)], i * 3);
        Shape copy = s;  // copies (inline or heap)
        EXPECT_EQ(copy, s);
        Shape moved = std::move(copy);
        EXPECT_EQ(moved, s);
        copy = moved;  // a moved-from Shape is usable again
        EXPECT_EQ(copy, s);
        Shape assigned{1};
        assigned = std::move(moved);
        EXPECT_EQ(assigned, s);
        assigned = Shape{9, 9};
        EXPECT_EQ(assigned, (Shape{9, 9}));
        while (!s.empty()) s.pop_back();
        EXPECT_TRUE(s.empty());
    }
}

TEST(ShapeSmallVector, InsertEraseResizeAssign) {
    Shape s{1, 2, 3};
    s.insert(s.begin() + 1, 10);
    EXPECT_EQ(s, (Shape{1, 10, 2, 3}));
    s.insert(s.end(), 2, 7);
    EXPECT_EQ(s, (Shape{1, 10, 2, 3, 7, 7}));
    s.insert(s.begin(), {4, 5});  // now past the inline capacity
    EXPECT_EQ(s, (Shape{4, 5, 1, 10, 2, 3, 7, 7}));
    s.insert(s.begin() + 2, s.begin(), s.begin() + 3);  // from itself
    EXPECT_EQ(s, (Shape{4, 5, 4, 5, 1, 1, 10, 2, 3, 7, 7}));
    s.erase(s.begin());
    EXPECT_EQ(s, (Shape{5, 4, 5, 1, 1, 10, 2, 3, 7, 7}));
    s.erase(s.begin() + 1, s.begin() + 8);
    EXPECT_EQ(s, (Shape{5, 7, 7}));
    s.resize(5);
    EXPECT_EQ(s, (Shape{5, 7, 7, 0, 0}));
    s.resize(2, 9);
    EXPECT_EQ(s, (Shape{5, 7}));
    s.resize(4, 9);
    EXPECT_EQ(s, (Shape{5, 7, 9, 9}));
    s.assign(3, 1);
    EXPECT_EQ(s, (Shape{1, 1, 1}));
    std::vector<int64_t> big = iota_vec(12);
    s.assign(big.begin(), big.end());
    EXPECT_EQ(s, big);
    s = {3, 2};
    EXPECT_EQ(s, (Shape{3, 2}));
    s.clear();
    EXPECT_TRUE(s.empty());
    EXPECT_THROW((void)s.at(0), std::out_of_range);
}

TEST(ShapeSmallVector, OrderIterationAndPrinting) {
    EXPECT_LT((Shape{1, 2}), (Shape{1, 3}));
    EXPECT_LT((Shape{1, 2}), (Shape{1, 2, 0}));
    EXPECT_NE((Shape{1, 2}), (Shape{2, 1}));
    std::map<Shape, int> m{{Shape{2}, 1}, {Shape{1, 5}, 2}};
    EXPECT_EQ(m.begin()->second, 2);
    Shape s{1, 2, 3};
    EXPECT_EQ(std::vector<int64_t>(s.rbegin(), s.rend()), (std::vector<int64_t>{3, 2, 1}));
    std::reverse(s.begin(), s.end());
    EXPECT_EQ(s, (Shape{3, 2, 1}));
    Shape a{1}, b{4, 5, 6, 7, 8, 9, 10};
    swap(a, b);
    EXPECT_EQ(a, (Shape{4, 5, 6, 7, 8, 9, 10}));
    EXPECT_EQ(b, (Shape{1}));
    EXPECT_EQ(detail::concat("shape ", Shape{2, 3}), "shape [2, 3]");
    EXPECT_EQ(detail::concat(Shape{}), "[]");
    try {
        (void)zeros({2, 3}).view({4, 2});
        FAIL() << "view should throw";
    } catch (const ShapeError& e) {
        EXPECT_NE(std::string(e.what()).find("[4, 2]"), std::string::npos) << e.what();
    }
}

TEST(ShapeSmallVector, TensorsOfManyDims) {
    // 8 dims (the maximum) spill past the inline storage: shapes, strides and views still work.
    Tensor t = arange(256).to(DType::float32).view({2, 2, 2, 2, 2, 2, 2, 2});
    EXPECT_EQ(t.dim(), 8);
    EXPECT_EQ(t.strides(), (Shape{128, 64, 32, 16, 8, 4, 2, 1}));
    Tensor p = t.permute({7, 6, 5, 4, 3, 2, 1, 0}).contiguous();
    EXPECT_EQ(p.at<double>({1, 0, 0, 0, 0, 0, 0, 0}), 1.0);
    EXPECT_EQ(p.at<double>({0, 0, 0, 0, 0, 0, 0, 1}), 128.0);
}

// ---- pooled objects and small buffers ----------------------------------------------------------

TEST(OpOverhead, ReusedMemoryKeepsValuesApart) {
    // Many small tensors alive at once, freed, made again: every one keeps its own values.
    for (int round = 0; round < 3; ++round) {
        std::vector<Tensor> ts;
        for (int64_t n = 0; n < 300; ++n) ts.push_back(full({n % 130}, static_cast<double>(n)));
        for (int64_t n = 0; n < 300; ++n) {
            auto v = ts[static_cast<size_t>(n)].to_vector<float>();
            ASSERT_EQ(static_cast<int64_t>(v.size()), n % 130);
            for (float x : v) ASSERT_EQ(x, static_cast<float>(n));
        }
        for (size_t i = 0; i < ts.size(); i += 2) ts[i] = Tensor();  // free every other one
        for (int64_t n = 0; n < 150; ++n) ts.push_back(full({3}, -1.0 * static_cast<double>(n)));
        for (size_t i = 1; i < 300; i += 2)
            for (float x : ts[i].to_vector<float>()) ASSERT_EQ(x, static_cast<float>(i));
    }
}

TEST(OpOverhead, TensorsCrossThreads) {
    // Made on one thread, freed on another (and the other way round): blocks join the freeing
    // thread's lists, and threads that end return theirs.
    std::vector<Tensor> made;
    std::thread worker([&] {
        for (int i = 0; i < 500; ++i) {
            Tensor a = ones({1}).requires_grad_();
            made.push_back((a + a) * static_cast<double>(i));
        }
    });
    worker.join();
    for (int i = 0; i < 500; ++i) EXPECT_EQ(made[static_cast<size_t>(i)].item<double>(), 2.0 * i);
    made.clear();
    std::vector<Tensor> here;
    for (int i = 0; i < 200; ++i) here.push_back(full({2}, i));
    std::thread freer([moved = std::move(here)]() mutable { moved.clear(); });
    freer.join();
    Tensor x = ones({4}).requires_grad_();
    (x * 3).sum().backward();
    EXPECT_TRUE(allclose(x.grad(), full({4}, 3)));
}

TEST(OpOverhead, FullFreeListsHandBlocksBack) {
    // More small tensors freed at once than a thread keeps per class (objects and buffers): the
    // rest go back to the heap and the backend, the kept ones when the thread ends (no leak, no
    // poisoned block touched under ASan).
    std::thread worker([] {
        for (int round = 0; round < 2; ++round) {
            std::vector<Tensor> ts;
            for (int i = 0; i < 5000; ++i) ts.push_back(full({1}, i));
            for (int i = 0; i < 5000; i += 997)
                ASSERT_EQ(ts[static_cast<size_t>(i)].item<float>(), static_cast<float>(i));
        }
    });
    worker.join();
    EXPECT_EQ(full({1}, 7).item<float>(), 7.0f);
}

// ---- autograd with the cached accumulator ------------------------------------------------------

TEST(OpOverhead, RepeatedAddsAccumulate) {
    Tensor a = ones({1}).requires_grad_(), b = full({1}, 2).requires_grad_();
    for (int i = 0; i < 1000; ++i) {
        Tensor c = a + b;
        (void)c;
    }
    for (int i = 0; i < 10; ++i) (a + b * 2).sum().backward();
    EXPECT_EQ(a.grad().item<double>(), 10.0);
    EXPECT_EQ(b.grad().item<double>(), 20.0);
}

TEST(OpOverhead, AddShapesAlphaAndDtypes) {
    Tensor a = ones({2, 3}).requires_grad_(), b = ones({3}).requires_grad_();
    add(a, b, 2).sum().backward();  // broadcast: b's gradient is summed back
    EXPECT_TRUE(allclose(a.grad(), ones({2, 3})));
    EXPECT_TRUE(allclose(b.grad(), full({3}, 4)));
    Tensor c = ones({3}).requires_grad_(), d = ones({3}).requires_grad_();
    add(c, d, -0.5).sum().backward();  // same shape: the inline closure
    EXPECT_TRUE(allclose(c.grad(), ones({3})));
    EXPECT_TRUE(allclose(d.grad(), full({3}, -0.5)));
    Tensor e = ones({3}, {.dtype = DType::float64}).requires_grad_();
    Tensor f = ones({3}).requires_grad_();
    Tensor g = e + f;  // mixed dtypes take the general path
    EXPECT_EQ(g.dtype(), DType::float64);
    g.sum().backward();
    EXPECT_EQ(f.grad().dtype(), DType::float32);
    Tensor i = arange(3) + arange(3);  // int64: no graph
    EXPECT_FALSE(i.requires_grad());
    {
        NoGradGuard ng;
        EXPECT_FALSE((c + d).requires_grad());
    }
}

TEST(OpOverhead, LeafDroppedBeforeBackward) {
    // The graph no longer keeps a leaf alive: backward still runs, the other leaf gets its grad.
    Tensor keep = ones({2}).requires_grad_();
    Tensor y;
    {
        Tensor gone = full({2}, 3).requires_grad_();
        y = (keep * gone).sum();
    }
    y.backward();
    EXPECT_TRUE(allclose(keep.grad(), full({2}, 3)));
}

TEST(OpOverhead, LeafHooksAndCreateGraph) {
    Tensor x = full({3}, 2).requires_grad_();
    int calls = 0;
    x.register_hook([&](const Tensor& g) {
        ++calls;
        return g * 10;
    });
    (x * x).sum().backward();  // hook on the (reused) accumulator
    (x + x).sum().backward();
    EXPECT_EQ(calls, 2);
    EXPECT_TRUE(allclose(x.grad(), full({3}, 60)));
    Tensor w = full({2}, 3).requires_grad_();
    Tensor gw = autograd::grad({(w * w * w).sum()}, {w}, {}, /*create_graph=*/true)[0];
    Tensor ggw = autograd::grad({gw.sum()}, {w})[0];  // d/dw 3w^2 = 6w
    EXPECT_TRUE(allclose(ggw, full({2}, 18)));
}
