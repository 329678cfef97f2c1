// Fréchet distance and the Jacobi eigensolver behind it (double precision throughout).
#include "soma/gen/frechet.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "soma/autograd.h"
#include "soma/ops.h"

namespace soma::gen {

namespace {
using Mat = std::vector<double>;

Mat matmul_sq(const Mat& a, const Mat& b, size_t n) {
    Mat c(n * n, 0.0);
    for (size_t i = 0; i < n; ++i)
        for (size_t k = 0; k < n; ++k) {
            double v = a[i * n + k];
            if (v == 0) continue;
            for (size_t j = 0; j < n; ++j) c[i * n + j] += v * b[k * n + j];
        }
    return c;
}
}  // namespace

FeatureStats feature_stats(const Tensor& f) {
    SOMA_CHECK_SHAPE(f.defined() && f.dim() == 2, "feature_stats: features must be [N, D]: got ",
                     f.defined() ? f.shape() : Shape{}, ".");
    SOMA_CHECK_VALUE(f.size(0) >= 2, "feature_stats: need at least 2 feature vectors, got ",
                     f.size(0));
    NoGradGuard ng;
    const auto n = static_cast<size_t>(f.size(0)), d = static_cast<size_t>(f.size(1));
    std::vector<double> x = f.detach().to_vector<double>();
    FeatureStats s;
    s.dim = f.size(1);
    s.mean.assign(d, 0.0);
    for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j < d; ++j) s.mean[j] += x[i * d + j];
    for (auto& m : s.mean) m /= static_cast<double>(n);
    for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j < d; ++j) x[i * d + j] -= s.mean[j];
    s.cov.assign(d * d, 0.0);
    for (size_t i = 0; i < n; ++i) {
        const double* r = &x[i * d];
        for (size_t a = 0; a < d; ++a) {
            double ra = r[a];
            if (ra == 0) continue;
            for (size_t b = a; b < d; ++b) s.cov[a * d + b] += ra * r[b];
        }
    }
    for (size_t a = 0; a < d; ++a)
        for (size_t b = a; b < d; ++b) {
            s.cov[a * d + b] /= static_cast<double>(n - 1);
            s.cov[b * d + a] = s.cov[a * d + b];
        }
    return s;
}

// Cyclic Jacobi: rotate away each off-diagonal a[p][q] in turn until the off-diagonal norm is
// negligible (quadratic convergence; ~6-10 sweeps for n <= 128).
void symmetric_eigen(const std::vector<double>& a0, int64_t n0, std::vector<double>& values,
                     std::vector<double>& vectors) {
    SOMA_CHECK_VALUE(n0 >= 0 && static_cast<int64_t>(a0.size()) == n0 * n0,
                     "symmetric_eigen: need n * n entries: got n ", n0, ", ", a0.size(),
                     " entries");
    const auto n = static_cast<size_t>(n0);
    Mat a = a0;
    Mat v(n * n, 0.0);
    for (size_t i = 0; i < n; ++i) v[i * n + i] = 1.0;
    double total = 0;
    for (double e : a) total += e * e;
    for (int sweep = 0; sweep < 100; ++sweep) {
        double off = 0;
        for (size_t p = 0; p < n; ++p)
            for (size_t q = p + 1; q < n; ++q) off += a[p * n + q] * a[p * n + q];
        if (off <= 1e-30 * total || off == 0) break;
        for (size_t p = 0; p < n; ++p)
            for (size_t q = p + 1; q < n; ++q) {
                double apq = a[p * n + q];
                if (std::abs(apq) < 1e-300) continue;
                double theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
                double t =
                    (theta >= 0 ? 1.0 : -1.0) / (std::abs(theta) + std::sqrt(theta * theta + 1.0));
                double c = 1.0 / std::sqrt(t * t + 1), s = t * c;
                for (size_t k = 0; k < n; ++k) {  // columns p, q: A <- A J
                    double akp = a[k * n + p], akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for (size_t k = 0; k < n; ++k) {  // rows p, q: A <- J^T A
                    double apk = a[p * n + k], aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for (size_t k = 0; k < n; ++k) {  // V <- V J
                    double vkp = v[k * n + p], vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
    }
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), size_t{0});
    std::sort(order.begin(), order.end(),
              [&](size_t x, size_t y) { return a[x * n + x] < a[y * n + y]; });
    values.assign(n, 0.0);
    vectors.assign(n * n, 0.0);
    for (size_t j = 0; j < n; ++j) {
        values[j] = a[order[j] * n + order[j]];
        for (size_t k = 0; k < n; ++k) vectors[k * n + j] = v[k * n + order[j]];
    }
}

std::vector<double> sqrtm_psd(const std::vector<double>& a, int64_t n0) {
    std::vector<double> l, v;
    symmetric_eigen(a, n0, l, v);
    const auto n = static_cast<size_t>(n0);
    Mat r(n * n, 0.0);
    for (size_t k = 0; k < n; ++k) {
        double s = std::sqrt(std::max(l[k], 0.0));
        if (s == 0) continue;
        for (size_t i = 0; i < n; ++i) {
            double vi = v[i * n + k] * s;
            for (size_t j = 0; j < n; ++j) r[i * n + j] += vi * v[j * n + k];
        }
    }
    return r;
}

double frechet_distance(const FeatureStats& a, const FeatureStats& b) {
    SOMA_CHECK_VALUE(a.dim == b.dim && a.dim > 0, "frechet_distance: feature dims differ: got ",
                     a.dim, " and ", b.dim);
    const auto n = static_cast<size_t>(a.dim);
    double d2 = 0, tr = 0;
    for (size_t i = 0; i < n; ++i) {
        d2 += (a.mean[i] - b.mean[i]) * (a.mean[i] - b.mean[i]);
        tr += a.cov[i * n + i] + b.cov[i * n + i];
    }
    Mat s1h = sqrtm_psd(a.cov, a.dim);
    Mat m = matmul_sq(matmul_sq(s1h, b.cov, n), s1h, n);
    for (size_t i = 0; i < n; ++i)  // symmetrise away rounding
        for (size_t j = i + 1; j < n; ++j)
            m[i * n + j] = m[j * n + i] = (m[i * n + j] + m[j * n + i]) / 2;
    std::vector<double> l, v;
    symmetric_eigen(m, a.dim, l, v);
    double tr_sqrt = 0;
    for (double e : l) tr_sqrt += std::sqrt(std::max(e, 0.0));
    return d2 + tr - 2 * tr_sqrt;
}

double frechet_distance(const Tensor& fa, const Tensor& fb) {
    return frechet_distance(feature_stats(fa), feature_stats(fb));
}

Tensor sequential_features(nn::Sequential& model, const Tensor& images, size_t layers,
                           int64_t batch_size) {
    SOMA_CHECK_VALUE(layers >= 1 && layers <= model.size(),
                     "sequential_features: layers must be in [1, ", model.size(), "], got ",
                     layers);
    SOMA_CHECK_VALUE(batch_size > 0, "sequential_features: batch_size must be > 0, got ",
                     batch_size);
    SOMA_CHECK_SHAPE(images.defined() && images.dim() >= 1 && images.size(0) > 0,
                     "sequential_features: images must be [N, ...] with N > 0: got ",
                     images.defined() ? images.shape() : Shape{}, ".");
    NoGradGuard ng;
    bool was = model.is_training();
    model.eval();
    std::vector<Tensor> parts;
    const int64_t n = images.size(0);
    for (int64_t i = 0; i < n; i += batch_size) {
        Tensor h = images.narrow(0, i, std::min(batch_size, n - i));
        for (size_t l = 0; l < layers; ++l) h = model[l](h);
        parts.push_back(h.flatten(1));
    }
    model.train(was);
    return cat(parts, 0);
}

}  // namespace soma::gen
