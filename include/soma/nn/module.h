// soma/nn/module.h — the base of every layer and model.
//
// A Module owns parameters and buffers (registered by name) and child modules; names join
// with dots (`fc1.weight`) exactly as in PyTorch, so state dicts move between the two.
// Modules are neither copyable nor movable (children are registered by reference).
//
//     struct Mlp : soma::nn::Module {
//         soma::nn::Linear fc1{{.in = 784, .out = 256}}, fc2{{.in = 256, .out = 10}};
//         Mlp() { register_module("fc1", fc1); register_module("fc2", fc2); }
//         soma::Tensor forward(const soma::Tensor& x) override { return fc2(soma::relu(fc1(x))); }
//     };
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "soma/tensor.h"

namespace soma::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
  public:
    Module() = default;
    virtual ~Module() = default;
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;

    /// The single-input forward pass. Modules with other signatures define their own calls.
    virtual Tensor forward(const Tensor& x);
    /// Calls forward(x); errors raised inside gain this module's path, e.g. "fc2 (Linear): ...".
    Tensor operator()(const Tensor& x);

    /// Type name used in printing and errors ("Linear").
    virtual std::string type_name() const { return "Module"; }
    /// Options shown in printing ("in_features=784, out_features=256, bias=true").
    virtual std::string extra_repr() const { return ""; }

    Tensor& register_parameter(const std::string& name, Tensor t, bool requires_grad = true);
    Tensor& register_buffer(const std::string& name, Tensor t);
    /// Registers a member submodule (not owned).
    template <class M>
    M& register_module(const std::string& name, M& child) {
        add_child(name, &child, nullptr);
        return child;
    }
    /// Registers an owned submodule.
    template <class M>
    std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> child) {
        add_child(name, child.get(), child);
        return child;
    }

    NamedTensors named_parameters(bool recurse = true) const;
    std::vector<Tensor> parameters(bool recurse = true) const;
    NamedTensors named_buffers(bool recurse = true) const;
    std::vector<std::pair<std::string, Module*>> named_children() const;
    /// This module ("") and every descendant, depth first, with dotted paths.
    std::vector<std::pair<std::string, Module*>> named_modules();
    /// Parameter or buffer by dotted name; throws listing the known names.
    Tensor& get(const std::string& dotted_name);
    int64_t num_parameters(bool trainable_only = false) const;

    void train(bool on = true);
    void eval() { train(false); }
    bool is_training() const { return training_; }
    void zero_grad(bool set_to_none = true);
    /// Converts floating parameters and buffers (in place, keeping identity) to dtype.
    void to(DType dtype);

    /// Parameters then buffers, dotted names, detached (shares memory with the module).
    NamedTensors state_dict() const;
    /// Copies values in. strict: error listing missing keys, unexpected keys and shape
    /// mismatches. Non-strict: loads what matches, still errors on shape mismatches.
    void load_state_dict(const NamedTensors& sd, bool strict = true);

    /// Multi-line description like PyTorch's print(model).
    std::string to_string() const;
    /// Keras-style table: layer path, type, output shape, parameter count; runs one forward
    /// pass (no grad, eval mode restored afterwards) on zeros of `input_shape`.
    std::string summary(const Shape& input_shape, DType dtype = DType::float32);

    /// Path from the root ("" for the root, "features.0" ...).
    std::string path() const;

  protected:
    struct Child {
        std::string name;
        Module* module;
        std::shared_ptr<Module> owned;
    };
    void add_child(const std::string& name, Module* m, std::shared_ptr<Module> owned);
    std::string describe() const;  // "fc2 (Linear)" or "Linear" at the root

    std::deque<std::pair<std::string, Tensor>> params_;
    std::deque<std::pair<std::string, Tensor>> buffers_;
    std::vector<Child> children_;
    Module* parent_ = nullptr;
    std::string name_;
    bool training_ = true;

    friend std::ostream& operator<<(std::ostream& os, const Module& m);
};

std::ostream& operator<<(std::ostream& os, const Module& m);

/// A chain of modules applied in order; children are named "0", "1", ...
class Sequential : public Module {
  public:
    Sequential() = default;
    template <class... Ms>
    explicit Sequential(std::shared_ptr<Ms>... ms) {
        (push_back(std::move(ms)), ...);
    }
    template <class M>
    std::shared_ptr<M> push_back(std::shared_ptr<M> m) {
        return register_module(std::to_string(children_.size()), std::move(m));
    }
    /// Constructs and appends: seq.emplace<Linear>(LinearOptions{.in = 4, .out = 3}).
    template <class M, class... Args>
    std::shared_ptr<M> emplace(Args&&... args) {
        return push_back(std::make_shared<M>(std::forward<Args>(args)...));
    }
    Tensor forward(const Tensor& x) override;
    size_t size() const { return children_.size(); }
    Module& operator[](size_t i) const { return *children_.at(i).module; }
    std::string type_name() const override { return "Sequential"; }
};

/// A list of modules registered under "0", "1", ... with no forward of its own.
class ModuleList : public Module {
  public:
    template <class M>
    std::shared_ptr<M> push_back(std::shared_ptr<M> m) {
        return register_module(std::to_string(children_.size()), std::move(m));
    }
    size_t size() const { return children_.size(); }
    Module& operator[](size_t i) const { return *children_.at(i).module; }
    std::string type_name() const override { return "ModuleList"; }
};

}  // namespace soma::nn
