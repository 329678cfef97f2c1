// Elementwise unary ops. Each: check + forward kernel + backward (in differentiable ops, so
// double backward works), formula in the comment.
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "ops/op_util.h"

namespace soma {
namespace {

using Grads = std::vector<Tensor>;

Tensor run_unary(UnaryOp op, const Tensor& x, double a = 0, double b = 0) {
    Tensor out = make_tensor(x.shape(), x.dtype(), x.device());
    backend(x).unary(op, x, out, a, b);
    return out;
}

// Ops defined only for floating types promote integers to the default float (as torch.exp).
Tensor float_input(const Tensor& x, const char* op) {
    check_defined(x, op);
    if (is_floating(x.dtype())) return x;
    return cast(x, DType::float32);
}

void check_not_bool(const Tensor& x, const char* op) {
    check_defined(x, op);
    SOMA_CHECK_DTYPE(x.dtype() != DType::boolean, op, ": not supported for bool tensors (shape ",
                     x.shape(), "). Convert with .to(soma::DType::int64) or use logical_not.");
}

}  // namespace

// neg: y = -x;  dx = -dy
Tensor neg(const Tensor& x) {
    check_not_bool(x, "neg");
    return record("neg", run_unary(UnaryOp::neg, x), {x},
                  [](const Tensor& g) { return Grads{neg(g)}; });
}

// abs: y = |x|;  dx = dy * sign(x)
Tensor abs(const Tensor& x) {
    check_not_bool(x, "abs");
    return record("abs", run_unary(UnaryOp::abs, x), {x},
                  [x](const Tensor& g) { return Grads{g * sign(x)}; }, {x});
}

// exp: y = e^x;  dx = dy * y
Tensor exp(const Tensor& x0) {
    Tensor x = float_input(x0, "exp");
    return record_with_output("exp", run_unary(UnaryOp::exp, x), {x},
                              [](const Tensor& g, const Tensor& y) { return Grads{g * y}; });
}

// log: y = ln x;  dx = dy / x
Tensor log(const Tensor& x0) {
    Tensor x = float_input(x0, "log");
    return record("log", run_unary(UnaryOp::log, x), {x},
                  [x](const Tensor& g) { return Grads{g / x}; }, {x});
}

// log1p: y = ln(1 + x);  dx = dy / (1 + x)
Tensor log1p(const Tensor& x0) {
    Tensor x = float_input(x0, "log1p");
    return record("log1p", run_unary(UnaryOp::log1p, x), {x},
                  [x](const Tensor& g) { return Grads{g / (x + 1)}; }, {x});
}

// sqrt: y = √x;  dx = dy / (2y)
Tensor sqrt(const Tensor& x0) {
    Tensor x = float_input(x0, "sqrt");
    return record_with_output("sqrt", run_unary(UnaryOp::sqrt, x), {x},
                              [](const Tensor& g, const Tensor& y) { return Grads{g / (y * 2)}; });
}

// rsqrt: y = x^-1/2;  dx = -dy * y^3 / 2
Tensor rsqrt(const Tensor& x0) {
    Tensor x = float_input(x0, "rsqrt");
    return record_with_output(
        "rsqrt", run_unary(UnaryOp::rsqrt, x), {x},
        [](const Tensor& g, const Tensor& y) { return Grads{g * y * y * y * -0.5}; });
}

// reciprocal: y = 1/x;  dx = -dy * y^2
Tensor reciprocal(const Tensor& x0) {
    Tensor x = float_input(x0, "reciprocal");
    return record_with_output("reciprocal", run_unary(UnaryOp::reciprocal, x), {x},
                              [](const Tensor& g, const Tensor& y) { return Grads{-(g * y * y)}; });
}

// square: y = x^2;  dx = 2 dy x
Tensor square(const Tensor& x) {
    check_not_bool(x, "square");
    return record("square", run_unary(UnaryOp::square, x), {x},
                  [x](const Tensor& g) { return Grads{g * x * 2}; }, {x});
}

// sin: dx = dy cos x
Tensor sin(const Tensor& x0) {
    Tensor x = float_input(x0, "sin");
    return record("sin", run_unary(UnaryOp::sin, x), {x},
                  [x](const Tensor& g) { return Grads{g * cos(x)}; }, {x});
}

// cos: dx = -dy sin x
Tensor cos(const Tensor& x0) {
    Tensor x = float_input(x0, "cos");
    return record("cos", run_unary(UnaryOp::cos, x), {x},
                  [x](const Tensor& g) { return Grads{-(g * sin(x))}; }, {x});
}

// erf: dx = dy * 2/√π * e^(-x²)
Tensor erf(const Tensor& x0) {
    Tensor x = float_input(x0, "erf");
    return record("erf", run_unary(UnaryOp::erf, x), {x},
                  [x](const Tensor& g) { return Grads{g * exp(-(x * x)) * M_2_SQRTPI}; }, {x});
}

// sign: dx = 0
Tensor sign(const Tensor& x) {
    check_not_bool(x, "sign");
    return record("sign", run_unary(UnaryOp::sign, x), {x},
                  [](const Tensor& g) { return Grads{zeros_like(g)}; });
}

// pow: y = x^e;  dx = dy * e * x^(e-1)   (e = 0: dx = 0)
Tensor pow(const Tensor& x, Scalar e) {
    check_not_bool(x, "pow");
    Tensor xin = x;
    if (!is_floating(x.dtype()) && e.is_floating()) xin = cast(x, DType::float32);
    if (!is_floating(xin.dtype()))
        SOMA_CHECK_VALUE(e.to_int() >= 0,
                         "pow: integers to negative integer powers are not "
                         "allowed: exponent ",
                         e.to_int());
    double ev = e.to_double();
    return record("pow", run_unary(UnaryOp::pow_scalar, xin, ev), {xin},
                  [xin, ev](const Tensor& g) {
                      if (ev == 0) return Grads{zeros_like(g)};
                      return Grads{g * pow(xin, ev - 1) * ev};
                  },
                  {xin});
}

// pow: y = a^b;  da = dy * b * a^(b-1);  db = dy * y * ln a  (0 where a == 0 and b >= 0)
Tensor pow(const Tensor& a, const Tensor& b) {
    check_not_bool(a, "pow");
    check_same_device(a, b, "pow");
    DType rt = result_type(a, b);
    Shape s = broadcast_shapes(a.shape(), b.shape(), "pow");
    Tensor ac = cast(a, rt), bc = cast(b, rt);
    Tensor out = make_tensor(s, rt, a.device());
    {
        NoGradGuard ng;
        backend(a).binary(BinaryOp::pow, ac.expand(s), bc.expand(s), out, 1);
    }
    return record("pow", out, {ac, bc},
                  [ac, bc](const Tensor& g) {
                      Tensor y = pow(ac, bc);
                      Tensor ga = g * bc * pow(ac, bc - 1);
                      Tensor lg =
                          where(logical_and(eq(ac, 0), ge(bc, 0)), zeros_like(y), y * log(ac));
                      return Grads{sum_to(ga, ac.shape()), sum_to(g * lg, bc.shape())};
                  },
                  {ac, bc});
}

// pow: y = s^b;  db = dy * y * ln s
Tensor pow(Scalar base, const Tensor& b) {
    DType rt = result_type(b, base);
    Tensor bt = wrap_scalar(base, rt, b.device());
    return pow(bt, b);
}

// clamp: y = min(max(x, lo), hi);  dx = dy where lo <= x <= hi, else 0
Tensor clamp(const Tensor& x, std::optional<Scalar> lo, std::optional<Scalar> hi) {
    check_not_bool(x, "clamp");
    SOMA_CHECK_VALUE(lo || hi, "clamp: at least one of min and max must be given");
    Tensor xin = x;
    if (!is_floating(x.dtype()) && ((lo && lo->is_floating()) || (hi && hi->is_floating())))
        xin = cast(x, DType::float32);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    double l = lo ? lo->to_double() : nan, h = hi ? hi->to_double() : nan;
    return record("clamp", run_unary(UnaryOp::clamp, xin, l, h), {xin},
                  [xin, lo, hi](const Tensor& g) {
                      Tensor mask = ones_like(xin).to(DType::boolean);
                      if (lo) mask = logical_and(mask, ge(xin, *lo));
                      if (hi) mask = logical_and(mask, le(xin, *hi));
                      return Grads{where(mask, g, zeros_like(g))};
                  },
                  {xin});
}

// sigmoid: y = 1 / (1 + e^-x);  dx = dy * y * (1 - y)
Tensor sigmoid(const Tensor& x0) {
    Tensor x = float_input(x0, "sigmoid");
    return record_with_output(
        "sigmoid", run_unary(UnaryOp::sigmoid, x), {x},
        [](const Tensor& g, const Tensor& y) { return Grads{g * y * (1 - y)}; });
}

// tanh: dx = dy * (1 - y^2)
Tensor tanh(const Tensor& x0) {
    Tensor x = float_input(x0, "tanh");
    return record_with_output(
        "tanh", run_unary(UnaryOp::tanh, x), {x},
        [](const Tensor& g, const Tensor& y) { return Grads{g * (1 - y * y)}; });
}

namespace {

// The gradient of relu and leaky_relu in one pass: dx = m > 0 ? dy : s dy (s = 0 for relu, m the
// output y for relu, the input x for leaky_relu; both have the sign of x). Linear in dy, so its
// own gradient is the same op on the incoming gradient; m gets none (the mask is piecewise
// constant). One pass and one allocation, where the composed where(gt(m, 0), g, g * s) makes
// three passes and three tensors. The mask always has the gradient's shape (the engine checks
// that an incoming gradient has its node's output shape, and m is that output or the input of
// an elementwise op), so it is passed as it is, without an expand view.
Tensor masked_slope(const Tensor& g, const Tensor& m0, double s) {
    SOMA_CHECK_SHAPE(m0.shape() == g.shape(),
                     "masked_slope: mask shape differs from the gradient: got ", m0.shape(),
                     ", expected ", g.shape(), ". This is an internal error.");
    Tensor m = m0.dtype() == g.dtype() ? m0 : m0.to(g.dtype());
    Tensor out = make_tensor(g.shape(), g.dtype(), g.device());
    backend(g).binary(BinaryOp::masked_slope, g, m, out, s);
    return record("masked_slope", out, {g},
                  [m, s](const Tensor& gg) { return Grads{masked_slope(gg, m, s)}; });
}

}  // namespace

// relu: y = max(x, 0);  dx = dy * [y > 0]
Tensor relu(const Tensor& x) {
    check_not_bool(x, "relu");
    if (!is_floating(x.dtype()))
        return record_with_output("relu", run_unary(UnaryOp::relu, x), {x},
                                  [](const Tensor& g, const Tensor& y) {
                                      return Grads{where(gt(y, 0), g, zeros_like(g))};
                                  });
    return record_with_output(
        "relu", run_unary(UnaryOp::relu, x), {x},
        [](const Tensor& g, const Tensor& y) { return Grads{masked_slope(g, y.detach(), 0.0)}; });
}

// leaky_relu: y = x > 0 ? x : s x;  dx = dy * (x > 0 ? 1 : s)
Tensor leaky_relu(const Tensor& x, double s) {
    check_floating(x, "leaky_relu");
    return record("leaky_relu", run_unary(UnaryOp::leaky_relu, x, s), {x},
                  [x, s](const Tensor& g) { return Grads{masked_slope(g, x.detach(), s)}; }, {x});
}

// elu: y = x > 0 ? x : a (e^x - 1);  dx = dy * (x > 0 ? 1 : a e^x)
Tensor elu(const Tensor& x, double alpha) {
    check_floating(x, "elu");
    return record(
        "elu", run_unary(UnaryOp::elu, x, alpha), {x},
        [x, alpha](const Tensor& g) { return Grads{where(gt(x, 0), g, g * exp(x) * alpha)}; }, {x});
}

// gelu (erf): y = x Φ(x);  dx = dy (Φ(x) + x φ(x))
// gelu (tanh): y = x/2 (1 + tanh u), u = k (x + c x³);
//   dx = dy (½(1 + tanh u) + ½ x (1 - tanh² u) k (1 + 3c x²))
Tensor gelu(const Tensor& x, const std::string& approximate) {
    check_floating(x, "gelu");
    SOMA_CHECK_VALUE(approximate == "none" || approximate == "tanh",
                     "gelu: approximate must be \"none\" or \"tanh\", got \"", approximate, "\"");
    bool th = approximate == "tanh";
    return record("gelu", run_unary(th ? UnaryOp::gelu_tanh : UnaryOp::gelu, x), {x},
                  [x, th](const Tensor& g) {
                      if (!th) {
                          Tensor cdf = (erf(x * M_SQRT1_2) + 1) * 0.5;
                          Tensor pdf = exp(x * x * -0.5) * (M_2_SQRTPI * M_SQRT1_2 * 0.5);
                          return Grads{g * (cdf + x * pdf)};
                      }
                      const double k = 0.7978845608028654, c = 0.044715;
                      Tensor t = tanh((x + x * x * x * c) * k);
                      Tensor d = (t + 1) * 0.5 + x * 0.5 * (1 - t * t) * k * (x * x * (3 * c) + 1);
                      return Grads{g * d};
                  },
                  {x});
}

// silu: y = x σ(x);  dx = dy σ(x) (1 + x (1 - σ(x)))
Tensor silu(const Tensor& x) {
    check_floating(x, "silu");
    return record("silu", run_unary(UnaryOp::silu, x), {x},
                  [x](const Tensor& g) {
                      Tensor s = sigmoid(x);
                      return Grads{g * s * (x * (1 - s) + 1)};
                  },
                  {x});
}

// softplus: y = ln(1 + e^(βx)) / β (x where βx > threshold);  dx = dy σ(βx) (dy there)
Tensor softplus(const Tensor& x, double beta, double threshold) {
    check_floating(x, "softplus");
    return record("softplus", run_unary(UnaryOp::softplus, x, beta, threshold), {x},
                  [x, beta, threshold](const Tensor& g) {
                      return Grads{where(gt(x * beta, threshold), g, g * sigmoid(x * beta))};
                  },
                  {x});
}

Tensor logical_not(const Tensor& x) {
    check_defined(x, "logical_not");
    Tensor out = make_tensor(x.shape(), DType::boolean, x.device());
    backend(x).unary(UnaryOp::logical_not, x, out, 0, 0);
    return out;
}

}  // namespace soma
