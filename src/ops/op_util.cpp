#include "ops/op_util.h"

#include <algorithm>

namespace soma {

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
    int64_t n = std::max<int64_t>(ndim, 1);
    SOMA_CHECK_INDEX(dim >= -n && dim < n, op,
                     ": dimension out of range (expected to be in range [", -n, ", ", n - 1,
                     "], but got ", dim, ")");
    return dim < 0 ? dim + n : dim;
}

std::vector<int64_t> wrap_dims(const Shape& dims, int64_t ndim, const char* op) {
    std::vector<int64_t> out;
    if (dims.empty()) {
        for (int64_t i = 0; i < ndim; ++i) out.push_back(i);
        return out;
    }
    for (int64_t d : dims) {
        int64_t w = wrap_dim(d, ndim, op);
        SOMA_CHECK_INDEX(std::find(out.begin(), out.end(), w) == out.end(), op, ": dim ", w,
                         " appears multiple times in the list of dims ", dims);
        out.push_back(w);
    }
    if (ndim == 0) out.clear();
    std::sort(out.begin(), out.end());
    return out;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
    size_t n = std::max(a.size(), b.size());
    Shape out(n);
    for (size_t i = 0; i < n; ++i) {
        int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
        int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
        SOMA_CHECK_SHAPE(da == db || da == 1 || db == 1, op, ": shapes ", a, " and ", b,
                         " are not broadcastable (size ", da, " vs ", db, " at dim ", i,
                         "). Sizes must match or be 1.");
        out[i] = da == 1 ? db : da;
    }
    return out;
}

namespace {
int category(DType t) { return t == DType::boolean ? 0 : t == DType::int64 ? 1 : 2; }
}  // namespace

DType result_type(const Tensor& a, const Tensor& b) {
    // Dimensioned tensors take priority over 0-dim ones unless the 0-dim one is of a higher
    // category (e.g. float 0-dim with an int tensor gives the default float dtype).
    bool a0 = a.dim() == 0, b0 = b.dim() == 0;
    if (a0 == b0) return promote_types(a.dtype(), b.dtype());
    const Tensor& dimd = a0 ? b : a;
    const Tensor& zero = a0 ? a : b;
    if (category(zero.dtype()) > category(dimd.dtype()))
        return category(zero.dtype()) == 2 ? DType::float32 : zero.dtype();
    return dimd.dtype();
}

DType result_type(const Tensor& a, Scalar b) {
    int cb = b.is_bool() ? 0 : b.is_integral() ? 1 : 2;
    if (cb > category(a.dtype())) return cb == 2 ? DType::float32 : DType::int64;
    return a.dtype();
}

Tensor wrap_scalar(Scalar s, DType dtype, Device device) {
    return full({}, s, {.dtype = dtype, .device = device});
}

Tensor cast(const Tensor& t, DType dtype) {
    if (t.dtype() == dtype) return t;
    Tensor out = make_tensor(t.shape(), dtype, t.device());
    backend(t).copy(t, out);
    if (!is_floating(dtype) || !is_floating(t.dtype())) return out;
    DType from = t.dtype();
    return record("to", out, {t},
                  [from](const Tensor& g) { return std::vector<Tensor>{cast(g, from)}; });
}

void check_floating(const Tensor& t, const char* op) {
    SOMA_CHECK_DTYPE(is_floating(t.dtype()), op, ": expected a floating point tensor, got ",
                     t.dtype(), " with shape ", t.shape(),
                     ". Convert with .to(soma::DType::float32).");
}

void check_defined(const Tensor& t, const char* op) {
    SOMA_CHECK(t.defined(), op, ": got an undefined tensor");
}

void check_same_device(const Tensor& a, const Tensor& b, const char* op) {
    SOMA_CHECK_T(a.device() == b.device(), DeviceError, op,
                 ": expected all tensors on the same device, got ", a.device().str(), " and ",
                 b.device().str());
}

void bump_version(const Tensor& t) { ++t.impl()->storage->version; }

void check_inplace(const Tensor& t, const char* op) {
    check_defined(t, op);
    SOMA_CHECK_T(!(is_grad_enabled() && t.is_leaf() && t.requires_grad()), AutogradError, op,
                 ": a leaf tensor that requires grad is being used in an in-place operation. "
                 "Wrap the update in soma::NoGradGuard or use an out-of-place op.");
}

}  // namespace soma
