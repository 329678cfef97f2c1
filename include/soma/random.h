// soma/random.h — the one seeded generator (Philox4x32-10, counter based).
//
// A seed gives the same numbers on every run, machine and thread count. rand/randn/randint/
// normal/dropout all draw from the default generator unless given their own.
//
//     soma::manual_seed(42);
//     auto a = soma::randn({2, 2});   // identical on every machine
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace soma {

class Generator {
  public:
    explicit Generator(uint64_t seed = 5489) { manual_seed(seed); }
    void manual_seed(uint64_t seed) {
        seed_ = seed;
        offset_ = 0;
    }
    uint64_t seed() const { return seed_; }
    /// Reserves n 128-bit Philox blocks and returns the first block's counter.
    uint64_t reserve(uint64_t blocks) {
        uint64_t c = offset_;
        offset_ += blocks;
        return c;
    }
    /// Serialised state (seed, offset) for checkpoints.
    std::array<uint64_t, 2> state() const { return {seed_, offset_}; }
    void set_state(const std::array<uint64_t, 2>& s) {
        seed_ = s[0];
        offset_ = s[1];
    }
    /// Philox4x32-10 block at `counter`: four uniform 32-bit words.
    static std::array<uint32_t, 4> philox(uint64_t seed, uint64_t counter);

    // Convenience draws on the host (used by data shuffling, RL, ...).
    uint32_t next_u32();
    double next_double();  // [0, 1)
    double next_normal();
    uint64_t next_below(uint64_t n);  // uniform in [0, n)

  private:
    uint64_t seed_ = 0;
    uint64_t offset_ = 0;
    std::array<uint32_t, 4> buf_{};
    int buf_pos_ = 4;
};

Generator& default_generator();
/// Seeds the default generator.
void manual_seed(uint64_t seed);

}  // namespace soma
