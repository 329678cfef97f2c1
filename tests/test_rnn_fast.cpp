// The fast float32 path of the recurrence (packed W_hh + AVX2 micro-kernel, src/nn/rnn_fast.h)
// against the reference path (Backend::gemm per step), both in float32: outputs, final states
// and every gradient (input, h0, c0, all weights and biases), for LSTM, GRU and RNN, multi-layer,
// bidirectional, batch_first, batch 1, odd sizes (hidden not a multiple of 16, batch not a
// multiple of 6) and variable lengths. The reference path is forced with the internal
// soma::nn::detail::set_use_fast_rnn (also SOMA_RNN_FAST=0 in the environment).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "soma/nn/rnn.h"
#include "soma/soma.h"

namespace soma::nn::detail {
void set_use_fast_rnn(bool on);
bool use_fast_rnn();
}  // namespace soma::nn::detail

namespace soma {
namespace {

struct Case {
    nn::RNNMode mode;
    int64_t in, hidden, layers, T, B;
    bool bidirectional, batch_first, with_state, with_lengths;
};

struct Result {
    std::vector<Tensor> values;  // output, h, (c), then the gradients
    std::vector<std::string> names;
};

Result run(const Case& c, bool fast) {
    nn::detail::set_use_fast_rnn(fast);
    manual_seed(7);
    nn::RNNOptions o{.input_size = c.in,
                     .hidden_size = c.hidden,
                     .num_layers = c.layers,
                     .batch_first = c.batch_first,
                     .bidirectional = c.bidirectional};
    std::unique_ptr<nn::RNNBase> m;
    if (c.mode == nn::RNNMode::lstm)
        m = std::make_unique<nn::LSTM>(o);
    else if (c.mode == nn::RNNMode::gru)
        m = std::make_unique<nn::GRU>(o);
    else
        m = std::make_unique<nn::RNN>(o);
    const bool lstm = c.mode == nn::RNNMode::lstm;
    const int64_t D = c.bidirectional ? 2 : 1;
    Tensor x = (c.batch_first ? randn({c.B, c.T, c.in}) : randn({c.T, c.B, c.in})).requires_grad_();
    Tensor h0, c0, lengths;
    if (c.with_state) {
        h0 = randn({c.layers * D, c.B, c.hidden}).requires_grad_();
        if (lstm) c0 = randn({c.layers * D, c.B, c.hidden}).requires_grad_();
    }
    if (c.with_lengths) {
        std::vector<int64_t> lv;
        for (int64_t b = 0; b < c.B; ++b) lv.push_back(c.T - (b * 3) % c.T);
        lengths = from_vector<int64_t>(lv);
    }
    nn::RNNOutput r = (*m)(x, nn::RNNState{h0, c0}, lengths);
    Tensor wo = randn(r.output.shape()), wh = randn(r.h.shape());
    Tensor loss = (r.output * wo).sum() + (r.h * wh).sum();
    if (lstm) loss = loss + (r.c * randn(r.c.shape())).sum();
    loss.backward();
    Result res;
    auto add = [&](const Tensor& t, const std::string& n) {
        res.values.push_back(t.detach());
        res.names.push_back(n);
    };
    add(r.output, "output");
    add(r.h, "h_n");
    if (lstm) add(r.c, "c_n");
    add(x.grad(), "d input");
    if (c.with_state) {
        add(h0.grad(), "d h0");
        if (lstm) add(c0.grad(), "d c0");
    }
    for (auto& [n, p] : m->named_parameters()) add(p.grad(), "d " + n);
    nn::detail::set_use_fast_rnn(true);
    return res;
}

void compare(const Case& c) {
    Result ref = run(c, false), fast = run(c, true);
    ASSERT_EQ(ref.values.size(), fast.values.size());
    for (size_t i = 0; i < ref.values.size(); ++i) {
        ASSERT_TRUE(fast.values[i].defined()) << ref.names[i];
        ASSERT_EQ(ref.values[i].shape(), fast.values[i].shape()) << ref.names[i];
        const double scale = max(abs(ref.values[i])).item<double>() + 1.0;
        const double err = max(abs(ref.values[i] - fast.values[i])).item<double>();
        EXPECT_LE(err, 2e-5 * scale) << ref.names[i] << ": max |fast - reference| = " << err;
    }
}

TEST(RnnFast, EnabledByDefaultWhereSupported) {
    nn::detail::set_use_fast_rnn(false);
    EXPECT_FALSE(nn::detail::use_fast_rnn());
    nn::detail::set_use_fast_rnn(true);
    if (!nn::detail::use_fast_rnn()) GTEST_SKIP() << "no AVX2/FMA: the reference path only";
}

TEST(RnnFast, LstmOneLayerMatchesReference) {
    compare({nn::RNNMode::lstm, 24, 32, 1, 9, 8, false, false, true, false});
}
TEST(RnnFast, LstmOddSizesMatchReference) {
    compare({nn::RNNMode::lstm, 7, 21, 1, 6, 13, false, false, true, false});
}
TEST(RnnFast, LstmTwoLayersBidirectionalBatchFirstMatchesReference) {
    compare({nn::RNNMode::lstm, 10, 20, 2, 7, 5, true, true, true, false});
}
TEST(RnnFast, LstmBatchOneWithoutStateMatchesReference) {
    compare({nn::RNNMode::lstm, 16, 48, 1, 11, 1, false, false, false, false});
}
TEST(RnnFast, LstmWithLengthsMatchesReference) {
    compare({nn::RNNMode::lstm, 6, 17, 2, 8, 7, true, false, true, true});
}
TEST(RnnFast, LstmWithLengthsAlignedHiddenMatchesReference) {
    // hidden a multiple of 16: the fused step (GEMM + cell per block of units) with masking.
    compare({nn::RNNMode::lstm, 12, 32, 2, 9, 11, true, true, true, true});
}
TEST(RnnFast, LstmLargeHiddenMatchesReference) {
    // K of the backward product (4H = 1280) spans several 256-wide blocks.
    compare({nn::RNNMode::lstm, 32, 320, 1, 4, 9, false, false, true, false});
}
TEST(RnnFast, GruTwoLayersBidirectionalMatchesReference) {
    compare({nn::RNNMode::gru, 9, 19, 2, 6, 7, true, false, true, false});
}
TEST(RnnFast, GruWithLengthsMatchesReference) {
    compare({nn::RNNMode::gru, 5, 16, 1, 7, 4, false, true, true, true});
}
TEST(RnnFast, RnnTanhMatchesReference) {
    compare({nn::RNNMode::rnn_tanh, 8, 33, 2, 5, 6, true, false, true, false});
}

TEST(RnnFast, SameBitsForAnyThreadCount) {
    // The panels (forward and backward products, the fused LSTM steps) are split over threads
    // by disjoint columns, each summed in a fixed order.
    const Case c{nn::RNNMode::lstm, 16, 64, 1, 6, 10, true, false, true, true};
    const int saved = get_num_threads();
    set_num_threads(1);
    Result one = run(c, true);
    set_num_threads(2);
    Result two = run(c, true);
    set_num_threads(saved);
    for (size_t i = 0; i < one.values.size(); ++i)
        EXPECT_TRUE(equal(one.values[i], two.values[i])) << one.names[i];
}

TEST(RnnFast, Float64AlwaysTakesTheReferencePath) {
    // The gradcheck oracle: float64 results are bit-identical with the switch on or off.
    auto go = [](bool fast) {
        nn::detail::set_use_fast_rnn(fast);
        manual_seed(3);
        nn::LSTM m({.input_size = 4, .hidden_size = 5});
        m.to(DType::float64);
        Tensor x = randn({3, 2, 4}, {.dtype = DType::float64});
        Tensor y = m(x, nn::RNNState{}).output;
        nn::detail::set_use_fast_rnn(true);
        return y;
    };
    EXPECT_TRUE(equal(go(false), go(true)));
}

}  // namespace
}  // namespace soma
