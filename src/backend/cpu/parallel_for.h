// Internal: Soma's parallel loop for element-wise kernels, im2col, pooling, normalisation and
// optimizer updates.
//
// parallel_for(n, grain, f) calls f(begin, end) on disjoint contiguous ranges covering [0, n):
// one range per thread (get_num_threads()), on OpenMP's team — the same threads that run
// oneDNN's convolutions and GEMMs, so there is one pool, not several fighting over the cores.
// Work below 2 * grain items, 1 thread, or a call from inside a parallel region runs in the
// caller alone, so small tensors never pay for a wake-up. The split depends only on n and the
// thread count, and every kernel using it writes disjoint outputs, so results are the same
// bits for any thread count.
#pragma once

#include <cstdint>
#include <functional>

namespace soma::cpu {

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& f);

}  // namespace soma::cpu
