// The seeded generator: reproducibility, ranges, moments, state round trips, Philox itself.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "soma/ops.h"
#include "soma/random.h"
#include "soma/tensor.h"

using namespace soma;

namespace {

struct Moments {
    double mean = 0, std = 0, min = 0, max = 0;
};
Moments moments(const Tensor& t) {
    std::vector<double> v = t.to_vector<double>();
    Moments m;
    m.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
    double ss = 0;
    for (double x : v) ss += (x - m.mean) * (x - m.mean);
    m.std = std::sqrt(ss / static_cast<double>(v.size() - 1));
    m.min = *std::min_element(v.begin(), v.end());
    m.max = *std::max_element(v.begin(), v.end());
    return m;
}

}  // namespace

TEST(RandomSeed, SameSeedSameSequences) {
    auto draw = [] {
        std::vector<Tensor> out;
        out.push_back(rand({5, 7}));
        out.push_back(randn({33}));
        out.push_back(randint(-5, 5, {17}));
        out.push_back(normal(2.0, 3.0, {9}, {.dtype = DType::float64}));
        out.push_back(rand({3}, {.dtype = DType::float64}));
        out.push_back(empty({4}).uniform_(-2, 2));
        out.push_back(empty({5}).normal_(1, 0.5));
        return out;
    };
    manual_seed(123);
    auto a = draw();
    manual_seed(123);
    auto b = draw();
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
        EXPECT_TRUE(equal(a[i], b[i])) << "draw " << i;
        EXPECT_EQ(a[i].dtype(), b[i].dtype());
    }
    EXPECT_EQ(a[2].dtype(), DType::int64);
    // Consecutive draws differ.
    EXPECT_FALSE(equal(a[0].flatten().narrow(0, 0, 9), a[3].to(DType::float32)));
    manual_seed(123);
    Tensor r1 = rand({10});
    Tensor r2 = rand({10});
    EXPECT_FALSE(equal(r1, r2));
}

TEST(RandomSeed, DifferentSeedsDiffer) {
    manual_seed(1);
    Tensor a = rand({100});
    Tensor an = randn({100});
    Tensor ai = randint(0, 1000000, {100});
    manual_seed(2);
    Tensor b = rand({100});
    Tensor bn = randn({100});
    Tensor bi = randint(0, 1000000, {100});
    EXPECT_FALSE(equal(a, b));
    EXPECT_FALSE(equal(an, bn));
    EXPECT_FALSE(equal(ai, bi));
    // Not just a shift of the same stream: no element in common.
    std::vector<float> va = a.to_vector<float>(), vb = b.to_vector<float>();
    int common = 0;
    for (float x : va) common += static_cast<int>(std::count(vb.begin(), vb.end(), x));
    EXPECT_LE(common, 1);
    // 64-bit seeds use both halves of the Philox key.
    manual_seed(uint64_t{1} << 32);
    Tensor c = rand({100});
    manual_seed(0);
    EXPECT_FALSE(equal(c, rand({100})));
}

TEST(RandomDistribution, RandnMoments) {
    manual_seed(7);
    Moments m = moments(randn({100000}));
    EXPECT_NEAR(m.mean, 0.0, 0.015);  // standard error 0.003
    EXPECT_NEAR(m.std, 1.0, 0.015);
    Moments d = moments(randn({100000}, {.dtype = DType::float64}));
    EXPECT_NEAR(d.mean, 0.0, 0.015);
    EXPECT_NEAR(d.std, 1.0, 0.015);
    Moments n = moments(normal(3.0, 2.0, {100000}));
    EXPECT_NEAR(n.mean, 3.0, 0.03);
    EXPECT_NEAR(n.std, 2.0, 0.03);
    // Odd sizes fill every element (the last Box-Muller pair is half used).
    Tensor odd = randn({100001});
    EXPECT_TRUE(allclose(odd, odd));  // no NaN
    Moments o = moments(odd);
    EXPECT_NEAR(o.std, 1.0, 0.015);
    // Tails exist but are not absurd.
    EXPECT_LT(o.min, -3.5);
    EXPECT_GT(o.max, 3.5);
    EXPECT_GT(o.min, -7);
    EXPECT_LT(o.max, 7);
}

TEST(RandomDistribution, RandIsInUnitInterval) {
    manual_seed(11);
    for (DType dt : {DType::float32, DType::float64}) {
        Moments m = moments(rand({100000}, {.dtype = dt}));
        EXPECT_GE(m.min, 0.0);
        EXPECT_LT(m.max, 1.0);
        EXPECT_NEAR(m.mean, 0.5, 0.005);
        EXPECT_NEAR(m.std, std::sqrt(1.0 / 12), 0.005);
    }
    Tensor u = empty({10000}).uniform_(-3, -1);
    Moments mu = moments(u);
    EXPECT_GE(mu.min, -3.0);
    EXPECT_LT(mu.max, -1.0);
    EXPECT_NEAR(mu.mean, -2.0, 0.03);
}

TEST(RandomDistribution, RandintBounds) {
    manual_seed(5);
    Tensor t = randint(-3, 4, {20000});
    EXPECT_EQ(t.dtype(), DType::int64);
    std::vector<int64_t> v = t.to_vector<int64_t>();
    std::vector<int> hist(7, 0);
    for (int64_t x : v) {
        ASSERT_GE(x, -3);
        ASSERT_LT(x, 4);
        ++hist[static_cast<size_t>(x + 3)];
    }
    for (int h : hist) EXPECT_NEAR(h, 20000 / 7.0, 250);  // ~5 sigma
    EXPECT_EQ(randint(9, 10, {5}).to_vector<int64_t>(), std::vector<int64_t>(5, 9));
    Tensor f = randint(0, 3, {50}, {.dtype = DType::float32});
    EXPECT_EQ(f.dtype(), DType::float32);
    for (float x : f.to_vector<float>()) EXPECT_EQ(x, std::floor(x));
    Tensor big = randint(0, int64_t{1} << 40, {1000});
    EXPECT_GT(moments(big).max, static_cast<double>(int64_t{1} << 39));
}

TEST(RandomState, DefaultGeneratorRoundTrip) {
    manual_seed(99);
    rand({13});  // advance
    auto state = default_generator().state();
    EXPECT_EQ(state[0], 99u);
    Tensor a = rand({7});
    Tensor an = randn({6});
    Tensor ai = randint(0, 100, {5});
    default_generator().set_state(state);
    EXPECT_TRUE(equal(rand({7}), a));
    EXPECT_TRUE(equal(randn({6}), an));
    EXPECT_TRUE(equal(randint(0, 100, {5}), ai));
    EXPECT_EQ(default_generator().seed(), 99u);
}

TEST(RandomState, HostDrawsRoundTrip) {
    Generator g(2024);
    auto draws = [](Generator& gen) {
        std::vector<double> out;
        out.push_back(gen.next_u32());
        out.push_back(gen.next_double());
        out.push_back(gen.next_normal());
        out.push_back(static_cast<double>(gen.next_below(1000)));
        out.push_back(gen.next_u32());
        return out;
    };
    g.next_u32();  // leave the generator mid-block
    auto s = g.state();
    auto a = draws(g);
    g.set_state(s);
    EXPECT_EQ(draws(g), a);
    // Re-seeding restarts the stream even after a partial draw.
    g.manual_seed(7);
    auto b = draws(g);
    g.next_u32();
    g.manual_seed(7);
    EXPECT_EQ(draws(g), b);
    Generator h(7);
    EXPECT_EQ(draws(h), b);
    EXPECT_NE(a, b);
}

TEST(RandomState, HostDrawRanges) {
    Generator g(3);
    double sum = 0;
    for (int i = 0; i < 20000; ++i) {
        double u = g.next_double();
        ASSERT_GE(u, 0.0);
        ASSERT_LT(u, 1.0);
        sum += u;
    }
    EXPECT_NEAR(sum / 20000, 0.5, 0.01);
    std::vector<int> hist(5, 0);
    for (int i = 0; i < 10000; ++i) {
        uint64_t k = g.next_below(5);
        ASSERT_LT(k, 5u);
        ++hist[k];
    }
    for (int h : hist) EXPECT_NEAR(h, 2000, 200);
    EXPECT_EQ(g.next_below(1), 0u);
    EXPECT_EQ(g.next_below(0), 0u);
    double s = 0, ss = 0;
    for (int i = 0; i < 20000; ++i) {
        double z = g.next_normal();
        ASSERT_TRUE(std::isfinite(z));
        s += z;
        ss += z * z;
    }
    EXPECT_NEAR(s / 20000, 0.0, 0.03);
    EXPECT_NEAR(ss / 20000, 1.0, 0.04);
}

TEST(RandomPhilox, KnownAnswers) {
    // Random123's known-answer vector for philox4x32-10 with counter 0 and key 0.
    auto z = Generator::philox(0, 0);
    EXPECT_EQ(z, (std::array<uint32_t, 4>{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}));
    // Key (seed) 42, counter 5: from an independent Python transcription of the same rounds.
    auto k = Generator::philox(42, 5);
    EXPECT_EQ(k, (std::array<uint32_t, 4>{0x5099d809u, 0x4b20b5d2u, 0x0d41b5e2u, 0x0a653407u}));
    EXPECT_NE(Generator::philox(42, 6), k);
    EXPECT_NE(Generator::philox(43, 5), k);
}

TEST(RandomState, ReserveAdvancesTheCounter) {
    Generator g(1);
    EXPECT_EQ(g.state()[1], 0u);
    EXPECT_EQ(g.reserve(10), 0u);
    EXPECT_EQ(g.reserve(3), 10u);
    EXPECT_EQ(g.state()[1], 13u);
    // Tensor draws reserve ceil(numel / 2) blocks.
    manual_seed(0);
    rand({7});
    EXPECT_EQ(default_generator().state()[1], 4u);
    randn({4});
    EXPECT_EQ(default_generator().state()[1], 6u);
}
