// Spectral features: power spectrogram (FFTW, single precision), mel filterbank, log-mel, MFCC.
//
// FFTW's planner is not thread-safe, so real-to-complex plans are created under a mutex and
// cached by size (FFTW_ESTIMATE | FFTW_UNALIGNED: no timing runs, any buffer alignment); the
// new-array execute function is thread-safe, so frames are transformed without the lock.
#include <fftw3.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <numbers>

#include "soma/audio.h"

namespace soma::audio {

namespace {

// Plans live until exit; the destructor frees them (and FFTW's planner state) so leak checkers
// see a clean exit.
struct PlanCache {
    std::mutex mu;
    std::map<int, fftwf_plan> plans;
    ~PlanCache() {
        for (auto& [n, p] : plans) fftwf_destroy_plan(p);
        fftwf_cleanup();
    }
};

fftwf_plan r2c_plan(int n) {
    static PlanCache cache;
    std::lock_guard<std::mutex> lock(cache.mu);
    auto it = cache.plans.find(n);
    if (it != cache.plans.end()) return it->second;
    std::vector<float> in(static_cast<size_t>(n));
    std::vector<fftwf_complex> out(static_cast<size_t>(n / 2 + 1));
    fftwf_plan p = fftwf_plan_dft_r2c_1d(n, in.data(), out.data(), FFTW_ESTIMATE | FFTW_UNALIGNED);
    SOMA_CHECK(p != nullptr, "power_spectrogram: FFTW could not plan a transform of size ", n);
    cache.plans.emplace(n, p);
    return p;
}

void check_stft(const StftOptions& o, const char* op) {
    SOMA_CHECK_VALUE(o.n_fft >= 2 && o.n_fft <= (1 << 20), op, ": n_fft must be in [2, 2^20]: got ",
                     o.n_fft);
    SOMA_CHECK_VALUE(o.win_length >= 1 && o.win_length <= o.n_fft, op,
                     ": win_length must be in [1, n_fft]: got ", o.win_length, " with n_fft ",
                     o.n_fft);
    SOMA_CHECK_VALUE(o.hop >= 1, op, ": hop must be positive: got ", o.hop);
}

}  // namespace

double hz_to_mel(double hz, MelScale scale) {
    if (scale == MelScale::htk) return 2595.0 * std::log10(1.0 + hz / 700.0);
    const double f_sp = 200.0 / 3, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
    const double logstep = std::log(6.4) / 27.0;
    return hz < min_log_hz ? hz / f_sp : min_log_mel + std::log(hz / min_log_hz) / logstep;
}

double mel_to_hz(double mel, MelScale scale) {
    if (scale == MelScale::htk) return 700.0 * (std::pow(10.0, mel / 2595.0) - 1.0);
    const double f_sp = 200.0 / 3, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
    const double logstep = std::log(6.4) / 27.0;
    return mel < min_log_mel ? mel * f_sp : min_log_hz * std::exp(logstep * (mel - min_log_mel));
}

Tensor mel_filterbank(int n_mels, int n_fft, double sample_rate, double f_min, double f_max,
                      MelScale scale, bool slaney_norm) {
    SOMA_CHECK_VALUE(n_mels >= 1, "mel_filterbank: n_mels must be positive: got ", n_mels);
    SOMA_CHECK_VALUE(n_fft >= 2, "mel_filterbank: n_fft must be at least 2: got ", n_fft);
    SOMA_CHECK_VALUE(sample_rate > 0 && std::isfinite(sample_rate),
                     "mel_filterbank: sample rate must be positive: got ", sample_rate);
    SOMA_CHECK_VALUE(f_min >= 0 && f_min < f_max && f_max <= sample_rate / 2 + 1e-9,
                     "mel_filterbank: frequencies must satisfy 0 <= f_min < f_max <= sample_rate "
                     "/ 2: got f_min ",
                     f_min, ", f_max ", f_max, ", sample rate ", sample_rate);
    const int n_freq = n_fft / 2 + 1;
    // n_mels + 2 points equally spaced in mel: left edge, centre, right edge of each triangle.
    std::vector<double> pts(static_cast<size_t>(n_mels) + 2);
    double m0 = hz_to_mel(f_min, scale), m1 = hz_to_mel(f_max, scale);
    for (size_t i = 0; i < pts.size(); ++i)
        pts[i] = mel_to_hz(m0 + (m1 - m0) * static_cast<double>(i) / (n_mels + 1), scale);
    std::vector<float> w(static_cast<size_t>(n_mels) * n_freq, 0.f);
    for (int m = 0; m < n_mels; ++m) {
        double l = pts[m], c = pts[m + 1], r = pts[m + 2];
        double norm = slaney_norm ? 2.0 / (r - l) : 1.0;
        for (int k = 0; k < n_freq; ++k) {
            double f = sample_rate * k / n_fft;
            double v = std::max(0.0, std::min((f - l) / (c - l), (r - f) / (r - c)));
            w[static_cast<size_t>(m) * n_freq + k] = static_cast<float>(v * norm);
        }
    }
    return from_vector(w, {n_mels, n_freq});
}

Tensor power_spectrogram(std::span<const float> x, const StftOptions& o) {
    check_stft(o, "power_spectrogram");
    const int n_freq = o.n_fft / 2 + 1;
    const auto len = static_cast<int64_t>(x.size());
    const int64_t frames = len < o.win_length ? 0 : 1 + (len - o.win_length) / o.hop;
    std::vector<float> out(static_cast<size_t>(frames) * n_freq);
    if (frames > 0) {
        fftwf_plan plan = r2c_plan(o.n_fft);
        std::vector<float> window(static_cast<size_t>(o.win_length));
        for (int i = 0; i < o.win_length; ++i)  // periodic Hann (torch.hann_window default)
            window[i] =
                static_cast<float>(0.5 - 0.5 * std::cos(2 * std::numbers::pi * i / o.win_length));
        std::vector<float> buf(static_cast<size_t>(o.n_fft), 0.f);
        std::vector<fftwf_complex> spec(static_cast<size_t>(n_freq));
        for (int64_t f = 0; f < frames; ++f) {
            const float* src = x.data() + f * o.hop;
            for (int i = 0; i < o.win_length; ++i) buf[i] = src[i] * window[i];
            fftwf_execute_dft_r2c(plan, buf.data(), spec.data());
            float* dst = out.data() + f * n_freq;
            for (int k = 0; k < n_freq; ++k)
                dst[k] = spec[k][0] * spec[k][0] + spec[k][1] * spec[k][1];
        }
    }
    return from_vector(out, {frames, n_freq});
}

Tensor log_mel_spectrogram(std::span<const float> x, const MelOptions& o) {
    check_stft(o.stft, "log_mel_spectrogram");
    SOMA_CHECK_VALUE(o.floor > 0, "log_mel_spectrogram: floor must be positive: got ", o.floor);
    double f_max = o.f_max > 0 ? o.f_max : o.sample_rate / 2;
    Tensor fb = mel_filterbank(o.n_mels, o.stft.n_fft, o.sample_rate, o.f_min, f_max, o.scale,
                               o.slaney_norm);
    Tensor p = power_spectrogram(x, o.stft);  // [frames, n_freq]
    const int64_t frames = p.size(0), n_freq = p.size(1);
    auto pv = p.to_vector<float>();
    auto fv = fb.to_vector<float>();
    std::vector<float> out(static_cast<size_t>(o.n_mels) * frames);
    double peak = 0;
    for (int m = 0; m < o.n_mels; ++m) {
        const float* w = fv.data() + static_cast<size_t>(m) * n_freq;
        int k0 = 0, k1 = static_cast<int>(n_freq);  // skip the zero tails of the triangle
        while (k0 < k1 && w[k0] == 0.f) ++k0;
        while (k1 > k0 && w[k1 - 1] == 0.f) --k1;
        for (int64_t f = 0; f < frames; ++f) {
            const float* row = pv.data() + f * n_freq;
            double s = 0;
            for (int k = k0; k < k1; ++k) s += static_cast<double>(w[k]) * row[k];
            out[static_cast<size_t>(m) * frames + f] = static_cast<float>(s);
            peak = std::max(peak, s);
        }
    }
    double lo = o.floor;
    if (o.top_db > 0) lo = std::max(lo, peak * std::pow(10.0, -o.top_db / 10.0));
    for (float& v : out) v = static_cast<float>(std::log(std::max(static_cast<double>(v), lo)));
    return from_vector(out, {static_cast<int64_t>(o.n_mels), frames});
}

Tensor mfcc(std::span<const float> x, int n_mfcc, const MelOptions& o) {
    SOMA_CHECK_VALUE(n_mfcc >= 1 && n_mfcc <= o.n_mels,
                     "mfcc: n_mfcc must be in [1, n_mels = ", o.n_mels, "]: got ", n_mfcc);
    Tensor lm = log_mel_spectrogram(x, o);
    const int64_t frames = lm.size(1), m = o.n_mels;
    auto v = lm.to_vector<float>();
    std::vector<float> out(static_cast<size_t>(n_mfcc) * frames);
    // c[q] = s(q) sum_m x[m] cos(pi q (m + 1/2) / M), s(0) = sqrt(1/M), else sqrt(2/M).
    for (int q = 0; q < n_mfcc; ++q) {
        double s = std::sqrt((q == 0 ? 1.0 : 2.0) / static_cast<double>(m));
        for (int64_t f = 0; f < frames; ++f) {
            double acc = 0;
            for (int64_t i = 0; i < m; ++i)
                acc += v[static_cast<size_t>(i * frames + f)] *
                       std::cos(std::numbers::pi * q * (static_cast<double>(i) + 0.5) /
                                static_cast<double>(m));
            out[static_cast<size_t>(q * frames + f)] = static_cast<float>(s * acc);
        }
    }
    return from_vector(out, {static_cast<int64_t>(n_mfcc), frames});
}

}  // namespace soma::audio
