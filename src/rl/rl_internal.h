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

std::string join_ints(const std::vector<int64_t>& v);
std::vector<int64_t> split_ints(const std::string& s);
Policy greedy_q_policy(std::shared_ptr<nn::Module> q);
Policy greedy_ac_policy(std::shared_ptr<ActorCritic> ac, std::vector<double> low,
                        std::vector<double> high);
/// sd's entries renamed prefix + name (contiguous, for save_safetensors).
nn::NamedTensors prefixed(const std::string& prefix, const nn::NamedTensors& sd);
/// The entries of f whose names start with prefix, the prefix removed.
nn::NamedTensors with_prefix(const SafetensorsFile& f, const std::string& prefix);

}  // namespace soma::rl::detail
