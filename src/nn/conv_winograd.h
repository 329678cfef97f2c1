// Internal: float32 4x4 stride-2 convolutions (padding 1) by Winograd's minimal filtering, the
// layer shape of every DCGAN (its discriminator's convolutions, its generator's transposed ones).
//
// Such a convolution is a 2x2 stride-1 convolution of the input rearranged space-to-depth
// (2x2 pixel blocks become 4C channels), and that one is computed tile by tile with
// F(4x4, 2x2): 25 products per 4x4 output tile where the direct method needs 64, so the three
// passes run on 25 GEMMs with (25 x 4) / 64 = 1.56x... up to 1.96x fewer multiply-adds than
// oneDNN's direct kernels (which have no Winograd for stride 2). Interpolation points 0, 1, -1,
// 2 and infinity; the fractions sit in the weight transform, so the data transforms are exact.
// Rounding differs from the direct sum by a few ulps of the output's scale (tests: 2e-5
// relative), as with cuDNN's Winograd kernels.
//
// Each function returns false, touching nothing, when the geometry is not one it handles (the
// caller goes on to oneDNN / im2col): kernel 4x4, stride 2, padding 1, no dilation, one group,
// both channel counts multiples of 8 and at least 16, AVX2 + FMA present, and the batch's
// transformed input and output within 64 MB.
#pragma once

#include <cstdint>

#include "backend/backend.h"
#include "nn/conv_kernels.h"

namespace soma::conv {

/// Whether the Winograd path is on (default; SOMA_CONV_WINOGRAD=0, read once, or
/// set_use_winograd(false) turns it off: tests compare it against oneDNN and the reference).
bool use_winograd();
void set_use_winograd(bool on);
/// How many passes it has served (tests: that a geometry took this path).
uint64_t winograd_calls();
/// How many transforms a pass took from an earlier one (TransformReuse).
uint64_t winograd_reuses();
/// Whether geometry g is one this path computes (and it is on).
bool winograd_applies(const ConvGeom& g);

/// Inside this scope (on this thread) a pass may reuse the transform of a buffer that an earlier
/// pass in the same scope computed, when the buffer's address and the geometry match: the
/// input's V from the forward pass or the weight gradient, the output gradient's dM from the
/// input gradient. Open it only where the buffers cannot change: a convolution's backward, whose
/// input-gradient and weight-gradient passes read the same dy (and x). Nests; reuse ends when
/// the outermost scope closes.
class TransformReuse {
  public:
    TransformReuse();
    ~TransformReuse();
    TransformReuse(const TransformReuse&) = delete;
    TransformReuse& operator=(const TransformReuse&) = delete;
};

/// y = conv(x, w) + b (b may be null).
bool wino_conv2d_forward(Backend& be, const ConvGeom& g, const float* x, const float* w,
                         const float* b, float* y);
/// dx = convᵀ(dy, w) (+ b per channel of dx when b is not null).
bool wino_conv2d_input_grad(Backend& be, const ConvGeom& g, const float* dy, const float* w,
                            const float* b, float* dx);
/// dw = Σ_n dy[n] ⋆ x[n] (overwrites dw).
bool wino_conv2d_weight_grad(Backend& be, const ConvGeom& g, const float* x, const float* dy,
                             float* dw);

}  // namespace soma::conv
