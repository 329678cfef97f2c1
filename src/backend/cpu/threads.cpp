// Thread count: Soma's own setting plus OpenBLAS's pool and OpenMP's (oneDNN), kept equal so
// they never fight over the cores.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

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
    openblas_set_num_threads(n);
    omp_set_num_threads(n);
}

int get_num_threads() { return threads(); }

namespace cpu {
namespace {

thread_local bool tl_in_worker = false;

// Workers run chunk i of the current job for i in [1, chunks); the caller runs chunk 0.
class Pool {
  public:
    ~Pool() {
        {
            std::lock_guard<std::mutex> lk(mu_);
            stop_ = true;
        }
        wake_.notify_all();
        for (auto& t : workers_) t.join();
    }

    // False when another thread is using the pool (the caller then runs the work alone).
    bool run(int64_t n, int chunks, const std::function<void(int64_t, int64_t)>& f) {
        std::unique_lock<std::mutex> busy(run_mu_, std::try_to_lock);
        if (!busy.owns_lock()) return false;
        ensure_workers(chunks - 1);
        {
            std::lock_guard<std::mutex> lk(mu_);
            f_ = &f;
            n_ = n;
            chunks_ = chunks;
            pending_ = chunks - 1;
            ++generation_;
        }
        wake_.notify_all();
        run_chunk(0);
        std::unique_lock<std::mutex> lk(mu_);
        done_.wait(lk, [&] { return pending_ == 0; });
        f_ = nullptr;
        return true;
    }

  private:
    void run_chunk(int i) const {
        const int64_t b = n_ * i / chunks_, e = n_ * (i + 1) / chunks_;
        if (b < e) (*f_)(b, e);
    }

    void ensure_workers(int want) {
        while (static_cast<int>(workers_.size()) < want) {
            int id = static_cast<int>(workers_.size()) + 1;  // chunk index it serves
            workers_.emplace_back([this, id] { loop(id); });
        }
    }

    void loop(int id) {
        tl_in_worker = true;
        uint64_t seen = 0;
        for (;;) {
            std::unique_lock<std::mutex> lk(mu_);
            wake_.wait(lk, [&] { return stop_ || generation_ != seen; });
            if (stop_) return;
            seen = generation_;
            if (id >= chunks_) continue;  // this job has fewer chunks than workers
            lk.unlock();
            run_chunk(id);
            lk.lock();
            if (--pending_ == 0) done_.notify_one();
        }
    }

    std::mutex run_mu_;  // one job at a time
    std::mutex mu_;
    std::condition_variable wake_, done_;
    std::vector<std::thread> workers_;
    const std::function<void(int64_t, int64_t)>* f_ = nullptr;
    int64_t n_ = 0;
    int chunks_ = 1, pending_ = 0;
    uint64_t generation_ = 0;
    bool stop_ = false;
};

Pool& pool() {
    static Pool p;
    return p;
}

}  // namespace

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& f) {
    if (n <= 0) return;
    const int t = get_num_threads();
    const int64_t by_grain = grain > 0 ? n / grain : n;
    const int chunks = static_cast<int>(std::min<int64_t>(t, by_grain));
    if (chunks < 2 || tl_in_worker || !pool().run(n, chunks, f)) f(0, n);
}

}  // namespace cpu
}  // namespace soma
