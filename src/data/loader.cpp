// DataLoader: one Epoch object per iteration owns the sample order and, with prefetch, a worker
// thread feeding a bounded queue.
//
// Why a bounded queue of whole batches: the training step pops a finished batch (a pointer move)
// while the worker gathers the next ones; `prefetch` bounds the memory held. The worker makes
// batches strictly in order, so its output (transform randomness included) equals what the
// on-demand path makes. The worker never owns the Epoch (no shared_ptr to it), so the Epoch's
// destructor can always stop and join it.
#include "soma/data/loader.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <numeric>
#include <thread>
#include <utility>
#include <vector>

#include "soma/autograd.h"

namespace soma::data {

struct DataLoader::Epoch {
    std::shared_ptr<const Dataset> dataset;
    // The loader's own options, not a copy: a stateful transform (a lambda owning a Generator)
    // must carry its state from epoch to epoch. Safe because the loader stops this Epoch (no
    // more make() calls) before it dies.
    const DataLoaderOptions& options;
    std::vector<int64_t> order;
    int64_t num_batches = 0;
    int64_t consumed = 0;

    std::thread worker;
    std::mutex mutex;
    std::condition_variable cv;
    std::deque<Example> queue;
    std::exception_ptr error;
    bool stop = false;
    bool worker_done = false;

    Epoch(std::shared_ptr<const Dataset> ds, const DataLoaderOptions& opt, std::vector<int64_t> ord,
          int64_t batches)
        : dataset(std::move(ds)), options(opt), order(std::move(ord)), num_batches(batches) {
        if (options.prefetch > 0 && num_batches > 0) worker = std::thread([this] { run(); });
    }
    ~Epoch() { shutdown(); }
    Epoch(const Epoch&) = delete;
    Epoch& operator=(const Epoch&) = delete;

    // Batch b: order[b * bs, min((b + 1) * bs, n)), gathered, transformed, grad-free.
    Example make(int64_t b) const {
        NoGradGuard no_grad;
        const int64_t bs = options.batch_size;
        const auto n = static_cast<int64_t>(order.size());
        std::vector<int64_t> idx(order.begin() + b * bs, order.begin() + std::min(n, (b + 1) * bs));
        Example e = dataset->get_batch(idx);
        if (options.transform) e = options.transform(std::move(e));
        if (e.input.defined() && e.input.requires_grad()) e.input = e.input.detach();
        if (e.target.defined() && e.target.requires_grad()) e.target = e.target.detach();
        return e;
    }

    void run() {
        for (int64_t b = 0; b < num_batches; ++b) {
            {
                std::unique_lock lock(mutex);
                cv.wait(lock, [&] {
                    return stop || static_cast<int64_t>(queue.size()) < options.prefetch;
                });
                if (stop) break;
            }
            Example e;
            try {
                e = make(b);
            } catch (...) {
                std::lock_guard lock(mutex);
                error = std::current_exception();
                break;
            }
            {
                std::lock_guard lock(mutex);
                queue.push_back(std::move(e));
            }
            cv.notify_all();
        }
        {
            std::lock_guard lock(mutex);
            worker_done = true;
        }
        cv.notify_all();
    }

    // The next batch into `out`; false at the end (or once stopped). Rethrows a worker error
    // after the batches made before it.
    bool next(Example& out) {
        if (consumed >= num_batches) return false;
        if (!worker.joinable()) {
            if (stop) return false;
            int64_t b = consumed++;
            try {
                out = make(b);
            } catch (...) {
                consumed = num_batches;
                throw;
            }
            return true;
        }
        std::unique_lock lock(mutex);
        cv.wait(lock, [&] { return stop || worker_done || !queue.empty(); });
        if (!queue.empty()) {
            out = std::move(queue.front());
            queue.pop_front();
            ++consumed;
            lock.unlock();
            cv.notify_all();
            return true;
        }
        consumed = num_batches;
        if (error) {
            std::exception_ptr e = std::exchange(error, nullptr);
            std::rethrow_exception(e);
        }
        return false;
    }

    void shutdown() {
        {
            std::lock_guard lock(mutex);
            stop = true;
        }
        cv.notify_all();
        if (worker.joinable()) worker.join();
    }
};

DataLoader::DataLoader(const Dataset& dataset, DataLoaderOptions options)
    // Non-owning: an aliasing shared_ptr with no control block.
    : DataLoader(std::shared_ptr<const Dataset>(std::shared_ptr<const Dataset>(), &dataset),
                 std::move(options)) {}

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options)
    : dataset_(std::move(dataset)), options_(std::move(options)) {
    SOMA_CHECK_VALUE(dataset_ != nullptr, "DataLoader: dataset is null");
    SOMA_CHECK_VALUE(options_.batch_size > 0, "DataLoader: batch_size must be positive: got ",
                     options_.batch_size);
    SOMA_CHECK_VALUE(options_.prefetch >= 0, "DataLoader: prefetch must not be negative: got ",
                     options_.prefetch);
}

DataLoader::~DataLoader() { stop_active(); }

void DataLoader::stop_active() {
    if (active_) active_->shutdown();
    active_.reset();
}

int64_t DataLoader::size() const {
    const int64_t n = dataset_->size(), bs = options_.batch_size;
    return options_.drop_last ? n / bs : (n + bs - 1) / bs;
}

std::vector<int64_t> DataLoader::order(int64_t epoch) const {
    const int64_t n = dataset_->size();
    if (options_.shuffle)
        // Each epoch reads its own 2^32-block stretch of the Philox stream for this seed.
        return random_permutation(n, options_.seed, static_cast<uint64_t>(epoch) << 32);
    std::vector<int64_t> o(static_cast<size_t>(n));
    std::iota(o.begin(), o.end(), int64_t{0});
    return o;
}

DataLoader::Iterator DataLoader::begin() {
    stop_active();
    const int64_t e = epoch_++;
    active_ = std::make_shared<Epoch>(dataset_, options_, order(e), size());
    return Iterator(active_);
}

DataLoader::Iterator::Iterator(std::shared_ptr<Epoch> epoch) : epoch_(std::move(epoch)) { ++*this; }

DataLoader::Iterator& DataLoader::Iterator::operator++() {
    if (!epoch_) return *this;
    bool more = false;
    try {
        more = epoch_->next(current_);
    } catch (...) {
        epoch_.reset();
        current_ = Example();
        throw;
    }
    if (!more) {
        epoch_.reset();
        current_ = Example();
    }
    return *this;
}

}  // namespace soma::data
