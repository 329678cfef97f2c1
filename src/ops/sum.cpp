// sum and sum_to: the reduction every broadcasting backward needs.
#include <numeric>

#include "ops/op_util.h"

namespace soma {

/// Runs a backend reduction over `dims` (sorted, wrapped): permutes them to the end, reduces,
/// and reshapes to the kept dims (with 1s when keepdim).
Tensor reduce_kernel(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim,
                     DType out_dtype, Tensor* indices) {
    int64_t nd = x.dim();
    std::vector<bool> red(nd, false);
    for (int64_t d : dims) red[d] = true;
    Shape perm, kept_shape, keep_shape;
    for (int64_t d = 0; d < nd; ++d)
        if (!red[d]) {
            perm.push_back(d);
            kept_shape.push_back(x.shape()[d]);
        }
    for (int64_t d : dims) perm.push_back(d);
    for (int64_t d = 0; d < nd; ++d) keep_shape.push_back(red[d] ? 1 : x.shape()[d]);
    Shape pst(nd), psh(nd);
    for (int64_t i = 0; i < nd; ++i) {
        psh[i] = x.shape()[perm[i]];
        pst[i] = x.strides()[perm[i]];
    }
    Tensor xp = make_view(x, psh, pst, x.storage_offset());
    Tensor out = make_tensor(kept_shape, out_dtype, x.device());
    if (indices) *indices = make_tensor(kept_shape, DType::int64, x.device());
    backend(x).reduce(op, xp, static_cast<int64_t>(dims.size()), out, indices);
    if (keepdim) {
        out = make_view(out, keep_shape, contiguous_strides(keep_shape), 0);
        if (indices) *indices = make_view(*indices, keep_shape, contiguous_strides(keep_shape), 0);
    }
    return out;
}

// sum: y = Σ_dims x;  dx = dy broadcast back over the reduced dims
Tensor sum(const Tensor& x, const Shape& dims_in, bool keepdim) {
    check_defined(x, "sum");
    auto dims = wrap_dims(dims_in, x.dim(), "sum");
    DType od = is_floating(x.dtype()) ? x.dtype() : DType::int64;
    Tensor xin = x.dtype() == od ? x : cast(x, od);
    Tensor out;
    {
        NoGradGuard ng;
        out = reduce_kernel(ReduceOp::sum, xin, dims, keepdim, od, nullptr);
    }
    Shape in_shape = x.shape();
    Shape keep_shape = in_shape;
    for (int64_t d : dims) keep_shape[d] = 1;
    return record("sum", out, {xin}, [in_shape, keep_shape](const Tensor& g) {
        return std::vector<Tensor>{g.reshape(keep_shape).expand(in_shape)};
    });
}

// sum_to: reduces a broadcast gradient back to `shape` (leading dims and size-1 dims summed).
Tensor sum_to(const Tensor& x, const Shape& shape) {
    if (x.shape() == shape) return x;
    int64_t lead = x.dim() - static_cast<int64_t>(shape.size());
    SOMA_CHECK_SHAPE(lead >= 0, "sum_to: shape ", x.shape(), " can't be summed to ", shape);
    Shape dims;
    for (int64_t i = 0; i < x.dim(); ++i) {
        if (i < lead) {
            dims.push_back(i);
            continue;
        }
        int64_t want = shape[i - lead];
        if (want == 1 && x.shape()[i] != 1)
            dims.push_back(i);
        else
            SOMA_CHECK_SHAPE(want == x.shape()[i], "sum_to: shape ", x.shape(),
                             " can't be summed to ", shape);
    }
    if (dims.empty()) return x.reshape(shape);
    return sum(x, dims, true).reshape(shape);
}

}  // namespace soma
