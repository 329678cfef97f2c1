// The fused sequence node (functional::rnn_sequence): equals the step-by-step composition of
// the fused step nodes (outputs, final states and every gradient), forward and reverse, with
// and without lengths, for all four modes; float64 gradcheck of the node itself.
#include <gtest/gtest.h>

#include "soma/gradcheck.h"
#include "soma/nn/functional.h"
#include "soma/nn/rnn.h"
#include "soma/soma.h"

namespace soma {
namespace {

namespace F = soma::nn::functional;
using nn::RNNMode;

int64_t gates(RNNMode m) { return m == RNNMode::lstm ? 4 : m == RNNMode::gru ? 3 : 1; }

// The reference: one GEMM node and one step node per time step, masks with where().
nn::RNNOutput step_by_step(RNNMode mode, const Tensor& gx, const Tensor& w_hh, const Tensor& b_hh,
                           nn::RNNState s, const std::vector<int64_t>& lengths, bool reverse) {
    const int64_t T = gx.size(0), B = gx.size(1);
    Tensor mask;
    if (!lengths.empty()) {
        Tensor steps = arange(0, T, 1, {.dtype = DType::int64}).view({T, 1});
        mask = lt(steps, from_vector<int64_t>(lengths).view({1, B})).unsqueeze(2);
    }
    std::vector<Tensor> outs(static_cast<size_t>(T));
    for (int64_t k = 0; k < T; ++k) {
        const int64_t t = reverse ? T - 1 - k : k;
        nn::RNNState ns = F::rnn_step(mode, gx[t], F::linear(s.h, w_hh, b_hh), s);
        if (mask.defined()) {
            outs[static_cast<size_t>(t)] = where(mask[t], ns.h, 0.0);
            ns.h = where(mask[t], ns.h, s.h);
            if (ns.c.defined()) ns.c = where(mask[t], ns.c, s.c);
        } else {
            outs[static_cast<size_t>(t)] = ns.h;
        }
        s = ns;
    }
    return {stack(outs, 0), s.h, s.c};
}

void compare(RNNMode mode, bool reverse, const std::vector<int64_t>& lengths, bool bias) {
    const int64_t T = 5, B = 3, H = 4, GH = gates(mode) * H;
    const bool lstm = mode == RNNMode::lstm;
    const TensorOptions f64{.dtype = DType::float64};
    std::vector<Tensor> in{randn({T, B, GH}, f64), randn({GH, H}, f64) * 0.5,
                           bias ? randn({GH}, f64) : Tensor(), randn({B, H}, f64),
                           lstm ? randn({B, H}, f64) : Tensor()};
    // Weighted sums of every result, so each gradient path is exercised.
    Tensor wo = randn({T, B, H}, f64), wh = randn({B, H}, f64), wc = randn({B, H}, f64);
    auto run = [&](bool fused) {
        std::vector<Tensor> v;
        for (auto& t : in) v.push_back(t.defined() ? t.detach().requires_grad_() : Tensor());
        nn::RNNState s{v[3], v[4]};
        nn::RNNOutput r = fused ? F::rnn_sequence(mode, v[0], v[1], v[2], s, lengths, reverse)
                                : step_by_step(mode, v[0], v[1], v[2], s, lengths, reverse);
        Tensor loss = (r.output * wo).sum() + (r.h * wh).sum();
        if (lstm) loss = loss + (r.c * wc).sum();
        loss.backward();
        std::vector<Tensor> res{r.output, r.h, r.c};
        for (auto& t : v) res.push_back(t.defined() ? t.grad() : Tensor());
        return res;
    };
    auto a = run(true), b = run(false);
    const char* names[] = {"output", "h", "c", "dgx", "dw_hh", "db_hh", "dh0", "dc0"};
    for (size_t i = 0; i < a.size(); ++i) {
        SCOPED_TRACE(std::string(names[i]) + " mode " + std::to_string(static_cast<int>(mode)) +
                     (reverse ? " reverse" : "") + (lengths.empty() ? "" : " lengths"));
        ASSERT_EQ(a[i].defined(), b[i].defined());
        if (!a[i].defined()) continue;
        ASSERT_EQ(a[i].shape(), b[i].shape());
        EXPECT_TRUE(allclose(a[i], b[i], 1e-11, 1e-11)) << a[i] << "\n" << b[i];
    }
}

TEST(RnnSeq, FusedEqualsStepByStep) {
    manual_seed(11);
    for (RNNMode mode : {RNNMode::rnn_tanh, RNNMode::rnn_relu, RNNMode::lstm, RNNMode::gru})
        for (bool reverse : {false, true}) {
            compare(mode, reverse, {}, true);
            compare(mode, reverse, {5, 2, 4}, true);
        }
    compare(RNNMode::lstm, false, {1, 3, 5}, false);
    compare(RNNMode::gru, true, {3, 5, 1}, false);
}

TEST(RnnSeq, GradcheckFusedSequence) {
    manual_seed(12);
    const int64_t T = 3, B = 2, H = 2;
    for (RNNMode mode : {RNNMode::rnn_tanh, RNNMode::lstm, RNNMode::gru}) {
        const int64_t GH = gates(mode) * H;
        const bool lstm = mode == RNNMode::lstm;
        std::vector<Tensor> in{
            randn({T, B, GH}, {.dtype = DType::float64}), randn({GH, H}, {.dtype = DType::float64}),
            randn({GH}, {.dtype = DType::float64}), randn({B, H}, {.dtype = DType::float64}),
            randn({B, H}, {.dtype = DType::float64})};
        for (auto& t : in) t.requires_grad_();
        for (bool reverse : {false, true}) {
            auto fn = [&](const std::vector<Tensor>& v) {
                nn::RNNState s{v[3], lstm ? v[4] : Tensor()};
                auto r = F::rnn_sequence(mode, v[0], v[1], v[2], s, {3, 2}, reverse);
                Tensor out = cat({r.output.flatten(), r.h.flatten()}, 0);
                return lstm ? cat({out, r.c.flatten() * 0.7}, 0) : out;
            };
            std::vector<Tensor> use = in;
            if (!lstm) use.pop_back();
            auto fn2 = [&](const std::vector<Tensor>& v) {
                std::vector<Tensor> w = v;
                if (!lstm) w.push_back(Tensor());
                return fn(w);
            };
            EXPECT_EQ(gradcheck(fn2, use), "") << static_cast<int>(mode) << " " << reverse;
        }
    }
}

TEST(RnnSeq, Errors) {
    Tensor gx = randn({4, 2, 12}), w = randn({12, 3}), h = zeros({2, 3});
    EXPECT_THROW(F::rnn_sequence(RNNMode::lstm, randn({4, 2, 9}), w, {}, {h, h}), ShapeError);
    EXPECT_THROW(F::rnn_sequence(RNNMode::gru, gx, w, {}, {h.to(DType::float64), {}}),
                 ShapeError);  // w_hh is [12, 3]: GRU wants [9, 3]
    EXPECT_THROW(F::rnn_sequence(RNNMode::gru, randn({4, 2, 9}), randn({9, 3}), {},
                                 {h.to(DType::float64), {}}),
                 DTypeError);
    EXPECT_THROW(F::rnn_sequence(RNNMode::lstm, randn({4, 2, 12}), w, {}, {h, h}, {4}), ValueError);
}

}  // namespace
}  // namespace soma
