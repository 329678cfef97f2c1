// soma::optim: optimizers, LR schedules and gradient clipping against PyTorch 1.13 goldens
// (tests/fixtures/optim.json, written by scripts/gen_optim_fixtures.py), plus state dicts,
// param groups and error cases.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "soma/autograd.h"
#include "soma/ops.h"
#include "soma/optim.h"

namespace {

using json = nlohmann::json;
using namespace soma;
using namespace soma::optim;

const json& fixtures() {
    static const json data = [] {
        std::ifstream f(std::string(SOMA_FIXTURE_DIR) + "/optim.json");
        if (!f) return json();
        return json::parse(f);
    }();
    return data;
}

#define REQUIRE_FIXTURES()                                               \
    ASSERT_TRUE(fixtures().is_object())                                  \
        << "tests/fixtures/optim.json is missing: run /usr/bin/python3 " \
           "scripts/gen_optim_fixtures.py"

Shape to_shape(const json& j) { return j.get<std::vector<int64_t>>(); }

Tensor make_tensor_from(const json& values, const Shape& shape, DType dtype) {
    return from_vector(values.get<std::vector<double>>(), shape).to(dtype);
}

// |a - e| <= rtol |e| + atol, elementwise.
void expect_close(const std::vector<double>& actual, const std::vector<double>& expected,
                  double rtol, double atol, const std::string& what) {
    ASSERT_EQ(actual.size(), expected.size()) << what;
    for (size_t i = 0; i < actual.size(); ++i)
        EXPECT_LE(std::abs(actual[i] - expected[i]), rtol * std::abs(expected[i]) + atol)
            << what << " [" << i << "]: got " << actual[i] << ", expected " << expected[i];
}

// ---- building optimizers from fixture configurations -------------------------------------

GroupOptions options_from(const std::string& kind, const json& j) {
    if (kind == "SGD") {
        SGDOptions o;
        o.lr = j.value("lr", o.lr);
        o.momentum = j.value("momentum", o.momentum);
        o.dampening = j.value("dampening", o.dampening);
        o.weight_decay = j.value("weight_decay", o.weight_decay);
        o.nesterov = j.value("nesterov", o.nesterov);
        o.maximize = j.value("maximize", o.maximize);
        return o;
    }
    if (kind == "Adam" || kind == "AdamW") {
        AdamOptions o;
        if (kind == "AdamW") o.weight_decay = AdamWOptions{}.weight_decay;
        o.lr = j.value("lr", o.lr);
        if (j.contains("betas")) o.betas = {j["betas"][0].get<double>(), j["betas"][1]};
        o.eps = j.value("eps", o.eps);
        o.weight_decay = j.value("weight_decay", o.weight_decay);
        o.amsgrad = j.value("amsgrad", o.amsgrad);
        o.maximize = j.value("maximize", o.maximize);
        if (kind == "Adam") return o;
        return AdamWOptions{.lr = o.lr,
                            .betas = o.betas,
                            .eps = o.eps,
                            .weight_decay = o.weight_decay,
                            .amsgrad = o.amsgrad,
                            .maximize = o.maximize};
    }
    if (kind == "RMSprop") {
        RMSpropOptions o;
        o.lr = j.value("lr", o.lr);
        o.alpha = j.value("alpha", o.alpha);
        o.eps = j.value("eps", o.eps);
        o.weight_decay = j.value("weight_decay", o.weight_decay);
        o.momentum = j.value("momentum", o.momentum);
        o.centered = j.value("centered", o.centered);
        o.maximize = j.value("maximize", o.maximize);
        return o;
    }
    if (kind == "Adagrad") {
        AdagradOptions o;
        o.lr = j.value("lr", o.lr);
        o.lr_decay = j.value("lr_decay", o.lr_decay);
        o.weight_decay = j.value("weight_decay", o.weight_decay);
        o.initial_accumulator_value =
            j.value("initial_accumulator_value", o.initial_accumulator_value);
        o.eps = j.value("eps", o.eps);
        o.maximize = j.value("maximize", o.maximize);
        return o;
    }
    throw std::runtime_error("unknown optimizer " + kind);
}

std::unique_ptr<Optimizer> make_optimizer(const std::string& kind, std::vector<ParamGroup> groups) {
    if (kind == "SGD") return std::make_unique<SGD>(std::move(groups), SGDOptions{});
    if (kind == "Adam") return std::make_unique<Adam>(std::move(groups));
    if (kind == "AdamW") return std::make_unique<AdamW>(std::move(groups));
    if (kind == "RMSprop") return std::make_unique<RMSprop>(std::move(groups));
    if (kind == "Adagrad") return std::make_unique<Adagrad>(std::move(groups));
    throw std::runtime_error("unknown optimizer " + kind);
}

struct Case {
    std::vector<Tensor> params;
    std::unique_ptr<Optimizer> opt;
};

Case make_case(const json& c, DType dtype, const std::vector<Tensor>* start = nullptr) {
    Case out;
    for (size_t j = 0; j < c["params"].size(); ++j) {
        const json& p = c["params"][j];
        Tensor t = start ? (*start)[j].detach().clone()
                         : make_tensor_from(p["values"], to_shape(p["shape"]), dtype);
        out.params.push_back(t.detach().requires_grad_());
    }
    std::vector<ParamGroup> groups;
    for (const json& g : c["groups"]) {
        ParamGroup pg;
        for (const json& idx : g["params"]) pg.params.push_back(out.params[idx.get<size_t>()]);
        pg.options = options_from(c["optimizer"], g["options"]);
        groups.push_back(std::move(pg));
    }
    out.opt = make_optimizer(c["optimizer"], std::move(groups));
    return out;
}

void set_grads(Case& cs, const json& c, size_t step, DType dtype) {
    for (size_t j = 0; j < cs.params.size(); ++j) {
        const json& g = c["grads"][step][j];
        if (g.is_null())
            cs.params[j].set_grad(Tensor());
        else
            cs.params[j].set_grad(make_tensor_from(g, cs.params[j].shape(), dtype));
    }
}

void run_optimizer_case(const json& c, DType dtype, double rtol, double atol) {
    SCOPED_TRACE(c["name"].get<std::string>() + " " + dtype_name(dtype));
    Case cs = make_case(c, dtype);
    for (size_t k = 0; k < c["grads"].size(); ++k) {
        set_grads(cs, c, k, dtype);
        cs.opt->step();
        for (size_t j = 0; j < cs.params.size(); ++j) {
            EXPECT_EQ(cs.params[j].dtype(), dtype);
            expect_close(cs.params[j].to_vector<double>(),
                         c["expected"][k][j].get<std::vector<double>>(), rtol, atol,
                         "step " + std::to_string(k + 1) + " param " + std::to_string(j));
        }
    }
}

TEST(OptimFixture, CoversEveryConfiguration) {
    REQUIRE_FIXTURES();
    std::set<std::string> names;
    for (const json& c : fixtures()["optimizers"]) names.insert(c["name"]);
    for (const json& c : fixtures()["schedulers"]) names.insert(c["name"]);
    for (const json& c : fixtures()["clip"]) names.insert(c["name"]);
    for (const char* n : {"sgd_plain",
                          "sgd_momentum",
                          "sgd_dampening",
                          "sgd_nesterov",
                          "sgd_weight_decay",
                          "sgd_maximize",
                          "sgd_groups",
                          "sgd_momentum_skip",
                          "adam_default",
                          "adam_weight_decay",
                          "adam_amsgrad",
                          "adam_groups",
                          "adam_skip",
                          "adamw_default",
                          "adamw_decay",
                          "rmsprop_plain",
                          "rmsprop_centered",
                          "rmsprop_momentum",
                          "adagrad_decay",
                          "step_lr",
                          "multistep_lr",
                          "exponential_lr",
                          "cosine_lr",
                          "linear_warmup",
                          "onecycle_sgd",
                          "onecycle_adam",
                          "plateau_min",
                          "plateau_max_abs",
                          "norm2",
                          "norm_inf",
                          "value"})
        EXPECT_TRUE(names.count(n)) << "fixture " << n << " is missing";
}

TEST(OptimFixture, MatchesPyTorchFloat64) {
    REQUIRE_FIXTURES();
    for (const json& c : fixtures()["optimizers"])
        run_optimizer_case(c, DType::float64, 1e-10, 1e-14);
}

TEST(OptimFixture, MatchesPyTorchFloat32) {
    REQUIRE_FIXTURES();
    for (const json& c : fixtures()["optimizers"]) run_optimizer_case(c, DType::float32, 0, 1e-5);
}

// ---- state dicts -------------------------------------------------------------------------

TEST(OptimStateDict, ResumeMatchesUninterrupted) {
    REQUIRE_FIXTURES();
    for (const json& c : fixtures()["optimizers"]) {
        SCOPED_TRACE(c["name"].get<std::string>());
        const size_t steps = c["grads"].size(), split = 2;
        Case full = make_case(c, DType::float64);
        for (size_t k = 0; k < steps; ++k) {
            set_grads(full, c, k, DType::float64);
            full.opt->step();
        }
        Case first = make_case(c, DType::float64);
        for (size_t k = 0; k < split; ++k) {
            set_grads(first, c, k, DType::float64);
            first.opt->step();
        }
        StateDict sd = first.opt->state_dict();
        std::vector<Tensor> snapshot;
        for (auto& p : first.params) snapshot.push_back(p.detach().clone());
        first.opt->step();  // the saved dict is a copy: later steps must not change it
        Case resumed = make_case(c, DType::float64, &snapshot);
        resumed.opt->load_state_dict(sd);
        for (size_t k = split; k < steps; ++k) {
            set_grads(resumed, c, k, DType::float64);
            resumed.opt->step();
        }
        for (size_t j = 0; j < full.params.size(); ++j)
            EXPECT_EQ(resumed.params[j].to_vector<double>(), full.params[j].to_vector<double>())
                << "param " << j;
    }
}

bool has_key(const StateDict& sd, const std::string& key) {
    for (auto& [k, t] : sd)
        if (k == key) return true;
    return false;
}
Tensor entry(const StateDict& sd, const std::string& key) {
    for (auto& [k, t] : sd)
        if (k == key) return t;
    return Tensor();
}

TEST(OptimStateDict, FlatNamedEntries) {
    Tensor w = zeros({2, 3}).requires_grad_(), b = zeros({3}).requires_grad_();
    Adam opt({{.params = {w}}, {.params = {b}, .options = AdamOptions{.lr = 0.5, .amsgrad = true}}},
             {.lr = 0.1});
    EXPECT_FALSE(has_key(opt.state_dict(), "state.0.step"));  // state is created lazily
    w.set_grad(ones({2, 3}));
    b.set_grad(ones({3}));
    opt.step();
    StateDict sd = opt.state_dict();
    for (const char* k :
         {"state.0.step", "state.0.exp_avg", "state.0.exp_avg_sq", "state.1.max_exp_avg_sq",
          "group.0.lr", "group.0.betas.0", "group.0.betas.1", "group.0.eps", "group.0.amsgrad",
          "group.1.lr", "group.0.params", "group.1.params"})
        EXPECT_TRUE(has_key(sd, k)) << k;
    EXPECT_FALSE(has_key(sd, "state.0.max_exp_avg_sq"));
    Tensor step = entry(sd, "state.0.step");
    EXPECT_EQ(step.dim(), 0);
    EXPECT_EQ(step.dtype(), DType::float64);
    EXPECT_EQ(step.item<double>(), 1.0);
    EXPECT_EQ(entry(sd, "group.1.lr").item<double>(), 0.5);
    EXPECT_EQ(entry(sd, "group.1.amsgrad").item<double>(), 1.0);
    EXPECT_EQ(entry(sd, "group.1.params").to_vector<int64_t>(), std::vector<int64_t>{1});
    EXPECT_EQ(entry(sd, "state.0.exp_avg").shape(), (Shape{2, 3}));

    // Group hyperparameters come back with the state (a schedule's lr survives a resume).
    Tensor w2 = zeros({2, 3}).requires_grad_(), b2 = zeros({3}).requires_grad_();
    Adam opt2({{.params = {w2}}, {.params = {b2}}}, {});
    opt2.load_state_dict(sd);
    EXPECT_EQ(opt2.lr(0), 0.1);
    EXPECT_EQ(opt2.lr(1), 0.5);
    EXPECT_TRUE(opt2.param_groups()[1].options_as<AdamOptions>().amsgrad);
}

TEST(OptimStateDict, LoadErrorsAreClearAndAtomic) {
    Tensor w = zeros({2, 3}).requires_grad_();
    Adam opt({w}, {.lr = 0.1});
    w.set_grad(ones({2, 3}));
    opt.step();
    const StateDict good = opt.state_dict();

    auto expect_error = [&](const StateDict& sd, const std::string& fragment) {
        Tensor w2 = zeros({2, 3}).requires_grad_();
        Adam opt2({w2}, {.lr = 0.5});
        try {
            opt2.load_state_dict(sd);
            ADD_FAILURE() << "expected an error containing '" << fragment << "'";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find("Adam.load_state_dict"), std::string::npos);
        }
        EXPECT_EQ(opt2.lr(), 0.5);  // unchanged
        EXPECT_FALSE(has_key(opt2.state_dict(), "state.0.exp_avg"));
    };
    auto without = [&](const std::string& key) {
        StateDict out;
        for (auto& [k, t] : good)
            if (k != key) out.emplace_back(k, t);
        return out;
    };
    auto replaced = [&](const std::string& key, const Tensor& value) {
        StateDict out = good;
        for (auto& [k, t] : out)
            if (k == key) t = value;
        return out;
    };
    expect_error(without("state.0.exp_avg_sq"), "missing entry 'state.0.exp_avg_sq'");
    expect_error(without("state.0.step"), "missing entry 'state.0.step'");
    expect_error(without("group.0.lr"), "missing entry 'group.0.lr'");
    expect_error(without("group.0.params"), "missing entry 'group.0.params'");
    expect_error(replaced("state.0.exp_avg", zeros({3, 2})), "has shape [3, 2], expected [2, 3]");
    expect_error(replaced("group.0.lr", scalar_tensor(-1.0, {.dtype = DType::float64})),
                 "invalid lr");
    expect_error(replaced("group.0.eps", zeros({2})), "expected a scalar");
    StateDict extra = good;
    extra.emplace_back("state.0.momentum_buffer", zeros({2, 3}));
    expect_error(extra, "unexpected entry 'state.0.momentum_buffer'");
    StateDict extra_group = good;
    extra_group.emplace_back("group.1.lr", scalar_tensor(0.1, {.dtype = DType::float64}));
    expect_error(extra_group, "unexpected entry 'group.1.lr'");
    StateDict dup = good;
    dup.push_back(good.front());
    expect_error(dup, "duplicate entry");

    // A dict from an optimizer with two params in the group.
    Tensor a = zeros({2, 3}).requires_grad_(), c = zeros({2, 3}).requires_grad_();
    Adam two({a, c}, {});
    expect_error(two.state_dict(), "param group 0 has 2 parameters in the state dict, expected 1");

    // SGD state into Adam.
    Tensor x = zeros({2, 3}).requires_grad_();
    SGD sgd({x}, {.lr = 0.1, .momentum = 0.9});
    x.set_grad(ones({2, 3}));
    sgd.step();
    expect_error(sgd.state_dict(), "missing entry 'group.0.betas.0'");

    // A state dict without any per-parameter state is fine: the parameters start fresh.
    Tensor y = zeros({2, 3}).requires_grad_();
    Adam fresh({y}, {});
    StateDict groups_only;
    for (auto& [k, t] : good)
        if (k.rfind("group.", 0) == 0) groups_only.emplace_back(k, t);
    fresh.load_state_dict(groups_only);
    EXPECT_EQ(fresh.lr(), 0.1);
    EXPECT_FALSE(has_key(fresh.state_dict(), "state.0.step"));
}

TEST(OptimStateDict, StateDtypeFollowsParam) {
    Tensor w = zeros({4}).requires_grad_();  // float32
    Adagrad opt({w}, {.lr = 0.1, .initial_accumulator_value = 0.5});
    StateDict sd = opt.state_dict();  // Adagrad's state exists from the start
    EXPECT_EQ(entry(sd, "state.0.sum").to_vector<double>(), std::vector<double>(4, 0.5));
    EXPECT_EQ(entry(sd, "state.0.step").item<double>(), 0.0);
    for (auto& [k, t] : sd)
        if (k == "state.0.sum") t = full({4}, 2.0, {.dtype = DType::float64});
    opt.load_state_dict(sd);
    Tensor sum = entry(opt.state_dict(), "state.0.sum");
    EXPECT_EQ(sum.dtype(), DType::float32);
    EXPECT_EQ(sum.to_vector<double>(), std::vector<double>(4, 2.0));
}

// ---- behaviour -----------------------------------------------------------------------------

TEST(OptimBasics, SkipsParamsWithoutGrad) {
    Tensor w = ones({3}).requires_grad_(), b = ones({2}).requires_grad_();
    SGD opt({w, b}, {.lr = 0.5});
    w.set_grad(ones({3}));
    const uint64_t vb = b.version(), vw = w.version();
    opt.step();
    EXPECT_EQ(w.to_vector<double>(), std::vector<double>(3, 0.5));
    EXPECT_EQ(b.to_vector<double>(), std::vector<double>(2, 1.0));
    EXPECT_EQ(b.version(), vb);
    EXPECT_GT(w.version(), vw);  // the update bumps the version counter
}

TEST(OptimBasics, StepAfterBackwardAndZeroGrad) {
    Tensor w = tensor({1.0, -2.0, 3.0}).requires_grad_();
    SGD opt({w}, {.lr = 0.1});
    (w * w).sum().backward();  // grad = 2w
    opt.step();
    expect_close(w.to_vector<double>(), {0.8, -1.6, 2.4}, 1e-6, 1e-7, "w");
    Tensor g = w.grad();
    opt.zero_grad(/*set_to_none=*/false);
    EXPECT_TRUE(w.grad().defined());
    EXPECT_TRUE(w.grad().is_same(g));  // zeroed in place
    EXPECT_EQ(w.grad().to_vector<double>(), std::vector<double>(3, 0.0));
    opt.zero_grad();
    EXPECT_FALSE(w.grad().defined());
    opt.step();  // no grads: nothing happens
    expect_close(w.to_vector<double>(), {0.8, -1.6, 2.4}, 1e-6, 1e-7, "w");
}

TEST(OptimBasics, ParamGroupsTakeDefaultsAndOverride) {
    Tensor a = zeros({2}).requires_grad_(), b = zeros({2}).requires_grad_();
    SGD opt({{.params = {a}}, {.params = {b}, .options = SGDOptions{.lr = 0.01}}},
            {.lr = 0.1, .momentum = 0.9});
    ASSERT_EQ(opt.param_groups().size(), 2u);
    EXPECT_EQ(opt.lr(0), 0.1);
    EXPECT_EQ(opt.lr(1), 0.01);
    EXPECT_EQ(opt.param_groups()[0].options_as<SGDOptions>().momentum, 0.9);
    EXPECT_EQ(opt.param_groups()[1].options_as<SGDOptions>().momentum, 0.0);
    a.set_grad(ones({2}));
    b.set_grad(ones({2}));
    opt.step();
    EXPECT_EQ(a.to_vector<double>(), std::vector<double>(2, -0.1f));
    EXPECT_EQ(b.to_vector<double>(), std::vector<double>(2, -0.01f));
    opt.set_lr(0.5);
    EXPECT_EQ(opt.lr(0), 0.5);
    EXPECT_EQ(opt.lr(1), 0.5);
    EXPECT_THROW(opt.lr(2), IndexError);
    EXPECT_THROW(opt.set_lr(-1), ValueError);

    Tensor c = zeros({1}).requires_grad_();
    opt.add_param_group({.params = {c}});
    EXPECT_EQ(opt.param_groups().size(), 3u);
    EXPECT_EQ(opt.lr(2), 0.1);                                       // the defaults
    EXPECT_THROW(opt.add_param_group({.params = {c}}), ValueError);  // already optimized
    EXPECT_EQ(opt.param_groups().size(), 3u);
}

TEST(OptimBasics, MomentumAccessors) {
    Tensor a = zeros({2}).requires_grad_();
    Adam adam({a}, {});
    EXPECT_TRUE(adam.param_groups()[0].has_momentum());
    adam.param_groups()[0].set_momentum(0.8);
    EXPECT_EQ(adam.param_groups()[0].options_as<AdamOptions>().betas[0], 0.8);
    Tensor b = zeros({2}).requires_grad_();
    Adagrad ada({b}, {});
    EXPECT_FALSE(ada.param_groups()[0].has_momentum());
    EXPECT_THROW(ada.param_groups()[0].momentum(), ValueError);
    EXPECT_THROW(ada.param_groups()[0].options_as<SGDOptions>(), Error);
}

TEST(OptimBasics, NonContiguousGrad) {
    Tensor w = zeros({2, 3}).requires_grad_();
    SGD opt({w}, {.lr = 1.0});
    Tensor g = tensor({{1, 2}, {3, 4}, {5, 6}}).t();  // [2, 3], transposed strides
    ASSERT_FALSE(g.is_contiguous());
    w.set_grad(g);
    opt.step();
    EXPECT_EQ(w.to_vector<double>(), (std::vector<double>{-1, -3, -5, -2, -4, -6}));
}

// ---- errors --------------------------------------------------------------------------------

template <class F>
void expect_value_error(F&& f, const std::vector<std::string>& fragments) {
    try {
        f();
        ADD_FAILURE() << "expected a ValueError";
    } catch (const ValueError& e) {
        for (auto& s : fragments)
            EXPECT_NE(std::string(e.what()).find(s), std::string::npos)
                << "'" << s << "' not in: " << e.what();
    }
}

TEST(OptimErrors, InvalidOptionsNameOptimizerAndOption) {
    Tensor w = zeros({2}).requires_grad_();
    expect_value_error([&] { SGD({w}, {}); }, {"SGD", "lr is required"});
    expect_value_error([&] { SGD({w}, {.lr = -0.1}); }, {"SGD", "invalid lr", "got -0.1"});
    expect_value_error([&] { SGD({w}, {.lr = 0.1, .momentum = -1}); }, {"SGD", "momentum"});
    expect_value_error([&] { SGD({w}, {.lr = 0.1, .weight_decay = -1}); }, {"SGD", "weight_decay"});
    expect_value_error([&] { SGD({w}, {.lr = 0.1, .nesterov = true}); }, {"SGD", "nesterov"});
    expect_value_error(
        [&] { SGD({w}, {.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .nesterov = true}); },
        {"SGD", "nesterov", "dampening"});
    expect_value_error([&] { Adam({w}, {.lr = -1}); }, {"Adam", "lr"});
    expect_value_error([&] { Adam({w}, {.betas = {1.0, 0.999}}); }, {"Adam", "betas[0]"});
    expect_value_error([&] { Adam({w}, {.betas = {0.9, -0.1}}); }, {"Adam", "betas[1]"});
    expect_value_error([&] { Adam({w}, {.eps = -1}); }, {"Adam", "eps"});
    expect_value_error([&] { AdamW({w}, {.weight_decay = -1}); }, {"AdamW", "weight_decay"});
    expect_value_error([&] { RMSprop({w}, {.alpha = -1}); }, {"RMSprop", "alpha"});
    expect_value_error([&] { RMSprop({w}, {.momentum = -1}); }, {"RMSprop", "momentum"});
    expect_value_error([&] { Adagrad({w}, {.lr_decay = -1}); }, {"Adagrad", "lr_decay"});
    expect_value_error([&] { Adagrad({w}, {.initial_accumulator_value = -1}); },
                       {"Adagrad", "initial_accumulator_value"});
    // A bad option in a second group names the group.
    Tensor b = zeros({2}).requires_grad_();
    expect_value_error(
        [&] {
            SGD({{.params = {w}}, {.params = {b}, .options = SGDOptions{.lr = -1}}}, {.lr = 1});
        },
        {"SGD", "invalid lr in param group 1"});
    expect_value_error(
        [&] {
            SGD({{.params = {w}}, {.params = {b}, .options = AdamOptions{}}}, {.lr = 1});
        },
        {"SGD", "param group 1 holds AdamOptions, expected SGDOptions"});
}

TEST(OptimErrors, BadParameters) {
    Tensor w = zeros({2}).requires_grad_();
    expect_value_error([&] { SGD(std::vector<Tensor>{}, {.lr = 0.1}); }, {"empty parameter list"});
    expect_value_error([&] { SGD({w, w}, {.lr = 0.1}); }, {"more than once"});
    expect_value_error([&] { SGD({w * 2}, {.lr = 0.1}); }, {"non-leaf"});
    expect_value_error([&] { SGD({Tensor()}, {.lr = 0.1}); }, {"undefined"});
    Tensor m = zeros({3, 2});
    expect_value_error([&] { SGD({m.t()}, {.lr = 0.1}); }, {"not contiguous"});
    EXPECT_THROW(SGD({zeros({2}, {.dtype = DType::int64})}, {.lr = 0.1}), DTypeError);

    SGD opt({w}, {.lr = 0.1});
    w.set_grad(zeros({2}, {.dtype = DType::float64}));
    try {
        opt.step();
        ADD_FAILURE() << "expected a DTypeError";
    } catch (const DTypeError& e) {
        EXPECT_NE(std::string(e.what()).find("SGD: grad of parameter 0 has dtype float64"),
                  std::string::npos)
            << e.what();
    }
}

// ---- schedulers ----------------------------------------------------------------------------

struct Scheduled {
    std::vector<Tensor> params;
    std::unique_ptr<Optimizer> opt;
    std::unique_ptr<LRScheduler> sched;
    std::unique_ptr<ReduceLROnPlateau> plateau;
};

Scheduled make_scheduled(const json& c) {
    Scheduled s;
    std::vector<ParamGroup> groups;
    const json& oo = c["optimizer_options"];
    for (const json& lr : c["lrs"]) {
        s.params.push_back(zeros({2}).requires_grad_());
        json o = oo.is_object() ? oo : json::object();
        o["lr"] = lr;
        groups.push_back({.params = {s.params.back()}, .options = options_from(c["optimizer"], o)});
    }
    s.opt = make_optimizer(c["optimizer"], std::move(groups));
    const std::string kind = c["scheduler"];
    const json& o = c["options"];
    Optimizer& opt = *s.opt;
    if (kind == "StepLR") {
        s.sched =
            std::make_unique<StepLR>(opt, StepLROptions{.step_size = o["step_size"].get<int64_t>(),
                                                        .gamma = o["gamma"].get<double>()});
    } else if (kind == "MultiStepLR") {
        s.sched = std::make_unique<MultiStepLR>(
            opt, MultiStepLROptions{.milestones = o["milestones"].get<std::vector<int64_t>>(),
                                    .gamma = o["gamma"].get<double>()});
    } else if (kind == "ExponentialLR") {
        s.sched = std::make_unique<ExponentialLR>(
            opt, ExponentialLROptions{.gamma = o["gamma"].get<double>()});
    } else if (kind == "CosineAnnealingLR") {
        s.sched = std::make_unique<CosineAnnealingLR>(
            opt, CosineAnnealingLROptions{.t_max = o["t_max"].get<int64_t>(),
                                          .eta_min = o["eta_min"].get<double>()});
    } else if (kind == "LinearWarmup") {
        LinearWarmupOptions lo;
        lo.start_factor = o.value("start_factor", lo.start_factor);
        lo.end_factor = o.value("end_factor", lo.end_factor);
        lo.total_iters = o.value("total_iters", lo.total_iters);
        s.sched = std::make_unique<LinearWarmup>(opt, lo);
    } else if (kind == "OneCycleLR") {
        OneCycleLROptions lo{.max_lr = o["max_lr"].get<std::vector<double>>()};
        lo.total_steps = o.value("total_steps", lo.total_steps);
        lo.epochs = o.value("epochs", lo.epochs);
        lo.steps_per_epoch = o.value("steps_per_epoch", lo.steps_per_epoch);
        lo.pct_start = o.value("pct_start", lo.pct_start);
        lo.three_phase = o.value("three_phase", lo.three_phase);
        lo.base_momentum = o.value("base_momentum", lo.base_momentum);
        lo.max_momentum = o.value("max_momentum", lo.max_momentum);
        lo.div_factor = o.value("div_factor", lo.div_factor);
        lo.final_div_factor = o.value("final_div_factor", lo.final_div_factor);
        if (o.value("anneal_strategy", "cos") == "linear")
            lo.anneal_strategy = AnnealStrategy::linear;
        s.sched = std::make_unique<OneCycleLR>(opt, lo);
    } else if (kind == "ReduceLROnPlateau") {
        ReduceLROnPlateauOptions po;
        po.mode = o.value("mode", "min") == "max" ? PlateauMode::max : PlateauMode::min;
        po.factor = o.value("factor", po.factor);
        po.patience = o.value("patience", po.patience);
        po.threshold = o.value("threshold", po.threshold);
        po.threshold_mode =
            o.value("threshold_mode", "rel") == "abs" ? ThresholdMode::abs : ThresholdMode::rel;
        po.cooldown = o.value("cooldown", po.cooldown);
        po.min_lr = o.value("min_lr", po.min_lr);
        s.plateau = std::make_unique<ReduceLROnPlateau>(opt, po);
    } else {
        throw std::runtime_error("unknown scheduler " + kind);
    }
    return s;
}

void step_scheduled(Scheduled& s, const json& c, size_t k) {
    s.opt->step();
    if (s.plateau)
        s.plateau->step(c["metrics"][k].get<double>());
    else
        s.sched->step();
}

std::vector<double> group_lrs(const Optimizer& opt) {
    std::vector<double> out;
    for (auto& g : opt.param_groups()) out.push_back(g.lr());
    return out;
}

TEST(OptimSchedule, MatchesPyTorch) {
    REQUIRE_FIXTURES();
    for (const json& c : fixtures()["schedulers"]) {
        SCOPED_TRACE(c["name"].get<std::string>());
        Scheduled s = make_scheduled(c);
        const json& lrs = c["expected_lr"];
        for (size_t k = 0; k < lrs.size(); ++k) {
            if (k > 0) step_scheduled(s, c, k - 1);
            const std::string at = "after " + std::to_string(k) + " steps";
            expect_close(group_lrs(*s.opt), lrs[k].get<std::vector<double>>(), 1e-10, 1e-15,
                         "lr " + at);
            const auto& last = s.plateau ? s.plateau->get_last_lr() : s.sched->get_last_lr();
            EXPECT_EQ(last, group_lrs(*s.opt)) << at;
            if (c.contains("expected_momentum")) {
                std::vector<double> m;
                for (auto& g : s.opt->param_groups()) m.push_back(g.momentum());
                expect_close(m, c["expected_momentum"][k].get<std::vector<double>>(), 1e-10, 1e-15,
                             "momentum " + at);
            }
        }
    }
}

TEST(OptimSchedule, ResumeFromStateDicts) {
    REQUIRE_FIXTURES();
    for (const json& c : fixtures()["schedulers"]) {
        SCOPED_TRACE(c["name"].get<std::string>());
        const size_t total = c["expected_lr"].size() - 1, split = 5;
        Scheduled a = make_scheduled(c);
        for (size_t k = 0; k < split; ++k) step_scheduled(a, c, k);
        StateDict opt_sd = a.opt->state_dict();
        StateDict sched_sd = a.plateau ? a.plateau->state_dict() : a.sched->state_dict();
        Scheduled b = make_scheduled(c);
        b.opt->load_state_dict(opt_sd);
        if (b.plateau)
            b.plateau->load_state_dict(sched_sd);
        else
            b.sched->load_state_dict(sched_sd);
        for (size_t k = split; k < total; ++k) {
            step_scheduled(a, c, k);
            step_scheduled(b, c, k);
            EXPECT_EQ(group_lrs(*b.opt), group_lrs(*a.opt)) << "step " << k + 1;
        }
        expect_close(group_lrs(*b.opt), c["expected_lr"][total].get<std::vector<double>>(), 1e-10,
                     1e-15, "final lr");
    }
}

TEST(OptimSchedule, Errors) {
    Tensor w = zeros({2}).requires_grad_();
    SGD sgd({w}, {.lr = 0.1});
    expect_value_error([&] { StepLR(sgd, {}); }, {"StepLR", "step_size"});
    expect_value_error([&] { ExponentialLR(sgd, {}); }, {"ExponentialLR", "gamma is required"});
    expect_value_error([&] { CosineAnnealingLR(sgd, {.t_max = 0}); }, {"CosineAnnealingLR"});
    expect_value_error([&] { LinearWarmup(sgd, {.start_factor = 0}); },
                       {"LinearWarmup", "start_factor"});
    expect_value_error([&] { OneCycleLR(sgd, {.total_steps = 10}); }, {"OneCycleLR", "max_lr"});
    expect_value_error([&] { OneCycleLR(sgd, {.max_lr = {0.1}}); }, {"OneCycleLR", "total_steps"});
    expect_value_error(
        [&] {
            OneCycleLR(sgd, {.max_lr = {0.1, 0.2}, .total_steps = 10});
        },
        {"OneCycleLR", "max_lr"});
    expect_value_error([&] { ReduceLROnPlateau(sgd, {.factor = 1.0}); },
                       {"ReduceLROnPlateau", "factor"});
    Tensor v = zeros({2}).requires_grad_();
    Adagrad ada({v}, {});
    expect_value_error([&] { OneCycleLR(ada, {.max_lr = {0.1}, .total_steps = 10}); },
                       {"OneCycleLR", "momentum"});
    OneCycleLR ok(ada, {.max_lr = {0.1}, .total_steps = 3, .cycle_momentum = false});
    for (int i = 0; i < 3; ++i) ok.step();
    expect_value_error([&] { ok.step(); }, {"OneCycleLR", "total_steps"});

    StepLR step(sgd, {.step_size = 2});
    StateDict sd = step.state_dict();
    sd.pop_back();
    expect_value_error([&] { step.load_state_dict(sd); },
                       {"StepLR.load_state_dict", "missing entry 'last_lr.0'"});
}

// ---- gradient clipping ---------------------------------------------------------------------

TEST(OptimClip, MatchesPyTorch) {
    REQUIRE_FIXTURES();
    for (DType dtype : {DType::float64, DType::float32}) {
        const double rtol = dtype == DType::float64 ? 1e-10 : 0;
        const double atol = dtype == DType::float64 ? 1e-14 : 1e-5;
        for (const json& c : fixtures()["clip"]) {
            SCOPED_TRACE(c["name"].get<std::string>() + " " + dtype_name(dtype));
            std::vector<Tensor> params;
            for (size_t j = 0; j < c["grads"].size(); ++j) {
                Shape shape = to_shape(c["shapes"][j]);
                params.push_back(zeros(shape, {.dtype = dtype}).requires_grad_());
                params.back().set_grad(make_tensor_from(c["grads"][j], shape, dtype));
            }
            std::vector<uint64_t> versions;
            for (auto& p : params) versions.push_back(p.grad().version());
            if (c["kind"] == "norm") {
                const double norm_type =
                    c["norm_type"].is_string() ? kInfNorm : c["norm_type"].get<double>();
                const double total =
                    clip_grad_norm_(params, c["max_norm"].get<double>(), norm_type);
                expect_close({total}, {c["total_norm"].get<double>()}, rtol, atol, "total norm");
            } else {
                clip_grad_value_(params, c["clip_value"].get<double>());
            }
            for (size_t j = 0; j < params.size(); ++j) {
                expect_close(params[j].grad().to_vector<double>(),
                             c["expected"][j].get<std::vector<double>>(), rtol, atol,
                             "grad " + std::to_string(j));
                EXPECT_GT(params[j].grad().version(), versions[j]);
            }
        }
    }
}

TEST(OptimClip, EdgeCases) {
    Tensor a = zeros({2}).requires_grad_(), b = zeros({2}).requires_grad_();
    EXPECT_EQ(clip_grad_norm_({a, b}, 1.0), 0.0);  // no grads
    b.set_grad(tensor({3.0, 4.0}));
    EXPECT_NEAR(clip_grad_norm_({a, b}, 1.0), 5.0, 1e-6);
    expect_close(b.grad().to_vector<double>(), {0.6, 0.8}, 1e-5, 1e-6, "clipped");
    b.set_grad(tensor({NAN, 1.0}));
    expect_value_error([&] { clip_grad_norm_({b}, 1.0, 2.0, /*error_if_nonfinite=*/true); },
                       {"clip_grad_norm_", "non-finite"});
    expect_value_error([&] { clip_grad_norm_({b}, 1.0, 0.0); }, {"clip_grad_norm_", "norm_type"});
    expect_value_error([&] { clip_grad_value_({b}, -1.0); }, {"clip_grad_value_", "clip_value"});
    // A non-contiguous grad is clipped in place.
    Tensor w = zeros({2, 3}).requires_grad_();
    w.set_grad(tensor({{1, -2}, {3, -4}, {5, -6}}).t());
    clip_grad_value_({w}, 2.5);
    EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>{1, 2.5, 2.5, -2, -2.5, -2.5}));
}

}  // namespace
