// PPO (Schulman et al. 2017), following CleanRL's ppo.py / ppo_continuous_action.py:
// num_envs copies collect num_steps each; GAE(gamma, lambda) advantages; update_epochs passes
// over shuffled minibatches of
//   L = -min(r A, clip(r, 1 - c, 1 + c) A) + vf_coef * 0.5 * (V - R)^2 (clipped) - ent_coef * H
// with r = exp(log pi(a|s) - log pi_old(a|s)), normalised advantages, gradient clipping and a
// linearly annealed learning rate. A truncated episode's last reward gets gamma V(final obs)
// added so that the time limit does not look like a terminal state.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numbers>
#include <numeric>

#include "rl/rl_internal.h"
#include "soma/autograd.h"
#include "soma/io.h"
#include "soma/ops.h"
#include "soma/optim.h"
#include "soma/rl/agents.h"

namespace soma::rl {

namespace {
using detail::Clock;
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

TrainResult train_ppo(const EnvFactory& factory, const PPOConfig& cfg) {
    SOMA_CHECK_VALUE(cfg.num_envs > 0 && cfg.num_steps > 0 && cfg.num_minibatches > 0,
                     "train_ppo: num_envs, num_steps and num_minibatches must be positive");
    VectorEnv venv(factory, cfg.num_envs);
    const Space& as = venv.action_space();
    const bool discrete = as.is_discrete();
    const int64_t N = cfg.num_envs, T = cfg.num_steps, d = venv.observation_space().flat_size();
    const int64_t k = discrete ? 1 : as.flat_size();
    const int64_t batch = N * T, minibatch = batch / cfg.num_minibatches;
    SOMA_CHECK_VALUE(minibatch > 0, "train_ppo: num_envs * num_steps (", batch,
                     ") is smaller than num_minibatches (", cfg.num_minibatches, ")");
    const int64_t iterations = std::max<int64_t>(1, cfg.total_steps / batch);

    Generator gen(cfg.seed * 1000003ULL + 29);
    manual_seed(cfg.seed);
    auto ac = std::make_shared<ActorCritic>(d, discrete ? as.n : k, discrete, cfg.hidden);
    optim::Adam opt(ac->parameters(), {.lr = cfg.lr, .eps = 1e-5});

    TrainResult res;
    int64_t step = 0, iter0 = 0;
    std::string env_name = venv.env(0).name();
    auto save = [&] {
        if (cfg.checkpoint_path.empty()) return;
        auto tensors = detail::prefixed("model.", ac->state_dict());
        for (auto& e : detail::prefixed("optimizer.", opt.state_dict())) tensors.push_back(e);
        save_safetensors(cfg.checkpoint_path, tensors,
                         {{"algo", "ppo"},
                          {"env", env_name},
                          {"hidden", detail::join_ints(cfg.hidden)},
                          {"env_steps", std::to_string(step)},
                          {"updates", std::to_string(res.updates)}});
    };
    if (cfg.resume && !cfg.checkpoint_path.empty() &&
        std::filesystem::exists(cfg.checkpoint_path)) {
        auto f = load_safetensors(cfg.checkpoint_path);
        ac->load_state_dict(detail::with_prefix(f, "model."));
        opt.load_state_dict(detail::with_prefix(f, "optimizer."));
        step = std::stoll(f.metadata.at("env_steps"));
        res.updates = std::stoll(f.metadata.at("updates"));
        iter0 = step / batch;
        gen.manual_seed(cfg.seed * 1000003ULL + 29 + static_cast<uint64_t>(step));
    }
    res.policy = detail::greedy_ac_policy(ac, as.low, as.high);
    res.model = ac;

    // rollout storage, [T, N, ...] flattened row-major
    std::vector<float> obs_buf(static_cast<size_t>(batch * d)),
        act_buf(static_cast<size_t>(batch * k));
    std::vector<float> logp_buf(static_cast<size_t>(batch)), val_buf(static_cast<size_t>(batch));
    std::vector<float> rew_buf(static_cast<size_t>(batch)), done_buf(static_cast<size_t>(batch));

    auto t0 = Clock::now();
    Tensor obs = venv.reset(cfg.seed * 7919 + static_cast<uint64_t>(step));
    int64_t next_eval =
        cfg.eval_interval > 0 ? (step / cfg.eval_interval + 1) * cfg.eval_interval : INT64_MAX;
    int64_t last_ckpt = step;
    std::vector<double> action_vals(static_cast<size_t>(N * k));

    for (int64_t iter = iter0; iter < iterations; ++iter) {
        if (cfg.anneal_lr)
            opt.set_lr(cfg.lr *
                       (1.0 - static_cast<double>(iter) / static_cast<double>(iterations)));
        // ---- collect a rollout
        for (int64_t t = 0; t < T; ++t) {
            Tensor actions;
            {
                NoGradGuard ng;
                Tensor out = ac->actor_out(obs);  // [N, A] logits or [N, k] means
                Tensor value = ac->value(obs);    // [N]
                auto out_v = out.contiguous().to_vector<float>();
                auto val_v = value.to_vector<float>();
                std::copy(obs.data_ptr<float>(), obs.data_ptr<float>() + N * d,
                          obs_buf.begin() + t * N * d);
                if (discrete) {
                    actions = empty({N}, {.dtype = DType::int64});
                    int64_t A = as.n;
                    for (int64_t i = 0; i < N; ++i) {
                        // sample from softmax(logits) by inversion
                        const float* l = out_v.data() + i * A;
                        double mx = *std::max_element(l, l + A), z = 0;
                        for (int64_t j = 0; j < A; ++j) z += std::exp(l[j] - mx);
                        double u = gen.next_double() * z, c = 0;
                        int64_t a = A - 1;
                        for (int64_t j = 0; j < A; ++j) {
                            c += std::exp(l[j] - mx);
                            if (u < c) {
                                a = j;
                                break;
                            }
                        }
                        actions.data_ptr<int64_t>()[i] = a;
                        act_buf[static_cast<size_t>(t * N + i)] = static_cast<float>(a);
                        logp_buf[static_cast<size_t>(t * N + i)] =
                            static_cast<float>(l[a] - mx - std::log(z));
                        action_vals[static_cast<size_t>(i)] = static_cast<double>(a);
                    }
                } else {
                    auto log_std = ac->log_std.to_vector<float>();
                    actions = empty({N, k});
                    float* ap = actions.data_ptr<float>();
                    const double half_log_2pi = 0.5 * std::log(2 * std::numbers::pi);
                    for (int64_t i = 0; i < N; ++i) {
                        double lp = 0;
                        for (int64_t j = 0; j < k; ++j) {
                            double sd =
                                std::exp(static_cast<double>(log_std[static_cast<size_t>(j)]));
                            double eps = gen.next_normal();
                            double a = out_v[static_cast<size_t>(i * k + j)] + sd * eps;
                            act_buf[static_cast<size_t>((t * N + i) * k + j)] =
                                static_cast<float>(a);
                            lp += -0.5 * eps * eps - log_std[static_cast<size_t>(j)] - half_log_2pi;
                            auto lo = as.low[static_cast<size_t>(j)],
                                 hi = as.high[static_cast<size_t>(j)];
                            ap[i * k + j] = static_cast<float>(std::clamp(a, lo, hi));
                        }
                        logp_buf[static_cast<size_t>(t * N + i)] = static_cast<float>(lp);
                    }
                }
                std::copy(val_v.begin(), val_v.end(), val_buf.begin() + t * N);
            }
            VectorStep s = venv.step(actions);
            step += N;
            const float* rw = s.rewards.data_ptr<float>();
            const bool* term = s.terminated.data_ptr<bool>();
            const bool* trunc = s.truncated.data_ptr<bool>();
            std::vector<int64_t> truncated_only;
            for (int64_t i = 0; i < N; ++i) {
                auto j = static_cast<size_t>(t * N + i);
                rew_buf[j] = rw[i] * static_cast<float>(cfg.reward_scale);
                done_buf[j] = (term[i] || trunc[i]) ? 1.0f : 0.0f;
                if (trunc[i] && !term[i]) truncated_only.push_back(i);
            }
            if (!truncated_only.empty()) {
                // bootstrap through the time limit: r += gamma V(final observation)
                NoGradGuard ng;
                auto fv = ac->value(s.final_observations).to_vector<float>();
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
            next_value = ac->value(obs).contiguous();
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
        std::vector<int64_t> idx(static_cast<size_t>(batch));
        for (int64_t epoch = 0; epoch < cfg.update_epochs; ++epoch) {
            std::iota(idx.begin(), idx.end(), 0);
            for (int64_t i = batch - 1; i > 0; --i)  // Fisher-Yates with the agent's generator
                std::swap(idx[static_cast<size_t>(i)],
                          idx[gen.next_below(static_cast<uint64_t>(i + 1))]);
            for (int64_t start = 0; start + minibatch <= batch; start += minibatch) {
                std::vector<int64_t> mb_idx(idx.begin() + start, idx.begin() + start + minibatch);
                Tensor mi = from_vector<int64_t>(mb_idx);
                PPOBatch mb{index_select(b_obs, 0, mi),  index_select(b_act, 0, mi),
                            index_select(b_logp, 0, mi), index_select(b_val, 0, mi),
                            index_select(b_adv, 0, mi),  index_select(b_ret, 0, mi)};
                Tensor loss = ppo_loss(*ac, mb, cfg).loss;
                opt.zero_grad();
                loss.backward();
                if (cfg.max_grad_norm > 0)
                    optim::clip_grad_norm_(ac->parameters(), cfg.max_grad_norm);
                opt.step();
                ++res.updates;
            }
        }
        if (cfg.verbose && !res.episode_returns.empty())
            std::fprintf(stderr, "ppo iter %lld step %lld last return %.1f (%.1fs)\n",
                         static_cast<long long>(iter + 1), static_cast<long long>(step),
                         res.episode_returns.back(), since(t0));

        // ---- evaluate / checkpoint
        if (step >= next_eval) {
            next_eval += cfg.eval_interval;
            if (detail::evaluate_during_training("ppo", res, factory, cfg.eval_episodes, cfg.seed,
                                                 cfg.target_return, cfg.verbose, step, t0))
                break;
        }
        if (cfg.checkpoint_interval > 0 && step - last_ckpt >= cfg.checkpoint_interval) {
            save();
            last_ckpt = step;
        }
    }
    res.env_steps = step;
    res.seconds = since(t0);
    save();
    return res;
}

}  // namespace soma::rl
