// soma/optim/clip_grad.h — gradient clipping (torch.nn.utils.clip_grad_norm_ / _value_).
//
// Both work in place on the .grad() of the given tensors (those without a grad are skipped)
// and bump each modified grad's version counter.
//
//     loss.backward();
//     double norm = soma::optim::clip_grad_norm_(model.parameters(), 1.0);
//     opt.step();
//
// Throws soma::ValueError for a negative max_norm / clip value, a norm_type <= 0, or (with
// error_if_nonfinite) a NaN / Inf total norm.
#pragma once

#include <limits>
#include <vector>

#include "soma/tensor.h"

namespace soma::optim {

inline constexpr double kInfNorm = std::numeric_limits<double>::infinity();

/// Scales all grads by min(1, max_norm / (total_norm + 1e-6)), where total_norm is the
/// norm_type-norm of the per-tensor norms (norm_type kInfNorm: the largest |g|). Returns the
/// total norm before clipping (0 when no tensor has a grad).
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);

/// Clamps every grad element into [-clip_value, clip_value].
void clip_grad_value_(const std::vector<Tensor>& params, double clip_value);

}  // namespace soma::optim
