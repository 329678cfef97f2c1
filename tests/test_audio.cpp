// soma/audio: WAV reading and writing, resampling, spectra and mel features.
#include <unistd.h>

#include <cmath>
#include <complex>
#include <cstdio>
#include <numbers>
#include <random>

#include "soma/audio.h"
#include "soma/io.h"
#include "test_util.h"

using namespace soma;
using namespace soma::audio;
using soma::testing::error_of;

namespace {

std::string tmp_path(const std::string& name) {
    return ::testing::TempDir() + "soma_audio_" + std::to_string(::getpid()) + "_" + name;
}

std::vector<float> sine(double freq, double rate, int64_t n, double amp = 0.5) {
    std::vector<float> x(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
        x[i] = static_cast<float>(amp * std::sin(2 * std::numbers::pi * freq * i / rate));
    return x;
}

// A well-formed 16-bit mono header with `data_bytes` of samples, then the samples.
std::string wav_bytes(uint16_t code, uint16_t channels, uint32_t rate, uint16_t bits,
                      uint32_t data_bytes, size_t present_bytes) {
    std::string s;
    auto u32 = [&](uint32_t v) {
        for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    };
    auto u16 = [&](uint16_t v) {
        s.push_back(static_cast<char>(v & 0xff));
        s.push_back(static_cast<char>(v >> 8));
    };
    s += "RIFF";
    u32(36 + data_bytes);
    s += "WAVEfmt ";
    u32(16);
    u16(code);
    u16(channels);
    u32(rate);
    u32(rate * channels * (bits / 8));
    u16(static_cast<uint16_t>(channels * (bits / 8)));
    u16(bits);
    s += "data";
    u32(data_bytes);
    s += std::string(present_bytes, '\x01');
    return s;
}

// (x, y) mean absolute difference over the middle of both (edges differ by design).
double max_abs_diff_middle(const std::vector<float>& a, const std::vector<float>& b,
                           size_t margin) {
    double m = 0;
    size_t n = std::min(a.size(), b.size());
    for (size_t i = margin; i + margin < n; ++i) m = std::max(m, std::abs(double(a[i]) - b[i]));
    return m;
}

double rms(const std::vector<float>& x, size_t margin = 0) {
    double s = 0;
    size_t n = 0;
    for (size_t i = margin; i + margin < x.size(); ++i, ++n) s += double(x[i]) * x[i];
    return std::sqrt(s / std::max<size_t>(n, 1));
}

}  // namespace

// ---- WAV -------------------------------------------------------------------------------------

TEST(AudioWav, RoundTrip16BitMonoExact) {
    Audio a{.sample_rate = 16000, .channels = 1, .samples = {}};
    std::mt19937 rng(1);
    for (int i = 0; i < 999; ++i)  // odd count, values on the 16-bit grid, both extremes
        a.samples.push_back(static_cast<float>(static_cast<int>(rng() % 65536) - 32768) / 32768.f);
    a.samples[0] = -1.f;
    a.samples[1] = 32767.f / 32768.f;
    std::string p = tmp_path("m16.wav");
    write_wav(p, a, 16);
    Audio b = read_wav(p);
    EXPECT_EQ(b.sample_rate, 16000);
    EXPECT_EQ(b.channels, 1);
    EXPECT_EQ(b.samples, a.samples);
    EXPECT_EQ(read_file(p).size(), 44u + 999 * 2);
    std::remove(p.c_str());
}

TEST(AudioWav, RoundTrip8BitStereoExactAndDownmix) {
    Audio a{.sample_rate = 11025, .channels = 2, .samples = {}};
    for (int i = 0; i < 257; ++i) {  // every 8-bit value in each channel
        a.samples.push_back(static_cast<float>(i % 256 - 128) / 128.f);
        a.samples.push_back(static_cast<float>((i * 7) % 256 - 128) / 128.f);
    }
    std::string p = tmp_path("s8.wav");
    write_wav(p, a, 8);
    Audio b = read_wav(p);
    EXPECT_EQ(b.sample_rate, 11025);
    EXPECT_EQ(b.channels, 2);
    EXPECT_EQ(b.frames(), 257);
    EXPECT_EQ(b.samples, a.samples);
    auto m = to_mono(b);
    ASSERT_EQ(m.size(), 257u);
    for (size_t i = 0; i < m.size(); ++i)
        EXPECT_FLOAT_EQ(m[i], 0.5f * (a.samples[2 * i] + a.samples[2 * i + 1]));
    std::remove(p.c_str());
    // Odd data size (8-bit mono): the writer pads to an even chunk, the reader ignores the pad.
    Audio odd{.sample_rate = 8000, .channels = 1, .samples = {0.5f, -0.5f, 0.f}};
    std::string bytes = encode_wav(odd, 8);
    EXPECT_EQ(bytes.size(), 44u + 4);
    EXPECT_EQ(decode_wav(bytes).samples, odd.samples);
}

TEST(AudioWav, QuantisesAndClipsOnWrite) {
    Audio a{.sample_rate = 8000, .channels = 1, .samples = {2.f, -3.f, 0.25f, NAN}};
    Audio b = decode_wav(encode_wav(a, 16));
    EXPECT_FLOAT_EQ(b.samples[0], 32767.f / 32768.f);
    EXPECT_FLOAT_EQ(b.samples[1], -1.f);
    EXPECT_FLOAT_EQ(b.samples[2], 0.25f);
    EXPECT_FLOAT_EQ(b.samples[3], 0.f);
    EXPECT_CONTAINS(error_of<ValueError>([&] { encode_wav(a, 24); }), "bits must be 8 or 16");
    Audio bad{.sample_rate = 8000, .channels = 2, .samples = {0.f, 0.f, 0.f}};
    EXPECT_CONTAINS(error_of<ValueError>([&] { encode_wav(bad, 16); }), "whole number of frames");
}

TEST(AudioWav, SkipsOtherChunksAndReadsExtensiblePcm) {
    Audio a{.sample_rate = 22050, .channels = 1, .samples = {0.5f, -0.25f}};
    std::string s = encode_wav(a, 16);
    // Insert a LIST chunk with an odd size (plus its pad byte) between fmt and data.
    std::string list = std::string("LIST") + std::string("\x03\0\0\0", 4) + "abc" + '\0';
    std::string with_list = s.substr(0, 36) + list + s.substr(36);
    EXPECT_EQ(decode_wav(with_list).samples, a.samples);
    // WAVE_FORMAT_EXTENSIBLE (0xFFFE) with the PCM sub-format GUID.
    std::string ext = s.substr(0, 12) + "fmt " + std::string("\x28\0\0\0", 4) + '\xfe' + '\xff' +
                      s.substr(22, 14) + std::string("\x16\0\x10\0\x04\0\0\0\x01\0", 10) +
                      std::string(14, '\0') + s.substr(36);
    EXPECT_EQ(decode_wav(ext).samples, a.samples);
}

TEST(AudioWav, RejectsMalformedFilesNamingTheFile) {
    auto err = [](const std::string& bytes) {
        return error_of<ValueError>([&] { decode_wav(bytes, "clip.wav"); });
    };
    std::string good = wav_bytes(1, 1, 8000, 16, 8, 8);
    EXPECT_NO_THROW(decode_wav(good));
    std::string e;
    e = err("");
    EXPECT_CONTAINS(e, "clip.wav");
    EXPECT_CONTAINS(e, "not a RIFF/WAVE file");
    std::string bad_riff = good;
    bad_riff[0] = 'X';
    EXPECT_CONTAINS(err(bad_riff), "not a RIFF/WAVE file");
    std::string bad_wave = good;
    bad_wave[8] = 'A';
    EXPECT_CONTAINS(err(bad_wave), "not a RIFF/WAVE file");
    e = err(wav_bytes(1, 1, 8000, 16, 8, 5));
    EXPECT_CONTAINS(e, "truncated data chunk (8 bytes declared, 5 present)");
    EXPECT_CONTAINS(e, "re-export");
    EXPECT_CONTAINS(err(good.substr(0, 30)), "truncated fmt chunk");
    EXPECT_CONTAINS(err(good.substr(0, 40)), "truncated chunk header");
    EXPECT_CONTAINS(err(good.substr(0, 36)), "no data chunk");
    e = err(wav_bytes(3, 1, 8000, 32, 8, 8));
    EXPECT_CONTAINS(e, "unsupported encoding IEEE float");
    EXPECT_CONTAINS(e, "sox");
    EXPECT_CONTAINS(err(wav_bytes(2, 1, 8000, 4, 8, 8)), "unsupported encoding Microsoft ADPCM");
    EXPECT_CONTAINS(err(wav_bytes(0x11, 1, 8000, 4, 8, 8)), "IMA ADPCM");
    EXPECT_CONTAINS(err(wav_bytes(1, 1, 8000, 24, 6, 6)), "unsupported 24-bit samples");
    EXPECT_CONTAINS(err(wav_bytes(1, 0, 8000, 16, 8, 8)), "zero channels");
    EXPECT_CONTAINS(err(wav_bytes(1, 1, 0, 16, 8, 8)), "sample rate 0");
    std::string bad_align = good;
    bad_align[32] = 3;
    EXPECT_CONTAINS(err(bad_align), "block align 3, expected 2");
    // data before fmt
    std::string data_first = good.substr(0, 12) + good.substr(36) + good.substr(12, 24);
    EXPECT_CONTAINS(err(data_first), "data chunk before the fmt chunk");
    // A missing file names the path too.
    EXPECT_CONTAINS(error_of<Error>([] { read_wav("/nonexistent/dir/x.wav"); }),
                    "/nonexistent/dir/x.wav");
}

// ---- resampling ------------------------------------------------------------------------------

TEST(AudioResample, PreservesASinusoidDownAndUp) {
    // 22050 -> 16000 and 8000 -> 16000: the result matches the same tone sampled at the new
    // rate (away from the edges, where the kernel runs off the signal).
    for (auto [from, to, freq] :
         {std::tuple{22050.0, 16000.0, 1000.0}, std::tuple{8000.0, 16000.0, 440.0},
          std::tuple{16000.0, 8000.0, 1234.0}}) {
        auto n = static_cast<int64_t>(from / 10);  // 0.1 s
        auto y = resample(sine(freq, from, n), from, to);
        ASSERT_EQ(static_cast<int64_t>(y.size()), std::llround(n * to / from));
        auto ref = sine(freq, to, static_cast<int64_t>(y.size()));
        EXPECT_LT(max_abs_diff_middle(y, ref, 200), 2e-3) << from << " -> " << to;
    }
}

TEST(AudioResample, RemovesContentAboveTheNewNyquist) {
    // A 7 kHz tone cannot be represented at 8 kHz: the anti-aliasing filter must remove it
    // instead of folding it down to 1 kHz.
    auto y = resample(sine(7000, 16000, 3200), 16000, 8000);
    EXPECT_LT(rms(y, 100), 0.005);
    auto keep = resample(sine(1000, 16000, 3200), 16000, 8000);
    EXPECT_NEAR(rms(keep, 100), 0.5 / std::sqrt(2.0), 0.01);
}

TEST(AudioResample, SpeedChangeScalesFrequency) {
    // Played 25% faster (same rate), a 400 Hz tone becomes 500 Hz.
    auto y = resample(sine(400, 16000, 4000), 1.25, 1.0);
    ASSERT_EQ(y.size(), 3200u);
    EXPECT_LT(max_abs_diff_middle(y, sine(500, 16000, 3200), 200), 2e-3);
}

TEST(AudioResample, RejectsBadRates) {
    std::vector<float> x(10, 0.f);
    EXPECT_CONTAINS(error_of<ValueError>([&] { resample(x, 0, 16000); }),
                    "sample rates must be positive");
    EXPECT_CONTAINS(error_of<ValueError>([&] { resample(x, 16000, -1); }),
                    "sample rates must be positive");
    EXPECT_CONTAINS(error_of<ValueError>([&] { resample(x, NAN, 16000); }),
                    "sample rates must be positive");
    EXPECT_CONTAINS(error_of<ValueError>([&] { resample(x, 100, 16000); }), "out of range");
    EXPECT_TRUE(resample(std::vector<float>{}, 8000, 16000).empty());
}

// ---- spectra ---------------------------------------------------------------------------------

TEST(AudioFeatures, PowerSpectrogramMatchesADirectDft) {
    std::mt19937 rng(3);
    std::normal_distribution<float> nd;
    std::vector<float> x(200);
    for (auto& v : x) v = nd(rng);
    StftOptions o{.n_fft = 64, .win_length = 48, .hop = 20};
    Tensor p = power_spectrogram(x, o);
    const int64_t frames = 1 + (200 - 48) / 20;
    ASSERT_EQ(p.shape(), (Shape{frames, 33}));
    for (int64_t f = 0; f < frames; ++f)
        for (int k = 0; k <= 32; ++k) {
            std::complex<double> acc = 0;
            for (int i = 0; i < 48; ++i) {
                double w = 0.5 - 0.5 * std::cos(2 * std::numbers::pi * i / 48);
                acc += w * x[f * 20 + i] * std::polar(1.0, -2 * std::numbers::pi * k * i / 64);
            }
            EXPECT_NEAR(p.at<double>({f, k}), std::norm(acc), 1e-3 * (1 + std::norm(acc)))
                << f << "," << k;
        }
    EXPECT_EQ(power_spectrogram(std::vector<float>(10), o).shape(), (Shape{0, 33}));
    EXPECT_CONTAINS(
        error_of<ValueError>([&] { power_spectrogram(x, {.n_fft = 64, .win_length = 65}); }),
        "win_length must be in [1, n_fft]");
    EXPECT_CONTAINS(error_of<ValueError>([&] { power_spectrogram(x, {.hop = 0}); }),
                    "hop must be positive");
}

TEST(AudioFeatures, SinusoidPeaksAtItsBin) {
    // 1500 Hz at 16 kHz with n_fft 512: bin 1500 / 31.25 = 48.
    Tensor p = power_spectrogram(sine(1500, 16000, 4000), {.n_fft = 512, .win_length = 512});
    for (int64_t f = 0; f < p.size(0); ++f) EXPECT_EQ(p[f].argmax(0).item<int64_t>(), 48);
}

TEST(AudioFeatures, MelScalesFollowHtkAndSlaneyFormulas) {
    for (double f : {0.0, 300.0, 700.0, 1000.0, 4000.0, 8000.0}) {
        EXPECT_NEAR(hz_to_mel(f), 2595 * std::log10(1 + f / 700), 1e-9);
        EXPECT_NEAR(mel_to_hz(hz_to_mel(f, MelScale::slaney), MelScale::slaney), f, 1e-6);
        EXPECT_NEAR(mel_to_hz(hz_to_mel(f)), f, 1e-6);
    }
    EXPECT_NEAR(hz_to_mel(1000), 1000.0, 0.05);                 // HTK's anchor: 1 kHz ~ 1000 mel
    EXPECT_NEAR(hz_to_mel(500, MelScale::slaney), 7.5, 1e-12);  // linear part: 3 f / 200
    EXPECT_NEAR(hz_to_mel(1000, MelScale::slaney), 15.0, 1e-12);
    EXPECT_NEAR(hz_to_mel(6400, MelScale::slaney), 42.0, 1e-9);  // 27 steps per factor 6.4
}

TEST(AudioFeatures, MelFilterbankProperties) {
    const int n_mels = 10, n_fft = 256;
    const double sr = 8000, f0 = 100, f1 = 3800;
    Tensor fb = mel_filterbank(n_mels, n_fft, sr, f0, f1);
    ASSERT_EQ(fb.shape(), (Shape{n_mels, 129}));
    auto w = fb.to_vector<float>();
    std::vector<double> centres;
    double m0 = hz_to_mel(f0), m1 = hz_to_mel(f1);
    for (int m = 0; m <= n_mels + 1; ++m) centres.push_back(mel_to_hz(m0 + (m1 - m0) * m / 11.0));
    for (int m = 0; m < n_mels; ++m) {
        double sum = 0;
        int peak = 0;
        for (int k = 0; k < 129; ++k) {
            float v = w[m * 129 + k];
            EXPECT_GE(v, 0.f);
            EXPECT_LE(v, 1.f);
            double f = sr * k / n_fft;
            if (f <= centres[m] || f >= centres[m + 2]) {
                EXPECT_EQ(v, 0.f) << m << " " << k;
            }
            if (v > w[m * 129 + peak]) peak = k;
            sum += v;
        }
        EXPECT_GT(sum, 0.0);
        EXPECT_LE(std::abs(sr * peak / n_fft - centres[m + 1]), sr / n_fft);  // peak at centre
    }
    // Neighbouring triangles overlap into a partition of unity between the first and last
    // centre.
    for (int k = 0; k < 129; ++k) {
        double f = sr * k / n_fft, s = 0;
        for (int m = 0; m < n_mels; ++m) s += w[m * 129 + k];
        if (f >= centres[1] && f <= centres[n_mels]) {
            EXPECT_NEAR(s, 1.0, 1e-5) << f;
        }
    }
    // Slaney normalisation: each triangle has (approximately) unit area in Hz.
    auto ws = mel_filterbank(n_mels, n_fft, sr, f0, f1, MelScale::slaney, true).to_vector<float>();
    for (int m = 0; m < n_mels; ++m) {
        double area = 0;
        for (int k = 0; k < 129; ++k) area += ws[m * 129 + k] * (sr / n_fft);
        EXPECT_NEAR(area, 1.0, 0.1) << m;
    }
    EXPECT_CONTAINS(error_of<ValueError>([] { mel_filterbank(10, 256, 8000, 0, 5000); }),
                    "f_max <= sample_rate / 2");
    EXPECT_CONTAINS(error_of<ValueError>([] { mel_filterbank(0, 256, 8000, 0, 4000); }),
                    "n_mels must be positive");
}

TEST(AudioFeatures, LogMelAndMfccMatchTheirDefinitions) {
    std::mt19937 rng(5);
    std::normal_distribution<float> nd;
    std::vector<float> x(1200);
    for (auto& v : x) v = 0.1f * nd(rng);
    MelOptions o{.sample_rate = 8000,
                 .stft = {.n_fft = 128, .win_length = 100, .hop = 50},
                 .n_mels = 12,
                 .f_min = 50,
                 .f_max = 0};
    Tensor lm = log_mel_spectrogram(x, o);
    Tensor p = power_spectrogram(x, o.stft);
    Tensor fb = mel_filterbank(12, 128, 8000, 50, 4000);
    ASSERT_EQ(lm.shape(), (Shape{12, p.size(0)}));
    for (int64_t m = 0; m < 12; ++m)
        for (int64_t f = 0; f < p.size(0); ++f) {
            double s = 0;
            for (int64_t k = 0; k < 65; ++k) s += fb.at<double>({m, k}) * p.at<double>({f, k});
            EXPECT_NEAR(lm.at<double>({m, f}), std::log(std::max(s, 1e-10)), 1e-4);
        }
    // top_db clamps to the utterance's peak minus top_db decibels.
    o.top_db = 20;
    Tensor lc = log_mel_spectrogram(x, o);
    double hi = lm.to_vector<float>()[0];
    for (float v : lm.to_vector<float>()) hi = std::max(hi, double(v));
    for (float v : lc.to_vector<float>()) EXPECT_GE(v, hi - 2 * std::log(10.0) - 1e-4);
    o.top_db = 0;
    // MFCC: orthonormal DCT-II over the mel axis.
    Tensor c = mfcc(x, 5, o);
    ASSERT_EQ(c.shape(), (Shape{5, p.size(0)}));
    for (int q = 0; q < 5; ++q)
        for (int64_t f = 0; f < p.size(0); ++f) {
            double s = 0;
            for (int m = 0; m < 12; ++m)
                s += lm.at<double>({m, f}) * std::cos(std::numbers::pi * q * (m + 0.5) / 12);
            s *= std::sqrt((q == 0 ? 1.0 : 2.0) / 12);
            EXPECT_NEAR(c.at<double>({q, f}), s, 1e-3);
        }
    EXPECT_CONTAINS(error_of<ValueError>([&] { mfcc(x, 13, o); }), "n_mfcc must be in [1, n_mels");
}
