// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11).
// Counter-based: element i of a fill uses block (offset + i / 4), so results do not depend on
// thread count or on how the work is split.
#include "soma/random.h"

#include <cmath>

namespace soma {

std::array<uint32_t, 4> Generator::philox(uint64_t seed, uint64_t counter) {
    constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
    constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
    uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32);
    uint32_t c2 = 0, c3 = 0;
    uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
    for (int r = 0; r < 10; ++r) {
        uint64_t p0 = static_cast<uint64_t>(kM0) * c0;
        uint64_t p1 = static_cast<uint64_t>(kM1) * c2;
        uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
        uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0;
        c1 = n1;
        c2 = n2;
        c3 = n3;
        k0 += kW0;
        k1 += kW1;
    }
    return {c0, c1, c2, c3};
}

// Host draws take one whole Philox block each, so that (seed, offset) is the complete state:
// set_state() and manual_seed() then reproduce the next draws exactly (words buffered across
// calls would survive a reseed). buf_ / buf_pos_ are unused.
namespace {
double unit53(uint32_t hi, uint32_t lo) {
    uint64_t bits = ((static_cast<uint64_t>(hi) << 32) | lo) >> 11;  // 53 random bits
    return static_cast<double>(bits) * (1.0 / 9007199254740992.0);
}
}  // namespace

uint32_t Generator::next_u32() { return philox(seed_, reserve(1))[0]; }

double Generator::next_double() {
    auto w = philox(seed_, reserve(1));
    return unit53(w[0], w[1]);
}

double Generator::next_normal() {
    // Box-Muller; u1 in (0, 1].
    auto w = philox(seed_, reserve(1));
    double u1 = 1.0 - unit53(w[0], w[1]);
    double u2 = unit53(w[2], w[3]);
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

uint64_t Generator::next_below(uint64_t n) {
    if (n <= 1) return 0;
    // Rejection sampling for an unbiased draw.
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    for (;;) {
        auto w = philox(seed_, reserve(1));
        uint64_t v = (static_cast<uint64_t>(w[0]) << 32) | w[1];
        if (v < limit) return v % n;
    }
}

Generator& default_generator() {
    static Generator g(0);
    return g;
}

void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace soma
