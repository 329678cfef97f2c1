// gradcheck / gradgradcheck: the autograd Jacobian against float64 central differences.
//
// For f: inputs -> y, the analytic Jacobian row m (d y_m / d x) comes from one vector-Jacobian
// product with a one-hot grad_output e_m; the numeric column k is
//     (f(x + eps e_k) - f(x - eps e_k)) / (2 eps).
// Entries agree when |analytic - numeric| <= atol + rtol |numeric|.
//
// gradgradcheck applies the same test to the gradient function
//     G_j(x) = d <f(x), v> / d x_j      (create_graph = true, v a fixed pseudo-random grad_output)
// so the backward closures themselves are differentiated (double backward).
//
// Inputs are cloned (detached, contiguous) first and perturbed in place on the clones under
// NoGradGuard, so the caller's tensors and their .grad() are never touched.
#include "soma/gradcheck.h"

#include <cmath>
#include <cstdint>
#include <iomanip>
#include <sstream>

#include "soma/autograd.h"

namespace soma {
namespace {

struct Prepared {
    std::vector<Tensor> inputs;  // private clones (requires-grad ones are fresh leaves)
    std::vector<size_t> diff;    // indices of inputs that require grad
};

Prepared prepare(const std::vector<Tensor>& inputs, const char* op) {
    Prepared p;
    for (size_t i = 0; i < inputs.size(); ++i) {
        const Tensor& x = inputs[i];
        if (!x.defined() || !x.requires_grad()) {
            p.inputs.push_back(x);
            continue;
        }
        SOMA_CHECK_DTYPE(x.dtype() == DType::float64, op, ": input ", i, " (shape ", x.shape(),
                         ") has dtype ", x.dtype(),
                         ", expected float64. Central differences need double precision: "
                         "convert with .to(soma::DType::float64).");
        Tensor c;
        {
            NoGradGuard ng;
            c = x.detach().clone();
            if (!c.is_contiguous()) c = c.contiguous();
        }
        c.requires_grad_(true);
        p.inputs.push_back(c);
        p.diff.push_back(i);
    }
    SOMA_CHECK_VALUE(!p.diff.empty(), op,
                     ": no input requires grad, so there is nothing to check. Call "
                     "requires_grad_() on the float64 inputs to differentiate.");
    return p;
}

std::vector<double> values(const Tensor& t) {
    NoGradGuard ng;
    return t.to_vector<double>();
}

// Evaluates the checked function(s) at the current input values.
using EvalFn = std::function<std::vector<Tensor>()>;

std::string fmt(double v) {
    std::ostringstream os;
    os << std::setprecision(10) << v;
    return os.str();
}

// Compares analytic and numeric Jacobians of every output of `eval` with respect to every
// input in p.diff. `what` names the outputs in messages ("output" or "gradient of input").
std::string check_jacobians(const EvalFn& eval, Prepared& p, const GradcheckOptions& opt,
                            const char* op, bool numeric_with_grad, const char* what) {
    std::vector<Tensor> diff_inputs;
    for (size_t j : p.diff) diff_inputs.push_back(p.inputs[j]);

    // Analytic: one vector-Jacobian product per output element.
    EnableGradGuard eg;
    std::vector<Tensor> outs = eval();
    const size_t n_out = outs.size();
    // analytic[o][j][m * numel_j + k] = d out_o[m] / d x_j[k]
    std::vector<std::vector<std::vector<double>>> analytic(n_out);
    for (size_t o = 0; o < n_out; ++o) {
        const Tensor& y = outs[o];
        SOMA_CHECK(y.defined(), op, ": the function returned an undefined tensor");
        SOMA_CHECK_DTYPE(y.is_floating_point(), op, ": ", what, " ", o, " has dtype ", y.dtype(),
                         " (shape ", y.shape(), "); only floating outputs can be checked");
        const int64_t ny = y.numel();
        analytic[o].resize(diff_inputs.size());
        for (size_t j = 0; j < diff_inputs.size(); ++j)
            analytic[o][j].assign(static_cast<size_t>(ny * diff_inputs[j].numel()), 0.0);
        if (!y.requires_grad()) continue;  // constant in the inputs: Jacobian 0
        for (int64_t m = 0; m < ny; ++m) {
            std::vector<double> onehot(static_cast<size_t>(ny), 0.0);
            onehot[static_cast<size_t>(m)] = 1.0;
            Tensor go = from_vector<double>(onehot, y.shape()).to(y.dtype());
            std::vector<Tensor> gs = autograd::grad({y}, diff_inputs, {go}, /*create_graph=*/false,
                                                    /*retain_graph=*/true, /*allow_unused=*/true);
            for (size_t j = 0; j < diff_inputs.size(); ++j) {
                if (!gs[j].defined()) continue;
                if (gs[j].shape() != diff_inputs[j].shape())
                    return detail::concat(op, ": the gradient of ", what, " ", o,
                                          " with respect to input ", p.diff[j], " has shape ",
                                          gs[j].shape(), " but the input has shape ",
                                          diff_inputs[j].shape());
                std::vector<double> row = values(gs[j]);
                const int64_t nx = diff_inputs[j].numel();
                for (int64_t k = 0; k < nx; ++k)
                    analytic[o][j][static_cast<size_t>(m * nx + k)] = row[static_cast<size_t>(k)];
            }
        }
    }
    outs.clear();

    // Numeric: central differences, one input element at a time.
    for (size_t j = 0; j < diff_inputs.size(); ++j) {
        Tensor& x = diff_inputs[j];
        double* data = x.data_ptr<double>();
        const int64_t nx = x.numel();
        for (int64_t k = 0; k < nx; ++k) {
            const double orig = data[k];
            std::vector<std::vector<double>> plus, minus;
            for (int side = 0; side < 2; ++side) {
                {
                    NoGradGuard ng;
                    data[k] = side == 0 ? orig + opt.eps : orig - opt.eps;
                }
                std::vector<Tensor> ys;
                if (numeric_with_grad) {
                    ys = eval();
                } else {
                    NoGradGuard ng;
                    ys = eval();
                }
                auto& dst = side == 0 ? plus : minus;
                for (auto& y : ys) dst.push_back(values(y));
            }
            {
                NoGradGuard ng;
                data[k] = orig;
            }
            for (size_t o = 0; o < n_out; ++o) {
                const size_t ny = plus[o].size();
                for (size_t m = 0; m < ny; ++m) {
                    const double num = (plus[o][m] - minus[o][m]) / (2 * opt.eps);
                    const double ana = analytic[o][j][m * static_cast<size_t>(nx) + k];
                    if (std::fabs(ana - num) <= opt.atol + opt.rtol * std::fabs(num)) continue;
                    // gradgradcheck's outputs are the gradients of the inputs in p.diff.
                    std::string out_name = std::string(what) == "output"
                                               ? std::string()
                                               : detail::concat(what, " ", p.diff[o], ", ");
                    return detail::concat(op, ": Jacobian mismatch for input ", p.diff[j],
                                          " (shape ", x.shape(), ") at element ", k, ", ", out_name,
                                          "output element ", m, ": analytic ", fmt(ana),
                                          ", numeric ", fmt(num), " (eps ", opt.eps, ", atol ",
                                          opt.atol, ", rtol ", opt.rtol, ")");
                }
            }
        }
    }
    return "";
}

// A fixed pseudo-random grad_output in [-1, 1] (own generator: the global RNG is left alone).
Tensor fixed_grad_output(const Tensor& y) {
    std::vector<double> v(static_cast<size_t>(y.numel()));
    uint64_t s = 0x9E3779B97F4A7C15ULL;
    for (auto& e : v) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        e = static_cast<double>(s >> 11) / static_cast<double>(1ULL << 53) * 2.0 - 1.0;
    }
    return from_vector<double>(v, y.shape()).to(y.dtype());
}

}  // namespace

std::string gradcheck(const GradFn& fn, const std::vector<Tensor>& inputs, GradcheckOptions opt) {
    Prepared p = prepare(inputs, "gradcheck");
    EvalFn eval = [&]() { return std::vector<Tensor>{fn(p.inputs)}; };
    return check_jacobians(eval, p, opt, "gradcheck", /*numeric_with_grad=*/false, "output");
}

std::string gradgradcheck(const GradFn& fn, const std::vector<Tensor>& inputs,
                          GradcheckOptions opt) {
    Prepared p = prepare(inputs, "gradgradcheck");
    Tensor go;
    // G(x) = d <fn(x), go> / d x_j for every differentiable input j, built with create_graph.
    EvalFn eval = [&]() {
        EnableGradGuard eg;
        Tensor y = fn(p.inputs);
        SOMA_CHECK(y.defined(), "gradgradcheck: the function returned an undefined tensor");
        if (!go.defined()) go = fixed_grad_output(y);
        std::vector<Tensor> diff_inputs;
        for (size_t j : p.diff) diff_inputs.push_back(p.inputs[j]);
        std::vector<Tensor> gs;
        if (y.requires_grad())
            gs = autograd::grad({y}, diff_inputs, {go}, /*create_graph=*/true,
                                /*retain_graph=*/true, /*allow_unused=*/true);
        else
            gs.resize(diff_inputs.size());
        for (size_t j = 0; j < gs.size(); ++j)
            if (!gs[j].defined()) {
                NoGradGuard ng;
                gs[j] = zeros_like(diff_inputs[j]);
            }
        return gs;
    };
    return check_jacobians(eval, p, opt, "gradgradcheck", /*numeric_with_grad=*/true,
                           "gradient of input");
}

}  // namespace soma
