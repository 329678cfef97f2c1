// Workflows: spoken-digit recognition recipe (issue 5).
//
// speech-digits trains a small CNN on log-mel spectrograms of the words "zero" .. "nine" spoken
// by espeak-ng (8 accents x 16 voice variants, each word at its own speed and pitch; generated
// once into a cache directory), validates on three voice variants held out of training, and
// tests on speech it never saw: flite's voices (another synthesiser) and the human recordings of
// Asterisk's English prompts (8 kHz telephone audio).
//
// Pipeline per utterance: WAV -> mono 16 kHz (soma::audio::load_mono) -> silence trimmed ->
// [training: speed perturbation by resampling, random gain, additive white/coloured noise at a
// random SNR, random time shift] -> centred in a 1 s window -> log-mel (40 bands, 60-4000 Hz:
// the telephone band, so 8 kHz recordings lose nothing the model relies on; 25 ms windows,
// 10 ms hop; clamped 50 dB below the peak) -> scaled to [0, 1] from that floor to the peak
// -> [1, 40, 98].
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <numbers>

#include "recipe.h"
#include "soma/audio.h"
#include "soma/autograd.h"
#include "soma/image.h"
#include "soma/io.h"
#include "soma/ops.h"
#include "soma/parallel.h"
#include "soma/random.h"
#include "soma/train.h"
#include "workflows.h"

namespace soma::app {

namespace {

namespace fs = std::filesystem;

constexpr int kRate = 16000;
constexpr int kClip = 16000;  // 1 s analysis window
constexpr int kMels = 40;
constexpr int kFrames = 1 + (kClip - 400) / 160;  // 98
constexpr const char* kRecipe = "speech-digits";
const std::array<const char*, 10> kWords = {"zero", "one", "two",   "three", "four",
                                            "five", "six", "seven", "eight", "nine"};
// espeak-ng base voices (accents) and voice variants; the last kValVariants variants are held
// out of training and make the validation set.
const std::array<const char*, 8> kAccents = {"en",         "en-us",          "en-gb-scotland",
                                             "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
                                             "en-029",     "en-us-nyc"};
const std::array<const char*, 16> kVariants = {"m1",    "f1", "m2", "f2",    "m3", "f3",
                                               "m4",    "f4", "m6", "klatt", "m7", "Andy",
                                               "steph", "f5", "m8", "Alex"};
constexpr int kValVariants = 3;
const std::array<const char*, 5> kFliteVoices = {"kal", "kal16", "awb", "rms", "slt"};
const std::array<double, 3> kFliteStretch = {0.85, 1.0, 1.2};
constexpr const char* kRealDir = "/usr/share/asterisk/sounds/en/digits";

bool have_program(const std::string& name) {
    return std::system(("command -v " + name + " >/dev/null 2>&1").c_str()) == 0;
}

std::string default_cache() {
    if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
        return std::string(x) + "/soma/speech-digits";
    return "runs/cache/speech-digits";
}

// ---- configuration (--set KEY=VALUE; stored in the checkpoint) --------------------------------
struct Config {
    std::string cache = default_cache();
    std::string real_dir = kRealDir;
    int accents = 8;    // espeak-ng accents used (1..8)
    int variants = 16;  // voice variants used (4..16; the last 3 validate)
    int width = 16;     // channels of the first conv layer (doubling, capped at 4x)
    double dropout = 0.3;
    bool augment = true;
    bool spec_augment = true;
    double weight_decay = 1e-4;

    nlohmann::json to_json() const {
        return {
            {"accents", accents},           {"variants", variants}, {"width", width},
            {"dropout", dropout},           {"augment", augment},   {"spec_augment", spec_augment},
            {"weight_decay", weight_decay}, {"cache", cache},       {"real_dir", real_dir}};
    }
    static Config from_json(const nlohmann::json& j) {
        Config c;
        c.accents = j.value("accents", c.accents);
        c.variants = j.value("variants", c.variants);
        c.width = j.value("width", c.width);
        c.dropout = j.value("dropout", c.dropout);
        c.augment = j.value("augment", c.augment);
        c.spec_augment = j.value("spec_augment", c.spec_augment);
        c.weight_decay = j.value("weight_decay", c.weight_decay);
        c.cache = j.value("cache", c.cache);
        c.real_dir = j.value("real_dir", c.real_dir);
        return c;
    }
};

Config parse_config(const std::vector<std::string>& sets) {
    Config c;
    for (const auto& [k, v] : parse_overrides(sets)) {
        auto num = [&](double lo, double hi) {
            char* end = nullptr;
            double d = std::strtod(v.c_str(), &end);
            if (v.empty() || *end != '\0' || !(d >= lo && d <= hi))
                throw UsageError("speech-digits: --set " + k + "=" + v +
                                 ": expected a number in [" + jnum(lo) + ", " + jnum(hi) + "]");
            return d;
        };
        if (k == "cache")
            c.cache = v;
        else if (k == "real_dir")
            c.real_dir = v;
        else if (k == "accents")
            c.accents = static_cast<int>(num(1, 8));
        else if (k == "variants")
            c.variants = static_cast<int>(num(4, 16));
        else if (k == "width")
            c.width = static_cast<int>(num(4, 64));
        else if (k == "dropout")
            c.dropout = num(0, 0.9);
        else if (k == "augment")
            c.augment = num(0, 1) != 0;
        else if (k == "spec_augment")
            c.spec_augment = num(0, 1) != 0;
        else if (k == "weight_decay")
            c.weight_decay = num(0, 1);
        else
            throw UsageError("speech-digits: unknown --set key '" + k +
                             "'; known: cache, real_dir, accents, variants, width, dropout, "
                             "augment, spec_augment, weight_decay");
    }
    return c;
}

// ---- utterances --------------------------------------------------------------------------------
struct Utterance {
    std::vector<float> wav;  // 16 kHz mono, silence trimmed
    int64_t label = 0;
    std::string source;  // voice or file
};

// The active part of x: 10 ms frames within 40 dB of the loudest one, plus 30 ms either side.
std::vector<float> trim_silence(const std::vector<float>& x) {
    const size_t hop = 160;
    std::vector<double> e;
    for (size_t i = 0; i + hop <= x.size(); i += hop) {
        double s = 0;
        for (size_t j = i; j < i + hop; ++j) s += static_cast<double>(x[j]) * x[j];
        e.push_back(s);
    }
    if (e.empty()) return x;
    double peak = *std::max_element(e.begin(), e.end());
    if (peak <= 0) return x;
    size_t first = 0, last = e.size() - 1;
    while (first < last && e[first] < peak * 1e-4) ++first;
    while (last > first && e[last] < peak * 1e-4) --last;
    size_t b = first >= 3 ? (first - 3) * hop : 0;
    size_t en = std::min(x.size(), (last + 4) * hop);
    return {x.begin() + static_cast<std::ptrdiff_t>(b),
            x.begin() + static_cast<std::ptrdiff_t>(en)};
}

Utterance load_utterance(const std::string& path, int64_t label, std::string source) {
    return {trim_silence(audio::load_mono(path, kRate)), label, std::move(source)};
}

struct EspeakItem {
    std::string voice, path;
    int speed, pitch;
    int64_t label;
    bool val;
};

std::vector<EspeakItem> espeak_items(const Config& c) {
    std::vector<EspeakItem> items;
    for (int a = 0; a < c.accents; ++a)
        for (int v = 0; v < c.variants; ++v)
            for (int d = 0; d < 10; ++d) {
                // Speed 120..220 words/min and pitch 25..75, spread over (accent, variant, digit).
                int speed = 120 + 20 * ((a * 7 + v * 3 + d) % 6);
                int pitch = 25 + 10 * ((a * 5 + v * 11 + d * 3) % 6);
                std::string voice = std::string(kAccents[a]) + "+" + kVariants[v];
                std::string name = voice + "_s" + std::to_string(speed) + "_p" +
                                   std::to_string(pitch) + "_" + kWords[d] + ".wav";
                items.push_back({voice, c.cache + "/espeak/" + name, speed, pitch, d,
                                 v >= c.variants - kValVariants});
            }
    return items;
}

// Runs `cmd` writing to `path` through a temporary name (a killed run leaves no half file).
void synthesise(const std::string& cmd_prefix, const std::string& path) {
    std::string tmp = path + ".tmp";
    std::string cmd = cmd_prefix + " '" + tmp + "' >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0 || !fs::exists(tmp))
        throw UsageError("speech-digits: synthesis failed: " + cmd);
    fs::rename(tmp, path);
}

std::string quote_word(const char* w) { return std::string("'") + w + "'"; }

// Loads (generating when missing) the espeak-ng corpus; returns train and validation sets.
std::pair<std::vector<Utterance>, std::vector<Utterance>> espeak_corpus(const Config& c,
                                                                        bool quiet) {
    auto items = espeak_items(c);
    int64_t missing = 0;
    for (const auto& it : items) missing += fs::exists(it.path) ? 0 : 1;
    if (missing > 0) {
        if (!have_program("espeak-ng"))
            throw UsageError("speech-digits: espeak-ng is not installed and the cache " + c.cache +
                             " lacks " + std::to_string(missing) +
                             " utterances; install it (apt-get install espeak-ng) or point "
                             "--set cache=DIR at a filled cache");
        fs::create_directories(c.cache + "/espeak");
        if (!quiet)
            std::fprintf(stderr,
                         "speech-digits: synthesising %lld utterances with espeak-ng into %s\n",
                         static_cast<long long>(missing), (c.cache + "/espeak").c_str());
        int64_t done = 0;
        for (const auto& it : items) {
            if (fs::exists(it.path)) continue;
            synthesise("espeak-ng -v " + it.voice + " -s " + std::to_string(it.speed) + " -p " +
                           std::to_string(it.pitch) + " " + quote_word(kWords[it.label]) + " -w",
                       it.path);
            if (!quiet && ++done % 200 == 0)
                std::fprintf(stderr, "  %lld/%lld\n", static_cast<long long>(done),
                             static_cast<long long>(missing));
            if (g_stop) throw UsageError("speech-digits: interrupted while synthesising");
        }
    }
    std::vector<Utterance> train, val;
    for (const auto& it : items)
        (it.val ? val : train).push_back(load_utterance(it.path, it.label, it.voice));
    return {std::move(train), std::move(val)};
}

// flite's voices (never seen in training) at three speaking rates. Empty when flite is missing
// and the cache has none.
std::vector<Utterance> flite_corpus(const Config& c, bool quiet) {
    bool have = have_program("flite");
    std::vector<Utterance> out;
    bool warned = false;
    for (const char* v : kFliteVoices)
        for (double s : kFliteStretch)
            for (int d = 0; d < 10; ++d) {
                char name[128];
                std::snprintf(name, sizeof name, "%s_d%.2f_%s.wav", v, s, kWords[d]);
                std::string path = c.cache + "/flite/" + name;
                if (!fs::exists(path)) {
                    if (!have) {
                        if (!warned && !quiet)
                            std::fprintf(stderr,
                                         "speech-digits: flite is not installed; no flite test "
                                         "set (apt-get install flite)\n");
                        warned = true;
                        continue;
                    }
                    fs::create_directories(c.cache + "/flite");
                    char stretch[32];
                    std::snprintf(stretch, sizeof stretch, "%.2f", s);
                    synthesise(std::string("flite -voice ") + v + " --setf duration_stretch=" +
                                   stretch + " -t " + quote_word(kWords[d]) + " -o",
                               path);
                }
                out.push_back(load_utterance(path, d, v));
            }
    return out;
}

// Asterisk's recordings of the digits (a human speaker, 8 kHz); empty when absent.
std::vector<Utterance> real_corpus(const Config& c, bool quiet) {
    std::vector<Utterance> out;
    for (int d = 0; d < 10; ++d) {
        std::string path = c.real_dir + "/" + std::to_string(d) + ".wav";
        if (!fs::exists(path)) {
            if (!quiet)
                std::fprintf(stderr,
                             "speech-digits: %s not found; no real-speech test set (apt-get "
                             "install asterisk-core-sounds-en-wav, or --set real_dir=DIR with "
                             "0.wav .. 9.wav)\n",
                             path.c_str());
            return {};
        }
        out.push_back(load_utterance(path, d, path));
    }
    return out;
}

// ---- features ----------------------------------------------------------------------------------
const audio::MelOptions& mel_options() {
    static const audio::MelOptions o{.sample_rate = kRate,
                                     .stft = {.n_fft = 512, .win_length = 400, .hop = 160},
                                     .n_mels = kMels,
                                     .f_min = 60,
                                     .f_max = 4000,
                                     .top_db = 50};
    return o;
}

// Centres `seg` in a 1 s window shifted by `shift` samples (cropping the middle when longer),
// and returns its log-mel spectrogram scaled to [0, 1] [kMels * kFrames].
std::vector<float> features(const std::vector<float>& seg, int64_t shift) {
    std::vector<float> clip(kClip, 0.f);
    auto len = static_cast<int64_t>(seg.size());
    int64_t start = (kClip - len) / 2 + shift;
    for (int64_t i = 0; i < len; ++i)
        if (start + i >= 0 && start + i < kClip) clip[start + i] = seg[i];
    auto v = audio::log_mel_spectrogram(clip, mel_options()).to_vector<float>();
    // Peak-referenced scale: 1 at the loudest band/frame, 0 at the 50 dB floor (independent of
    // the recording level and of how much of the window is silence).
    float peak = *std::max_element(v.begin(), v.end());
    const float range = static_cast<float>(std::log(1e5));
    for (float& x : v) x = (x - peak) / range + 1.f;
    return v;
}

// Training augmentation, a function of (seed, epoch, example) only.
std::vector<float> augmented_features(const Utterance& u, Generator& g, bool spec_augment) {
    double speed = 0.85 + 0.3 * g.next_double();
    std::vector<float> seg = audio::resample(u.wav, speed, 1.0, {.zero_crossings = 8});
    double gain = std::exp(std::log(0.25) + std::log(8.0) * g.next_double());
    double pow = 0;
    for (float& x : seg) {
        x = static_cast<float>(x * gain);
        pow += static_cast<double>(x) * x;
    }
    pow /= std::max<size_t>(seg.size(), 1);
    // Noise over the whole window (so silence is noisy too) at 5..40 dB SNR, white or low-passed.
    std::vector<float> noise(kClip, 0.f);
    bool noisy = g.next_double() < 0.8;
    if (noisy) {
        double snr_db = 5 + 35 * g.next_double();
        double sd = std::sqrt(pow / std::pow(10.0, snr_db / 10));
        double a = g.next_double() < 0.5 ? 0.0 : 0.5 + 0.45 * g.next_double();  // one-pole colour
        double prev = 0, norm = std::sqrt(1 - a * a);
        for (float& n : noise) {
            prev = a * prev + norm * g.next_normal();
            n = static_cast<float>(sd * prev);
        }
    }
    auto len = static_cast<int64_t>(seg.size());
    int64_t room = std::max<int64_t>(0, (kClip - len) / 2);
    int64_t max_shift = std::min<int64_t>(room, kRate * 15 / 100);
    auto shift =
        static_cast<int64_t>(g.next_below(static_cast<uint64_t>(2 * max_shift + 1))) - max_shift;
    std::vector<float> clip(kClip, 0.f);
    int64_t start = (kClip - len) / 2 + shift;
    for (int64_t i = 0; i < len; ++i)
        if (start + i >= 0 && start + i < kClip) clip[start + i] = seg[i];
    for (int i = 0; i < kClip; ++i) clip[i] += noise[i];
    std::vector<float> f = features(clip, 0);
    if (spec_augment) {
        // SpecAugment: two frequency bands (up to 6 of 40) and two time spans (up to 10 frames)
        // set to the floor.
        for (int k = 0; k < 2; ++k) {
            auto w = static_cast<int>(g.next_below(7));
            auto m0 = static_cast<int>(g.next_below(kMels - w + 1));
            for (int m = m0; m < m0 + w; ++m) std::fill_n(f.begin() + m * kFrames, kFrames, 0.f);
            auto tw = static_cast<int>(g.next_below(11));
            auto t0 = static_cast<int>(g.next_below(kFrames - tw + 1));
            for (int m = 0; m < kMels; ++m) std::fill_n(f.begin() + m * kFrames + t0, tw, 0.f);
        }
    }
    return f;
}

Tensor stack_features(const std::vector<std::vector<float>>& f) {
    std::vector<float> flat;
    flat.reserve(f.size() * kMels * kFrames);
    for (const auto& v : f) flat.insert(flat.end(), v.begin(), v.end());
    return from_vector(flat, {static_cast<int64_t>(f.size()), 1, kMels, kFrames});
}

struct FeatureSet {
    Tensor x;  // [N, 1, kMels, kFrames]
    Tensor y;  // int64 [N]
    std::vector<std::string> sources;
};

FeatureSet clean_features(const std::vector<Utterance>& us) {
    std::vector<std::vector<float>> f;
    std::vector<int64_t> y;
    FeatureSet s;
    for (const auto& u : us) {
        f.push_back(features(u.wav, 0));
        y.push_back(u.label);
        s.sources.push_back(u.source);
    }
    s.x = stack_features(f);
    s.y = from_vector(y);
    return s;
}

// ---- model -------------------------------------------------------------------------------------
std::shared_ptr<nn::Sequential> build_model(const Config& c) {
    auto m = std::make_shared<nn::Sequential>();
    int64_t in = 1;
    const int64_t w = c.width;
    for (int64_t out : {w, 2 * w, 4 * w, 4 * w}) {
        m->emplace<nn::Conv2d>(nn::Conv2dOptions{
            .in = in, .out = out, .kernel = {3, 3}, .padding = {1, 1}, .bias = false});
        m->emplace<nn::BatchNorm2d>(nn::BatchNormOptions{.features = out});
        m->emplace<nn::ReLU>();
        if (in != 4 * w) m->emplace<nn::MaxPool2d>(nn::functional::Pool2dArgs{});
        in = out;
    }
    // [N, 4w, 5, 12] -> [N, 4w, 2, 4]: coarse frequency x time layout of the word
    m->emplace<nn::AdaptiveAvgPool2d>(std::array<int64_t, 2>{2, 4});
    m->emplace<nn::Flatten>();
    m->emplace<nn::Dropout>(c.dropout);
    m->emplace<nn::Linear>(nn::LinearOptions{.in = 4 * w * 8, .out = 10});
    return m;
}

struct Scores {
    double loss = NAN, accuracy = NAN;
    std::vector<int64_t> pred;
};

Scores score(nn::Module& model, const FeatureSet& s) {
    Scores r;
    if (!s.x.defined() || s.x.size(0) == 0) return r;
    NoGradGuard ng;
    bool was = model.is_training();
    model.eval();
    double loss = 0;
    int64_t correct = 0, n = s.x.size(0);
    for (int64_t b = 0; b < n; b += 128) {
        int64_t len = std::min<int64_t>(128, n - b);
        Tensor logits = model(s.x.narrow(0, b, len));
        Tensor y = s.y.narrow(0, b, len);
        loss += nn::functional::cross_entropy(logits, y).item<double>() * static_cast<double>(len);
        auto p = argmax(logits, 1).to_vector<int64_t>();
        auto t = y.to_vector<int64_t>();
        for (int64_t i = 0; i < len; ++i) {
            correct += p[i] == t[i];
            r.pred.push_back(p[i]);
        }
    }
    model.train(was);
    r.loss = loss / static_cast<double>(n);
    r.accuracy = static_cast<double>(correct) / static_cast<double>(n);
    return r;
}

void print_confusion(const char* title, const FeatureSet& s, const Scores& sc) {
    if (sc.pred.empty()) return;
    int64_t m[10][10] = {};
    auto t = s.y.to_vector<int64_t>();
    for (size_t i = 0; i < t.size(); ++i) ++m[t[i]][sc.pred[i]];
    std::fprintf(stderr, "%s: rows = spoken digit, columns = predicted\n      ", title);
    for (int j = 0; j < 10; ++j) std::fprintf(stderr, "%4d", j);
    std::fprintf(stderr, "\n");
    for (int i = 0; i < 10; ++i) {
        std::fprintf(stderr, "%-6s", kWords[i]);
        for (int j = 0; j < 10; ++j)
            std::fprintf(stderr, m[i][j] ? "%4lld" : "   .", static_cast<long long>(m[i][j]));
        std::fprintf(stderr, "\n");
    }
}

// Accuracy per voice (flite) on one line.
void print_by_source(const char* title, const FeatureSet& s, const Scores& sc) {
    if (sc.pred.empty()) return;
    std::map<std::string, std::pair<int, int>> m;  // source -> (correct, total)
    auto t = s.y.to_vector<int64_t>();
    for (size_t i = 0; i < t.size(); ++i) {
        auto& e = m[s.sources[i]];
        e.first += sc.pred[i] == t[i];
        ++e.second;
    }
    std::fprintf(stderr, "%s accuracy by voice:", title);
    for (const auto& [k, v] : m)
        std::fprintf(stderr, " %s %.2f", k.c_str(), static_cast<double>(v.first) / v.second);
    std::fprintf(stderr, "\n");
}

// A picture of one log-mel spectrogram per digit for each test set (rows), labelled with the
// word and the prediction (green right, red wrong).
void save_spectrograms(const std::string& path,
                       const std::vector<std::pair<std::string, const FeatureSet*>>& rows,
                       const std::vector<const Scores*>& scores) {
    const int sx = 2, sy = 2, cw = kFrames * sx + 10, ch = kMels * sy + 26, left = 70;
    Canvas c(left + 10 * cw, 24 + static_cast<int>(rows.size()) * ch);
    c.text(6, 6, "log-mel spectrograms (60-4000 Hz, 1 s): word / prediction", 0x000000);
    auto colour = [](float v) {  // [0, 1] -> dark blue .. yellow
        double t = std::clamp(static_cast<double>(v), 0.0, 1.0);
        auto r = static_cast<uint32_t>(255 * std::clamp(1.8 * t - 0.5, 0.0, 1.0));
        auto g = static_cast<uint32_t>(255 * std::clamp(1.6 * t - 0.3, 0.0, 1.0));
        auto b = static_cast<uint32_t>(255 * std::clamp(0.6 - 0.8 * std::abs(t - 0.35), 0.0, 1.0));
        return (r << 16) | (g << 8) | b;
    };
    for (size_t r = 0; r < rows.size(); ++r) {
        const FeatureSet& s = *rows[r].second;
        int oy = 24 + static_cast<int>(r) * ch;
        c.text(4, oy + kMels * sy / 2, rows[r].first, 0x000000);
        if (!s.x.defined()) continue;
        auto y = s.y.to_vector<int64_t>();
        for (int d = 0; d < 10; ++d) {
            auto it = std::find(y.begin(), y.end(), d);
            if (it == y.end()) continue;
            auto i = static_cast<int64_t>(it - y.begin());
            auto v = s.x[i].reshape({-1}).to_vector<float>();
            int ox = left + d * cw;
            for (int m = 0; m < kMels; ++m)
                for (int f = 0; f < kFrames; ++f)
                    c.rect(ox + f * sx, oy + (kMels - 1 - m) * sy, ox + f * sx + sx - 1,
                           oy + (kMels - 1 - m) * sy + sy - 1, colour(v[m * kFrames + f]), true);
            std::string label = kWords[d];
            uint32_t col = 0x404040;
            if (r < scores.size() && scores[r] && !scores[r]->pred.empty()) {
                int64_t p = scores[r]->pred[static_cast<size_t>(i)];
                label += " / " + std::to_string(p);
                col = p == d ? 0x008000 : 0xcc0000;
            }
            c.text(ox, oy + kMels * sy + 4, label, col);
        }
    }
    c.save_png(path);
}

struct TestSets {
    FeatureSet flite, real;
};

TestSets load_test_sets(const Config& c, bool quiet) {
    TestSets t;
    auto fl = flite_corpus(c, quiet);
    if (!fl.empty()) t.flite = clean_features(fl);
    auto re = real_corpus(c, quiet);
    if (!re.empty()) t.real = clean_features(re);
    return t;
}

// ---- train -------------------------------------------------------------------------------------
int train_speech(const TrainArgs& a) {
    Config cfg = parse_config(a.sets);
    const int64_t epochs = a.epochs > 0 ? a.epochs : 15;
    const int64_t batch = a.batch_size > 0 ? a.batch_size : 32;
    const double lr = a.lr > 0 ? a.lr : 2e-3;
    const uint64_t seed = a.seed >= 0 ? static_cast<uint64_t>(a.seed) : 0;
    const std::string out = a.out.empty() ? std::string("runs/") + kRecipe : a.out;
    if (a.threads > 0) set_num_threads(a.threads);
    const std::string ckpt = out + "/checkpoint.safetensors";
    StopOnSigint sig;
    auto t0 = std::chrono::steady_clock::now();

    // On resume the checkpoint's configuration wins (the model must match its weights).
    std::map<std::string, std::string> meta;
    bool resuming = a.resume && fs::exists(ckpt);
    if (resuming) {
        SafetensorsFile f;
        try {
            f = load_safetensors(ckpt);
        } catch (const Error& e) {
            throw UsageError(e.what());
        }
        if (f.metadata["recipe"] != kRecipe)
            throw UsageError("speech-digits: " + ckpt + " was written by recipe '" +
                             f.metadata["recipe"] + "'; use another --out");
        cfg = Config::from_json(nlohmann::json::parse(f.metadata["config"]));
    }
    fs::create_directories(out);

    auto [train_set, val_set] = espeak_corpus(cfg, a.quiet);
    SOMA_CHECK(!train_set.empty() && !val_set.empty(), "speech-digits: empty corpus");
    FeatureSet val = clean_features(val_set);
    TestSets tests = load_test_sets(cfg, a.quiet);
    std::vector<std::vector<float>> clean_train;  // used when augmentation is off
    if (!cfg.augment)
        for (const auto& u : train_set) clean_train.push_back(features(u.wav, 0));

    manual_seed(seed);
    auto model = build_model(cfg);
    optim::Adam opt(model->parameters(), {.lr = lr, .weight_decay = cfg.weight_decay});
    std::vector<train::EpochLog> history;
    int64_t start_epoch = 0;
    if (resuming) {
        meta = train::load_checkpoint(ckpt, *model, &opt);
        start_epoch = std::stoll(meta["epoch"]);
        auto num = [](const nlohmann::json& v) { return v.is_number() ? v.get<double>() : NAN; };
        for (const auto& e : nlohmann::json::parse(meta["history"]))
            history.push_back({.epoch = e[0].get<int64_t>(),
                               .train_loss = num(e[1]),
                               .train_metric = num(e[2]),
                               .val_loss = num(e[3]),
                               .val_metric = num(e[4]),
                               .lr = num(e[5]),
                               .seconds = num(e[6])});
        default_generator().set_state(
            {std::stoull(meta["rng_seed"]), std::stoull(meta["rng_offset"])});
        train::write_metrics_csv(out + "/metrics.csv", history, train::Task::classification);
        if (!a.quiet)
            std::fprintf(stderr, "speech-digits: resuming from %s after epoch %lld\n", ckpt.c_str(),
                         static_cast<long long>(start_epoch));
    } else {
        fs::remove(out + "/metrics.csv");
    }
    const auto n = static_cast<int64_t>(train_set.size());
    int64_t steps = (n + batch - 1) / batch;
    if (a.max_batches > 0) steps = std::min(steps, a.max_batches);
    if (!a.quiet)
        std::fprintf(stderr,
                     "speech-digits: %lld training utterances (%d accents x %d voices), %lld "
                     "validation (%d held-out voices), %lld flite, %lld real; %lld parameters, "
                     "%d threads, output in %s/\n",
                     static_cast<long long>(n), cfg.accents, cfg.variants - kValVariants,
                     static_cast<long long>(val_set.size()), kValVariants * cfg.accents,
                     static_cast<long long>(tests.flite.x.defined() ? tests.flite.x.size(0) : 0),
                     static_cast<long long>(tests.real.x.defined() ? tests.real.x.size(0) : 0),
                     static_cast<long long>(model->num_parameters()), get_num_threads(),
                     out.c_str());

    for (int64_t epoch = start_epoch; epoch < epochs && !g_stop; ++epoch) {
        auto te = std::chrono::steady_clock::now();
        // Cosine decay from lr to lr / 20 over the run.
        double lr_e = lr * (0.05 + 0.95 * 0.5 * (1 + std::cos(std::numbers::pi * epoch / epochs)));
        for (auto& g : opt.param_groups()) g.set_lr(lr_e);
        auto order =
            data::random_permutation(n, seed * 1000003 + 17, static_cast<uint64_t>(epoch) * 4096);
        model->train();
        train::ProgressBar bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(epochs),
                               steps);
        double loss_sum = 0;
        int64_t correct = 0, seen = 0;
        for (int64_t s = 0; s < steps && !g_stop; ++s) {
            std::vector<std::vector<float>> feats;
            std::vector<int64_t> labels;
            for (int64_t k = s * batch; k < std::min(n, (s + 1) * batch); ++k) {
                int64_t i = order[static_cast<size_t>(k)];
                if (cfg.augment) {
                    Generator g(seed * 0x9E3779B97F4A7C15ull +
                                static_cast<uint64_t>(epoch) * 1000003u + static_cast<uint64_t>(i));
                    feats.push_back(augmented_features(train_set[i], g, cfg.spec_augment));
                } else {
                    feats.push_back(clean_train[i]);
                }
                labels.push_back(train_set[i].label);
            }
            Tensor x = stack_features(feats), y = from_vector(labels);
            Tensor logits = (*model)(x);
            Tensor loss = nn::functional::cross_entropy(logits, y);
            opt.zero_grad();
            loss.backward();
            opt.step();
            auto bs = static_cast<int64_t>(labels.size());
            loss_sum += loss.item<double>() * static_cast<double>(bs);
            auto p = argmax(logits.detach(), 1).to_vector<int64_t>();
            for (int64_t i = 0; i < bs; ++i) correct += p[i] == labels[i];
            seen += bs;
            if (!a.quiet) bar.update(s + 1, seen, loss_sum / static_cast<double>(seen));
        }
        if (g_stop) break;
        Scores vs = score(*model, val);
        train::EpochLog log{
            .epoch = epoch + 1,
            .train_loss = loss_sum / static_cast<double>(seen),
            .train_metric = static_cast<double>(correct) / static_cast<double>(seen),
            .val_loss = vs.loss,
            .val_metric = vs.accuracy,
            .lr = lr_e,
            .seconds =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - te).count()};
        history.push_back(log);
        if (!a.quiet) {
            char buf[160];
            std::snprintf(buf, sizeof buf, "loss %.4f acc %.3f | val loss %.4f acc %.3f | %.1fs",
                          log.train_loss, log.train_metric, log.val_loss, log.val_metric,
                          log.seconds);
            bar.finish(buf);
        }
        train::append_metrics_csv(out + "/metrics.csv", log, train::Task::classification);
        train::plot_curves_png(out + "/curves.png", history, train::Task::classification,
                               "speech-digits (val = held-out espeak-ng voices)");
        nlohmann::json h = nlohmann::json::array();
        for (const auto& e : history)
            h.push_back(
                {e.epoch, e.train_loss, e.train_metric, e.val_loss, e.val_metric, e.lr, e.seconds});
        auto st = default_generator().state();
        train::save_checkpoint(ckpt, *model, &opt, nullptr,
                               {{"recipe", kRecipe},
                                {"epoch", std::to_string(epoch + 1)},
                                {"epochs", std::to_string(epochs)},
                                {"seed", std::to_string(seed)},
                                {"config", cfg.to_json().dump()},
                                {"history", h.dump()},
                                {"rng_seed", std::to_string(st[0])},
                                {"rng_offset", std::to_string(st[1])}});
    }
    if (g_stop) return interrupted(ckpt);

    Scores vs = score(*model, val), fs_ = score(*model, tests.flite),
           rs = score(*model, tests.real);
    save_spectrograms(out + "/spectrograms.png",
                      {{"espeak", &val}, {"flite", &tests.flite}, {"real", &tests.real}},
                      {&vs, &fs_, &rs});
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!a.quiet) {
        print_confusion("flite voices", tests.flite, fs_);
        print_by_source("flite", tests.flite, fs_);
        print_confusion("real recordings", tests.real, rs);
        std::fprintf(
            stderr,
            "val accuracy %.4f (held-out espeak-ng voices), flite accuracy %.4f, real "
            "accuracy %.4f\nwrote %s, %s/metrics.csv, %s/curves.png, %s/spectrograms.png\n",
            vs.accuracy, fs_.accuracy, rs.accuracy, ckpt.c_str(), out.c_str(), out.c_str(),
            out.c_str());
    }
    std::printf(
        "{\"recipe\":\"%s\",\"epochs\":%lld,\"train_utterances\":%lld,\"val_accuracy\":%s,"
        "\"flite_accuracy\":%s,\"real_accuracy\":%s,\"val_loss\":%s,\"flite_utterances\":%lld,"
        "\"real_utterances\":%lld,\"seconds\":%s,\"out\":\"%s\"}\n",
        kRecipe, static_cast<long long>(epochs), static_cast<long long>(n),
        jnum(vs.accuracy).c_str(), jnum(fs_.accuracy).c_str(), jnum(rs.accuracy).c_str(),
        jnum(vs.loss).c_str(),
        static_cast<long long>(tests.flite.x.defined() ? tests.flite.x.size(0) : 0),
        static_cast<long long>(tests.real.x.defined() ? tests.real.x.size(0) : 0),
        jnum(secs).c_str(), out.c_str());
    return 0;
}

// ---- eval --------------------------------------------------------------------------------------
int eval_speech(const std::string& checkpoint, int threads) {
    if (threads > 0) set_num_threads(threads);
    SafetensorsFile f;
    try {
        f = load_safetensors(checkpoint);
    } catch (const Error& e) {
        throw UsageError(e.what());
    }
    if (!f.metadata.count("config"))
        throw UsageError("eval: " + checkpoint +
                         " has no speech-digits configuration in its "
                         "metadata; was it written by `soma train speech-digits`?");
    Config cfg = Config::from_json(nlohmann::json::parse(f.metadata["config"]));
    auto model = build_model(cfg);
    train::load_checkpoint(checkpoint, *model);
    model->eval();
    TestSets t = load_test_sets(cfg, false);
    Scores fs_ = score(*model, t.flite), rs = score(*model, t.real);
    print_confusion("flite voices", t.flite, fs_);
    print_by_source("flite", t.flite, fs_);
    print_confusion("real recordings", t.real, rs);
    std::printf(
        "{\"recipe\":\"%s\",\"checkpoint\":\"%s\",\"flite_accuracy\":%s,\"real_accuracy\":%s,"
        "\"flite_utterances\":%lld,\"real_utterances\":%lld}\n",
        kRecipe, checkpoint.c_str(), jnum(fs_.accuracy).c_str(), jnum(rs.accuracy).c_str(),
        static_cast<long long>(t.flite.x.defined() ? t.flite.x.size(0) : 0),
        static_cast<long long>(t.real.x.defined() ? t.real.x.size(0) : 0));
    return 0;
}

}  // namespace

void add_speech_workflows(std::vector<Workflow>& out) {
    out.push_back({.name = kRecipe,
                   .description = "spoken digits 0-9: CNN on log-mel spectrograms of espeak-ng "
                                  "speech, tested on flite voices and real recordings",
                   .train = train_speech,
                   .generate = nullptr,
                   .play = nullptr,
                   .eval = eval_speech});
}

}  // namespace soma::app
