// Internal: convolution and pooling kernels on contiguous NCHW float32/float64 buffers.
//
// Convolution is im2col + one GEMM per image and group through Backend::gemm; float32 goes
// through oneDNN instead when it can (conv_dnnl.h; float64 stays on im2col, the gradcheck
// oracle). Every kernel overwrites its output. The ops in functional_conv.cpp / conv_pool.cpp
// check shapes, make the operands contiguous and record autograd; these functions trust their
// arguments.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "core/dispatch.h"
#include "core/tensor_impl.h"

namespace soma::conv {

/// t itself when contiguous, else a contiguous copy (not recorded: kernels read raw memory).
inline Tensor contig(const Tensor& t) {
    if (t.is_contiguous()) return t;
    Tensor out = make_tensor(t.shape(), t.dtype(), t.device());
    backend(t).copy(t, out);
    return out;
}

/// f(float{}) or f(double{}) by dtype (the ops have checked that it is floating).
/// The geometry of one 2-D convolution, always seen from the forward conv's side:
/// input x [N, C, H, W], weight [O, C/groups, kh, kw], output y [N, O, Ho, Wo], with
/// y[n, o, i, j] = Σ_{c, a, b} w[o, c, a, b] x[n, g(o) C/groups + c, i sh - ph + a dh,
/// j sw - pw + b dw]. Ho and Wo are explicit (a transposed conv may ask for extra rows that no
/// input position reaches: output_padding).
struct ConvGeom {
    int64_t n = 0, c = 0, h = 0, w = 0;  // input
    int64_t o = 0, kh = 1, kw = 1;       // weight
    int64_t ho = 0, wo = 0;              // output
    int64_t sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1, groups = 1;
};

/// y = conv(x, w) + b;  b may be null.
template <class T>
void conv2d_forward(Backend& be, const ConvGeom& g, const T* x, const T* w, const T* b, T* y);
/// dx = conv^T(dy, w) (the input gradient, also conv_transpose2d's forward); + b per channel of
/// dx when b is not null.
template <class T>
void conv2d_input_grad(Backend& be, const ConvGeom& g, const T* dy, const T* w, const T* b, T* dx);
/// dw = Σ_n dy[n] ⋆ x[n] (the weight gradient).
template <class T>
void conv2d_weight_grad(Backend& be, const ConvGeom& g, const T* x, const T* dy, T* dw);
/// out[c] = Σ_{n, i} x[n, c, i];  x viewed as [n, c, inner].
template <class T>
void channel_sum(int64_t n, int64_t c, int64_t inner, const T* x, T* out);

/// Pooling windows along one axis: output i covers input [start[i], end[i]) (clipped to the
/// input) and divides by div[i] (avg pooling; the divisor is separable in h and w).
struct AxisWindows {
    std::vector<int64_t> start, end;
    std::vector<double> div;
};
/// Plain (avg) pooling windows with PyTorch's padding / count_include_pad semantics.
AxisWindows pool_windows(int64_t in, int64_t out, int64_t k, int64_t s, int64_t p,
                         bool count_include_pad);
/// Adaptive windows: [floor(i in / out), ceil((i + 1) in / out)).
AxisWindows adaptive_windows(int64_t in, int64_t out);

/// Average pooling over `planes` = N*C planes [h, w] -> [ho, wo] with separable windows.
template <class T>
void avg_pool_forward(int64_t planes, int64_t h, int64_t w, const AxisWindows& wh,
                      const AxisWindows& ww, const T* x, T* y);
/// Its adjoint: spreads dy[i, j] / div over window (i, j) (overwrites dx).
template <class T>
void avg_pool_backward(int64_t planes, int64_t h, int64_t w, const AxisWindows& wh,
                       const AxisWindows& ww, const T* dy, T* dx);

struct MaxPoolGeom {
    int64_t planes = 0, h = 0, w = 0, ho = 0, wo = 0;
    int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
};
/// y = max over each window (padding counts as -inf; NaN wins); idx = argmax as a flat index
/// h * W + w into its plane (as PyTorch's return_indices).
template <class T>
void max_pool_forward(const MaxPoolGeom& g, const T* x, T* y, int64_t* idx);
/// dx = 0; dx[p, idx[p, j]] += dy[p, j]   (planes x in_plane <- planes x out_plane).
template <class T>
void max_pool_scatter(int64_t planes, int64_t in_plane, int64_t out_plane, const T* dy,
                      const int64_t* idx, T* dx);
/// y[p, j] = x[p, idx[p, j]].
template <class T>
void max_pool_gather(int64_t planes, int64_t in_plane, int64_t out_plane, const T* x,
                     const int64_t* idx, T* y);

}  // namespace soma::conv
