// soma/gen/upsample.h — resizing images: nearest and bilinear upsampling (F.interpolate).
//
// x [N, C, H, W] -> [N, C, H', W'] with H', W' given as `size` or as floor(H * scale_factor).
// Index mapping as PyTorch: nearest takes src = min(floor(dst * scale), in - 1); bilinear with
// align_corners = false takes src = max((dst + 0.5) * scale - 0.5, 0), with align_corners = true
// src = dst * (in - 1) / (out - 1). scale = in / out when `size` is given, 1 / scale_factor
// otherwise. Both modes are linear maps, so the backward is the adjoint (a scatter-add) and is
// itself differentiable. float32 / float64 only. Throws ShapeError / ValueError naming the op.
//
//     namespace F = soma::nn::functional;
//     auto y = F::interpolate(x, {.scale_factor = {2, 2}, .mode = F::UpsampleMode::bilinear});
//     soma::nn::Upsample up({.scale_factor = {2, 2}});          // nearest, as nn.Upsample
#pragma once

#include <array>
#include <optional>
#include <string>

#include "soma/nn/module.h"
#include "soma/tensor.h"

namespace soma::nn {

namespace functional {

enum class UpsampleMode { nearest, bilinear };

struct InterpolateArgs {
    std::optional<std::array<int64_t, 2>> size = std::nullopt;         // (H', W')
    std::optional<std::array<double, 2>> scale_factor = std::nullopt;  // (sh, sw)
    UpsampleMode mode = UpsampleMode::nearest;
    bool align_corners = false;  // bilinear only
};

/// x [N, C, H, W] (or [C, H, W]) -> resized; exactly one of size / scale_factor must be set.
Tensor interpolate(const Tensor& x, const InterpolateArgs& args);

}  // namespace functional

using UpsampleOptions = functional::InterpolateArgs;

/// nn.Upsample: a module around functional::interpolate (no parameters).
class Upsample : public Module {
  public:
    explicit Upsample(UpsampleOptions o) : options(o) {}
    Tensor forward(const Tensor& x) override { return functional::interpolate(x, options); }
    std::string type_name() const override { return "Upsample"; }
    std::string extra_repr() const override;
    UpsampleOptions options;
};

}  // namespace soma::nn
