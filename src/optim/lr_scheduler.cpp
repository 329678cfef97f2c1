// Learning-rate schedules: PyTorch 1.13's torch.optim.lr_scheduler, formula for formula.
//
// The epoch-based schedules use PyTorch's recursive ("chainable") get_lr(): each step derives
// the new lr from the group's current lr, so they compose with outside lr changes exactly as
// in PyTorch and their float64 values agree bit for bit.
#include "soma/optim/lr_scheduler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

namespace soma::optim {

namespace {

Tensor scalar64(double v) { return scalar_tensor(v, {.dtype = DType::float64}); }

// Looks up a 0-dim entry of a scheduler state dict.
struct EntryReader {
    const StateDict& state;
    std::string who;
    std::vector<bool> used = std::vector<bool>(state.size(), false);

    double get(const std::string& key) {
        for (size_t i = 0; i < state.size(); ++i) {
            if (state[i].first != key) continue;
            const Tensor& t = state[i].second;
            SOMA_CHECK_VALUE(t.defined() && t.numel() == 1, who, ": entry '", key,
                             "' must be a scalar (0-dim tensor)");
            used[i] = true;
            return t.item<double>();
        }
        throw ValueError(detail::concat(who, ": missing entry '", key, "'"));
    }
    void check_all_used() const {
        for (size_t i = 0; i < state.size(); ++i)
            SOMA_CHECK_VALUE(used[i], who, ": unexpected entry '", state[i].first, "'");
    }
};

// One value for every group, or one per group.
std::vector<double> per_group(const char* who, const char* option, const std::vector<double>& v,
                              size_t groups) {
    SOMA_CHECK_VALUE(v.size() == 1 || v.size() == groups, who, ": expected 1 or ", groups,
                     " values for ", option, " (one per param group): got ", v.size());
    return v.size() == 1 ? std::vector<double>(groups, v[0]) : v;
}

}  // namespace

// ---- LRScheduler -------------------------------------------------------------------------------

LRScheduler::LRScheduler(Optimizer& opt) : opt_(opt) {
    for (auto& g : opt_.param_groups()) base_lrs_.push_back(g.lr());
}
LRScheduler::~LRScheduler() = default;

void LRScheduler::initial_step() {
    step_count_ = 0;
    step();
}

double LRScheduler::group_lr(size_t g) const { return opt_.param_groups()[g].lr(); }

void LRScheduler::step() {
    auto& groups = opt_.param_groups();
    SOMA_CHECK_VALUE(groups.size() == base_lrs_.size(), name(), ": the optimizer has ",
                     groups.size(), " param groups, expected ", base_lrs_.size(),
                     " (as when the scheduler was created)");
    ++step_count_;
    ++last_epoch_;
    std::vector<double> lrs = get_lr();
    last_lr_.clear();
    for (size_t g = 0; g < groups.size(); ++g) {
        groups[g].set_lr(lrs[g]);
        last_lr_.push_back(lrs[g]);
    }
}

StateDict LRScheduler::state_dict() const {
    StateDict out;
    out.emplace_back("last_epoch", scalar64(static_cast<double>(last_epoch_)));
    out.emplace_back("step_count", scalar64(static_cast<double>(step_count_)));
    for (size_t g = 0; g < base_lrs_.size(); ++g)
        out.emplace_back(detail::concat("base_lrs.", g), scalar64(base_lrs_[g]));
    for (size_t g = 0; g < last_lr_.size(); ++g)
        out.emplace_back(detail::concat("last_lr.", g), scalar64(last_lr_[g]));
    return out;
}

void LRScheduler::load_state_dict(const StateDict& state) {
    EntryReader r{state, detail::concat(name(), ".load_state_dict")};
    const double last_epoch = r.get("last_epoch");
    const double step_count = r.get("step_count");
    std::vector<double> base(base_lrs_.size()), last(base_lrs_.size());
    for (size_t g = 0; g < base.size(); ++g) {
        base[g] = r.get(detail::concat("base_lrs.", g));
        last[g] = r.get(detail::concat("last_lr.", g));
    }
    r.check_all_used();
    last_epoch_ = static_cast<int64_t>(last_epoch);
    step_count_ = static_cast<int64_t>(step_count);
    base_lrs_ = base;
    last_lr_ = last;
}

// ---- StepLR ------------------------------------------------------------------------------------

StepLR::StepLR(Optimizer& opt, StepLROptions options) : LRScheduler(opt), o_(options) {
    SOMA_CHECK_VALUE(o_.step_size > 0, "StepLR: invalid step_size: got ", o_.step_size,
                     ", expected step_size > 0");
    initial_step();
}

std::vector<double> StepLR::get_lr() {
    // lr *= gamma when epoch is a positive multiple of step_size
    std::vector<double> lrs;
    const bool decay = last_epoch_ != 0 && last_epoch_ % o_.step_size == 0;
    for (size_t g = 0; g < base_lrs_.size(); ++g)
        lrs.push_back(decay ? group_lr(g) * o_.gamma : group_lr(g));
    return lrs;
}

// ---- MultiStepLR -------------------------------------------------------------------------------

MultiStepLR::MultiStepLR(Optimizer& opt, MultiStepLROptions options)
    : LRScheduler(opt), o_(std::move(options)) {
    initial_step();
}

std::vector<double> MultiStepLR::get_lr() {
    // lr *= gamma ** (times this epoch is a milestone)
    const auto hits = std::count(o_.milestones.begin(), o_.milestones.end(), last_epoch_);
    std::vector<double> lrs;
    for (size_t g = 0; g < base_lrs_.size(); ++g)
        lrs.push_back(hits ? group_lr(g) * std::pow(o_.gamma, static_cast<double>(hits))
                           : group_lr(g));
    return lrs;
}

// ---- ExponentialLR -----------------------------------------------------------------------------

ExponentialLR::ExponentialLR(Optimizer& opt, ExponentialLROptions options)
    : LRScheduler(opt), o_(options) {
    SOMA_CHECK_VALUE(!std::isnan(o_.gamma),
                     "ExponentialLR: gamma is required: got nan. Pass it, e.g. {.gamma = 0.95}");
    initial_step();
}

std::vector<double> ExponentialLR::get_lr() {
    std::vector<double> lrs;
    for (size_t g = 0; g < base_lrs_.size(); ++g)
        lrs.push_back(last_epoch_ == 0 ? group_lr(g) : group_lr(g) * o_.gamma);
    return lrs;
}

// ---- CosineAnnealingLR -------------------------------------------------------------------------

CosineAnnealingLR::CosineAnnealingLR(Optimizer& opt, CosineAnnealingLROptions options)
    : LRScheduler(opt), o_(options) {
    SOMA_CHECK_VALUE(o_.t_max > 0, "CosineAnnealingLR: invalid t_max: got ", o_.t_max,
                     ", expected t_max > 0");
    initial_step();
}

std::vector<double> CosineAnnealingLR::get_lr() {
    constexpr double pi = std::numbers::pi;
    const double t = static_cast<double>(last_epoch_);
    const double t_max = static_cast<double>(o_.t_max);
    std::vector<double> lrs;
    for (size_t g = 0; g < base_lrs_.size(); ++g) {
        const double lr = group_lr(g);
        if (last_epoch_ == 0) {
            lrs.push_back(lr);
        } else if ((last_epoch_ - 1 - o_.t_max) % (2 * o_.t_max) == 0) {
            // restart of the cosine: lr + (base - eta_min) (1 - cos(pi / t_max)) / 2
            lrs.push_back(lr + (base_lrs_[g] - o_.eta_min) * (1 - std::cos(pi / t_max)) / 2);
        } else {
            // (1 + cos(pi t / t_max)) / (1 + cos(pi (t - 1) / t_max)) (lr - eta_min) + eta_min
            lrs.push_back((1 + std::cos(pi * t / t_max)) / (1 + std::cos(pi * (t - 1) / t_max)) *
                              (lr - o_.eta_min) +
                          o_.eta_min);
        }
    }
    return lrs;
}

// ---- LinearWarmup ------------------------------------------------------------------------------

LinearWarmup::LinearWarmup(Optimizer& opt, LinearWarmupOptions options)
    : LRScheduler(opt), o_(options) {
    SOMA_CHECK_VALUE(o_.start_factor > 0 && o_.start_factor <= 1,
                     "LinearWarmup: invalid start_factor: got ", o_.start_factor,
                     ", expected 0 < start_factor <= 1");
    SOMA_CHECK_VALUE(o_.end_factor >= 0 && o_.end_factor <= 1,
                     "LinearWarmup: invalid end_factor: got ", o_.end_factor,
                     ", expected 0 <= end_factor <= 1");
    SOMA_CHECK_VALUE(o_.total_iters > 0, "LinearWarmup: invalid total_iters: got ", o_.total_iters,
                     ", expected total_iters > 0");
    initial_step();
}

std::vector<double> LinearWarmup::get_lr() {
    const double s = o_.start_factor, e = o_.end_factor;
    std::vector<double> lrs;
    for (size_t g = 0; g < base_lrs_.size(); ++g) {
        const double lr = group_lr(g);
        if (last_epoch_ == 0) {
            lrs.push_back(lr * s);
        } else if (last_epoch_ > o_.total_iters) {
            lrs.push_back(lr);
        } else {
            // lr *= 1 + (e - s) / (T s + (t - 1) (e - s))
            lrs.push_back(lr * (1. + (e - s) / (static_cast<double>(o_.total_iters) * s +
                                                static_cast<double>(last_epoch_ - 1) * (e - s))));
        }
    }
    return lrs;
}

// ---- OneCycleLR --------------------------------------------------------------------------------

OneCycleLR::OneCycleLR(Optimizer& opt, OneCycleLROptions options)
    : LRScheduler(opt), o_(std::move(options)) {
    auto& groups = opt_.param_groups();
    if (o_.total_steps != 0) {
        SOMA_CHECK_VALUE(o_.total_steps > 0, "OneCycleLR: invalid total_steps: got ",
                         o_.total_steps, ", expected a positive integer");
        total_steps_ = o_.total_steps;
    } else {
        SOMA_CHECK_VALUE(o_.epochs > 0 && o_.steps_per_epoch > 0,
                         "OneCycleLR: total_steps is not set: got epochs ", o_.epochs,
                         " and steps_per_epoch ", o_.steps_per_epoch,
                         ", expected total_steps > 0 or both epochs and steps_per_epoch > 0");
        total_steps_ = o_.epochs * o_.steps_per_epoch;
    }
    SOMA_CHECK_VALUE(o_.pct_start >= 0 && o_.pct_start <= 1, "OneCycleLR: invalid pct_start: got ",
                     o_.pct_start, ", expected 0 <= pct_start <= 1");
    SOMA_CHECK_VALUE(!o_.max_lr.empty(), "OneCycleLR: max_lr is required: got none. Pass it, ",
                     "e.g. {.max_lr = {0.1}, .total_steps = 1000}");
    const double total = static_cast<double>(total_steps_);
    if (o_.three_phase) {
        phases_ = {{o_.pct_start * total - 1, 0, 1, 0, 1},
                   {2 * o_.pct_start * total - 2, 1, 0, 1, 0},
                   {total - 1, 0, 2, 0, 0}};
    } else {
        phases_ = {{o_.pct_start * total - 1, 0, 1, 0, 1}, {total - 1, 1, 2, 1, 0}};
    }
    const std::vector<double> max_lrs = per_group("OneCycleLR", "max_lr", o_.max_lr, groups.size());
    for (size_t g = 0; g < groups.size(); ++g) {
        const double initial = max_lrs[g] / o_.div_factor;
        lrs_.push_back({initial, max_lrs[g], initial / o_.final_div_factor});
    }
    if (o_.cycle_momentum) {
        for (size_t g = 0; g < groups.size(); ++g) {
            SOMA_CHECK_VALUE(
                groups[g].has_momentum(),
                "OneCycleLR: optimizer must support momentum with cycle_momentum: ", opt_.name(),
                " has neither momentum nor betas. Set "
                ".cycle_momentum = false.");
            groups[g].set_momentum(o_.max_momentum);
            momentums_.push_back({o_.max_momentum, o_.base_momentum});
        }
    }
    for (size_t g = 0; g < groups.size(); ++g) base_lrs_[g] = lrs_[g][0];  // 'initial_lr'
    initial_step();
}

double OneCycleLR::anneal(double start, double end, double pct) const {
    if (o_.anneal_strategy == AnnealStrategy::cos) {
        const double cos_out = std::cos(std::numbers::pi * pct) + 1;
        return end + (start - end) / 2.0 * cos_out;
    }
    return (end - start) * pct + start;
}

std::vector<double> OneCycleLR::get_lr() {
    const int64_t step_num = last_epoch_;
    SOMA_CHECK_VALUE(step_num <= total_steps_, "OneCycleLR: tried to step ", step_num + 1,
                     " times: got more steps than total_steps ", total_steps_);
    auto& groups = opt_.param_groups();
    std::vector<double> lrs;
    for (size_t g = 0; g < groups.size(); ++g) {
        double start_step = 0;
        for (size_t i = 0; i < phases_.size(); ++i) {
            const Phase& ph = phases_[i];
            if (static_cast<double>(step_num) <= ph.end_step || i + 1 == phases_.size()) {
                const double pct =
                    (static_cast<double>(step_num) - start_step) / (ph.end_step - start_step);
                lrs.push_back(anneal(lrs_[g][ph.start_lr], lrs_[g][ph.end_lr], pct));
                if (o_.cycle_momentum)
                    groups[g].set_momentum(anneal(momentums_[g][ph.start_momentum],
                                                  momentums_[g][ph.end_momentum], pct));
                break;
            }
            start_step = ph.end_step;
        }
    }
    return lrs;
}

// ---- ReduceLROnPlateau -------------------------------------------------------------------------

ReduceLROnPlateau::ReduceLROnPlateau(Optimizer& opt, ReduceLROnPlateauOptions options)
    : opt_(opt), o_(std::move(options)) {
    SOMA_CHECK_VALUE(o_.factor < 1, "ReduceLROnPlateau: invalid factor: got ", o_.factor,
                     ", expected factor < 1");
    SOMA_CHECK_VALUE(o_.patience >= 0, "ReduceLROnPlateau: invalid patience: got ", o_.patience,
                     ", expected patience >= 0");
    SOMA_CHECK_VALUE(o_.cooldown >= 0, "ReduceLROnPlateau: invalid cooldown: got ", o_.cooldown,
                     ", expected cooldown >= 0");
    min_lrs_ = per_group("ReduceLROnPlateau", "min_lr", o_.min_lr, opt_.param_groups().size());
    const double inf = std::numeric_limits<double>::infinity();
    best_ = o_.mode == PlateauMode::min ? inf : -inf;
    for (auto& g : opt_.param_groups()) last_lr_.push_back(g.lr());
}

bool ReduceLROnPlateau::is_better(double a, double best) const {
    const bool rel = o_.threshold_mode == ThresholdMode::rel;
    if (o_.mode == PlateauMode::min)
        return rel ? a < best * (1. - o_.threshold) : a < best - o_.threshold;
    return rel ? a > best * (o_.threshold + 1.) : a > best + o_.threshold;
}

void ReduceLROnPlateau::step(double metric) {
    auto& groups = opt_.param_groups();
    SOMA_CHECK_VALUE(groups.size() == min_lrs_.size(), name(), ": the optimizer has ",
                     groups.size(), " param groups, expected ", min_lrs_.size(),
                     " (as when the scheduler was created)");
    last_epoch_ += 1;
    if (is_better(metric, best_)) {
        best_ = metric;
        num_bad_epochs_ = 0;
    } else {
        num_bad_epochs_ += 1;
    }
    if (cooldown_counter_ > 0) {
        cooldown_counter_ -= 1;
        num_bad_epochs_ = 0;  // bad epochs in cooldown don't count
    }
    if (num_bad_epochs_ > o_.patience) {
        for (size_t g = 0; g < groups.size(); ++g) {
            const double old_lr = groups[g].lr();
            const double new_lr = std::max(old_lr * o_.factor, min_lrs_[g]);
            if (old_lr - new_lr > o_.eps) groups[g].set_lr(new_lr);
        }
        cooldown_counter_ = o_.cooldown;
        num_bad_epochs_ = 0;
    }
    last_lr_.clear();
    for (auto& g : groups) last_lr_.push_back(g.lr());
}

StateDict ReduceLROnPlateau::state_dict() const {
    StateDict out;
    out.emplace_back("last_epoch", scalar64(static_cast<double>(last_epoch_)));
    out.emplace_back("best", scalar64(best_));
    out.emplace_back("num_bad_epochs", scalar64(static_cast<double>(num_bad_epochs_)));
    out.emplace_back("cooldown_counter", scalar64(static_cast<double>(cooldown_counter_)));
    for (size_t g = 0; g < last_lr_.size(); ++g)
        out.emplace_back(detail::concat("last_lr.", g), scalar64(last_lr_[g]));
    return out;
}

void ReduceLROnPlateau::load_state_dict(const StateDict& state) {
    EntryReader r{state, "ReduceLROnPlateau.load_state_dict"};
    const double last_epoch = r.get("last_epoch");
    const double best = r.get("best");
    const double bad = r.get("num_bad_epochs");
    const double cooldown = r.get("cooldown_counter");
    std::vector<double> last(min_lrs_.size());
    for (size_t g = 0; g < last.size(); ++g) last[g] = r.get(detail::concat("last_lr.", g));
    r.check_all_used();
    last_epoch_ = static_cast<int64_t>(last_epoch);
    best_ = best;
    num_bad_epochs_ = static_cast<int64_t>(bad);
    cooldown_counter_ = static_cast<int64_t>(cooldown);
    last_lr_ = last;
}

}  // namespace soma::optim
