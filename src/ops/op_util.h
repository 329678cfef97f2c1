// Internal helpers shared by the op families: dim wrapping, broadcasting, type promotion,
// input checks. Every message starts with the op name.
#pragma once

#include <string>
#include <vector>

#include "autograd/node.h"
#include "backend/backend.h"
#include "core/tensor_impl.h"
#include "soma/ops.h"

namespace soma {

/// Wraps a possibly negative dim into [0, ndim); ndim 0 accepts -1 and 0 as in PyTorch.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);
/// Wraps and sorts a list of dims; empty means all. Repeated dims raise.
std::vector<int64_t> wrap_dims(const Shape& dims, int64_t ndim, const char* op);
/// The broadcast of two shapes, or ShapeError naming op and both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
/// PyTorch's result_type: dimensioned tensors outrank 0-dim ones within the same category.
DType result_type(const Tensor& a, const Tensor& b);
DType result_type(const Tensor& a, Scalar b);
/// A 0-dim tensor holding a scalar, in the given dtype.
Tensor wrap_scalar(Scalar s, DType dtype, Device device);
/// `t` converted to dtype (no copy when equal). Differentiable between floating types.
Tensor cast(const Tensor& t, DType dtype);
void check_floating(const Tensor& t, const char* op);
void check_defined(const Tensor& t, const char* op);
void check_same_device(const Tensor& a, const Tensor& b, const char* op);
/// Fresh output of `shape` on x's device.
inline Tensor new_out(const Tensor& like, const Shape& shape, DType dtype) {
    return make_tensor(shape, dtype, like.device());
}
/// Marks the end of a kernel that wrote into `t` in place (bumps the version counter).
void bump_version(const Tensor& t);
/// Throws when `t` is a leaf that requires grad and grad mode is on (in-place forbidden).
void check_inplace(const Tensor& t, const char* op);

}  // namespace soma
