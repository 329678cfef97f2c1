// Reductions. (placeholder: being written)
#include "ops/op_util.h"

namespace soma {
#define SOMA_TODO(sig) \
    sig { throw Error("not implemented yet"); }
SOMA_TODO(Tensor mean(const Tensor&, const Shape&, bool))
SOMA_TODO(Tensor prod(const Tensor&, const Shape&, bool))
SOMA_TODO(Tensor max(const Tensor&))
SOMA_TODO(Tensor min(const Tensor&))
SOMA_TODO(ValuesIndices max(const Tensor&, int64_t, bool))
SOMA_TODO(ValuesIndices min(const Tensor&, int64_t, bool))
SOMA_TODO(Tensor amax(const Tensor&, const Shape&, bool))
SOMA_TODO(Tensor amin(const Tensor&, const Shape&, bool))
SOMA_TODO(Tensor argmax(const Tensor&))
SOMA_TODO(Tensor argmax(const Tensor&, int64_t, bool))
SOMA_TODO(Tensor argmin(const Tensor&))
SOMA_TODO(Tensor argmin(const Tensor&, int64_t, bool))
SOMA_TODO(Tensor var(const Tensor&, const Shape&, bool, bool))
SOMA_TODO(Tensor std(const Tensor&, const Shape&, bool, bool))
SOMA_TODO(Tensor norm(const Tensor&, double, const Shape&, bool))
SOMA_TODO(Tensor logsumexp(const Tensor&, const Shape&, bool))
SOMA_TODO(Tensor softmax(const Tensor&, int64_t))
SOMA_TODO(Tensor log_softmax(const Tensor&, int64_t))
}  // namespace soma
