// REINFORCE with a learned baseline (Williams 1992; Sutton & Barto 13.4). Every update plays
// episodes_per_update whole episodes in lock step (one env copy each, seeded from the seed and
// the update index), then takes one gradient step on
//   L = -mean_t(log pi(a_t|s_t) (G_t - V(s_t))) + vf_coef * 0.5 mean_t((V(s_t) - G_t)^2)
//       - ent_coef * mean_t(H(pi(.|s_t)))
// with G_t the discounted return to the end of the episode. Episodes start afresh every update,
// so a checkpoint between updates (weights, optimizer, normaliser, counters) is the whole state.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "rl/checkpoint.h"
#include "rl/rl_internal.h"
#include "soma/autograd.h"
#include "soma/io.h"
#include "soma/ops.h"
#include "soma/optim.h"
#include "soma/rl/agents.h"

namespace soma::rl {

namespace {
using detail::since;

uint64_t update_seed(uint64_t seed, int64_t update) {
    return (seed * 1000003ULL + 41) ^ (static_cast<uint64_t>(update) * 0x9E3779B97F4A7C15ULL);
}
}  // namespace

TrainResult train_reinforce(const EnvFactory& factory, const ReinforceConfig& cfg) {
    SOMA_CHECK_VALUE(cfg.episodes_per_update > 0,
                     "train_reinforce: episodes_per_update must be positive: got ",
                     cfg.episodes_per_update);
    const int64_t E = cfg.episodes_per_update;
    std::vector<std::unique_ptr<Env>> envs;
    for (int64_t i = 0; i < E; ++i) envs.push_back(factory());
    const Space& as = envs[0]->action_space();
    const bool discrete = as.is_discrete();
    const int64_t d = envs[0]->observation_space().flat_size(), k = discrete ? 1 : as.flat_size();
    const std::string env_name = envs[0]->name();

    Generator gen(0);
    manual_seed(cfg.seed);
    auto ac = std::make_shared<ActorCritic>(d, discrete ? as.n : k, discrete, cfg.hidden);
    optim::Adam opt(ac->parameters(), {.lr = cfg.lr});
    auto obs_rms = cfg.normalize_obs ? std::make_shared<RunningMeanStd>(d) : nullptr;

    TrainResult res;
    int64_t step = 0, update = 0;
    detail::Checkpointer ck(cfg, "reinforce", env_name);
    auto state = [&] {
        auto tensors = detail::model_and_optimizer(*ac, opt);
        if (obs_rms) detail::append(tensors, obs_rms->state_dict("obs_rms."));
        return tensors;
    };
    if (auto f = ck.resume(*ac, opt, step, res)) {
        if (obs_rms)
            obs_rms->load_state_dict(f->at("obs_rms.mean"), f->at("obs_rms.var"),
                                     f->at("obs_rms.count"));
        update = detail::meta_int(*f, "iteration", cfg.checkpoint_path);
    }
    res.policy = detail::greedy_ac_policy(ac, as.low, as.high, obs_rms);
    res.model = ac;
    auto norm = [&](const Tensor& o) { return obs_rms ? obs_rms->normalize(o) : o; };

    auto t0 = ck.start(step);
    int64_t next_eval =
        cfg.eval_interval > 0 ? (step / cfg.eval_interval + 1) * cfg.eval_interval : INT64_MAX;
    struct Trajectory {
        std::vector<float> obs, actions;
        std::vector<double> rewards;
    };

    while (step < cfg.total_steps) {
        gen.manual_seed(update_seed(cfg.seed, update));
        // ---- play E episodes in lock step
        std::vector<Trajectory> traj(static_cast<size_t>(E));
        std::vector<int64_t> alive;
        std::vector<float> raw(static_cast<size_t>(E * d));
        for (int64_t i = 0; i < E; ++i) {
            envs[static_cast<size_t>(i)]->reset_into(
                raw.data() + i * d, cfg.seed * 7919 + static_cast<uint64_t>(update * E + i));
            alive.push_back(i);
        }
        if (obs_rms) obs_rms->update(raw.data(), E);
        std::vector<double> action(static_cast<size_t>(k));
        while (!alive.empty()) {
            auto M = static_cast<int64_t>(alive.size());
            std::vector<float> cur(static_cast<size_t>(M * d));
            for (int64_t m = 0; m < M; ++m)
                std::copy(raw.begin() + alive[static_cast<size_t>(m)] * d,
                          raw.begin() + (alive[static_cast<size_t>(m)] + 1) * d,
                          cur.begin() + m * d);
            Tensor o = norm(from_vector<float>(cur, {M, d})).contiguous();
            std::vector<float> stored(static_cast<size_t>(M * k)), logp(static_cast<size_t>(M));
            Tensor actions;
            {
                NoGradGuard ng;
                actions = detail::sample_actions(ac->actor_out(o), *ac, as, gen, stored.data(),
                                                 logp.data());
            }
            auto act_v = actions.to_vector<double>();
            std::vector<int64_t> still;
            std::vector<float> fresh;
            for (int64_t m = 0; m < M; ++m) {
                int64_t i = alive[static_cast<size_t>(m)];
                auto& tr = traj[static_cast<size_t>(i)];
                tr.obs.insert(tr.obs.end(), o.data_ptr<float>() + m * d,
                              o.data_ptr<float>() + (m + 1) * d);
                tr.actions.insert(tr.actions.end(), stored.begin() + m * k,
                                  stored.begin() + (m + 1) * k);
                std::copy(act_v.begin() + m * k, act_v.begin() + (m + 1) * k, action.begin());
                StepResult r =
                    envs[static_cast<size_t>(i)]->step_into(action.data(), raw.data() + i * d);
                tr.rewards.push_back(r.reward);
                ++step;
                if (r.terminated || r.truncated) {
                    double ret = 0;
                    for (double x : tr.rewards) ret += x;
                    res.episode_returns.push_back(ret);
                    res.episode_lengths.push_back(static_cast<int64_t>(tr.rewards.size()));
                    res.episode_steps.push_back(step);
                } else {
                    still.push_back(i);
                    fresh.insert(fresh.end(), raw.begin() + i * d, raw.begin() + (i + 1) * d);
                }
            }
            if (obs_rms && !still.empty())
                obs_rms->update(fresh.data(), static_cast<int64_t>(still.size()));
            alive = std::move(still);
        }

        // ---- one gradient step on all the episodes
        std::vector<float> b_obs, b_act, b_ret;
        for (const auto& tr : traj) {
            b_obs.insert(b_obs.end(), tr.obs.begin(), tr.obs.end());
            b_act.insert(b_act.end(), tr.actions.begin(), tr.actions.end());
            std::vector<bool> dones(tr.rewards.size(), false);
            for (double g : discounted_returns(tr.rewards, dones, cfg.gamma))
                b_ret.push_back(static_cast<float>(g));
        }
        auto B = static_cast<int64_t>(b_ret.size());
        PPOBatch b;
        b.obs = from_vector<float>(b_obs, {B, d});
        b.actions = discrete ? from_vector<float>(b_act, {B}).to(DType::int64)
                             : from_vector<float>(b_act, {B, k});
        b.returns = from_vector<float>(b_ret, {B});
        PPOLoss l = reinforce_loss(*ac, b, cfg.ent_coef, cfg.vf_coef, cfg.baseline, cfg.norm_adv);
        opt.zero_grad();
        l.loss.backward();
        if (cfg.max_grad_norm > 0) optim::clip_grad_norm_(ac->parameters(), cfg.max_grad_norm);
        opt.step();
        ++res.updates;
        ++update;
        if (cfg.verbose && update % 10 == 0)
            std::fprintf(stderr, "reinforce update %lld step %lld last return %.1f (%.1fs)\n",
                         static_cast<long long>(update), static_cast<long long>(step),
                         res.episode_returns.back(), since(t0));

        // ---- evaluate / checkpoint
        if (step >= next_eval) {
            next_eval = (step / cfg.eval_interval + 1) * cfg.eval_interval;
            if (detail::evaluate_during_training("reinforce", res, factory, cfg.eval_episodes,
                                                 cfg.seed, cfg.target_return, cfg.verbose, step,
                                                 t0))
                break;
        }
        if (ck.due(step)) ck.save(res, step, state, update);
    }
    ck.save(res, step, state, update);
    return res;
}

}  // namespace soma::rl
