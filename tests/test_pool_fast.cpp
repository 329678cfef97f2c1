// The 2x2 stride-2 max-pooling path (pool_kernels.cpp: SSE lanes for float, scalar for double)
// against a plain scan-order reference: values, and where the gradient goes, with ties (the
// first maximum in row-major window order wins), NaN (propagates; the last NaN wins), odd sizes
// (floor mode drops the last row/column) and widths that leave a scalar tail.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "soma/nn/functional.h"
#include "soma/soma.h"

namespace soma {
namespace {

namespace F = soma::nn::functional;

// Reference: scan each window row-major; replace when strictly greater or NaN.
template <class T>
void reference(const std::vector<T>& x, int64_t planes, int64_t h, int64_t w, std::vector<T>& y,
               std::vector<T>& dx) {
    const int64_t ho = h / 2, wo = w / 2;
    y.assign(planes * ho * wo, T(0));
    dx.assign(planes * h * w, T(0));
    for (int64_t p = 0; p < planes; ++p)
        for (int64_t i = 0; i < ho; ++i)
            for (int64_t j = 0; j < wo; ++j) {
                int64_t best = -1;
                T bv = 0;
                for (int64_t a = 0; a < 2; ++a)
                    for (int64_t b = 0; b < 2; ++b) {
                        const int64_t k = p * h * w + (2 * i + a) * w + 2 * j + b;
                        const T v = x[k];
                        if (best < 0 || v > bv || std::isnan(v)) {
                            best = k;
                            bv = v;
                        }
                    }
                y[(p * ho + i) * wo + j] = bv;
                dx[best] += T(1) + T(0.5) * static_cast<T>((p * ho + i) * wo + j);  // dy below
            }
}

template <class T>
void check(int64_t n, int64_t c, int64_t h, int64_t w, uint32_t seed) {
    const DType dt = std::is_same_v<T, float> ? DType::float32 : DType::float64;
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> pick(0, 9);
    std::vector<T> xv(n * c * h * w);
    for (auto& v : xv) {
        const int r = pick(rng);
        v = r == 0 ? std::numeric_limits<T>::quiet_NaN() : static_cast<T>(r % 3);  // many ties
    }
    std::vector<T> y_ref, dx_ref;
    reference(xv, n * c, h, w, y_ref, dx_ref);
    Tensor x = from_vector(xv, {n, c, h, w}).to(dt).requires_grad_();
    Tensor y = F::max_pool2d(x, {.kernel = {2, 2}});
    ASSERT_EQ(y.shape(), (Shape{n, c, h / 2, w / 2}));
    std::vector<T> dyv(y.numel());
    for (size_t k = 0; k < dyv.size(); ++k) dyv[k] = T(1) + T(0.5) * static_cast<T>(k);
    y.backward(from_vector(dyv, y.shape()).to(dt));
    const std::vector<T> yv = y.detach().to_vector<T>(), dxv = x.grad().to_vector<T>();
    for (size_t k = 0; k < yv.size(); ++k) {
        if (std::isnan(y_ref[k]))
            EXPECT_TRUE(std::isnan(yv[k])) << "output " << k;
        else
            EXPECT_EQ(yv[k], y_ref[k]) << "output " << k;
    }
    for (size_t k = 0; k < dxv.size(); ++k) EXPECT_EQ(dxv[k], dx_ref[k]) << "input " << k;
}

TEST(PoolFast, MaxPool2x2MatchesScanOrderFloat) {
    check<float>(2, 3, 8, 16, 1);  // whole SSE blocks
    check<float>(2, 3, 7, 9, 2);   // odd sizes: floor, scalar tail
    check<float>(1, 2, 28, 30, 3);
    check<float>(3, 1, 2, 2, 4);  // one window per plane
}

TEST(PoolFast, MaxPool2x2MatchesScanOrderDouble) {
    check<double>(2, 3, 8, 16, 5);
    check<double>(2, 3, 7, 9, 6);
}

}  // namespace
}  // namespace soma
