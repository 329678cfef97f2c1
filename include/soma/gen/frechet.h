// soma/gen/frechet.h — Fréchet distance between two Gaussians fitted to feature sets (the FID
// formula), with a Jacobi symmetric eigensolver in double precision.
//
//   d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1^1/2 S2 S1^1/2)^1/2)
//
// S1^1/2 S2 S1^1/2 is symmetric positive semi-definite and has the same eigenvalues as S1 S2, so
// the trace term is the sum of square roots of its (clamped non-negative) eigenvalues.
// Covariances are unbiased (divided by N - 1), as numpy.cov in the FID reference code.
//
//     auto a = soma::gen::feature_stats(real_features);    // [N, D]
//     auto b = soma::gen::feature_stats(fake_features);    // [M, D]
//     double fid = soma::gen::frechet_distance(a, b);
#pragma once

#include <cstdint>
#include <vector>

#include "soma/nn.h"
#include "soma/tensor.h"

namespace soma::gen {

struct FeatureStats {
    int64_t dim = 0;
    std::vector<double> mean;  // [D]
    std::vector<double> cov;   // [D, D] row-major
};

/// Mean and unbiased covariance of features [N, D] (N >= 2).
FeatureStats feature_stats(const Tensor& features);

double frechet_distance(const FeatureStats& a, const FeatureStats& b);
/// Convenience: feature_stats of both, then the distance.
double frechet_distance(const Tensor& features_a, const Tensor& features_b);

/// Features of a classifier for the Fréchet distance: runs images [N, ...] through the first
/// `layers` children of `model` (eval mode, no grad, in batches; the training flag is restored)
/// and flattens the result to [N, F]. E.g. layers = index of the last Linear for the
/// penultimate-layer activations. Throws ValueError when layers exceeds the model's size.
Tensor sequential_features(nn::Sequential& model, const Tensor& images, size_t layers,
                           int64_t batch_size = 500);

/// Eigen-decomposition of a symmetric n x n matrix (row-major) by cyclic Jacobi rotations:
/// eigenvalues ascending, eigenvectors as the columns of `vectors` (row-major n x n).
void symmetric_eigen(const std::vector<double>& a, int64_t n, std::vector<double>& values,
                     std::vector<double>& vectors);

/// The PSD square root V diag(sqrt(max(l, 0))) V^T of a symmetric matrix.
std::vector<double> sqrtm_psd(const std::vector<double>& a, int64_t n);

}  // namespace soma::gen
