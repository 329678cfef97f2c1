// Reductions: mean, prod, max/min (all, along a dim, amax/amin), argmax/argmin, var/std, norm,
// logsumexp, softmax and log_softmax. sum and sum_to live in sum.cpp (with reduce_kernel).
//
// Forward passes run the backend reduction (or a short composition of ops) with recording off;
// each op then records one node whose backward is written in differentiable ops, so double
// backward works. Gradients of a reduction are broadcast back with g.reshape(keep).expand(in),
// where `keep` is the input shape with the reduced dims set to 1.
#include <algorithm>
#include <cmath>
#include <limits>

#include "ops/op_util.h"

namespace soma {

Tensor reduce_kernel(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim,
                     DType out_dtype, Tensor* indices);

namespace {

using Grads = std::vector<Tensor>;

// What a reduction over `dims` of a tensor looks like.
struct Reduction {
    std::vector<int64_t> dims;  // wrapped and sorted (empty for a 0-dim input)
    Shape in_shape;
    Shape keep_shape;   // in_shape with the reduced dims set to 1
    Shape drop_shape;   // in_shape without the reduced dims (keepdim = false)
    int64_t count = 1;  // elements reduced into each output element
};

Reduction plan(const Tensor& x, const Shape& dims_in, const char* op) {
    check_defined(x, op);
    Reduction r;
    r.dims = wrap_dims(dims_in, x.dim(), op);
    r.in_shape = x.shape();
    r.keep_shape = x.shape();
    for (int64_t d : r.dims) {
        r.count *= x.shape()[d];
        r.keep_shape[d] = 1;
    }
    for (int64_t d = 0; d < x.dim(); ++d)
        if (!std::binary_search(r.dims.begin(), r.dims.end(), d))
            r.drop_shape.push_back(x.shape()[d]);
    return r;
}

Reduction plan_dim(const Tensor& x, int64_t dim, const char* op) {
    check_defined(x, op);
    return plan(x, {wrap_dim(dim, x.dim(), op)}, op);
}

// A gradient in the reduction's output shape (keepdim or not), broadcast back to the input.
Tensor expand_grad(const Tensor& g, const Reduction& r) {
    return g.reshape(r.keep_shape).expand(r.in_shape);
}

// max/min/argmax/... have no identity: reducing no elements is an error, as in PyTorch.
void check_nonempty(const Tensor& x, const Reduction& r, const char* op, bool all_dims) {
    if (all_dims) {
        SOMA_CHECK_INDEX(x.numel() > 0, op, ": cannot reduce an empty tensor: got shape ",
                         x.shape(),
                         ", expected at least one element. Pass a dim of non-zero size "
                         "to reduce over.");
        return;
    }
    for (int64_t d : r.dims)
        SOMA_CHECK_INDEX(x.shape()[d] > 0, op, ": cannot reduce over dim ", d,
                         " of size 0: input shape ", x.shape(),
                         ", expected a non-zero size (the result would be undefined)");
}

void check_floating_op(const Tensor& x, const char* op, const char* what) {
    SOMA_CHECK_DTYPE(is_floating(x.dtype()), op, ": ", what, ": got ", x.dtype(), " with shape ",
                     x.shape(),
                     ", expected float32 or float64. Convert with .to(soma::DType::"
                     "float32).");
}

Tensor zero_scalar(const Tensor& like) {
    return zeros({}, {.dtype = like.dtype(), .device = like.device()});
}

// Backward of amax/amin/max()/min(): dx = dy * (x == y) / count(x == y)  (ties share evenly)
Tensor extreme_backward(const Tensor& g, const Tensor& x, const Tensor& y, const Reduction& r) {
    Tensor mask = eq(x.detach(), y.detach().reshape(r.keep_shape));
    Tensor count = sum(mask, r.dims, true);
    return where(mask, g.reshape(r.keep_shape) / count, zero_scalar(g));
}

// amax/amin and max()/min() share this: values only, ties split the gradient.
Tensor extreme(const Tensor& x, const Shape& dims, bool keepdim, bool is_max, const char* op,
               bool all_dims) {
    Reduction r = plan(x, dims, op);
    check_nonempty(x, r, op, all_dims);
    Tensor out;
    {
        NoGradGuard ng;
        out = reduce_kernel(is_max ? ReduceOp::max : ReduceOp::min, x, r.dims, keepdim, x.dtype(),
                            nullptr);
    }
    return record_with_output(
        op, out, {x},
        [x, r](const Tensor& g, const Tensor& y) { return Grads{extreme_backward(g, x, y, r)}; },
        {x});
}

// max/min along one dim: values and the first index of the extreme.
ValuesIndices extreme_dim(const Tensor& x, int64_t dim, bool keepdim, bool is_max, const char* op) {
    Reduction r = plan_dim(x, dim, op);
    check_nonempty(x, r, op, false);
    Tensor out, idx;
    {
        NoGradGuard ng;
        out = reduce_kernel(is_max ? ReduceOp::max : ReduceOp::min, x, r.dims, keepdim, x.dtype(),
                            &idx);
    }
    // max(dim): y = x[idx];  dx = dy at idx along dim, 0 elsewhere (mask = arange == idx)
    Tensor idx_keep = idx.reshape(r.keep_shape);
    out = record(op, out, {x}, [r, idx_keep, dev = x.device()](const Tensor& g) {
        if (r.dims.empty()) return Grads{g.reshape(r.in_shape)};
        int64_t d = r.dims[0];
        Shape pos_shape(r.in_shape.size(), 1);
        pos_shape[d] = r.in_shape[d];
        Tensor pos = arange(0, r.in_shape[d], 1, {.dtype = DType::int64, .device = dev});
        Tensor mask = eq(pos.reshape(pos_shape), idx_keep);
        return Grads{where(mask, g.reshape(r.keep_shape), zero_scalar(g))};
    });
    return {out, idx};
}

Tensor arg_extreme(const Tensor& x, const Shape& dims, bool keepdim, bool is_max, const char* op,
                   bool all_dims) {
    Reduction r = plan(x, dims, op);
    check_nonempty(x, r, op, all_dims);
    NoGradGuard ng;
    return reduce_kernel(is_max ? ReduceOp::argmax : ReduceOp::argmin, x, r.dims, keepdim,
                         DType::int64, nullptr);
}

// Divisor of var/std: N - correction, never negative (0 gives inf/nan as in PyTorch).
double var_divisor(const Reduction& r, bool unbiased) {
    return static_cast<double>(std::max<int64_t>(r.count - (unbiased ? 1 : 0), 0));
}

// Forward of var (no recording): two passes, Σ(x - mean)² / (N - correction).
Tensor var_forward(const Tensor& x, const Reduction& r, bool unbiased, bool keepdim) {
    NoGradGuard ng;
    Tensor mu = sum(x, r.dims, true) / static_cast<double>(r.count);
    Tensor d = x - mu;
    return sum(d * d, r.dims, keepdim) / var_divisor(r, unbiased);
}

// var backward: dx = dy * 2 (x - mean) / (N - correction)
Tensor var_backward(const Tensor& g, const Tensor& x, const Reduction& r, bool unbiased) {
    Tensor centered = x - mean(x, r.dims, true);
    return g.reshape(r.keep_shape) * centered * (2.0 / var_divisor(r, unbiased));
}

// y with zeros replaced by ones (so that dividing by it is safe under a where).
Tensor nonzero_or_one(const Tensor& y) { return where(eq(y, 0), 1.0, y); }

// Max of x over r.dims with infinite maxima replaced by 0 (the shift for exp-sums); 0 when
// reducing no elements. No recording.
Tensor stable_shift(const Tensor& x, const Reduction& r) {
    NoGradGuard ng;
    if (r.count == 0) return zeros(r.keep_shape, {.dtype = x.dtype(), .device = x.device()});
    Tensor m = reduce_kernel(ReduceOp::max, x, r.dims, true, x.dtype(), nullptr);
    return where(eq(abs(m), std::numeric_limits<double>::infinity()), 0.0, m);
}

}  // namespace

// mean: y = Σ x / N;  dx = dy / N
Tensor mean(const Tensor& x, const Shape& dims, bool keepdim) {
    Reduction r = plan(x, dims, "mean");
    SOMA_CHECK_DTYPE(is_floating(x.dtype()), "mean: could not infer the output dtype: got ",
                     x.dtype(), " with shape ", x.shape(),
                     ", expected a floating point tensor (mean needs floating). "
                     "Convert with .to(soma::DType::float32).");
    Tensor out;
    {
        NoGradGuard ng;
        out = reduce_kernel(ReduceOp::sum, x, r.dims, keepdim, x.dtype(), nullptr) /
              static_cast<double>(r.count);
    }
    return record("mean", out, {x}, [r](const Tensor& g) {
        return Grads{expand_grad(g, r) / static_cast<double>(r.count)};
    });
}

namespace {

// prod backward: dx_i = dy * Π_{j≠i} x_j. Without zeros that is dy * y / x. With zeros, per
// slice: P = Π of the nonzero x, Z = Π of the zero x (value 0, carries their derivative):
//   x_i ≠ 0:              P / x_i * Z
//   x_i = 0, one zero:    P
//   x_i = 0, two zeros:   P * (other zero)      (value 0; keeps the second derivative right)
//   x_i = 0, more zeros:  0
Tensor prod_backward(const Tensor& g, const Tensor& x, const Tensor& y, const Reduction& r) {
    Tensor ge = g.reshape(r.keep_shape);
    Tensor is_zero = eq(x.detach(), 0);
    bool any_zero;
    {
        NoGradGuard ng;
        any_zero = sum(is_zero).item<int64_t>() > 0;
    }
    if (!any_zero) return ge * y.reshape(r.keep_shape) / x;
    Tensor x_nz = where(is_zero, 1.0, x);
    Tensor p = prod(x_nz, r.dims, true);
    Tensor z = prod(where(is_zero, x, 1.0), r.dims, true);
    Tensor zeros_per_slice = sum(is_zero, r.dims, true);
    Tensor other_zero = sum(where(is_zero, x, 0.0), r.dims, true) - x;
    Tensor at_nonzero = p / x_nz * z;
    Tensor at_zero = where(eq(zeros_per_slice, 1), p,
                           where(eq(zeros_per_slice, 2), p * other_zero, zero_scalar(x)));
    return ge * where(is_zero, at_zero, at_nonzero);
}

}  // namespace

// prod: y = Π x;  dx = dy * Π_{j≠i} x_j  (= dy * y / x without zeros; see prod_backward)
Tensor prod(const Tensor& x, const Shape& dims, bool keepdim) {
    Reduction r = plan(x, dims, "prod");
    DType od = is_floating(x.dtype()) ? x.dtype() : DType::int64;
    Tensor xin = cast(x, od);
    Tensor out;
    {
        NoGradGuard ng;
        out = reduce_kernel(ReduceOp::prod, xin, r.dims, keepdim, od, nullptr);
    }
    return record_with_output(
        "prod", out, {xin},
        [xin, r](const Tensor& g, const Tensor& y) { return Grads{prod_backward(g, xin, y, r)}; },
        {xin});
}

// max: y = max of all x;  dx = dy * (x == y) / count(x == y)
Tensor max(const Tensor& x) { return extreme(x, {}, false, true, "max", true); }
// min: y = min of all x;  dx = dy * (x == y) / count(x == y)
Tensor min(const Tensor& x) { return extreme(x, {}, false, false, "min", true); }

ValuesIndices max(const Tensor& x, int64_t dim, bool keepdim) {
    return extreme_dim(x, dim, keepdim, true, "max");
}
ValuesIndices min(const Tensor& x, int64_t dim, bool keepdim) {
    return extreme_dim(x, dim, keepdim, false, "min");
}

// amax: y = max over dims;  dx = dy * (x == y) / count(x == y) per slice
Tensor amax(const Tensor& x, const Shape& dims, bool keepdim) {
    return extreme(x, dims, keepdim, true, "amax", false);
}
// amin: y = min over dims;  dx = dy * (x == y) / count(x == y) per slice
Tensor amin(const Tensor& x, const Shape& dims, bool keepdim) {
    return extreme(x, dims, keepdim, false, "amin", false);
}

Tensor argmax(const Tensor& x) { return arg_extreme(x, {}, false, true, "argmax", true); }
Tensor argmin(const Tensor& x) { return arg_extreme(x, {}, false, false, "argmin", true); }
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
    check_defined(x, "argmax");
    return arg_extreme(x, {wrap_dim(dim, x.dim(), "argmax")}, keepdim, true, "argmax", false);
}
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) {
    check_defined(x, "argmin");
    return arg_extreme(x, {wrap_dim(dim, x.dim(), "argmin")}, keepdim, false, "argmin", false);
}

// var: y = Σ (x - mean)² / (N - c), c = 1 if unbiased;  dx = dy * 2 (x - mean) / (N - c)
Tensor var(const Tensor& x, const Shape& dims, bool unbiased, bool keepdim) {
    Reduction r = plan(x, dims, "var");
    check_floating_op(x, "var", "std and var only support floating point dtypes");
    Tensor out = var_forward(x, r, unbiased, keepdim);
    return record(
        "var", out, {x},
        [x, r, unbiased](const Tensor& g) { return Grads{var_backward(g, x, r, unbiased)}; }, {x});
}

// std: y = √var;  dx = dy / (2y) * dvar = dy * (x - mean) / ((N - c) y)   (0 where y == 0)
Tensor std(const Tensor& x, const Shape& dims, bool unbiased, bool keepdim) {
    Reduction r = plan(x, dims, "std");
    check_floating_op(x, "std", "std and var only support floating point dtypes");
    Tensor out;
    {
        NoGradGuard ng;
        out = sqrt(var_forward(x, r, unbiased, keepdim));
    }
    return record_with_output("std", out, {x},
                              [x, r, unbiased](const Tensor& g, const Tensor& y) {
                                  Tensor scale =
                                      where(eq(y.detach(), 0), 0.0, g / (nonzero_or_one(y) * 2.0));
                                  return Grads{var_backward(scale, x, r, unbiased)};
                              },
                              {x});
}

// norm: y = (Σ |x|^p)^(1/p)  (p = inf: max |x|)
//   p = 2:    dx = dy * x / y                         (0 where y == 0)
//   p = 1:    dx = dy * sign(x)
//   p = inf:  dx = dy * sign(x) * (|x| == y) / count   (ties share)
//   p < 2:    dx = dy * sign(x) |x|^(p-1) / y^(p-1)   (0 where y == 0 or x == 0)
//   else:     dx = dy * x |x|^(p-2) / y^(p-1)         (0 where y == 0)
Tensor norm(const Tensor& x, double p, const Shape& dims, bool keepdim) {
    Reduction r = plan(x, dims, "norm");
    check_floating_op(x, "norm", "input dtype should be floating point");
    SOMA_CHECK_VALUE(p > 0 && !std::isnan(p), "norm: p must be positive (or inf): got ", p,
                     ", expected p > 0");
    bool inf = std::isinf(p);
    if (inf) check_nonempty(x, r, "norm", r.dims.size() == static_cast<size_t>(x.dim()));
    Tensor out;
    {
        NoGradGuard ng;
        if (inf)
            out = reduce_kernel(ReduceOp::max, abs(x), r.dims, keepdim, x.dtype(), nullptr);
        else if (p == 2)
            out = sqrt(sum(x * x, r.dims, keepdim));
        else if (p == 1)
            out = sum(abs(x), r.dims, keepdim);
        else
            out = pow(sum(pow(abs(x), p), r.dims, keepdim), 1.0 / p);
    }
    return record_with_output(
        "norm", out, {x},
        [x, p, inf, r](const Tensor& g, const Tensor& y) {
            Tensor ge = g.reshape(r.keep_shape);
            Tensor ye = y.reshape(r.keep_shape);
            if (p == 1) return Grads{ge * sign(x)};
            if (inf) {
                Tensor mask = eq(abs(x.detach()), ye.detach());
                Tensor count = sum(mask, r.dims, true);
                return Grads{sign(x) * where(mask, ge / count, zero_scalar(g))};
            }
            Tensor zero = eq(ye.detach(), 0);
            Tensor scale = where(
                zero, 0.0, p == 2 ? ge / nonzero_or_one(ye) : ge / pow(nonzero_or_one(ye), p - 1));
            if (p == 2) return Grads{x * scale};
            Tensor scaled;
            if (p < 2) {
                // |x|^(p-1) is infinite at 0 for p < 1: take 0 there (through a safe x).
                Tensor x_zero = eq(x.detach(), 0);
                Tensor xs = where(x_zero, 1.0, x);
                scaled = where(x_zero, 0.0, sign(xs) * pow(abs(xs), p - 1));
            } else {
                scaled = x * pow(abs(x), p - 2);
            }
            return Grads{scaled * scale};
        },
        {x});
}

// logsumexp: y = m + log Σ exp(x - m), m = max x (0 if infinite);  dx = dy * exp(x - y)
Tensor logsumexp(const Tensor& x0, const Shape& dims, bool keepdim) {
    check_defined(x0, "logsumexp");
    Tensor x = is_floating(x0.dtype()) ? x0 : cast(x0, DType::float32);
    Reduction r = plan(x, dims, "logsumexp");
    Tensor out;
    {
        NoGradGuard ng;
        Tensor m = stable_shift(x, r);
        out = log(sum(exp(x - m), r.dims, true)) + m;
        if (!keepdim) out = out.reshape(r.drop_shape);
    }
    return record_with_output(
        "logsumexp", out, {x},
        [x, r](const Tensor& g, const Tensor& y) {
            return Grads{g.reshape(r.keep_shape) * exp(x - y.reshape(r.keep_shape))};
        },
        {x});
}

// softmax: y = exp(x - m) / Σ exp(x - m);  dx = y * (dy - Σ dy·y)
Tensor softmax(const Tensor& x, int64_t dim) {
    Reduction r = plan_dim(x, dim, "softmax");
    check_floating_op(x, "softmax", "not implemented for integer or bool dtypes");
    Tensor out;
    {
        NoGradGuard ng;
        Tensor e = exp(x - stable_shift(x, r));
        out = e / sum(e, r.dims, true);
    }
    return record_with_output("softmax", out, {x}, [r](const Tensor& g, const Tensor& y) {
        return Grads{y * (g - sum(g * y, r.dims, true))};
    });
}

// log_softmax: y = x - m - log Σ exp(x - m);  dx = dy - exp(y) * Σ dy
Tensor log_softmax(const Tensor& x, int64_t dim) {
    Reduction r = plan_dim(x, dim, "log_softmax");
    check_floating_op(x, "log_softmax", "not implemented for integer or bool dtypes");
    Tensor out;
    {
        NoGradGuard ng;
        Tensor shifted = x - stable_shift(x, r);
        out = shifted - log(sum(exp(shifted), r.dims, true));
    }
    return record_with_output("log_softmax", out, {x}, [r](const Tensor& g, const Tensor& y) {
        return Grads{g - exp(y) * sum(g, r.dims, true)};
    });
}

}  // namespace soma
