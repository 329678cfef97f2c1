// Thread count (Soma's setting, OpenMP's team, OpenBLAS's pool kept equal) and parallel_for.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <thread>

#include "backend/cpu/parallel_for.h"
#include "soma/error.h"
#include "soma/parallel.h"

extern "C" void openblas_set_num_threads(int);

namespace soma {

namespace {
std::atomic<int>& threads() {
    static std::atomic<int> n{[] {
        int h = static_cast<int>(std::thread::hardware_concurrency());
        return h > 0 ? h : 1;
    }()};
    return n;
}
}  // namespace

void set_num_threads(int n) {
    SOMA_CHECK_VALUE(n >= 1, "set_num_threads: need at least 1 thread, got ", n);
    threads() = n;
    omp_set_num_threads(n);
}

int get_num_threads() { return threads(); }

namespace {
// OpenBLAS never starts its own pool: Soma splits large GEMMs over OpenMP's team and calls
// OpenBLAS single-threaded per block (cpu_backend.cpp), so one pool serves everything.
[[maybe_unused]] const bool g_blas_single = [] {
    openblas_set_num_threads(1);
    return true;
}();
}  // namespace

namespace cpu {

// One pool for everything: Soma's kernels run on OpenMP's team, the same threads oneDNN's
// primitives and sgemm use, so no second pool spins or sleeps beside it (two pools on two cores
// made 2-thread runs slower than 1-thread ones). Chunk i of c covers [n i / c, n (i + 1) / c):
// the split depends only on n and the thread count. A call from inside a parallel region runs
// in the caller alone. Exceptions are carried out of the region and rethrown.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& f) {
    if (n <= 0) return;
    const int t = get_num_threads();
    const int64_t by_grain = grain > 0 ? n / grain : n;
    const int chunks = static_cast<int>(std::min<int64_t>(t, by_grain));
    if (chunks < 2 || omp_in_parallel()) {
        f(0, n);
        return;
    }
    std::exception_ptr error;
    std::atomic<bool> failed{false};
#pragma omp parallel num_threads(chunks)
    {
        const int64_t c = omp_get_num_threads(), i = omp_get_thread_num();
        const int64_t b = n * i / c, e = n * (i + 1) / c;
        try {
            if (b < e) f(b, e);
        } catch (...) {
            if (!failed.exchange(true)) error = std::current_exception();
        }
    }
    if (error) std::rethrow_exception(error);
}

}  // namespace cpu
}  // namespace soma
