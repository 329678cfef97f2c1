// soma/dtype.h — element types, devices and scalars.
//
// DType: float32 (default), float64 (gradient checks), int64 (indices, labels), boolean (masks).
// Type promotion follows PyTorch: bool < int64 < float32 < float64 by category; a plain C++
// number never raises a tensor's floating precision (float32 tensor * 2.5 stays float32).
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <type_traits>

namespace soma {

enum class DType : uint8_t { float32, float64, int64, boolean };
inline constexpr int kNumDTypes = 4;

const char* dtype_name(DType t);  // "float32", ...
/// Bytes per element (inline: every new tensor and kernel call asks).
constexpr size_t dtype_size(DType t) {
    constexpr size_t kSize[] = {4, 8, 8, 1};  // float32, float64, int64, bool
    static_assert(sizeof(kSize) / sizeof(kSize[0]) == kNumDTypes);
    return kSize[static_cast<int>(t)];
}
inline bool is_floating(DType t) { return t == DType::float32 || t == DType::float64; }
inline bool is_integral(DType t, bool include_bool = false) {
    return t == DType::int64 || (include_bool && t == DType::boolean);
}
/// PyTorch's promote_types for two tensor dtypes.
DType promote_types(DType a, DType b);
std::ostream& operator<<(std::ostream& os, DType t);

template <class T>
constexpr DType dtype_of() {
    if constexpr (std::is_same_v<T, float>)
        return DType::float32;
    else if constexpr (std::is_same_v<T, double>)
        return DType::float64;
    else if constexpr (std::is_same_v<T, int64_t>)
        return DType::int64;
    else if constexpr (std::is_same_v<T, bool>)
        return DType::boolean;
    else
        static_assert(sizeof(T) == 0, "soma: unsupported element type");
}

enum class DeviceType : uint8_t { cpu, cuda };
struct Device {
    DeviceType type = DeviceType::cpu;
    int index = 0;
    bool operator==(const Device&) const = default;
    std::string str() const;
    static Device cpu() { return {}; }
    static Device cuda(int i = 0) { return {DeviceType::cuda, i}; }
};
std::ostream& operator<<(std::ostream& os, Device d);

/// A number that knows whether it was written as an integer, a bool or a floating value,
/// so that `int_tensor + 1` stays int64 while `int_tensor + 0.5` becomes float32.
class Scalar {
  public:
    Scalar() = default;
    Scalar(double v) : d_(v), i_(static_cast<int64_t>(v)), kind_(Kind::floating) {}
    Scalar(float v) : Scalar(static_cast<double>(v)) {}
    Scalar(bool v) : d_(v), i_(v), kind_(Kind::boolean) {}
    template <class I, std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>, int> = 0>
    Scalar(I v) : d_(static_cast<double>(v)), i_(static_cast<int64_t>(v)), kind_(Kind::integral) {}

    double to_double() const { return d_; }
    int64_t to_int() const { return i_; }
    bool is_floating() const { return kind_ == Kind::floating; }
    bool is_integral() const { return kind_ == Kind::integral; }
    bool is_bool() const { return kind_ == Kind::boolean; }
    /// The dtype a 0-dim tensor made from this scalar gets (float32 / int64 / boolean).
    DType natural_dtype() const {
        return is_floating() ? DType::float32 : is_bool() ? DType::boolean : DType::int64;
    }

  private:
    enum class Kind : uint8_t { floating, integral, boolean };
    double d_ = 0;
    int64_t i_ = 0;
    Kind kind_ = Kind::integral;
};

}  // namespace soma
