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

#include <algorithm>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "soma/dtype.h"
#include "soma/error.h"

namespace soma {

/// Sizes, strides or a list of dims. Behaves like std::vector<int64_t> (and converts to and from
/// it implicitly) but keeps up to 6 values inline, so making a tensor allocates no shape memory.
///
///     Shape s{2, 3};  s.push_back(4);  std::vector<int64_t> v = s;  // s == v
class Shape {
  public:
    using value_type = int64_t;
    using size_type = size_t;
    using difference_type = std::ptrdiff_t;
    using reference = int64_t&;
    using const_reference = const int64_t&;
    using pointer = int64_t*;
    using const_pointer = const int64_t*;
    using iterator = int64_t*;
    using const_iterator = const int64_t*;
    using reverse_iterator = std::reverse_iterator<iterator>;
    using const_reverse_iterator = std::reverse_iterator<const_iterator>;

    Shape() noexcept {}
    explicit Shape(size_type n) { assign(n, 0); }
    Shape(size_type n, int64_t value) { assign(n, value); }
    Shape(std::initializer_list<int64_t> il) { assign(il.begin(), il.end()); }
    template <std::input_iterator It>
    Shape(It first, It last) {
        assign(first, last);
    }
    Shape(const std::vector<int64_t>& v) { assign(v.begin(), v.end()); }  // NOLINT: implicit
    Shape(const Shape& o) { assign(o.begin(), o.end()); }
    Shape(Shape&& o) noexcept { take(o); }
    ~Shape() { release(); }
    Shape& operator=(const Shape& o) {
        if (this != &o) assign(o.begin(), o.end());
        return *this;
    }
    Shape& operator=(Shape&& o) noexcept {
        if (this != &o) {
            release();
            take(o);
        }
        return *this;
    }
    Shape& operator=(std::initializer_list<int64_t> il) {
        assign(il.begin(), il.end());
        return *this;
    }
    operator std::vector<int64_t>() const { return std::vector<int64_t>(begin(), end()); }

    // ---- access -----------------------------------------------------------------------------
    size_type size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    size_type capacity() const noexcept { return cap_; }
    size_type max_size() const noexcept { return UINT32_MAX; }
    int64_t* data() noexcept { return data_; }
    const int64_t* data() const noexcept { return data_; }
    iterator begin() noexcept { return data_; }
    iterator end() noexcept { return data_ + size_; }
    const_iterator begin() const noexcept { return data_; }
    const_iterator end() const noexcept { return data_ + size_; }
    const_iterator cbegin() const noexcept { return data_; }
    const_iterator cend() const noexcept { return data_ + size_; }
    reverse_iterator rbegin() noexcept { return reverse_iterator(end()); }
    reverse_iterator rend() noexcept { return reverse_iterator(begin()); }
    const_reverse_iterator rbegin() const noexcept { return const_reverse_iterator(end()); }
    const_reverse_iterator rend() const noexcept { return const_reverse_iterator(begin()); }
    const_reverse_iterator crbegin() const noexcept { return rbegin(); }
    const_reverse_iterator crend() const noexcept { return rend(); }
    int64_t& operator[](size_type i) noexcept { return data_[i]; }
    const int64_t& operator[](size_type i) const noexcept { return data_[i]; }
    int64_t& at(size_type i) { return data_[checked(i)]; }
    const int64_t& at(size_type i) const { return data_[checked(i)]; }
    int64_t& front() noexcept { return data_[0]; }
    const int64_t& front() const noexcept { return data_[0]; }
    int64_t& back() noexcept { return data_[size_ - 1]; }
    const int64_t& back() const noexcept { return data_[size_ - 1]; }

    // ---- modifiers --------------------------------------------------------------------------
    void reserve(size_type n) {
        if (n > cap_) grow(n);
    }
    void shrink_to_fit() {}
    void clear() noexcept { size_ = 0; }
    void resize(size_type n) { resize(n, 0); }
    void resize(size_type n, int64_t value) {
        reserve(n);
        for (size_type i = size_; i < n; ++i) data_[i] = value;
        size_ = static_cast<uint32_t>(n);
    }
    void assign(size_type n, int64_t value) {
        size_ = 0;
        resize(n, value);
    }
    template <std::input_iterator It>
    void assign(It first, It last) {
        if constexpr (std::forward_iterator<It>) {
            auto n = static_cast<size_type>(std::distance(first, last));
            if (n > cap_) {
                size_ = 0;
                grow(n);
            }
            std::copy(first, last, data_);
            size_ = static_cast<uint32_t>(n);
        } else {
            size_ = 0;
            for (; first != last; ++first) push_back(*first);
        }
    }
    void assign(std::initializer_list<int64_t> il) { assign(il.begin(), il.end()); }
    void push_back(int64_t v) {
        if (size_ == cap_) grow(size_ + 1);
        data_[size_++] = v;
    }
    int64_t& emplace_back(int64_t v) {
        push_back(v);
        return back();
    }
    void pop_back() noexcept { --size_; }
    iterator insert(const_iterator pos, int64_t v) { return insert(pos, size_type{1}, v); }
    iterator insert(const_iterator pos, size_type n, int64_t v) {
        size_type at = open_gap(pos, n);
        std::fill_n(data_ + at, n, v);
        return data_ + at;
    }
    template <std::input_iterator It>
    iterator insert(const_iterator pos, It first, It last) {
        Shape tmp(first, last);  // a copy first: the range may alias *this
        size_type at = open_gap(pos, tmp.size());
        std::copy(tmp.begin(), tmp.end(), data_ + at);
        return data_ + at;
    }
    iterator insert(const_iterator pos, std::initializer_list<int64_t> il) {
        return insert(pos, il.begin(), il.end());
    }
    iterator erase(const_iterator pos) { return erase(pos, pos + 1); }
    iterator erase(const_iterator first, const_iterator last) {
        auto at = static_cast<size_type>(first - data_);
        auto n = static_cast<size_type>(last - first);
        std::copy(data_ + at + n, data_ + size_, data_ + at);
        size_ -= static_cast<uint32_t>(n);
        return data_ + at;
    }
    void swap(Shape& o) noexcept {
        Shape t(std::move(o));
        o = std::move(*this);
        *this = std::move(t);
    }
    friend void swap(Shape& a, Shape& b) noexcept { a.swap(b); }

    friend bool operator==(const Shape& a, const Shape& b) noexcept {
        if (a.size_ != b.size_) return false;  // a plain loop: std::equal calls memcmp
        for (uint32_t i = 0; i < a.size_; ++i)
            if (a.data_[i] != b.data_[i]) return false;
        return true;
    }
    friend std::strong_ordering operator<=>(const Shape& a, const Shape& b) noexcept {
        return std::lexicographical_compare_three_way(a.begin(), a.end(), b.begin(), b.end());
    }

  private:
    static constexpr uint32_t kInline = 6;
    int64_t* data_ = inline_;
    uint32_t size_ = 0;
    uint32_t cap_ = kInline;
    int64_t inline_[kInline]{};

    bool on_heap() const noexcept { return data_ != inline_; }
    void release() noexcept {
        if (on_heap()) delete[] data_;
        data_ = inline_;
        size_ = 0;
        cap_ = kInline;
    }
    // *this is empty and inline.
    void take(Shape& o) noexcept {
        if (o.on_heap()) {
            data_ = o.data_;
            cap_ = o.cap_;
            o.data_ = o.inline_;
            o.cap_ = kInline;
        } else {
            std::memcpy(inline_, o.inline_, o.size_ * sizeof(int64_t));
        }
        size_ = o.size_;
        o.size_ = 0;
    }
    void grow(size_type n) {
        size_type c = std::max<size_type>(n, size_type{2} * cap_);
        auto* p = new int64_t[c];
        std::copy(data_, data_ + size_, p);
        if (on_heap()) delete[] data_;
        data_ = p;
        cap_ = static_cast<uint32_t>(c);
    }
    size_type open_gap(const_iterator pos, size_type n) {
        auto at = static_cast<size_type>(pos - data_);
        reserve(size_ + n);
        std::copy_backward(data_ + at, data_ + size_, data_ + size_ + n);
        size_ += static_cast<uint32_t>(n);
        return at;
    }
    size_type checked(size_type i) const {
        if (i >= size_) throw std::out_of_range("Shape::at: index out of range");
        return i;
    }
};

/// Prints a shape as [2, 3] (as error messages do).
std::ostream& operator<<(std::ostream& os, const Shape& s);

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
    /// A leaf's hooks live on the leaf: if no handle to the leaf is left when backward runs, its
    /// gradient has nowhere to go and its hooks do not run (PyTorch keeps such a leaf alive).
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
