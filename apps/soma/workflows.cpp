// The workflow registry and the `soma generate` / `soma play` dispatch.
#include "workflows.h"

#include <cmath>
#include <cstdio>

#include "recipe.h"
#include "soma/io.h"

namespace soma::app {

volatile std::sig_atomic_t g_stop = 0;
namespace {
void on_sigint(int) { g_stop = 1; }
}  // namespace
StopOnSigint::StopOnSigint() : old_(std::signal(SIGINT, on_sigint)) { g_stop = 0; }
StopOnSigint::~StopOnSigint() { std::signal(SIGINT, old_); }

int interrupted(const std::string& checkpoint, const char* what) {
    std::fprintf(stderr, "\ninterrupted; %s is in %s (continue with --resume)\n", what,
                 checkpoint.c_str());
    return 130;
}

int run_interruptible(const std::string& checkpoint, const std::function<void()>& body,
                      const char* what) {
    try {
        body();
    } catch (const Error&) {
        if (!g_stop) throw;
        return interrupted(checkpoint, what);
    }
    return 0;
}

std::string jnum(double v) {
    if (!std::isfinite(v)) return "null";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
}

const std::vector<Workflow>& workflows() {
    static const std::vector<Workflow> all = [] {
        std::vector<Workflow> w;
        add_gen_workflows(w);
        add_text_workflows(w);
        add_speech_workflows(w);
        add_rl_workflows(w);
        return w;
    }();
    return all;
}

const Workflow* find_workflow(const std::string& name) {
    for (const auto& w : workflows())
        if (w.name == name) return &w;
    return nullptr;
}

const Workflow* workflow_of_checkpoint(const std::string& checkpoint) {
    SafetensorsFile f;
    try {
        f = load_safetensors(checkpoint);
    } catch (const Error& e) {
        throw UsageError(e.what());
    }
    auto it = f.metadata.find("recipe");
    return it == f.metadata.end() ? nullptr : find_workflow(it->second);
}

std::map<std::string, std::string> parse_overrides(const std::vector<std::string>& sets) {
    std::map<std::string, std::string> m;
    for (const auto& s : sets) {
        auto eq = s.find('=');
        if (eq == std::string::npos || eq == 0)
            throw UsageError("--set " + s + ": expected KEY=VALUE, e.g. --set latent=32");
        m[s.substr(0, eq)] = s.substr(eq + 1);
    }
    return m;
}

Sets::Sets(const std::string& recipe, const std::vector<std::string>& sets,
           const std::set<std::string>& allowed)
    : recipe_(recipe), map_(parse_overrides(sets)) {
    for (auto& [k, v] : map_)
        if (!allowed.count(k)) {
            std::string list;
            for (auto& s : allowed) list += (list.empty() ? "" : ", ") + s;
            throw UsageError(recipe + ": unknown --set key '" + k + "'; known: " + list);
        }
}

std::string Sets::str(const std::string& k, const std::string& def) const {
    auto it = map_.find(k);
    return it == map_.end() ? def : it->second;
}

int64_t Sets::integer(const std::string& k, int64_t def, int64_t min) const {
    auto it = map_.find(k);
    if (it == map_.end()) return def;
    size_t pos = 0;
    int64_t v = 0;
    try {
        v = std::stoll(it->second, &pos);
    } catch (const std::exception&) {
        pos = 0;
    }
    if (pos == 0 || pos != it->second.size() || v < min)
        throw UsageError(recipe_ + ": --set " + k + "=" + it->second +
                         ": expected an integer >= " + std::to_string(min));
    return v;
}

double Sets::real(const std::string& k, double def, double min) const {
    auto it = map_.find(k);
    if (it == map_.end()) return def;
    size_t pos = 0;
    double v = 0;
    try {
        v = std::stod(it->second, &pos);
    } catch (const std::exception&) {
        pos = 0;
    }
    if (pos == 0 || pos != it->second.size() || !(v >= min))
        throw UsageError(recipe_ + ": --set " + k + "=" + it->second +
                         ": expected a number >= " + jnum(min));
    return v;
}

int cmd_generate(const GenerateArgs& a) {
    const Workflow* w = workflow_of_checkpoint(a.checkpoint);
    if (!w || !w->generate)
        throw UsageError("generate: " + a.checkpoint +
                         " is not a generative checkpoint (written by a GAN, VAE or language-model "
                         "recipe); see `soma recipes`");
    return w->generate(a);
}

int cmd_play(const PlayArgs& a) {
    const Workflow* w = workflow_of_checkpoint(a.checkpoint);
    if (!w || !w->play)
        throw UsageError("play: " + a.checkpoint +
                         " is not an agent checkpoint (written by a reinforcement-learning recipe "
                         "such as ppo-cartpole); see `soma recipes`");
    return w->play(a);
}

}  // namespace soma::app
