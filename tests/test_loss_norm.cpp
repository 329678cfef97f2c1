// Losses, batch_norm, layer_norm and dropout (soma::nn::functional).
//
// Golden values: tests/fixtures/loss.json, written by scripts/gen_loss_fixtures.py with PyTorch
// 1.13 (every loss x reduction, cross_entropy/nll_loss variants, batch_norm train/eval,
// layer_norm): outputs and the gradients PyTorch gives, for a random upstream gradient.
// Then float64 gradchecks, the fused kernels' create_graph path, float32, dropout statistics
// and seeding, and the error messages.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "soma/nn/functional.h"
#include "soma/soma.h"

namespace soma {
namespace {

namespace F = soma::nn::functional;
using ::testing::HasSubstr;
using json = nlohmann::json;
using Tensors = std::vector<Tensor>;
using F::Reduction;

// ---- fixtures ----------------------------------------------------------------------------------

const json& fixtures() {
    static const json j = [] {
        std::ifstream f(SOMA_FIXTURE_DIR "/loss.json");
        if (!f) return json::object();
        return json::parse(f);
    }();
    return j;
}

std::vector<std::string> case_names(const char* key) {
    std::vector<std::string> names;
    if (!fixtures().contains(key)) return names;
    for (const auto& c : fixtures()[key]) names.push_back(c["name"].get<std::string>());
    return names;
}

const json& find_case(const char* key, const std::string& name) {
    for (const auto& c : fixtures()[key])
        if (c["name"] == name) return c;
    throw std::runtime_error("no fixture " + name);
}

Tensor from_json(const json& t) {
    Shape shape = t["shape"].get<Shape>();
    if (t["dtype"] == "int64")
        return from_vector<int64_t>(t["data"].get<std::vector<int64_t>>(), shape);
    return from_vector<double>(t["data"].get<std::vector<double>>(), shape);
}

Reduction reduction_of(const std::string& r) {
    if (r == "none") return Reduction::none;
    if (r == "sum") return Reduction::sum;
    if (r == "batchmean") return Reduction::batchmean;
    return Reduction::mean;
}

// Element-wise |a - b| <= atol + rtol |b| with a readable failure.
void expect_close(const Tensor& got, const Tensor& want, const std::string& what,
                  double rtol = 1e-9, double atol = 1e-10) {
    ASSERT_TRUE(got.defined()) << what << ": undefined";
    ASSERT_EQ(got.shape(), want.shape()) << what;
    auto g = got.to_vector<double>();
    auto w = want.to_vector<double>();
    for (size_t i = 0; i < g.size(); ++i) {
        if (std::isnan(w[i])) {
            EXPECT_TRUE(std::isnan(g[i])) << what << " element " << i;
            continue;
        }
        EXPECT_NEAR(g[i], w[i], atol + rtol * std::abs(w[i])) << what << " element " << i;
    }
}

// Calls the loss named by the fixture on tensors built from it.
Tensor call_loss(const json& c, const std::map<std::string, Tensor>& in) {
    const std::string op = c["op"];
    const json& a = c["args"];
    Reduction r = reduction_of(a["reduction"]);
    auto get = [&](const char* k) { return in.count(k) ? in.at(k) : Tensor(); };
    Tensor x = get("input"), t = get("target");
    if (op == "mse_loss") return F::mse_loss(x, t, r);
    if (op == "l1_loss") return F::l1_loss(x, t, r);
    if (op == "smooth_l1_loss") return F::smooth_l1_loss(x, t, r, a["beta"]);
    if (op == "huber_loss") return F::huber_loss(x, t, r, a["delta"]);
    if (op == "binary_cross_entropy") return F::binary_cross_entropy(x, t, get("weight"), r);
    if (op == "binary_cross_entropy_with_logits")
        return F::binary_cross_entropy_with_logits(x, t, get("weight"), get("pos_weight"), r);
    if (op == "kl_div") return F::kl_div(x, t, r, a["log_target"]);
    F::CrossEntropyArgs ce{.weight = get("weight"),
                           .ignore_index = a["ignore_index"],
                           .reduction = r,
                           .label_smoothing = a["label_smoothing"]};
    if (op == "cross_entropy") return F::cross_entropy(x, t, ce);
    if (op == "nll_loss") return F::nll_loss(x, t, ce);
    throw std::runtime_error("unknown op " + op);
}

class LossFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(LossFixture, MatchesPyTorch) {
    const json& c = find_case("cases", GetParam());
    std::map<std::string, Tensor> in;
    for (const auto& [k, v] : c["inputs"].items()) {
        in[k] = from_json(v);
        if (c["grads"].contains(k)) in[k].requires_grad_();
    }
    Tensor out = call_loss(c, in);
    expect_close(out, from_json(c["output"]), "output");
    out.backward(from_json(c["grad_output"]));
    for (const auto& [k, v] : c["grads"].items())
        expect_close(in[k].grad(), from_json(v), "grad of " + k, 1e-8, 1e-10);
}

std::string param_name(const ::testing::TestParamInfo<std::string>& info) {
    std::string s = info.param;
    for (char& ch : s)
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
    return s;
}

INSTANTIATE_TEST_SUITE_P(Loss, LossFixture, ::testing::ValuesIn(case_names("cases")), param_name);

class NormFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(NormFixture, MatchesPyTorch) {
    const json& c = find_case("norm_cases", GetParam());
    const json& a = c["args"];
    std::map<std::string, Tensor> in;
    for (const auto& [k, v] : c["inputs"].items()) in[k] = from_json(v);
    for (const auto& [k, v] : c["grads"].items()) in[k].requires_grad_();
    auto get = [&](const char* k) { return in.count(k) ? in.at(k) : Tensor(); };
    Tensor out;
    if (c["op"] == "batch_norm") {
        out = F::batch_norm(in["input"], in["running_mean"], in["running_var"], get("weight"),
                            get("bias"), a["training"], a["momentum"], a["eps"]);
        expect_close(in["running_mean"], from_json(c["running_mean"]), "running_mean");
        expect_close(in["running_var"], from_json(c["running_var"]), "running_var");
    } else {
        out = F::layer_norm(in["input"], a["normalized_shape"].get<Shape>(), get("weight"),
                            get("bias"), a["eps"]);
    }
    expect_close(out, from_json(c["output"]), "output");
    out.backward(from_json(c["grad_output"]));
    for (const auto& [k, v] : c["grads"].items())
        expect_close(in[k].grad(), from_json(v), "grad of " + k, 1e-8, 1e-10);
}

INSTANTIATE_TEST_SUITE_P(Norm, NormFixture, ::testing::ValuesIn(case_names("norm_cases")),
                         param_name);

TEST(LossFixtures, CoverEveryLossAndReduction) {
    ASSERT_FALSE(fixtures().empty()) << "missing " SOMA_FIXTURE_DIR "/loss.json";
    std::map<std::string, std::set<std::string>> seen;
    for (const auto& c : fixtures()["cases"])
        seen[c["op"].get<std::string>()].insert(c["args"]["reduction"].get<std::string>());
    for (const char* op :
         {"mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "cross_entropy", "nll_loss",
          "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div"})
        for (const char* r : {"none", "mean", "sum"})
            EXPECT_TRUE(seen[op].count(r)) << op << " / " << r;
    EXPECT_TRUE(seen["kl_div"].count("batchmean"));
}

// ---- gradchecks (float64, central differences) -------------------------------------------------

Tensor rand64(const Shape& s, double scale = 1.0, double shift = 0.0) {
    return (randn(s, {.dtype = DType::float64}) * scale + shift).detach().requires_grad_();
}
Tensor labels(const std::vector<int64_t>& v, const Shape& s) { return from_vector<int64_t>(v, s); }

TEST(LossGradcheck, Regression) {
    manual_seed(1);
    Tensor x = rand64({3, 4}, 2), y = rand64({3, 4}, 2);
    for (Reduction r : {Reduction::none, Reduction::mean, Reduction::sum}) {
        EXPECT_EQ(gradcheck([r](const Tensors& v) { return F::mse_loss(v[0], v[1], r); }, {x, y}),
                  "");
        EXPECT_EQ(gradcheck([r](const Tensors& v) { return F::l1_loss(v[0], v[1], r); }, {x, y}),
                  "");
        EXPECT_EQ(gradcheck([r](const Tensors& v) { return F::smooth_l1_loss(v[0], v[1], r, 0.7); },
                            {x, y}),
                  "");
        EXPECT_EQ(
            gradcheck([r](const Tensors& v) { return F::huber_loss(v[0], v[1], r, 1.3); }, {x, y}),
            "");
    }
}

TEST(LossGradcheck, BinaryCrossEntropy) {
    manual_seed(2);
    Tensor p = sigmoid(randn({3, 4}, {.dtype = DType::float64})).detach().requires_grad_();
    Tensor t = rand({3, 4}, {.dtype = DType::float64}).requires_grad_();
    Tensor w = rand({4}, {.dtype = DType::float64}) + 0.5;
    EXPECT_EQ(
        gradcheck([&](const Tensors& v) { return F::binary_cross_entropy(v[0], v[1], w); }, {p, t}),
        "");
    Tensor z = rand64({3, 4}, 3);
    Tensor pw = from_vector<double>({0.5, 1.0, 2.0, 3.0});
    EXPECT_EQ(gradcheck(
                  [&](const Tensors& v) {
                      return F::binary_cross_entropy_with_logits(v[0], v[1], w, pw, Reduction::sum);
                  },
                  {z, t}),
              "");
}

TEST(LossGradcheck, KlDiv) {
    manual_seed(3);
    Tensor x = rand64({3, 5}), y = (rand({3, 5}, {.dtype = DType::float64}) + 0.1).requires_grad_();
    for (bool lt : {false, true})
        EXPECT_EQ(
            gradcheck(
                [lt](const Tensors& v) { return F::kl_div(v[0], v[1], Reduction::batchmean, lt); },
                {x, y}),
            "");
}

TEST(LossGradcheck, CrossEntropyAllVariants) {
    manual_seed(4);
    Tensor x = rand64({5, 4}, 2);
    Tensor t = labels({0, 3, -100, 2, 1}, {5});
    Tensor w = from_vector<double>({0.2, 1.0, 2.5, 0.7});
    for (Reduction r : {Reduction::none, Reduction::mean, Reduction::sum})
        for (double ls : {0.0, 0.15})
            for (bool weighted : {false, true}) {
                F::CrossEntropyArgs a{
                    .weight = weighted ? w : Tensor(), .reduction = r, .label_smoothing = ls};
                EXPECT_EQ(
                    gradcheck([&](const Tensors& v) { return F::cross_entropy(v[0], t, a); }, {x}),
                    "")
                    << "ls " << ls << " weighted " << weighted;
                if (ls == 0.0) {
                    EXPECT_EQ(
                        gradcheck([&](const Tensors& v) { return F::nll_loss(v[0], t, a); }, {x}),
                        "");
                }
            }
    // K-dim and probability targets (with a target gradient).
    Tensor xk = rand64({2, 3, 2, 2});
    Tensor tk = labels({0, 1, 2, -100, 2, 2, 1, 0}, {2, 2, 2});
    EXPECT_EQ(gradcheck([&](const Tensors& v) { return F::cross_entropy(v[0], tk); }, {xk}), "");
    Tensor prob =
        softmax(randn({2, 3, 2, 2}, {.dtype = DType::float64}), 1).detach().requires_grad_();
    EXPECT_EQ(gradcheck(
                  [&](const Tensors& v) {
                      return F::cross_entropy(
                          v[0], v[1],
                          {.weight = from_vector<double>({1.0, 0.5, 2.0}), .label_smoothing = 0.1});
                  },
                  {xk, prob}),
              "");
}

TEST(NormGradcheck, BatchNormTrainEvalAndLayerNorm) {
    manual_seed(5);
    Tensor x = rand64({3, 2, 4}, 1.5, 0.2);
    Tensor w = rand64({2}, 0.3, 1.0), b = rand64({2});
    for (bool training : {true, false}) {
        Tensor rm = zeros({2}, {.dtype = DType::float64}),
               rv = ones({2}, {.dtype = DType::float64});
        EXPECT_EQ(
            gradcheck(
                [&](const Tensors& v) { return F::batch_norm(v[0], rm, rv, v[1], v[2], training); },
                {x, w, b}),
            "")
            << "training " << training;
    }
    Tensor lw = rand64({2, 4}, 0.3, 1.0), lb = rand64({2, 4});
    EXPECT_EQ(gradcheck(
                  [](const Tensors& v) {
                      return F::layer_norm(v[0], {2, 4}, v[1], v[2]);
                  },
                  {x, lw, lb}),
              "");
}

// The fused backward kernels switch to a differentiable formula under create_graph: double
// backward must match central differences of the (first-order) gradient.
TEST(LossGradcheck, FusedKernelsDoubleBackward) {
    manual_seed(6);
    Tensor x = rand64({4, 3}, 2);
    Tensor t = labels({0, 2, -100, 1}, {4});
    Tensor w = from_vector<double>({0.5, 1.5, 1.0});
    EXPECT_EQ(gradgradcheck(
                  [&](const Tensors& v) {
                      return F::cross_entropy(v[0], t, {.weight = w, .label_smoothing = 0.1});
                  },
                  {x}),
              "");
    EXPECT_EQ(gradgradcheck(
                  [&](const Tensors& v) {
                      return F::cross_entropy(v[0], t,
                                              {.weight = {}, .reduction = Reduction::none});
                  },
                  {x}),
              "");
    Tensor prob = softmax(randn({4, 3}, {.dtype = DType::float64}), 1).detach().requires_grad_();
    EXPECT_EQ(
        gradgradcheck([&](const Tensors& v) { return F::cross_entropy(v[0], v[1]); }, {x, prob}),
        "");
    Tensor xb = rand64({3, 2, 2}, 1.5);
    Tensor wb = rand64({2}, 0.3, 1.0), bb = rand64({2});
    EXPECT_EQ(gradgradcheck(
                  [](const Tensors& v) {
                      return F::batch_norm(v[0], Tensor(), Tensor(), v[1], v[2], true);
                  },
                  {xb, wb, bb}),
              "");
}

// ---- cross_entropy behaviour
// ---------------------------------------------------------------------

TEST(LossCrossEntropy, StableForHugeLogits) {
    Tensor x = from_vector<double>({1000, -1000, 0, 500, 1000, 999}, {2, 3}).requires_grad_();
    Tensor t = labels({1, 2}, {2});
    Tensor l = F::cross_entropy(x, t);
    // Row 0: lse = 1000, loss 2000; row 1: lse = 1000 + log(1 + e^-1).
    double want = (2000.0 + (1000 + std::log1p(std::exp(-1.0)) - 999)) / 2;
    EXPECT_NEAR(l.item(), want, 1e-9);
    l.backward();
    for (double g : x.grad().to_vector<double>()) EXPECT_TRUE(std::isfinite(g));
}

TEST(LossCrossEntropy, Float32MatchesFloat64) {
    manual_seed(7);
    Tensor x = randn({8, 5, 3});
    Tensor t = randint(0, 5, {8, 3});
    Tensor x32 = x.clone().requires_grad_(), x64 = x.to(DType::float64).detach().requires_grad_();
    F::CrossEntropyArgs a{.weight = from_vector<float>({1, 2, 3, 4, 5}), .label_smoothing = 0.1};
    Tensor l32 = F::cross_entropy(x32, t, a), l64 = F::cross_entropy(x64, t, a);
    EXPECT_EQ(l32.dtype(), DType::float32);
    EXPECT_NEAR(l32.item(), l64.item(), 1e-5);
    l32.backward();
    l64.backward();
    EXPECT_TRUE(allclose(x32.grad().to(DType::float64), x64.grad(), 1e-4, 1e-6));
}

TEST(LossCrossEntropy, NonContiguousInputAndCompositionAgree) {
    manual_seed(8);
    Tensor base = randn({5, 4}, {.dtype = DType::float64});
    Tensor x = base.t().detach().requires_grad_();  // [4, 5], non-contiguous
    Tensor t = labels({4, 0, 2, 1}, {4});
    Tensor l = F::cross_entropy(x, t, {.weight = {}, .reduction = Reduction::sum});
    l.backward();
    // Reference: -Σ log_softmax(x)[i, t_i]
    auto xv = x.contiguous().to_vector<double>();
    double want = 0;
    std::vector<double> g(20);
    for (int i = 0; i < 4; ++i) {
        double m = -1e300, se = 0;
        for (int c = 0; c < 5; ++c) m = std::max(m, xv[i * 5 + c]);
        for (int c = 0; c < 5; ++c) se += std::exp(xv[i * 5 + c] - m);
        int64_t ti = t.at<int64_t>({i});
        want -= xv[i * 5 + ti] - m - std::log(se);
        for (int c = 0; c < 5; ++c)
            g[i * 5 + c] = std::exp(xv[i * 5 + c] - m) / se - (c == ti ? 1.0 : 0.0);
    }
    EXPECT_NEAR(l.item(), want, 1e-12);
    expect_close(x.grad(), from_vector<double>(g, {4, 5}), "grad");
}

TEST(LossCrossEntropy, AllTargetsIgnoredGivesNan) {
    Tensor x = randn({2, 3}, {.dtype = DType::float64});
    Tensor l = F::cross_entropy(x, labels({-100, -100}, {2}));
    EXPECT_TRUE(std::isnan(l.item()));
    EXPECT_EQ(
        F::cross_entropy(x, labels({-100, -100}, {2}), {.weight = {}, .reduction = Reduction::sum})
            .item(),
        0.0);
}

TEST(LossCrossEntropy, EmptyBatchAndUnbatchedIgnored) {
    Tensor x = zeros({0, 4}, {.dtype = DType::float64});
    Tensor t = zeros({0}, {.dtype = DType::int64});
    EXPECT_TRUE(std::isnan(F::cross_entropy(x, t).item()));
    EXPECT_EQ(F::cross_entropy(x, t, {.weight = {}, .reduction = Reduction::sum}).item(), 0.0);
    EXPECT_EQ(F::cross_entropy(x, t, {.weight = {}, .reduction = Reduction::none}).shape(),
              Shape({0}));
    EXPECT_TRUE(std::isnan(F::cross_entropy(x, zeros({0, 4}, {.dtype = DType::float64})).item()));
    Tensor u = randn({5}, {.dtype = DType::float64});
    EXPECT_TRUE(std::isnan(F::cross_entropy(u, scalar_tensor(int64_t{-100})).item()));
}

TEST(LossCrossEntropy, ProbTargetsAcceptNegativeIgnoreIndexAndMixedDTypes) {
    manual_seed(13);
    Tensor x = randn({3, 4}, {.dtype = DType::float64}).requires_grad_();
    Tensor p = softmax(randn({3, 4}), 1).detach().requires_grad_();  // float32 target
    Tensor a = F::cross_entropy(x, p, {.weight = {}, .ignore_index = -1});
    Tensor b = F::cross_entropy(x, p);
    EXPECT_EQ(a.item(), b.item());
    b.backward();
    EXPECT_EQ(p.grad().dtype(), DType::float32);
    EXPECT_EQ(x.grad().dtype(), DType::float64);
}

// ---- batch_norm behaviour
// ------------------------------------------------------------------------

TEST(NormBatchNorm, UpdatesRunningStatsInPlace) {
    Tensor x = from_vector<double>({1, 10, 3, 20, 5, 60}, {3, 2});  // channel 0: 1 3 5
    Tensor rm = zeros({2}), rv = ones({2});                         // float32 buffers
    Tensor rm_alias = rm;
    uint64_t v0 = rm.version();
    F::batch_norm(x, rm, rv, {}, {}, true, 0.5);
    EXPECT_TRUE(rm.is_same(rm_alias));
    EXPECT_GT(rm.version(), v0);
    EXPECT_EQ(rm.dtype(), DType::float32);
    EXPECT_NEAR(rm.at<double>({0}), 0.5 * 3.0, 1e-6);
    EXPECT_NEAR(rv.at<double>({0}), 0.5 * 1 + 0.5 * 4.0, 1e-6);  // unbiased var of 1 3 5 = 4
    EXPECT_NEAR(rm.at<double>({1}), 0.5 * 30.0, 1e-5);
}

TEST(NormBatchNorm, TrainingNormalisesWithBatchStats) {
    manual_seed(9);
    Tensor x = randn({4, 3, 5, 5}, {.dtype = DType::float64}) * 3 + 2;
    Tensor y = F::batch_norm(x, {}, {}, {}, {}, true, 0.1, 0.0);
    Tensor m = mean(y, {0, 2, 3}), v = var(y, {0, 2, 3}, false);
    EXPECT_TRUE(allclose(m, zeros({3}, {.dtype = DType::float64}), 0, 1e-12));
    EXPECT_TRUE(allclose(v, ones({3}, {.dtype = DType::float64}), 0, 1e-10));
}

TEST(NormBatchNorm, NonContiguousAndFloat32) {
    manual_seed(10);
    Tensor base = randn({3, 4, 6});
    Tensor x = base.transpose(0, 2).detach().requires_grad_();  // [6, 4, 3] non-contiguous
    Tensor w = ones({4}).requires_grad_(), b = zeros({4}).requires_grad_();
    Tensor y = F::batch_norm(x, {}, {}, w, b, true);
    Tensor x64 = x.contiguous().to(DType::float64).detach().requires_grad_();
    Tensor y64 = F::batch_norm(x64, {}, {}, {}, {}, true);
    EXPECT_EQ(y.dtype(), DType::float32);
    EXPECT_TRUE(allclose(y.to(DType::float64), y64, 1e-4, 1e-5));
    Tensor g = randn({6, 4, 3});
    y.backward(g);
    y64.backward(g.to(DType::float64));
    EXPECT_TRUE(allclose(x.grad().to(DType::float64), x64.grad(), 1e-3, 1e-4));
    EXPECT_EQ(w.grad().shape(), Shape({4}));
}

// ---- dropout
// -------------------------------------------------------------------------------------

TEST(Dropout, Statistics) {
    manual_seed(11);
    const int64_t n = 200000;
    Tensor x = ones({n}, {.dtype = DType::float64});
    Tensor y = F::dropout(x, 0.3);
    auto v = y.to_vector<double>();
    int64_t zeros_n = 0;
    for (double e : v) {
        if (e == 0)
            ++zeros_n;
        else
            EXPECT_NEAR(e, 1 / 0.7, 1e-12);
    }
    EXPECT_NEAR(static_cast<double>(zeros_n) / n, 0.3, 0.005);
    EXPECT_NEAR(mean(y).item(), 1.0, 0.01);
}

TEST(Dropout, SeededAndDeterministic) {
    Tensor x = randn({64, 32});
    manual_seed(42);
    Tensor a = F::dropout(x, 0.5);
    Tensor b = F::dropout(x, 0.5);
    manual_seed(42);
    Tensor c = F::dropout(x, 0.5);
    EXPECT_TRUE(equal(a, c));
    EXPECT_FALSE(equal(a, b));
}

TEST(Dropout, BackwardIsMaskTimesScale) {
    manual_seed(12);
    Tensor x = (rand({10, 10}, {.dtype = DType::float64}) + 1).requires_grad_();
    Tensor y = F::dropout(x, 0.25);
    Tensor g = randn({10, 10}, {.dtype = DType::float64});
    y.backward(g);
    // mask * scale = y / x
    expect_close(x.grad(), g * (y.detach() / x.detach()), "grad");
    auto yv = y.to_vector<double>(), xv = x.to_vector<double>();
    for (size_t i = 0; i < yv.size(); ++i)
        EXPECT_TRUE(yv[i] == 0 || std::abs(yv[i] - xv[i] / 0.75) < 1e-12);
}

TEST(Dropout, IdentityAndAllZeros) {
    Tensor x = randn({4, 5}).requires_grad_();
    EXPECT_TRUE(F::dropout(x, 0.0).is_same(x));
    EXPECT_TRUE(F::dropout(x, 0.9, /*training=*/false).is_same(x));
    Tensor y = F::dropout(x, 1.0);
    EXPECT_TRUE(equal(y, zeros({4, 5})));
    y.sum().backward();
    EXPECT_TRUE(equal(x.grad(), zeros({4, 5})));
}

// ---- error messages
// ------------------------------------------------------------------------------

template <class E, class Fn>
std::string error_of(Fn&& fn) {
    try {
        fn();
    } catch (const E& e) {
        return e.what();
    } catch (const std::exception& e) {
        return std::string("wrong exception type: ") + e.what();
    }
    return "no exception";
}

TEST(LossErrors, CrossEntropyTargetShapeHint) {
    Tensor x = randn({32, 10});
    EXPECT_EQ(error_of<ShapeError>([&] {
                  F::cross_entropy(x, randint(0, 10, {32, 1}));
              }),
              "cross_entropy: target has shape [32, 1], expected [32] for input [32, 10]. Targets "
              "are class indices; use target.squeeze(1).");
    EXPECT_THAT(
        error_of<ShapeError>([&] { F::cross_entropy(x, randint(0, 10, {16})); }),
        HasSubstr("cross_entropy: target has shape [16], expected [32] for input [32, 10]"));
    EXPECT_THAT(error_of<ShapeError>([&] {
                    F::nll_loss(x, randint(0, 10, {32, 1}));
                }),
                HasSubstr("nll_loss: target has shape [32, 1], expected [32]"));
    EXPECT_THAT(error_of<ShapeError>([&] { F::cross_entropy(randn({5}), randint(0, 5, {1})); }),
                HasSubstr("takes a 0-dim target"));
}

TEST(LossErrors, CrossEntropyTargetOutOfRange) {
    Tensor x = randn({4, 10});
    EXPECT_EQ(error_of<IndexError>([&] {
                  F::cross_entropy(x, labels({1, 2, 10, 3}, {4}));
              }),
              "cross_entropy: target 10 is out of bounds at position [2]: expected a class index "
              "in [0, 9] (or ignore_index -100) for input [4, 10].");
    EXPECT_THAT(error_of<IndexError>([&] {
                    F::nll_loss(x, labels({-1, 2, 1, 3}, {4}));
                }),
                HasSubstr("nll_loss: target -1 is out of bounds at position [0]"));
    EXPECT_THAT(error_of<IndexError>([&] {
                    F::cross_entropy(randn({2, 3, 2}), labels({0, 1, 2, 3}, {2, 2}));
                }),
                HasSubstr("target 3 is out of bounds at position [1, 1]"));
}

TEST(LossErrors, CrossEntropyDTypesWeightsOptions) {
    Tensor x = randn({4, 3});
    EXPECT_THAT(error_of<DTypeError>([&] { F::cross_entropy(x, zeros({4})); }),
                HasSubstr("cross_entropy: target has dtype float32 with shape [4], expected int64 "
                          "class indices"));
    EXPECT_THAT(error_of<DTypeError>([&] {
                    F::cross_entropy(x, zeros({4, 3}, {.dtype = DType::int64}));
                }),
                HasSubstr("expected floating class probabilities"));
    EXPECT_THAT(
        error_of<ShapeError>([&] {
            F::cross_entropy(x, labels({0, 1, 2, 0}, {4}), {.weight = ones({4})});
        }),
        HasSubstr("cross_entropy: weight has shape [4], expected [3] (one weight per class) "
                  "for input [4, 3]."));
    EXPECT_THAT(
        error_of<ValueError>([&] {
            F::cross_entropy(x, labels({0, 1, 2, 0}, {4}), {.weight = {}, .label_smoothing = 1.5});
        }),
        HasSubstr("label_smoothing must be between 0.0 and 1.0, got 1.5"));
    EXPECT_THAT(
        error_of<ValueError>([&] {
            F::nll_loss(x, labels({0, 1, 2, 0}, {4}), {.weight = {}, .label_smoothing = 0.1});
        }),
        HasSubstr("nll_loss: label_smoothing is not supported"));
    EXPECT_THAT(error_of<ValueError>(
                    [&] { F::cross_entropy(x, softmax(x, 1), {.weight = {}, .ignore_index = 1}); }),
                HasSubstr("ignore_index is not supported for class-probability targets"));
    EXPECT_THAT(
        error_of<ShapeError>([&] { F::cross_entropy(scalar_tensor(1.0), labels({0}, {1})); }),
        HasSubstr("cross_entropy: input has shape [], expected [C], [N, C]"));
    Tensor wg = ones({3}).requires_grad_();
    EXPECT_THAT(error_of<ValueError>([&] {
                    F::cross_entropy(x, labels({0, 1, 2, 0}, {4}), {.weight = wg});
                }),
                HasSubstr("not differentiable with respect to weight"));
}

TEST(LossErrors, ElementwiseLosses) {
    Tensor x = rand({3, 4});
    EXPECT_THAT(error_of<ValueError>([&] { F::mse_loss(x, x, Reduction::batchmean); }),
                HasSubstr("mse_loss: reduction 'batchmean' is only valid for kl_div"));
    EXPECT_THAT(error_of<ValueError>([&] { F::huber_loss(x, x, Reduction::mean, 0.0); }),
                HasSubstr("huber_loss: delta must be > 0, got 0"));
    EXPECT_THAT(error_of<ValueError>([&] { F::smooth_l1_loss(x, x, Reduction::mean, -1.0); }),
                HasSubstr("smooth_l1_loss: beta must be >= 0, got -1"));
    EXPECT_THAT(error_of<ValueError>([&] { F::binary_cross_entropy(x * 2, x); }),
                HasSubstr("binary_cross_entropy: all elements of input should be between 0 and 1"));
    EXPECT_THAT(error_of<ShapeError>([&] {
                    F::binary_cross_entropy(x, rand({3, 1}));
                }),
                HasSubstr("binary_cross_entropy: target has shape [3, 1], expected the input's "
                          "shape [3, 4]"));
    EXPECT_THAT(
        error_of<ShapeError>([&] { F::binary_cross_entropy_with_logits(x, x, {}, ones({3})); }),
        HasSubstr("pos_weight has shape [3]"));
    EXPECT_THAT(error_of<DTypeError>([&] { F::mse_loss(zeros({3}, {.dtype = DType::int64}), x); }),
                HasSubstr("mse_loss: input must be floating point: got int64"));
    EXPECT_THAT(error_of<ShapeError>([&] { F::mse_loss(x, rand({5})); }),
                HasSubstr("not broadcastable"));
}

TEST(NormErrors, Messages) {
    EXPECT_THAT(error_of<ValueError>([] {
                    F::batch_norm(randn({1, 3}), {}, {}, {}, {}, true);
                }),
                HasSubstr("batch_norm: expected more than 1 value per channel when training, got "
                          "input shape [1, 3]"));
    EXPECT_THAT(error_of<ValueError>([] {
                    F::batch_norm(randn({2, 3}), {}, {}, {}, {}, false);
                }),
                HasSubstr("batch_norm: running_mean and running_var must be given in eval mode"));
    EXPECT_THAT(error_of<ShapeError>([] {
                    F::batch_norm(randn({2, 3, 5}), zeros({4}), ones({3}), {}, {}, true);
                }),
                HasSubstr("batch_norm: running_mean has shape [4], expected [3] (one value per "
                          "channel, C = x.size(1)) for input [2, 3, 5]."));
    EXPECT_THAT(error_of<ShapeError>([] { F::batch_norm(randn({5}), {}, {}, {}, {}, true); }),
                HasSubstr("batch_norm: input has shape [5], expected [N, C]"));
    EXPECT_THAT(error_of<ShapeError>([] {
                    F::layer_norm(randn({2, 3, 4}), {3});
                }),
                HasSubstr("layer_norm: normalized_shape [3] doesn't match the trailing dims of "
                          "input [2, 3, 4]"));
    EXPECT_THAT(error_of<ShapeError>([] {
                    F::layer_norm(randn({2, 4}), {4}, ones({3}));
                }),
                HasSubstr("layer_norm: weight has shape [3], expected normalized_shape [4]"));
    EXPECT_THAT(error_of<ValueError>([] { F::dropout(randn({3}), 1.5); }),
                HasSubstr("dropout: probability has to be between 0 and 1, got 1.5"));
}

}  // namespace
}  // namespace soma
