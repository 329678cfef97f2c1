// linear()'s embedding fold (nn/embedding_fold.h): linear(embedding(E, idx), W, b) computed as
// (E Wᵀ + b)[idx] equals the direct path (the same rows in a fresh tensor, which has no gather
// behind it) in values and in every gradient, passes float64 gradcheck and gradgradcheck, and is
// left for the direct path whenever the rows are not what the embedding wrote or x's own
// gradient is observable.
#include <gtest/gtest.h>

#include <cstdint>

#include "soma/gradcheck.h"
#include "soma/nn/functional.h"
#include "soma/nn/rnn.h"
#include "soma/parallel.h"
#include "soma/soma.h"

namespace soma::nn::detail {  // internal (src/nn/embedding_fold.h)
void set_embedding_fold(bool on);
bool embedding_fold();
uint64_t embedding_fold_calls();
}  // namespace soma::nn::detail

namespace soma {
namespace {

namespace F = soma::nn::functional;
using nn::detail::embedding_fold_calls;

constexpr TensorOptions kF64{.dtype = DType::float64};

struct Fold : ::testing::Test {
    // V = 5 table rows, K = 7, 6 outputs, idx [4, 8]: 32 rows >= 4 V.
    Tensor E = randn({5, 7}, kF64).requires_grad_(), W = randn({6, 7}, kF64).requires_grad_(),
           b = randn({6}, kF64).requires_grad_(), idx = randint(0, 5, {4, 8}),
           R = randn({4, 8, 6}, kF64);
    void zero() {
        for (Tensor* t : {&E, &W, &b}) t->set_grad(Tensor());
    }
    // Forward value and the three gradients of sum(linear(x, W, b) * R).
    std::vector<Tensor> run(const Tensor& x) {
        zero();
        Tensor y = F::linear(x, W, b);
        (y * R).sum().backward();
        return {y.detach(), E.grad(), W.grad(), b.grad()};
    }
    static void expect_close(const std::vector<Tensor>& a, const std::vector<Tensor>& r) {
        ASSERT_EQ(a.size(), r.size());
        for (size_t i = 0; i < a.size(); ++i) {
            ASSERT_EQ(a[i].defined(), r[i].defined()) << i;
            if (a[i].defined()) {
                EXPECT_TRUE(allclose(a[i], r[i], 1e-12, 1e-12)) << i;
            }
        }
    }
};

TEST_F(Fold, EqualsTheDirectPath) {
    const uint64_t before = embedding_fold_calls();
    auto folded = run(embedding(E, idx));
    EXPECT_EQ(embedding_fold_calls(), before + 1);
    auto direct = run(embedding(E, idx).clone());
    EXPECT_EQ(embedding_fold_calls(), before + 1);
    expect_close(folded, direct);
    // The same with the switch off.
    nn::detail::set_embedding_fold(false);
    auto off = run(embedding(E, idx));
    nn::detail::set_embedding_fold(true);
    EXPECT_EQ(embedding_fold_calls(), before + 1);
    expect_close(off, direct);
}

TEST_F(Fold, NoBiasAndPaddingIdx) {
    idx.view({-1})[0].fill_(2);  // padding row 2 is used
    zero();
    Tensor y = F::linear(embedding(E, idx, 2), W);
    (y * R).sum().backward();
    std::vector<Tensor> folded{y.detach(), E.grad(), W.grad()};
    zero();
    Tensor y2 = F::linear(embedding(E, idx, 2).clone(), W);
    (y2 * R).sum().backward();
    expect_close(folded, {y2.detach(), E.grad(), W.grad()});
    EXPECT_EQ(E.grad()[2].abs().sum().item<double>(), 0.0);  // no gradient for padding_idx
    EXPECT_GT(W.grad().abs().sum().item<double>(), 0.0);
}

TEST_F(Fold, Gradcheck) {
    const uint64_t before = embedding_fold_calls();
    auto fn = [&](const std::vector<Tensor>& v) {
        return F::linear(embedding(v[0], idx), v[1], v[2]);
    };
    EXPECT_EQ(gradcheck(fn, {E, W, b}), "");
    EXPECT_EQ(gradgradcheck(fn, {E, W, b}), "");
    EXPECT_GT(embedding_fold_calls(), before);
}

TEST_F(Fold, ThreeDimensionalViewsAndFloat32) {
    // A [T, B, K] input read transposed (batch_first) folds when no gradient flows through x.
    Tensor idx3 = randint(0, 5, {6, 4});
    Tensor ref;
    {
        NoGradGuard ng;
        ref = F::linear(embedding(E, idx3).clone().transpose(0, 1), W, b);
        const uint64_t before = embedding_fold_calls();
        Tensor y = F::linear(embedding(E, idx3).transpose(0, 1), W, b);
        EXPECT_EQ(embedding_fold_calls(), before + 1);
        EXPECT_TRUE(allclose(y, ref, 1e-12, 1e-12));
        // A slice of rows: offset and strides in whole rows.
        Tensor big = randint(0, 5, {40});
        Tensor x = embedding(E, big).narrow(0, 8, 24);
        EXPECT_TRUE(allclose(F::linear(x, W, b), F::linear(x.clone(), W, b), 1e-12, 1e-12));
        EXPECT_EQ(embedding_fold_calls(), before + 2);
    }
    // float32: the same to float rounding.
    Tensor Ef = E.detach().to(DType::float32).requires_grad_(),
           Wf = W.detach().to(DType::float32).requires_grad_();
    Tensor yf = F::linear(embedding(Ef, idx), Wf);
    yf.sum().backward();
    Tensor gE = Ef.grad(), gW = Wf.grad();
    Ef.set_grad(Tensor());
    Wf.set_grad(Tensor());
    Tensor yr = F::linear(embedding(Ef, idx).clone(), Wf);
    yr.sum().backward();
    EXPECT_TRUE(allclose(yf, yr, 1e-5, 1e-5));
    EXPECT_TRUE(allclose(gE, Ef.grad(), 1e-5, 1e-5));
    EXPECT_TRUE(allclose(gW, Wf.grad(), 1e-5, 1e-5));
}

TEST_F(Fold, LeftToTheDirectPath) {
    auto direct = run(embedding(E, idx).clone());
    const uint64_t before = embedding_fold_calls();
    // Too few rows: 8 < 4 * 5.
    {
        Tensor i8 = randint(0, 5, {8});
        Tensor a = F::linear(embedding(E, i8), W, b), r = F::linear(embedding(E, i8).clone(), W, b);
        EXPECT_TRUE(allclose(a, r, 1e-12, 1e-12));
    }
    // The rows changed in place after the gather: the changed values count.
    {
        Tensor x = embedding(E, idx);
        x.mul_(2.0);
        zero();
        Tensor y = F::linear(x, W, b);
        Tensor yr = F::linear(embedding(E, idx).clone() * 2.0, W, b);
        EXPECT_TRUE(allclose(y, yr, 1e-12, 1e-12));
    }
    // The table changed after the gather: x keeps the old rows.
    {
        Tensor x = embedding(E, idx);
        Tensor xr = x.detach().clone();
        {
            NoGradGuard ng;
            E.add_(1.0);
        }
        EXPECT_TRUE(allclose(F::linear(x, W, b), F::linear(xr, W, b), 1e-12, 1e-12));
        NoGradGuard ng;
        E.sub_(1.0);
    }
    // A hook on x runs, and retain_grad keeps x's gradient.
    {
        int calls = 0;
        Tensor x = embedding(E, idx);
        x.register_hook([&](const Tensor& g) {
            ++calls;
            return g;
        });
        zero();
        Tensor y = F::linear(x, W, b);
        (y * R).sum().backward();
        EXPECT_EQ(calls, 1);
        expect_close({y.detach(), E.grad(), W.grad(), b.grad()}, direct);
        Tensor x2 = embedding(E, idx);
        x2.retain_grad();
        (F::linear(x2, W, b) * R).sum().backward();
        EXPECT_TRUE(x2.grad().defined());
    }
    // A leaf that asks for its own gradient after a no-grad gather.
    {
        Tensor x;
        {
            NoGradGuard ng;
            x = embedding(E, idx);
        }
        x.requires_grad_();
        (F::linear(x, W, b) * R).sum().backward();
        EXPECT_TRUE(x.grad().defined());
    }
    EXPECT_EQ(embedding_fold_calls(), before);
    // A no-grad gather followed by a recorded linear folds, and the table gets no gradient.
    {
        Tensor x;
        {
            NoGradGuard ng;
            x = embedding(E, idx);
        }
        zero();
        (F::linear(x, W, b) * R).sum().backward();
        EXPECT_EQ(embedding_fold_calls(), before + 1);
        EXPECT_FALSE(E.grad().defined() && E.grad().abs().sum().item<double>() != 0.0);
        EXPECT_TRUE(allclose(W.grad(), direct[2], 1e-12, 1e-12));
    }
}

TEST(FoldThreads, GatherAndRowSumsSameBitsOnOneTwoAndThreeThreads) {
    // The gather (index_select) and the per-table-row sums (index_add) that the fold and the
    // embedding's backward run split over the threads when large; the bits must not change.
    manual_seed(5);
    Tensor E = randn({20, 256}).requires_grad_();
    Tensor idx = randint(0, 20, {40, 16});
    const int saved = get_num_threads();
    std::vector<std::vector<Tensor>> runs;
    for (int t : {1, 2, 3}) {
        set_num_threads(t);
        E.set_grad(Tensor());
        Tensor y = embedding(E, idx);
        (y * y).sum().backward();
        runs.push_back({y.detach(), E.grad()});
    }
    set_num_threads(saved);
    for (size_t r = 1; r < runs.size(); ++r)
        for (size_t i = 0; i < runs[0].size(); ++i)
            EXPECT_TRUE(equal(runs[0][i], runs[r][i])) << r << " " << i;
}

TEST(FoldLstm, EmbeddingThenLstmMatchesTheDirectPath) {
    // The charlm / bench model: Embedding -> LSTM (input projection folded) -> loss.
    for (DType dt : {DType::float64, DType::float32}) {
        manual_seed(3);
        nn::Embedding emb({.num = 6, .dim = 8});
        nn::LSTM lstm({.input_size = 8, .hidden_size = 16});
        emb.to(dt);
        lstm.to(dt);
        Tensor tokens = randint(0, 6, {7, 5});
        std::vector<std::vector<Tensor>> grads;
        for (bool fold : {true, false}) {
            nn::detail::set_embedding_fold(fold);
            emb.zero_grad();
            lstm.zero_grad();
            const uint64_t before = embedding_fold_calls();
            Tensor h = lstm(emb(tokens), nn::RNNState{}).output;
            EXPECT_EQ(embedding_fold_calls(), before + (fold ? 1 : 0));
            (h * h).sum().backward();
            std::vector<Tensor> g{h.detach()};
            for (auto& p : emb.parameters()) g.push_back(p.grad().clone());
            for (auto& p : lstm.parameters()) g.push_back(p.grad().clone());
            grads.push_back(g);
        }
        nn::detail::set_embedding_fold(true);
        const double tol = dt == DType::float64 ? 1e-12 : 2e-5;
        for (size_t i = 0; i < grads[0].size(); ++i)
            EXPECT_TRUE(allclose(grads[0][i], grads[1][i], tol, tol)) << i;
    }
}

}  // namespace
}  // namespace soma
