// soma/data/dataset.h — map-style datasets: an indexable collection of (input, target) pairs.
//
// Contract: a Dataset has size() examples; get(i) returns example i for 0 <= i < size() (else
// IndexError). get_batch(indices) returns the examples stacked along a new leading dim; the
// default stacks get(i) (every example must have the same shapes and dtypes), TensorDataset and
// Subset override it with a row gather (one memcpy per row). Datasets are data: the tensors they
// return never require grad. Everything is CPU-only and const methods are thread-safe for reads.
//
//     auto ds = std::make_shared<soma::data::TensorDataset>(x, y);   // x [N, 4], y [N]
//     auto parts = soma::data::random_split(ds, {0.8, 0.2}, /*seed=*/42);
//     soma::data::Example e = parts[0].get(0);                       // e.input [4], e.target []
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "soma/tensor.h"

namespace soma::data {

/// One example (input, target); a batch is the same struct with a leading batch dim.
/// `target` may be undefined for unlabelled data.
struct Example {
    Tensor input;
    Tensor target;
};

class Dataset {
  public:
    virtual ~Dataset() = default;
    virtual int64_t size() const = 0;
    virtual Example get(int64_t i) const = 0;
    /// The examples at `indices`, stacked: input [B, ...], target [B, ...]. Tensors are fresh
    /// contiguous copies that do not require grad.
    virtual Example get_batch(const std::vector<int64_t>& indices) const;
};

/// Stacks examples along a new dim 0 (memcpy per example). All inputs must share one shape and
/// dtype, likewise all targets (all defined or all undefined). ShapeError / DTypeError otherwise.
Example collate(const std::vector<Example>& examples);

/// Rows of `inputs` and `targets` (first dims must match). Stores contiguous, detached tensors;
/// get(i) returns views inputs[i], targets[i].
class TensorDataset : public Dataset {
  public:
    TensorDataset() = default;
    explicit TensorDataset(const Tensor& inputs, const Tensor& targets = Tensor());
    int64_t size() const override { return size_; }
    Example get(int64_t i) const override;
    Example get_batch(const std::vector<int64_t>& indices) const override;
    const Tensor& inputs() const { return inputs_; }
    const Tensor& targets() const { return targets_; }

  private:
    Tensor inputs_, targets_;
    int64_t size_ = 0;
};

/// The examples of `dataset` at `indices` (each in [0, dataset->size())), in that order.
class Subset : public Dataset {
  public:
    Subset(std::shared_ptr<const Dataset> dataset, std::vector<int64_t> indices);
    int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
    Example get(int64_t i) const override;
    Example get_batch(const std::vector<int64_t>& indices) const override;
    const std::vector<int64_t>& indices() const { return indices_; }
    const std::shared_ptr<const Dataset>& dataset() const { return dataset_; }

  private:
    std::shared_ptr<const Dataset> dataset_;
    std::vector<int64_t> indices_;
};

/// Splits a random permutation of `dataset` (a function of `seed` only) into consecutive parts.
/// `lengths` are either counts summing to dataset->size(), or fractions summing to 1 (as in
/// PyTorch: floor(n * f) each, the remainder handed out one by one from the first part).
std::vector<Subset> random_split(std::shared_ptr<const Dataset> dataset,
                                 const std::vector<double>& lengths, uint64_t seed);

/// A uniformly random permutation of [0, n): Fisher-Yates over Generator::philox(seed, counter)
/// blocks from counter `offset` on (one block per draw), identical on every machine.
std::vector<int64_t> random_permutation(int64_t n, uint64_t seed, uint64_t offset = 0);

}  // namespace soma::data
