// soma/optim/optimizer.h — first-order optimizers with PyTorch's names and update rules.
//
// SGD, Adam, AdamW, RMSprop and Adagrad follow PyTorch 1.13's single-tensor implementations
// exactly (same formulas in the same order). Each parameter is updated in one fused pass over
// its memory; parameters with an undefined grad are skipped. An optimizer holds param groups:
// each group has its own options (lr, weight_decay, momentum, ...); a group whose options are
// left unset takes the optimizer's defaults.
//
//     soma::optim::SGD opt(model.parameters(), {.lr = 0.1, .momentum = 0.9});
//     loss.backward(); opt.step(); opt.zero_grad();
//     soma::optim::Adam adam({{.params = {w}}, {.params = {b}, .options = AdamOptions{.lr =
//     1e-2}}},
//                            {.lr = 1e-3});
//     auto sd = opt.state_dict();      // flat named tensors: "state.0.momentum_buffer", ...
//
// Parameters must be contiguous floating-point CPU tensors (leaves). Throws soma::ValueError
// (naming the optimizer and the option) for invalid options, soma::DTypeError / ShapeError for
// a grad that does not match its parameter.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "soma/tensor.h"

namespace soma::optim {

/// Flat list of named tensors (a state dict) that a checkpoint writer can store as-is
/// (e.g. in safetensors). Scalars are 0-dim float64 tensors.
using StateDict = std::vector<std::pair<std::string, Tensor>>;

/// An lr left at this value must be given (SGD has no default learning rate).
inline constexpr double kRequired = std::numeric_limits<double>::quiet_NaN();

struct SGDOptions {
    double lr = kRequired;  // required
    double momentum = 0;
    double dampening = 0;
    double weight_decay = 0;  // L2 penalty added to the gradient
    bool nesterov = false;
    bool maximize = false;
};

struct AdamOptions {
    double lr = 1e-3;
    std::array<double, 2> betas = {0.9, 0.999};
    double eps = 1e-8;
    double weight_decay = 0;  // L2 penalty added to the gradient
    bool amsgrad = false;
    bool maximize = false;
};

/// Adam with decoupled weight decay: param *= 1 - lr * weight_decay before the Adam step.
struct AdamWOptions {
    double lr = 1e-3;
    std::array<double, 2> betas = {0.9, 0.999};
    double eps = 1e-8;
    double weight_decay = 1e-2;
    bool amsgrad = false;
    bool maximize = false;
};

struct RMSpropOptions {
    double lr = 1e-2;
    double alpha = 0.99;
    double eps = 1e-8;
    double weight_decay = 0;
    double momentum = 0;
    bool centered = false;
    bool maximize = false;
};

struct AdagradOptions {
    double lr = 1e-2;
    double lr_decay = 0;
    double weight_decay = 0;
    double initial_accumulator_value = 0;
    double eps = 1e-10;
    bool maximize = false;
};

/// A group's options; std::monostate (the default) means "use the optimizer's defaults".
using GroupOptions = std::variant<std::monostate, SGDOptions, AdamOptions, AdamWOptions,
                                  RMSpropOptions, AdagradOptions>;

struct ParamGroup {
    std::vector<Tensor> params = {};
    GroupOptions options = {};

    double lr() const;
    void set_lr(double lr);
    /// SGD / RMSprop: momentum; Adam / AdamW: betas[0]. Adagrad has none (has_momentum false).
    bool has_momentum() const;
    double momentum() const;
    void set_momentum(double m);
    /// The options as a concrete type; throws soma::Error when the group holds another type.
    template <class O>
    O& options_as() {
        O* o = std::get_if<O>(&options);
        if (!o) throw_wrong_options();
        return *o;
    }
    template <class O>
    const O& options_as() const {
        return const_cast<ParamGroup*>(this)->options_as<O>();
    }

  private:
    [[noreturn]] void throw_wrong_options() const;
};

class Optimizer {
  public:
    /// Checks the groups: at least one parameter, defined floating contiguous CPU tensors, none
    /// repeated. Options are filled and validated by the derived constructor.
    explicit Optimizer(std::vector<ParamGroup> groups);
    virtual ~Optimizer();
    Optimizer(const Optimizer&) = delete;
    Optimizer& operator=(const Optimizer&) = delete;

    /// "SGD", "Adam", ...
    virtual const char* name() const = 0;

    /// One update of every parameter that has a grad (under NoGradGuard; bumps each updated
    /// parameter's version counter).
    void step();
    /// Drops every grad (set_to_none) or zeroes it in place.
    void zero_grad(bool set_to_none = true);

    std::vector<ParamGroup>& param_groups() { return groups_; }
    const std::vector<ParamGroup>& param_groups() const { return groups_; }
    /// Appends a group (options unset: the defaults), validated like the constructor's.
    void add_param_group(ParamGroup group);

    /// Entries, parameters numbered across groups in order (as PyTorch):
    ///   "state.<i>.<buffer>" (e.g. exp_avg), "state.<i>.step" (0-dim float64),
    ///   "group.<g>.params" (int64 indices), "group.<g>.<option>" (0-dim float64; bools 0/1;
    ///   betas as "betas.0", "betas.1").
    StateDict state_dict() const;
    /// Restores a state_dict() of an optimizer of the same type over parameters of the same
    /// shapes. Throws soma::ValueError naming the missing / unexpected / mismatched entry;
    /// nothing changes when it throws.
    void load_state_dict(const StateDict& state);

    /// Learning rate of one group; set_lr sets every group's.
    double lr(int group = 0) const;
    void set_lr(double lr);

  protected:
    struct ParamState {
        std::shared_ptr<TensorImpl> param;  // keeps the key alive
        bool initialized = false;
        double step = 0;  // updates made (Adam, AdamW, RMSprop, Adagrad)
        std::vector<std::pair<std::string, Tensor>> buffers;

        bool has(std::string_view name) const;
        /// The named buffer, created filled with `fill` (param's shape and dtype) if missing.
        Tensor get(std::string_view name, const Tensor& param, double fill = 0);
    };

    /// Fills unset options with the defaults and validates every group. Derived constructors
    /// call it once.
    void setup_groups();
    ParamState& state_of(const Tensor& param);

    /// The defaults as a GroupOptions.
    virtual GroupOptions defaults() const = 0;
    /// Throws ValueError for invalid options; `where` is "" or " (param group 1)".
    virtual void validate(const GroupOptions& options, const std::string& where) const = 0;
    /// Buffers a parameter's state holds under these options (checked by load_state_dict).
    virtual std::vector<std::string> state_names(const GroupOptions& options) const = 0;
    virtual bool has_step() const { return true; }
    /// True when every parameter gets its state at construction (Adagrad) instead of lazily.
    virtual bool eager_state() const { return false; }
    /// Creates a fresh state (called before the first update of a parameter).
    virtual void init_state(const ParamGroup& group, const Tensor& param, ParamState& st) const;
    /// The fused update. `grad` is contiguous, same shape and dtype as `param`.
    virtual void update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
                        ParamState& st) = 0;

  private:
    void check_group(const ParamGroup& group, size_t index) const;
    std::vector<ParamGroup> groups_;
    std::unordered_map<const TensorImpl*, ParamState> state_;
};

/// Stochastic gradient descent with (Nesterov) momentum, dampening and L2 weight decay.
/// State: "momentum_buffer" (when momentum != 0).
class SGD : public Optimizer {
  public:
    SGD(std::vector<Tensor> params, SGDOptions options);
    SGD(std::vector<ParamGroup> groups, SGDOptions defaults);
    const char* name() const override { return "SGD"; }

  protected:
    GroupOptions defaults() const override { return defaults_; }
    void validate(const GroupOptions& options, const std::string& where) const override;
    std::vector<std::string> state_names(const GroupOptions& options) const override;
    bool has_step() const override { return false; }
    void update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
                ParamState& st) override;

  private:
    SGDOptions defaults_;
};

/// Adam (L2 weight decay added to the gradient), optionally AMSGrad.
/// State: "step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq" (amsgrad).
class Adam : public Optimizer {
  public:
    Adam(std::vector<Tensor> params, AdamOptions options = {});
    Adam(std::vector<ParamGroup> groups, AdamOptions defaults = {});
    const char* name() const override { return "Adam"; }

  protected:
    GroupOptions defaults() const override { return defaults_; }
    void validate(const GroupOptions& options, const std::string& where) const override;
    std::vector<std::string> state_names(const GroupOptions& options) const override;
    void update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
                ParamState& st) override;

  private:
    AdamOptions defaults_;
};

/// AdamW: Adam with decoupled weight decay (default 1e-2). State as Adam.
class AdamW : public Optimizer {
  public:
    AdamW(std::vector<Tensor> params, AdamWOptions options = {});
    AdamW(std::vector<ParamGroup> groups, AdamWOptions defaults = {});
    const char* name() const override { return "AdamW"; }

  protected:
    GroupOptions defaults() const override { return defaults_; }
    void validate(const GroupOptions& options, const std::string& where) const override;
    std::vector<std::string> state_names(const GroupOptions& options) const override;
    void update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
                ParamState& st) override;

  private:
    AdamWOptions defaults_;
};

/// RMSprop, optionally centered and with momentum.
/// State: "step", "square_avg", "momentum_buffer" (momentum > 0), "grad_avg" (centered).
class RMSprop : public Optimizer {
  public:
    RMSprop(std::vector<Tensor> params, RMSpropOptions options = {});
    RMSprop(std::vector<ParamGroup> groups, RMSpropOptions defaults = {});
    const char* name() const override { return "RMSprop"; }

  protected:
    GroupOptions defaults() const override { return defaults_; }
    void validate(const GroupOptions& options, const std::string& where) const override;
    std::vector<std::string> state_names(const GroupOptions& options) const override;
    void update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
                ParamState& st) override;

  private:
    RMSpropOptions defaults_;
};

/// Adagrad with lr decay. State (created for every parameter at construction, as PyTorch):
/// "step", "sum".
class Adagrad : public Optimizer {
  public:
    Adagrad(std::vector<Tensor> params, AdagradOptions options = {});
    Adagrad(std::vector<ParamGroup> groups, AdagradOptions defaults = {});
    const char* name() const override { return "Adagrad"; }

  protected:
    GroupOptions defaults() const override { return defaults_; }
    void validate(const GroupOptions& options, const std::string& where) const override;
    std::vector<std::string> state_names(const GroupOptions& options) const override;
    bool eager_state() const override { return true; }
    void init_state(const ParamGroup& group, const Tensor& param, ParamState& st) const override;
    void update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
                ParamState& st) override;

  private:
    AdagradOptions defaults_;
};

}  // namespace soma::optim
