// Linear algebra: matmul (torch.matmul semantics), mm, bmm, outer.
//
// Every product ends in Backend::gemm. Each operand's last two dims go to the GEMM as they lie
// in memory: row-major as is, column-major (a transposed view, stride[-2] == 1) through the
// trans flag with the matching leading dimension. Only an operand that is neither is copied.
// Broadcast batch dims are flattened into one strided batch when their strides allow a single
// batch stride, and a batch that only the left operand has is folded into the GEMM's rows
// ([B, n, k] x [k, m] is one [B*n, k] x [k, m] call, as nn.Linear needs); otherwise the batch
// is looped.
#include <algorithm>

#include "ops/op_util.h"

namespace soma {
namespace {

using Grads = std::vector<Tensor>;

// How one operand's [rows, cols] matrices lie in memory, as GEMM sees them.
struct MatLayout {
    bool ok = false;     // false: needs a copy
    bool trans = false;  // stored column-major: pass op = transpose
    int64_t ld = 0;      // leading dimension in elements
};

MatLayout layout_of(int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
    // Size-1 dims may carry any stride; pick a leading dimension BLAS accepts.
    if ((cols == 1 || cs == 1) && (rows == 1 || rs >= std::max<int64_t>(cols, 1)))
        return {true, false, rows == 1 ? std::max<int64_t>(cols, 1) : rs};
    if ((rows == 1 || rs == 1) && (cols == 1 || cs >= std::max<int64_t>(rows, 1)))
        return {true, true, cols == 1 ? std::max<int64_t>(rows, 1) : cs};
    return {};
}

// A contiguous copy, outside autograd (only the kernel reads it).
Tensor raw_contiguous(const Tensor& t) {
    Tensor c = make_tensor(t.shape(), t.dtype(), t.device());
    backend(t).copy(t, c);
    return c;
}

// The strides of t's batch dims (all but the last two) broadcast to `batch`: 0 where t is
// broadcast or lacks the dim.
Shape batch_strides(const Tensor& t, const Shape& batch) {
    int64_t nb = static_cast<int64_t>(batch.size()), tb = t.dim() - 2, lead = nb - tb;
    Shape st(nb, 0);
    for (int64_t i = lead; i < nb; ++i)
        st[i] = t.shape()[i - lead] == batch[i] && batch[i] != 1 ? t.strides()[i - lead] : 0;
    return st;
}

// One stride that walks every batch element in row-major order, if there is one.
bool uniform_batch_stride(const Shape& batch, const Shape& st, int64_t& out) {
    int64_t expect = -1;
    out = 0;
    for (int64_t i = static_cast<int64_t>(batch.size()) - 1; i >= 0; --i) {
        if (batch[i] == 1) continue;
        if (expect < 0)
            out = st[i];
        else if (st[i] != expect)
            return false;
        expect = st[i] * batch[i];
    }
    return true;
}

// out[*batch, n, m] = a[*, n, k] @ b[*, k, m]: both at least 2-D, same dtype, k matching and
// batch dims broadcastable (checked by the caller). No autograd.
Tensor batched_gemm(Tensor a, Tensor b, const char* op) {
    int64_t n = a.size(-2), k = a.size(-1), m = b.size(-1);
    Shape ba(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
    Shape batch = broadcast_shapes(ba, bb, op);
    Shape out_shape = batch;
    out_shape.push_back(n);
    out_shape.push_back(m);
    Tensor out = make_tensor(out_shape, a.dtype(), a.device());
    if (out.numel() == 0) return out;
    if (k == 0) {
        backend(out).fill(out, 0);  // an empty sum
        return out;
    }

    MatLayout la = layout_of(n, k, a.stride(-2), a.stride(-1));
    if (!la.ok) {
        a = raw_contiguous(a);
        la = layout_of(n, k, a.stride(-2), a.stride(-1));
    }
    MatLayout lb = layout_of(k, m, b.stride(-2), b.stride(-1));
    if (!lb.ok) {
        b = raw_contiguous(b);
        lb = layout_of(k, m, b.stride(-2), b.stride(-1));
    }

    Backend::Gemm g;
    g.trans_a = la.trans;
    g.trans_b = lb.trans;
    g.m = n;
    g.n = m;
    g.k = k;
    g.lda = la.ld;
    g.ldb = lb.ld;
    g.ldc = std::max<int64_t>(m, 1);
    g.dtype = a.dtype();
    g.c = out.raw_data();
    g.stride_c = n * m;
    int64_t nbatch = shape_numel(batch);
    Shape sa = batch_strides(a, batch), sb = batch_strides(b, batch);
    int64_t ua = 0, ub = 0;
    bool uniform = uniform_batch_stride(batch, sa, ua) && uniform_batch_stride(batch, sb, ub);
    if (uniform) {
        g.a = a.raw_data();
        g.b = b.raw_data();
        if (nbatch > 1 && ub == 0 && !la.trans && ua == n * la.ld) {
            // b is shared by every batch and a's batches continue its rows: one taller GEMM.
            g.m = nbatch * n;
        } else {
            g.batch = nbatch;
            g.stride_a = ua;
            g.stride_b = ub;
        }
        backend(out).gemm(g);
        return out;
    }
    // Irregular batch strides: one GEMM per batch element.
    size_t esz = dtype_size(a.dtype());
    std::vector<int64_t> idx(batch.size(), 0);
    for (int64_t i = 0; i < nbatch; ++i) {
        int64_t oa = 0, ob = 0;
        for (size_t d = 0; d < batch.size(); ++d) {
            oa += idx[d] * sa[d];
            ob += idx[d] * sb[d];
        }
        g.a = static_cast<const char*>(a.raw_data()) + oa * static_cast<int64_t>(esz);
        g.b = static_cast<const char*>(b.raw_data()) + ob * static_cast<int64_t>(esz);
        g.c = static_cast<char*>(out.raw_data()) + i * n * m * static_cast<int64_t>(esz);
        backend(out).gemm(g);
        for (int64_t d = static_cast<int64_t>(batch.size()) - 1; d >= 0; --d) {
            if (++idx[d] < batch[d]) break;
            idx[d] = 0;
        }
    }
    return out;
}

void check_matmul_dtypes(const Tensor& a, const Tensor& b, const char* op) {
    check_defined(a, op);
    check_defined(b, op);
    check_same_device(a, b, op);
    SOMA_CHECK_DTYPE(a.dtype() != DType::boolean && b.dtype() != DType::boolean, op,
                     ": bool tensors are not supported: got ", a.dtype(), " ", a.shape(), " and ",
                     b.dtype(), " ", b.shape(),
                     ", expected a numeric dtype. Convert with "
                     ".to(soma::DType::float32).");
}

[[noreturn]] void throw_mismatch(const Tensor& a, const Tensor& b, int64_t ka, int64_t kb,
                                 const char* op) {
    throw ShapeError(detail::concat(op, ": shapes ", a.shape(), " and ", b.shape(),
                                    " cannot be multiplied (", ka, " != ", kb, ")"));
}

// A 2-D transposed view: column-major and not also row-major.
bool is_col_major(const Tensor& t) {
    return t.dim() == 2 && t.size(0) > 1 && t.size(1) > 1 && t.stride(0) == 1 && t.stride(1) != 1;
}

// The product on already-checked, same-dtype operands, recorded under `name`.
// matmul: y = a @ b;  da = dy @ bᵀ, db = aᵀ @ dy  (summed over broadcast batch dims; 1-D operands
// act as [1, k] / [k, 1] and the added dim is removed)
Tensor product(const Tensor& a, const Tensor& b, const char* name) {
    Tensor a2 =
        a.dim() == 1 ? make_view(a, {1, a.size(0)}, {0, a.stride(0)}, a.storage_offset()) : a;
    Tensor b2 =
        b.dim() == 1 ? make_view(b, {b.size(0), 1}, {b.stride(0), 0}, b.storage_offset()) : b;
    Tensor out2 = batched_gemm(a2, b2, name);
    Shape full_shape = out2.shape();
    Tensor out = out2;
    if (a.dim() == 1 || b.dim() == 1) {
        Shape s(full_shape.begin(), full_shape.end() - 2);
        if (a.dim() != 1) s.push_back(full_shape[full_shape.size() - 2]);
        if (b.dim() != 1) s.push_back(full_shape.back());
        out = make_view(out2, s, contiguous_strides(s), 0);
    }
    return record(name, out, {a, b},
                  [a, b, full_shape](const Tensor& g) {
                      Tensor g2 = g.reshape(full_shape);
                      Tensor ga, gb;
                      if (a.requires_grad()) {
                          Tensor bm = b.dim() == 1 ? b.unsqueeze(1) : b;
                          if (is_col_major(a) && b.dim() <= 2) {
                              // (b @ dyᵀ)ᵀ: the gradient comes out laid out like a (a transposed
                              // view's backward then yields a contiguous gradient for the
                              // underlying tensor).
                              ga = matmul(bm, g2.transpose(0, 1)).transpose(0, 1);
                          } else {
                              Shape as = a.dim() == 1 ? Shape{1, a.size(0)} : a.shape();
                              ga = sum_to(matmul(g2, bm.transpose(-1, -2)), as).reshape(a.shape());
                          }
                      }
                      if (b.requires_grad()) {
                          Tensor am = a.dim() == 1 ? a.unsqueeze(0) : a;
                          if (b.dim() <= 2) {
                              // b is shared by every batch: one GEMM with the batch folded into k.
                              Tensor af = am.dim() > 2 ? am.reshape({-1, am.size(-1)}) : am;
                              Tensor gf = g2.dim() > 2 ? g2.reshape({-1, g2.size(-1)}) : g2;
                              gb = is_col_major(b) ? matmul(gf.transpose(0, 1), af).transpose(0, 1)
                                                   : matmul(af.transpose(0, 1), gf);
                          } else {
                              gb = sum_to(matmul(am.transpose(-1, -2), g2), b.shape());
                          }
                          gb = gb.reshape(b.shape());
                      }
                      return Grads{ga, gb};
                  },
                  {a, b});
}

}  // namespace

Tensor matmul(const Tensor& a0, const Tensor& b0) {
    check_matmul_dtypes(a0, b0, "matmul");
    SOMA_CHECK_SHAPE(a0.dim() >= 1 && b0.dim() >= 1,
                     "matmul: both arguments need at least 1 dim: got shapes ", a0.shape(), " and ",
                     b0.shape(), ". Multiply 0-dim tensors with mul.");
    int64_t ka = a0.size(-1), kb = b0.dim() == 1 ? b0.size(0) : b0.size(-2);
    if (ka != kb) throw_mismatch(a0, b0, ka, kb, "matmul");
    if (a0.dim() > 2 || b0.dim() > 2) {
        Shape ba(a0.shape().begin(), a0.shape().end() - std::min<int64_t>(a0.dim(), 2));
        Shape bb(b0.shape().begin(), b0.shape().end() - std::min<int64_t>(b0.dim(), 2));
        size_t n = std::max(ba.size(), bb.size());
        for (size_t i = 1; i <= n; ++i) {
            int64_t da = i <= ba.size() ? ba[ba.size() - i] : 1;
            int64_t db = i <= bb.size() ? bb[bb.size() - i] : 1;
            SOMA_CHECK_SHAPE(da == db || da == 1 || db == 1, "matmul: shapes ", a0.shape(), " and ",
                             b0.shape(), " have batch dims ", ba, " and ", bb,
                             " that are not broadcastable (", da, " vs ", db,
                             "). Batch sizes must match or be 1.");
        }
    }
    DType rt = result_type(a0, b0);
    return product(cast(a0, rt), cast(b0, rt), "matmul");
}

Tensor mm(const Tensor& a, const Tensor& b) {
    check_matmul_dtypes(a, b, "mm");
    SOMA_CHECK_SHAPE(a.dim() == 2 && b.dim() == 2, "mm: expected 2-D tensors: got shapes ",
                     a.shape(), " and ", b.shape(), ". Use matmul for 1-D or batched operands.");
    if (a.size(1) != b.size(0)) throw_mismatch(a, b, a.size(1), b.size(0), "mm");
    DType rt = result_type(a, b);
    return product(cast(a, rt), cast(b, rt), "mm");
}

Tensor bmm(const Tensor& a, const Tensor& b) {
    check_matmul_dtypes(a, b, "bmm");
    SOMA_CHECK_SHAPE(a.dim() == 3 && b.dim() == 3, "bmm: expected 3-D tensors: got shapes ",
                     a.shape(), " and ", b.shape(), ". Use matmul to broadcast batch dims.");
    SOMA_CHECK_SHAPE(a.size(0) == b.size(0), "bmm: batch sizes differ: got shapes ", a.shape(),
                     " and ", b.shape(), " (", a.size(0), " != ", b.size(0),
                     "), expected equal batch sizes");
    if (a.size(2) != b.size(1)) throw_mismatch(a, b, a.size(2), b.size(1), "bmm");
    DType rt = result_type(a, b);
    return product(cast(a, rt), cast(b, rt), "bmm");
}

// outer: y[i, j] = a[i] b[j];  da = dy @ b, db = dyᵀ @ a  (through mul's broadcast backward)
Tensor outer(const Tensor& a, const Tensor& b) {
    check_defined(a, "outer");
    check_defined(b, "outer");
    SOMA_CHECK_SHAPE(a.dim() == 1 && b.dim() == 1, "outer: expected 1-D tensors: got shapes ",
                     a.shape(), " and ", b.shape());
    return mul(a.unsqueeze(1), b.unsqueeze(0));
}

}  // namespace soma
