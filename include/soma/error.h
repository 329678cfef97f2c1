// soma/error.h — the one exception family Soma throws.
//
// Contract: library code never aborts or exits; every bad input raises a soma::Error (or one of
// its subclasses) whose message reads
//     "<op or module>: <what is wrong>: got <actual>, expected <expected>. [hint]"
// Example:
//     try { soma::matmul(a, b); } catch (const soma::ShapeError& e) { std::cerr << e.what(); }
#pragma once

#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace soma {

class Error : public std::runtime_error {
  public:
    explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};
class ShapeError : public Error {
  public:
    using Error::Error;
};
class DTypeError : public Error {
  public:
    using Error::Error;
};
class DeviceError : public Error {
  public:
    using Error::Error;
};
class ValueError : public Error {
  public:
    using Error::Error;
};
class IndexError : public Error {
  public:
    using Error::Error;
};
/// Raised by the autograd engine (in-place modification of a saved tensor, anomaly mode, ...).
class AutogradError : public Error {
  public:
    using Error::Error;
};

/// Formats a shape as "[2, 3]".
std::string shape_str(const std::vector<int64_t>& shape);

namespace detail {
inline void append(std::ostringstream&) {}
template <class T, class... Rest>
void append(std::ostringstream& os, const T& v, const Rest&... rest) {
    if constexpr (std::is_same_v<T, std::vector<int64_t>>)
        os << shape_str(v);
    else
        os << v;
    append(os, rest...);
}
template <class... Parts>
std::string concat(const Parts&... parts) {
    std::ostringstream os;
    append(os, parts...);
    return os.str();
}
}  // namespace detail

}  // namespace soma

/// SOMA_CHECK(cond, ErrorType, parts...) throws ErrorType(concat(parts...)) when cond is false.
/// Shapes (std::vector<int64_t>) format as [a, b].
#define SOMA_CHECK_T(cond, ErrType, ...)                        \
    do {                                                        \
        if (!(cond)) [[unlikely]]                               \
            throw ErrType(::soma::detail::concat(__VA_ARGS__)); \
    } while (0)
#define SOMA_CHECK(cond, ...) SOMA_CHECK_T(cond, ::soma::Error, __VA_ARGS__)
#define SOMA_CHECK_SHAPE(cond, ...) SOMA_CHECK_T(cond, ::soma::ShapeError, __VA_ARGS__)
#define SOMA_CHECK_DTYPE(cond, ...) SOMA_CHECK_T(cond, ::soma::DTypeError, __VA_ARGS__)
#define SOMA_CHECK_VALUE(cond, ...) SOMA_CHECK_T(cond, ::soma::ValueError, __VA_ARGS__)
#define SOMA_CHECK_INDEX(cond, ...) SOMA_CHECK_T(cond, ::soma::IndexError, __VA_ARGS__)
