// Internal: the sum of a contiguous row with eight partial sums in T (the loop vectorises),
// combined in double. Used where per-channel sums walk rows (bias gradients, batch norm).
#pragma once

#include <cstdint>

namespace soma::cpu {

template <class T>
double row_sum(const T* p, int64_t n) {
    T acc[8] = {};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; ++l) acc[l] += p[i + l];
    double r = 0;
    for (; i < n; ++i) r += p[i];
    for (int l = 0; l < 8; ++l) r += acc[l];
    return r;
}

}  // namespace soma::cpu
