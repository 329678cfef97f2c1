// soma/data/loader.h — DataLoader: batches of a Dataset, shuffled and prefetched.
//
// Contract: iterating a DataLoader yields size() batches (Example with a leading batch dim) and
// is one epoch. With shuffle, the order is a permutation that depends only on (seed, epoch), so
// the same seed gives the same batches on every machine and whether prefetch is on or off. The
// epoch used by an iteration is epoch() at begin(); each begin() then advances it by one, and
// set_epoch(e) picks the next one explicitly (as DistributedSampler.set_epoch). Batches are made
// by dataset.get_batch (a row gather for TensorDataset), then `transform`, under NoGradGuard:
// their tensors never require grad. With prefetch > 0 a background thread keeps up to `prefetch`
// batches ready; an exception there (dataset or transform) is rethrown by the iterator, and
// destroying the loader or starting a new iteration mid-epoch stops and joins the thread.
// One iteration at a time per loader: begin() ends the previous one.
//
//     soma::data::DataLoader loader(train, {.batch_size = 64, .shuffle = true, .seed = 1});
//     for (int epoch = 0; epoch < 10; ++epoch)
//         for (const soma::data::Example& b : loader) step(b.input, b.target);
#pragma once

#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>

#include "soma/data/dataset.h"

namespace soma::data {

/// A function on a batch (or an example), e.g. from transforms.h.
using Transform = std::function<Example(Example)>;

struct DataLoaderOptions {
    int64_t batch_size = 1;
    bool shuffle = false;
    bool drop_last = false;  // drop the last batch when it has fewer than batch_size examples
    uint64_t seed = 0;
    int64_t prefetch = 2;           // batches prepared ahead in a background thread; 0 = on demand
    Transform transform = nullptr;  // optional, applied to each batch in the producing thread
};

class DataLoader {
    struct Epoch;

  public:
    /// Non-owning: `dataset` must outlive the loader and its iterators.
    DataLoader(const Dataset& dataset, DataLoaderOptions options = {});
    DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options = {});
    ~DataLoader();
    DataLoader(const DataLoader&) = delete;
    DataLoader& operator=(const DataLoader&) = delete;

    class Iterator {
      public:
        using iterator_category = std::input_iterator_tag;
        using value_type = Example;
        using difference_type = std::ptrdiff_t;
        using pointer = const Example*;
        using reference = const Example&;

        Iterator() = default;
        const Example& operator*() const { return current_; }
        const Example* operator->() const { return &current_; }
        Iterator& operator++();
        void operator++(int) { ++*this; }
        /// Only comparisons with end() are meaningful.
        bool operator==(const Iterator& o) const { return done() == o.done(); }

      private:
        friend class DataLoader;
        explicit Iterator(std::shared_ptr<Epoch> epoch);
        bool done() const { return epoch_ == nullptr; }
        std::shared_ptr<Epoch> epoch_;
        Example current_;
    };

    /// Starts an epoch (see the contract above); may rethrow the first batch's exception.
    Iterator begin();
    Iterator end() { return Iterator(); }

    /// Number of batches per epoch.
    int64_t size() const;
    const Dataset& dataset() const { return *dataset_; }
    const DataLoaderOptions& options() const { return options_; }
    /// The epoch the next begin() uses.
    int64_t epoch() const { return epoch_; }
    void set_epoch(int64_t epoch) { epoch_ = epoch; }
    /// The sample order of epoch `epoch` (identity when not shuffling).
    std::vector<int64_t> order(int64_t epoch) const;

  private:
    void stop_active();
    std::shared_ptr<const Dataset> dataset_;
    DataLoaderOptions options_;
    int64_t epoch_ = 0;
    std::shared_ptr<Epoch> active_;
};

}  // namespace soma::data
