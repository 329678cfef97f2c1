// The backward engine: iterative, dependency-counted, newest-node-first (as PyTorch).
//
// 1. Count, for every node reachable from the roots, how many edges point at it (explicit
//    stack, no recursion).
// 2. Seed the roots' gradient buffers; a node runs once all its dependents have delivered.
// 3. Running a node: pre-hooks, retained grads, captures for autograd::grad, then either
//    accumulation into a leaf's .grad or the node's backward closure.
#include <algorithm>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "autograd/node.h"
#include "backend/backend.h"
#include "ops/op_util.h"
#include "soma/ops.h"

namespace soma {
namespace {

struct NodeCmp {
    bool operator()(Node* a, Node* b) const { return a->seq < b->seq; }
};

void check_finite_grad(const Node& node, size_t i, const Tensor& g) {
    if (!g.defined() || !is_floating(g.dtype()) || g.numel() == 0) return;
    NoGradGuard ng;
    Tensor fin = make_tensor(g.shape(), DType::boolean, g.device());
    backend(g).unary(UnaryOp::isfinite, g, fin, 0, 0);
    for (bool b : fin.to_vector<bool>())
        if (!b)
            throw AutogradError(detail::concat("anomaly: function '", node.name,
                                               "' backward returned nan or inf in gradient ", i,
                                               " (shape ", shape_str(g.shape()), ")"));
}

Tensor add_grads(const Tensor& a, const Tensor& b, bool create_graph) {
    if (!a.defined()) return b;
    EnableGradGuard eg(create_graph);
    return add(a, b);
}

void accumulate_leaf(TensorImpl* leaf, Tensor g, bool create_graph) {
    for (auto& h : leaf->hooks) {
        Tensor r = h(g);
        if (r.defined()) g = r;
    }
    if (!leaf->grad.defined()) {
        if (create_graph) {
            // A differentiable copy: .grad must never alias a tensor someone else holds (a
            // caller's grad_output, a broadcast view), since later backwards add into it.
            EnableGradGuard eg(true);
            leaf->grad = g.clone();
        } else if (!g.requires_grad() && !g.impl()->is_view && g.is_contiguous() &&
                   g.storage_offset() == 0 && g.impl_ptr().use_count() == 1 &&
                   g.impl()->storage.use_count() == 1) {
            leaf->grad = std::move(g);  // nobody else holds g or its memory: adopt it, no copy
        } else {
            NoGradGuard ng;
            leaf->grad = g.detach().clone();  // own the memory: g may be shared with others
        }
    } else if (create_graph || leaf->grad.requires_grad()) {
        EnableGradGuard eg(create_graph);
        leaf->grad = add(leaf->grad, g);
    } else {
        NoGradGuard ng;
        leaf->grad.add_(g);
    }
}

// captures: node -> indices into `results` (autograd::grad); null for backward().
void run_engine(const std::vector<std::shared_ptr<Node>>& roots,
                const std::vector<Tensor>& root_grads, bool keep_graph, bool create_graph,
                const std::unordered_map<Node*, std::vector<size_t>>* captures,
                std::vector<Tensor>* results) {
    std::unordered_map<Node*, int> deps;
    {
        std::vector<Node*> stack;
        for (auto& r : roots)
            if (deps.emplace(r.get(), 0).second) stack.push_back(r.get());
        while (!stack.empty()) {
            Node* n = stack.back();
            stack.pop_back();
            for (auto& c : n->next) {
                if (!c) continue;
                auto [it, fresh] = deps.emplace(c.get(), 0);
                ++it->second;
                if (fresh) stack.push_back(c.get());
            }
        }
    }
    // autograd::grad runs only the nodes on a path to a captured one (as PyTorch): the rest of
    // the graph is neither computed nor freed.
    std::unordered_set<Node*> needed;
    if (captures) {
        std::unordered_set<Node*> done;
        std::vector<std::pair<Node*, size_t>> stack;  // iterative post-order DFS
        for (auto& r : roots)
            if (done.insert(r.get()).second) stack.emplace_back(r.get(), 0);
        while (!stack.empty()) {
            auto& [n, i] = stack.back();
            if (i < n->next.size()) {
                Node* c = n->next[i++].get();
                if (c && done.insert(c).second) stack.emplace_back(c, 0);
                continue;
            }
            bool need = captures->count(n) > 0;
            for (auto& c : n->next) need = need || (c && needed.count(c.get()));
            if (need) needed.insert(n);
            stack.pop_back();
        }
    }
    std::unordered_map<Node*, Tensor> buffers;
    std::priority_queue<Node*, std::vector<Node*>, NodeCmp> ready;
    for (size_t i = 0; i < roots.size(); ++i) {
        Tensor& b = buffers[roots[i].get()];
        b = add_grads(b, root_grads[i], create_graph);
    }
    for (auto& r : roots)
        if (deps[r.get()] == 0) {
            deps[r.get()] = -1;  // queued
            ready.push(r.get());
        }
    const bool accumulate = captures == nullptr;
    while (!ready.empty()) {
        Node* node = ready.top();
        ready.pop();
        auto bit = buffers.find(node);
        Tensor g;
        if (bit != buffers.end()) {
            g = std::move(bit->second);
            buffers.erase(bit);
        }
        auto release_children = [&] {
            for (auto& c : node->next) {
                if (!c) continue;
                if (--deps[c.get()] == 0) ready.push(c.get());
            }
        };
        if (!g.defined() || (captures && !needed.count(node))) {  // nothing to do here
            release_children();
            continue;
        }
        for (auto& h : node->pre_hooks) {
            Tensor r = h(g);
            if (r.defined()) g = r;
        }
        if (auto keep = node->retained.lock()) {
            NoGradGuard ng;
            keep->grad = keep->grad.defined() ? add(keep->grad, g) : g.detach().clone();
        }
        if (captures) {
            auto it = captures->find(node);
            if (it != captures->end())
                for (size_t idx : it->second)
                    (*results)[idx] = add_grads((*results)[idx], g, create_graph);
        }
        if (node->accumulates) {
            if (accumulate)
                if (auto leaf = node->leaf.lock())  // else nobody can see the leaf's .grad
                    accumulate_leaf(leaf.get(), std::move(g), create_graph);
            continue;
        }
        if (captures && !std::any_of(node->next.begin(), node->next.end(),
                                     [&](auto& c) { return c && needed.count(c.get()); })) {
            release_children();  // a captured node whose inputs lead to no other capture
            continue;
        }
        if (node->released)
            throw AutogradError(detail::concat(
                "backward: trying to backward through the graph a second time (node '", node->name,
                "'); its saved tensors were freed after the first backward. "
                "Pass retain_graph=true to the first backward() or grad() call."));
        for (auto& [storage, version] : node->saved)
            if (storage->version != version)
                throw AutogradError(detail::concat(
                    "backward: one of the tensors needed for the gradient of '", node->name,
                    "' has been modified by an in-place operation: it is at version ",
                    storage->version, ", expected version ", version,
                    ". Use an out-of-place op or clone() before modifying it."));
        std::vector<Tensor> grads;
        {
            EnableGradGuard eg(create_graph);
            BackwardScope bs;
            grads = node->backward(g);
        }
        SOMA_CHECK(grads.size() == node->next.size(), "autograd: backward of '", node->name,
                   "' returned ", grads.size(), " gradients, expected ", node->next.size());
        for (size_t i = 0; i < grads.size(); ++i) {
            Node* c = node->next[i].get();
            if (!c || !grads[i].defined()) continue;
            Tensor gi = grads[i];
            SOMA_CHECK_SHAPE(gi.shape() == c->shape, "autograd: backward of '", node->name,
                             "' returned a gradient of shape ", gi.shape(), " for input ", i,
                             ", expected ", c->shape);
            if (gi.dtype() != c->dtype) {
                EnableGradGuard eg(create_graph);
                gi = cast(gi, c->dtype);
            }
            if (autograd::is_anomaly_enabled()) check_finite_grad(*node, i, gi);
            Tensor& b = buffers[c];
            b = add_grads(b, gi, create_graph);
        }
        if (!keep_graph) node->release();
        release_children();
    }
}

std::vector<Tensor> root_gradients(const std::vector<Tensor>& outputs,
                                   const std::vector<Tensor>& grad_outputs, const char* op) {
    SOMA_CHECK(grad_outputs.empty() || grad_outputs.size() == outputs.size(), op, ": got ",
               grad_outputs.size(), " gradients for ", outputs.size(), " outputs");
    std::vector<Tensor> gs;
    for (size_t i = 0; i < outputs.size(); ++i) {
        const Tensor& o = outputs[i];
        SOMA_CHECK(o.defined(), op, ": output ", i, " is undefined");
        SOMA_CHECK(o.requires_grad(), op, ": element ", i,
                   " of tensors does not require grad and does not have a grad_fn");
        Tensor g = grad_outputs.empty() ? Tensor() : grad_outputs[i];
        if (!g.defined()) {
            SOMA_CHECK_SHAPE(o.numel() == 1, op,
                             ": grad can be implicitly created only for scalar outputs: got "
                             "shape ",
                             o.shape(), ". Pass a gradient of that shape.");
            g = ones_like(o);
        } else {
            SOMA_CHECK_SHAPE(g.shape() == o.shape(), op, ": gradient has shape ", g.shape(),
                             " but output ", i, " has shape ", o.shape());
        }
        gs.push_back(g.dtype() == o.dtype() ? g : cast(g, o.dtype()));
    }
    return gs;
}

}  // namespace

namespace autograd {

void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs,
              bool retain_graph, bool create_graph) {
    std::vector<Tensor> gs = root_gradients(outputs, grad_outputs, "backward");
    std::vector<std::shared_ptr<Node>> roots;
    for (auto& o : outputs) roots.push_back(gradient_edge(o));
    run_engine(roots, gs, retain_graph || create_graph, create_graph, nullptr, nullptr);
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, bool create_graph,
                         std::optional<bool> retain_graph, bool allow_unused) {
    std::vector<Tensor> gs = root_gradients(outputs, grad_outputs, "grad");
    std::unordered_map<Node*, std::vector<size_t>> captures;
    std::vector<std::shared_ptr<Node>> keep;
    for (size_t i = 0; i < inputs.size(); ++i) {
        SOMA_CHECK(inputs[i].defined() && inputs[i].requires_grad(), "grad: input ", i,
                   " does not require grad. Call requires_grad_() on it before computing.");
        auto e = gradient_edge(inputs[i]);
        keep.push_back(e);
        captures[e.get()].push_back(i);
    }
    std::vector<std::shared_ptr<Node>> roots;
    for (auto& o : outputs) roots.push_back(gradient_edge(o));
    std::vector<Tensor> results(inputs.size());
    run_engine(roots, gs, retain_graph.value_or(create_graph), create_graph, &captures, &results);
    for (size_t i = 0; i < inputs.size(); ++i) {
        SOMA_CHECK(results[i].defined() || allow_unused, "grad: input ", i, " (shape ",
                   shape_str(inputs[i].shape()),
                   ") was not used in computing the outputs. Pass allow_unused=true if this is "
                   "intended.");
        if (results[i].defined() && !create_graph) results[i] = results[i].detach();
    }
    return results;
}

}  // namespace autograd
}  // namespace soma
