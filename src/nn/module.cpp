// Module: registration, traversal, state dicts, printing, summary, error attribution.
#include "soma/nn/module.h"

#include <algorithm>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>

#include "core/tensor_impl.h"
#include "soma/autograd.h"
#include "soma/ops.h"

namespace soma::nn {

namespace {
// Error attribution: the innermost module whose forward raised prefixes its path once.
thread_local int tl_depth = 0;
thread_local bool tl_attributed = false;

struct SummaryRow {
    std::string path, type;
    Shape out;
    int64_t params;
};
thread_local std::vector<SummaryRow>* tl_summary = nullptr;

template <class E>
[[noreturn]] void rethrow_prefixed(const E& e, const std::string& prefix) {
    throw E(prefix + e.what());
}

std::string with_commas(int64_t v) {
    std::string s = std::to_string(v);
    for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3)
        s.insert(static_cast<size_t>(i), ",");
    return s;
}
}  // namespace

Tensor Module::forward(const Tensor&) {
    throw Error(describe() + ": this module has no single-input forward(); call its own method");
}

Tensor Module::operator()(const Tensor& x) {
    if (tl_depth == 0) tl_attributed = false;
    ++tl_depth;
    Tensor y;
    try {
        y = forward(x);
    } catch (const Error& e) {
        --tl_depth;
        if (tl_attributed) throw;
        tl_attributed = true;
        std::string prefix = describe() + ": ";
        if (auto* s = dynamic_cast<const ShapeError*>(&e)) rethrow_prefixed(*s, prefix);
        if (auto* d = dynamic_cast<const DTypeError*>(&e)) rethrow_prefixed(*d, prefix);
        if (auto* v = dynamic_cast<const ValueError*>(&e)) rethrow_prefixed(*v, prefix);
        if (auto* i = dynamic_cast<const IndexError*>(&e)) rethrow_prefixed(*i, prefix);
        if (auto* a = dynamic_cast<const AutogradError*>(&e)) rethrow_prefixed(*a, prefix);
        if (auto* dv = dynamic_cast<const DeviceError*>(&e)) rethrow_prefixed(*dv, prefix);
        rethrow_prefixed(e, prefix);
    }
    --tl_depth;
    if (tl_summary && children_.empty()) {
        int64_t n = 0;
        for (auto& [name, p] : params_) n += p.numel();
        tl_summary->push_back({path(), type_name(), y.defined() ? y.shape() : Shape{}, n});
    }
    return y;
}

Tensor& Module::register_parameter(const std::string& name, Tensor t, bool requires_grad) {
    SOMA_CHECK_VALUE(!name.empty() && name.find('.') == std::string::npos, describe(),
                     ": parameter name \"", name, "\" must be non-empty and contain no dots");
    for (auto& [n, p] : params_)
        SOMA_CHECK_VALUE(n != name, describe(), ": parameter \"", name, "\" already registered");
    if (t.defined()) {
        t = t.detach();
        if (requires_grad) t.requires_grad_();
    }
    params_.emplace_back(name, t);
    return params_.back().second;
}

Tensor& Module::register_buffer(const std::string& name, Tensor t) {
    SOMA_CHECK_VALUE(!name.empty() && name.find('.') == std::string::npos, describe(),
                     ": buffer name \"", name, "\" must be non-empty and contain no dots");
    buffers_.emplace_back(name, t.defined() ? t.detach() : t);
    return buffers_.back().second;
}

void Module::add_child(const std::string& name, Module* m, std::shared_ptr<Module> owned) {
    SOMA_CHECK_VALUE(m != nullptr, describe(), ": cannot register a null module as \"", name, "\"");
    SOMA_CHECK_VALUE(!name.empty() && name.find('.') == std::string::npos, describe(),
                     ": module name \"", name, "\" must be non-empty and contain no dots");
    for (auto& c : children_)
        SOMA_CHECK_VALUE(c.name != name, describe(), ": submodule \"", name,
                         "\" already registered");
    m->parent_ = this;
    m->name_ = name;
    children_.push_back({name, m, std::move(owned)});
}

std::string Module::path() const {
    if (!parent_) return "";
    std::string p = parent_->path();
    return p.empty() ? name_ : p + "." + name_;
}

std::string Module::describe() const {
    std::string p = path();
    return p.empty() ? type_name() : p + " (" + type_name() + ")";
}

NamedTensors Module::named_parameters(bool recurse) const {
    NamedTensors out;
    for (auto& [n, p] : params_)
        if (p.defined()) out.emplace_back(n, p);
    if (recurse)
        for (auto& c : children_)
            for (auto& [n, p] : c.module->named_parameters(true))
                out.emplace_back(c.name + "." + n, p);
    return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
    std::vector<Tensor> out;
    for (auto& [n, p] : named_parameters(recurse)) out.push_back(p);
    return out;
}

NamedTensors Module::named_buffers(bool recurse) const {
    NamedTensors out;
    for (auto& [n, b] : buffers_)
        if (b.defined()) out.emplace_back(n, b);
    if (recurse)
        for (auto& c : children_)
            for (auto& [n, b] : c.module->named_buffers(true))
                out.emplace_back(c.name + "." + n, b);
    return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_children() const {
    std::vector<std::pair<std::string, Module*>> out;
    for (auto& c : children_) out.emplace_back(c.name, c.module);
    return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
    std::vector<std::pair<std::string, Module*>> out{{"", this}};
    for (auto& c : children_)
        for (auto& [n, m] : c.module->named_modules())
            out.emplace_back(n.empty() ? c.name : c.name + "." + n, m);
    return out;
}

Tensor& Module::get(const std::string& dotted) {
    auto dot = dotted.find('.');
    if (dot == std::string::npos) {
        for (auto& [n, p] : params_)
            if (n == dotted) return p;
        for (auto& [n, b] : buffers_)
            if (n == dotted) return b;
    } else {
        std::string head = dotted.substr(0, dot);
        for (auto& c : children_)
            if (c.name == head) return c.module->get(dotted.substr(dot + 1));
    }
    std::string known;
    for (auto& [n, t] : state_dict()) known += (known.empty() ? "" : ", ") + n;
    throw ValueError(describe() + ": no parameter or buffer named \"" + dotted +
                     "\". Known: " + known);
}

int64_t Module::num_parameters(bool trainable_only) const {
    int64_t n = 0;
    for (auto& [name, p] : named_parameters())
        if (!trainable_only || p.requires_grad()) n += p.numel();
    return n;
}

void Module::train(bool on) {
    training_ = on;
    for (auto& c : children_) c.module->train(on);
}

void Module::zero_grad(bool set_to_none) {
    for (auto& p : parameters()) {
        if (!p.grad().defined()) continue;
        if (set_to_none) {
            p.set_grad(Tensor());
        } else {
            NoGradGuard ng;
            Tensor g = p.grad();
            g.zero_();
        }
    }
}

void Module::to(DType dtype) {
    NoGradGuard ng;
    auto convert = [&](Tensor& t) {
        if (!t.defined() || !is_floating(t.dtype()) || t.dtype() == dtype) return;
        // Keep the handle's identity (optimizers hold it): swap the impl's storage.
        Tensor c = t.to(dtype).contiguous();
        TensorImpl* impl = t.impl();
        impl->storage = c.impl()->storage;
        impl->strides = c.strides();
        impl->offset = c.storage_offset();
        impl->dtype = dtype;
        impl->grad = Tensor();
    };
    for (auto& [n, p] : params_) convert(p);
    for (auto& [n, b] : buffers_) convert(b);
    for (auto& c : children_) c.module->to(dtype);
}

NamedTensors Module::state_dict() const {
    NamedTensors out;
    for (auto& [n, p] : params_)
        if (p.defined()) out.emplace_back(n, p.detach());
    for (auto& [n, b] : buffers_)
        if (b.defined()) out.emplace_back(n, b.detach());
    for (auto& c : children_)
        for (auto& [n, t] : c.module->state_dict()) out.emplace_back(c.name + "." + n, t);
    return out;
}

void Module::load_state_dict(const NamedTensors& sd, bool strict) {
    NamedTensors mine = state_dict();
    std::map<std::string, Tensor> given;
    for (auto& [n, t] : sd) given[n] = t;
    std::vector<std::string> missing, unexpected, mismatched;
    std::set<std::string> have;
    for (auto& [n, t] : mine) {
        have.insert(n);
        auto it = given.find(n);
        if (it == given.end()) {
            missing.push_back(n);
        } else if (it->second.shape() != t.shape()) {
            mismatched.push_back(n + ": checkpoint " + shape_str(it->second.shape()) + ", model " +
                                 shape_str(t.shape()));
        }
    }
    for (auto& [n, t] : sd)
        if (!have.count(n)) unexpected.push_back(n);
    auto join = [](const std::vector<std::string>& v) {
        std::string s;
        for (auto& x : v) s += (s.empty() ? "" : ", ") + x;
        return s;
    };
    if (!mismatched.empty() || (strict && (!missing.empty() || !unexpected.empty()))) {
        std::string msg = describe() + ": error(s) in load_state_dict:";
        if (!missing.empty()) msg += " missing keys: " + join(missing) + ".";
        if (!unexpected.empty()) msg += " unexpected keys: " + join(unexpected) + ".";
        if (!mismatched.empty()) msg += " shape mismatch: " + join(mismatched) + ".";
        throw ValueError(msg);
    }
    NoGradGuard ng;
    for (auto& [n, t] : mine) {
        auto it = given.find(n);
        if (it == given.end()) continue;
        Tensor dst = t;  // shares memory with the parameter
        dst.copy_(it->second);
    }
}

std::string Module::to_string() const {
    std::ostringstream os;
    os << type_name() << "(";
    std::string extra = extra_repr();
    if (children_.empty()) {
        os << extra << ")";
        return os.str();
    }
    os << "\n";
    if (!extra.empty()) os << "  " << extra << "\n";
    for (auto& c : children_) {
        std::string child = c.module->to_string();
        std::string indented;
        for (char ch : child) {
            indented += ch;
            if (ch == '\n') indented += "  ";
        }
        os << "  (" << c.name << "): " << indented << "\n";
    }
    os << ")";
    return os.str();
}

std::ostream& operator<<(std::ostream& os, const Module& m) { return os << m.to_string(); }

std::string Module::summary(const Shape& input_shape, DType dtype) {
    std::vector<SummaryRow> rows;
    bool was_training = training_;
    eval();
    tl_summary = &rows;
    Shape out_shape;
    try {
        NoGradGuard ng;
        out_shape = (*this)(zeros(input_shape, {.dtype = dtype})).shape();
    } catch (...) {
        tl_summary = nullptr;
        train(was_training);
        throw;
    }
    tl_summary = nullptr;
    train(was_training);
    std::ostringstream os;
    const int w1 = 34, w2 = 24, w3 = 14;
    std::string rule(w1 + w2 + w3, '=');
    os << type_name() << " summary (input " << shape_str(input_shape) << ")\n" << rule << "\n";
    os << std::left << std::setw(w1) << "Layer (type)" << std::setw(w2) << "Output Shape"
       << std::right << std::setw(w3) << "Param #"
       << "\n"
       << rule << "\n";
    for (auto& r : rows) {
        std::string name = (r.path.empty() ? std::string("(root)") : r.path) + " (" + r.type + ")";
        os << std::left << std::setw(w1) << name << std::setw(w2) << shape_str(r.out) << std::right
           << std::setw(w3) << with_commas(r.params) << "\n";
    }
    int64_t total = num_parameters(), trainable = num_parameters(true);
    os << rule << "\n"
       << "Total params: " << with_commas(total) << "\n"
       << "Trainable params: " << with_commas(trainable) << "\n"
       << "Non-trainable params: " << with_commas(total - trainable) << "\n"
       << "Output shape: " << shape_str(out_shape) << "\n";
    return os.str();
}

Tensor Sequential::forward(const Tensor& x) {
    Tensor y = x;
    for (auto& c : children_) y = (*c.module)(y);
    return y;
}

}  // namespace soma::nn
