// RL agents: PPO (categorical and Gaussian), A2C and REINFORCE losses and gradients against
// PyTorch (tests/fixtures/rl_losses.json, written by scripts/gen_rl_loss_fixtures.py), the
// running normaliser, discounted returns, the env snapshot, learning signal of short runs,
// bit-for-bit resume after an interrupted run, and the renderers.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "soma/autograd.h"
#include "soma/io.h"
#include "soma/ops.h"
#include "soma/rl.h"

using json = nlohmann::json;
using namespace soma;
using namespace soma::rl;

namespace {

const json& loss_fixtures() {
    static const json data = [] {
        std::ifstream f(std::string(SOMA_FIXTURE_DIR) + "/rl_losses.json");
        if (!f) return json();
        return json::parse(f);
    }();
    return data;
}

Tensor from_json(const json& j, const Shape& shape) {
    auto v = j.get<std::vector<double>>();
    std::vector<float> f(v.begin(), v.end());
    return from_vector<float>(f, shape);
}

std::string tmp(const std::string& name) {
    return (std::filesystem::temp_directory_path() / name).string();
}

double mean_of(const std::vector<double>& v, size_t from, size_t to) {
    double s = 0;
    for (size_t i = from; i < to; ++i) s += v[i];
    return s / static_cast<double>(to - from);
}

void expect_same_params(nn::Module& a, nn::Module& b) {
    auto pa = a.named_parameters(), pb = b.named_parameters();
    ASSERT_EQ(pa.size(), pb.size());
    for (size_t i = 0; i < pa.size(); ++i) {
        EXPECT_EQ(pa[i].first, pb[i].first);
        EXPECT_TRUE(equal(pa[i].second, pb[i].second)) << pa[i].first;
    }
}

struct Interrupted {};

}  // namespace

TEST(RlLoss, MatchesPyTorch) {
    const json& all = loss_fixtures();
    ASSERT_FALSE(all.is_null()) << "tests/fixtures/rl_losses.json missing";
    int n = 0;
    for (const auto& c : all["cases"]) {
        const bool discrete = c["discrete"];
        const std::string kind = c["kind"];
        const int64_t A = c["action_size"], B = c["obs_shape"][0], D = c["obs_shape"][1];
        ActorCritic ac(D, A, discrete, {5});
        nn::NamedTensors sd;
        for (const auto& [name, p] : c["params"].items())
            sd.emplace_back(name, from_json(p["data"], p["shape"].get<Shape>()));
        ac.load_state_dict(sd);
        PPOBatch b;
        b.obs = from_json(c["obs"], {B, D});
        b.actions = discrete ? from_vector<int64_t>(c["actions"].get<std::vector<int64_t>>())
                             : from_json(c["actions"], {B, A});
        b.old_log_prob = from_json(c["old_log_prob"], {B});
        b.old_value = from_json(c["old_value"], {B});
        b.advantages = from_json(c["advantages"], {B});
        b.returns = from_json(c["returns"], {B});
        const json& cfg = c["config"];
        PPOLoss l;
        if (kind == "ppo") {
            PPOConfig pc;
            pc.clip_coef = cfg["clip_coef"];
            pc.clip_vloss = cfg["clip_vloss"];
            pc.norm_adv = cfg["norm_adv"];
            pc.ent_coef = cfg["ent_coef"];
            pc.vf_coef = cfg["vf_coef"];
            l = ppo_loss(ac, b, pc);
        } else if (kind == "a2c") {
            l = a2c_loss(ac, b, cfg["ent_coef"], cfg["vf_coef"], cfg["norm_adv"]);
        } else {
            l = reinforce_loss(ac, b, cfg["ent_coef"], cfg["vf_coef"], cfg["baseline"],
                               cfg["norm_adv"]);
        }
        std::string what =
            kind + (discrete ? " categorical" : " gaussian") + " case " + std::to_string(n);
        auto tol = [](double x) { return 2e-5 * (1 + std::abs(x)); };
        EXPECT_NEAR(l.loss.item<double>(), c["loss"].get<double>(), tol(c["loss"])) << what;
        EXPECT_NEAR(l.pg_loss, c["pg_loss"].get<double>(), tol(c["pg_loss"])) << what;
        EXPECT_NEAR(l.v_loss, c["v_loss"].get<double>(), tol(c["v_loss"])) << what;
        EXPECT_NEAR(l.entropy, c["entropy"].get<double>(), tol(c["entropy"])) << what;
        l.loss.backward();
        for (const auto& [name, p] : ac.named_parameters()) {
            ASSERT_TRUE(c["grads"].contains(name)) << name;
            auto want = c["grads"][name].get<std::vector<double>>();
            std::vector<double> got(want.size(), 0.0);
            if (p.grad().defined()) got = p.grad().to_vector<double>();
            ASSERT_EQ(got.size(), want.size()) << what << " " << name;
            for (size_t i = 0; i < want.size(); ++i)
                EXPECT_NEAR(got[i], want[i], 1e-4 * (1 + std::abs(want[i])))
                    << what << " " << name << "[" << i << "]";
        }
        ++n;
    }
    EXPECT_EQ(n, 8);
}

TEST(RlLoss, DiscountedReturns) {
    const json& r = loss_fixtures()["returns"];
    auto g = discounted_returns(r["rewards"].get<std::vector<double>>(),
                                r["dones"].get<std::vector<bool>>(), r["gamma"]);
    auto want = r["expected"].get<std::vector<double>>();
    ASSERT_EQ(g.size(), want.size());
    for (size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(g[i], want[i], 1e-12) << i;
    // by hand: [1 + .9 * 2 + .81 * 3, 2 + .9 * 3, 3, .5 - .9, -1]
    EXPECT_NEAR(g[0], 5.23, 1e-12);
    EXPECT_NEAR(g[3], -0.4, 1e-12);
    EXPECT_THROW(discounted_returns({1.0}, {}, 0.9), ValueError);
}

TEST(RlNormalizer, RunningMeanStdMatchesBatchMoments) {
    RunningMeanStd rms(2);
    std::vector<float> all;
    Generator g(3);
    for (int chunk : {1, 5, 17}) {
        std::vector<float> x;
        for (int i = 0; i < chunk; ++i) {
            x.push_back(static_cast<float>(3 + 2 * g.next_normal()));
            x.push_back(static_cast<float>(-1 + 0.5 * g.next_normal()));
        }
        rms.update(x.data(), chunk);
        all.insert(all.end(), x.begin(), x.end());
    }
    for (int j = 0; j < 2; ++j) {
        double m = 0, v = 0;
        for (size_t i = j; i < all.size(); i += 2) m += all[i];
        m /= 23;
        for (size_t i = j; i < all.size(); i += 2) v += (all[i] - m) * (all[i] - m);
        v /= 23;
        EXPECT_NEAR(rms.mean[static_cast<size_t>(j)], m, 1e-4);  // the 1e-4 prior count
        EXPECT_NEAR(rms.var[static_cast<size_t>(j)], v, 1e-3 * (1 + v));
    }
    Tensor z = rms.normalize(from_vector<float>({static_cast<float>(rms.mean[0]), 1e9f}, {1, 2}));
    EXPECT_NEAR(z.to_vector<float>()[0], 0.0, 1e-6);
    EXPECT_FLOAT_EQ(z.to_vector<float>()[1], 10.0f);  // clipped
    RunningMeanStd back(2);
    auto sd = rms.state_dict("x.");
    back.load_state_dict(sd[0].second, sd[1].second, sd[2].second);
    EXPECT_EQ(back.mean, rms.mean);
    EXPECT_EQ(back.var, rms.var);
    EXPECT_EQ(back.count, rms.count);
    EXPECT_THROW(back.load_state_dict(zeros({3}), zeros({3}), zeros({1})), ValueError);
}

TEST(RlEnv, SnapshotRestoresMidEpisode) {
    VectorEnv a(env_factory("Acrobot-v1"), 3);
    a.reset(5);
    Tensor act = from_vector<int64_t>({0, 2, 1});
    for (int i = 0; i < 7; ++i) a.step(act);
    auto sd = a.state_dict("e.");
    VectorEnv b(env_factory("Acrobot-v1"), 3);
    Tensor obs = b.load_state_dict(sd[0].second, sd[1].second);
    EXPECT_EQ(obs.shape(), (Shape{3, 6}));
    for (int i = 0; i < 600; ++i) {  // past the time limit: autoreset draws from the generators
        auto sa = a.step(act), sb = b.step(act);
        ASSERT_TRUE(equal(sa.observations, sb.observations)) << i;
        ASSERT_EQ(a.finished().size(), b.finished().size()) << i;
        for (size_t k = 0; k < a.finished().size(); ++k)
            EXPECT_EQ(a.finished()[k].ret, b.finished()[k].ret);
    }
    VectorEnv c(env_factory("Acrobot-v1"), 2);
    EXPECT_THROW(c.load_state_dict(sd[0].second, sd[1].second), ValueError);
}

TEST(RlReinforce, LearnsOnCartPole) {
    // fixed seed; measured: the first 16 episodes average 21, the last 16 average 96
    ReinforceConfig cfg{.total_steps = 8'000,
                        .seed = 0,
                        .episodes_per_update = 8,
                        .hidden = {32},
                        .lr = 1e-2,
                        .eval_interval = 0};
    auto res = train_reinforce(env_factory("CartPole-v1"), cfg);
    ASSERT_GE(res.episode_returns.size(), 40u);
    double first = mean_of(res.episode_returns, 0, 16);
    size_t n = res.episode_returns.size();
    double last = mean_of(res.episode_returns, n - 16, n);
    EXPECT_GT(last, first * 2) << "first " << first << " last " << last;
    EXPECT_GE(res.env_steps, 8'000);
}

TEST(RlA2c, LearnsOnCartPole) {
    // fixed seed; measured: the first 20 episodes average 19, the last 20 average 95
    A2CConfig cfg{.total_steps = 8'000, .seed = 0, .hidden = {32}, .lr = 5e-3, .eval_interval = 0};
    auto res = train_a2c(env_factory("CartPole-v1"), cfg);
    EXPECT_EQ(res.updates, 8'000 / 40);
    size_t n = res.episode_returns.size();
    ASSERT_GE(n, 40u);
    double first = mean_of(res.episode_returns, 0, 20),
           last = mean_of(res.episode_returns, n - 20, n);
    EXPECT_GT(last, first * 2) << "first " << first << " last " << last;
}

TEST(RlPpo, ResumeIsBitwiseLikeUninterrupted) {
    // normalisers on, so their state goes through the checkpoint too
    auto path = tmp("soma_test_rl_ppo_resume.safetensors");
    std::filesystem::remove(path);
    PPOConfig cfg{.total_steps = 6 * 4 * 32,
                  .seed = 4,
                  .num_envs = 4,
                  .num_steps = 32,
                  .hidden = {8},
                  .num_minibatches = 2,
                  .update_epochs = 2,
                  .normalize_obs = true,
                  .normalize_reward = true,
                  .eval_interval = 0};
    auto full = train_ppo(env_factory("Pendulum-v1"), cfg);
    cfg.checkpoint_path = path;
    cfg.checkpoint_interval = 3 * 4 * 32;
    cfg.on_checkpoint = [](const TrainResult& r) {
        if (r.env_steps == 3 * 4 * 32) throw Interrupted{};  // "killed" after 3 iterations
    };
    EXPECT_THROW(train_ppo(env_factory("Pendulum-v1"), cfg), Interrupted);
    cfg.on_checkpoint = nullptr;
    cfg.resume = true;
    auto resumed = train_ppo(env_factory("Pendulum-v1"), cfg);
    EXPECT_EQ(resumed.env_steps, full.env_steps);
    EXPECT_EQ(resumed.updates, full.updates);
    expect_same_params(*full.model, *resumed.model);
    // the resumed run's episodes are the uninterrupted run's last ones
    ASSERT_LE(resumed.episode_returns.size(), full.episode_returns.size());
    size_t off = full.episode_returns.size() - resumed.episode_returns.size();
    for (size_t i = 0; i < resumed.episode_returns.size(); ++i)
        EXPECT_EQ(resumed.episode_returns[i], full.episode_returns[off + i]);
    Tensor o = randn({5, 3});
    EXPECT_TRUE(equal(load_policy(path)(o), full.policy(o)));  // obs normaliser in the file
    std::filesystem::remove(path);
}

TEST(RlDqn, ResumeIsBitwiseLikeUninterrupted) {
    auto path = tmp("soma_test_rl_dqn_resume.safetensors");
    std::filesystem::remove(path);
    DQNConfig cfg{.total_steps = 900,
                  .seed = 5,
                  .hidden = {16},
                  .buffer_size = 500,
                  .batch_size = 16,
                  .learning_starts = 100,
                  .train_frequency = 50,
                  .gradient_steps = 2,
                  .target_update_interval = 100,
                  .eval_interval = 0};
    auto full = train_dqn(env_factory("CartPole-v1"), cfg);
    cfg.checkpoint_path = path;
    cfg.checkpoint_interval = 430;
    cfg.on_checkpoint = [](const TrainResult& r) {
        if (r.env_steps < 900) throw Interrupted{};
    };
    EXPECT_THROW(train_dqn(env_factory("CartPole-v1"), cfg), Interrupted);
    cfg.on_checkpoint = nullptr;
    cfg.resume = true;
    auto resumed = train_dqn(env_factory("CartPole-v1"), cfg);
    EXPECT_EQ(resumed.updates, full.updates);
    expect_same_params(*full.model, *resumed.model);
    ASSERT_FALSE(resumed.episode_returns.empty());
    EXPECT_EQ(resumed.episode_returns.back(), full.episode_returns.back());
    std::filesystem::remove(path);
}

TEST(RlReinforce, ResumeIsBitwiseLikeUninterrupted) {
    auto path = tmp("soma_test_rl_reinforce_resume.safetensors");
    std::filesystem::remove(path);
    ReinforceConfig cfg{.total_steps = 1500,
                        .seed = 6,
                        .episodes_per_update = 4,
                        .hidden = {8},
                        .normalize_obs = true,
                        .eval_interval = 0};
    auto full = train_reinforce(env_factory("CartPole-v1"), cfg);
    cfg.checkpoint_path = path;
    cfg.checkpoint_interval = 600;
    cfg.on_checkpoint = [](const TrainResult& r) {
        if (r.env_steps < 1500) throw Interrupted{};
    };
    EXPECT_THROW(train_reinforce(env_factory("CartPole-v1"), cfg), Interrupted);
    cfg.on_checkpoint = nullptr;
    cfg.resume = true;
    auto resumed = train_reinforce(env_factory("CartPole-v1"), cfg);
    EXPECT_EQ(resumed.env_steps, full.env_steps);
    EXPECT_EQ(resumed.updates, full.updates);
    expect_same_params(*full.model, *resumed.model);
    std::filesystem::remove(path);
}

TEST(RlRender, FramesAndGif) {
    for (const auto& name : env_names()) {
        auto env = make_env(name);
        env->reset(0);
        Canvas c = render(*env, 120, 80, 3, 1.5);
        int ink = 0;
        for (size_t i = 0; i < c.rgb().size(); i += 3)
            ink += c.rgb()[i] != 255 || c.rgb()[i + 1] != 255 || c.rgb()[i + 2] != 255;
        EXPECT_GT(ink, 200) << name;
    }
    auto path = tmp("soma_test_rl_episode.gif");
    Policy left = [](const Tensor& obs) { return zeros({obs.size(0)}, {.dtype = DType::int64}); };
    auto rec = record_gif(left, env_factory("CartPole-v1"), path, 0, 2, 80, 60);
    EXPECT_GT(rec.steps, 5);
    EXPECT_LT(rec.steps, 100);  // always pushing left topples the pole quickly
    EXPECT_EQ(rec.ret, static_cast<double>(rec.steps));
    EXPECT_EQ(rec.frames, 1 + rec.steps / 2 + (rec.steps % 2 ? 1 : 0));
    EXPECT_GT(std::filesystem::file_size(path), 100u);
    std::filesystem::remove(path);
    auto png = tmp("soma_test_rl_curve.png");
    plot_learning_curve_png(png, {10, 20, 30}, {1, 5, 3}, {{20, 4.0, 1.0}}, "test");
    EXPECT_EQ(read_image(png).size(0), 3);
    std::filesystem::remove(png);
}
