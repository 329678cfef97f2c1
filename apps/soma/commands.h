// The `soma` subcommands (each returns the process exit status).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace soma::app {

struct TrainArgs {
    std::string recipe;
    int64_t epochs = -1, batch_size = -1, max_batches = 0;
    double lr = -1;
    int64_t seed = -1;
    int threads = 0;
    std::string out;
    bool resume = false, quiet = false;
    double seconds = -1;  // time budget for workflows that train by the clock
    int64_t steps = -1;   // environment steps (RL) or iterations, when the recipe uses them
    std::vector<std::string> sets;  // --set KEY=VALUE recipe-specific overrides
};
int cmd_train(const TrainArgs& a);
int cmd_eval(const std::string& checkpoint, int threads);
int cmd_predict(const std::string& checkpoint, const std::string& input, int top, int threads);
int cmd_recipes();
int cmd_summary(const std::string& recipe_or_checkpoint);
int cmd_info();

}  // namespace soma::app
