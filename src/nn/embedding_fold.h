// Internal: linear()'s embedding fold (nn/functional_conv.cpp, linear_gathered) and its switch.
//
// When linear() gets the rows an `embedding` gathered, x = table[index], and the table has at
// most a quarter as many rows as x, it computes (table Wᵀ + b)[index] and the gradients through
// the per-table-row sums of dy instead of the three full-size GEMMs. set_embedding_fold(false),
// or SOMA_EMBEDDING_FOLD=0 in the environment, forces the direct path (tests, A/B benchmarks).
#pragma once

#include <cstdint>

namespace soma::nn::detail {

void set_embedding_fold(bool on);
bool embedding_fold();
/// How many times linear() took the fold (tests).
uint64_t embedding_fold_calls();

}  // namespace soma::nn::detail
