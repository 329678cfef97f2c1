// Recipe parsing and the builders for model, data, loss, optimizer and schedule.
#include "recipe.h"

#include <fstream>

#include "soma/autograd.h"
#include "soma/ops.h"

namespace soma::app {

namespace {

// Built-in recipes. Fashion-MNIST normalisation: mean 0.2860, std 0.3530 (training set).
const char* kBuiltins = R"JSON([
{
  "name": "mlp-fashion",
  "description": "MLP 784-512-256-10 with dropout on Fashion-MNIST (Adam, cosine schedule)",
  "task": "classification",
  "data": {"dataset": "fashion-mnist", "normalize": [0.2860, 0.3530]},
  "model": [
    {"type": "Flatten"},
    {"type": "Linear", "in": 784, "out": 512}, {"type": "ReLU"}, {"type": "Dropout", "p": 0.2},
    {"type": "Linear", "in": 512, "out": 256}, {"type": "ReLU"}, {"type": "Dropout", "p": 0.2},
    {"type": "Linear", "in": 256, "out": 10}
  ],
  "loss": {"type": "cross_entropy"},
  "optimizer": {"type": "adam", "lr": 0.001},
  "schedule": {"type": "cosine"},
  "epochs": 10, "batch_size": 128, "seed": 0
},
{
  "name": "cnn-fashion",
  "description": "2 conv blocks with BatchNorm, max pooling and dropout on Fashion-MNIST (Adam, 1cycle)",
  "task": "classification",
  "data": {"dataset": "fashion-mnist", "normalize": [0.2860, 0.3530]},
  "model": [
    {"type": "Conv2d", "in": 1, "out": 32, "kernel": 3, "padding": 1, "bias": false},
    {"type": "BatchNorm2d", "features": 32}, {"type": "ReLU"},
    {"type": "MaxPool2d", "kernel": 2},
    {"type": "Conv2d", "in": 32, "out": 64, "kernel": 3, "padding": 1, "bias": false},
    {"type": "BatchNorm2d", "features": 64}, {"type": "ReLU"},
    {"type": "MaxPool2d", "kernel": 2}, {"type": "Dropout", "p": 0.25},
    {"type": "Flatten"},
    {"type": "Linear", "in": 3136, "out": 128}, {"type": "ReLU"}, {"type": "Dropout", "p": 0.3},
    {"type": "Linear", "in": 128, "out": 10}
  ],
  "loss": {"type": "cross_entropy"},
  "optimizer": {"type": "adam", "lr": 0.002},
  "schedule": {"type": "onecycle"},
  "epochs": 5, "batch_size": 64, "seed": 0
},
{
  "name": "logreg-iris",
  "description": "Logistic regression (one Linear layer + softmax) on sklearn's iris, 80/20 split",
  "task": "classification",
  "data": {"dataset": "sklearn:iris", "test_fraction": 0.2, "standardize": true},
  "model": [{"type": "Linear", "in": 4, "out": 3}],
  "loss": {"type": "cross_entropy"},
  "optimizer": {"type": "sgd", "lr": 0.1, "momentum": 0.9},
  "epochs": 60, "batch_size": 16, "seed": 0
},
{
  "name": "mlp-diabetes",
  "description": "MLP regression on sklearn's diabetes (MSE; reports RMSE and R^2), 80/20 split",
  "task": "regression",
  "data": {"dataset": "sklearn:diabetes", "test_fraction": 0.2, "standardize": true},
  "model": [
    {"type": "Linear", "in": 10, "out": 32}, {"type": "ReLU"},
    {"type": "Linear", "in": 32, "out": 1}
  ],
  "loss": {"type": "mse"},
  "optimizer": {"type": "adam", "lr": 0.01},
  "epochs": 150, "batch_size": 32, "seed": 0
}
])JSON";

const nlohmann::json& builtins() {
    static const nlohmann::json j = nlohmann::json::parse(kBuiltins);
    return j;
}

template <class T>
T opt(const nlohmann::json& j, const char* key, T def) {
    return j.contains(key) ? j.at(key).get<T>() : def;
}

std::array<int64_t, 2> pair(const nlohmann::json& j, const char* key, int64_t def) {
    if (!j.contains(key)) return {def, def};
    const auto& v = j.at(key);
    if (v.is_array()) {
        if (v.size() != 2)
            throw UsageError(std::string("recipe: \"") + key + "\" must be a number or [h, w]");
        return {v[0].get<int64_t>(), v[1].get<int64_t>()};
    }
    int64_t x = v.get<int64_t>();
    return {x, x};
}

std::shared_ptr<nn::Module> make_layer(const nlohmann::json& l, size_t index) {
    if (!l.is_object() || !l.contains("type"))
        throw UsageError("recipe: model layer " + std::to_string(index) +
                         " needs a \"type\" (e.g. {\"type\": \"Linear\", \"in\": 4, \"out\": 3})");
    std::string t = l.at("type").get<std::string>();
    if (t == "Linear")
        return std::make_shared<nn::Linear>(nn::LinearOptions{.in = l.at("in").get<int64_t>(),
                                                              .out = l.at("out").get<int64_t>(),
                                                              .bias = opt(l, "bias", true)});
    if (t == "Conv2d")
        return std::make_shared<nn::Conv2d>(
            nn::Conv2dOptions{.in = l.at("in").get<int64_t>(),
                              .out = l.at("out").get<int64_t>(),
                              .kernel = pair(l, "kernel", 1),
                              .stride = pair(l, "stride", 1),
                              .padding = pair(l, "padding", 0),
                              .dilation = pair(l, "dilation", 1),
                              .groups = opt<int64_t>(l, "groups", 1),
                              .bias = opt(l, "bias", true)});
    if (t == "Conv1d")
        return std::make_shared<nn::Conv1d>(
            nn::Conv1dOptions{.in = l.at("in").get<int64_t>(),
                              .out = l.at("out").get<int64_t>(),
                              .kernel = opt<int64_t>(l, "kernel", 1),
                              .stride = opt<int64_t>(l, "stride", 1),
                              .padding = opt<int64_t>(l, "padding", 0),
                              .dilation = opt<int64_t>(l, "dilation", 1),
                              .groups = opt<int64_t>(l, "groups", 1),
                              .bias = opt(l, "bias", true)});
    if (t == "MaxPool2d" || t == "AvgPool2d") {
        nn::functional::Pool2dArgs a{.kernel = pair(l, "kernel", 2)};
        if (l.contains("stride")) a.stride = pair(l, "stride", 1);
        a.padding = pair(l, "padding", 0);
        if (t == "MaxPool2d") return std::make_shared<nn::MaxPool2d>(a);
        return std::make_shared<nn::AvgPool2d>(a);
    }
    if (t == "AdaptiveAvgPool2d")
        return std::make_shared<nn::AdaptiveAvgPool2d>(pair(l, "output", 1));
    if (t == "BatchNorm1d" || t == "BatchNorm2d") {
        nn::BatchNormOptions o{.features = l.at("features").get<int64_t>(),
                               .eps = opt(l, "eps", 1e-5),
                               .momentum = opt(l, "momentum", 0.1)};
        if (t == "BatchNorm1d") return std::make_shared<nn::BatchNorm1d>(o);
        return std::make_shared<nn::BatchNorm2d>(o);
    }
    if (t == "LayerNorm")
        return std::make_shared<nn::LayerNorm>(
            nn::LayerNormOptions{.normalized_shape = l.at("shape").get<Shape>()});
    if (t == "Dropout") return std::make_shared<nn::Dropout>(opt(l, "p", 0.5));
    if (t == "Flatten")
        return std::make_shared<nn::Flatten>(opt<int64_t>(l, "start", 1),
                                             opt<int64_t>(l, "end", -1));
    if (t == "ReLU") return std::make_shared<nn::ReLU>();
    if (t == "LeakyReLU") return std::make_shared<nn::LeakyReLU>(opt(l, "slope", 0.01));
    if (t == "Sigmoid") return std::make_shared<nn::Sigmoid>();
    if (t == "Tanh") return std::make_shared<nn::Tanh>();
    if (t == "GELU") return std::make_shared<nn::GELU>(opt<std::string>(l, "approximate", "none"));
    if (t == "SiLU") return std::make_shared<nn::SiLU>();
    if (t == "Identity") return std::make_shared<nn::Identity>();
    throw UsageError("recipe: unknown layer type \"" + t + "\" in layer " + std::to_string(index) +
                     " (known: Linear, Conv1d, Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, "
                     "BatchNorm1d, BatchNorm2d, LayerNorm, Dropout, Flatten, ReLU, LeakyReLU, "
                     "Sigmoid, Tanh, GELU, SiLU, Identity)");
}

// Standardises columns with the training rows' mean and std (std 0 -> 1).
void standardize(Tensor& train, Tensor& test) {
    NoGradGuard ng;
    Tensor mu = train.mean({0}, true);
    Tensor sd = soma::std(train, {0}, false, true);
    sd = where(eq(sd, 0), ones_like(sd), sd);
    train = (train - mu) / sd;
    test = (test - mu) / sd;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> builtin_recipes() {
    std::vector<std::pair<std::string, std::string>> out;
    for (auto& r : builtins()) out.emplace_back(r.at("name"), r.at("description"));
    return out;
}

Recipe recipe_from_json(const nlohmann::json& j, const std::string& origin) {
    try {
        if (!j.is_object()) throw UsageError("recipe " + origin + ": must be a JSON object");
        for (const char* k : {"model", "data", "loss", "optimizer"})
            if (!j.contains(k)) throw UsageError("recipe " + origin + ": missing \"" + k + "\"");
        Recipe r;
        r.spec = j;
        r.name = opt<std::string>(j, "name", origin);
        r.description = opt<std::string>(j, "description", "");
        r.epochs = opt<int64_t>(j, "epochs", 1);
        r.batch_size = opt<int64_t>(j, "batch_size", 64);
        r.lr = j.at("optimizer").value("lr", 1e-3);
        r.seed = opt<uint64_t>(j, "seed", 0);
        std::string task = opt<std::string>(j, "task", "classification");
        if (task != "classification" && task != "regression")
            throw UsageError("recipe " + origin +
                             ": task must be \"classification\" or \"regression\"");
        r.task = task == "regression" ? train::Task::regression : train::Task::classification;
        return r;
    } catch (const nlohmann::json::exception& e) {
        throw UsageError("recipe " + origin + ": " + e.what());
    }
}

Recipe load_recipe(const std::string& name) {
    for (auto& r : builtins())
        if (r.at("name") == name) return recipe_from_json(r, name);
    std::ifstream in(name);
    if (!in) {
        std::string names;
        for (auto& [n, d] : builtin_recipes()) names += (names.empty() ? "" : ", ") + n;
        throw UsageError("unknown recipe \"" + name + "\": not a built-in (" + names +
                         ") and no such JSON file. Run `soma recipes` to list them.");
    }
    nlohmann::json j;
    try {
        in >> j;
    } catch (const std::exception& e) {
        throw UsageError("recipe " + name + ": invalid JSON: " + e.what());
    }
    return recipe_from_json(j, name);
}

Data load_data(const Recipe& r) {
    const auto& d = r.spec.at("data");
    std::string ds = d.value("dataset", "");
    Data out;
    try {
        if (ds == "fashion-mnist") {
            std::string root = d.value("root", "");
            auto tr = data::fashion_mnist(root, true);
            auto te = data::fashion_mnist(root, false);
            Tensor xtr = tr.inputs(), xte = te.inputs();
            if (d.contains("normalize")) {
                auto mv = d.at("normalize").get<std::vector<double>>();
                xtr = data::normalize(xtr, {mv.at(0)}, {mv.at(1)});
                xte = data::normalize(xte, {mv.at(0)}, {mv.at(1)});
            }
            out.train = std::make_shared<data::TensorDataset>(xtr, tr.targets());
            out.test = std::make_shared<data::TensorDataset>(xte, te.targets());
            out.input_shape = {1, 28, 28};
            out.class_names = data::FashionMNIST::classes();
            return out;
        }
        if (ds.rfind("sklearn:", 0) == 0) {
            auto full = data::sklearn_csv(ds.substr(8));
            int64_t n = full.size();
            double frac = d.value("test_fraction", 0.2);
            auto perm = data::random_permutation(n, r.seed + 1234);
            int64_t n_test = static_cast<int64_t>(static_cast<double>(n) * frac);
            std::vector<int64_t> te_idx(perm.begin(), perm.begin() + n_test),
                tr_idx(perm.begin() + n_test, perm.end());
            auto a = full.get_batch(tr_idx), b = full.get_batch(te_idx);
            Tensor xtr = a.input, xte = b.input, ytr = a.target, yte = b.target;
            if (d.value("standardize", false)) standardize(xtr, xte);
            if (r.task == train::Task::regression && ytr.dim() == 1) {
                ytr = ytr.unsqueeze(1);
                yte = yte.unsqueeze(1);
            }
            out.train = std::make_shared<data::TensorDataset>(xtr, ytr);
            out.test = std::make_shared<data::TensorDataset>(xte, yte);
            out.input_shape = {xtr.size(1)};
            return out;
        }
    } catch (const UsageError&) {
        throw;
    } catch (const Error& e) {
        throw UsageError(e.what());
    }
    throw UsageError("recipe " + r.name + ": unknown dataset \"" + ds +
                     "\" (known: fashion-mnist, sklearn:iris, sklearn:wine, sklearn:digits, "
                     "sklearn:breast_cancer, sklearn:diabetes)");
}

std::shared_ptr<nn::Sequential> build_model(const Recipe& r) {
    manual_seed(r.seed);
    auto seq = std::make_shared<nn::Sequential>();
    const auto& layers = r.spec.at("model");
    if (!layers.is_array() || layers.empty())
        throw UsageError("recipe " + r.name + ": \"model\" must be a non-empty list of layers");
    try {
        for (size_t i = 0; i < layers.size(); ++i) seq->push_back(make_layer(layers[i], i));
    } catch (const nlohmann::json::exception& e) {
        throw UsageError("recipe " + r.name + ": bad layer options: " + e.what());
    }
    return seq;
}

std::unique_ptr<nn::Loss> build_loss(const Recipe& r) {
    const auto& l = r.spec.at("loss");
    std::string t = l.value("type", "");
    if (t == "cross_entropy")
        return std::make_unique<nn::CrossEntropyLoss>(
            nn::functional::CrossEntropyArgs{.label_smoothing = l.value("label_smoothing", 0.0)});
    if (t == "mse") return std::make_unique<nn::MSELoss>();
    if (t == "l1") return std::make_unique<nn::L1Loss>();
    if (t == "huber")
        return std::make_unique<nn::HuberLoss>(nn::Reduction::mean, l.value("delta", 1.0));
    if (t == "bce_with_logits") return std::make_unique<nn::BCEWithLogitsLoss>();
    throw UsageError("recipe " + r.name + ": unknown loss \"" + t +
                     "\" (known: cross_entropy, mse, l1, huber, bce_with_logits)");
}

std::unique_ptr<optim::Optimizer> build_optimizer(const Recipe& r, nn::Module& model) {
    const auto& o = r.spec.at("optimizer");
    std::string t = o.value("type", "");
    double wd = o.value("weight_decay", 0.0);
    auto params = model.parameters();
    if (t == "sgd")
        return std::make_unique<optim::SGD>(
            params, optim::SGDOptions{.lr = r.lr,
                                      .momentum = o.value("momentum", 0.0),
                                      .weight_decay = wd,
                                      .nesterov = o.value("nesterov", false)});
    if (t == "adam")
        return std::make_unique<optim::Adam>(params,
                                             optim::AdamOptions{.lr = r.lr, .weight_decay = wd});
    if (t == "adamw")
        return std::make_unique<optim::AdamW>(
            params, optim::AdamWOptions{.lr = r.lr, .weight_decay = o.value("weight_decay", 1e-2)});
    if (t == "rmsprop")
        return std::make_unique<optim::RMSprop>(
            params, optim::RMSpropOptions{.lr = r.lr, .weight_decay = wd});
    if (t == "adagrad")
        return std::make_unique<optim::Adagrad>(
            params, optim::AdagradOptions{.lr = r.lr, .weight_decay = wd});
    throw UsageError("recipe " + r.name + ": unknown optimizer \"" + t +
                     "\" (known: sgd, adam, adamw, rmsprop, adagrad)");
}

std::unique_ptr<optim::LRScheduler> build_scheduler(const Recipe& r, optim::Optimizer& opt,
                                                    int64_t steps_per_epoch, bool& per_batch) {
    per_batch = false;
    if (!r.spec.contains("schedule") || r.spec.at("schedule").is_null()) return nullptr;
    const auto& s = r.spec.at("schedule");
    std::string t = s.value("type", "");
    if (t == "cosine")
        return std::make_unique<optim::CosineAnnealingLR>(
            opt, optim::CosineAnnealingLROptions{.t_max = std::max<int64_t>(r.epochs, 1),
                                                 .eta_min = s.value("eta_min", 0.0)});
    if (t == "step")
        return std::make_unique<optim::StepLR>(
            opt, optim::StepLROptions{.step_size = s.value("step_size", int64_t{1}),
                                      .gamma = s.value("gamma", 0.1)});
    if (t == "onecycle") {
        per_batch = true;
        return std::make_unique<optim::OneCycleLR>(
            opt, optim::OneCycleLROptions{.max_lr = {r.lr},
                                          .epochs = std::max<int64_t>(r.epochs, 1),
                                          .steps_per_epoch = steps_per_epoch,
                                          .pct_start = s.value("pct_start", 0.25)});
    }
    throw UsageError("recipe " + r.name + ": unknown schedule \"" + t +
                     "\" (known: cosine, step, onecycle)");
}

}  // namespace soma::app
