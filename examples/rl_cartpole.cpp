// rl_cartpole — trains DQN, PPO, A2C or REINFORCE on CartPole-v1 until a greedy evaluation over 100
// episodes reaches a mean return of 475, and reports the environment steps and wall time it took;
// or measures vectorised CartPole's environment steps per second.
//
//     rl_cartpole ppo 3        # seeds 0, 1, 2
//     rl_cartpole dqn 3
//     rl_cartpole a2c 1        # also: reinforce
//     rl_cartpole venv         # env steps/s of VectorEnv (N = 1, 8, 64)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "soma/ops.h"
#include "soma/rl.h"

namespace {

void report(const char* algo, uint64_t seed, const soma::rl::TrainResult& r) {
    double env_sps = static_cast<double>(r.env_steps) / r.seconds;
    std::printf(
        "{\"algo\": \"%s\", \"seed\": %llu, \"reached\": %s, \"steps_to_target\": %lld, "
        "\"seconds_to_target\": %.1f, \"episodes\": %zu, \"env_steps\": %lld, \"updates\": %lld, "
        "\"seconds\": %.1f, \"train_steps_per_s\": %.0f, \"last_eval\": %.1f}\n",
        algo, static_cast<unsigned long long>(seed), r.reached_target ? "true" : "false",
        static_cast<long long>(r.steps_to_target), r.seconds_to_target, r.episode_returns.size(),
        static_cast<long long>(r.env_steps), static_cast<long long>(r.updates), r.seconds, env_sps,
        r.evals.empty() ? 0.0 : r.evals.back().mean_return);
    std::fflush(stdout);
}

void bench_venv() {
    for (int64_t n : {1, 8, 64}) {
        soma::rl::VectorEnv venv(soma::rl::env_factory("CartPole-v1"), n);
        venv.reset(0);
        soma::Generator g(0);
        std::vector<int64_t> a(static_cast<size_t>(n));
        const int64_t iters = 200'000 / n;
        auto t0 = std::chrono::steady_clock::now();
        for (int64_t i = 0; i < iters; ++i) {
            for (auto& x : a) x = static_cast<int64_t>(g.next_below(2));
            venv.step(soma::from_vector<int64_t>(a));
        }
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf(
            "{\"bench\": \"venv_cartpole\", \"num_envs\": %lld, \"env_steps_per_s\": %.0f}\n",
            static_cast<long long>(n), static_cast<double>(iters * n) / s);
    }
    auto env = soma::rl::make_env("CartPole-v1");
    std::vector<float> obs(4);
    env->reset_into(obs.data(), 0);
    soma::Generator g(0);
    const int64_t steps = 2'000'000;
    auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < steps; ++i) {
        double a = static_cast<double>(g.next_below(2));
        auto r = env->step_into(&a, obs.data());
        if (r.terminated || r.truncated) env->reset_into(obs.data());
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("{\"bench\": \"raw_cartpole\", \"env_steps_per_s\": %.0f}\n",
                static_cast<double>(steps) / s);
}

}  // namespace

int main(int argc, char** argv) {
    std::string algo = argc > 1 ? argv[1] : "ppo";
    int seeds = argc > 2 ? std::atoi(argv[2]) : 1;
    int first = argc > 3 ? std::atoi(argv[3]) : 0;
    bool verbose = std::getenv("RL_VERBOSE") != nullptr;
    if (algo == "venv") {
        bench_venv();
        return 0;
    }
    for (int s = first; s < first + seeds; ++s) {
        auto seed = static_cast<uint64_t>(s);
        if (algo == "dqn") {
            soma::rl::DQNConfig cfg{.total_steps = 200'000,
                                    .seed = seed,
                                    .target_return = 475,
                                    .eval_interval = 2'000,
                                    .verbose = verbose};
            report("dqn", seed, soma::rl::train_dqn(soma::rl::env_factory("CartPole-v1"), cfg));
        } else if (algo == "a2c") {
            soma::rl::A2CConfig cfg{.total_steps = 500'000,
                                    .seed = seed,
                                    .target_return = 475,
                                    .eval_interval = 10'000,
                                    .verbose = verbose};
            report("a2c", seed, soma::rl::train_a2c(soma::rl::env_factory("CartPole-v1"), cfg));
        } else if (algo == "reinforce") {
            soma::rl::ReinforceConfig cfg{.total_steps = 500'000,
                                          .seed = seed,
                                          .target_return = 475,
                                          .eval_interval = 10'000,
                                          .verbose = verbose};
            report("reinforce", seed,
                   soma::rl::train_reinforce(soma::rl::env_factory("CartPole-v1"), cfg));
        } else {
            soma::rl::PPOConfig cfg{.total_steps = 500'000,
                                    .seed = seed,
                                    .target_return = 475,
                                    .eval_interval = 10'000,
                                    .verbose = verbose};
            report("ppo", seed, soma::rl::train_ppo(soma::rl::env_factory("CartPole-v1"), cfg));
        }
    }
    return 0;
}
