// Env base (time limit, episode bookkeeping, tensor <-> raw conversion), spaces, make_env and
// VectorEnv. The dynamics live in classic_control.cpp.
#include "soma/rl/env.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "soma/rl/classic_control.h"

namespace soma::rl {

// ---- Space ---------------------------------------------------------------------------------
Space Space::discrete(int64_t n) {
    SOMA_CHECK_VALUE(n > 0, "Space::discrete: n must be positive: got ", n, ", expected >= 1");
    Space s;
    s.kind = Kind::discrete;
    s.n = n;
    return s;
}

Space Space::box(Shape shape, std::vector<double> low, std::vector<double> high) {
    Space s;
    s.kind = Kind::box;
    s.shape = std::move(shape);
    int64_t n = s.flat_size();
    SOMA_CHECK_VALUE(
        static_cast<int64_t>(low.size()) == n && static_cast<int64_t>(high.size()) == n,
        "Space::box: bounds have ", low.size(), " and ", high.size(), " elements, expected ", n);
    s.low = std::move(low);
    s.high = std::move(high);
    return s;
}

int64_t Space::flat_size() const {
    if (is_discrete()) return 1;
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

Tensor Space::sample(Generator& gen) const {
    if (is_discrete())
        return scalar_tensor(static_cast<int64_t>(gen.next_below(static_cast<uint64_t>(n))),
                             {.dtype = DType::int64});
    std::vector<float> v(low.size());
    for (size_t i = 0; i < v.size(); ++i)
        v[i] = static_cast<float>(low[i] + (high[i] - low[i]) * gen.next_double());
    return from_vector<float>(v, shape);
}

bool Space::contains(const Tensor& x) const {
    if (!x.defined()) return false;
    if (is_discrete()) {
        if (x.numel() != 1 || x.is_floating_point()) return false;
        auto a = x.item<int64_t>();
        return a >= 0 && a < n;
    }
    if (x.shape() != shape) return false;
    auto v = x.to_vector<double>();
    for (size_t i = 0; i < v.size(); ++i)
        if (!(v[i] >= low[i] && v[i] <= high[i])) return false;
    return true;
}

std::string Space::to_string() const {
    std::ostringstream os;
    if (is_discrete()) {
        os << "Discrete(" << n << ")";
        return os.str();
    }
    auto list = [&](const std::vector<double>& v) {
        os << "[";
        for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
        os << "]";
    };
    os << "Box([";
    for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
    os << "], low=";
    list(low);
    os << ", high=";
    list(high);
    os << ")";
    return os.str();
}

// ---- Env -----------------------------------------------------------------------------------
Env::Env(Space observation_space, Space action_space, int64_t max_episode_steps)
    : observation_space_(std::move(observation_space)),
      action_space_(std::move(action_space)),
      max_episode_steps_(max_episode_steps) {}

void Env::reset_into(float* obs, std::optional<uint64_t> seed) {
    if (seed) gen_.manual_seed(*seed);
    reset_state();
    elapsed_ = 0;
    done_ = false;
    observe(obs);
}

Tensor Env::reset(std::optional<uint64_t> seed) {
    Tensor obs = empty(observation_space_.shape);
    reset_into(obs.data_ptr<float>(), seed);
    return obs;
}

void Env::set_state(const std::vector<double>& s) {
    SOMA_CHECK_VALUE(s.size() == state().size(), name(), ".set_state: state has ", s.size(),
                     " values, expected ", state().size());
    assign_state(s);
    elapsed_ = 0;
    done_ = false;
}

void Env::restore(const Snapshot& s) {
    SOMA_CHECK_VALUE(s.state.size() == state().size(), name(), ".restore: state has ",
                     s.state.size(), " values, expected ", state().size());
    assign_state(s.state);
    elapsed_ = s.elapsed;
    done_ = s.done;
    gen_.set_state(s.rng);
}

StepResult Env::step_into(const double* action, float* obs) {
    SOMA_CHECK_VALUE(!done_, name(),
                     ".step: the episode has ended (or never started): call reset() first");
    if (action_space_.is_discrete()) {
        double a = action[0];
        SOMA_CHECK_VALUE(a >= 0 && a < static_cast<double>(action_space_.n) && a == std::floor(a),
                         name(), ".step: invalid action: got ", a, ", expected an integer in [0, ",
                         action_space_.n, ")");
    }
    StepResult r;
    r.reward = advance(action, r.terminated);
    ++elapsed_;
    r.truncated = max_episode_steps_ > 0 && elapsed_ >= max_episode_steps_;
    done_ = r.terminated || r.truncated;
    observe(obs);
    return r;
}

StepResult Env::step(const Tensor& action) {
    int64_t k = action_space_.flat_size();
    SOMA_CHECK_SHAPE(action.defined() && action.numel() == k, name(), ".step: action has ",
                     action.defined() ? action.numel() : 0, " elements, expected ", k, " for ",
                     action_space_.to_string());
    if (action_space_.is_discrete())
        SOMA_CHECK_DTYPE(!action.is_floating_point(), name(),
                         ".step: a Discrete action must be an integer tensor: got ",
                         dtype_name(action.dtype()));
    std::vector<double> a = action.to_vector<double>();
    Tensor obs = empty(observation_space_.shape);
    StepResult r = step_into(a.data(), obs.data_ptr<float>());
    r.observation = obs;
    return r;
}

StepResult Env::step(int64_t action) {
    SOMA_CHECK_VALUE(action_space_.is_discrete(), name(),
                     ".step: an integer action needs a Discrete action space, got ",
                     action_space_.to_string());
    double a = static_cast<double>(action);
    Tensor obs = empty(observation_space_.shape);
    StepResult r = step_into(&a, obs.data_ptr<float>());
    r.observation = obs;
    return r;
}

// ---- registry ------------------------------------------------------------------------------
std::vector<std::string> env_names() {
    return {"CartPole-v1", "Acrobot-v1", "MountainCar-v0", "Pendulum-v1"};
}

std::unique_ptr<Env> make_env(const std::string& name) {
    if (name == "CartPole-v1") return std::make_unique<CartPole>();
    if (name == "Acrobot-v1") return std::make_unique<Acrobot>();
    if (name == "MountainCar-v0") return std::make_unique<MountainCar>();
    if (name == "Pendulum-v1") return std::make_unique<Pendulum>();
    std::string known;
    for (const auto& n : env_names()) known += (known.empty() ? "" : ", ") + n;
    SOMA_CHECK_VALUE(false, "make_env: unknown environment: got '", name, "', expected one of ",
                     known);
    return nullptr;
}

EnvFactory env_factory(const std::string& name) {
    make_env(name);  // validates the name now rather than at first use
    return [name] { return make_env(name); };
}

// ---- VectorEnv -----------------------------------------------------------------------------
VectorEnv::VectorEnv(const EnvFactory& factory, int64_t num_envs) {
    SOMA_CHECK_VALUE(num_envs > 0, "VectorEnv: num_envs must be positive: got ", num_envs);
    for (int64_t i = 0; i < num_envs; ++i) envs_.push_back(factory());
    returns_.assign(static_cast<size_t>(num_envs), 0.0);
    lengths_.assign(static_cast<size_t>(num_envs), 0);
}

namespace {
Shape batch_shape(int64_t n, const Shape& s) {
    Shape out{n};
    out.insert(out.end(), s.begin(), s.end());
    return out;
}
}  // namespace

Tensor VectorEnv::reset(std::optional<uint64_t> seed) {
    int64_t n = num_envs(), d = observation_space().flat_size();
    Tensor obs = empty(batch_shape(n, observation_space().shape));
    float* p = obs.data_ptr<float>();
    for (int64_t i = 0; i < n; ++i) {
        std::optional<uint64_t> s;
        if (seed) s = *seed + static_cast<uint64_t>(i);
        envs_[static_cast<size_t>(i)]->reset_into(p + i * d, s);
        returns_[static_cast<size_t>(i)] = 0;
        lengths_[static_cast<size_t>(i)] = 0;
    }
    finished_.clear();
    return obs;
}

VectorStep VectorEnv::step(const Tensor& actions) {
    int64_t n = num_envs(), d = observation_space().flat_size(), k = action_space().flat_size();
    SOMA_CHECK_SHAPE(
        actions.defined() && actions.numel() == n * k && actions.dim() >= 1 && actions.size(0) == n,
        "VectorEnv.step: actions must be [", n,
        k > 1 || !action_space().is_discrete() ? ", " + std::to_string(k) : std::string(),
        "]: got ", actions.defined() ? actions.shape() : Shape{});
    std::vector<double> a = actions.to_vector<double>();
    VectorStep out;
    Shape os = batch_shape(n, observation_space().shape);
    out.observations = empty(os);
    out.final_observations = empty(os);
    out.rewards = empty({n});
    out.terminated = empty({n}, {.dtype = DType::boolean});
    out.truncated = empty({n}, {.dtype = DType::boolean});
    float* obs = out.observations.data_ptr<float>();
    float* fin = out.final_observations.data_ptr<float>();
    float* rew = out.rewards.data_ptr<float>();
    bool* term = out.terminated.data_ptr<bool>();
    bool* trunc = out.truncated.data_ptr<bool>();
    finished_.clear();
    for (int64_t i = 0; i < n; ++i) {
        auto& env = *envs_[static_cast<size_t>(i)];
        auto u = static_cast<size_t>(i);
        StepResult r = env.step_into(a.data() + i * k, fin + i * d);
        rew[i] = static_cast<float>(r.reward);
        term[i] = r.terminated;
        trunc[i] = r.truncated;
        returns_[u] += r.reward;
        lengths_[u] += 1;
        if (r.terminated || r.truncated) {
            finished_.push_back({i, returns_[u], lengths_[u]});
            returns_[u] = 0;
            lengths_[u] = 0;
            env.reset_into(obs + i * d);
        } else {
            std::copy(fin + i * d, fin + (i + 1) * d, obs + i * d);
        }
    }
    return out;
}

std::vector<std::pair<std::string, Tensor>> VectorEnv::state_dict(const std::string& prefix) const {
    auto n = static_cast<int64_t>(envs_.size());
    auto S = static_cast<int64_t>(envs_.front()->state().size());
    Tensor real = empty({n, S + 1}, {.dtype = DType::float64});
    Tensor ints = empty({n, 5}, {.dtype = DType::int64});
    double* r = real.data_ptr<double>();
    int64_t* k = ints.data_ptr<int64_t>();
    for (int64_t i = 0; i < n; ++i) {
        auto u = static_cast<size_t>(i);
        Env::Snapshot s = envs_[u]->snapshot();
        std::copy(s.state.begin(), s.state.end(), r + i * (S + 1));
        r[i * (S + 1) + S] = returns_[u];
        k[i * 5 + 0] = s.elapsed;
        k[i * 5 + 1] = s.done ? 1 : 0;
        k[i * 5 + 2] = static_cast<int64_t>(s.rng[0]);
        k[i * 5 + 3] = static_cast<int64_t>(s.rng[1]);
        k[i * 5 + 4] = lengths_[u];
    }
    return {{prefix + "real", real}, {prefix + "int", ints}};
}

Tensor VectorEnv::load_state_dict(const Tensor& real, const Tensor& ints) {
    auto n = static_cast<int64_t>(envs_.size());
    auto S = static_cast<int64_t>(envs_.front()->state().size());
    SOMA_CHECK_VALUE(real.defined() && ints.defined() && real.shape() == (Shape{n, S + 1}) &&
                         ints.shape() == (Shape{n, 5}),
                     "VectorEnv.load_state_dict: expected [", n, ", ", S + 1, "] and [", n,
                     ", 5] tensors: got ", real.defined() ? real.shape() : Shape{}, " and ",
                     ints.defined() ? ints.shape() : Shape{});
    auto r = real.to_vector<double>();
    auto k = ints.to_vector<int64_t>();
    int64_t d = observation_space().flat_size();
    Tensor obs = empty(batch_shape(n, observation_space().shape));
    for (int64_t i = 0; i < n; ++i) {
        auto u = static_cast<size_t>(i);
        Env::Snapshot s;
        s.state.assign(r.begin() + i * (S + 1), r.begin() + i * (S + 1) + S);
        s.elapsed = k[u * 5 + 0];
        s.done = k[u * 5 + 1] != 0;
        s.rng = {static_cast<uint64_t>(k[u * 5 + 2]), static_cast<uint64_t>(k[u * 5 + 3])};
        envs_[u]->restore(s);
        returns_[u] = r[u * static_cast<size_t>(S + 1) + static_cast<size_t>(S)];
        lengths_[u] = k[u * 5 + 4];
        envs_[u]->observe_into(obs.data_ptr<float>() + i * d);
    }
    finished_.clear();
    return obs;
}

}  // namespace soma::rl
