// soma/train.h — the fit loop, evaluation, checkpoints, progress display, metric logs and plots.
//
// fit() runs epochs of (forward, loss, backward, optimizer step) over a DataLoader, evaluates
// on a validation loader, shows a progress bar on stderr (plain periodic lines when stderr is
// not a terminal), appends each epoch to out_dir/metrics.csv, redraws out_dir/curves.png, and
// writes out_dir/checkpoint.safetensors atomically after every epoch (model, optimizer,
// scheduler, RNG state, history). With resume = true it continues from that checkpoint and ends
// with exactly the weights an uninterrupted run with the same seed and thread count gives.
//
//     soma::train::FitOptions fo{.epochs = 5, .out_dir = "runs/mlp"};
//     auto result = soma::train::fit(model, loss, opt, train_loader, &test_loader, fo);
//     std::cout << result.history.back().val_metric;
#pragma once

#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "soma/data.h"
#include "soma/io.h"
#include "soma/nn.h"
#include "soma/optim.h"

namespace soma::train {

enum class Task { classification, regression };

/// One row of metrics.csv. For classification the metric is accuracy, for regression RMSE.
struct EpochLog {
    int64_t epoch = 0;  // 1-based
    double train_loss = NAN, train_metric = NAN;
    double val_loss = NAN, val_metric = NAN;
    double lr = NAN;
    double seconds = 0;
};

class Trainer;

/// Hooks into fit(). Return true from on_epoch_end to stop training.
class Callback {
  public:
    virtual ~Callback() = default;
    virtual void on_train_begin(const Trainer&) {}
    virtual void on_batch_end(const Trainer&, int64_t /*batch*/, double /*loss*/) {}
    virtual bool on_epoch_end(const Trainer&, const EpochLog&) { return false; }
};

struct FitOptions {
    int64_t epochs = 1;
    Task task = Task::classification;
    std::string out_dir = "";  // "" = write no files
    bool resume = false;       // continue from out_dir/checkpoint.safetensors when it exists
    /// Stop after this many epochs without improvement of the validation loss (0 = off).
    int64_t early_stopping_patience = 0;
    bool progress = true;                              // progress bar / periodic lines on stderr
    bool plot = true;                                  // out_dir/curves.png after each epoch
    double clip_grad_norm = 0;                         // 0 = off
    optim::LRScheduler* scheduler = nullptr;           // stepped after every epoch
    bool scheduler_per_batch = false;                  // OneCycleLR: step after every batch
    optim::ReduceLROnPlateau* plateau = nullptr;       // stepped with the validation loss
    int64_t max_batches_per_epoch = 0;                 // 0 = all (short runs for tests)
    std::map<std::string, std::string> metadata = {};  // stored in every checkpoint
    std::vector<std::shared_ptr<Callback>> callbacks = {};
    /// Called with a fatal signal-free stop request check between batches (e.g. SIGINT flag).
    std::function<bool()> should_stop = {};
};

struct FitResult {
    std::vector<EpochLog> history;
    int64_t best_epoch = 0;  // by validation loss (train loss without validation)
    bool stopped_early = false;
    int64_t resumed_from = 0;  // epochs already done when resuming
    double seconds = 0;
};

struct EvalResult {
    double loss = NAN;
    double accuracy = NAN;        // classification
    double rmse = NAN, r2 = NAN;  // regression
    int64_t count = 0;
};

/// Trains `model`. Throws soma::Error on bad configuration (e.g. resume without out_dir).
FitResult fit(nn::Module& model, const nn::Loss& loss, optim::Optimizer& opt,
              data::DataLoader& train, data::DataLoader* val, const FitOptions& options);

/// Mean loss and accuracy (or RMSE and R²) over a loader, in eval mode without gradients;
/// restores the model's training flag.
EvalResult evaluate(nn::Module& model, const nn::Loss& loss, data::DataLoader& loader,
                    Task task = Task::classification);

/// The state fit() is in; callbacks read it.
class Trainer {
  public:
    nn::Module& model;
    optim::Optimizer& optimizer;
    const FitOptions& options;
    int64_t epoch = 0;
    std::vector<EpochLog> history;
};

// ---- checkpoints -------------------------------------------------------------------------------
/// Keys: "model.<name>", "optim.<name>", "sched.<name>", "plateau.<name>"; metadata adds
/// "format" = "soma-checkpoint-1" and the caller's entries.
void save_checkpoint(const std::string& path, const nn::Module& model,
                     const optim::Optimizer* opt = nullptr,
                     const optim::LRScheduler* sched = nullptr,
                     const std::map<std::string, std::string>& metadata = {},
                     const optim::ReduceLROnPlateau* plateau = nullptr);
/// Loads what is given (strict for the model); returns the metadata. Throws naming the file.
std::map<std::string, std::string> load_checkpoint(const std::string& path, nn::Module& model,
                                                   optim::Optimizer* opt = nullptr,
                                                   optim::LRScheduler* sched = nullptr,
                                                   optim::ReduceLROnPlateau* plateau = nullptr);

// ---- display and logs --------------------------------------------------------------------------
/// A progress bar for one epoch: "epoch 3/10 [#####.....] 120/469 1520 samples/s ETA 0:12
/// loss 0.4123". On a terminal it redraws in place; otherwise it prints a line about every 10%.
class ProgressBar {
  public:
    ProgressBar(std::string label, int64_t total, std::FILE* out = stderr);
    /// Forces terminal or plain mode (default: isatty of the stream).
    void set_interactive(bool on) { interactive_ = on; }
    void update(int64_t done, int64_t samples, double running_loss);
    void finish(const std::string& summary);

  private:
    std::string label_;
    int64_t total_;
    std::FILE* out_;
    bool interactive_;
    double start_;
    double last_draw_ = -1;
    int64_t last_decile_ = -1;
};

/// Appends one row per epoch to a CSV file (header written when the file is new).
void append_metrics_csv(const std::string& path, const EpochLog& log, Task task);
/// Rewrites a CSV with the whole history (used when resuming).
void write_metrics_csv(const std::string& path, const std::vector<EpochLog>& history, Task task);

/// A line chart PNG: loss (train, val) on the left panel, accuracy or RMSE on the right, with
/// axes, ticks and a legend. Written atomically.
void plot_curves_png(const std::string& path, const std::vector<EpochLog>& history, Task task,
                     const std::string& title = "");

}  // namespace soma::train
