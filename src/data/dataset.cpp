// Datasets: collation by memcpy, TensorDataset's row gather, Subset, random_split.
//
// Batches are built by copying bytes, never through recorded ops: data does not need a graph,
// and one memcpy per row beats stacking per-example tensors (no per-row allocation, no kernel
// dispatch). Every tensor made here is a fresh contiguous leaf that does not require grad.
#include "soma/data/dataset.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "core/tensor_impl.h"
#include "soma/random.h"

namespace soma::data {

namespace {

void check_cpu(const Tensor& t, const char* op) {
    SOMA_CHECK_T(t.device() == Device::cpu(), DeviceError, op,
                 ": data tensors must be on the cpu: got ", t.device().str());
}

// Stacks same-shape tensors (each made contiguous) along a new dim 0. `what` is "input" or
// "target" for messages.
Tensor stack_bytes(const std::vector<const Tensor*>& parts, const char* what) {
    const Tensor& first = *parts[0];
    for (size_t i = 1; i < parts.size(); ++i) {
        SOMA_CHECK_SHAPE(parts[i]->shape() == first.shape(), "collate: example ", i, " has ", what,
                         " shape ", parts[i]->shape(), ", expected ", first.shape(),
                         " (the shape of example 0). Examples in a batch must have one shape");
        SOMA_CHECK_DTYPE(parts[i]->dtype() == first.dtype(), "collate: example ", i, " has ", what,
                         " dtype ", parts[i]->dtype(), ", expected ", first.dtype(),
                         " (the dtype of example 0)");
    }
    Shape shape = first.shape();
    shape.insert(shape.begin(), static_cast<int64_t>(parts.size()));
    Tensor out = make_tensor(shape, first.dtype());
    const size_t bytes = static_cast<size_t>(first.numel()) * dtype_size(first.dtype());
    auto* dst = static_cast<char*>(out.raw_data());
    for (size_t i = 0; i < parts.size(); ++i) {
        check_cpu(*parts[i], "collate");
        Tensor c = parts[i]->contiguous();
        if (bytes) std::memcpy(dst + i * bytes, c.raw_data(), bytes);
    }
    return out;
}

// Copies rows `indices` of a contiguous tensor into a fresh [B, ...] tensor.
Tensor gather_rows(const Tensor& src, const std::vector<int64_t>& indices) {
    Shape shape = src.shape();
    shape[0] = static_cast<int64_t>(indices.size());
    Tensor out = make_tensor(shape, src.dtype());
    const int64_t n = src.size(0);
    const size_t row =
        n ? static_cast<size_t>(src.numel() / n) * dtype_size(src.dtype()) : size_t{0};
    const auto* s = static_cast<const char*>(src.raw_data());
    auto* d = static_cast<char*>(out.raw_data());
    for (size_t i = 0; i < indices.size(); ++i)
        if (row) std::memcpy(d + i * row, s + static_cast<size_t>(indices[i]) * row, row);
    return out;
}

void check_index(int64_t i, int64_t size, const char* op) {
    SOMA_CHECK_INDEX(i >= 0 && i < size, op, ": index ", i, " is out of range for a dataset of ",
                     size, " examples");
}

}  // namespace

Example collate(const std::vector<Example>& examples) {
    SOMA_CHECK_VALUE(!examples.empty(), "collate: got no examples, expected at least one");
    std::vector<const Tensor*> inputs, targets;
    const bool has_target = examples[0].target.defined();
    for (size_t i = 0; i < examples.size(); ++i) {
        SOMA_CHECK_VALUE(examples[i].input.defined(), "collate: example ", i,
                         " has no input tensor");
        SOMA_CHECK_VALUE(examples[i].target.defined() == has_target, "collate: example ", i,
                         has_target ? " has no target" : " has a target", " but example 0 ",
                         has_target ? "has one" : "has none");
        inputs.push_back(&examples[i].input);
        if (has_target) targets.push_back(&examples[i].target);
    }
    Example out;
    out.input = stack_bytes(inputs, "input");
    if (has_target) out.target = stack_bytes(targets, "target");
    return out;
}

Example Dataset::get_batch(const std::vector<int64_t>& indices) const {
    std::vector<Example> examples;
    examples.reserve(indices.size());
    for (int64_t i : indices) examples.push_back(get(i));
    return collate(examples);
}

// ---- TensorDataset ---------------------------------------------------------------------------

TensorDataset::TensorDataset(const Tensor& inputs, const Tensor& targets) {
    SOMA_CHECK_VALUE(inputs.defined(), "TensorDataset: inputs are undefined");
    SOMA_CHECK_SHAPE(inputs.dim() >= 1, "TensorDataset: inputs need a first (example) dim: got ",
                     "shape ", inputs.shape());
    check_cpu(inputs, "TensorDataset");
    if (targets.defined()) {
        check_cpu(targets, "TensorDataset");
        SOMA_CHECK_SHAPE(targets.dim() >= 1 && targets.size(0) == inputs.size(0),
                         "TensorDataset: inputs and targets must have the same first dim: got ",
                         "inputs ", inputs.shape(), " and targets ", targets.shape());
        targets_ = targets.detach().contiguous();
    }
    inputs_ = inputs.detach().contiguous();
    size_ = inputs.size(0);
}

Example TensorDataset::get(int64_t i) const {
    check_index(i, size_, "TensorDataset::get");
    Example e;
    e.input = inputs_.select(0, i);
    if (targets_.defined()) e.target = targets_.select(0, i);
    return e;
}

Example TensorDataset::get_batch(const std::vector<int64_t>& indices) const {
    for (int64_t i : indices) check_index(i, size_, "TensorDataset::get_batch");
    Example e;
    e.input = gather_rows(inputs_, indices);
    if (targets_.defined()) e.target = gather_rows(targets_, indices);
    return e;
}

// ---- Subset ----------------------------------------------------------------------------------

Subset::Subset(std::shared_ptr<const Dataset> dataset, std::vector<int64_t> indices)
    : dataset_(std::move(dataset)), indices_(std::move(indices)) {
    SOMA_CHECK_VALUE(dataset_ != nullptr, "Subset: dataset is null");
    const int64_t n = dataset_->size();
    for (int64_t i : indices_) check_index(i, n, "Subset");
}

Example Subset::get(int64_t i) const {
    check_index(i, size(), "Subset::get");
    return dataset_->get(indices_[i]);
}

Example Subset::get_batch(const std::vector<int64_t>& indices) const {
    std::vector<int64_t> mapped(indices.size());
    for (size_t k = 0; k < indices.size(); ++k) {
        check_index(indices[k], size(), "Subset::get_batch");
        mapped[k] = indices_[indices[k]];
    }
    return dataset_->get_batch(mapped);
}

// ---- random_split ----------------------------------------------------------------------------

std::vector<int64_t> random_permutation(int64_t n, uint64_t seed, uint64_t offset) {
    std::vector<int64_t> p(static_cast<size_t>(std::max<int64_t>(n, 0)));
    std::iota(p.begin(), p.end(), int64_t{0});
    // Fisher-Yates from the back: p[i] swaps with a uniform j in [0, i]. Each draw reads the
    // Philox block at the next counter (the same as Generator::next_below today), written out
    // here so that the published orders depend on Philox alone.
    uint64_t counter = offset;
    for (int64_t i = n - 1; i > 0; --i) {
        const auto range = static_cast<uint64_t>(i) + 1;
        const uint64_t limit = UINT64_MAX - UINT64_MAX % range;  // rejection keeps it unbiased
        uint64_t v = 0;
        do {
            auto w = Generator::philox(seed, counter++);
            v = (static_cast<uint64_t>(w[0]) << 32) | w[1];
        } while (v >= limit);
        std::swap(p[i], p[static_cast<int64_t>(v % range)]);
    }
    return p;
}

std::vector<Subset> random_split(std::shared_ptr<const Dataset> dataset,
                                 const std::vector<double>& lengths, uint64_t seed) {
    SOMA_CHECK_VALUE(dataset != nullptr, "random_split: dataset is null");
    SOMA_CHECK_VALUE(!lengths.empty(), "random_split: got no lengths");
    const int64_t n = dataset->size();
    double total = 0;
    for (double l : lengths) {
        SOMA_CHECK_VALUE(l >= 0, "random_split: lengths must not be negative: got ", l);
        total += l;
    }
    std::vector<int64_t> counts;
    if (std::abs(total - 1.0) < 1e-9 && total <= 1.0 + 1e-12) {
        // Fractions (torch.utils.data.random_split): floor each, then the remainder round-robin.
        int64_t assigned = 0;
        for (double f : lengths) {
            counts.push_back(static_cast<int64_t>(std::floor(static_cast<double>(n) * f)));
            assigned += counts.back();
        }
        for (int64_t r = 0; r < n - assigned; ++r) counts[r % counts.size()] += 1;
    } else {
        for (double l : lengths) {
            SOMA_CHECK_VALUE(l == std::floor(l), "random_split: lengths must be whole counts or ",
                             "fractions summing to 1: got ", l);
            counts.push_back(static_cast<int64_t>(l));
        }
    }
    int64_t sum = std::accumulate(counts.begin(), counts.end(), int64_t{0});
    SOMA_CHECK_VALUE(sum == n, "random_split: lengths sum to ", sum, ", expected the dataset ",
                     "size ", n);
    std::vector<int64_t> perm = random_permutation(n, seed);
    std::vector<Subset> parts;
    int64_t start = 0;
    for (int64_t c : counts) {
        parts.emplace_back(dataset,
                           std::vector<int64_t>(perm.begin() + start, perm.begin() + start + c));
        start += c;
    }
    return parts;
}

}  // namespace soma::data
