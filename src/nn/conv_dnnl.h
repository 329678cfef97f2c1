// Internal: float32 2-D convolution through oneDNN primitives (conv_kernels.cpp routes its
// float32 path here; float64 stays on im2col + GEMM, the gradcheck oracle).
//
// Each function computes the same thing as its conv_kernels.h namesake on contiguous NCHW
// buffers and returns false, touching nothing, when oneDNN cannot do the geometry (the caller
// then falls back to im2col). Primitives, reorders and their buffers are cached per geometry
// and pass. oneDNN runs single-threaded; with soma::get_num_threads() > 1 the batch is split
// over Soma's threads (results depend only on the thread count).
#pragma once

#include <cstdint>

#include "nn/conv_kernels.h"

namespace soma::conv {

/// Whether float32 convolutions go through oneDNN. On by default; the environment variable
/// SOMA_CONV=ref (read once) turns it off, as does set_use_dnnl(false) (tests: the reference).
bool use_dnnl();
void set_use_dnnl(bool on);
/// How many calls oneDNN has served so far (tests: that a geometry did not fall back).
uint64_t dnnl_conv_calls();

/// y = conv(x, w) + b (b may be null).
bool dnnl_conv2d_forward(const ConvGeom& g, const float* x, const float* w, const float* b,
                         float* y);
/// dx = convᵀ(dy, w) (+ b per channel of dx when b is not null).
bool dnnl_conv2d_input_grad(const ConvGeom& g, const float* dy, const float* w, const float* b,
                            float* dx);
/// dw = Σ_n dy[n] ⋆ x[n].
bool dnnl_conv2d_weight_grad(const ConvGeom& g, const float* x, const float* dy, float* dw);

}  // namespace soma::conv
