// DQN (Mnih et al. 2015) with Double DQN targets (van Hasselt et al. 2016):
//   y = r + gamma (1 - terminated) Q_target(s', argmax_a Q(s', a))   (double)
//   y = r + gamma (1 - terminated) max_a Q_target(s', a)             (plain)
//   loss = huber(Q(s, a) - y)
// One environment, epsilon-greedy exploration on a linear schedule, a uniform replay buffer and
// a target network refreshed every target_update_interval env steps (hard copy or Polyak).
// Checkpoints hold everything (networks, optimizer, replay buffer, the env's state, the running
// episode and the generator), so a resumed run continues bit for bit.
#include <cstdio>

#include "rl/checkpoint.h"
#include "rl/rl_internal.h"
#include "soma/autograd.h"
#include "soma/io.h"
#include "soma/ops.h"
#include "soma/optim.h"
#include "soma/rl/agents.h"

namespace soma::rl {

TrainResult train_dqn(const EnvFactory& factory, const DQNConfig& cfg) {
    auto env = factory();
    const Space& as = env->action_space();
    SOMA_CHECK_VALUE(as.is_discrete(), "train_dqn: ", env->name(),
                     " has a continuous action space ", as.to_string(),
                     "; DQN needs Discrete actions (use train_ppo)");
    SOMA_CHECK_VALUE(
        cfg.batch_size > 0 && cfg.buffer_size > 0 && cfg.train_frequency > 0 &&
            cfg.target_update_interval > 0,
        "train_dqn: batch_size, buffer_size, train_frequency and target_update_interval must "
        "be positive");
    const int64_t d = env->observation_space().flat_size(), n_actions = as.n;

    Generator gen(cfg.seed * 1000003ULL + 17);
    manual_seed(cfg.seed);  // network initialisation
    auto q = mlp(d, cfg.hidden, n_actions, "relu");
    auto target = mlp(d, cfg.hidden, n_actions, "relu");
    target->load_state_dict(q->state_dict());
    optim::Adam opt(q->parameters(), {.lr = cfg.lr});
    ReplayBuffer buffer(cfg.buffer_size, d);
    LinearSchedule eps{
        cfg.epsilon_start, cfg.epsilon_end,
        static_cast<int64_t>(cfg.exploration_fraction * static_cast<double>(cfg.total_steps))};

    TrainResult res;
    int64_t step = 0;
    double ep_return = 0;
    int64_t ep_len = 0;
    std::vector<float> obs(static_cast<size_t>(d)), next(static_cast<size_t>(d));
    detail::Checkpointer ck(cfg, "dqn", env->name());
    auto state = [&] {
        auto tensors = detail::prefixed("model.", q->state_dict());
        detail::append(tensors, detail::prefixed("target.", target->state_dict()));
        detail::append(tensors, detail::prefixed("optimizer.", opt.state_dict()));
        detail::append(tensors, buffer.state_dict("buffer."));
        Env::Snapshot snap = env->snapshot();
        tensors.emplace_back("env.state", from_vector<double>(snap.state));
        tensors.emplace_back("env.obs", from_vector<float>(obs));
        auto gs = gen.state(), es = snap.rng;
        tensors.emplace_back(
            "counters",
            from_vector<int64_t>({snap.elapsed, snap.done ? 1 : 0, static_cast<int64_t>(es[0]),
                                  static_cast<int64_t>(es[1]), static_cast<int64_t>(gs[0]),
                                  static_cast<int64_t>(gs[1]), ep_len}));
        tensors.emplace_back("ep_return", from_vector<double>({ep_return}));
        return tensors;
    };
    if (auto f = ck.resume(*q, opt, step, res)) {
        target->load_state_dict(detail::with_prefix(*f, "target."));
        buffer.load_state_dict(f->tensors, "buffer.");
        auto c = f->at("counters").to_vector<int64_t>();
        SOMA_CHECK_VALUE(c.size() == 7, "train_dqn: ", cfg.checkpoint_path, ": bad counters");
        Env::Snapshot snap{f->at("env.state").to_vector<double>(),
                           c[0],
                           c[1] != 0,
                           {static_cast<uint64_t>(c[2]), static_cast<uint64_t>(c[3])}};
        env->restore(snap);
        obs = f->at("env.obs").to_vector<float>();
        gen.set_state({static_cast<uint64_t>(c[4]), static_cast<uint64_t>(c[5])});
        ep_len = c[6];
        ep_return = f->at("ep_return").to_vector<double>()[0];
    } else {
        env->reset_into(obs.data(), cfg.seed);
    }
    res.policy = detail::greedy_q_policy(q);
    res.model = q;

    auto t0 = ck.start(step);

    while (step < cfg.total_steps) {
        // ---- act: epsilon-greedy
        double a;
        if (gen.next_double() < eps(step)) {
            a = static_cast<double>(gen.next_below(static_cast<uint64_t>(n_actions)));
        } else {
            NoGradGuard ng;
            Tensor o = from_vector<float>(obs, {1, d});
            a = static_cast<double>(argmax((*q)(o), 1).item<int64_t>());
        }
        StepResult r = env->step_into(&a, next.data());
        buffer.add(obs.data(), &a, r.reward, next.data(), r.terminated);
        ++step;
        ep_return += r.reward;
        ++ep_len;
        if (r.terminated || r.truncated) {
            res.episode_returns.push_back(ep_return);
            res.episode_lengths.push_back(ep_len);
            res.episode_steps.push_back(step);
            if (cfg.verbose && res.episode_returns.size() % 20 == 0)
                std::fprintf(stderr, "dqn step %lld episode %zu return %.1f eps %.3f\n",
                             static_cast<long long>(step), res.episode_returns.size(), ep_return,
                             eps(step));
            ep_return = 0;
            ep_len = 0;
            env->reset_into(obs.data());
        } else {
            obs.swap(next);
        }

        // ---- learn
        if (step > cfg.learning_starts && step % cfg.train_frequency == 0) {
            for (int64_t g = 0; g < cfg.gradient_steps; ++g) {
                auto b = buffer.sample(cfg.batch_size, gen);
                Tensor y;
                {
                    NoGradGuard ng;
                    Tensor next_q = (*target)(b.next_obs);  // [B, A]
                    Tensor best;
                    if (cfg.double_dqn) {
                        Tensor a_star = argmax((*q)(b.next_obs), 1, true);  // [B, 1]
                        best = gather(next_q, 1, a_star).squeeze(1);
                    } else {
                        best = amax(next_q, {1});
                    }
                    y = b.rewards + best * (1 - b.terminated) * cfg.gamma;
                }
                Tensor q_sa = gather((*q)(b.obs), 1, b.actions.unsqueeze(1)).squeeze(1);
                Tensor loss = nn::functional::huber_loss(q_sa, y, nn::functional::Reduction::mean,
                                                         cfg.huber_delta);
                opt.zero_grad();
                loss.backward();
                if (cfg.max_grad_norm > 0)
                    optim::clip_grad_norm_(q->parameters(), cfg.max_grad_norm);
                opt.step();
                ++res.updates;
            }
        }
        if (step % cfg.target_update_interval == 0) {
            NoGradGuard ng;
            auto src = q->parameters();
            auto dst = target->parameters();
            for (size_t i = 0; i < src.size(); ++i) {
                if (cfg.tau >= 1.0)
                    dst[i].copy_(src[i]);
                else
                    dst[i].mul_(1 - cfg.tau).add_(src[i], cfg.tau);
            }
        }

        // ---- evaluate / checkpoint
        if (cfg.eval_interval > 0 && step % cfg.eval_interval == 0) {
            q->eval();
            const bool reached =
                detail::evaluate_during_training("dqn", res, factory, cfg.eval_episodes, cfg.seed,
                                                 cfg.target_return, cfg.verbose, step, t0);
            q->train();
            if (reached) break;
        }
        if (ck.due(step)) ck.save(res, step, state);
    }
    ck.save(res, step, state);
    return res;
}

}  // namespace soma::rl
