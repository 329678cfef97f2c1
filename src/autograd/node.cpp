// Graph nodes, recording, saved outputs, grad mode and anomaly mode.
#include "autograd/node.h"

#include <atomic>
#include <cmath>

#include "backend/backend.h"
#include "core/pool.h"
#include "soma/ops.h"

namespace soma {

namespace {
thread_local bool tl_grad_enabled = true;
thread_local bool tl_in_backward = false;
std::atomic<bool> g_anomaly{false};
std::atomic<uint64_t> g_seq{0};

// Iterative teardown. Destroying a node releases its children and its closure (whose captured
// tensors hold further nodes). The outermost ~Node releases its own parts directly and then
// drains what nested ones handed over, in a loop; nested ones only hand their parts over, so
// the stack depth stays constant however long the chain.
thread_local int tl_teardown_depth = 0;
thread_local std::vector<std::shared_ptr<Node>> tl_pending_nodes;
thread_local std::vector<BackwardFn> tl_pending_fns;
thread_local bool tl_pending_any = false;  // plain flag: cheaper to test than the vectors
}  // namespace

bool is_grad_enabled() { return tl_grad_enabled; }
void set_grad_enabled(bool e) { tl_grad_enabled = e; }
namespace autograd {
bool is_anomaly_enabled() { return g_anomaly.load(std::memory_order_relaxed); }
void set_anomaly_enabled(bool e) { g_anomaly.store(e); }
}  // namespace autograd

BackwardScope::BackwardScope() : prev_(tl_in_backward) { tl_in_backward = true; }
BackwardScope::~BackwardScope() { tl_in_backward = prev_; }

namespace {
bool check_forward() { return autograd::is_anomaly_enabled() && !tl_in_backward; }

// The one rule behind needs_grad and record: recording is on and some input is defined and
// requires grad (a leaf asking for it, or a non-leaf). `input(i)` is the i-th input.
template <class Input>
bool needs_grad_impl(size_t n_inputs, Input input) {
    if (!tl_grad_enabled) return false;
    for (size_t i = 0; i < n_inputs; ++i) {
        const TensorImpl* ti = input(i).impl();
        if (ti && (ti->requires_grad || ti->grad_fn)) return true;
    }
    return false;
}

// The outermost ~Node frees what nested ones handed over.
void drain_pending() {
    while (!tl_pending_nodes.empty() || !tl_pending_fns.empty()) {
        if (!tl_pending_nodes.empty()) {
            std::shared_ptr<Node> n = std::move(tl_pending_nodes.back());
            tl_pending_nodes.pop_back();
        } else {
            BackwardFn f = std::move(tl_pending_fns.back());
            tl_pending_fns.pop_back();
        }
    }
    tl_pending_any = false;
}
}  // namespace

Node::Node() : seq(g_seq.fetch_add(1, std::memory_order_relaxed)) {}

Node::~Node() {
    if (tl_teardown_depth > 0) {
        for (auto& n : next)
            if (n) {
                tl_pending_nodes.push_back(std::move(n));
                tl_pending_any = true;
            }
        if (backward) {
            tl_pending_fns.push_back(std::move(backward));
            tl_pending_any = true;
        }
        return;
    }
    ++tl_teardown_depth;
    next.clear();
    backward = nullptr;
    if (tl_pending_any) drain_pending();
    --tl_teardown_depth;
}

void Node::release() {
    BackwardFn f = std::move(backward);
    backward = nullptr;
    saved.clear();
    released = true;
}

std::shared_ptr<Node> grad_accumulator(const Tensor& leaf) {
    TensorImpl* impl = leaf.impl();
    if (impl->grad_accumulator) return impl->grad_accumulator;
    auto acc = detail::make_pooled<Node>();
    acc->name = "AccumulateGrad";
    acc->accumulates = true;
    acc->leaf = leaf.impl_ptr();
    acc->shape = impl->shape;
    acc->dtype = impl->dtype;
    impl->grad_accumulator = acc;
    return acc;
}

std::shared_ptr<Node> gradient_edge(const Tensor& t) {
    TensorImpl* impl = t.impl();
    if (impl->grad_fn) return impl->grad_fn;
    if (impl->requires_grad) return grad_accumulator(t);
    return nullptr;
}

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
    const Tensor* const* in = inputs.begin();
    return needs_grad_impl(inputs.size(), [&](size_t i) -> const Tensor& { return *in[i]; });
}
bool needs_grad(const std::vector<Tensor>& inputs) {
    return needs_grad_impl(inputs.size(), [&](size_t i) -> const Tensor& { return inputs[i]; });
}

void check_anomaly_forward(const char* name, const Tensor& out) {
    if (!is_floating(out.dtype()) || out.numel() == 0) return;
    NoGradGuard ng;
    Tensor fin = make_tensor(out.shape(), DType::boolean, out.device());
    backend(out).unary(UnaryOp::isfinite, out, fin, 0, 0);
    for (bool b : fin.to_vector<bool>())
        if (!b)
            throw AutogradError(detail::concat("anomaly: function '", name,
                                               "' produced nan or inf in its forward output "
                                               "(shape ",
                                               shape_str(out.shape()), ")"));
}

namespace {

// The one body of record(): `input(i)` is the i-th input tensor.
template <class Input>
Tensor record_impl(const char* name, Tensor out, size_t n_inputs, Input input, BackwardFn& fn,
                   std::span<const Tensor> saved) {
    if (check_forward()) check_anomaly_forward(name, out);
    TensorImpl* oi = out.impl();
    if (!needs_grad_impl(n_inputs, input) || !is_floating(oi->dtype)) return out;
    auto node = detail::make_pooled<Node>();
    node->name = name;
    for (size_t i = 0; i < n_inputs; ++i) {
        const Tensor& t = input(i);
        node->next.push_back(t.defined() ? gradient_edge(t) : nullptr);
    }
    node->backward = std::move(fn);
    if (!saved.empty()) {
        node->saved.reserve(saved.size());
        for (const Tensor& s : saved) node->saved.emplace_back(s.impl()->storage, s.version());
    }
    node->shape = oi->shape;
    node->dtype = oi->dtype;
    oi->grad_fn = std::move(node);
    return out;
}

}  // namespace

Tensor record_span(const char* name, Tensor out, std::span<const Tensor> inputs, BackwardFn fn,
                   std::span<const Tensor> saved) {
    return record_impl(
        name, std::move(out), inputs.size(), [&](size_t i) -> const Tensor& { return inputs[i]; },
        fn, saved);
}

Tensor record_refs(const char* name, Tensor out, std::initializer_list<const Tensor*> inputs,
                   BackwardFn fn) {
    const Tensor* const* in = inputs.begin();
    return record_impl(name, std::move(out), inputs.size(),
                       [&](size_t i) -> const Tensor& { return *in[i]; }, fn, {});
}

Tensor record(const char* name, Tensor out, std::initializer_list<Tensor> inputs, BackwardFn fn,
              std::initializer_list<Tensor> saved) {
    return record_span(name, std::move(out), std::span<const Tensor>(inputs.begin(), inputs.size()),
                       std::move(fn), std::span<const Tensor>(saved.begin(), saved.size()));
}
Tensor record(const char* name, Tensor out, const std::vector<Tensor>& inputs, BackwardFn fn,
              const std::vector<Tensor>& saved) {
    return record_span(name, std::move(out), std::span<const Tensor>(inputs), std::move(fn),
                       std::span<const Tensor>(saved));
}

SavedOutput::SavedOutput(const Tensor& out) : data_(out.detach()) {}

Tensor SavedOutput::get() const {
    auto node = node_.lock();
    if (!node || !is_grad_enabled()) return data_;
    // Re-attach the producing node so double backward differentiates through the output.
    Tensor t = data_.detach();
    t.impl()->grad_fn = node;
    return t;
}

Tensor record_with_output(const char* name, Tensor out, const std::vector<Tensor>& inputs,
                          std::function<std::vector<Tensor>(const Tensor&, const Tensor&)> fn,
                          const std::vector<Tensor>& saved) {
    if (!needs_grad(inputs) || !is_floating(out.dtype())) {
        if (check_forward()) check_anomaly_forward(name, out);  // else record() checks it
        return out;
    }
    auto holder = std::make_shared<SavedOutput>(out);
    std::vector<Tensor> sv = saved;
    sv.push_back(out);
    Tensor r = record(
        name, out, inputs,
        [holder, fn = std::move(fn)](const Tensor& g) { return fn(g, holder->get()); }, sv);
    holder->bind(r.grad_fn());
    return r;
}

}  // namespace soma
