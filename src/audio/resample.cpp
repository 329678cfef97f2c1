// Band-limited resampling by windowed-sinc interpolation.
//
// Output sample n sits at input time t = n * from / to. With the cutoff fc (a fraction of the
// input Nyquist: rolloff * min(1, to / from)), the ideal low-pass interpolator is
//     y[n] = sum_i x[i] * fc * sinc(fc * (t - i))
// truncated to |fc * (t - i)| <= Z zero crossings and tapered by a Kaiser window. The kernel
// sinc(u) * kaiser(u / Z) is tabulated once per (Z, beta) at kTableRes points per zero crossing
// and linearly interpolated, so each tap costs a few flops (it runs per example in training
// augmentation).
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <numbers>

#include "soma/audio.h"

namespace soma::audio {

namespace {

constexpr int kTableRes = 512;

// Modified Bessel function of the first kind, order 0 (power series; converges fast for the
// beta values used here).
double bessel_i0(double x) {
    double sum = 1, term = 1, q = x * x / 4;
    for (int k = 1; k < 64 && term > 1e-12 * sum; ++k) {
        term *= q / (static_cast<double>(k) * k);
        sum += term;
    }
    return sum;
}

// table[j] = sinc(j / kTableRes) * kaiser(j / (kTableRes * Z)), j in [0, Z * kTableRes + 1].
std::shared_ptr<const std::vector<float>> kernel_table(int zeros, double beta) {
    static std::mutex mu;
    static std::map<std::pair<int, double>, std::shared_ptr<const std::vector<float>>> cache;
    std::lock_guard<std::mutex> lock(mu);
    auto& slot = cache[{zeros, beta}];
    if (!slot) {
        auto t = std::make_shared<std::vector<float>>(static_cast<size_t>(zeros) * kTableRes + 2);
        double norm = bessel_i0(beta);
        for (size_t j = 0; j < t->size(); ++j) {
            double u = static_cast<double>(j) / kTableRes;
            double r = u / zeros;
            double w = r <= 1 ? bessel_i0(beta * std::sqrt(1 - r * r)) / norm : 0.0;
            double s = u == 0 ? 1.0 : std::sin(std::numbers::pi * u) / (std::numbers::pi * u);
            (*t)[j] = static_cast<float>(s * w);
        }
        slot = t;
    }
    return slot;
}

}  // namespace

std::vector<float> resample(std::span<const float> x, double from_rate, double to_rate,
                            const ResampleOptions& o) {
    SOMA_CHECK_VALUE(
        std::isfinite(from_rate) && from_rate > 0 && std::isfinite(to_rate) && to_rate > 0,
        "resample: sample rates must be positive and finite: got ", from_rate, " -> ", to_rate);
    double ratio = to_rate / from_rate;
    SOMA_CHECK_VALUE(ratio >= 1.0 / 64 && ratio <= 64, "resample: rate ratio ", ratio,
                     " out of range: got ", from_rate, " -> ", to_rate,
                     ", expected a ratio within [1/64, 64]. Resample in two steps");
    SOMA_CHECK_VALUE(o.zero_crossings >= 1 && o.zero_crossings <= 256,
                     "resample: zero_crossings must be in [1, 256]: got ", o.zero_crossings);
    SOMA_CHECK_VALUE(o.rolloff > 0 && o.rolloff <= 1, "resample: rolloff must be in (0, 1]: got ",
                     o.rolloff);
    const auto n_in = static_cast<int64_t>(x.size());
    const auto n_out = static_cast<int64_t>(std::llround(static_cast<double>(n_in) * ratio));
    std::vector<float> y(static_cast<size_t>(n_out));
    if (n_in == 0) return y;
    auto table_ptr = kernel_table(o.zero_crossings, o.kaiser_beta);
    const float* table = table_ptr->data();
    const double fc = o.rolloff * std::min(1.0, ratio);
    const double half = o.zero_crossings / fc;  // kernel half-width in input samples
    const double step = from_rate / to_rate;
    for (int64_t n = 0; n < n_out; ++n) {
        double t = static_cast<double>(n) * step;
        auto i0 = static_cast<int64_t>(std::ceil(t - half));
        auto i1 = static_cast<int64_t>(std::floor(t + half));
        i0 = std::max<int64_t>(i0, 0);
        i1 = std::min<int64_t>(i1, n_in - 1);
        double acc = 0;
        for (int64_t i = i0; i <= i1; ++i) {
            double u = std::abs(t - static_cast<double>(i)) * fc * kTableRes;
            auto j = static_cast<int64_t>(u);
            double f = u - static_cast<double>(j);
            double k = table[j] + f * (table[j + 1] - table[j]);
            acc += x[static_cast<size_t>(i)] * k;
        }
        y[static_cast<size_t>(n)] = static_cast<float>(acc * fc);
    }
    return y;
}

}  // namespace soma::audio
