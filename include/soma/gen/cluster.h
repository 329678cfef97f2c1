// soma/gen/cluster.h — k-means (k-means++ init, seeded) written with Soma tensors, and the
// clustering scores: accuracy under the best one-to-one label matching (Hungarian algorithm)
// and normalized mutual information (arithmetic normalisation, as sklearn's default).
//
//     auto km = soma::gen::kmeans(codes, {.k = 10, .seed = 0});     // codes [N, D]
//     double acc = soma::gen::clustering_accuracy(labels, km.labels);
//     double nmi = soma::gen::normalized_mutual_info(labels, km.labels);
//     auto p = soma::gen::pca(codes, 2);                            // p.projected [N, 2]
#pragma once

#include <cstdint>
#include <vector>

#include "soma/tensor.h"

namespace soma::gen {

struct KMeansOptions {
    int64_t k = 8;
    int64_t max_iter = 100;
    double tol = 1e-4;   // stop when centroids move less than tol * mean feature variance (sq.)
    uint64_t seed = 0;   // greedy k-means++ draws from a private generator with this seed
    int64_t n_init = 1;  // restarts (seed, seed + 1, ...); the lowest inertia wins
};

struct KMeansResult {
    Tensor centroids;    // float32 [k, D]
    Tensor labels;       // int64 [N]
    double inertia = 0;  // sum of squared distances to the assigned centroid
    int64_t iterations = 0;
};

/// Lloyd's algorithm on x [N, D] (any floating dtype; computed in float32... float64 if given).
/// Empty clusters are reseeded with the point farthest from its centroid. Throws when N < k.
KMeansResult kmeans(const Tensor& x, const KMeansOptions& options);

/// Minimum-cost assignment: cost is rows x cols (row-major), rows <= cols. Returns for every row
/// the column assigned to it (all distinct). O(rows^2 cols) (Jonker-Volgenant style potentials).
std::vector<int64_t> hungarian(const std::vector<double>& cost, int64_t rows, int64_t cols);

/// Fraction of examples whose predicted cluster maps to their true label under the best
/// one-to-one mapping of cluster ids to labels. Both int64 [N] of non-negative ids.
double clustering_accuracy(const Tensor& labels_true, const Tensor& labels_pred);

/// NMI = I(a; b) / ((H(a) + H(b)) / 2); 1 for identical partitions (up to renaming). When both
/// partitions have a single cluster the result is 1.
double normalized_mutual_info(const Tensor& labels_true, const Tensor& labels_pred);

struct PcaResult {
    Tensor mean;                    // [D]
    Tensor components;              // [k, D], unit rows, by decreasing explained variance
    std::vector<double> explained;  // [k] variances along the components
    Tensor projected;               // [N, k] = (x - mean) components^T
};

/// Principal component analysis of x [N, D] (N >= 2, 1 <= k <= D): the covariance by one GEMM,
/// its eigenvectors by Jacobi rotations (frechet.h). Each component's sign is fixed so that its
/// largest-magnitude entry is positive. Outputs in x's floating dtype.
PcaResult pca(const Tensor& x, int64_t k);

}  // namespace soma::gen
