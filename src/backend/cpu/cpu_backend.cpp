// The CPU backend: plain, strided reference kernels (also the oracle for faster ones).
#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <string_view>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/parallel_for.h"
#include "backend/cpu/select_bits.h"
#include "backend/cpu/strided.h"
#include "soma/parallel.h"
#include "soma/random.h"

namespace soma {
namespace cpu {
namespace {

template <class F>
decltype(auto) dispatch(DType t, F&& f) {
    switch (t) {
        case DType::float32: return f(float{});
        case DType::float64: return f(double{});
        case DType::int64: return f(int64_t{});
        case DType::boolean: return f(bool{});
    }
    throw Error("cpu: unknown dtype");
}
template <class F>
decltype(auto) dispatch_float(DType t, const char* op, F&& f) {
    switch (t) {
        case DType::float32: return f(float{});
        case DType::float64: return f(double{});
        default: throw DTypeError(detail::concat(op, ": expected a floating dtype, got ", t));
    }
}

std::array<char*, 1> ptrs(const Tensor& a) { return {static_cast<char*>(a.raw_data())}; }
std::array<char*, 2> ptrs(const Tensor& a, const Tensor& b) {
    return {static_cast<char*>(a.raw_data()), static_cast<char*>(b.raw_data())};
}
std::array<char*, 3> ptrs(const Tensor& a, const Tensor& b, const Tensor& c) {
    return {static_cast<char*>(a.raw_data()), static_cast<char*>(b.raw_data()),
            static_cast<char*>(c.raw_data())};
}
int64_t es(const Tensor& t) { return static_cast<int64_t>(dtype_size(t.dtype())); }

// out[i] = f(x[i]) over a common shape.
// Element-wise work below this many items per thread stays on one thread.
constexpr int64_t kElementwiseGrain = int64_t{1} << 15;

template <class TI, class TO, class F>
void map1(const Tensor& x, const Tensor& out, F f) {
    if (out.numel() == 0) return;
    if (out.numel() >= 2 * kElementwiseGrain && out.is_contiguous() && x.is_contiguous() &&
        x.shape() == out.shape()) {
        TO* o = static_cast<TO*>(out.raw_data());
        const TI* a = static_cast<const TI*>(x.raw_data());
        parallel_for(out.numel(), kElementwiseGrain, [&](int64_t b, int64_t e) {
            // Local copies: the functor's captured constants then cannot alias the stores
            // through o, so the compiler keeps them in registers and vectorises.
            const F fl = f;
            TO* ol = o;
            const TI* al = a;
            for (int64_t i = b; i < e; ++i) ol[i] = fl(al[i]);
        });
        return;
    }
    StridedLoop<2> loop(out.shape(), {&out.strides(), &x.strides()}, {es(out), es(x)});
    loop.run(ptrs(out, x), [&](std::array<char*, 2> p, int64_t n, const std::array<int64_t, 2>& s) {
        TO* o = reinterpret_cast<TO*>(p[0]);
        const TI* a = reinterpret_cast<const TI*>(p[1]);
        if (s[0] == sizeof(TO) && s[1] == sizeof(TI)) {
            const F fl = f;
            for (int64_t i = 0; i < n; ++i) o[i] = fl(a[i]);
        } else {
            for (int64_t i = 0; i < n; ++i)
                *reinterpret_cast<TO*>(p[0] + i * s[0]) =
                    f(*reinterpret_cast<const TI*>(p[1] + i * s[1]));
        }
    });
}

template <class TI, class TO, class F>
void map2(const Tensor& a, const Tensor& b, const Tensor& out, F f) {
    if (out.numel() == 0) return;
    if (out.numel() >= 2 * kElementwiseGrain && out.is_contiguous() && a.is_contiguous() &&
        b.is_contiguous() && a.shape() == out.shape() && b.shape() == out.shape()) {
        TO* o = static_cast<TO*>(out.raw_data());
        const TI* x = static_cast<const TI*>(a.raw_data());
        const TI* y = static_cast<const TI*>(b.raw_data());
        parallel_for(out.numel(), kElementwiseGrain, [&](int64_t lo, int64_t hi) {
            const F fl = f;  // local copies: see map1
            TO* ol = o;
            const TI* xl = x;
            const TI* yl = y;
            for (int64_t i = lo; i < hi; ++i) ol[i] = fl(xl[i], yl[i]);
        });
        return;
    }
    StridedLoop<3> loop(out.shape(), {&out.strides(), &a.strides(), &b.strides()},
                        {es(out), es(a), es(b)});
    loop.run(ptrs(out, a, b),
             [&](std::array<char*, 3> p, int64_t n, const std::array<int64_t, 3>& s) {
                 TO* o = reinterpret_cast<TO*>(p[0]);
                 const TI* x = reinterpret_cast<const TI*>(p[1]);
                 const TI* y = reinterpret_cast<const TI*>(p[2]);
                 const F fl = f;
                 if (s[0] == sizeof(TO) && s[1] == sizeof(TI) && s[2] == sizeof(TI)) {
                     for (int64_t i = 0; i < n; ++i) o[i] = fl(x[i], y[i]);
                 } else if (s[0] == sizeof(TO) && s[1] == sizeof(TI) && s[2] == 0) {
                     const TI yv = *y;
                     for (int64_t i = 0; i < n; ++i) o[i] = fl(x[i], yv);
                 } else {
                     for (int64_t i = 0; i < n; ++i)
                         *reinterpret_cast<TO*>(p[0] + i * s[0]) =
                             f(*reinterpret_cast<const TI*>(p[1] + i * s[1]),
                               *reinterpret_cast<const TI*>(p[2] + i * s[2]));
                 }
             });
}

template <class T>
T gelu_erf(T x) {
    return static_cast<T>(0.5) * x * (1 + std::erf(x * static_cast<T>(M_SQRT1_2)));
}
template <class T>
T gelu_tanh(T x) {
    const T k = static_cast<T>(0.7978845608028654);  // sqrt(2/pi)
    return static_cast<T>(0.5) * x *
           (1 + std::tanh(k * (x + static_cast<T>(0.044715) * x * x * x)));
}
template <class T>
T sigmoid_f(T x) {
    return x >= 0 ? 1 / (1 + std::exp(-x)) : std::exp(x) / (1 + std::exp(x));
}

template <class T>
void unary_float(UnaryOp op, const Tensor& x, const Tensor& out, double a, double b) {
    const T ta = static_cast<T>(a), tb = static_cast<T>(b);
    switch (op) {
        case UnaryOp::exp: return map1<T, T>(x, out, [](T v) { return std::exp(v); });
        case UnaryOp::log: return map1<T, T>(x, out, [](T v) { return std::log(v); });
        case UnaryOp::log1p: return map1<T, T>(x, out, [](T v) { return std::log1p(v); });
        case UnaryOp::sqrt: return map1<T, T>(x, out, [](T v) { return std::sqrt(v); });
        case UnaryOp::rsqrt: return map1<T, T>(x, out, [](T v) { return 1 / std::sqrt(v); });
        case UnaryOp::reciprocal: return map1<T, T>(x, out, [](T v) { return 1 / v; });
        case UnaryOp::sin: return map1<T, T>(x, out, [](T v) { return std::sin(v); });
        case UnaryOp::cos: return map1<T, T>(x, out, [](T v) { return std::cos(v); });
        case UnaryOp::erf: return map1<T, T>(x, out, [](T v) { return std::erf(v); });
        case UnaryOp::sigmoid: return map1<T, T>(x, out, [](T v) { return sigmoid_f(v); });
        case UnaryOp::tanh: return map1<T, T>(x, out, [](T v) { return std::tanh(v); });
        case UnaryOp::leaky_relu:
            return map1<T, T>(x, out, [ta](T v) { return select_bits(v > 0, v, v * ta); });
        case UnaryOp::elu:
            return map1<T, T>(x, out, [ta](T v) { return v > 0 ? v : ta * std::expm1(v); });
        case UnaryOp::gelu: return map1<T, T>(x, out, [](T v) { return gelu_erf(v); });
        case UnaryOp::gelu_tanh: return map1<T, T>(x, out, [](T v) { return gelu_tanh(v); });
        case UnaryOp::silu: return map1<T, T>(x, out, [](T v) { return v * sigmoid_f(v); });
        case UnaryOp::softplus:
            // PyTorch: x when beta * x > threshold, else log1p(exp(beta x)) / beta.
            return map1<T, T>(x, out, [ta, tb](T v) {
                return v * ta > tb ? v : std::log1p(std::exp(v * ta)) / ta;
            });
        case UnaryOp::pow_scalar:
            if (a == 2) return map1<T, T>(x, out, [](T v) { return v * v; });
            if (a == 0.5) return map1<T, T>(x, out, [](T v) { return std::sqrt(v); });
            return map1<T, T>(x, out, [ta](T v) { return std::pow(v, ta); });
        case UnaryOp::isfinite: return map1<T, bool>(x, out, [](T v) { return std::isfinite(v); });
        default: break;
    }
    throw Error(detail::concat("cpu: unary op '", kUnaryOpNames[static_cast<int>(op)],
                               "' has no kernel for ", x.dtype()));
}

template <class T>
void unary_any(UnaryOp op, const Tensor& x, const Tensor& out, double a, double b) {
    switch (op) {
        case UnaryOp::neg:
            if constexpr (!std::is_same_v<T, bool>)
                return map1<T, T>(x, out, [](T v) { return -v; });
            break;
        case UnaryOp::abs:
            if constexpr (!std::is_same_v<T, bool>)
                return map1<T, T>(x, out, [](T v) { return v < 0 ? -v : v; });
            break;
        case UnaryOp::square:
            if constexpr (!std::is_same_v<T, bool>)
                return map1<T, T>(x, out, [](T v) { return v * v; });
            break;
        case UnaryOp::sign:
            if constexpr (!std::is_same_v<T, bool>)
                return map1<T, T>(x, out,
                                  [](T v) { return static_cast<T>((T(0) < v) - (v < T(0))); });
            break;
        case UnaryOp::relu:
            if constexpr (!std::is_same_v<T, bool>)
                return map1<T, T>(x, out, [](T v) { return v > 0 ? v : T(0); });
            break;
        case UnaryOp::clamp:
            if constexpr (!std::is_same_v<T, bool>) {
                // NaN bounds mean "absent"; NaN inputs propagate as in PyTorch.
                const bool has_lo = !std::isnan(a), has_hi = !std::isnan(b);
                const T lo = has_lo ? static_cast<T>(a) : T(0),
                        hi = has_hi ? static_cast<T>(b) : T(0);
                return map1<T, T>(x, out, [=](T v) {
                    if (has_lo && v < lo) v = lo;
                    if (has_hi && v > hi) v = hi;
                    return v;
                });
            }
            break;
        case UnaryOp::logical_not: return map1<T, bool>(x, out, [](T v) { return !v; });
        case UnaryOp::isfinite:
            if constexpr (!std::is_floating_point_v<T>)
                return map1<T, bool>(x, out, [](T) { return true; });
            break;
        case UnaryOp::pow_scalar:
            if constexpr (std::is_same_v<T, int64_t>) {
                int64_t e = static_cast<int64_t>(a);
                return map1<T, T>(x, out, [e](T v) {
                    T r = 1;
                    for (int64_t i = 0; i < e; ++i) r *= v;
                    return r;
                });
            }
            break;
        default: break;
    }
    if constexpr (std::is_floating_point_v<T>) return unary_float<T>(op, x, out, a, b);
    throw Error(detail::concat("cpu: unary op '", kUnaryOpNames[static_cast<int>(op)],
                               "' has no kernel for ", x.dtype()));
}

template <class T>
void binary_impl(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out, double alpha) {
    using B = bool;
    switch (op) {
        case BinaryOp::add:
            if constexpr (std::is_same_v<T, bool>)
                return map2<T, T>(a, b, out, [](T x, T y) { return x || y; });
            else if (alpha == 1)
                return map2<T, T>(a, b, out, [](T x, T y) { return x + y; });
            else {
                const T al = static_cast<T>(alpha);
                return map2<T, T>(a, b, out, [al](T x, T y) { return x + al * y; });
            }
        case BinaryOp::sub:
            if constexpr (!std::is_same_v<T, bool>) {
                if (alpha == 1) return map2<T, T>(a, b, out, [](T x, T y) { return x - y; });
                const T al = static_cast<T>(alpha);
                return map2<T, T>(a, b, out, [al](T x, T y) { return x - al * y; });
            }
            break;
        case BinaryOp::mul:
            if constexpr (std::is_same_v<T, bool>)
                return map2<T, T>(a, b, out, [](T x, T y) { return x && y; });
            else
                return map2<T, T>(a, b, out, [](T x, T y) { return x * y; });
        case BinaryOp::div:
            if constexpr (std::is_floating_point_v<T>)
                return map2<T, T>(a, b, out, [](T x, T y) { return x / y; });
            break;
        case BinaryOp::maximum:
            return map2<T, T>(a, b, out, [](T x, T y) {
                if constexpr (std::is_floating_point_v<T>)
                    if (std::isnan(x) || std::isnan(y)) return std::numeric_limits<T>::quiet_NaN();
                return x > y ? x : y;
            });
        case BinaryOp::minimum:
            return map2<T, T>(a, b, out, [](T x, T y) {
                if constexpr (std::is_floating_point_v<T>)
                    if (std::isnan(x) || std::isnan(y)) return std::numeric_limits<T>::quiet_NaN();
                return x < y ? x : y;
            });
        case BinaryOp::pow:
            if constexpr (std::is_floating_point_v<T>)
                return map2<T, T>(a, b, out, [](T x, T y) { return std::pow(x, y); });
            if constexpr (std::is_same_v<T, int64_t>)
                return map2<T, T>(a, b, out, [](T x, T y) {
                    T r = 1;
                    for (T i = 0; i < y; ++i) r *= x;
                    return r;
                });
            break;
        case BinaryOp::masked_slope:
            if constexpr (std::is_floating_point_v<T>) {
                const T al = static_cast<T>(alpha);
                return map2<T, T>(a, b, out,
                                  [al](T g, T m) { return select_bits(m > T(0), g, g * al); });
            }
            break;
        case BinaryOp::eq: return map2<T, B>(a, b, out, [](T x, T y) { return x == y; });
        case BinaryOp::ne: return map2<T, B>(a, b, out, [](T x, T y) { return x != y; });
        case BinaryOp::lt: return map2<T, B>(a, b, out, [](T x, T y) { return x < y; });
        case BinaryOp::le: return map2<T, B>(a, b, out, [](T x, T y) { return x <= y; });
        case BinaryOp::gt: return map2<T, B>(a, b, out, [](T x, T y) { return x > y; });
        case BinaryOp::ge: return map2<T, B>(a, b, out, [](T x, T y) { return x >= y; });
        case BinaryOp::logical_and:
            return map2<T, B>(
                a, b, out, [](T x, T y) { return static_cast<bool>(x) && static_cast<bool>(y); });
        case BinaryOp::logical_or:
            return map2<T, B>(
                a, b, out, [](T x, T y) { return static_cast<bool>(x) || static_cast<bool>(y); });
        case BinaryOp::logical_xor:
            return map2<T, B>(
                a, b, out, [](T x, T y) { return static_cast<bool>(x) != static_cast<bool>(y); });
        default: break;
    }
    throw Error(detail::concat("cpu: binary op '", kBinaryOpNames[static_cast<int>(op)],
                               "' has no kernel for ", a.dtype()));
}

// Strided index helpers for index ops: offsets (in elements) of every element of `t`,
// row-major, via a counter over t's shape.
template <class F>
void for_each_index(const Shape& shape, F f) {
    int64_t n = shape_numel(shape);
    if (n == 0) return;
    int64_t nd = static_cast<int64_t>(shape.size());
    std::vector<int64_t> idx(nd, 0);
    for (int64_t i = 0; i < n; ++i) {
        f(idx);
        for (int64_t d = nd - 1; d >= 0; --d) {
            if (++idx[d] < shape[d]) break;
            idx[d] = 0;
        }
    }
}
inline int64_t offset_of(const std::vector<int64_t>& idx, const Shape& strides) {
    int64_t o = 0;
    for (size_t d = 0; d < idx.size(); ++d) o += idx[d] * strides[d];
    return o;
}

class CpuBackend final : public Backend {
  public:
    Device device() const override { return Device::cpu(); }

    // Caching allocator: blocks are rounded up to a power of two (at least 64 bytes) and freed
    // blocks are kept per size class, so after warm-up a training step takes no memory from the
    // OS (no page faults, no zeroing by the kernel). At most kCacheLimit bytes are kept.
    void* allocate(size_t nbytes) override {
        int cls = size_class(nbytes);
        {
            std::lock_guard<std::mutex> lock(mu_);
            auto& fl = free_[cls];
            if (!fl.empty()) {
                void* p = fl.back();
                fl.pop_back();
                cached_ -= class_bytes(cls);
                return p;
            }
        }
        void* p = std::aligned_alloc(64, class_bytes(cls));
        if (!p) throw Error(detail::concat("cpu: out of memory allocating ", nbytes, " bytes"));
        return p;
    }
    ~CpuBackend() override {
        for (auto& fl : free_)
            for (void* p : fl) std::free(p);
    }
    void deallocate(void* p, size_t nbytes) override {
        if (!p) return;
        int cls = size_class(nbytes);
        size_t b = class_bytes(cls);
        {
            std::lock_guard<std::mutex> lock(mu_);
            if (b <= kMaxCachedBlock && cached_ + b <= kCacheLimit) {
                free_[cls].push_back(p);
                cached_ += b;
                return;
            }
        }
        std::free(p);
    }

    void copy(const Tensor& src, const Tensor& dst) override {
        dispatch(dst.dtype(), [&](auto to) {
            using TO = decltype(to);
            dispatch(src.dtype(), [&](auto from) {
                using TI = decltype(from);
                if constexpr (std::is_same_v<TO, bool>)
                    map1<TI, TO>(src, dst, [](TI v) { return v != TI(0); });
                else
                    map1<TI, TO>(src, dst, [](TI v) { return static_cast<TO>(v); });
            });
        });
    }

    void fill(const Tensor& dst, Scalar value) override {
        if (dst.numel() == 0) return;
        dispatch(dst.dtype(), [&](auto z) {
            using T = decltype(z);
            T v = std::is_floating_point_v<T>
                      ? static_cast<T>(value.to_double())
                      : static_cast<T>(value.is_floating() ? static_cast<int64_t>(value.to_double())
                                                           : value.to_int());
            if constexpr (std::is_same_v<T, bool>) v = value.to_double() != 0;
            if (dst.is_contiguous()) {  // one vectorised pass (zeros() of gradients)
                std::fill_n(static_cast<T*>(dst.raw_data()), dst.numel(), v);
                return;
            }
            StridedLoop<1> loop(dst.shape(), {&dst.strides()}, {es(dst)});
            loop.run(ptrs(dst),
                     [v](std::array<char*, 1> p, int64_t n, const std::array<int64_t, 1>& s) {
                         for (int64_t i = 0; i < n; ++i) *reinterpret_cast<T*>(p[0] + i * s[0]) = v;
                     });
        });
    }

    void unary(UnaryOp op, const Tensor& x, const Tensor& out, double a, double b) override {
        dispatch(x.dtype(), [&](auto z) { unary_any<decltype(z)>(op, x, out, a, b); });
    }

    void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out,
                double alpha) override {
        dispatch(a.dtype(), [&](auto z) { binary_impl<decltype(z)>(op, a, b, out, alpha); });
    }

    void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) override {
        if (out.numel() == 0) return;
        dispatch(out.dtype(), [&](auto z) {
            using T = decltype(z);
            StridedLoop<4> loop(out.shape(),
                                {&out.strides(), &cond.strides(), &a.strides(), &b.strides()},
                                {es(out), 1, es(a), es(b)});
            std::array<char*, 4> p0 = {
                static_cast<char*>(out.raw_data()), static_cast<char*>(cond.raw_data()),
                static_cast<char*>(a.raw_data()), static_cast<char*>(b.raw_data())};
            loop.run(p0, [&](std::array<char*, 4> p, int64_t n, const std::array<int64_t, 4>& s) {
                const int64_t e = sizeof(T);
                if (s[0] == e && s[1] == 1 && s[2] == e && (s[3] == e || s[3] == 0)) {
                    // Contiguous (or scalar "else"): a branch-free select the compiler vectorises.
                    // Bitwise select (exact for every value, NaN and inf included): a
                    // data-dependent branch here mispredicts half the time on ReLU masks.
                    using U =
                        std::conditional_t<sizeof(T) == 8, uint64_t,
                                           std::conditional_t<sizeof(T) == 4, uint32_t, uint8_t>>;
                    U* __restrict o = reinterpret_cast<U*>(p[0]);
                    const uint8_t* __restrict c = reinterpret_cast<const uint8_t*>(p[1]);
                    const U* __restrict x = reinterpret_cast<const U*>(p[2]);
                    const U* __restrict y = reinterpret_cast<const U*>(p[3]);
                    if (s[3] == 0) {
                        const U yv = *y;
                        for (int64_t i = 0; i < n; ++i) {
                            const U m = static_cast<U>(0) - static_cast<U>(c[i] != 0);
                            o[i] = (x[i] & m) | (yv & ~m);
                        }
                    } else {
                        for (int64_t i = 0; i < n; ++i) {
                            const U m = static_cast<U>(0) - static_cast<U>(c[i] != 0);
                            o[i] = (x[i] & m) | (y[i] & ~m);
                        }
                    }
                    return;
                }
                for (int64_t i = 0; i < n; ++i)
                    *reinterpret_cast<T*>(p[0] + i * s[0]) =
                        *reinterpret_cast<const bool*>(p[1] + i * s[1])
                            ? *reinterpret_cast<const T*>(p[2] + i * s[2])
                            : *reinterpret_cast<const T*>(p[3] + i * s[3]);
            });
        });
    }

    void reduce(ReduceOp op, const Tensor& x, int64_t nreduce, const Tensor& out,
                const Tensor* indices) override {
        int64_t nd = x.dim();
        Shape outer_shape(x.shape().begin(), x.shape().end() - nreduce);
        Shape outer_strides(x.strides().begin(), x.strides().end() - nreduce);
        Shape inner_shape(x.shape().end() - nreduce, x.shape().end());
        Shape inner_strides(x.strides().end() - nreduce, x.strides().end());
        (void)nd;
        int64_t n_outer = shape_numel(outer_shape), n_inner = shape_numel(inner_shape);
        if (n_outer == 0) return;
        dispatch(x.dtype(), [&](auto z) {
            using T = decltype(z);
            using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
            const char* xb = static_cast<const char*>(x.raw_data());
            int64_t esz = sizeof(T);
            // Column sums: one reduced dim, the kept elements next to each other in memory (the
            // bias gradient Σ_rows dy). Rows are added into one double accumulator per kept
            // element: the same additions in the same order as the loop below, vectorised.
            if constexpr (std::is_floating_point_v<T>) {
                if (op == ReduceOp::sum && nreduce == 1 && !outer_shape.empty() &&
                    outer_strides.back() == 1 && outer_shape.back() > 1) {
                    const int64_t C = outer_shape.back();
                    const Shape pre_shape(outer_shape.begin(), outer_shape.end() - 1),
                        pre_strides(outer_strides.begin(), outer_strides.end() - 1);
                    std::vector<double> acc(static_cast<size_t>(C));
                    int64_t o = 0;
                    for_each_index(
                        pre_shape.empty() ? Shape{1} : pre_shape,
                        [&](const std::vector<int64_t>& idx) {
                            const T* base = reinterpret_cast<const T*>(xb) +
                                            (pre_shape.empty() ? 0 : offset_of(idx, pre_strides));
                            column_sums(base, inner_shape[0], inner_strides[0], C, acc.data());
                            for (int64_t c = 0; c < C; ++c)
                                store<T>(out, o + c, acc[static_cast<size_t>(c)]);
                            o += C;
                        });
                    return;
                }
            }
            // Inner offsets once (the reduced dims are usually small or contiguous).
            std::vector<int64_t> inner_off;
            inner_off.reserve(n_inner);
            for_each_index(inner_shape, [&](const std::vector<int64_t>& idx) {
                inner_off.push_back(offset_of(idx, inner_strides) * esz);
            });
            int64_t o = 0;
            for_each_index(
                outer_shape.empty() ? Shape{1} : outer_shape, [&](const std::vector<int64_t>& idx) {
                    const char* base =
                        xb + (outer_shape.empty() ? 0 : offset_of(idx, outer_strides) * esz);
                    auto val = [&](int64_t j) {
                        return *reinterpret_cast<const T*>(base + inner_off[j]);
                    };
                    switch (op) {
                        case ReduceOp::sum: {
                            Acc s = 0;
                            for (int64_t j = 0; j < n_inner; ++j) s += static_cast<Acc>(val(j));
                            store<T>(out, o, s);
                            break;
                        }
                        case ReduceOp::prod: {
                            Acc s = 1;
                            for (int64_t j = 0; j < n_inner; ++j) s *= static_cast<Acc>(val(j));
                            store<T>(out, o, s);
                            break;
                        }
                        case ReduceOp::max:
                        case ReduceOp::min:
                        case ReduceOp::argmax:
                        case ReduceOp::argmin: {
                            bool is_max = op == ReduceOp::max || op == ReduceOp::argmax;
                            T best = val(0);
                            int64_t bi = 0;
                            for (int64_t j = 1; j < n_inner; ++j) {
                                T v = val(j);
                                bool nan_best = false;
                                if constexpr (std::is_floating_point_v<T>)
                                    nan_best = std::isnan(best);
                                if (nan_best) break;  // NaN wins, first occurrence
                                bool better;
                                if constexpr (std::is_floating_point_v<T>)
                                    better = std::isnan(v) || (is_max ? v > best : v < best);
                                else
                                    better = is_max ? v > best : v < best;
                                if (better) {
                                    best = v;
                                    bi = j;
                                }
                            }
                            if (op == ReduceOp::argmax || op == ReduceOp::argmin) {
                                out.data_ptr<int64_t>()[o] = bi;
                            } else {
                                static_cast<T*>(out.raw_data())[o] = best;
                                if (indices) indices->data_ptr<int64_t>()[o] = bi;
                            }
                            break;
                        }
                        default: throw Error("cpu: unknown reduction");
                    }
                    ++o;
                });
        });
    }

    // A product with one row (batch-1 inference) or one column is a matrix-vector product:
    // sgemm would pack the whole matrix on every call (two thirds of the time of a batch-1 MLP
    // forward), gemv streams it once. Returns false when the shapes are not such a case.
    template <typename T, typename Gemv>
    static bool gemv_case(const Gemm& g, const T* a, const T* b, T* c, Gemv gemv) {
        auto I = [](int64_t v) { return static_cast<int>(v); };
        const T alpha = static_cast<T>(g.alpha), beta = static_cast<T>(g.beta);
        auto zero_if_overwrite = [&](int64_t len, int64_t inc) {
            // gemv computes beta*y: with beta == 0 the (uninitialised) y must not be NaN.
            if (g.beta == 0)
                for (int64_t i = 0; i < len; ++i) c[i * inc] = T(0);
        };
        if (g.m == 1) {  // c[1,N] = op(A)[1,K] op(B)[K,N]
            int64_t incx = g.trans_a ? g.lda : 1;
            if (incx <= 0) return false;
            zero_if_overwrite(g.n, 1);
            if (g.trans_b)  // B stored [N,K]
                gemv(CblasRowMajor, CblasNoTrans, I(g.n), I(g.k), alpha, b, I(g.ldb), a, I(incx),
                     beta, c, 1);
            else  // B stored [K,N]
                gemv(CblasRowMajor, CblasTrans, I(g.k), I(g.n), alpha, b, I(g.ldb), a, I(incx),
                     beta, c, 1);
            return true;
        }
        if (g.n == 1) {  // c[M,1] = op(A)[M,K] op(B)[K,1]
            int64_t incx = g.trans_b ? 1 : g.ldb;
            if (incx <= 0 || g.ldc <= 0) return false;
            zero_if_overwrite(g.m, g.ldc);
            if (g.trans_a)  // A stored [K,M]
                gemv(CblasRowMajor, CblasTrans, I(g.k), I(g.m), alpha, a, I(g.lda), b, I(incx),
                     beta, c, I(g.ldc));
            else  // A stored [M,K]
                gemv(CblasRowMajor, CblasNoTrans, I(g.m), I(g.k), alpha, a, I(g.lda), b, I(incx),
                     beta, c, I(g.ldc));
            return true;
        }
        return false;
    }

    // float32 GEMMs on 1 thread run on oneDNN's sgemm where it measured faster than OpenBLAS's
    // here (Zen 3, AVX2, quiet machine): a side of at most 128 (batch-64 MLP layers 1.1-1.25x,
    // LSTM steps 1.1-1.2x, a side of 10 about 2x), except a transposed A with a long reduction
    // (weight gradients over a long sequence: oneDNN 0.45x). Square-ish GEMMs with every side
    // above 128 stay on OpenBLAS (batch-256 layers: oneDNN 0.75-1.05x). The choice depends only
    // on the shape and thread count, so results stay deterministic. SOMA_SGEMM=openblas / dnnl
    // forces one library (A/B benchmarks).
    static bool use_dnnl_sgemm(const Gemm& g) {
        static const int mode = [] {
            const char* e = std::getenv("SOMA_SGEMM");
            if (e && std::string_view(e) == "openblas") return 0;
            if (e && std::string_view(e) == "dnnl") return 2;
            return 1;
        }();
        if (mode != 1) return mode == 2;
        // On several threads every float32 GEMM stays on OpenMP's team (see threads.cpp):
        // OpenBLAS's own pool would spin beside it.
        return std::min({g.m, g.n, g.k}) <= 128 && !(g.trans_a && g.k > 512);
    }

    // OpenBLAS runs single-threaded (threads.cpp); on several threads a large GEMM is split
    // into column (or row) blocks of C on OpenMP's team, one OpenBLAS call per block, so the
    // only pool is OpenMP's. Blocks are disjoint and each is the same computation as in the
    // whole call, so the result does not depend on the split.
    template <class T, class F>
    static void blas_split(const Gemm& g, const T* a, const T* b, T* c, F blas) {
        const auto ta = g.trans_a ? CblasTrans : CblasNoTrans;
        const auto tb = g.trans_b ? CblasTrans : CblasNoTrans;
        auto call = [&](int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
            const T* as = a + (g.trans_a ? m0 : m0 * g.lda);
            const T* bs = b + (g.trans_b ? n0 * g.ldb : n0);
            blas(CblasRowMajor, ta, tb, static_cast<int>(m1 - m0), static_cast<int>(n1 - n0),
                 static_cast<int>(g.k), static_cast<T>(g.alpha), as, static_cast<int>(g.lda), bs,
                 static_cast<int>(g.ldb), static_cast<T>(g.beta), c + m0 * g.ldc + n0,
                 static_cast<int>(g.ldc));
        };
        const int t = get_num_threads();
        const double flops =
            2.0 * static_cast<double>(g.m) * static_cast<double>(g.n) * static_cast<double>(g.k);
        if (t < 2 || flops < 4e6) return call(0, g.m, 0, g.n);
        // Split the longer side of C in blocks of 16 (whole vector tiles).
        const bool by_cols = g.n >= g.m;
        const int64_t len = by_cols ? g.n : g.m, tiles = (len + 15) / 16;
        parallel_for(tiles, 1, [&](int64_t lo, int64_t hi) {
            const int64_t s0 = lo * 16, s1 = std::min(len, hi * 16);
            if (by_cols)
                call(0, g.m, s0, s1);
            else
                call(s0, s1, 0, g.n);
        });
    }

    void gemm(const Gemm& g) override {
        if (g.m == 0 || g.n == 0) return;
        for (int64_t i = 0; i < g.batch; ++i) {
            if (g.dtype == DType::float32) {
                const float* a = static_cast<const float*>(g.a) + i * g.stride_a;
                const float* b = static_cast<const float*>(g.b) + i * g.stride_b;
                float* c = static_cast<float*>(g.c) + i * g.stride_c;
                if (g.k == 0) {
                    scale_c(c, g, static_cast<float>(g.beta));
                    continue;
                }
                if (gemv_case(g, a, b, c, cblas_sgemv)) continue;
                if (use_dnnl_sgemm(g) &&
                    dnnl_sgemm(g.trans_a ? 'T' : 'N', g.trans_b ? 'T' : 'N', g.m, g.n, g.k,
                               static_cast<float>(g.alpha), a, g.lda, b, g.ldb,
                               static_cast<float>(g.beta), c, g.ldc) == dnnl_success)
                    continue;
                blas_split<float>(g, a, b, c, cblas_sgemm);
            } else if (g.dtype == DType::float64) {
                const double* a = static_cast<const double*>(g.a) + i * g.stride_a;
                const double* b = static_cast<const double*>(g.b) + i * g.stride_b;
                double* c = static_cast<double*>(g.c) + i * g.stride_c;
                if (g.k == 0) {
                    scale_c(c, g, g.beta);
                    continue;
                }
                if (gemv_case(g, a, b, c, cblas_dgemv)) continue;
                blas_split<double>(g, a, b, c, cblas_dgemm);
            } else if (g.dtype == DType::int64) {
                const int64_t* a = static_cast<const int64_t*>(g.a) + i * g.stride_a;
                const int64_t* b = static_cast<const int64_t*>(g.b) + i * g.stride_b;
                int64_t* c = static_cast<int64_t*>(g.c) + i * g.stride_c;
                for (int64_t r = 0; r < g.m; ++r)
                    for (int64_t col = 0; col < g.n; ++col) {
                        int64_t s = 0;
                        for (int64_t kk = 0; kk < g.k; ++kk) {
                            int64_t av = g.trans_a ? a[kk * g.lda + r] : a[r * g.lda + kk];
                            int64_t bv = g.trans_b ? b[col * g.ldb + kk] : b[kk * g.ldb + col];
                            s += av * bv;
                        }
                        c[r * g.ldc + col] =
                            static_cast<int64_t>(g.alpha) * s +
                            (g.beta != 0 ? static_cast<int64_t>(g.beta) * c[r * g.ldc + col] : 0);
                    }
            } else {
                throw DTypeError("matmul: bool tensors are not supported");
            }
        }
    }

    void index_select(const Tensor& x, int64_t dim, const Tensor& index,
                      const Tensor& out) override {
        const int64_t* idx = index.data_ptr<int64_t>();
        int64_t istride = index.dim() ? index.stride(0) : 0;
        int64_t esz = es(x);
        const char* xb = static_cast<const char*>(x.raw_data());
        char* ob = static_cast<char*>(out.raw_data());
        if (x.is_contiguous() && out.is_contiguous()) {
            // Blocks: [outer, n, inner] <- [outer, x.size(dim), inner], one memcpy per block
            // (an embedding lookup is one row copy per index).
            int64_t outer = 1, inner = 1;
            for (int64_t d = 0; d < dim; ++d) outer *= x.size(d);
            for (int64_t d = dim + 1; d < x.dim(); ++d) inner *= x.size(d);
            const int64_t n = out.dim() ? out.size(dim) : 1, xn = x.dim() ? x.size(dim) : 1;
            const size_t bytes = static_cast<size_t>(inner * esz);
            // Rows split over the threads (disjoint outputs) in chunks of about 64 KB.
            const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, inner * esz));
            parallel_for(outer * n, grain, [&](int64_t lo, int64_t hi) {
                for (int64_t q = lo; q < hi; ++q) {
                    const int64_t o = q / n, j = q % n;
                    std::memcpy(ob + ((o * n + j) * inner) * esz,
                                xb + ((o * xn + idx[j * istride]) * inner) * esz, bytes);
                }
            });
            return;
        }
        for_each_index(out.shape(), [&](const std::vector<int64_t>& i) {
            int64_t xo = 0, oo = 0;
            for (size_t d = 0; d < i.size(); ++d) {
                int64_t v = static_cast<int64_t>(d) == dim ? idx[i[d] * istride] : i[d];
                xo += v * x.strides()[d];
                oo += i[d] * out.strides()[d];
            }
            std::memcpy(ob + oo * esz, xb + xo * esz, esz);
        });
    }

    void index_add(const Tensor& out, int64_t dim, const Tensor& index,
                   const Tensor& src) override {
        const int64_t* idx = index.data_ptr<int64_t>();
        int64_t istride = index.dim() ? index.stride(0) : 0;
        dispatch(out.dtype(), [&](auto z) {
            using T = decltype(z);
            T* ob = static_cast<T*>(out.raw_data());
            const T* sb = static_cast<const T*>(src.raw_data());
            if (out.is_contiguous() && src.is_contiguous()) {
                // Blocks as in index_select; rows added in index order (deterministic).
                int64_t outer = 1, inner = 1;
                for (int64_t d = 0; d < dim; ++d) outer *= out.size(d);
                for (int64_t d = dim + 1; d < out.dim(); ++d) inner *= out.size(d);
                const int64_t n = src.dim() ? src.size(dim) : 1;
                const int64_t on = out.dim() ? out.size(dim) : 1;
                // Long rows are split by columns over the threads: every element still gets
                // its rows in index order, so the sums do not depend on the thread count.
                auto cols = [&](int64_t k0, int64_t k1) {
                    for (int64_t o = 0; o < outer; ++o)
                        for (int64_t j = 0; j < n; ++j) {
                            T* dst = ob + (o * on + idx[j * istride]) * inner;
                            const T* sr = sb + (o * n + j) * inner;
                            for (int64_t k = k0; k < k1; ++k) {
                                if constexpr (std::is_same_v<T, bool>)
                                    dst[k] = dst[k] || sr[k];
                                else
                                    dst[k] += sr[k];
                            }
                        }
                };
                if (outer * n * inner >= (int64_t{1} << 16) && inner >= 128)
                    parallel_for(inner, 64, cols);
                else
                    cols(0, inner);
                return;
            }
            for_each_index(src.shape(), [&](const std::vector<int64_t>& i) {
                int64_t so = 0, oo = 0;
                for (size_t d = 0; d < i.size(); ++d) {
                    int64_t v = static_cast<int64_t>(d) == dim ? idx[i[d] * istride] : i[d];
                    oo += v * out.strides()[d];
                    so += i[d] * src.strides()[d];
                }
                if constexpr (std::is_same_v<T, bool>)
                    ob[oo] = ob[oo] || sb[so];
                else
                    ob[oo] += sb[so];
            });
        });
    }

    void gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) override {
        int64_t esz = es(x);
        const char* xb = static_cast<const char*>(x.raw_data());
        char* ob = static_cast<char*>(out.raw_data());
        const char* ib = static_cast<const char*>(index.raw_data());
        for_each_index(index.shape(), [&](const std::vector<int64_t>& i) {
            int64_t v = *reinterpret_cast<const int64_t*>(ib + offset_of(i, index.strides()) * 8);
            int64_t xo = 0;
            for (size_t d = 0; d < i.size(); ++d)
                xo += (static_cast<int64_t>(d) == dim ? v : i[d]) * x.strides()[d];
            std::memcpy(ob + offset_of(i, out.strides()) * esz, xb + xo * esz, esz);
        });
    }

    void scatter_add(const Tensor& out, int64_t dim, const Tensor& index,
                     const Tensor& src) override {
        const char* ib = static_cast<const char*>(index.raw_data());
        dispatch(out.dtype(), [&](auto z) {
            using T = decltype(z);
            T* ob = static_cast<T*>(out.raw_data());
            const T* sb = static_cast<const T*>(src.raw_data());
            for_each_index(index.shape(), [&](const std::vector<int64_t>& i) {
                int64_t v =
                    *reinterpret_cast<const int64_t*>(ib + offset_of(i, index.strides()) * 8);
                int64_t oo = 0;
                for (size_t d = 0; d < i.size(); ++d)
                    oo += (static_cast<int64_t>(d) == dim ? v : i[d]) * out.strides()[d];
                T s = sb[offset_of(i, src.strides())];
                if constexpr (std::is_same_v<T, bool>)
                    ob[oo] = ob[oo] || s;
                else
                    ob[oo] += s;
            });
        });
    }

    // Element pair j uses Philox block (counter + j): two uniforms each made of two words.
    void uniform(const Tensor& out, double lo, double hi, uint64_t seed,
                 uint64_t counter) override {
        dispatch_float(out.dtype(), "uniform", [&](auto z) {
            using T = decltype(z);
            T* p = static_cast<T*>(out.raw_data());
            int64_t n = out.numel();
            for (int64_t j = 0; 2 * j < n; ++j) {
                auto w = Generator::philox(seed, counter + static_cast<uint64_t>(j));
                for (int h = 0; h < 2 && 2 * j + h < n; ++h) {
                    double u = to_unit<T>(w[2 * h], w[2 * h + 1]);
                    T v = static_cast<T>(lo + (hi - lo) * u);
                    if (v >= static_cast<T>(hi) && hi > lo)
                        v = std::nextafter(static_cast<T>(hi), static_cast<T>(lo));
                    p[2 * j + h] = v;
                }
            }
        });
    }

    void normal(const Tensor& out, double mean, double std, uint64_t seed,
                uint64_t counter) override {
        dispatch_float(out.dtype(), "normal", [&](auto z) {
            using T = decltype(z);
            T* p = static_cast<T*>(out.raw_data());
            int64_t n = out.numel();
            for (int64_t j = 0; 2 * j < n; ++j) {
                auto w = Generator::philox(seed, counter + static_cast<uint64_t>(j));
                double u1 = 1.0 - to_unit<double>(w[0], w[1]);  // (0, 1]
                double u2 = to_unit<double>(w[2], w[3]);
                double r = std::sqrt(-2.0 * std::log(u1));
                p[2 * j] = static_cast<T>(mean + std * r * std::cos(2 * M_PI * u2));
                if (2 * j + 1 < n)
                    p[2 * j + 1] = static_cast<T>(mean + std * r * std::sin(2 * M_PI * u2));
            }
        });
    }

  private:
    static constexpr size_t kCacheLimit = size_t{2} << 30;        // 2 GiB kept at most
    static constexpr size_t kMaxCachedBlock = size_t{512} << 20;  // larger blocks go back
    static int size_class(size_t nbytes) {
        size_t b = 64;
        int c = 6;
        while (b < nbytes) {
            b <<= 1;
            ++c;
        }
        return c;
    }
    static size_t class_bytes(int cls) { return size_t{1} << cls; }
    std::mutex mu_;
    std::vector<void*> free_[64];
    size_t cached_ = 0;

    template <class T>
    static double to_unit(uint32_t a, uint32_t b) {
        if constexpr (std::is_same_v<T, float>)
            return static_cast<double>(a >> 8) * (1.0 / 16777216.0);
        uint64_t bits = ((static_cast<uint64_t>(a) << 32) | b) >> 11;
        return static_cast<double>(bits) * (1.0 / 9007199254740992.0);
    }
    template <class T>
    static void scale_c(T* c, const Gemm& g, T beta) {
        for (int64_t r = 0; r < g.m; ++r)
            for (int64_t col = 0; col < g.n; ++col)
                c[r * g.ldc + col] = beta == 0 ? T(0) : beta * c[r * g.ldc + col];
    }
    // acc[c] = Σ_r x[r * rs + c], c < C, rows in order; column blocks keep acc in L1.
    template <typename T>
    static void column_sums(const T* __restrict x, int64_t rows, int64_t rs, int64_t C,
                            double* __restrict acc) {
        constexpr int64_t kBlock = 512;
        for (int64_t c0 = 0; c0 < C; c0 += kBlock) {
            const int64_t c1 = std::min(C, c0 + kBlock);
            for (int64_t c = c0; c < c1; ++c) acc[c] = 0.0;
            for (int64_t r = 0; r < rows; ++r) {
                const T* row = x + r * rs;
                for (int64_t c = c0; c < c1; ++c) acc[c] += static_cast<double>(row[c]);
            }
        }
    }

    template <class T, class Acc>
    static void store(const Tensor& out, int64_t o, Acc v) {
        if constexpr (std::is_same_v<T, bool>)
            static_cast<T*>(out.raw_data())[o] = v != 0;
        else
            static_cast<T*>(out.raw_data())[o] = static_cast<T>(v);
    }
};

}  // namespace
}  // namespace cpu

Backend& cpu_backend() {
    static cpu::CpuBackend b;
    return b;
}

Backend& backend_for(Device d) {
    if (d.type == DeviceType::cpu) return cpu_backend();
    throw DeviceError(detail::concat("backend: device ", d.str(),
                                     " is not available in this build (CUDA backend not built)"));
}

}  // namespace soma
