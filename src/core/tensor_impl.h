// Internal: what a Tensor handle points at.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <vector>

#include "soma/tensor.h"

namespace soma {

class Backend;

struct Node;

/// Set by `embedding` on the storage it fills: the storage holds the rows table[index] (index
/// int64 1-D), as of the versions below. linear() reads it to fold an embedding into the layer
/// after it (see nn/functional_conv.cpp, linear_gathered): with fewer table rows than looked-up
/// rows, table · Wᵀ is computed once and gathered.
struct GatherSource {
    Tensor table;              // the embedding weight
    Tensor index;              // [rows], int64
    int64_t padding_idx = -1;  // negative: none
    uint64_t table_version = 0, index_version = 0, rows_version = 0;
    std::weak_ptr<Node> node;  // the embedding's autograd node (empty when not recorded)
};

/// A block of device memory. The version counter lives here so that every view of the same
/// memory sees in-place changes.
struct Storage {
    void* data = nullptr;
    size_t nbytes = 0;
    Device device;
    Backend* backend = nullptr;
    uint64_t version = 0;
    std::shared_ptr<const GatherSource> gathered;  // embedding rows only
    Storage(size_t n, Device d);
    ~Storage();
    Storage(const Storage&) = delete;
    Storage& operator=(const Storage&) = delete;
};

using TensorHook = std::function<Tensor(const Tensor&)>;

struct TensorImpl {
    std::shared_ptr<Storage> storage;
    Shape shape;
    Shape strides;       // in elements
    int64_t offset = 0;  // in elements
    int64_t numel = 0;
    DType dtype = DType::float32;
    bool is_view = false;  // made by a view op (view, select, expand, ...) from a base tensor

    // autograd
    bool requires_grad = false;  // for leaves; non-leaves require grad iff grad_fn is set
    bool retains_grad = false;
    std::shared_ptr<Node> grad_fn;
    // For leaves that require grad: created on first use and kept (the node holds the leaf only
    // weakly, so there is no cycle), so ops on a leaf don't build a new node every time.
    std::shared_ptr<Node> grad_accumulator;
    Tensor grad;
    std::vector<TensorHook> hooks;  // leaf hooks (non-leaf hooks live on grad_fn)

    void* data() const {
        return static_cast<char*>(storage->data) + offset * static_cast<int64_t>(dtype_size(dtype));
    }
};

/// Contiguous strides for a shape.
Shape contiguous_strides(const Shape& shape);
int64_t shape_numel(const Shape& shape);
/// A fresh contiguous tensor (uninitialised memory).
Tensor make_tensor(const Shape& shape, DType dtype, Device device = {});
/// A view of `base`'s storage with new geometry (no autograd recording).
Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset);

}  // namespace soma
