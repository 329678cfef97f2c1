// soma/tensor.h — the n-dimensional array with reverse-mode autograd.
//
// A Tensor is a cheap handle (shared ownership) to a strided view of a Storage. Views
// (view/reshape/permute/transpose/narrow/select/expand/squeeze/unsqueeze/flatten) share storage;
// `contiguous()` and `clone()` copy. Up to 8 dimensions. Element types: see dtype.h.
//
//     auto x = soma::randn({3, 4}).requires_grad_();
//     auto y = (x * x).sum();
//     y.backward();               // x.grad() == 2 * x
//     std::cout << x.grad();      // printed like PyTorch
//
// Throws soma::ShapeError / DTypeError / IndexError / ValueError naming the op and the shapes.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "soma/dtype.h"
#include "soma/error.h"

namespace soma {

using Shape = std::vector<int64_t>;
inline constexpr int64_t kMaxDims = 8;

struct TensorImpl;
struct Node;

class Tensor {
  public:
    Tensor() = default;
    explicit Tensor(std::shared_ptr<TensorImpl> impl);

    // ---- metadata ---------------------------------------------------------------------------
    bool defined() const { return impl_ != nullptr; }
    const Shape& shape() const;
    const Shape& sizes() const { return shape(); }
    int64_t size(int64_t dim) const;  // negative dims count from the end
    const Shape& strides() const;
    int64_t stride(int64_t dim) const;
    int64_t storage_offset() const;
    int64_t dim() const;
    int64_t numel() const;
    DType dtype() const;
    Device device() const;
    bool is_contiguous() const;
    bool is_floating_point() const { return is_floating(dtype()); }
    /// Pointer to element [0, 0, ...] of this view. T must match dtype().
    template <class T>
    T* data_ptr() const;
    void* raw_data() const;
    TensorImpl* impl() const { return impl_.get(); }
    const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
    /// Same underlying tensor object (not value equality).
    bool is_same(const Tensor& o) const { return impl_ == o.impl_; }
    bool shares_storage(const Tensor& o) const;

    // ---- autograd ---------------------------------------------------------------------------
    bool requires_grad() const;
    /// Leaf rules as in PyTorch: only floating leaves may require grad.
    Tensor& requires_grad_(bool requires_grad = true);
    /// Accumulated gradient (undefined until a backward reaches this leaf).
    Tensor grad() const;
    void set_grad(const Tensor& g) const;
    bool is_leaf() const;
    std::shared_ptr<Node> grad_fn() const;
    /// Backpropagates from this tensor. A non-scalar needs `gradient` of the same shape.
    void backward(const Tensor& gradient = Tensor(), bool retain_graph = false,
                  bool create_graph = false) const;
    /// A tensor sharing storage but cut from the graph.
    Tensor detach() const;
    Tensor& detach_();
    /// hook(grad) runs when this tensor's gradient is computed; a defined return replaces it.
    void register_hook(std::function<Tensor(const Tensor&)> hook) const;
    /// Keeps .grad() for a non-leaf tensor after backward.
    void retain_grad() const;
    /// Bumped by every in-place op on this storage (used to detect stale saved tensors).
    uint64_t version() const;
    std::string name() const;  // op that produced it, "" for leaves

    // ---- views and copies -------------------------------------------------------------------
    Tensor view(const Shape& shape) const;     // one dim may be -1; no copy, or error
    Tensor reshape(const Shape& shape) const;  // view when possible, else copies
    Tensor permute(const Shape& dims) const;
    Tensor transpose(int64_t d0, int64_t d1) const;
    Tensor t() const;  // 2-D transpose (0-D and 1-D unchanged)
    Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
    /// Python's x[start:end:step] along dim (negative/clamped bounds as in Python).
    Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
    Tensor select(int64_t dim, int64_t index) const;  // removes dim
    Tensor operator[](int64_t index) const { return select(0, index); }
    Tensor expand(const Shape& shape) const;  // -1 keeps a size
    Tensor expand_as(const Tensor& other) const { return expand(other.shape()); }
    Tensor squeeze() const;
    Tensor squeeze(int64_t dim) const;
    Tensor unsqueeze(int64_t dim) const;
    Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
    Tensor contiguous() const;
    Tensor clone() const;
    Tensor to(DType t) const;  // differentiable between floating types
    Tensor to(Device d) const;

    // ---- element access ---------------------------------------------------------------------
    /// The single value of a one-element tensor, converted to T.
    template <class T = double>
    T item() const;
    /// Element at a full index, converted to T.
    template <class T = double>
    T at(std::initializer_list<int64_t> index) const;
    template <class T>
    std::vector<T> to_vector() const;  // row-major copy, converting dtype

    // ---- in-place (bump the version counter) ------------------------------------------------
    Tensor& add_(const Tensor& other, Scalar alpha = 1);
    Tensor& add_(Scalar other);
    Tensor& sub_(const Tensor& other, Scalar alpha = 1);
    Tensor& sub_(Scalar other);
    Tensor& mul_(const Tensor& other);
    Tensor& mul_(Scalar other);
    Tensor& div_(const Tensor& other);
    Tensor& div_(Scalar other);
    Tensor& zero_();
    Tensor& fill_(Scalar value);
    Tensor& copy_(const Tensor& src);  // broadcasts src, converts dtype
    Tensor& clamp_(Scalar lo, Scalar hi);
    Tensor& masked_fill_(const Tensor& mask, Scalar value);
    Tensor& uniform_(double lo = 0, double hi = 1);
    Tensor& normal_(double mean = 0, double std = 1);

    // ---- common methods (forward to the free functions in ops.h) -----------------------------
    Tensor sum() const;
    Tensor sum(const Shape& dims, bool keepdim = false) const;
    Tensor mean() const;
    Tensor mean(const Shape& dims, bool keepdim = false) const;
    Tensor exp() const;
    Tensor log() const;
    Tensor abs() const;
    Tensor sqrt() const;
    Tensor pow(Scalar e) const;
    Tensor relu() const;
    Tensor sigmoid() const;
    Tensor tanh() const;
    Tensor neg() const;
    Tensor argmax(int64_t dim, bool keepdim = false) const;
    Tensor matmul(const Tensor& other) const;

    std::string to_string() const;

  private:
    std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// ---- factories ---------------------------------------------------------------------------------
struct TensorOptions {
    DType dtype = DType::float32;
    Device device = {};
    bool requires_grad = false;
};

Tensor empty(const Shape& shape, TensorOptions opt = {});
Tensor zeros(const Shape& shape, TensorOptions opt = {});
Tensor ones(const Shape& shape, TensorOptions opt = {});
Tensor full(const Shape& shape, Scalar value, TensorOptions opt = {});
/// [start, end) by step; dtype int64 when all are integers and opt.dtype is left float32 via
/// arange_int, float otherwise. arange(5) gives int64 [0..4] as in PyTorch.
Tensor arange(Scalar end);
Tensor arange(Scalar start, Scalar end, Scalar step = 1);
Tensor arange(Scalar start, Scalar end, Scalar step, TensorOptions opt);
Tensor linspace(double start, double end, int64_t steps, TensorOptions opt = {});
Tensor eye(int64_t n, int64_t m = -1, TensorOptions opt = {});
Tensor rand(const Shape& shape, TensorOptions opt = {});   // U[0, 1)
Tensor randn(const Shape& shape, TensorOptions opt = {});  // N(0, 1)
Tensor randint(int64_t low, int64_t high, const Shape& shape,
               TensorOptions opt = {.dtype = DType::int64});
Tensor normal(double mean, double std, const Shape& shape, TensorOptions opt = {});
Tensor scalar_tensor(Scalar v, TensorOptions opt);
Tensor scalar_tensor(Scalar v);
Tensor empty_like(const Tensor& t);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, Scalar value);
Tensor rand_like(const Tensor& t);
Tensor randn_like(const Tensor& t);
/// From a flat vector and a shape (numel must match). Copies.
template <class T>
Tensor from_vector(const std::vector<T>& data, const Shape& shape,
                   TensorOptions opt = {.dtype = dtype_of<T>()});
template <class T>
Tensor from_vector(const std::vector<T>& data) {
    return from_vector<T>(data, {static_cast<int64_t>(data.size())});
}
/// tensor({1, 2, 3}) — float32 1-D tensor; tensor({{1, 2}, {3, 4}}) — 2-D.
Tensor tensor(std::initializer_list<double> values, TensorOptions opt = {});
Tensor tensor(std::initializer_list<std::initializer_list<double>> values, TensorOptions opt = {});

/// The default floating dtype (float32).
inline DType default_dtype() { return DType::float32; }

}  // namespace soma
