// Thread count: Soma's own setting plus OpenBLAS's pool (kept equal so the two never fight
// over the cores).
#include <cblas.h>

#include <atomic>
#include <thread>

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
    openblas_set_num_threads(n);
}

int get_num_threads() { return threads(); }

}  // namespace soma
