// Shape and indexing ops. (placeholder: being written)
#include "ops/op_util.h"

namespace soma {
#define SOMA_TODO(sig) \
    sig { throw Error("not implemented yet"); }
SOMA_TODO(Tensor cat(const std::vector<Tensor>&, int64_t))
SOMA_TODO(Tensor stack(const std::vector<Tensor>&, int64_t))
SOMA_TODO(std::vector<Tensor> split(const Tensor&, int64_t, int64_t))
SOMA_TODO(std::vector<Tensor> split(const Tensor&, const std::vector<int64_t>&, int64_t))
SOMA_TODO(std::vector<Tensor> chunk(const Tensor&, int64_t, int64_t))
SOMA_TODO(Tensor index_select(const Tensor&, int64_t, const Tensor&))
SOMA_TODO(Tensor gather(const Tensor&, int64_t, const Tensor&))
SOMA_TODO(Tensor scatter_add(const Tensor&, int64_t, const Tensor&, const Tensor&))
SOMA_TODO(Tensor embedding(const Tensor&, const Tensor&, int64_t))
SOMA_TODO(Tensor one_hot(const Tensor&, int64_t))
SOMA_TODO(Tensor pad(const Tensor&, const std::vector<int64_t>&, double))
SOMA_TODO(Tensor repeat(const Tensor&, const Shape&))
SOMA_TODO(Tensor flip(const Tensor&, const Shape&))
SOMA_TODO(Tensor tril(const Tensor&, int64_t))
SOMA_TODO(Tensor triu(const Tensor&, int64_t))
}  // namespace soma
