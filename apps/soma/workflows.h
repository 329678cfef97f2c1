// Workflows: recipes with their own training loop (GANs, autoencoders, clustering, language
// models, speech, reinforcement learning). Each family lives in its own file (wf_*.cpp) and adds
// its workflows in an add_*_workflows() function; `soma train NAME` runs a workflow when NAME is
// one, and `soma generate` / `soma play` / `soma eval` find the workflow of a checkpoint through
// its "recipe" metadata entry.
#pragma once

#include <csignal>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "commands.h"

namespace soma::app {

struct GenerateArgs {
    std::string checkpoint;
    std::string out;       // image workflows: PNG path (default: next to the checkpoint)
    int64_t n = 64;        // images to draw
    std::string prompt;    // text workflows
    int64_t length = 300;  // characters to sample
    double temperature = 0.8;
    int64_t seed = 0;
    int threads = 0;
};

struct PlayArgs {
    std::string checkpoint;
    int64_t episodes = 100;
    int64_t seed = 0;
    std::string render;  // GIF path of the first episode ("" = none)
    int threads = 0;
};

struct Workflow {
    std::string name;
    std::string description;
    std::function<int(const TrainArgs&)> train;        // required; prints the final JSON line
    std::function<int(const GenerateArgs&)> generate;  // optional
    std::function<int(const PlayArgs&)> play;          // optional
    std::function<int(const std::string&, int)> eval;  // optional (checkpoint, threads)
};

/// Every workflow, in listing order.
const std::vector<Workflow>& workflows();
/// The workflow called `name`, or null.
const Workflow* find_workflow(const std::string& name);
/// The workflow that wrote `checkpoint` (its "recipe" metadata entry), or null when it was
/// written by a plain supervised recipe. UsageError when the file is unreadable.
const Workflow* workflow_of_checkpoint(const std::string& checkpoint);
/// `--set key=value` overrides as a map; UsageError on an entry without '='.
std::map<std::string, std::string> parse_overrides(const std::vector<std::string>& sets);

// One per family, each defined in its own file.
void add_gen_workflows(std::vector<Workflow>& out);     // wf_gen.cpp
void add_text_workflows(std::vector<Workflow>& out);    // wf_text.cpp
void add_speech_workflows(std::vector<Workflow>& out);  // wf_speech.cpp
void add_rl_workflows(std::vector<Workflow>& out);      // wf_rl.cpp

/// --set KEY=VALUE for one workflow: only the listed keys are accepted; values are parsed
/// strictly (UsageError naming the recipe, the key and what was expected).
class Sets {
  public:
    Sets(const std::string& recipe, const std::vector<std::string>& sets,
         const std::set<std::string>& allowed);
    std::string str(const std::string& k, const std::string& def) const;
    int64_t integer(const std::string& k, int64_t def, int64_t min = 1) const;
    double real(const std::string& k, double def, double min = 0) const;

  private:
    std::string recipe_;
    std::map<std::string, std::string> map_;
};

/// A JSON number with 6 significant digits; "null" for nan and inf.
std::string jnum(double v);

/// Set by SIGINT while a StopOnSigint is alive: training loops poll it, save and stop cleanly.
extern volatile std::sig_atomic_t g_stop;
class StopOnSigint {
  public:
    StopOnSigint();
    ~StopOnSigint();
    StopOnSigint(const StopOnSigint&) = delete;
    StopOnSigint& operator=(const StopOnSigint&) = delete;

  private:
    void (*old_)(int);
};

/// Prints "interrupted; WHAT is in CHECKPOINT (continue with --resume)" on stderr and returns 130,
/// the exit status of a run stopped by Ctrl-C.
int interrupted(const std::string& checkpoint, const char* what = "the last finished epoch");
/// Runs a training body whose loop polls g_stop and throws soma::Error to stop: returns 0 when it
/// finishes, interrupted(checkpoint, what) when it threw after a SIGINT; other errors propagate.
/// Installs no handler (keep a StopOnSigint alive around it).
int run_interruptible(const std::string& checkpoint, const std::function<void()>& body,
                      const char* what = "the last finished epoch");

int cmd_generate(const GenerateArgs& a);
int cmd_play(const PlayArgs& a);

}  // namespace soma::app
