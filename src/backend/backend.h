// Internal: the backend seam. Every device implements these kernels; ops are written once on
// top of them. Kernels overwrite `out` (never accumulate unless the name says add); shapes and
// dtypes are validated by the ops before they get here. Operands may be strided views (zero
// strides for broadcast); outputs are contiguous unless noted.
#pragma once

#include <cstdint>

#include "soma/tensor.h"

namespace soma {

enum class UnaryOp : uint8_t {
    neg,
    abs,
    exp,
    log,
    log1p,
    sqrt,
    rsqrt,
    reciprocal,
    square,
    sin,
    cos,
    erf,
    sign,
    sigmoid,
    tanh,
    relu,
    leaky_relu,
    elu,
    gelu,
    gelu_tanh,
    silu,
    softplus,
    pow_scalar,
    clamp,
    logical_not,
    isfinite,
    count
};
inline constexpr const char* kUnaryOpNames[] = {
    "neg",        "abs",    "exp",        "log",         "log1p",   "sqrt",      "rsqrt",
    "reciprocal", "square", "sin",        "cos",         "erf",     "sign",      "sigmoid",
    "tanh",       "relu",   "leaky_relu", "elu",         "gelu",    "gelu_tanh", "silu",
    "softplus",   "pow",    "clamp",      "logical_not", "isfinite"};
static_assert(std::size(kUnaryOpNames) == static_cast<size_t>(UnaryOp::count));

enum class BinaryOp : uint8_t {
    add,
    sub,
    mul,
    div,
    maximum,
    minimum,
    pow,
    masked_slope,  // a where b > 0, else alpha a (the gradient of relu / leaky_relu)
    eq,
    ne,
    lt,
    le,
    gt,
    ge,
    logical_and,
    logical_or,
    logical_xor,
    count
};
inline constexpr const char* kBinaryOpNames[] = {
    "add", "sub", "mul", "div", "maximum", "minimum",     "pow",        "masked_slope", "eq",
    "ne",  "lt",  "le",  "gt",  "ge",      "logical_and", "logical_or", "logical_xor"};
static_assert(std::size(kBinaryOpNames) == static_cast<size_t>(BinaryOp::count));
inline bool is_comparison(BinaryOp op) { return op >= BinaryOp::eq; }

enum class ReduceOp : uint8_t { sum, prod, max, min, argmax, argmin, count };

class Backend {
  public:
    virtual ~Backend() = default;
    virtual Device device() const = 0;
    virtual void* allocate(size_t nbytes) = 0;
    virtual void deallocate(void* p, size_t nbytes) = 0;

    /// dst = src (same shape; strided both sides; converts dtype).
    virtual void copy(const Tensor& src, const Tensor& dst) = 0;
    virtual void fill(const Tensor& dst, Scalar value) = 0;  // dst may be strided
    /// out = op(x; a, b). x and out same shape and dtype (bool out for logical_not/isfinite).
    /// a, b: leaky_relu slope; elu alpha; softplus beta, threshold; pow exponent; clamp lo, hi.
    virtual void unary(UnaryOp op, const Tensor& x, const Tensor& out, double a, double b) = 0;
    /// out = a op b; a, b expanded to out's shape, same dtype (out is bool for comparisons).
    /// alpha scales b for add/sub, and is the slope of masked_slope.
    virtual void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out,
                        double alpha) = 0;
    /// out = cond ? a : b, all expanded to out's shape.
    virtual void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) = 0;
    /// Reduces the last `nreduce` dims of x. out (and indices for max/min) have numel equal to
    /// the product of the other dims. argmax/argmin write int64 to out.
    virtual void reduce(ReduceOp op, const Tensor& x, int64_t nreduce, const Tensor& out,
                        const Tensor* indices) = 0;
    /// C[b] = alpha * op(A[b]) op(B[b]) + beta * C[b], column strides 1, row-major.
    struct Gemm {
        bool trans_a = false, trans_b = false;
        int64_t m = 0, n = 0, k = 0, batch = 1;
        const void* a = nullptr;
        int64_t lda = 0, stride_a = 0;
        const void* b = nullptr;
        int64_t ldb = 0, stride_b = 0;
        void* c = nullptr;
        int64_t ldc = 0, stride_c = 0;
        double alpha = 1, beta = 0;
        DType dtype = DType::float32;
    };
    virtual void gemm(const Gemm& g) = 0;
    /// out = x.index_select(dim, index) (index int64 1-D, bounds checked by the op).
    virtual void index_select(const Tensor& x, int64_t dim, const Tensor& index,
                              const Tensor& out) = 0;
    /// out.index_add_(dim, index, src): out[..., index[i], ...] += src[..., i, ...].
    virtual void index_add(const Tensor& out, int64_t dim, const Tensor& index,
                           const Tensor& src) = 0;
    /// out[i][j][k] = x[i][index[i][j][k]][k] for dim == 1 (and likewise for other dims).
    virtual void gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) = 0;
    /// out[i][index[i][j][k]][k] += src[i][j][k] for dim == 1 (out is modified in place).
    virtual void scatter_add(const Tensor& out, int64_t dim, const Tensor& index,
                             const Tensor& src) = 0;
    /// Philox-driven fills of a contiguous tensor from (seed, counter).
    virtual void uniform(const Tensor& out, double lo, double hi, uint64_t seed,
                         uint64_t counter) = 0;
    virtual void normal(const Tensor& out, double mean, double std, uint64_t seed,
                        uint64_t counter) = 0;
};

Backend& backend_for(Device d);
inline Backend& backend(const Tensor& t) { return backend_for(t.device()); }
Backend& cpu_backend();

}  // namespace soma
