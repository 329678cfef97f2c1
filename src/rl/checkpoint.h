// The checkpoint every agent writes and resumes from (not installed). A file holds the agent's
// tensors ("model.*" and "optimizer.*" first, then its own state) and the metadata entries
//   algo, env, hidden      what load_policy reads to rebuild the network
//   env_steps, seconds, updates [, iteration] [, num_envs]   the counters a resumed run continues
// plus the caller's `metadata` (the fixed keys win).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "rl/rl_internal.h"
#include "soma/optim.h"

namespace soma::rl::detail {

/// "1,2,3" <-> {1, 2, 3} (the "hidden" metadata entry).
std::string join_ints(const std::vector<int64_t>& v);
std::vector<int64_t> split_ints(const std::string& s);
/// Metadata entry `key` as an integer; ValueError naming the checkpoint when it is missing.
int64_t meta_int(const SafetensorsFile& f, const std::string& key, const std::string& path);
/// sd's entries renamed prefix + name (contiguous, for save_safetensors).
nn::NamedTensors prefixed(const std::string& prefix, const nn::NamedTensors& sd);
/// The entries of f whose names start with prefix, the prefix removed.
nn::NamedTensors with_prefix(const SafetensorsFile& f, const std::string& prefix);

class Checkpointer {
  public:
    /// `cfg` is an agent's config (checkpoint_path, checkpoint_interval, resume, metadata,
    /// on_checkpoint); num_envs > 0 is recorded and must match on resume.
    template <class Config>
    Checkpointer(const Config& cfg, std::string algo, std::string env, int64_t num_envs = 0)
        : path_(cfg.checkpoint_path),
          algo_(std::move(algo)),
          env_(std::move(env)),
          hidden_(join_ints(cfg.hidden)),
          interval_(cfg.checkpoint_interval),
          num_envs_(num_envs),
          resume_(cfg.resume),
          metadata_(cfg.metadata),
          on_checkpoint_(cfg.on_checkpoint) {}

    /// When resuming and the file exists: checks that it was written by the same algorithm on
    /// the same environment (ValueError otherwise), restores model.* and optimizer.*, `step`
    /// (env_steps), res.updates and the seconds already spent, and returns the file for the
    /// agent's own state. Otherwise nullopt.
    std::optional<SafetensorsFile> resume(nn::Module& model, optim::Optimizer& opt, int64_t& step,
                                          TrainResult& res);

    /// Starts this run's clock and the checkpoint interval at `step` (after resume()); returns
    /// the start time.
    Clock::time_point start(int64_t step);
    /// True (once per interval) when checkpoint_interval env steps have passed since the last
    /// periodic checkpoint; always false when checkpoint_interval is 0.
    bool due(int64_t step);
    /// Sets res.env_steps and res.seconds (including the resumed runs'); then, with a checkpoint
    /// path, writes the tensors of `state` (called only then) and the metadata (iteration >= 0
    /// is recorded) and calls on_checkpoint(res).
    void save(TrainResult& res, int64_t step, const std::function<nn::NamedTensors()>& state,
              int64_t iteration = -1);

  private:
    std::string path_, algo_, env_, hidden_;
    int64_t interval_, num_envs_;
    bool resume_;
    std::map<std::string, std::string> metadata_;
    CheckpointCallback on_checkpoint_;
    double seconds0_ = 0;  // wall time of the runs this one resumes
    Clock::time_point t0_ = Clock::now();
    int64_t last_ = 0;
};

/// model.* then optimizer.*, the first tensors of every agent's checkpoint.
nn::NamedTensors model_and_optimizer(const nn::Module& model, const optim::Optimizer& opt);
/// Appends `more` to `to`.
void append(nn::NamedTensors& to, const nn::NamedTensors& more);

}  // namespace soma::rl::detail
