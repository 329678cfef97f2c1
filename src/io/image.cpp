// Image files: PNG through libpng, PGM/PPM directly; a small RGB canvas with a 5x7 font.
#include "soma/image.h"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/tensor_impl.h"
#include "soma/autograd.h"
#include "soma/io.h"
#include "soma/ops.h"

namespace soma {

namespace {

[[noreturn]] void bad(const std::string& path, const std::string& what) {
    throw Error("image: " + path + ": " + what);
}

struct PngRead {
    std::string data;
    size_t pos = 8;
};

void png_read_cb(png_structp png, png_bytep out, png_size_t n) {
    auto* r = static_cast<PngRead*>(png_get_io_ptr(png));
    if (r->pos + n > r->data.size()) png_error(png, "truncated file");
    std::memcpy(out, r->data.data() + r->pos, n);
    r->pos += n;
}

void png_error_cb(png_structp png, png_const_charp msg) {
    auto* err = static_cast<std::string*>(png_get_error_ptr(png));
    *err = msg;
    png_longjmp(png, 1);
}
void png_warn_cb(png_structp, png_const_charp) {}

Tensor read_png(const std::string& path, std::string data) {
    PngRead r{std::move(data)};
    std::string err;
    png_structp png =
        png_create_read_struct(PNG_LIBPNG_VER_STRING, &err, png_error_cb, png_warn_cb);
    png_infop info = png_create_info_struct(png);
    std::vector<uint8_t> pixels;
    png_uint_32 w = 0, h = 0;
    int channels = 0;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, nullptr);
        bad(path, "corrupt PNG: " + err);
    }
    png_set_read_fn(png, &r, png_read_cb);
    png_set_sig_bytes(png, 8);
    png_read_info(png, info);
    int bit_depth = png_get_bit_depth(png, info), color = png_get_color_type(png, info);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (bit_depth == 16) png_set_strip_16(png);
    png_set_strip_alpha(png);
    png_read_update_info(png, info);
    w = png_get_image_width(png, info);
    h = png_get_image_height(png, info);
    channels = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    pixels.resize(rowbytes * h);
    std::vector<png_bytep> rows(h);
    for (png_uint_32 y = 0; y < h; ++y) rows[y] = pixels.data() + y * rowbytes;
    png_read_image(png, rows.data());
    png_destroy_read_struct(&png, &info, nullptr);
    int64_t C = channels >= 3 ? 3 : 1;
    Tensor t = make_tensor({C, static_cast<int64_t>(h), static_cast<int64_t>(w)}, DType::float32);
    float* p = t.data_ptr<float>();
    for (int64_t c = 0; c < C; ++c)
        for (png_uint_32 y = 0; y < h; ++y)
            for (png_uint_32 x = 0; x < w; ++x)
                p[(c * h + y) * w + x] = pixels[y * rowbytes + x * channels + c] / 255.0f;
    return t;
}

// Binary (P5/P6) or ASCII (P2/P3) PGM/PPM.
Tensor read_pnm(const std::string& path, const std::string& data) {
    std::istringstream in(data);
    std::string magic;
    in >> magic;
    auto skip = [&] {
        while (true) {
            in >> std::ws;
            if (in.peek() == '#') {
                std::string line;
                std::getline(in, line);
            } else {
                break;
            }
        }
    };
    int64_t w = 0, h = 0, maxv = 0;
    skip();
    in >> w;
    skip();
    in >> h;
    skip();
    in >> maxv;
    if (!in || w <= 0 || h <= 0 || maxv <= 0 || maxv > 65535)
        bad(path, "bad PGM/PPM header (width " + std::to_string(w) + ", height " +
                      std::to_string(h) + ", maxval " + std::to_string(maxv) + ")");
    int64_t C = (magic == "P3" || magic == "P6") ? 3 : 1;
    Tensor t = make_tensor({C, h, w}, DType::float32);
    float* p = t.data_ptr<float>();
    int64_t n = C * h * w;
    std::vector<double> vals(static_cast<size_t>(n));
    if (magic == "P5" || magic == "P6") {
        in.get();  // single whitespace after maxval
        int bpp = maxv > 255 ? 2 : 1;
        std::string bytes(static_cast<size_t>(n * bpp), '\0');
        in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        if (in.gcount() != static_cast<std::streamsize>(bytes.size()))
            bad(path, "truncated pixel data: expected " + std::to_string(bytes.size()) + " bytes");
        for (int64_t i = 0; i < n; ++i)
            vals[i] = bpp == 1 ? static_cast<unsigned char>(bytes[i])
                               : (static_cast<unsigned char>(bytes[2 * i]) << 8) |
                                     static_cast<unsigned char>(bytes[2 * i + 1]);
    } else {
        for (int64_t i = 0; i < n; ++i)
            if (!(in >> vals[i]))
                bad(path, "truncated ASCII pixel data at value " + std::to_string(i));
    }
    // Interleaved -> planar.
    for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x)
            for (int64_t c = 0; c < C; ++c)
                p[(c * h + y) * w + x] =
                    static_cast<float>(vals[(y * w + x) * C + c] / static_cast<double>(maxv));
    return t;
}

void png_write_cb(png_structp png, png_bytep data, png_size_t n) {
    auto* out = static_cast<std::string*>(png_get_io_ptr(png));
    out->append(reinterpret_cast<const char*>(data), n);
}
void png_flush_cb(png_structp) {}

void write_png_rgb(const std::string& path, int w, int h, int channels, const uint8_t* px) {
    std::string out, err;
    png_structp png =
        png_create_write_struct(PNG_LIBPNG_VER_STRING, &err, png_error_cb, png_warn_cb);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        throw Error("write_png: " + path + ": " + err);
    }
    png_set_write_fn(png, &out, png_write_cb, png_flush_cb);
    png_set_IHDR(png, info, static_cast<png_uint_32>(w), static_cast<png_uint_32>(h), 8,
                 channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; ++y)
        png_write_row(png, const_cast<png_bytep>(px + static_cast<size_t>(y) * w * channels));
    png_write_end(png, nullptr);
    png_destroy_write_struct(&png, &info);
    write_file_atomic(path, out);
}

// 5x7 glyphs, one byte per row, low 5 bits, MSB = leftmost column.
struct Glyph {
    char c;
    uint8_t rows[7];
};
constexpr Glyph kFont[] = {
    {'0', {14, 17, 19, 21, 25, 17, 14}}, {'1', {4, 12, 4, 4, 4, 4, 14}},
    {'2', {14, 17, 1, 2, 4, 8, 31}},     {'3', {31, 2, 4, 2, 1, 17, 14}},
    {'4', {2, 6, 10, 18, 31, 2, 2}},     {'5', {31, 16, 30, 1, 1, 17, 14}},
    {'6', {6, 8, 16, 30, 17, 17, 14}},   {'7', {31, 1, 2, 4, 8, 8, 8}},
    {'8', {14, 17, 17, 14, 17, 17, 14}}, {'9', {14, 17, 17, 15, 1, 2, 12}},
    {'A', {14, 17, 17, 31, 17, 17, 17}}, {'B', {30, 17, 17, 30, 17, 17, 30}},
    {'C', {14, 17, 16, 16, 16, 17, 14}}, {'D', {28, 18, 17, 17, 17, 18, 28}},
    {'E', {31, 16, 16, 30, 16, 16, 31}}, {'F', {31, 16, 16, 30, 16, 16, 16}},
    {'G', {14, 17, 16, 23, 17, 17, 15}}, {'H', {17, 17, 17, 31, 17, 17, 17}},
    {'I', {14, 4, 4, 4, 4, 4, 14}},      {'J', {7, 2, 2, 2, 2, 18, 12}},
    {'K', {17, 18, 20, 24, 20, 18, 17}}, {'L', {16, 16, 16, 16, 16, 16, 31}},
    {'M', {17, 27, 21, 21, 17, 17, 17}}, {'N', {17, 17, 25, 21, 19, 17, 17}},
    {'O', {14, 17, 17, 17, 17, 17, 14}}, {'P', {30, 17, 17, 30, 16, 16, 16}},
    {'Q', {14, 17, 17, 17, 21, 18, 13}}, {'R', {30, 17, 17, 30, 20, 18, 17}},
    {'S', {15, 16, 16, 14, 1, 1, 30}},   {'T', {31, 4, 4, 4, 4, 4, 4}},
    {'U', {17, 17, 17, 17, 17, 17, 14}}, {'V', {17, 17, 17, 17, 17, 10, 4}},
    {'W', {17, 17, 17, 21, 21, 21, 10}}, {'X', {17, 17, 10, 4, 10, 17, 17}},
    {'Y', {17, 17, 17, 10, 4, 4, 4}},    {'Z', {31, 1, 2, 4, 8, 16, 31}},
    {'.', {0, 0, 0, 0, 0, 12, 12}},      {'-', {0, 0, 0, 31, 0, 0, 0}},
    {':', {0, 12, 12, 0, 12, 12, 0}},    {'/', {0, 1, 2, 4, 8, 16, 0}},
    {'(', {2, 4, 8, 8, 8, 4, 2}},        {')', {8, 4, 2, 2, 2, 4, 8}},
    {'_', {0, 0, 0, 0, 0, 0, 31}},       {'%', {24, 25, 2, 4, 8, 19, 3}},
    {'+', {0, 4, 4, 31, 4, 4, 0}},       {'=', {0, 0, 31, 0, 31, 0, 0}},
    {',', {0, 0, 0, 0, 12, 4, 8}},       {'#', {10, 10, 31, 10, 31, 10, 10}},
};

const Glyph* glyph(char c) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    for (const Glyph& g : kFont)
        if (g.c == c) return &g;
    return nullptr;
}

}  // namespace

Tensor read_image(const std::string& path) {
    std::string data = read_file(path);
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (data.size() >= 8 && std::memcmp(data.data(), sig, 8) == 0)
        return read_png(path, std::move(data));
    if (data.size() >= 2 && data[0] == 'P' &&
        (data[1] == '2' || data[1] == '3' || data[1] == '5' || data[1] == '6'))
        return read_pnm(path, data);
    bad(path, "not a PNG or PGM/PPM file (unrecognised signature)");
}

void write_png(const std::string& path, const Tensor& image) {
    NoGradGuard ng;
    Tensor t = image;
    if (t.dim() == 2) t = t.unsqueeze(0);
    SOMA_CHECK_SHAPE(t.dim() == 3 && (t.size(0) == 1 || t.size(0) == 3),
                     "write_png: expected [H, W], [1, H, W] or [3, H, W], got ", image.shape());
    int64_t C = t.size(0), H = t.size(1), W = t.size(2);
    std::vector<double> v = t.to_vector<double>();
    std::vector<uint8_t> px(static_cast<size_t>(C * H * W));
    for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x)
            for (int64_t c = 0; c < C; ++c) {
                double s = std::clamp(v[(c * H + y) * W + x], 0.0, 1.0);
                px[(y * W + x) * C + c] = static_cast<uint8_t>(std::lround(s * 255));
            }
    write_png_rgb(path, static_cast<int>(W), static_cast<int>(H), static_cast<int>(C), px.data());
}

Canvas::Canvas(int w, int h, uint32_t bg) : w_(w), h_(h), px_(static_cast<size_t>(w) * h * 3) {
    for (int i = 0; i < w * h; ++i) {
        px_[3 * i] = (bg >> 16) & 0xff;
        px_[3 * i + 1] = (bg >> 8) & 0xff;
        px_[3 * i + 2] = bg & 0xff;
    }
}

void Canvas::pixel(int x, int y, uint32_t rgb) {
    if (x < 0 || y < 0 || x >= w_ || y >= h_) return;
    size_t i = (static_cast<size_t>(y) * w_ + x) * 3;
    px_[i] = (rgb >> 16) & 0xff;
    px_[i + 1] = (rgb >> 8) & 0xff;
    px_[i + 2] = rgb & 0xff;
}

void Canvas::line(double x0, double y0, double x1, double y1, uint32_t rgb, int thickness) {
    double len = std::max(std::fabs(x1 - x0), std::fabs(y1 - y0));
    int steps = std::max(1, static_cast<int>(std::ceil(len * 2)));
    int r = thickness / 2;
    for (int i = 0; i <= steps; ++i) {
        double t = static_cast<double>(i) / steps;
        int x = static_cast<int>(std::lround(x0 + (x1 - x0) * t));
        int y = static_cast<int>(std::lround(y0 + (y1 - y0) * t));
        for (int dy = -r; dy <= thickness - 1 - r; ++dy)
            for (int dx = -r; dx <= thickness - 1 - r; ++dx) pixel(x + dx, y + dy, rgb);
    }
}

void Canvas::rect(int x0, int y0, int x1, int y1, uint32_t rgb, bool fill) {
    if (fill) {
        for (int y = y0; y <= y1; ++y)
            for (int x = x0; x <= x1; ++x) pixel(x, y, rgb);
        return;
    }
    line(x0, y0, x1, y0, rgb);
    line(x0, y1, x1, y1, rgb);
    line(x0, y0, x0, y1, rgb);
    line(x1, y0, x1, y1, rgb);
}

void Canvas::text(int x, int y, const std::string& s, uint32_t rgb, int scale) {
    for (size_t i = 0; i < s.size(); ++i) {
        const Glyph* g = glyph(s[i]);
        if (!g) continue;
        int gx = x + static_cast<int>(i) * 6 * scale;
        for (int row = 0; row < 7; ++row)
            for (int col = 0; col < 5; ++col)
                if (g->rows[row] & (1 << (4 - col)))
                    for (int sy = 0; sy < scale; ++sy)
                        for (int sx = 0; sx < scale; ++sx)
                            pixel(gx + col * scale + sx, y + row * scale + sy, rgb);
    }
}

void Canvas::save_png(const std::string& path) const { write_png_rgb(path, w_, h_, 3, px_.data()); }

}  // namespace soma
