// Helpers shared by the agent sources (not installed).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "soma/io.h"
#include "soma/rl/agents.h"

namespace soma::rl::detail {

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
