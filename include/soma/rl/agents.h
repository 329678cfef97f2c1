// soma/rl/agents.h — DQN, REINFORCE (with a learned baseline), A2C and PPO on ordinary Soma
// modules, and their building blocks.
//
// train_* take an environment factory and a config aggregate, and return every finished
// training episode's return plus the evaluation history. Optionally they stop once a greedy
// evaluation over `eval_episodes` episodes reaches `target_return`. They checkpoint to
// safetensors (weights, optimizer, step counters, the environments' states and generators, the
// observation / reward normalisers, DQN's replay buffer; metadata names the algorithm, the
// environment and the network) and resume from it: a resumed run continues bit for bit like an
// uninterrupted one.
//
//     soma::rl::PPOConfig cfg{.total_steps = 200'000, .seed = 1, .target_return = 475};
//     auto result = soma::rl::train_ppo(soma::rl::env_factory("CartPole-v1"), cfg);
//     std::cout << result.episode_returns.back() << " " << result.steps_to_target;
//     auto policy = soma::rl::load_policy("ppo.safetensors");  // for evaluation / play
//     auto ev = soma::rl::evaluate(policy, soma::rl::env_factory("CartPole-v1"), 100, 0);
#pragma once

#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "soma/nn.h"
#include "soma/rl/env.h"

namespace soma::rl {

/// Linear(in, h0) -> act -> ... -> Linear(h_last, out). activation: "relu" or "tanh".
std::shared_ptr<nn::Sequential> mlp(int64_t in, const std::vector<int64_t>& hidden, int64_t out,
                                    const std::string& activation = "relu");

/// start -> end linearly over `duration` steps, then constant (epsilon, learning rates).
struct LinearSchedule {
    double start = 1.0, end = 0.05;
    int64_t duration = 1;
    double operator()(int64_t step) const;
};

/// A ring buffer of transitions (obs, action, reward, next_obs, terminated) for DQN.
/// next_obs of a truncated episode is its final observation; `terminated` alone cuts the
/// bootstrap.
class ReplayBuffer {
  public:
    ReplayBuffer(int64_t capacity, int64_t obs_size, int64_t action_size = 1);
    void add(const float* obs, const double* action, double reward, const float* next_obs,
             bool terminated);
    int64_t size() const { return size_; }
    int64_t capacity() const { return capacity_; }
    /// The stored transitions and the ring position, for checkpoints ("<prefix>obs", ...).
    std::vector<std::pair<std::string, Tensor>> state_dict(const std::string& prefix) const;
    /// Restores state_dict() (entries looked up by name in `tensors` with `prefix`).
    void load_state_dict(const std::vector<std::pair<std::string, Tensor>>& tensors,
                         const std::string& prefix);
    struct Batch {
        Tensor obs;         // [B, obs_size] float32
        Tensor actions;     // [B] int64 when action_size == 1 and discrete, else [B, k] float32
        Tensor rewards;     // [B] float32
        Tensor next_obs;    // [B, obs_size]
        Tensor terminated;  // [B] float32 (1 = terminal)
    };
    /// Uniform sample with replacement; throws ValueError when empty.
    Batch sample(int64_t batch_size, Generator& gen, bool discrete = true) const;

  private:
    int64_t capacity_, obs_size_, action_size_;
    int64_t size_ = 0, pos_ = 0;
    std::vector<float> obs_, next_obs_, rewards_, terminated_;
    std::vector<double> actions_;
};

/// Running mean and variance of vectors of `size` values (Chan et al.'s parallel update, as
/// Gymnasium's NormalizeObservation). normalize(x) = clip((x - mean) / sqrt(var + 1e-8), +-clip).
class RunningMeanStd {
  public:
    explicit RunningMeanStd(int64_t size = 1);
    /// Adds `rows` vectors of size() values.
    void update(const float* x, int64_t rows);
    void update(const Tensor& x);  // [B, size] (or [size])
    Tensor normalize(const Tensor& x, double clip = 10.0) const;
    int64_t size() const { return static_cast<int64_t>(mean.size()); }
    /// "<prefix>mean", "<prefix>var" (float64 [size]) and "<prefix>count" (float64 [1]).
    std::vector<std::pair<std::string, Tensor>> state_dict(const std::string& prefix) const;
    void load_state_dict(const Tensor& mean, const Tensor& var, const Tensor& count);
    std::vector<double> mean, var;
    double count = 1e-4;
};

struct Advantages {
    Tensor advantages;  // [T, N]
    Tensor returns;     // advantages + values
};
/// Generalised advantage estimation. rewards, values, dones: [T, N] (dones[t] = the episode
/// ended after step t, terminated or truncated; fold the bootstrap of a truncated step into its
/// reward); next_values: [N], the value of the observation after the last step.
///   delta_t = r_t + gamma V_{t+1} (1 - d_t) - V_t;  A_t = delta_t + gamma lambda (1 - d_t) A_{t+1}
Advantages compute_gae(const Tensor& rewards, const Tensor& values, const Tensor& dones,
                       const Tensor& next_values, double gamma, double lambda);

/// Actor and critic MLPs (tanh). Discrete: the actor gives logits [B, n]. Continuous: the actor
/// gives the Gaussian mean [B, k] and `log_std` [k] is a state-independent parameter.
class ActorCritic : public nn::Module {
  public:
    ActorCritic(int64_t obs_size, int64_t action_size, bool discrete,
                const std::vector<int64_t>& hidden = {64, 64});
    std::string type_name() const override { return "ActorCritic"; }
    Tensor value(const Tensor& obs);  // [B]
    Tensor actor_out(const Tensor& obs) { return (*actor)(obs); }
    struct Eval {
        Tensor log_prob;  // [B]
        Tensor entropy;   // [B]
        Tensor value;     // [B]
    };
    /// Log-probabilities of `actions` (int64 [B] or float [B, k]), entropies and values.
    Eval evaluate(const Tensor& obs, const Tensor& actions);
    bool discrete;
    std::shared_ptr<nn::Sequential> actor, critic;
    Tensor log_std;  // [k] (continuous only)
};

/// Called after every checkpoint the agent writes (e.g. to write metrics next to it).
struct TrainResult;
using CheckpointCallback = std::function<void(const TrainResult&)>;

/// Greedy (or sampling) action choice for a batch of observations [B, ...] -> actions
/// (int64 [B] or float [B, k]).
using Policy = std::function<Tensor(const Tensor& obs)>;

struct EvalResult {
    double mean_return = 0, std_return = 0;
    std::vector<double> returns;
    int64_t steps = 0;
};
/// Runs `episodes` episodes in parallel (one VectorEnv copy each, seeds seed, seed + 1, ...).
EvalResult evaluate(const Policy& policy, const EnvFactory& factory, int64_t episodes,
                    uint64_t seed = 0);

struct EvalPoint {
    int64_t step = 0;
    double mean_return = 0;
    double seconds = 0;
};

struct TrainResult {
    std::vector<double> episode_returns;   // every finished training episode, in order
    std::vector<int64_t> episode_lengths;  // its length
    std::vector<int64_t> episode_steps;    // env steps done when it finished
    std::vector<EvalPoint> evals;
    int64_t env_steps = 0;  // training env steps (all copies), including resumed ones
    int64_t updates = 0;    // gradient steps
    double seconds = 0;
    bool reached_target = false;
    int64_t steps_to_target = -1;  // env steps when the evaluation first reached target_return
    double seconds_to_target = NAN;
    Policy policy;  // greedy policy of the trained network
    std::shared_ptr<nn::Module> model;
};

struct DQNConfig {
    int64_t total_steps = 100'000;
    uint64_t seed = 0;
    // defaults: rl-baselines3-zoo's CartPole-v1 settings
    std::vector<int64_t> hidden = {256, 256};
    double lr = 2.3e-3;
    double gamma = 0.99;
    int64_t buffer_size = 100'000;
    int64_t batch_size = 64;
    int64_t learning_starts = 1'000;
    int64_t train_frequency = 256;        // env steps between training phases
    int64_t gradient_steps = 128;         // gradient steps in each phase
    int64_t target_update_interval = 10;  // env steps between target updates
    double tau = 1.0;                     // 1 = hard copy, < 1 = Polyak averaging
    double epsilon_start = 1.0, epsilon_end = 0.04;
    double exploration_fraction = 0.16;  // of total_steps
    bool double_dqn = true;
    double huber_delta = 1.0;
    double max_grad_norm = 10.0;  // 0 = off
    // evaluation / stopping
    double target_return = NAN;  // stop when a greedy evaluation reaches it (NaN = never)
    int64_t eval_interval = 5'000;
    int64_t eval_episodes = 100;
    // checkpoints
    std::string checkpoint_path = "";  // "" = none
    int64_t checkpoint_interval = 0;   // env steps (0 = only at the end)
    bool resume = false;
    bool verbose = false;  // progress lines on stderr
    CheckpointCallback on_checkpoint = nullptr;
    std::map<std::string, std::string> metadata = {};  // extra checkpoint metadata entries
};
TrainResult train_dqn(const EnvFactory& factory, const DQNConfig& cfg);

struct PPOConfig {
    int64_t total_steps = 500'000;
    uint64_t seed = 0;
    int64_t num_envs = 4;
    int64_t num_steps = 128;  // rollout length per copy
    std::vector<int64_t> hidden = {64, 64};
    double lr = 2.5e-4;
    bool anneal_lr = true;
    double gamma = 0.99, gae_lambda = 0.95;
    int64_t num_minibatches = 4;
    int64_t update_epochs = 4;
    bool norm_adv = true;
    double clip_coef = 0.2;
    bool clip_vloss = true;
    double ent_coef = 0.01, vf_coef = 0.5;
    double max_grad_norm = 0.5;
    double reward_scale = 1.0;      // rewards are multiplied by it for learning (not for reporting)
    bool normalize_obs = false;     // running mean / std of observations (saved, used by play)
    bool normalize_reward = false;  // divide rewards by the running std of discounted returns
    double target_return = NAN;
    int64_t eval_interval = 10'000;
    int64_t eval_episodes = 100;
    std::string checkpoint_path = "";
    int64_t checkpoint_interval = 0;  // env steps (0 = only at the end)
    bool resume = false;
    bool verbose = false;
    CheckpointCallback on_checkpoint = nullptr;
    std::map<std::string, std::string> metadata = {};  // extra checkpoint metadata entries
};
TrainResult train_ppo(const EnvFactory& factory, const PPOConfig& cfg);

/// Synchronous advantage actor-critic (Mnih et al. 2016, as Stable-Baselines3's A2C): num_envs
/// copies, num_steps-step rollouts, n-step (gae_lambda = 1) or GAE advantages, one gradient step
/// per rollout on  L = -mean(log pi(a|s) A) + vf_coef * 0.5 mean((V - R)^2) - ent_coef * H.
struct A2CConfig {
    int64_t total_steps = 500'000;
    uint64_t seed = 0;
    int64_t num_envs = 8;
    int64_t num_steps = 5;
    std::vector<int64_t> hidden = {64, 64};
    double lr = 7e-4;
    bool anneal_lr = false;
    double gamma = 0.99, gae_lambda = 1.0;
    bool norm_adv = false;
    double ent_coef = 0.0, vf_coef = 0.5;
    double max_grad_norm = 0.5;
    bool normalize_obs = false, normalize_reward = false;
    double target_return = NAN;
    int64_t eval_interval = 10'000;
    int64_t eval_episodes = 100;
    std::string checkpoint_path = "";
    int64_t checkpoint_interval = 0;
    bool resume = false;
    bool verbose = false;
    CheckpointCallback on_checkpoint = nullptr;
    std::map<std::string, std::string> metadata = {};  // extra checkpoint metadata entries
};
TrainResult train_a2c(const EnvFactory& factory, const A2CConfig& cfg);

/// REINFORCE (Williams 1992) with a learned state-value baseline: each update plays
/// `episodes_per_update` whole episodes (one per env copy), G_t = sum_k gamma^k r_{t+k}, and
/// L = -mean(log pi(a_t|s_t) (G_t - V(s_t))) + vf_coef * 0.5 mean((V - G)^2) - ent_coef * H.
/// No bootstrapping: the time limit ends the return like a terminal state.
struct ReinforceConfig {
    int64_t total_steps = 300'000;
    uint64_t seed = 0;
    int64_t episodes_per_update = 8;
    std::vector<int64_t> hidden = {64, 64};
    double lr = 1e-3;
    double gamma = 0.99;
    bool baseline = true;
    bool norm_adv = true;
    double ent_coef = 0.0, vf_coef = 0.5;
    double max_grad_norm = 0.5;
    bool normalize_obs = false;
    double target_return = NAN;
    int64_t eval_interval = 10'000;
    int64_t eval_episodes = 100;
    std::string checkpoint_path = "";
    int64_t checkpoint_interval = 0;
    bool resume = false;
    bool verbose = false;
    CheckpointCallback on_checkpoint = nullptr;
    std::map<std::string, std::string> metadata = {};  // extra checkpoint metadata entries
};
TrainResult train_reinforce(const EnvFactory& factory, const ReinforceConfig& cfg);

/// One PPO minibatch: observations [B, d], actions (int64 [B] or float [B, k]), and the
/// rollout's log-probabilities, values, advantages and returns ([B] each).
struct PPOBatch {
    Tensor obs, actions, old_log_prob, old_value, advantages, returns;
};
struct PPOLoss {
    Tensor loss;  // pg_loss - ent_coef * entropy + vf_coef * v_loss (differentiable)
    double pg_loss = 0, v_loss = 0, entropy = 0, approx_kl = 0, clip_fraction = 0;
};
/// The clipped PPO objective of `cfg` (clip_coef, clip_vloss, norm_adv, ent_coef, vf_coef).
PPOLoss ppo_loss(ActorCritic& ac, const PPOBatch& b, const PPOConfig& cfg);

/// A2C's loss on a batch (old_log_prob / old_value unused): advantages normalised when
/// `norm_adv`; pg_loss = -mean(log pi A), v_loss = 0.5 mean((V - R)^2).
PPOLoss a2c_loss(ActorCritic& ac, const PPOBatch& b, double ent_coef, double vf_coef,
                 bool norm_adv);
/// REINFORCE's loss: b.returns hold G_t; the advantage is G_t - V(s_t) (detached; normalised
/// when `norm_adv`), or G_t itself without a baseline (then the value loss is 0).
PPOLoss reinforce_loss(ActorCritic& ac, const PPOBatch& b, double ent_coef, double vf_coef,
                       bool baseline, bool norm_adv);
/// Discounted returns of whole episodes: rewards [T] and dones [T] (episode ended after t) ->
/// G [T] with G_t = r_t + gamma G_{t+1} (1 - d_t); the last step counts as an episode end.
std::vector<double> discounted_returns(const std::vector<double>& rewards,
                                       const std::vector<bool>& dones, double gamma);

/// Rebuilds the greedy policy stored in a checkpoint written by train_dqn / train_ppo.
Policy load_policy(const std::string& path);

}  // namespace soma::rl
