// RNN, LSTM, GRU and their cells (soma/nn/rnn.h).
//
// Golden values: tests/fixtures/rnn.json, written by scripts/gen_rnn_fixtures.py with PyTorch
// 1.13: 2-layer bidirectional LSTM and GRU in float64 (plain and packed with lengths), outputs,
// final states and the gradients of a fixed scalar function with respect to the input, the
// initial states and every parameter. Then float64 gradchecks of every cell and fused step,
// batch_first, unbatched input, variable-length batches against each sequence run alone, and
// the error messages.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "soma/gradcheck.h"
#include "soma/nn/functional.h"
#include "soma/nn/rnn.h"
#include "soma/soma.h"
#include "soma/text.h"

namespace soma {
namespace {

namespace F = soma::nn::functional;
using ::testing::HasSubstr;
using json = nlohmann::json;

const json& fixtures() {
    static const json j = [] {
        std::ifstream f(SOMA_FIXTURE_DIR "/rnn.json");
        if (!f) return json::object();
        return json::parse(f);
    }();
    return j;
}

Tensor from_json(const json& t) {
    return from_vector<double>(t["data"].get<std::vector<double>>(), t["shape"].get<Shape>());
}

void expect_close(const Tensor& a, const Tensor& b, const std::string& what, double tol = 1e-9) {
    ASSERT_TRUE(a.defined()) << what;
    ASSERT_EQ(a.shape(), b.shape()) << what;
    EXPECT_TRUE(allclose(a.to(DType::float64), b, tol, tol)) << what << "\ngot\n"
                                                             << a << "\nexpected\n"
                                                             << b;
}

std::unique_ptr<nn::RNNBase> make_from_case(const json& c) {
    nn::RNNOptions o{.input_size = c["input_size"],
                     .hidden_size = c["hidden_size"],
                     .num_layers = c["num_layers"],
                     .bidirectional = c["bidirectional"]};
    std::unique_ptr<nn::RNNBase> m;
    if (c["kind"] == "lstm")
        m = std::make_unique<nn::LSTM>(o);
    else
        m = std::make_unique<nn::GRU>(o);
    m->to(DType::float64);
    nn::NamedTensors sd;
    for (auto& [k, v] : c["state_dict"].items()) sd.emplace_back(k, from_json(v));
    m->load_state_dict(sd);
    return m;
}

void run_fixture(const std::string& key) {
    const json& all = fixtures();
    if (!all.contains("cases")) GTEST_SKIP() << "tests/fixtures/rnn.json missing";
    const json& c = all["cases"][key];
    auto m = make_from_case(c);
    const bool lstm = c["kind"] == "lstm";
    Tensor x = from_json(c["inputs"]["x"]).requires_grad_();
    Tensor h0 = from_json(c["inputs"]["h0"]).requires_grad_();
    Tensor c0 = lstm ? from_json(c["inputs"]["c0"]).requires_grad_() : Tensor();
    Tensor lengths;
    if (c.contains("lengths"))
        lengths = from_vector<int64_t>(c["lengths"].get<std::vector<int64_t>>());
    nn::RNNOutput r = (*m)(x, {h0, c0}, lengths);
    expect_close(r.output, from_json(c["output"]), key + " output");
    expect_close(r.h, from_json(c["h_n"]), key + " h_n");
    Tensor loss = (r.output * from_json(c["w_out"])).sum() + (r.h * from_json(c["w_h"])).sum();
    if (lstm) {
        expect_close(r.c, from_json(c["c_n"]), key + " c_n");
        loss = loss + (r.c * from_json(c["w_c"])).sum();
    }
    EXPECT_NEAR(loss.item(), c["loss"].get<double>(), 1e-9);
    loss.backward();
    expect_close(x.grad(), from_json(c["input_grads"]["x"]), key + " dx");
    expect_close(h0.grad(), from_json(c["input_grads"]["h0"]), key + " dh0");
    if (lstm) expect_close(c0.grad(), from_json(c["input_grads"]["c0"]), key + " dc0");
    for (auto& [name, p] : m->named_parameters())
        expect_close(p.grad(), from_json(c["param_grads"][name]), key + " d" + name);
}

TEST(Rnn, LstmMatchesPytorch) { run_fixture("lstm"); }
TEST(Rnn, GruMatchesPytorch) { run_fixture("gru"); }
TEST(Rnn, PackedLstmMatchesPytorch) { run_fixture("lstm_packed"); }
TEST(Rnn, PackedGruMatchesPytorch) { run_fixture("gru_packed"); }

TEST(Rnn, ParameterNamesAndShapes) {
    nn::LSTM lstm({.input_size = 3, .hidden_size = 5, .num_layers = 2, .bidirectional = true});
    std::vector<std::string> names;
    for (auto& [n, p] : lstm.named_parameters()) names.push_back(n);
    EXPECT_THAT(names, ::testing::ElementsAre(
                           "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                           "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse",
                           "bias_hh_l0_reverse", "weight_ih_l1", "weight_hh_l1", "bias_ih_l1",
                           "bias_hh_l1", "weight_ih_l1_reverse", "weight_hh_l1_reverse",
                           "bias_ih_l1_reverse", "bias_hh_l1_reverse"));
    EXPECT_EQ(lstm.get("weight_ih_l0").shape(), Shape({20, 3}));
    EXPECT_EQ(lstm.get("weight_ih_l1").shape(), Shape({20, 10}));
    EXPECT_EQ(lstm.get("weight_hh_l1_reverse").shape(), Shape({20, 5}));
    nn::GRU gru({.input_size = 3, .hidden_size = 5, .bias = false});
    EXPECT_EQ(gru.named_parameters().size(), 2u);
    EXPECT_EQ(gru.get("weight_hh_l0").shape(), Shape({15, 5}));
    const double k = 1 / std::sqrt(5.0);
    for (auto& p : lstm.parameters()) {
        EXPECT_LE(max(p).item(), k);
        EXPECT_GE(min(p).item(), -k);
    }
    EXPECT_EQ(lstm.to_string(), "LSTM(3, 5, num_layers=2, bidirectional=True)");
    nn::LSTMCell cell({.input_size = 3, .hidden_size = 5});
    EXPECT_EQ(cell.get("weight_ih").shape(), Shape({20, 3}));
    EXPECT_EQ(cell.to_string(), "LSTMCell(3, 5)");
}

// ---- gradchecks ------------------------------------------------------------------------------

Tensor rnd(const Shape& s) { return randn(s, {.dtype = DType::float64}); }

void gradcheck_cell(nn::RNNMode mode) {
    const int64_t B = 2, IN = 3, H = 4,
                  G = mode == nn::RNNMode::lstm  ? 4
                      : mode == nn::RNNMode::gru ? 3
                                                 : 1;
    std::vector<Tensor> in{rnd({B, IN}),    rnd({B, H}),  rnd({B, H}), rnd({G * H, IN}),
                           rnd({G * H, H}), rnd({G * H}), rnd({G * H})};
    for (auto& t : in) t.requires_grad_();
    auto fn = [mode](const std::vector<Tensor>& v) {
        Tensor gx = F::linear(v[0], v[3], v[5]), gh = F::linear(v[1], v[4], v[6]);
        nn::RNNState s = F::rnn_step(mode, gx, gh, {v[1], v[2]});
        return mode == nn::RNNMode::lstm ? cat({s.h, s.c * 0.7}, 1) : s.h;
    };
    EXPECT_EQ(gradcheck(fn, in), "");
}

TEST(Rnn, GradcheckRnnTanhCell) { gradcheck_cell(nn::RNNMode::rnn_tanh); }
TEST(Rnn, GradcheckRnnReluCell) { gradcheck_cell(nn::RNNMode::rnn_relu); }
TEST(Rnn, GradcheckLstmCell) { gradcheck_cell(nn::RNNMode::lstm); }
TEST(Rnn, GradcheckGruCell) { gradcheck_cell(nn::RNNMode::gru); }

TEST(Rnn, GradcheckFusedStepsWithStridedOperands) {
    // gx and c as strided views (c is a slice of a wider tensor, gx a transposed copy).
    Tensor gx = rnd({8, 2}).requires_grad_(), gh = rnd({2, 8}).requires_grad_();
    Tensor cw = rnd({2, 6}).requires_grad_();
    EXPECT_EQ(gradcheck(
                  [](const std::vector<Tensor>& v) {
                      return F::lstm_step(v[0].t(), v[1], v[2].narrow(1, 1, 2));
                  },
                  {gx, gh, cw}),
              "");
    Tensor gx3 = rnd({6, 2}).requires_grad_(), gh3 = rnd({2, 6}).requires_grad_();
    Tensor h = rnd({2, 5}).requires_grad_();
    EXPECT_EQ(gradcheck(
                  [](const std::vector<Tensor>& v) {
                      return F::gru_step(v[0].t(), v[1], v[2].narrow(1, 2, 2));
                  },
                  {gx3, gh3, h}),
              "");
}

TEST(Rnn, GradcheckBidirectionalLayersWithLengths) {
    for (nn::RNNMode mode : {nn::RNNMode::lstm, nn::RNNMode::gru}) {
        nn::RNNOptions o{.input_size = 2, .hidden_size = 2, .num_layers = 2, .bidirectional = true};
        std::unique_ptr<nn::RNNBase> m;
        if (mode == nn::RNNMode::lstm) m = std::make_unique<nn::LSTM>(o);
        if (mode == nn::RNNMode::gru) m = std::make_unique<nn::GRU>(o);
        m->to(DType::float64);
        Tensor x = rnd({3, 2, 2}).requires_grad_(), h0 = rnd({4, 2, 2}).requires_grad_();
        Tensor lengths = from_vector<int64_t>({3, 2});
        auto fn = [&](const std::vector<Tensor>& v) {
            auto r = (*m)(v[0], {v[1], {}}, lengths);
            return cat({r.output.flatten(), r.h.flatten()}, 0);
        };
        EXPECT_EQ(gradcheck(fn, {x, h0}), "") << static_cast<int>(mode);
    }
}

// ---- layouts and lengths ---------------------------------------------------------------------

TEST(Rnn, BatchFirstAndUnbatched) {
    manual_seed(3);
    nn::GRU tm({.input_size = 3, .hidden_size = 4, .num_layers = 2});
    nn::GRU bf({.input_size = 3, .hidden_size = 4, .num_layers = 2, .batch_first = true});
    bf.load_state_dict(tm.state_dict());
    Tensor x = randn({5, 2, 3});
    auto a = tm(x, {});
    auto b = bf(x.transpose(0, 1), {});
    EXPECT_EQ(b.output.shape(), Shape({2, 5, 4}));
    EXPECT_TRUE(allclose(a.output, b.output.transpose(0, 1), 1e-6, 1e-6));
    EXPECT_TRUE(allclose(a.h, b.h, 1e-6, 1e-6));
    auto u = tm(x.select(1, 1), {});
    EXPECT_EQ(u.output.shape(), Shape({5, 4}));
    EXPECT_EQ(u.h.shape(), Shape({2, 4}));
    EXPECT_TRUE(allclose(u.output, a.output.select(1, 1), 1e-6, 1e-6));
}

TEST(Rnn, CellsMatchOneStepOfTheLayer) {
    manual_seed(4);
    nn::LSTM lstm({.input_size = 3, .hidden_size = 4});
    nn::LSTMCell cell({.input_size = 3, .hidden_size = 4});
    cell.weight_ih.detach().copy_(lstm.get("weight_ih_l0"));
    cell.weight_hh.detach().copy_(lstm.get("weight_hh_l0"));
    cell.bias_ih.detach().copy_(lstm.get("bias_ih_l0"));
    cell.bias_hh.detach().copy_(lstm.get("bias_hh_l0"));
    Tensor x = randn({3, 2, 3});
    auto r = lstm(x, {});
    nn::RNNState s;
    for (int64_t t = 0; t < 3; ++t) s = cell(x[t], s);
    EXPECT_TRUE(allclose(s.h, r.h[0], 1e-6, 1e-6));
    EXPECT_TRUE(allclose(s.c, r.c[0], 1e-6, 1e-6));
    nn::RNNCell rc({.input_size = 3, .hidden_size = 4, .nonlinearity = "relu"});
    Tensor h = rc(x[0], {}).h;
    EXPECT_GE(min(h).item(), 0.0);
    EXPECT_EQ(nn::GRUCell({.input_size = 3, .hidden_size = 4})(x[0][0], {}).h.shape(), Shape({4}));
}

// Padding must not leak: each sequence of a padded batch gives what it gives alone.
template <class M>
void check_lengths_against_alone(M& m, bool lstm) {
    const int64_t T = 6, B = 4;
    std::vector<int64_t> lens{6, 1, 4, 3};
    Tensor x = randn({T, B, 3}, {.dtype = DType::float64}).requires_grad_();
    Tensor h0 = randn({4, B, 5}, {.dtype = DType::float64});
    Tensor c0 = lstm ? randn({4, B, 5}, {.dtype = DType::float64}) : Tensor();
    auto r = m(x, {h0, c0}, from_vector<int64_t>(lens));
    (r.output.sum() + r.h.sum()).backward();
    for (int64_t b = 0; b < B; ++b) {
        const int64_t n = lens[static_cast<size_t>(b)];
        Tensor xb = x.detach().select(1, b).narrow(0, 0, n).unsqueeze(1);
        Tensor hb = h0.select(1, b).unsqueeze(1);
        Tensor cb = lstm ? c0.select(1, b).unsqueeze(1) : Tensor();
        auto a = m(xb, {hb, cb});
        EXPECT_TRUE(
            allclose(r.output.select(1, b).narrow(0, 0, n), a.output.select(1, 0), 1e-10, 1e-10))
            << b;
        if (n < T) {
            EXPECT_EQ(r.output.select(1, b).narrow(0, n, T - n).abs().sum().item(), 0.0) << b;
            EXPECT_EQ(x.grad().select(1, b).narrow(0, n, T - n).abs().sum().item(), 0.0) << b;
        }
        EXPECT_TRUE(allclose(r.h.select(1, b), a.h.select(1, 0), 1e-10, 1e-10)) << b;
        if (lstm) {
            EXPECT_TRUE(allclose(r.c.select(1, b), a.c.select(1, 0), 1e-10, 1e-10)) << b;
        }
    }
}

TEST(Rnn, LengthsNeverLeakPadding) {
    manual_seed(5);
    nn::LSTM lstm({.input_size = 3, .hidden_size = 5, .num_layers = 2, .bidirectional = true});
    lstm.to(DType::float64);
    check_lengths_against_alone(lstm, true);
    nn::GRU gru({.input_size = 3, .hidden_size = 5, .num_layers = 2, .bidirectional = true});
    gru.to(DType::float64);
    check_lengths_against_alone(gru, false);
}

TEST(Rnn, StateCarriesAcrossChunks) {
    // Running [0, T) at once equals running [0, k) then [k, T) from the carried state.
    manual_seed(6);
    nn::LSTM lstm({.input_size = 2, .hidden_size = 3, .num_layers = 2});
    Tensor x = randn({7, 2, 2});
    auto full = lstm(x, {});
    auto a = lstm(x.narrow(0, 0, 3), {});
    auto b = lstm(x.narrow(0, 3, 4), a.state().detach());
    EXPECT_TRUE(allclose(full.h, b.h, 1e-6, 1e-6));
    EXPECT_TRUE(allclose(full.c, b.c, 1e-6, 1e-6));
    EXPECT_FALSE(b.state().detach().h.requires_grad());
}

TEST(Rnn, DropoutBetweenLayersOnlyInTraining) {
    manual_seed(7);
    nn::LSTM lstm({.input_size = 2, .hidden_size = 8, .num_layers = 2, .dropout = 0.5});
    Tensor x = randn({4, 3, 2});
    lstm.eval();
    auto a = lstm(x, {}), b = lstm(x, {});
    EXPECT_TRUE(equal(a.output, b.output));
    lstm.train();
    auto c = lstm(x, {});
    EXPECT_FALSE(allclose(a.output, c.output));
}

TEST(Rnn, Errors) {
    nn::LSTM lstm({.input_size = 3, .hidden_size = 4, .num_layers = 2});
    auto msg = [](auto&& f) {
        try {
            f();
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    EXPECT_THAT(msg([&] {
                    lstm(randn({5, 2, 7}), {});
                }),
                HasSubstr("LSTM: expected input [T, B, 3] or [T, 3]: got [5, 2, 7]"));
    EXPECT_THAT(msg([&] {
                    lstm(randn({5, 2, 3}), {zeros({1, 2, 4}), {}});
                }),
                HasSubstr("h must be [num_layers * directions, B, hidden] = [2, 2, 4]: got [1, 2, "
                          "4]"));
    EXPECT_THAT(msg([&] {
                    lstm(randn({5, 2, 3}), {}, from_vector<int64_t>({5, 9}));
                }),
                HasSubstr("every length must be in [1, T = 5]: got 9"));
    EXPECT_THAT(msg([&] {
                    lstm(randn({5, 2, 3}), {}, from_vector<int64_t>({5, 5, 5}));
                }),
                HasSubstr("lengths must be [B] = [2]: got [3]"));
    nn::GRU gru({.input_size = 3, .hidden_size = 4});
    EXPECT_THAT(msg([&] {
                    gru(randn({5, 2, 3}), {{}, zeros({1, 2, 4})});
                }),
                HasSubstr("GRU: a cell state c was given, but only LSTM has one"));
    EXPECT_THAT(msg([] { nn::RNN({.input_size = 3, .hidden_size = 4, .nonlinearity = "gelu"}); }),
                HasSubstr("RNN: unknown nonlinearity: got \"gelu\""));
    EXPECT_THAT(msg([] { nn::GRU({.input_size = 0, .hidden_size = 4}); }),
                HasSubstr("GRU: input_size and hidden_size must be positive: got 0 and 4"));
    nn::GRUCell cell({.input_size = 3, .hidden_size = 4});
    EXPECT_THAT(msg([&] {
                    cell(randn({2, 3}), {zeros({3, 4}), {}});
                }),
                HasSubstr("GRUCell: h must be [2, 4]: got [3, 4]"));
    EXPECT_THROW(lstm(randn({5, 2, 3}, {.dtype = DType::float64}), {}), DTypeError);
}

// ---- text: vocabulary, BPTT batches, a tiny character model ---------------------------------

TEST(RnnText, VocabSplitAndBpttBatches) {
    auto v = text::CharVocab::from_text("abcab a");
    EXPECT_EQ(v.chars(), " abc");
    EXPECT_EQ(v.decode(v.encode("cab a")), "cab a");
    EXPECT_THROW(v.id('z'), ValueError);
    std::vector<int64_t> ids(23);
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int64_t>(i);
    auto sp = text::split_tail(ids, 0.2);
    EXPECT_EQ(sp.val.size(), 4u);
    EXPECT_EQ(sp.val.front(), 19);
    text::BpttBatches bb(ids, 2, 4);  // rows of 11 tokens: columns 0..10 and 11..21
    ASSERT_EQ(bb.size(), 3);
    auto b0 = bb[0], b1 = bb[1], b2 = bb[2];
    EXPECT_EQ(b0.x.shape(), Shape({4, 2}));
    EXPECT_EQ(b0.x.to_vector<int64_t>(), (std::vector<int64_t>{0, 11, 1, 12, 2, 13, 3, 14}));
    EXPECT_EQ(b0.y.to_vector<int64_t>(), (std::vector<int64_t>{1, 12, 2, 13, 3, 14, 4, 15}));
    EXPECT_EQ(b1.x.at<int64_t>({0, 1}), 15);  // row 1 continues where batch 0 left it
    EXPECT_EQ(b2.x.shape(), Shape({3, 2}));
    EXPECT_EQ(b2.y.at<int64_t>({2, 1}), 22);
}

TEST(RnnText, CharLmLearnsAndSamples) {
    const std::string s = "the cat sat on the mat. ";
    std::string corpus;
    for (int i = 0; i < 60; ++i) corpus += s;
    auto v = text::CharVocab::from_text(corpus);
    auto sp = text::split_tail(v.encode(corpus), 0.1);
    manual_seed(1);
    text::CharLM m({.vocab = v.size(), .embed = 8, .hidden = 32});
    const double before = text::evaluate_bpc(m, sp.val, 4, 16);
    auto rep = text::train_charlm(
        m, sp, {.batch_size = 8, .bptt = 16, .lr = 1e-2, .max_steps = 60, .on_progress = {}});
    EXPECT_EQ(rep.steps, 60);
    EXPECT_LT(rep.val_bpc, before - 1.5);
    std::string out = text::sample(m, v, "the ", {.length = 20, .temperature = 0.5, .seed = 3});
    EXPECT_EQ(out.size(), 24u);
    EXPECT_EQ(out.substr(0, 4), "the ");
    EXPECT_THROW(text::sample(m, v, "xyz"), ValueError);
}

}  // namespace
}  // namespace soma
