// Elementwise binary ops with broadcasting and PyTorch type promotion; comparisons, logic,
// where, masked_fill.
#include <cmath>

#include "ops/op_util.h"

namespace soma {
namespace {

using Grads = std::vector<Tensor>;

// A broadcast view of t (stride 0 on broadcast dims), with no autograd recording.
Tensor broadcast_view(const Tensor& t, const Shape& shape) {
    if (t.shape() == shape) return t;  // nothing to broadcast: no view needed
    int64_t n = static_cast<int64_t>(shape.size()), lead = n - t.dim();
    Shape st(n, 0);
    for (int64_t i = lead; i < n; ++i)
        st[i] = t.shape()[i - lead] == shape[i] ? t.strides()[i - lead] : 0;
    return make_view(t, shape, st, t.storage_offset());
}

Tensor raw_cast(const Tensor& t, DType dt) {
    if (t.dtype() == dt) return t;
    Tensor out = make_tensor(t.shape(), dt, t.device());
    backend(t).copy(t, out);
    return out;
}

// result_type(a, b), with the common case (equal dtypes) answered inline.
DType binary_result_type(const Tensor& a, const Tensor& b) {
    const TensorImpl* ai = a.impl();
    const TensorImpl* bi = b.impl();
    if (ai && bi && ai->dtype == bi->dtype) return ai->dtype;
    return result_type(a, b);  // also raises for undefined tensors
}

// out = a op b over the broadcast shape, computed in `compute`, stored as `out_dtype`.
Tensor binary_kernel(BinaryOp op, const Tensor& a, const Tensor& b, DType compute, DType out_dtype,
                     const char* name, double alpha = 1) {
    const TensorImpl* ai = a.impl();
    const TensorImpl* bi = b.impl();
    if (ai && bi && ai->dtype == compute && bi->dtype == compute && ai->shape == bi->shape &&
        ai->storage->device == bi->storage->device) {
        // Same shape, dtype and device (the common case): no checks left to fail, no broadcast,
        // no cast, no temporaries; the storage knows its backend.
        Tensor out = make_tensor(ai->shape, out_dtype, ai->storage->device);
        ai->storage->backend->binary(op, a, b, out, alpha);
        return out;
    }
    check_defined(a, name);
    check_defined(b, name);
    check_same_device(a, b, name);
    Shape s = broadcast_shapes(a.shape(), b.shape(), name);
    Tensor out = make_tensor(s, out_dtype, a.device());
    backend(a).binary(op, broadcast_view(raw_cast(a, compute), s),
                      broadcast_view(raw_cast(b, compute), s), out, alpha);
    return out;
}

Tensor scalar_operand(const Tensor& a, Scalar s) {
    return wrap_scalar(s, result_type(a, s), a.device());
}

}  // namespace

// add: y = a + αb;  da = dy, db = α dy (each summed back to its shape)
Tensor add(const Tensor& a, const Tensor& b, Scalar alpha) {
    DType rt = binary_result_type(a, b);
    double al = alpha.to_double();
    Tensor out = binary_kernel(BinaryOp::add, a, b, rt, rt, "add", al);
    if (!needs_grad({&a, &b})) return record_refs("add", std::move(out), {}, nullptr);
    const Shape& so = out.shape();
    if (a.shape() == so && b.shape() == so)  // no broadcast: a closure small enough to stay inline
        return record_refs("add", std::move(out), {&a, &b}, [al](const Tensor& g) {
            return Grads{g, al == 1 ? g : g * al};
        });
    Shape sa = a.shape(), sb = b.shape();
    return record_refs("add", std::move(out), {&a, &b}, [sa, sb, al](const Tensor& g) {
        return Grads{sum_to(g, sa), sum_to(al == 1 ? g : g * al, sb)};
    });
}
Tensor add(const Tensor& a, Scalar b) { return add(a, scalar_operand(a, b)); }

// sub: y = a - αb;  da = dy, db = -α dy
Tensor sub(const Tensor& a, const Tensor& b, Scalar alpha) {
    SOMA_CHECK_DTYPE(a.dtype() != DType::boolean && b.dtype() != DType::boolean,
                     "sub: subtraction with bool tensors is not supported (shapes ", a.shape(),
                     " and ", b.shape(), "). Use logical_xor.");
    DType rt = binary_result_type(a, b);
    double al = alpha.to_double();
    Tensor out = binary_kernel(BinaryOp::sub, a, b, rt, rt, "sub", al);
    if (!needs_grad({&a, &b})) return record_refs("sub", std::move(out), {}, nullptr);
    const Shape& so = out.shape();
    if (a.shape() == so && b.shape() == so)  // no broadcast: a closure small enough to stay inline
        return record_refs("sub", std::move(out), {&a, &b}, [al](const Tensor& g) {
            return Grads{g, g * -al};
        });
    Shape sa = a.shape(), sb = b.shape();
    return record_refs("sub", std::move(out), {&a, &b}, [sa, sb, al](const Tensor& g) {
        return Grads{sum_to(g, sa), sum_to(g * -al, sb)};
    });
}
Tensor sub(const Tensor& a, Scalar b) { return sub(a, scalar_operand(a, b)); }

// mul: y = a b;  da = dy b, db = dy a
Tensor mul(const Tensor& a, const Tensor& b) {
    DType rt = result_type(a, b);
    Tensor out = binary_kernel(BinaryOp::mul, a, b, rt, rt, "mul");
    return record("mul", out, {a, b},
                  [a, b](const Tensor& g) {
                      Tensor ga = a.requires_grad() ? sum_to(g * b, a.shape()) : Tensor();
                      Tensor gb = b.requires_grad() ? sum_to(g * a, b.shape()) : Tensor();
                      return Grads{ga, gb};
                  },
                  {a, b});
}
Tensor mul(const Tensor& a, Scalar b) {
    // Scalar fast path: the scalar needs no gradient, only a is saved-free.
    Tensor bs = scalar_operand(a, b);
    DType rt = result_type(a, bs);
    Tensor out = binary_kernel(BinaryOp::mul, a, bs, rt, rt, "mul");
    double v = b.to_double();
    return record("mul", out, {a}, [v](const Tensor& g) { return Grads{g * v}; });
}

// div: y = a / b;  da = dy / b, db = -dy a / b²
Tensor div(const Tensor& a, const Tensor& b) {
    DType rt = result_type(a, b);
    if (!is_floating(rt)) rt = DType::float32;
    Tensor out = binary_kernel(BinaryOp::div, a, b, rt, rt, "div");
    return record("div", out, {a, b},
                  [a, b](const Tensor& g) {
                      Tensor ga = a.requires_grad() ? sum_to(g / b, a.shape()) : Tensor();
                      Tensor gb =
                          b.requires_grad() ? sum_to(-(g * a) / (b * b), b.shape()) : Tensor();
                      return Grads{ga, gb};
                  },
                  {a, b});
}
Tensor div(const Tensor& a, Scalar b) {
    Tensor bs = wrap_scalar(b, is_floating(a.dtype()) ? a.dtype() : DType::float32, a.device());
    return div(a, bs);
}

// maximum: da = dy where a > b, dy/2 where a == b;  db likewise
Tensor maximum(const Tensor& a, const Tensor& b) {
    DType rt = result_type(a, b);
    Tensor out = binary_kernel(BinaryOp::maximum, a, b, rt, rt, "maximum");
    return record("maximum", out, {a, b},
                  [a, b](const Tensor& g) {
                      Tensor z = zeros_like(g);
                      Tensor half = g * 0.5;
                      Tensor ga = where(eq(a, b), half, where(gt(a, b), g, z));
                      Tensor gb = where(eq(a, b), half, where(lt(a, b), g, z));
                      return Grads{sum_to(ga, a.shape()), sum_to(gb, b.shape())};
                  },
                  {a, b});
}

// minimum: da = dy where a < b, dy/2 where a == b;  db likewise
Tensor minimum(const Tensor& a, const Tensor& b) {
    DType rt = result_type(a, b);
    Tensor out = binary_kernel(BinaryOp::minimum, a, b, rt, rt, "minimum");
    return record("minimum", out, {a, b},
                  [a, b](const Tensor& g) {
                      Tensor z = zeros_like(g);
                      Tensor half = g * 0.5;
                      Tensor ga = where(eq(a, b), half, where(lt(a, b), g, z));
                      Tensor gb = where(eq(a, b), half, where(gt(a, b), g, z));
                      return Grads{sum_to(ga, a.shape()), sum_to(gb, b.shape())};
                  },
                  {a, b});
}

Tensor operator-(const Tensor& x) { return neg(x); }
Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, Scalar b) { return add(a, b); }
Tensor operator-(const Tensor& a, Scalar b) { return sub(a, b); }
Tensor operator*(const Tensor& a, Scalar b) { return mul(a, b); }
Tensor operator/(const Tensor& a, Scalar b) { return div(a, b); }
Tensor operator+(Scalar a, const Tensor& b) { return add(b, a); }
Tensor operator-(Scalar a, const Tensor& b) { return sub(scalar_operand(b, a), b); }
Tensor operator*(Scalar a, const Tensor& b) { return mul(b, a); }
Tensor operator/(Scalar a, const Tensor& b) {
    return div(wrap_scalar(a, is_floating(b.dtype()) ? b.dtype() : DType::float32, b.device()), b);
}

// ---- comparisons and logic (no gradient) ----------------------------------------------------

#define SOMA_CMP(name, OP)                                                                  \
    Tensor name(const Tensor& a, const Tensor& b) {                                         \
        return binary_kernel(BinaryOp::OP, a, b, result_type(a, b), DType::boolean, #name); \
    }                                                                                       \
    Tensor name(const Tensor& a, Scalar b) { return name(a, scalar_operand(a, b)); }
SOMA_CMP(eq, eq)
SOMA_CMP(ne, ne)
SOMA_CMP(lt, lt)
SOMA_CMP(le, le)
SOMA_CMP(gt, gt)
SOMA_CMP(ge, ge)
#undef SOMA_CMP

Tensor operator==(const Tensor& a, const Tensor& b) { return eq(a, b); }
Tensor operator!=(const Tensor& a, const Tensor& b) { return ne(a, b); }
Tensor operator<(const Tensor& a, const Tensor& b) { return lt(a, b); }
Tensor operator<=(const Tensor& a, const Tensor& b) { return le(a, b); }
Tensor operator>(const Tensor& a, const Tensor& b) { return gt(a, b); }
Tensor operator>=(const Tensor& a, const Tensor& b) { return ge(a, b); }
Tensor operator==(const Tensor& a, Scalar b) { return eq(a, b); }
Tensor operator!=(const Tensor& a, Scalar b) { return ne(a, b); }
Tensor operator<(const Tensor& a, Scalar b) { return lt(a, b); }
Tensor operator<=(const Tensor& a, Scalar b) { return le(a, b); }
Tensor operator>(const Tensor& a, Scalar b) { return gt(a, b); }
Tensor operator>=(const Tensor& a, Scalar b) { return ge(a, b); }

Tensor logical_and(const Tensor& a, const Tensor& b) {
    return binary_kernel(BinaryOp::logical_and, a, b, result_type(a, b), DType::boolean,
                         "logical_and");
}
Tensor logical_or(const Tensor& a, const Tensor& b) {
    return binary_kernel(BinaryOp::logical_or, a, b, result_type(a, b), DType::boolean,
                         "logical_or");
}
Tensor logical_xor(const Tensor& a, const Tensor& b) {
    return binary_kernel(BinaryOp::logical_xor, a, b, result_type(a, b), DType::boolean,
                         "logical_xor");
}

// where: y = c ? a : b;  da = c ? dy : 0, db = c ? 0 : dy
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
    check_defined(cond, "where");
    check_defined(a, "where");
    check_defined(b, "where");
    SOMA_CHECK_DTYPE(cond.dtype() == DType::boolean, "where: condition must be a bool tensor, got ",
                     cond.dtype(), " with shape ", cond.shape(), ". Compare first, e.g. x > 0.");
    Shape s =
        broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
    DType rt = result_type(a, b);
    Tensor out = make_tensor(s, rt, a.device());
    backend(a).where(broadcast_view(cond, s), broadcast_view(raw_cast(a, rt), s),
                     broadcast_view(raw_cast(b, rt), s), out);
    Shape sa = a.shape(), sb = b.shape();
    return record("where", out, {a, b}, [cond, sa, sb](const Tensor& g) {
        Tensor z = zeros_like(g);
        return Grads{sum_to(where(cond, g, z), sa), sum_to(where(cond, z, g), sb)};
    });
}
Tensor where(const Tensor& cond, const Tensor& a, Scalar b) {
    return where(cond, a, scalar_operand(a, b));
}
Tensor where(const Tensor& cond, Scalar a, const Tensor& b) {
    return where(cond, scalar_operand(b, a), b);
}

// masked_fill: y = mask ? v : x;  dx = mask ? 0 : dy
Tensor masked_fill(const Tensor& x, const Tensor& mask, Scalar value) {
    check_defined(x, "masked_fill");
    check_defined(mask, "masked_fill");
    SOMA_CHECK_DTYPE(mask.dtype() == DType::boolean,
                     "masked_fill: mask must be a bool tensor, got ", mask.dtype());
    Shape s = broadcast_shapes(x.shape(), mask.shape(), "masked_fill");
    SOMA_CHECK_SHAPE(s == x.shape(), "masked_fill: mask of shape ", mask.shape(),
                     " can't be broadcast to the input shape ", x.shape());
    Tensor out = make_tensor(x.shape(), x.dtype(), x.device());
    Tensor v = wrap_scalar(value, x.dtype(), x.device());
    backend(x).where(broadcast_view(mask, s), broadcast_view(v, s), x, out);
    return record("masked_fill", out, {x},
                  [mask](const Tensor& g) { return Grads{where(mask, zeros_like(g), g)}; });
}

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol) {
    if (a.shape() != b.shape()) return false;
    NoGradGuard ng;
    auto va = a.to_vector<double>(), vb = b.to_vector<double>();
    for (size_t i = 0; i < va.size(); ++i) {
        if (std::isnan(va[i]) || std::isnan(vb[i])) return false;
        if (va[i] == vb[i]) continue;
        if (std::fabs(va[i] - vb[i]) > atol + rtol * std::fabs(vb[i])) return false;
    }
    return true;
}

bool equal(const Tensor& a, const Tensor& b) {
    if (a.shape() != b.shape()) return false;
    NoGradGuard ng;
    return a.to_vector<double>() == b.to_vector<double>();
}

}  // namespace soma
