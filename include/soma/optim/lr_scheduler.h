// soma/optim/lr_scheduler.h — learning-rate schedules (PyTorch's torch.optim.lr_scheduler).
//
// A scheduler drives the lr of every param group of an Optimizer. Construction applies the
// epoch-0 value (as PyTorch); call step() once per epoch after optimizer.step() (OneCycleLR:
// once per batch; ReduceLROnPlateau: step(metric)). Values match PyTorch 1.13, including the
// recursive (chainable) forms of StepLR, ExponentialLR, CosineAnnealingLR and LinearLR.
// The base lrs are the groups' lrs when the scheduler is constructed.
//
//     soma::optim::SGD opt(params, {.lr = 0.1, .momentum = 0.9});
//     soma::optim::CosineAnnealingLR sched(opt, {.t_max = 100});
//     for (int epoch = 0; epoch < 100; ++epoch) { train_one_epoch(opt); sched.step(); }
//
// Resuming: save opt.state_dict() and sched.state_dict() (flat named tensors); construct both
// again with the same options and load the two. Throws soma::ValueError for invalid options.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "soma/optim/optimizer.h"

namespace soma::optim {

class LRScheduler {
  public:
    virtual ~LRScheduler();
    LRScheduler(const LRScheduler&) = delete;
    LRScheduler& operator=(const LRScheduler&) = delete;

    virtual const char* name() const = 0;
    /// Advances one epoch (one batch for OneCycleLR) and sets every group's lr.
    void step();
    /// The lr of each group after the last step (or construction).
    const std::vector<double>& get_last_lr() const { return last_lr_; }
    int64_t last_epoch() const { return last_epoch_; }
    Optimizer& optimizer() const { return opt_; }

    /// "last_epoch", "step_count", "base_lrs.<g>", "last_lr.<g>" as 0-dim float64 tensors.
    StateDict state_dict() const;
    /// Throws soma::ValueError for a missing entry or a different number of groups.
    void load_state_dict(const StateDict& state);

  protected:
    explicit LRScheduler(Optimizer& opt);
    /// The first step (epoch 0); derived constructors call it last.
    void initial_step();
    /// The lrs for last_epoch_ (already advanced).
    virtual std::vector<double> get_lr() = 0;
    double group_lr(size_t g) const;

    Optimizer& opt_;
    std::vector<double> base_lrs_;
    int64_t last_epoch_ = -1;
    int64_t step_count_ = 0;
    std::vector<double> last_lr_;
};

struct StepLROptions {
    int64_t step_size = 0;  // required, > 0
    double gamma = 0.1;
};
/// lr *= gamma every step_size epochs.
class StepLR : public LRScheduler {
  public:
    StepLR(Optimizer& opt, StepLROptions options);
    const char* name() const override { return "StepLR"; }

  protected:
    std::vector<double> get_lr() override;

  private:
    StepLROptions o_;
};

struct MultiStepLROptions {
    std::vector<int64_t> milestones = {};  // epochs; a repeated milestone decays once per repeat
    double gamma = 0.1;
};
/// lr *= gamma at each milestone epoch.
class MultiStepLR : public LRScheduler {
  public:
    MultiStepLR(Optimizer& opt, MultiStepLROptions options);
    const char* name() const override { return "MultiStepLR"; }

  protected:
    std::vector<double> get_lr() override;

  private:
    MultiStepLROptions o_;
};

struct ExponentialLROptions {
    double gamma = kRequired;  // required
};
/// lr *= gamma every epoch.
class ExponentialLR : public LRScheduler {
  public:
    ExponentialLR(Optimizer& opt, ExponentialLROptions options);
    const char* name() const override { return "ExponentialLR"; }

  protected:
    std::vector<double> get_lr() override;

  private:
    ExponentialLROptions o_;
};

struct CosineAnnealingLROptions {
    int64_t t_max = 0;  // PyTorch's T_max; required, > 0
    double eta_min = 0;
};
/// eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / t_max)) / 2, computed recursively as
/// PyTorch does (so it keeps rising again after t_max).
class CosineAnnealingLR : public LRScheduler {
  public:
    CosineAnnealingLR(Optimizer& opt, CosineAnnealingLROptions options);
    const char* name() const override { return "CosineAnnealingLR"; }

  protected:
    std::vector<double> get_lr() override;

  private:
    CosineAnnealingLROptions o_;
};

struct LinearWarmupOptions {
    double start_factor = 1.0 / 3;  // in (0, 1]
    double end_factor = 1.0;        // in [0, 1]
    int64_t total_iters = 5;        // warmup steps
};
/// lr = base_lr * factor, factor going linearly from start_factor to end_factor over
/// total_iters steps, then constant (torch.optim.lr_scheduler.LinearLR).
class LinearWarmup : public LRScheduler {
  public:
    LinearWarmup(Optimizer& opt, LinearWarmupOptions options = {});
    const char* name() const override { return "LinearWarmup"; }

  protected:
    std::vector<double> get_lr() override;

  private:
    LinearWarmupOptions o_;
};
using LinearLR = LinearWarmup;
using LinearLROptions = LinearWarmupOptions;

enum class AnnealStrategy { cos, linear };

struct OneCycleLROptions {
    std::vector<double> max_lr = {};  // required: one value for all groups, or one per group
    int64_t total_steps = 0;          // or epochs * steps_per_epoch
    int64_t epochs = 0;
    int64_t steps_per_epoch = 0;
    double pct_start = 0.3;
    AnnealStrategy anneal_strategy = AnnealStrategy::cos;
    bool cycle_momentum = true;  // SGD / RMSprop momentum, Adam / AdamW betas[0]
    double base_momentum = 0.85;
    double max_momentum = 0.95;
    double div_factor = 25;
    double final_div_factor = 1e4;
    bool three_phase = false;
};
/// The 1cycle policy, stepped once per batch: lr rises from max_lr / div_factor to max_lr over
/// pct_start of the steps, then anneals to initial_lr / final_div_factor; momentum moves
/// inversely between max_momentum and base_momentum. Stepping past total_steps throws.
class OneCycleLR : public LRScheduler {
  public:
    OneCycleLR(Optimizer& opt, OneCycleLROptions options);
    const char* name() const override { return "OneCycleLR"; }

  protected:
    std::vector<double> get_lr() override;

  private:
    struct Phase {
        double end_step;
        int start_lr, end_lr;              // index into lrs_: 0 initial, 1 max, 2 min
        int start_momentum, end_momentum;  // index into momentums_: 0 max, 1 base
    };
    double anneal(double start, double end, double pct) const;
    OneCycleLROptions o_;
    int64_t total_steps_ = 0;
    std::vector<Phase> phases_;
    std::vector<std::array<double, 3>> lrs_;        // initial, max, min per group
    std::vector<std::array<double, 2>> momentums_;  // max, base per group
};

enum class PlateauMode { min, max };
enum class ThresholdMode { rel, abs };

struct ReduceLROnPlateauOptions {
    PlateauMode mode = PlateauMode::min;
    double factor = 0.1;  // < 1
    int64_t patience = 10;
    double threshold = 1e-4;
    ThresholdMode threshold_mode = ThresholdMode::rel;
    int64_t cooldown = 0;
    std::vector<double> min_lr = {0};  // one value for all groups, or one per group
    double eps = 1e-8;                 // smaller lr changes are ignored
};
/// Multiplies every group's lr by factor once the metric has not improved for more than
/// patience epochs; then waits cooldown epochs.
class ReduceLROnPlateau {
  public:
    ReduceLROnPlateau(Optimizer& opt, ReduceLROnPlateauOptions options = {});
    const char* name() const { return "ReduceLROnPlateau"; }
    void step(double metric);
    const std::vector<double>& get_last_lr() const { return last_lr_; }
    int64_t last_epoch() const { return last_epoch_; }
    int64_t num_bad_epochs() const { return num_bad_epochs_; }
    double best() const { return best_; }
    Optimizer& optimizer() const { return opt_; }

    /// "last_epoch", "best", "num_bad_epochs", "cooldown_counter", "last_lr.<g>".
    StateDict state_dict() const;
    void load_state_dict(const StateDict& state);

  private:
    bool is_better(double a, double best) const;
    Optimizer& opt_;
    ReduceLROnPlateauOptions o_;
    std::vector<double> min_lrs_;
    double best_;
    int64_t num_bad_epochs_ = 0;
    int64_t cooldown_counter_ = 0;
    int64_t last_epoch_ = 0;
    std::vector<double> last_lr_;
};

}  // namespace soma::optim
