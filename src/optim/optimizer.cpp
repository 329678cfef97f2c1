// Optimizer base: param groups, per-parameter state, the step loop and the flat state dict.
//
// State is keyed by the parameter's TensorImpl (PyTorch keys it by the parameter object); the
// state keeps a reference to the impl so that a freed parameter's address can never be
// mistaken for a new one. The state dict numbers parameters across groups in order, as
// PyTorch's does, so a dict can be loaded into an optimizer built over other tensors of the
// same shapes.
#include "soma/optim/optimizer.h"

#include <map>
#include <set>
#include <unordered_set>

#include "core/tensor_impl.h"
#include "optim/options_fields.h"
#include "soma/autograd.h"

namespace soma::optim {

namespace {

constexpr const char* kOptionsNames[] = {"(unset)",      "SGDOptions",     "AdamOptions",
                                         "AdamWOptions", "RMSpropOptions", "AdagradOptions"};
static_assert(std::size(kOptionsNames) == std::variant_size_v<GroupOptions>);

Tensor scalar64(double v) { return scalar_tensor(v, {.dtype = DType::float64}); }

bool starts_with(const std::string& s, const std::string& prefix) {
    return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

// ---- ParamGroup --------------------------------------------------------------------------------

namespace {
template <class O>
constexpr bool is_unset = std::is_same_v<std::decay_t<O>, std::monostate>;
[[noreturn]] void throw_unset() {
    throw Error(
        "ParamGroup: options are not set: the optimizer fills them with its defaults when it is "
        "constructed");
}
}  // namespace

double ParamGroup::lr() const {
    double r = 0;
    std::visit(
        [&](const auto& o) {
            if constexpr (is_unset<decltype(o)>)
                throw_unset();
            else
                r = o.lr;
        },
        options);
    return r;
}
void ParamGroup::set_lr(double lr) {
    std::visit(
        [&](auto& o) {
            if constexpr (is_unset<decltype(o)>)
                throw_unset();
            else
                o.lr = lr;
        },
        options);
}
bool ParamGroup::has_momentum() const {
    return std::holds_alternative<SGDOptions>(options) ||
           std::holds_alternative<RMSpropOptions>(options) ||
           std::holds_alternative<AdamOptions>(options) ||
           std::holds_alternative<AdamWOptions>(options);
}
double ParamGroup::momentum() const {
    if (auto* s = std::get_if<SGDOptions>(&options)) return s->momentum;
    if (auto* r = std::get_if<RMSpropOptions>(&options)) return r->momentum;
    if (auto* a = std::get_if<AdamOptions>(&options)) return a->betas[0];
    if (auto* w = std::get_if<AdamWOptions>(&options)) return w->betas[0];
    throw ValueError(detail::concat("ParamGroup: ", kOptionsNames[options.index()],
                                    " have no momentum (nor betas)"));
}
void ParamGroup::set_momentum(double m) {
    if (auto* s = std::get_if<SGDOptions>(&options)) {
        s->momentum = m;
    } else if (auto* r = std::get_if<RMSpropOptions>(&options)) {
        r->momentum = m;
    } else if (auto* a = std::get_if<AdamOptions>(&options)) {
        a->betas[0] = m;
    } else if (auto* w = std::get_if<AdamWOptions>(&options)) {
        w->betas[0] = m;
    } else {
        throw ValueError(detail::concat("ParamGroup: ", kOptionsNames[options.index()],
                                        " have no momentum (nor betas)"));
    }
}
void ParamGroup::throw_wrong_options() const {
    throw Error(
        detail::concat("ParamGroup: options_as: the group holds ", kOptionsNames[options.index()]));
}

// ---- ParamState --------------------------------------------------------------------------------

bool Optimizer::ParamState::has(std::string_view name) const {
    for (auto& [n, t] : buffers)
        if (n == name) return true;
    return false;
}
Tensor Optimizer::ParamState::get(std::string_view name, const Tensor& param, double fill) {
    for (auto& [n, t] : buffers)
        if (n == name) return t;
    Tensor t = full(param.shape(), fill, {.dtype = param.dtype(), .device = param.device()});
    buffers.emplace_back(std::string(name), t);
    return t;
}

// ---- Optimizer ---------------------------------------------------------------------------------

Optimizer::Optimizer(std::vector<ParamGroup> groups) : groups_(std::move(groups)) {}
Optimizer::~Optimizer() = default;

void Optimizer::check_group(const ParamGroup& group, size_t index) const {
    std::unordered_set<const TensorImpl*> seen;
    for (auto& g : groups_)
        if (&g != &group)
            for (auto& p : g.params)
                if (p.defined()) seen.insert(p.impl());
    for (size_t j = 0; j < group.params.size(); ++j) {
        const Tensor& p = group.params[j];
        SOMA_CHECK_VALUE(p.defined(), name(), ": parameter ", j, " of param group ", index,
                         " is an undefined tensor");
        SOMA_CHECK_DTYPE(p.is_floating_point(), name(),
                         ": can only optimize floating tensors: ", "parameter ", j,
                         " of param group ", index, " has dtype ", p.dtype());
        SOMA_CHECK_VALUE(p.is_leaf(), name(), ": can't optimize a non-leaf tensor: parameter ", j,
                         " of param group ", index, " was produced by '", p.name(),
                         "'. Use .detach().requires_grad_() to make a leaf.");
        SOMA_CHECK_VALUE(p.is_contiguous(), name(), ": parameter ", j, " of param group ", index,
                         " is not contiguous (shape ", p.shape(), ", strides ", p.strides(),
                         "). Optimize a contiguous leaf.");
        SOMA_CHECK_T(p.device() == Device::cpu(), DeviceError, name(), ": parameter ", j,
                     " of param group ", index, " is on ", p.device(), ", expected cpu");
        SOMA_CHECK_VALUE(seen.insert(p.impl()).second, name(),
                         ": some parameters appear more than once (parameter ", j,
                         " of param group ", index, "). Each tensor may be in one group only.");
    }
}

void Optimizer::setup_groups() {
    size_t total = 0;
    for (auto& g : groups_) total += g.params.size();
    SOMA_CHECK_VALUE(total > 0, name(), ": got an empty parameter list");
    const GroupOptions d = defaults();
    for (size_t i = 0; i < groups_.size(); ++i) {
        ParamGroup& g = groups_[i];
        check_group(g, i);
        if (std::holds_alternative<std::monostate>(g.options)) g.options = d;
        SOMA_CHECK_VALUE(g.options.index() == d.index(), name(), ": param group ", i, " holds ",
                         kOptionsNames[g.options.index()], ", expected ", kOptionsNames[d.index()]);
        validate(g.options, groups_.size() > 1 ? detail::concat(" in param group ", i) : "");
    }
    if (eager_state())
        for (auto& g : groups_)
            for (auto& p : g.params) {
                ParamState& st = state_of(p);
                if (!st.initialized) {
                    init_state(g, p, st);
                    st.initialized = true;
                }
            }
}

void Optimizer::add_param_group(ParamGroup group) {
    const GroupOptions d = defaults();
    const size_t i = groups_.size();
    groups_.push_back(std::move(group));
    try {
        ParamGroup& g = groups_.back();
        check_group(g, i);
        if (std::holds_alternative<std::monostate>(g.options)) g.options = d;
        SOMA_CHECK_VALUE(g.options.index() == d.index(), name(), ": param group ", i, " holds ",
                         kOptionsNames[g.options.index()], ", expected ", kOptionsNames[d.index()]);
        validate(g.options, detail::concat(" in param group ", i));
    } catch (...) {
        groups_.pop_back();
        throw;
    }
    if (eager_state())
        for (auto& p : groups_.back().params) {
            ParamState& st = state_of(p);
            init_state(groups_.back(), p, st);
            st.initialized = true;
        }
}

Optimizer::ParamState& Optimizer::state_of(const Tensor& param) {
    auto [it, inserted] = state_.try_emplace(param.impl());
    if (inserted) it->second.param = param.impl_ptr();
    return it->second;
}

void Optimizer::init_state(const ParamGroup&, const Tensor&, ParamState&) const {}

void Optimizer::step() {
    NoGradGuard no_grad;
    int64_t index = 0;
    for (auto& group : groups_) {
        for (auto& p : group.params) {
            const int64_t i = index++;
            Tensor grad = p.grad();
            if (!grad.defined()) continue;
            SOMA_CHECK_DTYPE(grad.dtype() == p.dtype(), name(), ": grad of parameter ", i,
                             " has dtype ", grad.dtype(), ", expected ", p.dtype(),
                             " (the parameter's dtype)");
            SOMA_CHECK_SHAPE(grad.shape() == p.shape(), name(), ": grad of parameter ", i,
                             " has shape ", grad.shape(), ", expected ", p.shape());
            SOMA_CHECK_T(grad.device() == p.device(), DeviceError, name(), ": grad of parameter ",
                         i, " is on ", grad.device(), ", expected ", p.device());
            SOMA_CHECK_VALUE(p.is_contiguous() && p.is_floating_point(), name(), ": parameter ", i,
                             " must be a contiguous floating tensor: got dtype ", p.dtype(),
                             ", strides ", p.strides());
            if (!grad.is_contiguous()) grad = grad.contiguous();
            ParamState& st = state_of(p);
            if (!st.initialized) {
                init_state(group, p, st);
                st.initialized = true;
            }
            if (p.numel() > 0) update(group, p, grad, st);
            ++p.impl()->storage->version;
        }
    }
}

void Optimizer::zero_grad(bool set_to_none) {
    NoGradGuard no_grad;
    for (auto& group : groups_) {
        for (auto& p : group.params) {
            Tensor g = p.grad();
            if (!g.defined()) continue;
            if (set_to_none) {
                p.set_grad(Tensor());
                continue;
            }
            if (g.grad_fn()) {
                g = g.detach();
                p.set_grad(g);
            }
            g.zero_();
        }
    }
}

double Optimizer::lr(int group) const {
    SOMA_CHECK_INDEX(group >= 0 && group < static_cast<int>(groups_.size()), name(),
                     ": lr: param group ", group, " out of range: the optimizer has ",
                     groups_.size(), " groups");
    return groups_[group].lr();
}

void Optimizer::set_lr(double lr) {
    SOMA_CHECK_VALUE(lr >= 0, name(), ": set_lr: invalid lr: got ", lr, ", expected lr >= 0");
    for (auto& g : groups_) g.set_lr(lr);
}

// ---- state dict --------------------------------------------------------------------------------

StateDict Optimizer::state_dict() const {
    StateDict out;
    int64_t index = 0;
    for (auto& group : groups_) {
        for (auto& p : group.params) {
            const int64_t i = index++;
            auto it = state_.find(p.impl());
            if (it == state_.end() || !it->second.initialized) continue;
            const std::string prefix = detail::concat("state.", i, ".");
            if (has_step()) out.emplace_back(prefix + "step", scalar64(it->second.step));
            for (auto& [n, t] : it->second.buffers) out.emplace_back(prefix + n, t.clone());
        }
    }
    index = 0;
    for (size_t g = 0; g < groups_.size(); ++g) {
        const std::string prefix = detail::concat("group.", g, ".");
        std::vector<int64_t> ids;
        for (size_t j = 0; j < groups_[g].params.size(); ++j) ids.push_back(index++);
        out.emplace_back(prefix + "params", from_vector(ids, {static_cast<int64_t>(ids.size())},
                                                        {.dtype = DType::int64}));
        GroupOptions o = groups_[g].options;
        for_each_option(o, [&](const char* field, auto& v) {
            out.emplace_back(prefix + field, scalar64(static_cast<double>(v)));
        });
    }
    return out;
}

void Optimizer::load_state_dict(const StateDict& state) {
    const std::string who = detail::concat(name(), ".load_state_dict");
    std::map<std::string, const Tensor*> entries;
    for (auto& [k, t] : state) {
        SOMA_CHECK_VALUE(entries.emplace(k, &t).second, who, ": duplicate entry '", k, "'");
        SOMA_CHECK_VALUE(t.defined(), who, ": entry '", k, "' is an undefined tensor");
    }
    std::set<std::string> used;
    auto find = [&](const std::string& key) -> const Tensor* {
        auto it = entries.find(key);
        if (it == entries.end()) return nullptr;
        used.insert(key);
        return it->second;
    };
    auto scalar = [&](const std::string& key) -> double {
        const Tensor* t = find(key);
        SOMA_CHECK_VALUE(t, who, ": missing entry '", key, "'");
        SOMA_CHECK_VALUE(t->numel() == 1, who, ": entry '", key, "' has shape ", t->shape(),
                         ", expected a scalar (0-dim tensor)");
        return t->item<double>();
    };

    // Groups: the same number, sizes and options type; the saved hyperparameters win.
    std::vector<GroupOptions> options;
    for (size_t g = 0; g < groups_.size(); ++g) {
        const std::string prefix = detail::concat("group.", g, ".");
        const Tensor* ids = find(prefix + "params");
        SOMA_CHECK_VALUE(ids, who, ": missing entry '", prefix, "params' (the state dict has ",
                         "fewer param groups than this optimizer's ", groups_.size(), ")");
        SOMA_CHECK_VALUE(ids->numel() == static_cast<int64_t>(groups_[g].params.size()), who,
                         ": param group ", g, " has ", ids->numel(),
                         " parameters in the state dict, expected ", groups_[g].params.size());
        GroupOptions o = groups_[g].options;
        for_each_option(o, [&](const char* field, auto& v) {
            using V = std::decay_t<decltype(v)>;
            const double d = scalar(prefix + field);
            if constexpr (std::is_same_v<V, bool>)
                v = d != 0;
            else
                v = d;
        });
        try {
            validate(o, detail::concat(" in param group ", g));
        } catch (const ValueError& e) {
            throw ValueError(detail::concat(who, ": ", e.what()));
        }
        options.push_back(o);
    }

    // Per-parameter state: all or nothing for each parameter.
    std::unordered_map<const TensorImpl*, ParamState> states;
    int64_t index = 0;
    for (size_t g = 0; g < groups_.size(); ++g) {
        std::vector<std::string> names = state_names(options[g]);
        for (auto& p : groups_[g].params) {
            const int64_t i = index++;
            const std::string prefix = detail::concat("state.", i, ".");
            auto first = entries.lower_bound(prefix);
            if (first == entries.end() || !starts_with(first->first, prefix)) {
                if (eager_state()) {
                    // Adagrad's state always exists; a missing one restarts from the defaults.
                    ParamState st;
                    st.param = p.impl_ptr();
                    init_state(ParamGroup{{}, options[g]}, p, st);
                    st.initialized = true;
                    states.emplace(p.impl(), std::move(st));
                }
                continue;
            }
            ParamState st;
            st.param = p.impl_ptr();
            st.initialized = true;
            if (has_step()) {
                const double s = scalar(prefix + "step");
                SOMA_CHECK_VALUE(s >= 0 && s == std::floor(s), who, ": entry '", prefix,
                                 "step' must be a non-negative integer: got ", s);
                st.step = s;
            }
            for (auto& n : names) {
                const Tensor* t = find(prefix + n);
                SOMA_CHECK_VALUE(t, who, ": missing entry '", prefix, n, "'");
                SOMA_CHECK_SHAPE(t->shape() == p.shape(), who, ": entry '", prefix, n,
                                 "' has shape ", t->shape(), ", expected ", p.shape(),
                                 " (the shape of parameter ", i, ")");
                SOMA_CHECK_DTYPE(t->is_floating_point(), who, ": entry '", prefix, n,
                                 "' has dtype ", t->dtype(), ", expected a floating dtype");
                Tensor c = t->to(p.dtype()).to(p.device()).clone();
                if (!c.is_contiguous()) c = c.contiguous();
                st.buffers.emplace_back(n, c);
            }
            states.emplace(p.impl(), std::move(st));
        }
    }
    for (auto& [k, t] : entries) {
        (void)t;
        SOMA_CHECK_VALUE(used.count(k), who, ": unexpected entry '", k, "' (", name(), " with ",
                         groups_.size(), " param group(s) and ", index,
                         " parameters does not have it)");
    }

    // Commit.
    for (size_t g = 0; g < groups_.size(); ++g) groups_[g].options = options[g];
    state_ = std::move(states);
}

}  // namespace soma::optim
