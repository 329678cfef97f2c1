// Building blocks shared by the agents: MLPs, schedules, the replay buffer, GAE, the
// actor-critic module, parallel evaluation and loading a policy from a checkpoint.
#include "soma/rl/agents.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numbers>

#include "rl/checkpoint.h"
#include "rl/rl_internal.h"
#include "soma/autograd.h"
#include "soma/io.h"
#include "soma/ops.h"

namespace soma::rl {

std::shared_ptr<nn::Sequential> mlp(int64_t in, const std::vector<int64_t>& hidden, int64_t out,
                                    const std::string& activation) {
    SOMA_CHECK_VALUE(activation == "relu" || activation == "tanh",
                     "rl::mlp: unknown activation: got '", activation,
                     "', expected 'relu' or 'tanh'");
    auto seq = std::make_shared<nn::Sequential>();
    int64_t prev = in;
    for (int64_t h : hidden) {
        seq->emplace<nn::Linear>(nn::LinearOptions{.in = prev, .out = h});
        if (activation == "relu")
            seq->emplace<nn::ReLU>();
        else
            seq->emplace<nn::Tanh>();
        prev = h;
    }
    seq->emplace<nn::Linear>(nn::LinearOptions{.in = prev, .out = out});
    return seq;
}

double LinearSchedule::operator()(int64_t step) const {
    if (duration <= 0 || step >= duration) return end;
    double f = static_cast<double>(std::max<int64_t>(step, 0)) / static_cast<double>(duration);
    return start + f * (end - start);
}

// ---- ReplayBuffer --------------------------------------------------------------------------
ReplayBuffer::ReplayBuffer(int64_t capacity, int64_t obs_size, int64_t action_size)
    : capacity_(capacity), obs_size_(obs_size), action_size_(action_size) {
    SOMA_CHECK_VALUE(capacity > 0 && obs_size > 0 && action_size > 0,
                     "ReplayBuffer: capacity, obs_size and action_size must be positive: got ",
                     capacity, ", ", obs_size, ", ", action_size);
    auto c = static_cast<size_t>(capacity);
    obs_.resize(c * static_cast<size_t>(obs_size));
    next_obs_.resize(c * static_cast<size_t>(obs_size));
    actions_.resize(c * static_cast<size_t>(action_size));
    rewards_.resize(c);
    terminated_.resize(c);
}

void ReplayBuffer::add(const float* obs, const double* action, double reward, const float* next_obs,
                       bool terminated) {
    auto p = static_cast<size_t>(pos_);
    auto d = static_cast<size_t>(obs_size_), k = static_cast<size_t>(action_size_);
    std::copy(obs, obs + d, obs_.begin() + static_cast<std::ptrdiff_t>(p * d));
    std::copy(next_obs, next_obs + d, next_obs_.begin() + static_cast<std::ptrdiff_t>(p * d));
    std::copy(action, action + k, actions_.begin() + static_cast<std::ptrdiff_t>(p * k));
    rewards_[p] = static_cast<float>(reward);
    terminated_[p] = terminated ? 1.0f : 0.0f;
    pos_ = (pos_ + 1) % capacity_;
    size_ = std::min(size_ + 1, capacity_);
}

ReplayBuffer::Batch ReplayBuffer::sample(int64_t batch_size, Generator& gen, bool discrete) const {
    SOMA_CHECK_VALUE(size_ > 0, "ReplayBuffer.sample: the buffer is empty");
    SOMA_CHECK_VALUE(batch_size > 0, "ReplayBuffer.sample: batch_size must be positive: got ",
                     batch_size);
    auto d = obs_size_, k = action_size_;
    Batch b;
    b.obs = empty({batch_size, d});
    b.next_obs = empty({batch_size, d});
    b.rewards = empty({batch_size});
    b.terminated = empty({batch_size});
    bool int_actions = discrete && k == 1;
    b.actions = int_actions ? empty({batch_size}, {.dtype = DType::int64}) : empty({batch_size, k});
    float* o = b.obs.data_ptr<float>();
    float* no = b.next_obs.data_ptr<float>();
    float* r = b.rewards.data_ptr<float>();
    float* t = b.terminated.data_ptr<float>();
    for (int64_t i = 0; i < batch_size; ++i) {
        auto j = static_cast<int64_t>(gen.next_below(static_cast<uint64_t>(size_)));
        std::copy(obs_.begin() + j * d, obs_.begin() + (j + 1) * d, o + i * d);
        std::copy(next_obs_.begin() + j * d, next_obs_.begin() + (j + 1) * d, no + i * d);
        r[i] = rewards_[static_cast<size_t>(j)];
        t[i] = terminated_[static_cast<size_t>(j)];
        if (int_actions)
            b.actions.data_ptr<int64_t>()[i] =
                static_cast<int64_t>(actions_[static_cast<size_t>(j)]);
        else
            for (int64_t c = 0; c < k; ++c)
                b.actions.data_ptr<float>()[i * k + c] =
                    static_cast<float>(actions_[static_cast<size_t>(j * k + c)]);
    }
    return b;
}

std::vector<std::pair<std::string, Tensor>> ReplayBuffer::state_dict(
    const std::string& prefix) const {
    auto c = capacity_, d = obs_size_, k = action_size_;
    Tensor ring = from_vector<int64_t>({pos_, size_, capacity_, obs_size_, action_size_});
    return {{prefix + "obs", from_vector<float>(obs_, {c, d})},
            {prefix + "next_obs", from_vector<float>(next_obs_, {c, d})},
            {prefix + "actions", from_vector<double>(actions_, {c, k})},
            {prefix + "rewards", from_vector<float>(rewards_, {c})},
            {prefix + "terminated", from_vector<float>(terminated_, {c})},
            {prefix + "ring", ring}};
}

void ReplayBuffer::load_state_dict(const std::vector<std::pair<std::string, Tensor>>& tensors,
                                   const std::string& prefix) {
    auto get = [&](const std::string& name) {
        for (const auto& [k, v] : tensors)
            if (k == prefix + name) return v;
        SOMA_CHECK_VALUE(false, "ReplayBuffer.load_state_dict: no tensor '", prefix + name, "'");
        return Tensor();
    };
    auto ring = get("ring").to_vector<int64_t>();
    SOMA_CHECK_VALUE(
        ring.size() == 5 && ring[2] == capacity_ && ring[3] == obs_size_ && ring[4] == action_size_,
        "ReplayBuffer.load_state_dict: the saved buffer has capacity, obs_size, "
        "action_size ",
        ring.size() == 5 ? ring[2] : -1, ", ", ring.size() == 5 ? ring[3] : -1, ", ",
        ring.size() == 5 ? ring[4] : -1, ", expected ", capacity_, ", ", obs_size_, ", ",
        action_size_);
    pos_ = ring[0];
    size_ = ring[1];
    obs_ = get("obs").to_vector<float>();
    next_obs_ = get("next_obs").to_vector<float>();
    actions_ = get("actions").to_vector<double>();
    rewards_ = get("rewards").to_vector<float>();
    terminated_ = get("terminated").to_vector<float>();
}

// ---- RunningMeanStd ------------------------------------------------------------------------
RunningMeanStd::RunningMeanStd(int64_t size)
    : mean(static_cast<size_t>(size), 0.0), var(static_cast<size_t>(size), 1.0) {
    SOMA_CHECK_VALUE(size > 0, "RunningMeanStd: size must be positive: got ", size);
}

void RunningMeanStd::update(const float* x, int64_t rows) {
    if (rows <= 0) return;
    const size_t d = mean.size();
    // batch moments, then Chan's merge:
    //   delta = m_b - m;  m' = m + delta n_b / n';  M2' = var n + var_b n_b + delta^2 n n_b / n'
    std::vector<double> bm(d, 0.0), bv(d, 0.0);
    for (int64_t r = 0; r < rows; ++r)
        for (size_t j = 0; j < d; ++j) bm[j] += x[static_cast<size_t>(r) * d + j];
    for (size_t j = 0; j < d; ++j) bm[j] /= static_cast<double>(rows);
    for (int64_t r = 0; r < rows; ++r)
        for (size_t j = 0; j < d; ++j) {
            double e = x[static_cast<size_t>(r) * d + j] - bm[j];
            bv[j] += e * e;
        }
    const double nb = static_cast<double>(rows), total = count + nb;
    for (size_t j = 0; j < d; ++j) {
        bv[j] /= nb;
        double delta = bm[j] - mean[j];
        double m2 = var[j] * count + bv[j] * nb + delta * delta * count * nb / total;
        mean[j] += delta * nb / total;
        var[j] = m2 / total;
    }
    count = total;
}

void RunningMeanStd::update(const Tensor& x) {
    Tensor c = x.to(DType::float32).contiguous();
    SOMA_CHECK_SHAPE(c.numel() % size() == 0, "RunningMeanStd.update: ", c.numel(),
                     " values are not rows of ", size());
    update(c.data_ptr<float>(), c.numel() / size());
}

Tensor RunningMeanStd::normalize(const Tensor& x, double clip) const {
    Tensor c = x.to(DType::float32).contiguous().clone();
    SOMA_CHECK_SHAPE(c.numel() % size() == 0, "RunningMeanStd.normalize: ", c.numel(),
                     " values are not rows of ", size());
    float* p = c.data_ptr<float>();
    const auto d = static_cast<size_t>(size());
    for (size_t i = 0; i < static_cast<size_t>(c.numel()); ++i) {
        size_t j = i % d;
        double v = (p[i] - mean[j]) / std::sqrt(var[j] + 1e-8);
        p[i] = static_cast<float>(std::clamp(v, -clip, clip));
    }
    return c;
}

std::vector<std::pair<std::string, Tensor>> RunningMeanStd::state_dict(
    const std::string& prefix) const {
    return {{prefix + "mean", from_vector<double>(mean)},
            {prefix + "var", from_vector<double>(var)},
            {prefix + "count", from_vector<double>({count})}};
}

void RunningMeanStd::load_state_dict(const Tensor& m, const Tensor& v, const Tensor& c) {
    SOMA_CHECK_VALUE(m.numel() == size() && v.numel() == size() && c.numel() == 1,
                     "RunningMeanStd.load_state_dict: expected ", size(),
                     " means and variances and one count: got ", m.numel(), ", ", v.numel(), ", ",
                     c.numel());
    mean = m.to_vector<double>();
    var = v.to_vector<double>();
    count = c.to_vector<double>()[0];
}

std::vector<double> discounted_returns(const std::vector<double>& rewards,
                                       const std::vector<bool>& dones, double gamma) {
    SOMA_CHECK_VALUE(rewards.size() == dones.size(), "discounted_returns: ", rewards.size(),
                     " rewards but ", dones.size(), " done flags");
    std::vector<double> g(rewards.size());
    double next = 0;
    for (size_t t = rewards.size(); t-- > 0;) {
        if (dones[t] || t + 1 == rewards.size()) next = 0;
        next = rewards[t] + gamma * next;
        g[t] = next;
    }
    return g;
}

// ---- GAE -----------------------------------------------------------------------------------
Advantages compute_gae(const Tensor& rewards, const Tensor& values, const Tensor& dones,
                       const Tensor& next_values, double gamma, double lambda) {
    SOMA_CHECK_SHAPE(
        rewards.dim() == 2 && values.shape() == rewards.shape() && dones.shape() == rewards.shape(),
        "compute_gae: rewards, values and dones must share a [T, N] shape: got ", rewards.shape(),
        ", ", values.shape(), ", ", dones.shape());
    int64_t T = rewards.size(0), N = rewards.size(1);
    SOMA_CHECK_SHAPE(next_values.shape() == Shape{N}, "compute_gae: next_values: got ",
                     next_values.shape(), ", expected ", Shape{N});
    auto r = rewards.to_vector<double>(), v = values.to_vector<double>();
    auto d = dones.to_vector<double>(), nv = next_values.to_vector<double>();
    std::vector<float> adv(static_cast<size_t>(T * N)), ret(adv.size());
    for (int64_t n = 0; n < N; ++n) {
        double last = 0;
        for (int64_t t = T - 1; t >= 0; --t) {
            auto i = static_cast<size_t>(t * N + n);
            double next_v = t == T - 1 ? nv[static_cast<size_t>(n)] : v[i + static_cast<size_t>(N)];
            double nonterminal = 1.0 - d[i];
            double delta = r[i] + gamma * next_v * nonterminal - v[i];
            last = delta + gamma * lambda * nonterminal * last;
            adv[i] = static_cast<float>(last);
            ret[i] = static_cast<float>(last + v[i]);
        }
    }
    return {from_vector<float>(adv, {T, N}), from_vector<float>(ret, {T, N})};
}

// ---- ActorCritic ---------------------------------------------------------------------------
ActorCritic::ActorCritic(int64_t obs_size, int64_t action_size, bool discrete_actions,
                         const std::vector<int64_t>& hidden)
    : discrete(discrete_actions) {
    actor = register_module("actor", mlp(obs_size, hidden, action_size, "tanh"));
    critic = register_module("critic", mlp(obs_size, hidden, 1, "tanh"));
    {
        // Small last layers (as CleanRL's orthogonal init with gains 0.01 / 1): a near-uniform
        // initial policy and small initial values.
        NoGradGuard ng;
        auto& last = static_cast<nn::Linear&>((*actor)[actor->size() - 1]);
        last.weight.mul_(0.01);
        last.bias.zero_();
    }
    if (!discrete) log_std = register_parameter("log_std", zeros({action_size}));
}

Tensor ActorCritic::value(const Tensor& obs) { return (*critic)(obs).squeeze(-1); }

ActorCritic::Eval ActorCritic::evaluate(const Tensor& obs, const Tensor& actions) {
    Eval e;
    Tensor out = (*actor)(obs);
    if (discrete) {
        Tensor logp = log_softmax(out, -1);  // [B, n]
        e.log_prob = gather(logp, 1, actions.unsqueeze(1)).squeeze(1);
        e.entropy = -(exp(logp) * logp).sum({-1});
    } else {
        // log N(a; mu, sigma) = -(a - mu)^2 / (2 sigma^2) - log sigma - log(2 pi) / 2
        const double half_log_2pi = 0.5 * std::log(2 * std::numbers::pi);
        Tensor z = (actions - out) * exp(-log_std);
        e.log_prob = (z * z * -0.5 - log_std - half_log_2pi).sum({-1});
        // entropy of N(mu, sigma) = 1/2 + log(2 pi)/2 + log sigma per dimension
        e.entropy = (log_std + (0.5 + half_log_2pi)).sum().expand({obs.size(0)});
    }
    e.value = value(obs);
    return e;
}

// ---- evaluation ----------------------------------------------------------------------------
EvalResult evaluate(const Policy& policy, const EnvFactory& factory, int64_t episodes,
                    uint64_t seed) {
    SOMA_CHECK_VALUE(episodes > 0, "rl::evaluate: episodes must be positive: got ", episodes);
    VectorEnv venv(factory, episodes);
    Tensor obs = venv.reset(seed);
    EvalResult res;
    res.returns.assign(static_cast<size_t>(episodes), NAN);
    int64_t left = episodes;
    std::vector<bool> done(static_cast<size_t>(episodes), false);
    NoGradGuard ng;
    while (left > 0) {
        Tensor actions = policy(obs);
        VectorStep s = venv.step(actions);
        res.steps += left;
        for (const auto& ep : venv.finished()) {
            auto i = static_cast<size_t>(ep.env);
            if (done[i]) continue;
            done[i] = true;
            res.returns[i] = ep.ret;
            --left;
        }
        obs = s.observations;
    }
    double sum = 0, sq = 0;
    for (double r : res.returns) sum += r;
    res.mean_return = sum / static_cast<double>(episodes);
    for (double r : res.returns) sq += (r - res.mean_return) * (r - res.mean_return);
    res.std_return = std::sqrt(sq / static_cast<double>(episodes));
    return res;
}

// ---- policies ------------------------------------------------------------------------------
namespace detail {

Policy greedy_q_policy(std::shared_ptr<nn::Module> q) {
    return [q](const Tensor& obs) {
        NoGradGuard ng;
        return argmax((*q)(obs), 1);
    };
}

Policy greedy_ac_policy(std::shared_ptr<ActorCritic> ac, std::vector<double> low,
                        std::vector<double> high, std::shared_ptr<RunningMeanStd> obs_rms) {
    return [ac, low, high, obs_rms](const Tensor& obs) {
        NoGradGuard ng;
        Tensor out = ac->actor_out(obs_rms ? obs_rms->normalize(obs) : obs);
        if (ac->discrete) return argmax(out, 1);
        Tensor a = out.contiguous().clone();
        float* p = a.data_ptr<float>();
        int64_t k = a.size(1);
        for (int64_t i = 0; i < a.numel(); ++i) {
            auto j = static_cast<size_t>(i % k);
            p[i] = std::clamp(p[i], static_cast<float>(low[j]), static_cast<float>(high[j]));
        }
        return a;
    };
}

Tensor sample_actions(const Tensor& out, const ActorCritic& ac, const Space& as, Generator& gen,
                      float* stored, float* log_prob) {
    auto out_v = out.contiguous().to_vector<float>();
    const int64_t N = out.size(0);
    if (ac.discrete) {
        Tensor actions = empty({N}, {.dtype = DType::int64});
        const int64_t A = as.n;
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
            stored[i] = static_cast<float>(a);
            log_prob[i] = static_cast<float>(l[a] - mx - std::log(z));
        }
        return actions;
    }
    const int64_t k = as.flat_size();
    auto log_std = ac.log_std.to_vector<float>();
    Tensor actions = empty({N, k});
    float* ap = actions.data_ptr<float>();
    const double half_log_2pi = 0.5 * std::log(2 * std::numbers::pi);
    for (int64_t i = 0; i < N; ++i) {
        double lp = 0;
        for (int64_t j = 0; j < k; ++j) {
            auto u = static_cast<size_t>(j);
            // a = mu + sigma eps;  log N(a; mu, sigma) = -eps^2 / 2 - log sigma - log(2 pi) / 2
            double sd = std::exp(static_cast<double>(log_std[u]));
            double eps = gen.next_normal();
            double a = out_v[static_cast<size_t>(i * k + j)] + sd * eps;
            stored[i * k + j] = static_cast<float>(a);
            lp += -0.5 * eps * eps - log_std[u] - half_log_2pi;
            ap[i * k + j] = static_cast<float>(std::clamp(a, as.low[u], as.high[u]));
        }
        log_prob[i] = static_cast<float>(lp);
    }
    return actions;
}

}  // namespace detail

PPOLoss a2c_loss(ActorCritic& ac, const PPOBatch& b, double ent_coef, double vf_coef,
                 bool norm_adv) {
    Tensor adv = b.advantages;
    if (norm_adv && adv.numel() > 1) adv = (adv - adv.mean()) / (soma::std(adv) + 1e-8);
    auto e = ac.evaluate(b.obs, b.actions);
    // pg_loss = -mean(log pi(a|s) A);  v_loss = 0.5 mean((V - R)^2)
    Tensor pg_loss = -(e.log_prob * adv).mean();
    Tensor v_loss = square(e.value - b.returns).mean() * 0.5;
    Tensor entropy = e.entropy.mean();
    PPOLoss out;
    out.loss = pg_loss - entropy * ent_coef + v_loss * vf_coef;
    out.pg_loss = pg_loss.item<double>();
    out.v_loss = v_loss.item<double>();
    out.entropy = entropy.item<double>();
    return out;
}

PPOLoss reinforce_loss(ActorCritic& ac, const PPOBatch& b, double ent_coef, double vf_coef,
                       bool baseline, bool norm_adv) {
    auto e = ac.evaluate(b.obs, b.actions);
    // A = G - V(s) (baseline, no gradient through V) or G
    Tensor adv = baseline ? b.returns - e.value.detach() : b.returns;
    if (norm_adv && adv.numel() > 1) adv = (adv - adv.mean()) / (soma::std(adv) + 1e-8);
    Tensor pg_loss = -(e.log_prob * adv).mean();
    Tensor v_loss = baseline ? square(e.value - b.returns).mean() * 0.5 : zeros({});
    Tensor entropy = e.entropy.mean();
    PPOLoss out;
    out.loss = pg_loss - entropy * ent_coef + (baseline ? v_loss * vf_coef : v_loss);
    out.pg_loss = pg_loss.item<double>();
    out.v_loss = v_loss.item<double>();
    out.entropy = entropy.item<double>();
    return out;
}

Policy load_policy(const std::string& path) {
    SafetensorsFile f = load_safetensors(path);
    auto meta = [&](const std::string& k) {
        auto it = f.metadata.find(k);
        SOMA_CHECK_VALUE(it != f.metadata.end(), "rl::load_policy: ", path, ": metadata has no '",
                         k, "': not an rl checkpoint?");
        return it->second;
    };
    std::string algo = meta("algo");
    auto env = make_env(meta("env"));
    int64_t obs_size = env->observation_space().flat_size();
    const Space& as = env->action_space();
    auto hidden = detail::split_ints(meta("hidden"));
    if (algo == "dqn") {
        auto q = mlp(obs_size, hidden, as.n, "relu");
        q->load_state_dict(detail::with_prefix(f, "model."));
        return detail::greedy_q_policy(q);
    }
    SOMA_CHECK_VALUE(algo == "ppo" || algo == "a2c" || algo == "reinforce",
                     "rl::load_policy: ", path, ": unknown algo: got '", algo,
                     "', expected 'dqn', 'ppo', 'a2c' or 'reinforce'");
    auto ac = std::make_shared<ActorCritic>(obs_size, as.is_discrete() ? as.n : as.flat_size(),
                                            as.is_discrete(), hidden);
    ac->load_state_dict(detail::with_prefix(f, "model."));
    std::shared_ptr<RunningMeanStd> rms;
    if (f.contains("obs_rms.mean")) {
        rms = std::make_shared<RunningMeanStd>(obs_size);
        rms->load_state_dict(f.at("obs_rms.mean"), f.at("obs_rms.var"), f.at("obs_rms.count"));
    }
    return detail::greedy_ac_policy(ac, as.low, as.high, rms);
}

bool detail::evaluate_during_training(const char* algo, TrainResult& res, const EnvFactory& factory,
                                      int64_t episodes, uint64_t seed, double target, bool verbose,
                                      int64_t step, Clock::time_point t0) {
    auto ev = evaluate(res.policy, factory, episodes, 1'000'000 + seed);
    res.evals.push_back({step, ev.mean_return, since(t0)});
    if (verbose)
        std::fprintf(stderr, "%s step %lld eval mean return %.1f (%.1fs)\n", algo,
                     static_cast<long long>(step), ev.mean_return, since(t0));
    if (std::isnan(target) || ev.mean_return < target) return false;
    res.reached_target = true;
    res.steps_to_target = step;
    res.seconds_to_target = since(t0);
    return true;
}

}  // namespace soma::rl
