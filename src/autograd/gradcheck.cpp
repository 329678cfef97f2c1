// gradcheck (placeholder: being written)
#include "soma/gradcheck.h"
namespace soma {
std::string gradcheck(const GradFn&, const std::vector<Tensor>&, GradcheckOptions) {
    throw Error("not implemented yet");
}
std::string gradgradcheck(const GradFn&, const std::vector<Tensor>&, GradcheckOptions) {
    throw Error("not implemented yet");
}
}  // namespace soma
