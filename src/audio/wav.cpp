// RIFF/WAVE PCM reading and writing.
//
// Layout: "RIFF" u32 size "WAVE", then chunks (4-byte id, u32 little-endian size, data padded
// to an even length). We need "fmt " (format code, channels, rate, byte rate, block align,
// bits) before "data"; other chunks (LIST, fact, ...) are skipped. WAVE_FORMAT_EXTENSIBLE is
// accepted when its sub-format is PCM. Every size is checked against the bytes present.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "soma/audio.h"
#include "soma/io.h"

namespace soma::audio {

namespace {

uint32_t u32le(const std::string& b, size_t at) {
    auto p = reinterpret_cast<const unsigned char*>(b.data()) + at;
    return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
           (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
uint16_t u16le(const std::string& b, size_t at) {
    auto p = reinterpret_cast<const unsigned char*>(b.data()) + at;
    return static_cast<uint16_t>(p[0] | (p[1] << 8));
}
void put_u32(std::string& s, uint32_t v) {
    for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u16(std::string& s, uint16_t v) {
    s.push_back(static_cast<char>(v & 0xff));
    s.push_back(static_cast<char>(v >> 8));
}

std::string format_name(uint16_t code) {
    switch (code) {
        case 2: return "Microsoft ADPCM";
        case 3: return "IEEE float";
        case 6: return "A-law";
        case 7: return "mu-law";
        case 0x11: return "IMA ADPCM";
        case 0x55: return "MP3";
        default: return "format code " + std::to_string(code);
    }
}

constexpr const char* kFix = "convert it with e.g. `sox IN -b 16 -e signed-integer OUT.wav`";

}  // namespace

Audio decode_wav(const std::string& b, const std::string& name) {
    auto fail = [&](const std::string& what, const std::string& fix) {
        throw ValueError("read_wav: " + name + ": " + what + ". " + fix);
    };
    if (b.size() < 12 || std::memcmp(b.data(), "RIFF", 4) != 0 ||
        std::memcmp(b.data() + 8, "WAVE", 4) != 0)
        fail("not a RIFF/WAVE file (missing the RIFF....WAVE header)",
             "Only WAV files are read; " + std::string(kFix));
    bool have_fmt = false;
    uint16_t code = 0, channels = 0, block_align = 0, bits = 0;
    uint32_t rate = 0;
    size_t pos = 12;
    while (pos + 8 <= b.size()) {
        std::string id = b.substr(pos, 4);
        size_t size = u32le(b, pos + 4);
        size_t body = pos + 8;
        if (id == "fmt ") {
            if (size < 16 || body + size > b.size())
                fail("truncated fmt chunk (" + std::to_string(size) + " bytes declared, " +
                         std::to_string(b.size() - body) + " present, 16 needed)",
                     "The file is damaged; re-export or re-download it");
            code = u16le(b, body);
            channels = u16le(b, body + 2);
            rate = u32le(b, body + 4);
            block_align = u16le(b, body + 12);
            bits = u16le(b, body + 14);
            if (code == 0xFFFE) {  // WAVE_FORMAT_EXTENSIBLE: sub-format GUID at offset 24
                if (size < 40)
                    fail("truncated WAVE_FORMAT_EXTENSIBLE fmt chunk (" + std::to_string(size) +
                             " bytes, 40 needed)",
                         "The file is damaged; re-export it");
                code = u16le(b, body + 24);
            }
            have_fmt = true;
        } else if (id == "data") {
            if (!have_fmt)
                fail("data chunk before the fmt chunk",
                     "The file is malformed; re-export it with a standard tool");
            if (code != 1)
                fail("unsupported encoding " + format_name(code) +
                         " (only PCM integer samples are read)",
                     std::string("Convert it to 16-bit PCM: ") + kFix);
            if (channels == 0) fail("zero channels in the fmt chunk", "The file is malformed");
            if (rate == 0) fail("sample rate 0 in the fmt chunk", "The file is malformed");
            if (bits != 8 && bits != 16)
                fail("unsupported " + std::to_string(bits) +
                         "-bit samples (8-bit unsigned and 16-bit signed PCM are read)",
                     std::string("Convert it to 16-bit PCM: ") + kFix);
            size_t frame = static_cast<size_t>(channels) * (bits / 8);
            if (block_align != frame)
                fail("block align " + std::to_string(block_align) + ", expected " +
                         std::to_string(frame) + " for " + std::to_string(channels) +
                         " channels of " + std::to_string(bits) + " bits",
                     "The file is malformed; re-export it");
            if (body + size > b.size())
                fail("truncated data chunk (" + std::to_string(size) + " bytes declared, " +
                         std::to_string(b.size() - body) + " present)",
                     "The file was cut short; re-export or re-download it");
            Audio a;
            a.sample_rate = static_cast<int>(rate);
            a.channels = channels;
            size_t n = size / frame * channels;
            a.samples.resize(n);
            auto p = reinterpret_cast<const unsigned char*>(b.data()) + body;
            if (bits == 8) {
                for (size_t i = 0; i < n; ++i)
                    a.samples[i] = (static_cast<int>(p[i]) - 128) / 128.f;
            } else {
                for (size_t i = 0; i < n; ++i)
                    a.samples[i] = static_cast<int16_t>(
                                       static_cast<uint16_t>(p[2 * i] | (p[2 * i + 1] << 8))) /
                                   32768.f;
            }
            return a;
        }
        pos = body + size + (size & 1);
    }
    if (pos < b.size() && pos + 8 > b.size())
        fail("truncated chunk header at byte " + std::to_string(pos),
             "The file was cut short; re-export or re-download it");
    fail(have_fmt ? "no data chunk" : "no fmt chunk",
         "The file is truncated or not a PCM WAV file; re-export it");
    return {};
}

Audio read_wav(const std::string& path) { return decode_wav(read_file(path), path); }

std::string encode_wav(const Audio& a, int bits) {
    SOMA_CHECK_VALUE(bits == 8 || bits == 16, "write_wav: bits must be 8 or 16: got ", bits);
    SOMA_CHECK_VALUE(a.channels > 0 && a.channels <= 65535,
                     "write_wav: channels must be in [1, 65535]: got ", a.channels);
    SOMA_CHECK_VALUE(a.sample_rate > 0, "write_wav: sample rate must be positive: got ",
                     a.sample_rate);
    SOMA_CHECK_VALUE(a.samples.size() % static_cast<size_t>(a.channels) == 0,
                     "write_wav: ", a.samples.size(),
                     " samples are not a whole number of frames of ", a.channels, " channels");
    size_t bytes = a.samples.size() * (bits / 8);
    SOMA_CHECK_VALUE(bytes < 0xFFFFFF00u, "write_wav: too long for a WAV file: got ", bytes,
                     " bytes, expected under 4 GiB");
    std::string s;
    s.reserve(44 + bytes + 1);
    s += "RIFF";
    put_u32(s, static_cast<uint32_t>(36 + bytes + (bytes & 1)));
    s += "WAVEfmt ";
    put_u32(s, 16);
    put_u16(s, 1);
    put_u16(s, static_cast<uint16_t>(a.channels));
    put_u32(s, static_cast<uint32_t>(a.sample_rate));
    uint32_t block = static_cast<uint32_t>(a.channels * (bits / 8));
    put_u32(s, static_cast<uint32_t>(a.sample_rate) * block);
    put_u16(s, static_cast<uint16_t>(block));
    put_u16(s, static_cast<uint16_t>(bits));
    s += "data";
    put_u32(s, static_cast<uint32_t>(bytes));
    for (float v : a.samples) {
        double x = std::isfinite(v) ? std::clamp(static_cast<double>(v), -1.0, 1.0) : 0.0;
        if (bits == 8) {
            s.push_back(static_cast<char>(std::clamp(std::lround(x * 128.0) + 128, 0L, 255L)));
        } else {
            auto q = static_cast<int16_t>(std::clamp(std::lround(x * 32768.0), -32768L, 32767L));
            put_u16(s, static_cast<uint16_t>(q));
        }
    }
    if (bytes & 1) s.push_back('\0');
    return s;
}

void write_wav(const std::string& path, const Audio& a, int bits) {
    write_file_atomic(path, encode_wav(a, bits));
}

std::vector<float> to_mono(const Audio& a) {
    if (a.channels == 1) return a.samples;
    SOMA_CHECK_VALUE(a.channels > 0, "to_mono: audio has no channels");
    int64_t n = a.frames();
    std::vector<float> m(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        double s = 0;
        for (int c = 0; c < a.channels; ++c) s += a.samples[i * a.channels + c];
        m[i] = static_cast<float>(s / a.channels);
    }
    return m;
}

std::vector<float> load_mono(const std::string& path, int sample_rate) {
    Audio a = read_wav(path);
    std::vector<float> m = to_mono(a);
    if (a.sample_rate == sample_rate) return m;
    return resample(m, a.sample_rate, sample_rate);
}

}  // namespace soma::audio
