// Tensor handle: metadata, views (with their backward), element access, factories.
#include "soma/tensor.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "autograd/node.h"
#include "backend/backend.h"
#include "core/pool.h"
#include "core/tensor_impl.h"
#include "ops/op_util.h"
#include "soma/autograd.h"
#include "soma/ops.h"
#include "soma/random.h"

namespace soma {

// ---- storage -------------------------------------------------------------------------------

// Small CPU buffers (a 1-element tensor, a scalar) cycle through per-thread free lists in front
// of the backend's caching allocator, whose mutex cost more than the rest of making the tensor.
// Blocks are taken from the CPU backend (for its 64-byte alignment) at their class size (64,
// 128, 256 or 512 bytes) and handed back to it when a list is full and when the thread ends.
namespace {

struct SmallClasses {
    static constexpr size_t kCount = 4;
    static constexpr unsigned kCap = 1024;
    static size_t index(size_t n) { return n <= 64 ? 0 : n <= 128 ? 1 : n <= 256 ? 2 : 3; }
    static constexpr size_t bytes(size_t c) { return size_t{64} << c; }
};
struct CpuBlocks {
    static void* allocate(size_t nbytes) { return cpu_backend().allocate(nbytes); }
    static void release(void* p, size_t nbytes) { cpu_backend().deallocate(p, nbytes); }
};
using SmallBuffers = detail::FreeLists<SmallClasses, CpuBlocks>;
constexpr size_t kSmallMaxBytes = SmallClasses::bytes(SmallClasses::kCount - 1);

}  // namespace

Storage::Storage(size_t n, Device d) : nbytes(n), device(d), backend(&backend_for(d)) {
    data = d.type == DeviceType::cpu && n <= kSmallMaxBytes ? SmallBuffers::allocate(n)
                                                            : backend->allocate(n);
}
Storage::~Storage() {
    if (device.type == DeviceType::cpu && nbytes <= kSmallMaxBytes)
        SmallBuffers::deallocate(data, nbytes);
    else
        backend->deallocate(data, nbytes);
}

std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << shape_str(s); }

namespace {
// The strides of a contiguous tensor of `shape` into `strides`; returns the element count.
int64_t contiguous_layout(const Shape& shape, Shape& strides) {
    strides.resize(shape.size());
    int64_t numel = 1, acc = 1;
    for (size_t i = shape.size(); i-- > 0;) {
        strides[i] = acc;
        acc *= std::max<int64_t>(shape[i], 1);
        numel *= shape[i];
    }
    return numel;
}
}  // namespace

Shape contiguous_strides(const Shape& shape) {
    Shape s;
    contiguous_layout(shape, s);
    return s;
}

int64_t shape_numel(const Shape& shape) {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
}

Tensor make_tensor(const Shape& shape, DType dtype, Device device) {
    size_t nd = shape.size();
    SOMA_CHECK_SHAPE(static_cast<int64_t>(nd) <= kMaxDims, "tensor: at most ", kMaxDims,
                     " dims are supported: got shape ", shape);
    for (int64_t d : shape) SOMA_CHECK_SHAPE(d >= 0, "tensor: negative dimension in shape ", shape);
    auto impl = detail::make_pooled<TensorImpl>();
    impl->shape = shape;
    const int64_t numel = contiguous_layout(shape, impl->strides);
    impl->numel = numel;
    impl->dtype = dtype;
    impl->storage =
        detail::make_pooled<Storage>(static_cast<size_t>(numel) * dtype_size(dtype), device);
    return Tensor(std::move(impl));
}

Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset) {
    auto impl = detail::make_pooled<TensorImpl>();
    impl->storage = base.impl()->storage;
    impl->shape = shape;
    impl->strides = strides;
    impl->offset = offset;
    impl->numel = shape_numel(shape);
    impl->dtype = base.dtype();
    return Tensor(std::move(impl));
}

// ---- metadata ------------------------------------------------------------------------------

Tensor::Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

#define SOMA_DEF(t) SOMA_CHECK(t.defined(), "tensor: operation on an undefined tensor")

const Shape& Tensor::shape() const {
    SOMA_DEF((*this));
    return impl_->shape;
}
int64_t Tensor::size(int64_t d) const { return shape()[wrap_dim(d, dim(), "size")]; }
const Shape& Tensor::strides() const {
    SOMA_DEF((*this));
    return impl_->strides;
}
int64_t Tensor::stride(int64_t d) const { return strides()[wrap_dim(d, dim(), "stride")]; }
int64_t Tensor::storage_offset() const {
    SOMA_DEF((*this));
    return impl_->offset;
}
int64_t Tensor::dim() const { return static_cast<int64_t>(shape().size()); }
int64_t Tensor::numel() const {
    SOMA_DEF((*this));
    return impl_->numel;
}
DType Tensor::dtype() const {
    SOMA_DEF((*this));
    return impl_->dtype;
}
Device Tensor::device() const {
    SOMA_DEF((*this));
    return impl_->storage->device;
}
bool Tensor::is_contiguous() const {
    if (numel() == 0) return true;  // as PyTorch: whatever the strides
    int64_t expected = 1;
    for (int64_t i = dim() - 1; i >= 0; --i) {
        if (impl_->shape[i] == 1) continue;
        if (impl_->strides[i] != expected) return false;
        expected *= impl_->shape[i];
    }
    return true;
}
void* Tensor::raw_data() const {
    SOMA_DEF((*this));
    return impl_->data();
}
template <class T>
T* Tensor::data_ptr() const {
    SOMA_CHECK_DTYPE(dtype() == dtype_of<T>(), "data_ptr: tensor has dtype ", dtype(),
                     ", requested ", dtype_of<T>());
    return static_cast<T*>(impl_->data());
}
template float* Tensor::data_ptr<float>() const;
template double* Tensor::data_ptr<double>() const;
template int64_t* Tensor::data_ptr<int64_t>() const;
template bool* Tensor::data_ptr<bool>() const;

bool Tensor::shares_storage(const Tensor& o) const {
    return defined() && o.defined() && impl_->storage == o.impl_->storage;
}

// ---- autograd accessors --------------------------------------------------------------------

bool Tensor::requires_grad() const {
    SOMA_DEF((*this));
    return impl_->requires_grad || impl_->grad_fn != nullptr;
}
Tensor& Tensor::requires_grad_(bool r) {
    SOMA_DEF((*this));
    SOMA_CHECK(is_leaf(),
               "requires_grad_: can only change requires_grad of leaf tensors; this tensor was "
               "produced by '",
               name(), "'. Use detach() to get a leaf.");
    SOMA_CHECK_DTYPE(!r || is_floating(dtype()),
                     "requires_grad_: only floating point tensors can require gradients: got ",
                     dtype(), ". Convert with .to(soma::DType::float32) first.");
    impl_->requires_grad = r;
    return *this;
}
Tensor Tensor::grad() const {
    SOMA_DEF((*this));
    return impl_->grad;
}
void Tensor::set_grad(const Tensor& g) const {
    SOMA_DEF((*this));
    if (g.defined())
        SOMA_CHECK_SHAPE(g.shape() == shape(), "set_grad: gradient has shape ", g.shape(),
                         ", expected ", shape());
    impl_->grad = g;
}
bool Tensor::is_leaf() const {
    SOMA_DEF((*this));
    return impl_->grad_fn == nullptr;
}
std::shared_ptr<Node> Tensor::grad_fn() const {
    SOMA_DEF((*this));
    return impl_->grad_fn;
}
std::string Tensor::name() const {
    SOMA_DEF((*this));
    return impl_->grad_fn ? impl_->grad_fn->name : "";
}
uint64_t Tensor::version() const {
    SOMA_DEF((*this));
    return impl_->storage->version;
}

void Tensor::backward(const Tensor& gradient, bool retain_graph, bool create_graph) const {
    autograd::backward({*this},
                       gradient.defined() ? std::vector<Tensor>{gradient} : std::vector<Tensor>{},
                       retain_graph, create_graph);
}

Tensor Tensor::detach() const {
    SOMA_DEF((*this));
    return make_view(*this, impl_->shape, impl_->strides, impl_->offset);
}
Tensor& Tensor::detach_() {
    SOMA_DEF((*this));
    impl_->grad_fn = nullptr;
    impl_->requires_grad = false;
    return *this;
}

void Tensor::register_hook(std::function<Tensor(const Tensor&)> hook) const {
    SOMA_CHECK(requires_grad(),
               "register_hook: cannot register a hook on a tensor that doesn't require "
               "gradient. Call requires_grad_() first.");
    if (impl_->grad_fn)
        impl_->grad_fn->pre_hooks.push_back(std::move(hook));
    else
        impl_->hooks.push_back(std::move(hook));
}

void Tensor::retain_grad() const {
    SOMA_CHECK(requires_grad(), "retain_grad: called on a tensor that doesn't require grad");
    if (impl_->grad_fn) impl_->grad_fn->retained = impl_;
    impl_->retains_grad = true;
}

// ---- views ---------------------------------------------------------------------------------

namespace {

// Computes strides for viewing (shape, strides) as new_shape without copying, or returns false
// (the algorithm of PyTorch's computeStride: chunks of contiguous dims can be re-split).
bool view_strides(const Shape& old_shape, const Shape& old_strides, const Shape& new_shape,
                  Shape& out) {
    int64_t numel = shape_numel(old_shape);
    out.assign(new_shape.size(), 0);
    if (numel == 0 || old_shape.empty()) {  // empty, or 0-dim (one element): any strides do
        out = contiguous_strides(new_shape);
        return true;
    }
    int64_t view_d = static_cast<int64_t>(new_shape.size()) - 1;
    int64_t chunk_base_stride = old_strides.empty() ? 1 : old_strides.back();
    int64_t tensor_numel = 1, view_numel = 1;
    for (int64_t d = static_cast<int64_t>(old_shape.size()) - 1; d >= 0; --d) {
        tensor_numel *= old_shape[d];
        if (d == 0 ||
            (old_shape[d - 1] != 1 && old_strides[d - 1] != tensor_numel * chunk_base_stride)) {
            while (view_d >= 0 && (view_numel < tensor_numel || new_shape[view_d] == 1)) {
                out[view_d] = view_numel * chunk_base_stride;
                view_numel *= new_shape[view_d];
                --view_d;
            }
            if (view_numel != tensor_numel) return false;
            if (d > 0) {
                chunk_base_stride = old_strides[d - 1];
                tensor_numel = 1;
                view_numel = 1;
            }
        }
    }
    return view_d == -1;
}

Shape infer_shape(const char* op, const Shape& shape, int64_t numel, const Shape& in_shape) {
    Shape s = shape;
    int64_t infer = -1, prod = 1;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == -1) {
            SOMA_CHECK_SHAPE(infer < 0, op, ": only one dimension can be inferred (-1): got ",
                             shape);
            infer = static_cast<int64_t>(i);
        } else {
            SOMA_CHECK_SHAPE(s[i] >= 0, op, ": invalid shape dimension ", s[i], " in ", shape);
            prod *= s[i];
        }
    }
    if (infer >= 0) {
        SOMA_CHECK_SHAPE(prod != 0 && numel % prod == 0, op, ": shape ", shape,
                         " is invalid for input of size ", numel, " (input shape ", in_shape, ")");
        s[infer] = numel / prod;
    }
    SOMA_CHECK_SHAPE(shape_numel(s) == numel, op, ": shape ", shape,
                     " is invalid for input of size ", numel, ": input shape ", in_shape,
                     ". The number of elements must stay the same.");
    SOMA_CHECK_SHAPE(static_cast<int64_t>(s.size()) <= kMaxDims, op, ": at most ", kMaxDims,
                     " dims are supported: got ", shape);
    return s;
}

// Records a view's backward: the gradient is mapped back with `back`.
Tensor record_view(const char* name, const Tensor& in, Tensor out,
                   std::function<Tensor(const Tensor&)> back) {
    out.impl()->is_view = true;  // in-place ops on it under autograd are refused
    return record(name, std::move(out), {in}, [back = std::move(back)](const Tensor& g) {
        return std::vector<Tensor>{back(g)};
    });
}

}  // namespace

// Differentiable scatter of a strided slice into zeros: the backward of narrow/slice/select.
// y = zeros(shape); y.slice(dim, start, start + step * g.size(dim), step) = g;  dy -> slice.
Tensor slice_backward(const Tensor& g, const Shape& in_shape, int64_t dim, int64_t start,
                      int64_t step) {
    Tensor out = zeros(in_shape, {.dtype = g.dtype(), .device = g.device()});
    {
        NoGradGuard ng;
        Tensor dst = out.slice(dim, start, start + step * g.size(dim), step);
        backend(out).copy(g, dst);
    }
    int64_t len = g.size(dim);
    return record("slice_backward", out, {g}, [dim, start, step, len](const Tensor& gg) {
        return std::vector<Tensor>{gg.slice(dim, start, start + step * len, step)};
    });
}

Tensor Tensor::view(const Shape& shape_in) const {
    Shape s = infer_shape("view", shape_in, numel(), shape());
    Shape st;
    SOMA_CHECK_SHAPE(view_strides(shape(), strides(), s, st), "view: size ", shape_in,
                     " is not compatible with input shape ", shape(), " and strides ", strides(),
                     " (at least one dimension spans across two contiguous subspaces). Use "
                     "reshape() instead.");
    Shape in_shape = shape();
    return record_view("view", *this, make_view(*this, s, st, storage_offset()),
                       [in_shape](const Tensor& g) { return g.reshape(in_shape); });
}

Tensor Tensor::reshape(const Shape& shape_in) const {
    Shape s = infer_shape("reshape", shape_in, numel(), shape());
    Shape st;
    if (view_strides(shape(), strides(), s, st)) return view(s);
    Tensor r = contiguous().view(s);
    r.impl()->is_view = false;  // a view of a private copy: as good as a fresh tensor
    return r;
}

Tensor Tensor::permute(const Shape& dims) const {
    int64_t n = dim();
    SOMA_CHECK_SHAPE(static_cast<int64_t>(dims.size()) == n, "permute: got ", dims.size(), " dims ",
                     dims, " for a tensor of shape ", shape(), ", expected ", n);
    Shape sh(n), st(n), inv(n);
    std::vector<bool> seen(n, false);
    for (int64_t i = 0; i < n; ++i) {
        int64_t d = wrap_dim(dims[i], n, "permute");
        SOMA_CHECK_SHAPE(!seen[d], "permute: repeated dim ", d, " in ", dims);
        seen[d] = true;
        sh[i] = shape()[d];
        st[i] = strides()[d];
        inv[d] = i;
    }
    return record_view("permute", *this, make_view(*this, sh, st, storage_offset()),
                       [inv](const Tensor& g) { return g.permute(inv); });
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
    int64_t n = dim();
    if (n == 0) return view({});
    d0 = wrap_dim(d0, n, "transpose");
    d1 = wrap_dim(d1, n, "transpose");
    Shape p(n);
    std::iota(p.begin(), p.end(), 0);
    std::swap(p[d0], p[d1]);
    return permute(p);
}

Tensor Tensor::t() const {
    SOMA_CHECK_SHAPE(dim() <= 2, "t: expects a tensor with <= 2 dims, got shape ", shape(),
                     ". Use transpose(d0, d1) or permute().");
    if (dim() < 2) return view(shape());
    return transpose(0, 1);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
    SOMA_CHECK_SHAPE(dim() > 0, "slice: cannot slice a 0-dim tensor");
    d = wrap_dim(d, dim(), "slice");
    SOMA_CHECK_VALUE(step > 0, "slice: step must be positive, got ", step);
    int64_t n = shape()[d];
    if (start < 0) start += n;
    if (end < 0) end += n;
    start = std::clamp<int64_t>(start, 0, n);
    end = std::clamp<int64_t>(end, start, n);
    int64_t len = (end - start + step - 1) / step;
    Shape sh = shape(), st = strides();
    sh[d] = len;
    st[d] *= step;
    int64_t off = storage_offset() + start * strides()[d];
    Shape in_shape = shape();
    return record_view("slice", *this, make_view(*this, sh, st, off),
                       [in_shape, d, start, step](const Tensor& g) {
                           return slice_backward(g, in_shape, d, start, step);
                       });
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
    SOMA_CHECK_SHAPE(dim() > 0, "narrow: cannot narrow a 0-dim tensor");
    d = wrap_dim(d, dim(), "narrow");
    int64_t n = shape()[d];
    if (start < 0) start += n;
    SOMA_CHECK_INDEX(start >= 0 && length >= 0 && start + length <= n, "narrow: range [", start,
                     ", ", start + length, ") is out of bounds for dim ", d, " of size ", n,
                     " (shape ", shape(), ")");
    return slice(d, start, start + length, 1);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
    SOMA_CHECK_INDEX(dim() > 0, "select: cannot index a 0-dim tensor");
    d = wrap_dim(d, dim(), "select");
    int64_t n = shape()[d];
    SOMA_CHECK_INDEX(index >= -n && index < n, "select: index ", index,
                     " is out of bounds for dim ", d, " with size ", n, " (shape ", shape(), ")");
    if (index < 0) index += n;
    Shape sh = shape(), st = strides();
    int64_t off = storage_offset() + index * st[d];
    sh.erase(sh.begin() + d);
    st.erase(st.begin() + d);
    Shape in_shape = shape();
    return record_view("select", *this, make_view(*this, sh, st, off),
                       [in_shape, d, index](const Tensor& g) {
                           return slice_backward(g.unsqueeze(d), in_shape, d, index, 1);
                       });
}

Tensor Tensor::expand(const Shape& shape_in) const {
    int64_t n = static_cast<int64_t>(shape_in.size());
    SOMA_CHECK_SHAPE(n <= kMaxDims, "expand: at most ", kMaxDims, " dims are supported: got ",
                     shape_in);
    SOMA_CHECK_SHAPE(n >= dim(), "expand: the number of sizes provided (", n,
                     ") must be at least the number of dims of the tensor (", dim(), "): shape ",
                     shape(), " to ", shape_in);
    Shape sh(n), st(n);
    int64_t lead = n - dim();
    for (int64_t i = n - 1; i >= 0; --i) {
        int64_t j = i - lead;
        int64_t want = shape_in[i];
        if (j >= 0) {
            int64_t have = shape()[j];
            if (want == -1) want = have;
            SOMA_CHECK_SHAPE(want >= 0, "expand: invalid size ", want, " at dim ", i, ": shape ",
                             shape(), " to ", shape_in);
            SOMA_CHECK_SHAPE(have == want || have == 1, "expand: the expanded size ", want,
                             " must match the existing size ", have, " at non-singleton dim ", i,
                             ": shape ", shape(), " to ", shape_in);
            sh[i] = want;
            st[i] = (have == want) ? strides()[j] : 0;
        } else {
            SOMA_CHECK_SHAPE(want >= 0,
                             "expand: -1 is not allowed in a new leading dim: ", shape_in);
            sh[i] = want;
            st[i] = 0;
        }
    }
    Shape in_shape = shape();
    return record_view("expand", *this, make_view(*this, sh, st, storage_offset()),
                       [in_shape](const Tensor& g) { return sum_to(g, in_shape); });
}

Tensor Tensor::squeeze() const {
    Shape s;
    for (auto d : shape())
        if (d != 1) s.push_back(d);
    return view(s);
}
Tensor Tensor::squeeze(int64_t d) const {
    if (dim() == 0) return view({});
    d = wrap_dim(d, dim(), "squeeze");
    if (shape()[d] != 1) return view(shape());
    Shape s = shape();
    s.erase(s.begin() + d);
    return view(s);
}
Tensor Tensor::unsqueeze(int64_t d) const {
    d = wrap_dim(d, dim() + 1, "unsqueeze");
    Shape s = shape(), st = strides();
    int64_t new_stride = d < dim() ? st[d] * s[d] : 1;
    s.insert(s.begin() + d, 1);
    st.insert(st.begin() + d, new_stride);
    SOMA_CHECK_SHAPE(static_cast<int64_t>(s.size()) <= kMaxDims, "unsqueeze: at most ", kMaxDims,
                     " dims are supported: got shape ", shape());
    Shape in_shape = shape();
    return record_view("unsqueeze", *this, make_view(*this, s, st, storage_offset()),
                       [in_shape](const Tensor& g) { return g.reshape(in_shape); });
}
Tensor Tensor::flatten(int64_t start, int64_t end) const {
    if (dim() == 0) return reshape({1});
    start = wrap_dim(start, dim(), "flatten");
    end = wrap_dim(end, dim(), "flatten");
    SOMA_CHECK_VALUE(start <= end, "flatten: start_dim ", start, " must not come after end_dim ",
                     end);
    Shape s(shape().begin(), shape().begin() + start);
    int64_t p = 1;
    for (int64_t i = start; i <= end; ++i) p *= shape()[i];
    s.push_back(p);
    s.insert(s.end(), shape().begin() + end + 1, shape().end());
    return reshape(s);
}

Tensor Tensor::contiguous() const {
    if (is_contiguous()) return *this;
    return clone();
}

Tensor Tensor::clone() const {
    Tensor out = make_tensor(shape(), dtype(), device());
    backend(*this).copy(*this, out);
    return record("clone", out, {*this}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

Tensor Tensor::to(DType t) const { return cast(*this, t); }
Tensor Tensor::to(Device d) const {
    SOMA_CHECK_T(d == device(), DeviceError, "to: moving tensors to ", d.str(),
                 " is not available in this build (tensor is on ", device().str(), ")");
    return *this;
}

// ---- element access ------------------------------------------------------------------------

namespace {
template <class T>
T read_as(const void* p, DType dt) {
    switch (dt) {
        case DType::float32: return static_cast<T>(*static_cast<const float*>(p));
        case DType::float64: return static_cast<T>(*static_cast<const double*>(p));
        case DType::int64: return static_cast<T>(*static_cast<const int64_t*>(p));
        case DType::boolean: return static_cast<T>(*static_cast<const bool*>(p));
    }
    return T{};
}
}  // namespace

template <class T>
T Tensor::item() const {
    SOMA_CHECK_VALUE(numel() == 1, "item: a tensor with ", numel(),
                     " elements cannot be converted to a scalar (shape ", shape(), ")");
    return read_as<T>(impl_->data(), dtype());
}

template <class T>
T Tensor::at(std::initializer_list<int64_t> index) const {
    SOMA_CHECK_INDEX(static_cast<int64_t>(index.size()) == dim(), "at: got ", index.size(),
                     " indices for a tensor of shape ", shape());
    int64_t off = 0, i = 0;
    for (int64_t v : index) {
        int64_t n = shape()[i];
        SOMA_CHECK_INDEX(v >= -n && v < n, "at: index ", v, " is out of bounds for dim ", i,
                         " with size ", n);
        if (v < 0) v += n;
        off += v * strides()[i];
        ++i;
    }
    const char* base = static_cast<const char*>(impl_->data());
    return read_as<T>(base + off * static_cast<int64_t>(dtype_size(dtype())), dtype());
}

template <class T>
std::vector<T> Tensor::to_vector() const {
    Tensor c = contiguous();
    std::vector<T> out(numel());
    const char* base = static_cast<const char*>(c.raw_data());
    size_t es = dtype_size(dtype());
    for (int64_t i = 0; i < numel(); ++i) out[i] = read_as<T>(base + i * es, dtype());
    return out;
}

#define SOMA_INST(T)                                                \
    template T Tensor::item<T>() const;                             \
    template T Tensor::at<T>(std::initializer_list<int64_t>) const; \
    template std::vector<T> Tensor::to_vector<T>() const;
SOMA_INST(float)
SOMA_INST(double)
SOMA_INST(int64_t)
SOMA_INST(bool)
SOMA_INST(int)
#undef SOMA_INST

// ---- factories -----------------------------------------------------------------------------

Tensor empty(const Shape& shape, TensorOptions opt) {
    Tensor t = make_tensor(shape, opt.dtype, opt.device);
    if (opt.requires_grad) t.requires_grad_();
    return t;
}
Tensor full(const Shape& shape, Scalar value, TensorOptions opt) {
    Tensor t = make_tensor(shape, opt.dtype, opt.device);
    backend(t).fill(t, value);
    if (opt.requires_grad) t.requires_grad_();
    return t;
}
Tensor zeros(const Shape& shape, TensorOptions opt) { return full(shape, 0, opt); }
Tensor ones(const Shape& shape, TensorOptions opt) { return full(shape, 1, opt); }

Tensor arange(Scalar end) { return arange(0, end, 1); }
Tensor arange(Scalar start, Scalar end, Scalar step) {
    bool all_int = !start.is_floating() && !end.is_floating() && !step.is_floating();
    return arange(start, end, step, {.dtype = all_int ? DType::int64 : DType::float32});
}
Tensor arange(Scalar start, Scalar end, Scalar step, TensorOptions opt) {
    double s = start.to_double(), e = end.to_double(), st = step.to_double();
    SOMA_CHECK_VALUE(st != 0, "arange: step must be nonzero");
    SOMA_CHECK_VALUE((st > 0 && e >= s) || (st < 0 && e <= s),
                     "arange: upper bound and larger bound inconsistent with step sign: start ", s,
                     ", end ", e, ", step ", st);
    int64_t n = static_cast<int64_t>(std::ceil((e - s) / st));
    Tensor t = make_tensor({n}, opt.dtype, {});
    for (int64_t i = 0; i < n; ++i) {
        double v = s + st * static_cast<double>(i);
        switch (opt.dtype) {
            case DType::float32: t.data_ptr<float>()[i] = static_cast<float>(v); break;
            case DType::float64: t.data_ptr<double>()[i] = v; break;
            case DType::int64: t.data_ptr<int64_t>()[i] = start.to_int() + step.to_int() * i; break;
            case DType::boolean: t.data_ptr<bool>()[i] = v != 0; break;
        }
    }
    if (opt.requires_grad) t.requires_grad_();
    return t.to(opt.device);
}

Tensor linspace(double start, double end, int64_t steps, TensorOptions opt) {
    SOMA_CHECK_VALUE(steps >= 0, "linspace: number of steps must be non-negative, got ", steps);
    Tensor t = make_tensor({steps}, DType::float64, {});
    double* p = t.data_ptr<double>();
    double step = steps > 1 ? (end - start) / static_cast<double>(steps - 1) : 0;
    // Symmetric fill, as PyTorch: the second half counts back from `end` (one step: `start`).
    int64_t half = steps == 1 ? 1 : steps / 2;
    for (int64_t i = 0; i < steps; ++i)
        p[i] = i < half ? start + step * static_cast<double>(i)
                        : end - step * static_cast<double>(steps - 1 - i);
    Tensor r = t.to(opt.dtype);
    if (opt.requires_grad) r.requires_grad_();
    return r;
}

Tensor eye(int64_t n, int64_t m, TensorOptions opt) {
    if (m < 0) m = n;
    SOMA_CHECK_VALUE(n >= 0, "eye: n must be non-negative, got ", n);
    Tensor t = zeros({n, m}, {.dtype = opt.dtype, .device = opt.device});
    Tensor d = make_view(t, {std::min(n, m)}, {m + 1}, 0);
    backend(t).fill(d, 1);
    if (opt.requires_grad) t.requires_grad_();
    return t;
}

Tensor rand(const Shape& shape, TensorOptions opt) {
    SOMA_CHECK_DTYPE(is_floating(opt.dtype), "rand: dtype must be floating, got ", opt.dtype);
    Tensor t = make_tensor(shape, opt.dtype, opt.device);
    auto& g = default_generator();
    backend(t).uniform(t, 0, 1, g.seed(), g.reserve((t.numel() + 1) / 2));
    if (opt.requires_grad) t.requires_grad_();
    return t;
}
Tensor normal(double mean, double std, const Shape& shape, TensorOptions opt) {
    SOMA_CHECK_DTYPE(is_floating(opt.dtype), "normal: dtype must be floating, got ", opt.dtype);
    SOMA_CHECK_VALUE(std >= 0, "normal: std must be >= 0, got ", std);
    Tensor t = make_tensor(shape, opt.dtype, opt.device);
    auto& g = default_generator();
    backend(t).normal(t, mean, std, g.seed(), g.reserve((t.numel() + 1) / 2));
    if (opt.requires_grad) t.requires_grad_();
    return t;
}
Tensor randn(const Shape& shape, TensorOptions opt) { return normal(0, 1, shape, opt); }
Tensor randint(int64_t low, int64_t high, const Shape& shape, TensorOptions opt) {
    SOMA_CHECK_VALUE(high > low, "randint: high (", high, ") must be greater than low (", low, ")");
    Tensor u = rand(shape, {.dtype = DType::float64});
    Tensor t = make_tensor(shape, opt.dtype, {});
    const double* src = u.data_ptr<double>();
    double span = static_cast<double>(high - low);
    for (int64_t i = 0; i < t.numel(); ++i) {
        int64_t v = low + std::min<int64_t>(static_cast<int64_t>(src[i] * span), high - low - 1);
        switch (opt.dtype) {
            case DType::int64: t.data_ptr<int64_t>()[i] = v; break;
            case DType::float32: t.data_ptr<float>()[i] = static_cast<float>(v); break;
            case DType::float64: t.data_ptr<double>()[i] = static_cast<double>(v); break;
            case DType::boolean: t.data_ptr<bool>()[i] = v != 0; break;
        }
    }
    return t.to(opt.device);
}

Tensor scalar_tensor(Scalar v, TensorOptions opt) { return full({}, v, opt); }
Tensor scalar_tensor(Scalar v) { return full({}, v, {.dtype = v.natural_dtype()}); }
Tensor empty_like(const Tensor& t) { return make_tensor(t.shape(), t.dtype(), t.device()); }
Tensor zeros_like(const Tensor& t) {
    return zeros(t.shape(), {.dtype = t.dtype(), .device = t.device()});
}
Tensor ones_like(const Tensor& t) {
    return ones(t.shape(), {.dtype = t.dtype(), .device = t.device()});
}
Tensor full_like(const Tensor& t, Scalar v) {
    return full(t.shape(), v, {.dtype = t.dtype(), .device = t.device()});
}
Tensor rand_like(const Tensor& t) {
    return rand(t.shape(), {.dtype = t.dtype(), .device = t.device()});
}
Tensor randn_like(const Tensor& t) {
    return randn(t.shape(), {.dtype = t.dtype(), .device = t.device()});
}

template <class T>
Tensor from_vector(const std::vector<T>& data, const Shape& shape, TensorOptions opt) {
    SOMA_CHECK_SHAPE(static_cast<int64_t>(data.size()) == shape_numel(shape),
                     "from_vector: ", data.size(), " values do not fill shape ", shape, " (",
                     shape_numel(shape), " elements)");
    Tensor t = make_tensor(shape, dtype_of<T>(), {});
    if (!data.empty()) {
        if constexpr (std::is_same_v<T, bool>) {
            for (size_t i = 0; i < data.size(); ++i) t.data_ptr<bool>()[i] = data[i];
        } else {
            std::memcpy(t.raw_data(), data.data(), data.size() * sizeof(T));
        }
    }
    Tensor r = t.to(opt.dtype).to(opt.device);
    if (r.is_same(t) && opt.requires_grad)
        r.requires_grad_();
    else if (opt.requires_grad)
        r = r.detach().requires_grad_();
    return r;
}
template Tensor from_vector<float>(const std::vector<float>&, const Shape&, TensorOptions);
template Tensor from_vector<double>(const std::vector<double>&, const Shape&, TensorOptions);
template Tensor from_vector<int64_t>(const std::vector<int64_t>&, const Shape&, TensorOptions);
template Tensor from_vector<bool>(const std::vector<bool>&, const Shape&, TensorOptions);

Tensor tensor(std::initializer_list<double> values, TensorOptions opt) {
    std::vector<double> v(values);
    Tensor t = from_vector(v, {static_cast<int64_t>(v.size())}).to(opt.dtype);
    if (opt.requires_grad) t = t.detach().requires_grad_();
    return t;
}
Tensor tensor(std::initializer_list<std::initializer_list<double>> values, TensorOptions opt) {
    std::vector<double> v;
    int64_t cols = values.size() ? static_cast<int64_t>(values.begin()->size()) : 0;
    for (auto& row : values) {
        SOMA_CHECK_SHAPE(static_cast<int64_t>(row.size()) == cols,
                         "tensor: rows have different lengths (", cols, " and ", row.size(), ")");
        v.insert(v.end(), row.begin(), row.end());
    }
    Tensor t = from_vector(v, {static_cast<int64_t>(values.size()), cols}).to(opt.dtype);
    if (opt.requires_grad) t = t.detach().requires_grad_();
    return t;
}

}  // namespace soma
