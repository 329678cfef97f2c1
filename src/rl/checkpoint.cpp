// The agents' shared checkpoint: identity check on resume, counters, metadata, the interval.
#include "rl/checkpoint.h"

#include <filesystem>
#include <sstream>

namespace soma::rl::detail {

std::optional<SafetensorsFile> Checkpointer::resume(nn::Module& model, optim::Optimizer& opt,
                                                    int64_t& step, TrainResult& res) {
    if (!resume_ || path_.empty() || !std::filesystem::exists(path_)) return std::nullopt;
    auto f = load_safetensors(path_);
    const bool same = f.metadata["algo"] == algo_ && f.metadata["env"] == env_ &&
                      (num_envs_ == 0 || meta_int(f, "num_envs", path_) == num_envs_);
    const std::string envs = num_envs_ ? " with " + f.metadata["num_envs"] + " envs" : "";
    SOMA_CHECK_VALUE(same, "train_", algo_, ": ", path_, " was written by ", f.metadata["algo"],
                     " on ", f.metadata["env"], envs, "; cannot resume it as ", algo_, " on ", env_,
                     num_envs_ ? " with " + std::to_string(num_envs_) : "");
    model.load_state_dict(with_prefix(f, "model."));
    opt.load_state_dict(with_prefix(f, "optimizer."));
    step = meta_int(f, "env_steps", path_);
    res.updates = meta_int(f, "updates", path_);
    seconds0_ = std::stod(f.metadata["seconds"].empty() ? "0" : f.metadata["seconds"]);
    return f;
}

Clock::time_point Checkpointer::start(int64_t step) {
    last_ = step;
    t0_ = Clock::now();
    return t0_;
}

bool Checkpointer::due(int64_t step) {
    if (interval_ <= 0 || step - last_ < interval_) return false;
    last_ = step;
    return true;
}

void Checkpointer::save(TrainResult& res, int64_t step,
                        const std::function<nn::NamedTensors()>& state, int64_t iteration) {
    res.env_steps = step;
    res.seconds = seconds0_ + since(t0_);
    if (path_.empty()) return;
    std::map<std::string, std::string> meta{{"algo", algo_},
                                            {"env", env_},
                                            {"hidden", hidden_},
                                            {"env_steps", std::to_string(step)},
                                            {"seconds", std::to_string(res.seconds)},
                                            {"updates", std::to_string(res.updates)}};
    if (num_envs_ > 0) meta.emplace("num_envs", std::to_string(num_envs_));
    if (iteration >= 0) meta.emplace("iteration", std::to_string(iteration));
    for (const auto& [key, v] : metadata_) meta.emplace(key, v);  // fixed keys win
    save_safetensors(path_, state(), meta);
    if (on_checkpoint_) on_checkpoint_(res);
}

std::string join_ints(const std::vector<int64_t>& v) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
    return s;
}

std::vector<int64_t> split_ints(const std::string& s) {
    std::vector<int64_t> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ','))
        if (!item.empty()) out.push_back(std::stoll(item));
    return out;
}

int64_t meta_int(const SafetensorsFile& f, const std::string& key, const std::string& path) {
    auto it = f.metadata.find(key);
    SOMA_CHECK_VALUE(it != f.metadata.end(), "rl: ", path, ": checkpoint metadata has no '", key,
                     "'");
    return std::stoll(it->second);
}

nn::NamedTensors prefixed(const std::string& prefix, const nn::NamedTensors& sd) {
    nn::NamedTensors out;
    for (const auto& [k, v] : sd) out.emplace_back(prefix + k, v.contiguous());
    return out;
}

nn::NamedTensors with_prefix(const SafetensorsFile& f, const std::string& prefix) {
    nn::NamedTensors out;
    for (const auto& [k, v] : f.tensors)
        if (k.rfind(prefix, 0) == 0) out.emplace_back(k.substr(prefix.size()), v);
    return out;
}

nn::NamedTensors model_and_optimizer(const nn::Module& model, const optim::Optimizer& opt) {
    auto tensors = prefixed("model.", model.state_dict());
    append(tensors, prefixed("optimizer.", opt.state_dict()));
    return tensors;
}

void append(nn::NamedTensors& to, const nn::NamedTensors& more) {
    to.insert(to.end(), more.begin(), more.end());
}

}  // namespace soma::rl::detail
