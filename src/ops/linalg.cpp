// Linear algebra. (placeholder: being written)
#include "ops/op_util.h"

namespace soma {
#define SOMA_TODO(sig) \
    sig { throw Error("not implemented yet"); }
SOMA_TODO(Tensor matmul(const Tensor&, const Tensor&))
SOMA_TODO(Tensor mm(const Tensor&, const Tensor&))
SOMA_TODO(Tensor bmm(const Tensor&, const Tensor&))
SOMA_TODO(Tensor outer(const Tensor&, const Tensor&))
}  // namespace soma
