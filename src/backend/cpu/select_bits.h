// Internal: `take ? a : b` for floating values as a bit-mask select. A data-dependent branch
// mispredicts half the time on random data (ReLU masks, max-pooling windows), and GCC keeps a
// floating ?: as a branch when an arm can trap (`v * s` under -ftrapping-math), which also blocks
// vectorisation; the mask form has no branch and vectorises. Exact for every value (NaN, inf).
#pragma once

#include <bit>
#include <cstdint>
#include <type_traits>

namespace soma::cpu {

template <class T>
inline T select_bits(bool take, T a, T b) {
    static_assert(sizeof(T) == 4 || sizeof(T) == 8, "select_bits: 4- or 8-byte values only");
    using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
    const U m = U(0) - static_cast<U>(take);
    return std::bit_cast<T>((std::bit_cast<U>(a) & m) | (std::bit_cast<U>(b) & ~m));
}

}  // namespace soma::cpu
