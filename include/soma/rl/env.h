// soma/rl/env.h — environments in the spirit of Gymnasium: spaces, Env, VectorEnv.
//
// An Env keeps its state in doubles and hands out float32 observations. reset(seed) re-seeds
// its soma::Generator (reset() without a seed continues the stream); step(action) returns the
// next observation, the reward and the two end flags: `terminated` (the task ended: pole fell,
// goal reached) and `truncated` (the time limit, max_episode_steps, was reached; both may be
// true). Discrete actions are int64 scalars (or a plain integer), Box actions float [k].
// step() after an episode ended without a reset() throws soma::ValueError.
//
// VectorEnv steps N copies together and resets finished copies automatically in the same step
// (Gymnasium 0.29 "same-step" autoreset): `observations` already hold the first observation of
// the next episode, `final_observations` the last observation of the finished one.
//
//     auto env = soma::rl::make_env("CartPole-v1");
//     auto obs = env->reset(42);                       // float32 [4]
//     auto r = env->step(1);                           // push right
//     soma::rl::VectorEnv venv([] { return soma::rl::make_env("CartPole-v1"); }, 8);
//     auto obs8 = venv.reset(0);                       // [8, 4]; copy i seeded 0 + i
//     auto s = venv.step(soma::zeros({8}, {.dtype = soma::DType::int64}));
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "soma/random.h"
#include "soma/tensor.h"

namespace soma::rl {

/// Discrete(n): actions 0..n-1. Box(shape, low, high): float vectors (low/high per element).
struct Space {
    enum class Kind { discrete, box };
    Kind kind = Kind::discrete;
    int64_t n = 0;
    Shape shape = {};
    std::vector<double> low = {}, high = {};

    static Space discrete(int64_t n);
    static Space box(Shape shape, std::vector<double> low, std::vector<double> high);
    bool is_discrete() const { return kind == Kind::discrete; }
    /// Elements of one sample (1 for Discrete).
    int64_t flat_size() const;
    /// A uniform sample: int64 scalar (Discrete) or float32 of `shape` (Box, finite bounds).
    Tensor sample(Generator& gen) const;
    bool contains(const Tensor& x) const;
    std::string to_string() const;  // "Discrete(2)", "Box([3], low=[...], high=[...])"
};

struct StepResult {
    Tensor observation;  // float32, observation_space().shape
    double reward = 0;
    bool terminated = false;
    bool truncated = false;
};

class Env {
  public:
    virtual ~Env() = default;

    virtual std::string name() const = 0;  // "CartPole-v1"
    const Space& observation_space() const { return observation_space_; }
    const Space& action_space() const { return action_space_; }
    int64_t max_episode_steps() const { return max_episode_steps_; }
    int64_t elapsed_steps() const { return elapsed_; }

    /// Starts an episode; a seed re-seeds the environment's generator first.
    Tensor reset(std::optional<uint64_t> seed = std::nullopt);
    StepResult step(const Tensor& action);
    StepResult step(int64_t action);  // Discrete spaces

    // ---- raw interface (no tensors; used by VectorEnv and the agents) -------------------------
    /// Starts an episode, writes the observation (flat_size floats) to obs.
    void reset_into(float* obs, std::optional<uint64_t> seed = std::nullopt);
    /// One step with `action` (flat_size doubles; a Discrete index as a double).
    StepResult step_into(const double* action, float* obs);

    /// The physical state (e.g. CartPole: x, x_dot, theta, theta_dot) and its setter (for tests
    /// and renderers); set_state starts a fresh episode (elapsed steps 0).
    virtual std::vector<double> state() const = 0;
    void set_state(const std::vector<double>& s);
    Generator& generator() { return gen_; }
    /// Writes the observation of the current state (flat_size floats).
    void observe_into(float* obs) const { observe(obs); }

    /// Everything needed to continue exactly where the env is (checkpoints): physical state,
    /// time step, whether the episode has ended, and the generator's state.
    struct Snapshot {
        std::vector<double> state;
        int64_t elapsed = 0;
        bool done = true;
        std::array<uint64_t, 2> rng{};
    };
    Snapshot snapshot() const { return {state(), elapsed_, done_, gen_.state()}; }
    void restore(const Snapshot& s);

  protected:
    Env(Space observation_space, Space action_space, int64_t max_episode_steps);
    /// Samples the initial state from gen_.
    virtual void reset_state() = 0;
    virtual void assign_state(const std::vector<double>& s) = 0;
    /// Advances the dynamics; returns the reward and sets `terminated`.
    virtual double advance(const double* action, bool& terminated) = 0;
    /// Writes the observation of the current state.
    virtual void observe(float* obs) const = 0;

    Generator gen_{0};

  private:
    Space observation_space_, action_space_;
    int64_t max_episode_steps_ = 0;
    int64_t elapsed_ = 0;
    bool done_ = true;
};

using EnvFactory = std::function<std::unique_ptr<Env>()>;

/// "CartPole-v1", "Acrobot-v1", "MountainCar-v0", "Pendulum-v1"; throws ValueError listing them.
std::unique_ptr<Env> make_env(const std::string& name);
std::vector<std::string> env_names();
/// A factory for make_env(name).
EnvFactory env_factory(const std::string& name);

struct VectorStep {
    Tensor observations;        // [N, ...] float32; after autoreset for finished copies
    Tensor rewards;             // [N] float32
    Tensor terminated;          // [N] bool
    Tensor truncated;           // [N] bool
    Tensor final_observations;  // [N, ...] last observation of each copy before any reset
};

/// N copies of an environment stepped together with same-step autoreset. Also keeps running
/// episode statistics of every copy.
class VectorEnv {
  public:
    VectorEnv(const EnvFactory& factory, int64_t num_envs);

    int64_t num_envs() const { return static_cast<int64_t>(envs_.size()); }
    const Space& observation_space() const { return envs_.front()->observation_space(); }
    const Space& action_space() const { return envs_.front()->action_space(); }
    Env& env(int64_t i) { return *envs_.at(static_cast<size_t>(i)); }

    /// Resets all copies; copy i gets seed + i when a seed is given. Returns [N, ...].
    Tensor reset(std::optional<uint64_t> seed = std::nullopt);
    /// actions: int64 [N] (Discrete) or float [N, k] (Box).
    VectorStep step(const Tensor& actions);

    struct Episode {
        int64_t env = 0;
        double ret = 0;
        int64_t length = 0;
    };
    /// Episodes finished by the last step() (in copy order).
    const std::vector<Episode>& finished() const { return finished_; }

    /// Every copy's snapshot plus its running episode return and length, as two tensors for a
    /// checkpoint: "<prefix>real" float64 [N, S + 1] and "<prefix>int" int64 [N, 5].
    std::vector<std::pair<std::string, Tensor>> state_dict(const std::string& prefix) const;
    /// Restores state_dict(); returns the current observations [N, ...]. ValueError when the
    /// tensors do not fit this VectorEnv.
    Tensor load_state_dict(const Tensor& real, const Tensor& ints);

  private:
    std::vector<std::unique_ptr<Env>> envs_;
    std::vector<double> returns_;
    std::vector<int64_t> lengths_;
    std::vector<Episode> finished_;
};

}  // namespace soma::rl
