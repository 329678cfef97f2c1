// Internal: autograd graph nodes and the `record` helper every op uses.
//
// A Node has exactly one output (the tensor whose grad_fn it is) and one edge per input. Its
// backward maps d(loss)/d(output) to one gradient per input (undefined = no contribution).
// Backward closures are written in differentiable ops, so double backward comes for free.
#pragma once

#include <functional>
#include <initializer_list>
#include <memory>
#include <span>
#include <vector>

#include "core/tensor_impl.h"
#include "soma/autograd.h"

namespace soma {

using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad)>;

/// A node's input edges: up to two inline (most ops), more on the heap.
class Edges {
  public:
    using Ptr = std::shared_ptr<Node>;
    void push_back(Ptr p) {
        if (n_ < kInline) {
            small_[n_++] = std::move(p);
            return;
        }
        if (n_ == kInline)
            for (auto& s : small_) big_.push_back(std::move(s));
        big_.push_back(std::move(p));
        ++n_;
    }
    size_t size() const { return n_; }
    bool empty() const { return n_ == 0; }
    Ptr* begin() { return n_ <= kInline ? small_ : big_.data(); }
    Ptr* end() { return begin() + n_; }
    const Ptr* begin() const { return n_ <= kInline ? small_ : big_.data(); }
    const Ptr* end() const { return begin() + n_; }
    Ptr& operator[](size_t i) { return begin()[i]; }
    const Ptr& operator[](size_t i) const { return begin()[i]; }
    void clear() {
        for (auto& s : small_) s.reset();
        big_.clear();
        n_ = 0;
    }

  private:
    static constexpr size_t kInline = 2;
    Ptr small_[kInline];
    std::vector<Ptr> big_;
    size_t n_ = 0;
};

struct Node {
    const char* name = "";
    Edges next;  // per input; null when that input needs no grad
    BackwardFn backward;
    /// Saved tensors with their version when saved: backward refuses to run if any changed.
    std::vector<std::pair<std::shared_ptr<Storage>, uint64_t>> saved;
    std::vector<TensorHook> pre_hooks;   // hooks registered on the output (non-leaf)
    std::weak_ptr<TensorImpl> retained;  // output tensor that asked for retain_grad
    Shape shape;                         // output shape: incoming gradients must match it
    DType dtype = DType::float32;
    uint64_t seq = 0;  // creation order; later nodes run first
    bool released = false;
    // AccumulateGrad nodes (leaves): `accumulates` is set and `leaf` is the leaf. The leaf owns
    // its accumulator (so it is built once, not per op) and the node points back weakly: a leaf
    // nobody holds any more has no observable .grad, so its gradient is dropped.
    bool accumulates = false;
    std::weak_ptr<TensorImpl> leaf;

    Node();
    ~Node();  // iterative teardown: a 100k-node chain must not overflow the stack
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;
    void release();  // drops the closure and saved tensors (after backward without retain_graph)
};

/// The AccumulateGrad node of a leaf that requires grad (created once, then reused).
std::shared_ptr<Node> grad_accumulator(const Tensor& leaf);
/// The edge a gradient for `t` flows along (grad_fn, accumulator, or null).
std::shared_ptr<Node> gradient_edge(const Tensor& t);

/// True when recording is on and some input requires grad.
bool needs_grad(std::initializer_list<const Tensor*> inputs);
bool needs_grad(const std::vector<Tensor>& inputs);

/// Attaches a backward node to `out` if any input requires grad (and grad mode is on).
/// `saved` lists tensors captured by `fn` whose in-place modification must be detected.
/// Returns `out`. Also runs the anomaly-mode forward check.
Tensor record_span(const char* name, Tensor out, std::span<const Tensor> inputs, BackwardFn fn,
                   std::span<const Tensor> saved);
/// The usual call, record("op", out, {a, b}, fn): no vector is built for the braced lists.
Tensor record(const char* name, Tensor out, std::initializer_list<Tensor> inputs, BackwardFn fn,
              std::initializer_list<Tensor> saved = {});
Tensor record(const char* name, Tensor out, const std::vector<Tensor>& inputs, BackwardFn fn,
              const std::vector<Tensor>& saved = {});
/// As record(), with the inputs by address: no copies of the handles (no reference-count
/// traffic), for the hottest ops. record_refs("add", std::move(out), {&a, &b}, fn).
Tensor record_refs(const char* name, Tensor out, std::initializer_list<const Tensor*> inputs,
                   BackwardFn fn);

/// A saved output: captured without a strong reference cycle (output -> node -> output).
/// get() reattaches the node while it is alive so double backward sees through it.
class SavedOutput {
  public:
    SavedOutput() = default;
    explicit SavedOutput(const Tensor& out);
    Tensor get() const;
    void bind(const std::shared_ptr<Node>& node) { node_ = node; }

  private:
    Tensor data_;  // detached alias
    std::weak_ptr<Node> node_;
};

/// Records with a backward that needs the op's own output: `fn(grad, out)`.
Tensor record_with_output(const char* name, Tensor out, const std::vector<Tensor>& inputs,
                          std::function<std::vector<Tensor>(const Tensor&, const Tensor&)> fn,
                          const std::vector<Tensor>& saved = {});

void check_anomaly_forward(const char* name, const Tensor& out);

/// RAII, set by the engine while a backward closure runs. Anomaly mode then skips the forward
/// check of the ops inside the closure (a masked intermediate nan is legitimate there); the
/// engine checks the closure's results instead and names the node that produced them.
class BackwardScope {
  public:
    BackwardScope();
    ~BackwardScope();
    BackwardScope(const BackwardScope&) = delete;
    BackwardScope& operator=(const BackwardScope&) = delete;

  private:
    bool prev_;
};

}  // namespace soma
