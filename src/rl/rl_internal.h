// Helpers shared by the agent sources (not installed).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "soma/io.h"
#include "soma/rl/agents.h"

namespace soma::rl::detail {

using Clock = std::chrono::steady_clock;
inline double since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

/// One greedy evaluation during training (shared by DQN and PPO): runs `episodes` episodes of
/// res.policy, appends the point to res.evals, prints it when verbose, and returns true (filling
/// steps_to_target / seconds_to_target) once the mean return reaches `target` (NaN = never).
bool evaluate_during_training(const char* algo, TrainResult& res, const EnvFactory& factory,
                              int64_t episodes, uint64_t seed, double target, bool verbose,
                              int64_t step, Clock::time_point t0);

Policy greedy_q_policy(std::shared_ptr<nn::Module> q);
/// Greedy actions of the actor (argmax / the Gaussian mean clipped to the bounds), observations
/// normalised by obs_rms when given.
Policy greedy_ac_policy(std::shared_ptr<ActorCritic> ac, std::vector<double> low,
                        std::vector<double> high, std::shared_ptr<RunningMeanStd> obs_rms = {});

/// Samples one action per row of the actor's output `out` ([N, A] logits or [N, k] Gaussian
/// means with log_std): writes env actions (`env_actions`, clipped to the Box bounds), the
/// unclipped actions for the rollout (`stored`, k floats per row) and their log-probabilities.
Tensor sample_actions(const Tensor& out, const ActorCritic& ac, const Space& as, Generator& gen,
                      float* stored, float* log_prob);

}  // namespace soma::rl::detail
