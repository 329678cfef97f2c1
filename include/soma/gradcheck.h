// soma/gradcheck.h — numerical gradient checks for your own ops.
//
// Compares the autograd Jacobian of fn at float64 `inputs` with central differences
// (x ± eps). Returns an empty string when they agree, else a description of the first
// mismatch (input, element, analytic, numeric). gradgradcheck does the same for the
// gradients themselves (double backward).
//
//     auto err = soma::gradcheck([](auto& in) { return soma::tanh(in[0]); }, {x});
//     EXPECT_EQ(err, "");
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "soma/tensor.h"

namespace soma {

using GradFn = std::function<Tensor(const std::vector<Tensor>&)>;

struct GradcheckOptions {
    double eps = 1e-6;
    double atol = 1e-5;
    double rtol = 1e-3;
};

std::string gradcheck(const GradFn& fn, const std::vector<Tensor>& inputs,
                      GradcheckOptions opt = {});
std::string gradgradcheck(const GradFn& fn, const std::vector<Tensor>& inputs,
                          GradcheckOptions opt = {});

}  // namespace soma
