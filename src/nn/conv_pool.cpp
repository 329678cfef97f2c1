// max_pool2d, avg_pool2d, adaptive_avg_pool2d on [N, C, H, W] or [C, H, W].
//
// Each pool is a pair of fast ops that are each other's backward, so double backward works:
//     max pool    y = x[argmax]         dx = scatter(dy, argmax)   (argmax saved in forward)
//     scatter     dx = scatter(dy, idx)  d(dy) = gather(ddx, idx)
//     gather      y = x[idx]            dx = scatter(dy, idx)
//     avg pool    y = A x               dx = Aᵀ dy;  Aᵀ's backward is A again
// Output sizes follow PyTorch's pooling_output_shape (floor or ceil, the last window must start
// inside the input or its left padding).
#include <memory>

#include "nn/conv_kernels.h"
#include "ops/op_util.h"
#include "soma/nn/functional.h"

namespace soma::nn::functional {
namespace {

using Grads = std::vector<Tensor>;
using conv::AxisWindows;
using conv::contig;

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// PyTorch's pooling_output_shape.
int64_t pool_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
    int64_t out = floor_div(in + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0), s) + 1;
    if (ceil_mode && (out - 1) * s >= in + p) --out;
    return out;
}

Shape with_spatial(const Tensor& x, int64_t h, int64_t w) {
    Shape s = x.shape();
    s[s.size() - 2] = h;
    s[s.size() - 1] = w;
    return s;
}

void check_pool_input(const Tensor& x, const char* op) {
    check_defined(x, op);
    SOMA_CHECK_SHAPE(x.dim() == 3 || x.dim() == 4, op,
                     ": expected a 3-D [C, H, W] or 4-D [N, C, H, W] input: got input ", x.shape(),
                     " (", x.dim(), "-D).");
    SOMA_CHECK_SHAPE(x.size(-1) > 0 && x.size(-2) > 0 && x.size(-3) > 0, op,
                     ": expected non-empty channel and spatial dims: got input ", x.shape(),
                     " (only the batch dim may be 0).");
    SOMA_CHECK_DTYPE(is_floating(x.dtype()), op, ": expected a floating point input: got ",
                     x.dtype(), " (input ", x.shape(),
                     "). Convert with .to(soma::DType::float32).");
}

struct PoolShape {
    std::array<int64_t, 2> k, s, p, d, in, out;
};

PoolShape check_pool(const Tensor& x, const Pool2dArgs& a, const char* op) {
    check_pool_input(x, op);
    PoolShape ps{a.kernel, a.stride.value_or(a.kernel), a.padding, a.dilation, {}, {}};
    const Shape k{ps.k[0], ps.k[1]}, s{ps.s[0], ps.s[1]}, p{ps.p[0], ps.p[1]};
    const Shape d{ps.d[0], ps.d[1]};
    for (int i = 0; i < 2; ++i) {
        SOMA_CHECK_VALUE(ps.k[i] > 0, op, ": kernel size must be positive: got ", k, ".");
        SOMA_CHECK_VALUE(ps.s[i] > 0, op, ": stride must be positive: got ", s, ".");
        SOMA_CHECK_VALUE(ps.d[i] > 0, op, ": dilation must be positive: got ", d, ".");
        SOMA_CHECK_VALUE(ps.p[i] >= 0 && ps.p[i] <= ps.k[i] / 2, op,
                         ": padding must be at most half the kernel size: got padding ", p,
                         ", expected at most ", Shape{ps.k[0] / 2, ps.k[1] / 2}, " (kernel ", k,
                         ").");
    }
    ps.in = {x.size(-2), x.size(-1)};
    for (int i = 0; i < 2; ++i)
        ps.out[i] = pool_out(ps.in[i], ps.k[i], ps.s[i], ps.p[i], ps.d[i], a.ceil_mode);
    SOMA_CHECK_SHAPE(ps.out[0] > 0 && ps.out[1] > 0, op, ": output size ",
                     Shape{ps.out[0], ps.out[1]}, " is too small (input ", x.shape(), ", kernel ",
                     k, ", stride ", s, ", padding ", p, ", dilation ", d,
                     "). Use a smaller kernel or stride, or pad the input.");
    return ps;
}

// ---- max pool: gather / scatter with the saved argmax ----------------------------------------

Tensor max_gather_op(const Tensor& x, const Tensor& idx, const Shape& out_shape);

// max_pool2d_backward: dx = scatter(dy, idx);  d(dy) = gather(d(dx), idx)
Tensor max_scatter_op(const Tensor& dy, const Tensor& idx, const Shape& in_shape) {
    Tensor dyc = contig(dy);
    Tensor dx = make_tensor(in_shape, dy.dtype(), dy.device());
    const int64_t in_plane = in_shape[in_shape.size() - 1] * in_shape[in_shape.size() - 2];
    const int64_t planes = in_plane ? dx.numel() / in_plane : 0;
    const int64_t out_plane = planes ? dy.numel() / planes : 0;
    dispatch_floating(dy.dtype(), [&](auto z) {
        using T = decltype(z);
        conv::max_pool_scatter<T>(planes, in_plane, out_plane, dyc.data_ptr<T>(),
                                  idx.data_ptr<int64_t>(), dx.data_ptr<T>());
    });
    Shape out_shape = dy.shape();
    return record("max_pool2d_backward", dx, {dy}, [idx, out_shape](const Tensor& g) {
        return Grads{max_gather_op(g, idx, out_shape)};
    });
}

// max_pool2d_gather: y = x[idx];  dx = scatter(dy, idx)
Tensor max_gather_op(const Tensor& x, const Tensor& idx, const Shape& out_shape) {
    Tensor xc = contig(x);
    Tensor y = make_tensor(out_shape, x.dtype(), x.device());
    const int64_t in_plane = x.size(-1) * x.size(-2);
    const int64_t planes = in_plane ? x.numel() / in_plane : 0;
    const int64_t out_plane = planes ? y.numel() / planes : 0;
    dispatch_floating(x.dtype(), [&](auto z) {
        using T = decltype(z);
        conv::max_pool_gather<T>(planes, in_plane, out_plane, xc.data_ptr<T>(),
                                 idx.data_ptr<int64_t>(), y.data_ptr<T>());
    });
    Shape in_shape = x.shape();
    return record("max_pool2d_gather", y, {x}, [idx, in_shape](const Tensor& g) {
        return Grads{max_scatter_op(g, idx, in_shape)};
    });
}

// ---- average pools: A and Aᵀ -----------------------------------------------------------------

struct Windows {
    AxisWindows h, w;
};
using WindowsPtr = std::shared_ptr<const Windows>;

Tensor avg_backward_op(const Tensor& dy, const WindowsPtr& win, const Shape& in_shape,
                       const char* name);

// avg pool: y[i, j] = Σ_window x / div;  dx = Aᵀ dy (dy[i, j] / div spread over the window)
Tensor avg_op(const Tensor& x, const WindowsPtr& win, const char* name) {
    Tensor xc = contig(x);
    const int64_t ho = static_cast<int64_t>(win->h.start.size());
    const int64_t wo = static_cast<int64_t>(win->w.start.size());
    Tensor y = make_tensor(with_spatial(x, ho, wo), x.dtype(), x.device());
    const int64_t h = x.size(-2), w = x.size(-1), planes = x.numel() / (h * w);
    dispatch_floating(x.dtype(), [&](auto z) {
        using T = decltype(z);
        conv::avg_pool_forward<T>(planes, h, w, win->h, win->w, xc.data_ptr<T>(), y.data_ptr<T>());
    });
    Shape in_shape = x.shape();
    return record(name, y, {x}, [win, in_shape, name](const Tensor& g) {
        return Grads{avg_backward_op(g, win, in_shape, name)};
    });
}

// avg pool backward: dx = Aᵀ dy;  d(dy) = A d(dx)
Tensor avg_backward_op(const Tensor& dy, const WindowsPtr& win, const Shape& in_shape,
                       const char* name) {
    Tensor dyc = contig(dy);
    Tensor dx = make_tensor(in_shape, dy.dtype(), dy.device());
    const int64_t h = in_shape[in_shape.size() - 2], w = in_shape[in_shape.size() - 1];
    const int64_t planes = dx.numel() / (h * w);
    dispatch_floating(dy.dtype(), [&](auto z) {
        using T = decltype(z);
        conv::avg_pool_backward<T>(planes, h, w, win->h, win->w, dyc.data_ptr<T>(),
                                   dx.data_ptr<T>());
    });
    return record("avg_pool2d_backward", dx, {dy},
                  [win, name](const Tensor& g) { return Grads{avg_op(g, win, name)}; });
}

}  // namespace

// max_pool2d: y = max over each window (padding is -inf);  dx = dy scattered to the argmax
Tensor max_pool2d(const Tensor& x, Pool2dArgs args) {
    PoolShape ps = check_pool(x, args, "max_pool2d");
    Tensor xc = contig(x);
    Shape out_shape = with_spatial(x, ps.out[0], ps.out[1]);
    Tensor y = make_tensor(out_shape, x.dtype(), x.device());
    Tensor idx = make_tensor(out_shape, DType::int64, x.device());
    conv::MaxPoolGeom g{.planes = x.numel() / (ps.in[0] * ps.in[1]),
                        .h = ps.in[0],
                        .w = ps.in[1],
                        .ho = ps.out[0],
                        .wo = ps.out[1],
                        .kh = ps.k[0],
                        .kw = ps.k[1],
                        .sh = ps.s[0],
                        .sw = ps.s[1],
                        .ph = ps.p[0],
                        .pw = ps.p[1],
                        .dh = ps.d[0],
                        .dw = ps.d[1]};
    dispatch_floating(x.dtype(), [&](auto z) {
        using T = decltype(z);
        conv::max_pool_forward<T>(g, xc.data_ptr<T>(), y.data_ptr<T>(), idx.data_ptr<int64_t>());
    });
    Shape in_shape = x.shape();
    return record("max_pool2d", y, {x}, [idx, in_shape](const Tensor& dy) {
        return Grads{max_scatter_op(dy, idx, in_shape)};
    });
}

Tensor avg_pool2d(const Tensor& x, Pool2dArgs args) {
    PoolShape ps = check_pool(x, args, "avg_pool2d");
    SOMA_CHECK_VALUE(ps.d[0] == 1 && ps.d[1] == 1,
                     "avg_pool2d: dilation is not supported: got dilation ",
                     Shape{ps.d[0], ps.d[1]},
                     ", expected [1, 1] (as torch.nn.functional.avg_pool2d, which has none).");
    auto win = std::make_shared<Windows>();
    win->h =
        conv::pool_windows(ps.in[0], ps.out[0], ps.k[0], ps.s[0], ps.p[0], args.count_include_pad);
    win->w =
        conv::pool_windows(ps.in[1], ps.out[1], ps.k[1], ps.s[1], ps.p[1], args.count_include_pad);
    return avg_op(x, win, "avg_pool2d");
}

Tensor adaptive_avg_pool2d(const Tensor& x, std::array<int64_t, 2> output_size) {
    check_pool_input(x, "adaptive_avg_pool2d");
    SOMA_CHECK_VALUE(output_size[0] > 0 && output_size[1] > 0,
                     "adaptive_avg_pool2d: output size must be positive: got ",
                     Shape{output_size[0], output_size[1]}, ".");
    auto win = std::make_shared<Windows>();
    win->h = conv::adaptive_windows(x.size(-2), output_size[0]);
    win->w = conv::adaptive_windows(x.size(-1), output_size[1]);
    return avg_op(x, win, "adaptive_avg_pool2d");
}

}  // namespace soma::nn::functional
