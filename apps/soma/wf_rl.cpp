// Workflows: reinforcement-learning recipes (issue 7).
//
//   soma train ppo-cartpole [--seed S] [--steps N] [--set lr=1e-3 --set hidden=64,64] [--resume]
//   soma play runs/ppo-cartpole/checkpoint.safetensors --episodes 100 [--render cart.gif]
//
// train writes <out>/checkpoint.safetensors (every checkpoint_interval env steps and at the end;
// metadata: recipe, algo, env, the network, every hyperparameter), <out>/metrics.csv (one row
// per training episode), <out>/evals.csv (greedy evaluations during training) and
// <out>/curve.png, and prints one JSON line with a final greedy evaluation over 100 episodes
// (seeds 0..99, the same as `soma play` without --seed).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "recipe.h"
#include "soma/io.h"
#include "soma/parallel.h"
#include "soma/rl.h"
#include "workflows.h"

namespace soma::app {

namespace {

namespace fs = std::filesystem;
using Overrides = std::map<std::string, std::string>;

// ---- --set KEY=VALUE onto a config aggregate ----------------------------------------------
// Each recipe lists its settable fields; values are parsed strictly (UsageError on junk).
struct Field {
    std::string key;
    std::function<void(const std::string&)> set;
    std::function<std::string()> get;
};

double parse_double(const std::string& key, const std::string& v) {
    try {
        size_t pos = 0;
        double d = std::stod(v, &pos);
        if (pos == v.size()) return d;
    } catch (const std::exception&) {
    }
    throw UsageError("--set " + key + "=" + v + ": expected a number");
}

int64_t parse_int(const std::string& key, const std::string& v) {
    try {
        size_t pos = 0;
        long long d = std::stoll(v, &pos);
        if (pos == v.size()) return d;
    } catch (const std::exception&) {
    }
    throw UsageError("--set " + key + "=" + v + ": expected an integer");
}

bool parse_bool(const std::string& key, const std::string& v) {
    if (v == "1" || v == "true" || v == "on") return true;
    if (v == "0" || v == "false" || v == "off") return false;
    throw UsageError("--set " + key + "=" + v + ": expected true or false");
}

std::vector<int64_t> parse_ints(const std::string& key, const std::string& v) {
    std::vector<int64_t> out;
    std::stringstream ss(v);
    std::string item;
    while (std::getline(ss, item, ',')) {
        int64_t x = parse_int(key, item);
        if (x <= 0) throw UsageError("--set " + key + "=" + v + ": sizes must be positive");
        out.push_back(x);
    }
    if (out.empty()) throw UsageError("--set " + key + "=" + v + ": expected sizes like 64,64");
    return out;
}

Field num(const std::string& key, double& x) {
    return {key, [&x, key](const std::string& v) { x = parse_double(key, v); },
            [&x] { return jnum(x); }};
}
Field integer(const std::string& key, int64_t& x) {
    return {key,
            [&x, key](const std::string& v) {
                x = parse_int(key, v);
                if (x < 0) throw UsageError("--set " + key + ": must not be negative");
            },
            [&x] { return std::to_string(x); }};
}
Field flag(const std::string& key, bool& x) {
    return {key, [&x, key](const std::string& v) { x = parse_bool(key, v); },
            [&x] { return std::string(x ? "true" : "false"); }};
}
Field sizes(const std::string& key, std::vector<int64_t>& x) {
    return {key, [&x, key](const std::string& v) { x = parse_ints(key, v); },
            [&x] {
                std::string s;
                for (size_t i = 0; i < x.size(); ++i) s += (i ? "," : "") + std::to_string(x[i]);
                return s;
            }};
}

void apply(const std::string& recipe, const std::vector<Field>& fields, const Overrides& sets) {
    for (const auto& [k, v] : sets) {
        bool found = false;
        for (const auto& f : fields)
            if (f.key == k) {
                f.set(v);
                found = true;
            }
        if (!found) {
            std::string keys;
            for (const auto& f : fields) keys += (keys.empty() ? "" : ", ") + f.key;
            throw UsageError(recipe + ": unknown setting '" + k + "'; known: " + keys);
        }
    }
}

// "key=value;..." of every field (stored in the checkpoint's metadata as "config")
std::string describe(const std::vector<Field>& fields) {
    std::string s = "{";
    for (size_t i = 0; i < fields.size(); ++i)
        s += (i ? "," : "") + std::string("\"") + fields[i].key + "\":\"" + fields[i].get() + "\"";
    return s + "}";
}

std::vector<Field> common_fields(double& lr, double& gamma, std::vector<int64_t>& hidden,
                                 double& target, int64_t& eval_interval, int64_t& eval_episodes,
                                 int64_t& ckpt_interval) {
    return {num("lr", lr),
            num("gamma", gamma),
            sizes("hidden", hidden),
            num("target_return", target),
            integer("eval_interval", eval_interval),
            integer("eval_episodes", eval_episodes),
            integer("checkpoint_interval", ckpt_interval)};
}

std::vector<Field> fields_of(rl::DQNConfig& c) {
    auto f = common_fields(c.lr, c.gamma, c.hidden, c.target_return, c.eval_interval,
                           c.eval_episodes, c.checkpoint_interval);
    for (Field x :
         {integer("buffer_size", c.buffer_size), integer("batch_size", c.batch_size),
          integer("learning_starts", c.learning_starts),
          integer("train_frequency", c.train_frequency),
          integer("gradient_steps", c.gradient_steps),
          integer("target_update_interval", c.target_update_interval), num("tau", c.tau),
          num("epsilon_start", c.epsilon_start), num("epsilon_end", c.epsilon_end),
          num("exploration_fraction", c.exploration_fraction), flag("double_dqn", c.double_dqn),
          num("huber_delta", c.huber_delta), num("max_grad_norm", c.max_grad_norm)})
        f.push_back(x);
    return f;
}

std::vector<Field> fields_of(rl::PPOConfig& c) {
    auto f = common_fields(c.lr, c.gamma, c.hidden, c.target_return, c.eval_interval,
                           c.eval_episodes, c.checkpoint_interval);
    for (Field x :
         {integer("num_envs", c.num_envs), integer("num_steps", c.num_steps),
          flag("anneal_lr", c.anneal_lr), num("gae_lambda", c.gae_lambda),
          integer("num_minibatches", c.num_minibatches), integer("update_epochs", c.update_epochs),
          flag("norm_adv", c.norm_adv), num("clip_coef", c.clip_coef),
          flag("clip_vloss", c.clip_vloss), num("ent_coef", c.ent_coef), num("vf_coef", c.vf_coef),
          num("max_grad_norm", c.max_grad_norm), num("reward_scale", c.reward_scale),
          flag("normalize_obs", c.normalize_obs), flag("normalize_reward", c.normalize_reward)})
        f.push_back(x);
    return f;
}

std::vector<Field> fields_of(rl::A2CConfig& c) {
    auto f = common_fields(c.lr, c.gamma, c.hidden, c.target_return, c.eval_interval,
                           c.eval_episodes, c.checkpoint_interval);
    for (Field x :
         {integer("num_envs", c.num_envs), integer("num_steps", c.num_steps),
          flag("anneal_lr", c.anneal_lr), num("gae_lambda", c.gae_lambda),
          flag("norm_adv", c.norm_adv), num("ent_coef", c.ent_coef), num("vf_coef", c.vf_coef),
          num("max_grad_norm", c.max_grad_norm), flag("normalize_obs", c.normalize_obs),
          flag("normalize_reward", c.normalize_reward)})
        f.push_back(x);
    return f;
}

std::vector<Field> fields_of(rl::ReinforceConfig& c) {
    auto f = common_fields(c.lr, c.gamma, c.hidden, c.target_return, c.eval_interval,
                           c.eval_episodes, c.checkpoint_interval);
    for (Field x :
         {integer("episodes_per_update", c.episodes_per_update), flag("baseline", c.baseline),
          flag("norm_adv", c.norm_adv), num("ent_coef", c.ent_coef), num("vf_coef", c.vf_coef),
          num("max_grad_norm", c.max_grad_norm), flag("normalize_obs", c.normalize_obs)})
        f.push_back(x);
    return f;
}

// ---- metrics.csv / evals.csv / curve.png ---------------------------------------------------
struct History {
    std::vector<double> steps, returns, lengths;
    std::vector<rl::EvalPoint> evals;
};

// Rows of a CSV with numeric columns (header skipped); rows whose first `key` column exceeds
// `max_step` are dropped (work after the checkpoint a resumed run continues from).
std::vector<std::vector<double>> read_csv(const std::string& path, size_t key, double max_step) {
    std::vector<std::vector<double>> rows;
    std::ifstream in(path);
    std::string line;
    if (!std::getline(in, line)) return rows;
    while (std::getline(in, line)) {
        std::vector<double> row;
        std::stringstream ss(line);
        std::string cell;
        try {
            while (std::getline(ss, cell, ',')) row.push_back(std::stod(cell));
        } catch (const std::exception&) {
            continue;
        }
        if (row.size() > key && row[key] <= max_step) rows.push_back(row);
    }
    return rows;
}

History load_history(const std::string& out, double max_step) {
    History h;
    for (const auto& r : read_csv(out + "/metrics.csv", 1, max_step))
        if (r.size() >= 4) {
            h.steps.push_back(r[1]);
            h.returns.push_back(r[2]);
            h.lengths.push_back(r[3]);
        }
    for (const auto& r : read_csv(out + "/evals.csv", 0, max_step))
        if (r.size() >= 3) h.evals.push_back({static_cast<int64_t>(r[0]), r[2], r[1]});
    return h;
}

void write_history(const std::string& out, const std::string& title, const History& old,
                   const rl::TrainResult& res, double seconds0) {
    History h = old;
    for (size_t i = 0; i < res.episode_returns.size(); ++i) {
        h.steps.push_back(static_cast<double>(res.episode_steps[i]));
        h.returns.push_back(res.episode_returns[i]);
        h.lengths.push_back(static_cast<double>(res.episode_lengths[i]));
    }
    for (auto e : res.evals) {
        e.seconds += seconds0;
        h.evals.push_back(e);
    }
    std::string m = "episode,env_steps,return,length\n";
    for (size_t i = 0; i < h.returns.size(); ++i)
        m += std::to_string(i + 1) + "," + std::to_string(static_cast<int64_t>(h.steps[i])) + "," +
             jnum(h.returns[i]) + "," + std::to_string(static_cast<int64_t>(h.lengths[i])) + "\n";
    write_file_atomic(out + "/metrics.csv", m);
    std::string e = "env_steps,seconds,mean_return\n";
    for (const auto& p : h.evals)
        e += std::to_string(p.step) + "," + jnum(p.seconds) + "," + jnum(p.mean_return) + "\n";
    write_file_atomic(out + "/evals.csv", e);
    rl::plot_learning_curve_png(out + "/curve.png", h.steps, h.returns, h.evals, title);
}

// ---- the recipes ---------------------------------------------------------------------------
struct RlRecipe {
    std::string name, env, algo, description;
    std::function<void(rl::DQNConfig&)> dqn;
    std::function<void(rl::PPOConfig&)> ppo;
    std::function<void(rl::A2CConfig&)> a2c;
    std::function<void(rl::ReinforceConfig&)> reinforce;
};

const std::vector<RlRecipe>& rl_recipes() {
    static const std::vector<RlRecipe> all = [] {
        std::vector<RlRecipe> r;
        // rl-baselines3-zoo's DQN CartPole-v1 settings (the DQNConfig defaults)
        r.push_back({"dqn-cartpole", "CartPole-v1", "dqn",
                     "DQN (Double DQN, Huber, target net) on CartPole-v1, stops at greedy mean "
                     "return 475",
                     [](rl::DQNConfig& c) {
                         c.total_steps = 100'000;
                         c.target_return = 475;
                         c.eval_interval = 5'000;
                         c.checkpoint_interval = 10'000;
                     },
                     nullptr, nullptr, nullptr});
        // CleanRL ppo.py defaults
        r.push_back({"ppo-cartpole", "CartPole-v1", "ppo",
                     "PPO (categorical policy) on CartPole-v1, stops at greedy mean return 475",
                     nullptr,
                     [](rl::PPOConfig& c) {
                         c.total_steps = 500'000;
                         c.target_return = 475;
                         c.eval_interval = 10'000;
                         c.checkpoint_interval = 10'000;
                     },
                     nullptr, nullptr});
        // rl-baselines3-zoo's Acrobot-v1 PPO settings (with VecNormalize's obs and reward
        // normalisation; without the reward one the critic never catches up with -1 per step)
        r.push_back({"ppo-acrobot", "Acrobot-v1", "ppo",
                     "PPO with observation and reward normalisation on Acrobot-v1, stops at mean "
                     "return -100",
                     nullptr,
                     [](rl::PPOConfig& c) {
                         c.total_steps = 500'000;
                         c.num_envs = 8;
                         c.num_steps = 256;
                         c.gae_lambda = 0.94;
                         c.ent_coef = 0.0;
                         c.normalize_obs = true;
                         c.normalize_reward = true;
                         c.target_return = -100;
                         c.eval_interval = 20'480;
                         c.checkpoint_interval = 20'000;
                     },
                     nullptr, nullptr});
        // CleanRL ppo_continuous_action.py style: Gaussian policy with state-independent
        // log-std, observation and reward normalisation, 10 epochs of 32 minibatches
        r.push_back({"ppo-pendulum", "Pendulum-v1", "ppo",
                     "PPO (Gaussian policy) on Pendulum-v1, stops at mean return -250", nullptr,
                     [](rl::PPOConfig& c) {
                         c.total_steps = 500'000;
                         c.num_envs = 4;
                         c.num_steps = 512;
                         c.lr = 1e-3;
                         c.gamma = 0.9;
                         c.gae_lambda = 0.95;
                         c.num_minibatches = 32;
                         c.update_epochs = 10;
                         c.ent_coef = 0.0;
                         c.clip_vloss = false;
                         c.normalize_obs = true;
                         c.normalize_reward = true;
                         c.target_return = -250;
                         c.eval_interval = 20'480;
                         c.checkpoint_interval = 20'000;
                     },
                     nullptr, nullptr});
        r.push_back({"a2c-cartpole", "CartPole-v1", "a2c",
                     "A2C (8 envs, 5-step returns) on CartPole-v1, stops at mean return 475",
                     nullptr, nullptr,
                     [](rl::A2CConfig& c) {
                         c.total_steps = 500'000;
                         c.target_return = 475;
                         c.eval_interval = 10'000;
                         c.checkpoint_interval = 10'000;
                     },
                     nullptr});
        r.push_back({"reinforce-cartpole", "CartPole-v1", "reinforce",
                     "REINFORCE with a learned baseline on CartPole-v1, stops at mean return 475",
                     nullptr, nullptr, nullptr, [](rl::ReinforceConfig& c) {
                         c.total_steps = 500'000;
                         c.target_return = 475;
                         c.eval_interval = 10'000;
                         c.checkpoint_interval = 10'000;
                     }});
        return r;
    }();
    return all;
}

const RlRecipe& rl_recipe(const std::string& name) {
    for (const auto& r : rl_recipes())
        if (r.name == name) return r;
    throw UsageError("no RL recipe " + name);
}

std::string checkpoint_of(const std::string& out) { return out + "/checkpoint.safetensors"; }

int train_rl(const RlRecipe& r, const TrainArgs& a) {
    if (a.seconds > 0)
        throw UsageError("train " + r.name + ": --seconds is not used by RL recipes; use --steps");
    if (a.epochs >= 0 || a.batch_size > 0 || a.lr > 0 || a.max_batches > 0)
        throw UsageError("train " + r.name +
                         ": --epochs, --batch-size, --lr and --max-batches do not apply to RL "
                         "recipes; use --steps and --set lr=...");
    if (a.threads > 0) set_num_threads(a.threads);
    const std::string out = a.out.empty() ? "runs/" + r.name : a.out;
    const std::string ckpt = checkpoint_of(out);
    const uint64_t seed = a.seed >= 0 ? static_cast<uint64_t>(a.seed) : 0;
    Overrides sets = parse_overrides(a.sets);
    {
        // check --set before touching the output directory (a typo must not cost a run)
        rl::DQNConfig dc;
        rl::PPOConfig pc;
        rl::A2CConfig ac;
        rl::ReinforceConfig rc;
        if (r.dqn) apply(r.name, fields_of(dc), sets);
        if (r.ppo) apply(r.name, fields_of(pc), sets);
        if (r.a2c) apply(r.name, fields_of(ac), sets);
        if (r.reinforce) apply(r.name, fields_of(rc), sets);
    }
    fs::create_directories(out);
    if (a.resume && !fs::exists(ckpt))
        throw UsageError("train " + r.name + " --resume: no checkpoint at " + ckpt);
    if (!a.resume) {
        for (const char* f : {"/metrics.csv", "/evals.csv", "/curve.png"}) fs::remove(out + f);
        fs::remove(ckpt);
    }

    History old;
    double seconds0 = 0;
    if (a.resume) {
        SafetensorsFile f;
        try {
            f = load_safetensors(ckpt);
        } catch (const Error& e) {
            throw UsageError(e.what());
        }
        if (f.metadata["recipe"] != r.name)
            throw UsageError(
                "train " + r.name + " --resume: " + ckpt + " was written by " +
                (f.metadata["recipe"].empty() ? "another recipe" : f.metadata["recipe"]));
        if (f.metadata["seed"] != std::to_string(seed))
            throw UsageError("train " + r.name + " --resume: " + ckpt + " has seed " +
                             f.metadata["seed"] + "; pass --seed " + f.metadata["seed"]);
        old = load_history(out, std::stod(f.metadata["env_steps"]));
        seconds0 = f.metadata["seconds"].empty() ? 0 : std::stod(f.metadata["seconds"]);
    }
    const std::string title = r.name + " seed " + std::to_string(seed);
    auto on_ckpt = [&](const rl::TrainResult& res) {
        write_history(out, title, old, res, seconds0);
    };
    std::map<std::string, std::string> meta{{"recipe", r.name}, {"seed", std::to_string(seed)}};
    auto factory = rl::env_factory(r.env);

    rl::TrainResult res;
    // One path for every algorithm: the recipe's defaults, --set overrides, the common fields.
    auto run = [&](auto c, const auto& defaults, auto train) {
        defaults(c);
        auto fields = fields_of(c);
        apply(r.name, fields, sets);
        if (a.steps > 0) c.total_steps = a.steps;
        c.seed = seed, c.checkpoint_path = ckpt, c.resume = a.resume, c.verbose = !a.quiet;
        meta["config"] = describe(fields);
        c.on_checkpoint = on_ckpt, c.metadata = meta;
        return train(factory, c);
    };
    try {
        if (r.dqn)
            res = run(rl::DQNConfig{}, r.dqn, rl::train_dqn);
        else if (r.ppo)
            res = run(rl::PPOConfig{}, r.ppo, rl::train_ppo);
        else if (r.a2c)
            res = run(rl::A2CConfig{}, r.a2c, rl::train_a2c);
        else
            res = run(rl::ReinforceConfig{}, r.reinforce, rl::train_reinforce);
    } catch (const ValueError& e) {
        throw UsageError(e.what());  // bad hyperparameters
    }
    // final greedy evaluation, the same episodes as `soma play` without --seed
    auto ev = rl::evaluate(res.policy, factory, 100, 0);
    std::printf(
        "{\"recipe\":\"%s\",\"env\":\"%s\",\"algo\":\"%s\",\"seed\":%llu,\"env_steps\":%lld,"
        "\"seconds\":%s,\"updates\":%lld,\"reached_target\":%s,\"steps_to_target\":%lld,"
        "\"mean_return\":%s,\"std_return\":%s,\"episodes\":100,\"out\":\"%s\"}\n",
        r.name.c_str(), r.env.c_str(), r.algo.c_str(), static_cast<unsigned long long>(seed),
        static_cast<long long>(res.env_steps), jnum(res.seconds).c_str(),
        static_cast<long long>(res.updates), res.reached_target ? "true" : "false",
        static_cast<long long>(res.steps_to_target), jnum(ev.mean_return).c_str(),
        jnum(ev.std_return).c_str(), out.c_str());
    return 0;
}

int play_rl(const PlayArgs& a) {
    if (a.episodes <= 0)
        throw UsageError("play: --episodes must be positive: got " + std::to_string(a.episodes));
    if (a.seed < 0) throw UsageError("play: --seed must not be negative");
    if (a.threads > 0) set_num_threads(a.threads);
    auto t0 = std::chrono::steady_clock::now();
    SafetensorsFile f = load_safetensors(a.checkpoint);
    const std::string env = f.metadata["env"], recipe = f.metadata["recipe"];
    rl::Policy policy;
    try {
        policy = rl::load_policy(a.checkpoint);
    } catch (const ValueError& e) {
        throw UsageError(e.what());
    }
    auto factory = rl::env_factory(env);
    auto ev = rl::evaluate(policy, factory, a.episodes, static_cast<uint64_t>(a.seed));
    std::string gif;
    if (!a.render.empty()) {
        rl::Recording rec;
        try {
            rec = rl::record_gif(policy, factory, a.render, static_cast<uint64_t>(a.seed));
        } catch (const Error& e) {
            throw UsageError(std::string("play --render: ") + e.what());
        }
        std::fprintf(stderr, "wrote %s: %lld frames, episode return %.1f\n", a.render.c_str(),
                     static_cast<long long>(rec.frames), rec.ret);
        gif = ",\"gif\":\"" + a.render + "\",\"gif_frames\":" + std::to_string(rec.frames);
    }
    double mn = INFINITY, mx = -INFINITY;
    for (double x : ev.returns) mn = std::min(mn, x), mx = std::max(mx, x);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "%s on %s: mean return %.2f +- %.2f over %lld episodes\n", recipe.c_str(),
                 env.c_str(), ev.mean_return, ev.std_return, static_cast<long long>(a.episodes));
    std::printf(
        "{\"recipe\":\"%s\",\"env\":\"%s\",\"checkpoint\":\"%s\",\"episodes\":%lld,"
        "\"mean_return\":%s,\"std_return\":%s,\"min_return\":%s,\"max_return\":%s,"
        "\"env_steps\":%lld,\"seconds\":%s%s}\n",
        recipe.c_str(), env.c_str(), a.checkpoint.c_str(), static_cast<long long>(a.episodes),
        jnum(ev.mean_return).c_str(), jnum(ev.std_return).c_str(), jnum(mn).c_str(),
        jnum(mx).c_str(), static_cast<long long>(ev.steps), jnum(secs).c_str(), gif.c_str());
    return 0;
}

}  // namespace

void add_rl_workflows(std::vector<Workflow>& out) {
    for (const auto& r : rl_recipes()) {
        const std::string name = r.name;
        out.push_back({name, r.description,
                       [name](const TrainArgs& a) { return train_rl(rl_recipe(name), a); }, nullptr,
                       play_rl,
                       [](const std::string& ckpt, int threads) {
                           PlayArgs p;
                           p.checkpoint = ckpt;
                           p.threads = threads;
                           return play_rl(p);
                       }});
    }
}

}  // namespace soma::app
