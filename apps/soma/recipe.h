// Recipes: a JSON description of model, data, loss, optimizer and schedule, and the builders
// that turn it into Soma objects. Built-in recipes are the same JSON, compiled in.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "soma/data.h"
#include "soma/nn.h"
#include "soma/optim.h"
#include "soma/train.h"

namespace soma::app {

/// Thrown for user mistakes (unknown recipe, bad option, missing data): the CLI prints the
/// message on one line and exits with status 2.
class UsageError : public Error {
  public:
    using Error::Error;
};

struct Recipe {
    std::string name;
    std::string description;
    nlohmann::json spec;  // the whole recipe
    int64_t epochs = 1;
    int64_t batch_size = 64;
    double lr = 1e-3;
    uint64_t seed = 0;
    train::Task task = train::Task::classification;
};

/// Names and one-line descriptions of the built-in recipes.
std::vector<std::pair<std::string, std::string>> builtin_recipes();
/// A built-in name or a path to a JSON file. UsageError when neither.
Recipe load_recipe(const std::string& name_or_path);
Recipe recipe_from_json(const nlohmann::json& j, const std::string& origin);

struct Data {
    std::shared_ptr<data::TensorDataset> train, test;
    Shape input_shape;  // one example, e.g. [1, 28, 28]
    std::vector<std::string> class_names;
};
/// Loads and preprocesses the recipe's data (normalisation / standardisation fitted on train).
Data load_data(const Recipe& r);

std::shared_ptr<nn::Sequential> build_model(const Recipe& r);
std::unique_ptr<nn::Loss> build_loss(const Recipe& r);
std::unique_ptr<optim::Optimizer> build_optimizer(const Recipe& r, nn::Module& model);
/// Null when the recipe has no schedule. steps_per_epoch is for per-batch schedules.
std::unique_ptr<optim::LRScheduler> build_scheduler(const Recipe& r, optim::Optimizer& opt,
                                                    int64_t steps_per_epoch, bool& per_batch);

}  // namespace soma::app
