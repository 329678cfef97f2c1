// PPO (Schulman et al. 2017), following CleanRL's ppo.py / ppo_continuous_action.py, and A2C
// (one gradient step per rollout, no ratio) on the same rollout machinery:
// num_envs copies collect num_steps each; GAE(gamma, lambda) advantages; update_epochs passes
// over shuffled minibatches of
//   L = -min(r A, clip(r, 1 - c, 1 + c) A) + vf_coef * 0.5 * (V - R)^2 (clipped) - ent_coef * H
// with r = exp(log pi(a|s) - log pi_old(a|s)), normalised advantages, gradient clipping and a
// linearly annealed learning rate. A truncated episode's last reward gets gamma V(final obs)
// added so that the time limit does not look like a terminal state.
// Optional normalisers (as Gymnasium's NormalizeObservation / NormalizeReward wrappers): running
// mean / std of observations, and rewards divided by the running std of the discounted return.
// Reproducibility: the agent's generator is re-seeded from (seed, iteration) at the start of
// every iteration and checkpoints are written between iterations with the environments' full
// state, so a resumed run continues bit for bit.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numbers>
#include <numeric>

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
}  // namespace

PPOLoss ppo_loss(ActorCritic& ac, const PPOBatch& b, const PPOConfig& cfg) {
    Tensor adv = b.advantages;
    if (cfg.norm_adv && adv.numel() > 1) adv = (adv - adv.mean()) / (soma::std(adv) + 1e-8);
    auto e = ac.evaluate(b.obs, b.actions);
    Tensor log_ratio = e.log_prob - b.old_log_prob;
    Tensor ratio = exp(log_ratio);
    // pg_loss = mean(max(-A r, -A clip(r, 1 - c, 1 + c)))
    Tensor pg_loss =
        maximum(-adv * ratio, -adv * clamp(ratio, 1 - cfg.clip_coef, 1 + cfg.clip_coef)).mean();
    Tensor v_loss;
    if (cfg.clip_vloss) {
        // v_loss = 0.5 mean(max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2))
        Tensor v_clipped =
            b.old_value + clamp(e.value - b.old_value, -cfg.clip_coef, cfg.clip_coef);
        v_loss = maximum(square(e.value - b.returns), square(v_clipped - b.returns)).mean() * 0.5;
    } else {
        v_loss = square(e.value - b.returns).mean() * 0.5;
    }
    Tensor entropy = e.entropy.mean();
    PPOLoss out;
    out.loss = pg_loss - entropy * cfg.ent_coef + v_loss * cfg.vf_coef;
    out.pg_loss = pg_loss.item<double>();
    out.v_loss = v_loss.item<double>();
    out.entropy = entropy.item<double>();
    {
        NoGradGuard ng;
        // approx_kl = mean((r - 1) - log r)
        out.approx_kl = ((ratio - 1) - log_ratio).mean().item<double>();
        out.clip_fraction =
            gt(abs(ratio - 1), cfg.clip_coef).to(DType::float32).mean().item<double>();
    }
    return out;
}

namespace {

uint64_t iteration_seed(uint64_t seed, int64_t iter) {
    return (seed * 1000003ULL + 29) ^ (static_cast<uint64_t>(iter) * 0x9E3779B97F4A7C15ULL);
}

TrainResult run_on_policy(const EnvFactory& factory, const PPOConfig& cfg,
                          const std::string& algo) {
    const bool a2c = algo == "a2c";
    SOMA_CHECK_VALUE(cfg.num_envs > 0 && cfg.num_steps > 0 && cfg.num_minibatches > 0, "train_",
                     algo, ": num_envs, num_steps and num_minibatches must be positive");
    VectorEnv venv(factory, cfg.num_envs);
    const Space& as = venv.action_space();
    const bool discrete = as.is_discrete();
    const int64_t N = cfg.num_envs, T = cfg.num_steps, d = venv.observation_space().flat_size();
    const int64_t k = discrete ? 1 : as.flat_size();
    const int64_t batch = N * T, minibatch = batch / cfg.num_minibatches;
    SOMA_CHECK_VALUE(minibatch > 0, "train_", algo, ": num_envs * num_steps (", batch,
                     ") is smaller than num_minibatches (", cfg.num_minibatches, ")");
    const int64_t iterations = std::max<int64_t>(1, cfg.total_steps / batch);

    Generator gen(cfg.seed * 1000003ULL + 29);
    manual_seed(cfg.seed);
    auto ac = std::make_shared<ActorCritic>(d, discrete ? as.n : k, discrete, cfg.hidden);
    optim::Adam opt(ac->parameters(), {.lr = cfg.lr, .eps = 1e-5});
    auto obs_rms = cfg.normalize_obs ? std::make_shared<RunningMeanStd>(d) : nullptr;
    RunningMeanStd ret_rms(1);
    std::vector<double> ret_acc(static_cast<size_t>(N), 0.0);  // discounted returns so far

    TrainResult res;
    int64_t step = 0, iter0 = 0;
    Tensor obs;  // raw observations [N, d]
    detail::Checkpointer ck(cfg, algo, venv.env(0).name(), N);
    auto state = [&] {
        auto tensors = detail::model_and_optimizer(*ac, opt);
        detail::append(tensors, venv.state_dict("env."));
        if (obs_rms) detail::append(tensors, obs_rms->state_dict("obs_rms."));
        if (cfg.normalize_reward) {
            detail::append(tensors, ret_rms.state_dict("ret_rms."));
            tensors.emplace_back("ret_acc", from_vector<double>(ret_acc));
        }
        return tensors;
    };
    if (auto f = ck.resume(*ac, opt, step, res)) {
        iter0 = detail::meta_int(*f, "iteration", cfg.checkpoint_path);
        obs = venv.load_state_dict(f->at("env.real"), f->at("env.int"));
        if (obs_rms)
            obs_rms->load_state_dict(f->at("obs_rms.mean"), f->at("obs_rms.var"),
                                     f->at("obs_rms.count"));
        if (cfg.normalize_reward) {
            ret_rms.load_state_dict(f->at("ret_rms.mean"), f->at("ret_rms.var"),
                                    f->at("ret_rms.count"));
            ret_acc = f->at("ret_acc").to_vector<double>();
        }
    } else {
        obs = venv.reset(cfg.seed * 7919);
        if (obs_rms) obs_rms->update(obs);
    }
    res.policy = detail::greedy_ac_policy(ac, as.low, as.high, obs_rms);
    res.model = ac;
    auto norm = [&](const Tensor& o) { return obs_rms ? obs_rms->normalize(o) : o; };

    // rollout storage, [T, N, ...] flattened row-major (observations normalised)
    std::vector<float> obs_buf(static_cast<size_t>(batch * d)),
        act_buf(static_cast<size_t>(batch * k));
    std::vector<float> logp_buf(static_cast<size_t>(batch)), val_buf(static_cast<size_t>(batch));
    std::vector<float> rew_buf(static_cast<size_t>(batch)), done_buf(static_cast<size_t>(batch));

    auto t0 = ck.start(step);
    int64_t next_eval =
        cfg.eval_interval > 0 ? (step / cfg.eval_interval + 1) * cfg.eval_interval : INT64_MAX;

    for (int64_t iter = iter0; iter < iterations; ++iter) {
        gen.manual_seed(iteration_seed(cfg.seed, iter));
        if (cfg.anneal_lr)
            opt.set_lr(cfg.lr *
                       (1.0 - static_cast<double>(iter) / static_cast<double>(iterations)));
        // ---- collect a rollout
        for (int64_t t = 0; t < T; ++t) {
            Tensor actions;
            {
                NoGradGuard ng;
                Tensor o = norm(obs).contiguous();
                Tensor out = ac->actor_out(o);  // [N, A] logits or [N, k] means
                auto val_v = ac->value(o).to_vector<float>();
                std::copy(o.data_ptr<float>(), o.data_ptr<float>() + N * d,
                          obs_buf.begin() + t * N * d);
                actions = detail::sample_actions(out, *ac, as, gen, act_buf.data() + t * N * k,
                                                 logp_buf.data() + t * N);
                std::copy(val_v.begin(), val_v.end(), val_buf.begin() + t * N);
            }
            VectorStep s = venv.step(actions);
            step += N;
            if (obs_rms) obs_rms->update(s.observations);
            const float* rw = s.rewards.data_ptr<float>();
            const bool* term = s.terminated.data_ptr<bool>();
            const bool* trunc = s.truncated.data_ptr<bool>();
            std::vector<int64_t> truncated_only;
            std::vector<double> scaled(static_cast<size_t>(N));
            for (int64_t i = 0; i < N; ++i) {
                auto u = static_cast<size_t>(i);
                scaled[u] = rw[i] * cfg.reward_scale;
                if (cfg.normalize_reward) ret_acc[u] = ret_acc[u] * cfg.gamma + scaled[u];
            }
            if (cfg.normalize_reward) {
                std::vector<float> r32(ret_acc.begin(), ret_acc.end());
                ret_rms.update(r32.data(), N);
                // r / sqrt(var(G) + eps), clipped to +-10
                double sd = std::sqrt(ret_rms.var[0] + 1e-8);
                for (auto& r : scaled) r = std::clamp(r / sd, -10.0, 10.0);
            }
            for (int64_t i = 0; i < N; ++i) {
                auto j = static_cast<size_t>(t * N + i);
                rew_buf[j] = static_cast<float>(scaled[static_cast<size_t>(i)]);
                done_buf[j] = (term[i] || trunc[i]) ? 1.0f : 0.0f;
                if (term[i] || trunc[i]) ret_acc[static_cast<size_t>(i)] = 0;
                if (trunc[i] && !term[i]) truncated_only.push_back(i);
            }
            if (!truncated_only.empty()) {
                // bootstrap through the time limit: r += gamma V(final observation)
                NoGradGuard ng;
                auto fv = ac->value(norm(s.final_observations)).to_vector<float>();
                for (int64_t i : truncated_only)
                    rew_buf[static_cast<size_t>(t * N + i)] +=
                        static_cast<float>(cfg.gamma) * fv[static_cast<size_t>(i)];
            }
            for (const auto& ep : venv.finished()) {
                res.episode_returns.push_back(ep.ret);
                res.episode_lengths.push_back(ep.length);
                res.episode_steps.push_back(step);
            }
            obs = s.observations;
        }

        // ---- advantages
        Tensor next_value;
        {
            NoGradGuard ng;
            next_value = ac->value(norm(obs)).contiguous();
        }
        Advantages gae = compute_gae(
            from_vector<float>(rew_buf, {T, N}), from_vector<float>(val_buf, {T, N}),
            from_vector<float>(done_buf, {T, N}), next_value, cfg.gamma, cfg.gae_lambda);
        Tensor b_obs = from_vector<float>(obs_buf, {batch, d});
        Tensor b_act = discrete ? from_vector<float>(act_buf, {batch}).to(DType::int64)
                                : from_vector<float>(act_buf, {batch, k});
        Tensor b_logp = from_vector<float>(logp_buf, {batch});
        Tensor b_val = from_vector<float>(val_buf, {batch});
        Tensor b_adv = gae.advantages.reshape({batch});
        Tensor b_ret = gae.returns.reshape({batch});

        // ---- optimise
        auto descend = [&](const Tensor& loss) {
            opt.zero_grad();
            loss.backward();
            if (cfg.max_grad_norm > 0) optim::clip_grad_norm_(ac->parameters(), cfg.max_grad_norm);
            opt.step();
            ++res.updates;
        };
        if (a2c) {
            PPOBatch all{b_obs, b_act, b_logp, b_val, b_adv, b_ret};
            descend(a2c_loss(*ac, all, cfg.ent_coef, cfg.vf_coef, cfg.norm_adv).loss);
        } else {
            std::vector<int64_t> idx(static_cast<size_t>(batch));
            for (int64_t epoch = 0; epoch < cfg.update_epochs; ++epoch) {
                std::iota(idx.begin(), idx.end(), 0);
                for (int64_t i = batch - 1; i > 0; --i)  // Fisher-Yates, the agent's generator
                    std::swap(idx[static_cast<size_t>(i)],
                              idx[gen.next_below(static_cast<uint64_t>(i + 1))]);
                for (int64_t start = 0; start + minibatch <= batch; start += minibatch) {
                    std::vector<int64_t> mb_idx(idx.begin() + start,
                                                idx.begin() + start + minibatch);
                    Tensor mi = from_vector<int64_t>(mb_idx);
                    PPOBatch mb{index_select(b_obs, 0, mi),  index_select(b_act, 0, mi),
                                index_select(b_logp, 0, mi), index_select(b_val, 0, mi),
                                index_select(b_adv, 0, mi),  index_select(b_ret, 0, mi)};
                    descend(ppo_loss(*ac, mb, cfg).loss);
                }
            }
        }
        if (cfg.verbose && !res.episode_returns.empty() && (iter + 1) % (a2c ? 100 : 5) == 0)
            std::fprintf(stderr, "%s iter %lld step %lld last return %.1f (%.1fs)\n", algo.c_str(),
                         static_cast<long long>(iter + 1), static_cast<long long>(step),
                         res.episode_returns.back(), since(t0));

        // ---- evaluate / checkpoint
        if (step >= next_eval) {
            next_eval += cfg.eval_interval;
            if (detail::evaluate_during_training(algo.c_str(), res, factory, cfg.eval_episodes,
                                                 cfg.seed, cfg.target_return, cfg.verbose, step,
                                                 t0)) {
                ck.save(res, step, state, iter + 1);
                return res;
            }
        }
        if (ck.due(step)) ck.save(res, step, state, iter + 1);
    }
    ck.save(res, step, state, std::max(iterations, iter0));
    return res;
}

}  // namespace

TrainResult train_ppo(const EnvFactory& factory, const PPOConfig& cfg) {
    return run_on_policy(factory, cfg, "ppo");
}

TrainResult train_a2c(const EnvFactory& factory, const A2CConfig& a) {
    PPOConfig c{.total_steps = a.total_steps,
                .seed = a.seed,
                .num_envs = a.num_envs,
                .num_steps = a.num_steps,
                .hidden = a.hidden,
                .lr = a.lr,
                .anneal_lr = a.anneal_lr,
                .gamma = a.gamma,
                .gae_lambda = a.gae_lambda,
                .num_minibatches = 1,
                .update_epochs = 1,
                .norm_adv = a.norm_adv,
                .clip_vloss = false,
                .ent_coef = a.ent_coef,
                .vf_coef = a.vf_coef,
                .max_grad_norm = a.max_grad_norm,
                .normalize_obs = a.normalize_obs,
                .normalize_reward = a.normalize_reward,
                .target_return = a.target_return,
                .eval_interval = a.eval_interval,
                .eval_episodes = a.eval_episodes,
                .checkpoint_path = a.checkpoint_path,
                .checkpoint_interval = a.checkpoint_interval,
                .resume = a.resume,
                .verbose = a.verbose,
                .on_checkpoint = a.on_checkpoint,
                .metadata = a.metadata};
    return run_on_policy(factory, c, "a2c");
}

}  // namespace soma::rl
