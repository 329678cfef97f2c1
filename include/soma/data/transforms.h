// soma/data/transforms.h — image transforms on an example or a batch (torchvision semantics).
//
// Contract: images are [C, H, W] or [H, W] (one example) or [N, C, H, W] (a batch); random
// transforms draw one decision per image from the Generator, in order, so a seed fixes the
// result. They return fresh contiguous tensors that do not require grad (data transforms, not
// differentiable); normalize returns a floating dtype, crop and flip keep the dtype.
// The Transform factories apply to Example::input and keep their own Generator(seed); used as
// DataLoader::transform they run in batch order, giving the same results with or without prefetch.
//
//     using namespace soma::data;
//     auto aug = compose({random_crop(28, 2, /*seed=*/1), random_horizontal_flip(0.5, 2),
//                         normalize({0.2860}, {0.3530})});
//     DataLoader loader(train, {.batch_size = 128, .shuffle = true, .transform = aug});
#pragma once

#include <cstdint>
#include <vector>

#include "soma/data/loader.h"
#include "soma/random.h"

namespace soma::data {

// ---- on tensors ----------------------------------------------------------------------------
/// (x - mean[c]) / std[c] per channel c (dim -3; [H, W] has one channel). mean and std have C
/// entries or one (shared). Floating x keeps its dtype; integers become float32.
Tensor normalize(const Tensor& x, const std::vector<double>& mean, const std::vector<double>& std);
/// Zero-pads H and W by `padding` on each side, then crops a random size_h x size_w window
/// (per image). ValueError when the padded image is smaller than the crop.
Tensor random_crop(const Tensor& x, int64_t size_h, int64_t size_w, int64_t padding,
                   Generator& gen);
/// Mirrors each image along W with probability p.
Tensor random_horizontal_flip(const Tensor& x, double p, Generator& gen);

// ---- as Transforms (on Example::input) -----------------------------------------------------
Transform normalize(std::vector<double> mean, std::vector<double> std);
Transform random_crop(int64_t size, int64_t padding = 0, uint64_t seed = 0);
Transform random_horizontal_flip(double p = 0.5, uint64_t seed = 0);
/// Applies the transforms in order.
Transform compose(std::vector<Transform> transforms);

}  // namespace soma::data
