// Internal: N-d strided iteration over K operands sharing one shape.
//
// Dims of size 1 are dropped and adjacent dims that are contiguous for every operand are
// merged, so the common cases (contiguous, broadcast row, transposed) become one or two flat
// loops. The callback receives K byte pointers, the inner length and K inner byte strides.
#pragma once

#include <array>
#include <cstdint>

#include "core/tensor_impl.h"

namespace soma::cpu {

template <int K>
struct StridedLoop {
    int ndim = 0;
    int64_t sizes[kMaxDims] = {};
    int64_t strides[K][kMaxDims] = {};  // bytes

    StridedLoop(const Shape& shape, const std::array<const Shape*, K>& st,
                const std::array<int64_t, K>& elsize) {
        // Keep non-unit dims, outermost first.
        for (size_t d = 0; d < shape.size(); ++d) {
            if (shape[d] == 1) continue;
            sizes[ndim] = shape[d];
            for (int k = 0; k < K; ++k) strides[k][ndim] = (*st[k])[d] * elsize[k];
            ++ndim;
        }
        // Merge dim i into dim i+1 when contiguous for every operand.
        int w = 0;
        for (int d = 0; d < ndim; ++d) {
            if (w > 0) {
                bool merge = true;
                for (int k = 0; k < K; ++k)
                    if (strides[k][w - 1] != strides[k][d] * sizes[d]) merge = false;
                if (merge) {
                    sizes[w - 1] *= sizes[d];
                    for (int k = 0; k < K; ++k) strides[k][w - 1] = strides[k][d];
                    continue;
                }
            }
            sizes[w] = sizes[d];
            for (int k = 0; k < K; ++k) strides[k][w] = strides[k][d];
            ++w;
        }
        ndim = w;
    }

    /// f(std::array<char*, K> ptrs, int64_t n, const std::array<int64_t, K>& inner_strides)
    template <class F>
    void run(std::array<char*, K> base, F&& f) const {
        if (ndim == 0) {
            std::array<int64_t, K> s{};
            f(base, int64_t{1}, s);
            return;
        }
        std::array<int64_t, K> inner;
        for (int k = 0; k < K; ++k) inner[k] = strides[k][ndim - 1];
        int64_t n = sizes[ndim - 1];
        int outer = ndim - 1;
        int64_t idx[kMaxDims] = {};
        std::array<char*, K> p = base;
        for (;;) {
            f(p, n, inner);
            int d = outer - 1;
            for (; d >= 0; --d) {
                ++idx[d];
                for (int k = 0; k < K; ++k) p[k] += strides[k][d];
                if (idx[d] < sizes[d]) break;
                for (int k = 0; k < K; ++k) p[k] -= strides[k][d] * sizes[d];
                idx[d] = 0;
            }
            if (d < 0) return;
        }
    }
};

}  // namespace soma::cpu
