// linear, conv1d, conv2d, conv_transpose2d.
//
// Convolution is three differentiable ops on the fast kernels of conv_kernels.h, each the
// backward of the others, so double backward (gradient penalties) needs no extra code:
//     conv       y  = w ⋆ x + b            dx = convᵀ(dy, w),  dw = wgrad(x, dy),  db = Σ dy
//     convᵀ      y  = convᵀ(x, w) + b      dx = conv(dy, w),   dw = wgrad(dy, x),  db = Σ dy
//     wgrad      dw = Σ_n dy ⋆ x           dx = convᵀ(dy, ddw), d(dy) = conv(x, ddw)
// (convᵀ is conv's input gradient, i.e. conv_transpose2d; wgrad is its weight gradient.)
// conv1d is conv2d on [N, C, 1, L]; unbatched inputs get a leading 1.
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <string_view>

#include "autograd/node.h"
#include "nn/conv_kernels.h"
#include "nn/conv_winograd.h"
#include "nn/embedding_fold.h"
#include "ops/op_util.h"
#include "soma/nn/functional.h"

namespace soma {
// Differentiable out-of-place index_add (src/ops/shape.cpp).
Tensor index_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& src);
}  // namespace soma

namespace soma::nn::functional {
namespace {

using Grads = std::vector<Tensor>;
using conv::contig;
using conv::ConvGeom;

template <class T>
const T* ptr_or_null(const Tensor& t) {
    return t.defined() ? t.data_ptr<T>() : nullptr;
}

bool wants_grad(const Tensor& t) { return t.defined() && t.requires_grad(); }

Tensor conv_op(const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeom& g);
Tensor conv_transpose_op(const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeom& g);
Tensor conv_weight_op(const Tensor& x, const Tensor& dy, const ConvGeom& g);

// Sum over every dim but 1: the bias gradient of a [N, C, ...] output.
// channel_sum: y[c] = Σ_{n,i} x[n, c, i];  dx = dy broadcast over n and i
Tensor channel_sum_op(const Tensor& t) {
    Tensor tc = contig(t);
    const int64_t n = t.size(0), c = t.size(1), inner = n * c != 0 ? t.numel() / (n * c) : 0;
    Tensor out = make_tensor({c}, t.dtype(), t.device());
    dispatch_floating(t.dtype(), [&](auto z) {
        using T = decltype(z);
        conv::channel_sum<T>(n, c, inner, tc.data_ptr<T>(), out.data_ptr<T>());
    });
    Shape in_shape = t.shape(), bshape(t.dim(), 1);
    bshape[1] = c;
    return record("channel_sum", out, {t}, [in_shape, bshape](const Tensor& gy) {
        return Grads{gy.reshape(bshape).expand(in_shape)};
    });
}

// conv2d: y = w ⋆ x + b;  dx = convᵀ(dy, w);  dw = Σ_n dy ⋆ x;  db = Σ_{n,h,w} dy
Tensor conv_op(const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeom& g) {
    Tensor xc = contig(x), wc = contig(w), bc = b.defined() ? contig(b) : Tensor();
    Tensor y = make_tensor({g.n, g.o, g.ho, g.wo}, x.dtype(), x.device());
    dispatch_floating(x.dtype(), [&](auto z) {
        using T = decltype(z);
        conv::conv2d_forward<T>(backend(x), g, xc.data_ptr<T>(), wc.data_ptr<T>(),
                                ptr_or_null<T>(bc), y.data_ptr<T>());
    });
    const bool nx = wants_grad(x), nw = wants_grad(w), nb = wants_grad(b);
    return record("conv2d", y, {x, w, b},
                  [x, w, g, nx, nw, nb](const Tensor& dy) {
                      conv::TransformReuse reuse;  // both passes read dy, unchanged here
                      return Grads{nx ? conv_transpose_op(dy, w, {}, g) : Tensor(),
                                   nw ? conv_weight_op(x, dy, g) : Tensor(),
                                   nb ? channel_sum_op(dy) : Tensor()};
                  },
                  {x, w});
}

// conv_transpose2d: y = convᵀ(x, w) + b;  dx = conv(dy, w);  dw = Σ_n x ⋆ dy;  db = Σ dy
// (x plays the conv's output [N, O, Ho, Wo]; y its input [N, C, H, W].)
Tensor conv_transpose_op(const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeom& g) {
    Tensor xc = contig(x), wc = contig(w), bc = b.defined() ? contig(b) : Tensor();
    Tensor y = make_tensor({g.n, g.c, g.h, g.w}, x.dtype(), x.device());
    dispatch_floating(x.dtype(), [&](auto z) {
        using T = decltype(z);
        conv::conv2d_input_grad<T>(backend(x), g, xc.data_ptr<T>(), wc.data_ptr<T>(),
                                   ptr_or_null<T>(bc), y.data_ptr<T>());
    });
    const bool nx = wants_grad(x), nw = wants_grad(w), nb = wants_grad(b);
    return record("conv_transpose2d", y, {x, w, b},
                  [x, w, g, nx, nw, nb](const Tensor& dy) {
                      conv::TransformReuse reuse;  // both passes read dy, unchanged here
                      return Grads{nx ? conv_op(dy, w, {}, g) : Tensor(),
                                   nw ? conv_weight_op(dy, x, g) : Tensor(),
                                   nb ? channel_sum_op(dy) : Tensor()};
                  },
                  {x, w});
}

// conv2d_weight_grad: dw = Σ_n dy[n] ⋆ x[n];  dx = convᵀ(dy, d(dw));  d(dy) = conv(x, d(dw))
Tensor conv_weight_op(const Tensor& x, const Tensor& dy, const ConvGeom& g) {
    Tensor xc = contig(x), dyc = contig(dy);
    Tensor dw = make_tensor({g.o, g.c / g.groups, g.kh, g.kw}, x.dtype(), x.device());
    dispatch_floating(x.dtype(), [&](auto z) {
        using T = decltype(z);
        conv::conv2d_weight_grad<T>(backend(x), g, xc.data_ptr<T>(), dyc.data_ptr<T>(),
                                    dw.data_ptr<T>());
    });
    const bool nx = wants_grad(x), ndy = wants_grad(dy);
    return record("conv2d_weight_grad", dw, {x, dy},
                  [x, dy, g, nx, ndy](const Tensor& ddw) {
                      return Grads{nx ? conv_transpose_op(dy, ddw, {}, g) : Tensor(),
                                   ndy ? conv_op(x, ddw, {}, g) : Tensor()};
                  },
                  {x, dy});
}

// ---- argument checks -------------------------------------------------------------------------

Shape vec(const int64_t* v, int n) { return Shape(v, v + n); }

struct ConvArgs {
    const char* op;
    int nsp;  // spatial dims: 1 or 2
    std::array<int64_t, 2> stride, padding, dilation, output_padding;
    int64_t groups;
    bool transposed;
};

// Checks x, w, b for a (transposed) convolution with `a.nsp` spatial dims and returns the
// geometry with 1-D convolutions as 2-D ones of height 1. Shapes in messages are the caller's.
ConvGeom check_conv(const Tensor& x, const Tensor& w, const Tensor& b, const ConvArgs& a) {
    const char* op = a.op;
    const int ns = a.nsp;
    check_defined(x, op);
    check_defined(w, op);
    const char* layout = ns == 2 ? "[N, C, H, W]" : "[N, C, L]";
    const char* wlayout = a.transposed ? (ns == 2 ? "[in_channels, out_channels / groups, kh, kw]"
                                                  : "[in_channels, out_channels / groups, k]")
                                       : (ns == 2 ? "[out_channels, in_channels / groups, kh, kw]"
                                                  : "[out_channels, in_channels / groups, k]");
    SOMA_CHECK_SHAPE(x.dim() == ns + 1 || x.dim() == ns + 2, op, ": expected a ", ns + 1,
                     "-D (unbatched) or ", ns + 2, "-D (batched) input ", layout, ": got input ",
                     x.shape(), " (", x.dim(), "-D).");
    SOMA_CHECK_SHAPE(w.dim() == ns + 2, op, ": expected a ", ns + 2, "-D weight ", wlayout,
                     ": got weight ", w.shape(), ".");
    SOMA_CHECK_DTYPE(is_floating(x.dtype()), op, ": expected a floating point input: got ",
                     x.dtype(), " (input ", x.shape(),
                     "). Convert with .to(soma::DType::float32).");
    SOMA_CHECK_DTYPE(w.dtype() == x.dtype(), op,
                     ": input and weight must have the same dtype: got input ", x.dtype(),
                     " and weight ", w.dtype(), ". Convert one with .to().");
    check_same_device(x, w, op);
    SOMA_CHECK_VALUE(a.groups > 0, op, ": groups must be positive: got ", a.groups, ".");
    const int64_t* st = a.stride.data() + (2 - ns);
    const int64_t* pd = a.padding.data() + (2 - ns);
    const int64_t* dl = a.dilation.data() + (2 - ns);
    const int64_t* op_pad = a.output_padding.data() + (2 - ns);
    for (int i = 0; i < ns; ++i) {
        SOMA_CHECK_VALUE(st[i] > 0, op, ": stride must be positive: got ", vec(st, ns), ".");
        SOMA_CHECK_VALUE(dl[i] > 0, op, ": dilation must be positive: got ", vec(dl, ns), ".");
        SOMA_CHECK_VALUE(pd[i] >= 0, op, ": padding must be non-negative: got ", vec(pd, ns), ".");
    }

    const bool batched = x.dim() == ns + 2;
    const int64_t n = batched ? x.size(0) : 1, cin = x.size(batched ? 1 : 0);
    const int64_t* ksz = w.shape().data() + 2;
    for (int i = 0; i < ns; ++i)
        SOMA_CHECK_SHAPE(ksz[i] > 0, op, ": kernel size must be positive: got weight ", w.shape(),
                         ".");
    // Channels: conv w [O, C/g, k..]; transposed w [C_in, C_out/g, k..].
    const int64_t w_in = a.transposed ? w.size(0) : w.size(1) * a.groups;
    const int64_t w_out = a.transposed ? w.size(1) * a.groups : w.size(0);
    SOMA_CHECK_SHAPE(w.size(0) % a.groups == 0, op, ": groups ", a.groups, " does not divide the ",
                     w.size(0), (a.transposed ? " input" : " output"), " channels of weight ",
                     w.shape(), ". Channel counts must be multiples of groups.");
    SOMA_CHECK_SHAPE(cin % a.groups == 0, op, ": groups ", a.groups,
                     " does not divide the input's ", cin, " channels (input ", x.shape(),
                     ", weight ", w.shape(), "). Channel counts must be multiples of groups.");
    SOMA_CHECK_SHAPE(
        cin == w_in, op, ": input has ", cin, " channels, expected ", w_in, " (weight ", w.shape(),
        ", input ", x.shape(), "). Hint: the weight is ", wlayout, " with groups = ", a.groups,
        "; check the layer's in_channels and that the input is laid out ", layout, ".");
    if (b.defined()) {
        SOMA_CHECK_SHAPE(b.dim() == 1 && b.size(0) == w_out, op, ": bias has shape ", b.shape(),
                         ", expected [", w_out, "] (one value per output channel; weight ",
                         w.shape(), ").");
        SOMA_CHECK_DTYPE(b.dtype() == x.dtype(), op,
                         ": bias must have the input's dtype: got bias ", b.dtype(), " and input ",
                         x.dtype(), ".");
        check_same_device(x, b, op);
    }

    ConvGeom g;
    g.n = n;
    g.groups = a.groups;
    Shape in_sp(x.shape().end() - ns, x.shape().end()), out_sp(ns);
    if (!a.transposed) {
        Shape eff(ns), padded(ns);
        for (int i = 0; i < ns; ++i) {
            eff[i] = dl[i] * (ksz[i] - 1) + 1;
            padded[i] = in_sp[i] + 2 * pd[i];
        }
        for (int i = 0; i < ns; ++i)
            SOMA_CHECK_SHAPE(padded[i] >= eff[i], op, ": kernel ", vec(ksz, ns), " (dilated ", eff,
                             ") is larger than the padded input ", padded, " (input ", x.shape(),
                             ", weight ", w.shape(), ", padding ", vec(pd, ns),
                             "). Use a smaller kernel or dilation, or more padding.");
        for (int i = 0; i < ns; ++i) out_sp[i] = (padded[i] - eff[i]) / st[i] + 1;
    } else {
        for (int i = 0; i < ns; ++i) {
            SOMA_CHECK_VALUE(op_pad[i] >= 0 && (op_pad[i] < st[i] || op_pad[i] < dl[i]), op,
                             ": output_padding must be smaller than stride or dilation: got "
                             "output_padding ",
                             vec(op_pad, ns), ", stride ", vec(st, ns), ", dilation ", vec(dl, ns),
                             ".");
            out_sp[i] = (in_sp[i] - 1) * st[i] - 2 * pd[i] + dl[i] * (ksz[i] - 1) + op_pad[i] + 1;
        }
        for (int i = 0; i < ns; ++i)
            SOMA_CHECK_SHAPE(out_sp[i] > 0, op, ": output size ", out_sp,
                             " is not positive (input ", x.shape(), ", weight ", w.shape(),
                             ", stride ", vec(st, ns), ", padding ", vec(pd, ns),
                             "). Use less padding.");
    }
    // Conv side: input [N, C, H, W] -> output [N, O, Ho, Wo].
    const Shape& conv_in = a.transposed ? out_sp : in_sp;
    const Shape& conv_out = a.transposed ? in_sp : out_sp;
    g.c = a.transposed ? w_out : cin;
    g.o = a.transposed ? cin : w_out;
    g.h = ns == 2 ? conv_in[0] : 1;
    g.w = conv_in[ns - 1];
    g.ho = ns == 2 ? conv_out[0] : 1;
    g.wo = conv_out[ns - 1];
    g.kh = ns == 2 ? ksz[0] : 1;
    g.kw = ksz[ns - 1];
    g.sh = ns == 2 ? st[0] : 1;
    g.sw = st[ns - 1];
    g.ph = ns == 2 ? pd[0] : 0;
    g.pw = pd[ns - 1];
    g.dh = ns == 2 ? dl[0] : 1;
    g.dw = dl[ns - 1];
    return g;
}

// A 2-D gemm operand: data with leading dimension, stored row-major (trans = false) or
// column-major (trans = true, i.e. the transpose of a row-major matrix).
struct Operand {
    const void* data = nullptr;
    int64_t ld = 1;
    bool trans = false;
};
bool as_operand(const Tensor& t, Operand& op) {
    const int64_t r = t.size(0), c = t.size(1), s0 = t.stride(0), s1 = t.stride(1);
    if ((c <= 1 || s1 == 1) && (r <= 1 || s0 >= std::max<int64_t>(c, 1))) {
        op = {t.raw_data(), r <= 1 ? std::max<int64_t>(c, 1) : s0, false};
        return true;
    }
    if ((r <= 1 || s0 == 1) && (c <= 1 || s1 >= std::max<int64_t>(r, 1))) {
        op = {t.raw_data(), c <= 1 ? std::max<int64_t>(r, 1) : s1, true};
        return true;
    }
    return false;
}

std::atomic<bool>& fold_flag() {
    static std::atomic<bool> on{[] {
        const char* e = std::getenv("SOMA_EMBEDDING_FOLD");
        return !(e && std::string_view(e) == "0");
    }()};
    return on;
}
std::atomic<uint64_t> g_fold_calls{0};

// The embedding fold: linear() of rows that `embedding` gathered, x = table[index]:
//   y = x Wᵀ + b = (table Wᵀ + b)[index]       one [V, in] x [in, out] GEMM, then a row gather
//   S = index_add(zeros [V, out], index, dy)    the gradient rows summed per table row
//   dtable = S W (row padding_idx zero);  dW = Sᵀ table;  db = Σ_rows S
// With V table rows and m looked-up rows this divides the forward GEMM and both backward GEMMs
// (dx W, dyᵀ x) by m / V: a character LSTM's input projection (96 symbols, 2,048 rows a batch)
// becomes a 96-row GEMM. The values are those of the direct path up to summation order.
// Taken only when m >= 4 V; when x holds what the embedding wrote (its storage, the table and
// the index at the versions of the gather); when x is whole rows of it (last stride 1, every
// other stride and the offset multiples of the row length); and when x's gradient would flow
// to the table alone: x is the embedding's output itself with no hook and no retain_grad, or x
// needs no gradient (then the table gets none from here either). Else, or with
// SOMA_EMBEDDING_FOLD=0, the direct path. Returns an undefined tensor when not taken. Writes
// through data_ptr() that do not bump the version defeat the checks, as they defeat autograd's
// saved-tensor checks.
Tensor linear_gathered(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t m) {
    const Storage& st = *x.impl()->storage;
    const GatherSource* gs = st.gathered.get();
    if (!gs || !fold_flag() || st.version != gs->rows_version) return {};
    const Tensor& table = gs->table;
    const Tensor& index = gs->index;
    if (table.version() != gs->table_version || index.version() != gs->index_version ||
        table.dtype() != x.dtype() || index.dim() != 1 || index.stride(0) != 1)
        return {};
    const int64_t V = table.size(0), K = table.size(1), out = weight.size(0);
    if (K == 0 || x.size(-1) != K || m < 4 * V || x.stride(-1) != 1 || x.storage_offset() % K != 0)
        return {};
    // Row r of x is row (offset + Σ_d i_d stride_d) / K of the gather.
    Shape rows_shape(x.shape().begin(), x.shape().end() - 1), rows_strides;
    for (int64_t d = 0; d + 1 < x.dim(); ++d) {
        if (x.size(d) > 1 && x.stride(d) % K != 0) return {};
        rows_strides.push_back(x.stride(d) / K);
    }
    const bool grad_path = is_grad_enabled() && x.requires_grad();
    if (grad_path) {
        const std::shared_ptr<Node>& fn = x.impl()->grad_fn;
        if (!fn || fn != gs->node.lock() || x.impl()->retains_grad || !fn->pre_hooks.empty())
            return {};
    }
    Tensor idx =
        make_view(index, rows_shape, rows_strides, index.storage_offset() + x.storage_offset() / K);
    idx = idx.is_contiguous() ? idx.reshape({m}) : idx.contiguous().reshape({m});
    // The table's rows feed the gradient only along x's own path.
    const Tensor tin = grad_path ? table : table.detach();
    Tensor p;
    {
        NoGradGuard ng;
        p = linear(table.detach(), weight.detach(), bias.defined() ? bias.detach() : Tensor());
    }
    Tensor y2 = make_tensor({m, out}, x.dtype(), x.device());
    backend(p).index_select(p, 0, idx, y2);
    ++g_fold_calls;
    Shape os = x.shape();
    os.back() = out;
    Tensor y = make_view(y2, os, contiguous_strides(os), 0);
    const bool nt = wants_grad(tin), nw = wants_grad(weight), nb = wants_grad(bias);
    const int64_t pad = gs->padding_idx;
    return record(
        "linear", y, {tin, weight, bias},
        [tin, weight, idx, V, m, out, pad, nt, nw, nb](const Tensor& dy) {
            Tensor s = index_add(zeros({V, out}, {.dtype = dy.dtype(), .device = dy.device()}), 0,
                                 idx, dy.reshape({m, out}));
            Tensor dt;
            if (nt) {
                Tensor sp = pad >= 0 ? masked_fill(s, eq(arange(V), pad).unsqueeze(1), 0) : s;
                dt = linear(sp, weight.t());
            }
            return Grads{dt, nw ? linear(s.t(), tin.t()) : Tensor(), nb ? s.sum({0}) : Tensor()};
        },
        {tin, weight, idx});
}

}  // namespace

// linear: y = x Wᵀ + b;  dx = dy W;  dW = dyᵀ x;  db = Σ_rows dy
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
    check_defined(x, "linear");
    check_defined(weight, "linear");
    SOMA_CHECK_SHAPE(weight.dim() == 2,
                     "linear: expected a 2-D weight [out_features, in_features]: got weight ",
                     weight.shape(), ".");
    SOMA_CHECK_SHAPE(x.dim() >= 1,
                     "linear: expected an input [..., in_features]: got a 0-D input.");
    SOMA_CHECK_DTYPE(is_floating(x.dtype()), "linear: expected a floating point input: got ",
                     x.dtype(), " (input ", x.shape(),
                     "). Convert with .to(soma::DType::float32).");
    SOMA_CHECK_DTYPE(weight.dtype() == x.dtype(),
                     "linear: input and weight must have the same dtype: got input ", x.dtype(),
                     " and weight ", weight.dtype(), ". Convert one with .to().");
    check_same_device(x, weight, "linear");
    const int64_t in = weight.size(1), out = weight.size(0);
    SOMA_CHECK_SHAPE(x.size(-1) == in, "linear: input has ", x.size(-1), " features, expected ", in,
                     " (input ", x.shape(), ", weight ", weight.shape(),
                     "). Hint: the weight is [out_features, in_features]; check the layer's "
                     "in_features, or flatten the input first.");
    if (bias.defined()) {
        SOMA_CHECK_SHAPE(bias.dim() == 1 && bias.size(0) == out, "linear: bias has shape ",
                         bias.shape(), ", expected [", out, "] (weight ", weight.shape(), ").");
        SOMA_CHECK_DTYPE(bias.dtype() == x.dtype(),
                         "linear: bias must have the input's dtype: got ", bias.dtype(),
                         " and input ", x.dtype(), ".");
        check_same_device(x, bias, "linear");
    }
    const int64_t m =
        in ? x.numel() / in : shape_numel(Shape(x.shape().begin(), x.shape().end() - 1));
    if (x.impl()->storage->gathered)
        if (Tensor y = linear_gathered(x, weight, bias, m); y.defined()) return y;
    Shape out_shape = x.shape();
    out_shape.back() = out;
    Tensor y = make_tensor(out_shape, x.dtype(), x.device());
    {
        NoGradGuard ng;
        Tensor x2 = x.dim() == 2 ? x : x.reshape({m, in});
        Operand a, b;
        if (!as_operand(x2, a)) {
            x2 = contig(x2);
            as_operand(x2, a);
        }
        Tensor w2 = weight;
        if (!as_operand(w2, b)) {
            w2 = contig(w2);
            as_operand(w2, b);
        }
        if (bias.defined() && m > 0) {
            Tensor y2 = make_view(y, {m, out}, {out, 1}, 0);
            backend(y).copy(make_view(bias, {m, out}, {0, bias.stride(0)}, bias.storage_offset()),
                            y2);
        }
        // y [m, out] = x [m, in] · Wᵀ [in, out]  (a stored Wᵀ goes in untransposed)
        backend(x).gemm({.trans_a = a.trans,
                         .trans_b = !b.trans,
                         .m = m,
                         .n = out,
                         .k = in,
                         .a = a.data,
                         .lda = a.ld,
                         .b = b.data,
                         .ldb = b.ld,
                         .c = y.raw_data(),
                         .ldc = std::max<int64_t>(out, 1),
                         .beta = bias.defined() ? 1.0 : 0.0,
                         .dtype = x.dtype()});
    }
    const bool nx = wants_grad(x), nw = wants_grad(weight), nb = wants_grad(bias);
    return record("linear", y, {x, weight, bias},
                  [x, weight, m, in, out, nx, nw, nb](const Tensor& dy) {
                      Tensor g2 = dy.reshape({m, out});
                      return Grads{nx ? linear(g2, weight.t()).reshape(x.shape()) : Tensor(),
                                   nw ? linear(g2.t(), x.reshape({m, in}).t()) : Tensor(),
                                   nb ? g2.sum({0}) : Tensor()};
                  },
                  {x, weight});
}

Tensor conv1d(const Tensor& x, const Tensor& w, const Tensor& bias, Conv1dArgs args) {
    ConvGeom g = check_conv(x, w, bias,
                            {.op = "conv1d",
                             .nsp = 1,
                             .stride = {1, args.stride},
                             .padding = {0, args.padding},
                             .dilation = {1, args.dilation},
                             .output_padding = {0, 0},
                             .groups = args.groups,
                             .transposed = false});
    // [N, C, L] -> [N, C, 1, L];  w [O, C/g, K] -> [O, C/g, 1, K]
    const bool batched = x.dim() == 3;
    Tensor x4 = batched ? x.unsqueeze(2) : x.unsqueeze(0).unsqueeze(2);
    Tensor y = conv_op(x4, w.unsqueeze(2), bias, g).squeeze(2);
    return batched ? y : y.squeeze(0);
}

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, Conv2dArgs args) {
    ConvGeom g = check_conv(x, w, bias,
                            {.op = "conv2d",
                             .nsp = 2,
                             .stride = args.stride,
                             .padding = args.padding,
                             .dilation = args.dilation,
                             .output_padding = {0, 0},
                             .groups = args.groups,
                             .transposed = false});
    if (x.dim() == 4) return conv_op(x, w, bias, g);
    return conv_op(x.unsqueeze(0), w, bias, g).squeeze(0);
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& bias,
                        ConvTranspose2dArgs args) {
    ConvGeom g = check_conv(x, w, bias,
                            {.op = "conv_transpose2d",
                             .nsp = 2,
                             .stride = args.stride,
                             .padding = args.padding,
                             .dilation = args.dilation,
                             .output_padding = args.output_padding,
                             .groups = args.groups,
                             .transposed = true});
    if (x.dim() == 4) return conv_transpose_op(x, w, bias, g);
    return conv_transpose_op(x.unsqueeze(0), w, bias, g).squeeze(0);
}

}  // namespace soma::nn::functional

namespace soma::nn::detail {
void set_embedding_fold(bool on) { functional::fold_flag() = on; }
bool embedding_fold() { return functional::fold_flag(); }
uint64_t embedding_fold_calls() { return functional::g_fold_calls; }
}  // namespace soma::nn::detail
