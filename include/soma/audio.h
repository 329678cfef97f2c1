// soma/audio.h — WAV files, resampling and spectral features (log-mel, MFCC).
//
// Audio is float samples in [-1, 1], interleaved by channel. read_wav accepts RIFF/WAVE PCM with
// 8-bit (unsigned) or 16-bit (signed) samples, any number of channels and any sample rate; it
// rejects everything else (float, 24/32-bit, ADPCM, truncated or malformed files) with a
// soma::ValueError naming the file, the problem and the fix. write_wav writes 8- or 16-bit PCM
// atomically. resample() is a windowed-sinc (Kaiser) interpolator that low-passes below the
// lower of the two Nyquist frequencies. Features use single-precision FFTW (plans are cached
// per size and created under a lock, so every function here is thread-safe).
//
//     auto x = soma::audio::load_mono("seven.wav", 16000);       // read, downmix, resample
//     soma::Tensor m = soma::audio::log_mel_spectrogram(x, {});  // [40, frames]
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "soma/tensor.h"

namespace soma::audio {

struct Audio {
    int sample_rate = 0;
    int channels = 0;
    std::vector<float> samples;  // frames() * channels, interleaved, in [-1, 1]
    int64_t frames() const {
        return channels > 0 ? static_cast<int64_t>(samples.size()) / channels : 0;
    }
    double seconds() const {
        return sample_rate > 0 ? static_cast<double>(frames()) / sample_rate : 0.0;
    }
};

// ---- WAV -------------------------------------------------------------------------------------
/// Parses WAV bytes; `name` (a path) appears in error messages. ValueError when malformed.
Audio decode_wav(const std::string& bytes, const std::string& name = "<memory>");
/// Reads a WAV file (see decode_wav); soma::Error when unreadable.
Audio read_wav(const std::string& path);
/// WAV bytes of `audio` with 8-bit unsigned or 16-bit signed PCM (samples clipped to [-1, 1]).
std::string encode_wav(const Audio& audio, int bits = 16);
/// Writes encode_wav(audio, bits) atomically (temporary file + rename).
void write_wav(const std::string& path, const Audio& audio, int bits = 16);
/// The mean of the channels, one sample per frame.
std::vector<float> to_mono(const Audio& audio);

// ---- resampling ------------------------------------------------------------------------------
struct ResampleOptions {
    int zero_crossings = 16;  // sinc lobes on each side (quality vs speed)
    double rolloff = 0.94;    // cutoff as a fraction of the lower Nyquist frequency
    double kaiser_beta = 8.6;
};
/// `x` sampled at from_rate, resampled to to_rate (rates in Hz, positive, ratio within
/// [1/64, 64]); output length round(len * to_rate / from_rate). ValueError on bad rates.
/// Also a speed change: resample(x, 1.1, 1.0) plays 10% faster at the same rate.
std::vector<float> resample(std::span<const float> x, double from_rate, double to_rate,
                            const ResampleOptions& options = {});
/// read_wav + to_mono + resample to `sample_rate` (no resampling when the rates agree).
std::vector<float> load_mono(const std::string& path, int sample_rate);

// ---- spectra ---------------------------------------------------------------------------------
enum class MelScale { htk, slaney };

/// HTK: 2595 log10(1 + f / 700). Slaney (Auditory Toolbox, librosa's default): linear
/// f / (200 / 3) below 1 kHz, logarithmic with 27 / ln(6.4) per octave-ish step above.
double hz_to_mel(double hz, MelScale scale = MelScale::htk);
double mel_to_hz(double mel, MelScale scale = MelScale::htk);

/// Triangular filters [n_mels, n_fft / 2 + 1] with centres equally spaced on the mel scale
/// between f_min and f_max (as torchaudio.functional.melscale_fbanks). slaney_norm scales each
/// triangle to unit area (2 / bandwidth in Hz). ValueError on bad frequencies or sizes.
Tensor mel_filterbank(int n_mels, int n_fft, double sample_rate, double f_min, double f_max,
                      MelScale scale = MelScale::htk, bool slaney_norm = false);

struct StftOptions {
    int n_fft = 512;
    int win_length = 400;  // periodic Hann window, placed at the start of each n_fft frame
    int hop = 160;
};
/// |FFT|^2 of each frame: [frames, n_fft / 2 + 1] float32 with frames = 1 + (len - win) / hop
/// (0 when the signal is shorter than a window). ValueError on bad sizes.
Tensor power_spectrogram(std::span<const float> x, const StftOptions& options = {});

struct MelOptions {
    double sample_rate = 16000;
    StftOptions stft = {};
    int n_mels = 40;
    double f_min = 20;
    double f_max = 0;  // 0 = sample_rate / 2
    MelScale scale = MelScale::htk;
    bool slaney_norm = false;
    double floor = 1e-10;  // log(max(mel energy, floor))
    double top_db = 0;     // > 0: also clamp to (max - top_db dB) of the utterance
};
/// Natural log of mel-band energies: [n_mels, frames] float32.
Tensor log_mel_spectrogram(std::span<const float> x, const MelOptions& options = {});
/// DCT-II (orthonormal) of the log-mel spectrogram over the mel axis: [n_mfcc, frames].
Tensor mfcc(std::span<const float> x, int n_mfcc = 13, const MelOptions& options = {});

}  // namespace soma::audio
