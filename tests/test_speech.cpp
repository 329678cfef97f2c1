// Speech features end to end: synthetic "words" (chirps and tone pairs) written as WAV files,
// read back with resampling, turned into log-mel spectrograms and classified by a small CNN.
// Nothing here needs a speech synthesiser; the espeak-ng / Asterisk checks skip without them.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <numbers>

#include "soma/audio.h"
#include "soma/autograd.h"
#include "soma/nn.h"
#include "soma/ops.h"
#include "soma/optim.h"
#include "soma/random.h"
#include "test_util.h"

using namespace soma;

namespace {

// Class 0: rising chirp, 1: falling chirp, 2: two tones in turn; random pitch, length and noise.
std::vector<float> synthetic_word(int cls, Generator& g, int rate) {
    double scale = 0.85 + 0.3 * g.next_double();
    auto n = static_cast<int64_t>(rate * (0.25 + 0.1 * g.next_double()));
    std::vector<float> x(static_cast<size_t>(n));
    double phase = 0;
    for (int64_t i = 0; i < n; ++i) {
        double t = static_cast<double>(i) / static_cast<double>(n);
        double f = cls == 0 ? 400 + 1400 * t : cls == 1 ? 1800 - 1400 * t : (t < 0.5 ? 500 : 1500);
        phase += 2 * std::numbers::pi * f * scale / rate;
        x[i] = static_cast<float>(0.4 * std::sin(phase) * std::sin(std::numbers::pi * t) +
                                  0.02 * g.next_normal());
    }
    return x;
}

std::string tmp_path(const std::string& name) {
    return ::testing::TempDir() + "soma_speech_" + std::to_string(::getpid()) + "_" + name;
}

bool have_program(const char* name) {
    return std::system((std::string("command -v ") + name + " >/dev/null 2>&1").c_str()) == 0;
}

}  // namespace

TEST(SpeechEndToEnd, CnnLearnsSyntheticWordsFromLogMel) {
    const int n_train = 30, n_test = 15, clip = 6400;  // 0.4 s at 16 kHz
    audio::MelOptions mo{.sample_rate = 16000,
                         .stft = {.n_fft = 256, .win_length = 200, .hop = 80},
                         .n_mels = 16,
                         .f_min = 60,
                         .f_max = 4000,
                         .top_db = 60};
    Generator g(7);
    std::vector<float> feats;
    std::vector<int64_t> labels;
    const std::string path = tmp_path("word.wav");
    int64_t frames = 0;
    for (int i = 0; i < n_train + n_test; ++i) {
        int cls = i % 3;
        // Written at 8 kHz (8-bit for odd examples), read back and resampled to 16 kHz.
        audio::Audio a{.sample_rate = 8000, .channels = 1, .samples = synthetic_word(cls, g, 8000)};
        audio::write_wav(path, a, i % 2 ? 8 : 16);
        std::vector<float> x = audio::load_mono(path, 16000);
        std::vector<float> c(clip, 0.f);
        std::copy_n(x.begin(), std::min<size_t>(x.size(), clip), c.begin());
        Tensor lm = audio::log_mel_spectrogram(c, mo);
        frames = lm.size(1);
        lm = (lm - lm.mean()) / (lm - lm.mean()).pow(2).mean().sqrt();
        auto v = lm.to_vector<float>();
        feats.insert(feats.end(), v.begin(), v.end());
        labels.push_back(cls);
    }
    std::remove(path.c_str());
    Tensor x = from_vector(feats, {n_train + n_test, 1, 16, frames});
    Tensor y = from_vector(labels);
    Tensor xtr = x.narrow(0, 0, n_train), ytr = y.narrow(0, 0, n_train);
    Tensor xte = x.narrow(0, n_train, n_test), yte = y.narrow(0, n_train, n_test);

    manual_seed(0);
    nn::Sequential model;
    model.emplace<nn::Conv2d>(
        nn::Conv2dOptions{.in = 1, .out = 8, .kernel = {3, 3}, .padding = {1, 1}});
    model.emplace<nn::ReLU>();
    model.emplace<nn::MaxPool2d>(nn::functional::Pool2dArgs{});
    model.emplace<nn::AdaptiveAvgPool2d>(std::array<int64_t, 2>{2, 4});
    model.emplace<nn::Flatten>();
    model.emplace<nn::Linear>(nn::LinearOptions{.in = 64, .out = 3});
    optim::Adam opt(model.parameters(), {.lr = 1e-2});
    double first = 0, last = 0;
    for (int step = 0; step < 60; ++step) {
        Tensor loss = nn::functional::cross_entropy(model(xtr), ytr);
        if (step == 0) first = loss.item<double>();
        last = loss.item<double>();
        opt.zero_grad();
        loss.backward();
        opt.step();
    }
    EXPECT_LT(last, 0.5 * first);
    NoGradGuard ng;
    auto pred = argmax(model(xte), 1).to_vector<int64_t>();
    auto truth = yte.to_vector<int64_t>();
    int correct = 0;
    for (size_t i = 0; i < pred.size(); ++i) correct += pred[i] == truth[i];
    EXPECT_GE(correct, 12) << "held-out accuracy " << correct << "/" << n_test;
}

TEST(SpeechEndToEnd, ReadsEspeakNgOutput) {
    if (!have_program("espeak-ng")) GTEST_SKIP() << "espeak-ng is not installed";
    const std::string path = tmp_path("seven.wav");
    ASSERT_EQ(std::system(("espeak-ng -v en-us -w '" + path + "' seven >/dev/null 2>&1").c_str()),
              0);
    audio::Audio a = audio::read_wav(path);
    std::remove(path.c_str());
    EXPECT_EQ(a.channels, 1);
    EXPECT_GT(a.sample_rate, 8000);
    EXPECT_GT(a.seconds(), 0.2);
    EXPECT_LT(a.seconds(), 3.0);
    float peak = 0;
    for (float v : a.samples) peak = std::max(peak, std::abs(v));
    EXPECT_GT(peak, 0.05f);
}

TEST(SpeechEndToEnd, ReadsAsteriskRecordings) {
    const std::string path = "/usr/share/asterisk/sounds/en/digits/7.wav";
    if (!std::filesystem::exists(path)) GTEST_SKIP() << "asterisk-core-sounds-en-wav missing";
    audio::Audio a = audio::read_wav(path);
    EXPECT_EQ(a.sample_rate, 8000);
    EXPECT_EQ(a.channels, 1);
    auto x = audio::load_mono(path, 16000);
    EXPECT_NEAR(static_cast<double>(x.size()), 2.0 * static_cast<double>(a.frames()), 1.0);
    Tensor lm = audio::log_mel_spectrogram(x, {.f_max = 4000});
    EXPECT_EQ(lm.size(0), 40);
    EXPECT_GT(lm.size(1), 30);
}
