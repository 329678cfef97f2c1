// Checkpoints: one safetensors file with prefixed sections and string metadata.
#include "soma/train.h"

namespace soma::train {

namespace {
void add(NamedTensorList& out, const std::string& prefix, const optim::StateDict& sd) {
    for (auto& [n, t] : sd) out.emplace_back(prefix + n, t);
}
optim::StateDict section(const SafetensorsFile& f, const std::string& prefix) {
    optim::StateDict sd;
    for (auto& [n, t] : f.tensors)
        if (n.rfind(prefix, 0) == 0) sd.emplace_back(n.substr(prefix.size()), t);
    return sd;
}
}  // namespace

void save_checkpoint(const std::string& path, const nn::Module& model, const optim::Optimizer* opt,
                     const optim::LRScheduler* sched,
                     const std::map<std::string, std::string>& metadata,
                     const optim::ReduceLROnPlateau* plateau) {
    NamedTensorList all;
    add(all, "model.", model.state_dict());
    if (opt) add(all, "optim.", opt->state_dict());
    if (sched) add(all, "sched.", sched->state_dict());
    if (plateau) add(all, "plateau.", plateau->state_dict());
    auto meta = metadata;
    meta["format"] = "soma-checkpoint-1";
    save_safetensors(path, all, meta);
}

std::map<std::string, std::string> load_checkpoint(const std::string& path, nn::Module& model,
                                                   optim::Optimizer* opt, optim::LRScheduler* sched,
                                                   optim::ReduceLROnPlateau* plateau) {
    SafetensorsFile f = load_safetensors(path);
    try {
        auto m = section(f, "model.");
        SOMA_CHECK_VALUE(!m.empty(), "no model weights (keys starting with \"model.\")");
        model.load_state_dict(m);
        if (opt) opt->load_state_dict(section(f, "optim."));
        if (sched) sched->load_state_dict(section(f, "sched."));
        if (plateau) plateau->load_state_dict(section(f, "plateau."));
    } catch (const Error& e) {
        throw Error("checkpoint " + path + ": " + e.what() +
                    " (was it written for a different model or recipe?)");
    }
    return f.metadata;
}

}  // namespace soma::train
