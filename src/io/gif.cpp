// Animated GIF writing with giflib. Layout of the stream:
//   header + logical screen (global colour table = the first frame's table)
//   NETSCAPE2.0 application extension (loop count)
//   per frame: graphics-control extension (delay, dispose = none) + image descriptor with a
//   local colour table + LZW-coded indices (EGifPutLine row by row)
// Colour tables: a frame with <= 256 distinct colours gets exactly those (sorted, padded to a
// power of two); otherwise each pixel maps to the nearest colour of a 6x7x6 cube.
#include "soma/gif.h"

#include <fcntl.h>
#include <gif_lib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <unordered_map>

#include "soma/error.h"

namespace soma {

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what, int code) {
    const char* msg = GifErrorString(code);
    throw Error("write_gif: " + path + ": " + what + (msg ? std::string(": ") + msg : ""));
}

struct Palette {
    std::vector<GifColorType> colors;  // padded to a power of two (>= 2)
    std::vector<GifByteType> index;    // one per pixel
};

uint32_t pack(const uint8_t* p) { return (uint32_t{p[0]} << 16) | (uint32_t{p[1]} << 8) | p[2]; }

Palette palettise(const uint8_t* rgb, int64_t pixels) {
    Palette out;
    out.index.resize(static_cast<size_t>(pixels));
    std::unordered_map<uint32_t, int> seen;
    std::vector<uint32_t> distinct;
    for (int64_t i = 0; i < pixels && distinct.size() <= 256; ++i) {
        uint32_t c = pack(rgb + 3 * i);
        if (seen.emplace(c, 0).second) distinct.push_back(c);
    }
    if (distinct.size() <= 256) {
        std::sort(distinct.begin(), distinct.end());
        for (size_t i = 0; i < distinct.size(); ++i) {
            seen[distinct[i]] = static_cast<int>(i);
            uint32_t c = distinct[i];
            out.colors.push_back({static_cast<GifByteType>(c >> 16),
                                  static_cast<GifByteType>((c >> 8) & 0xff),
                                  static_cast<GifByteType>(c & 0xff)});
        }
        for (int64_t i = 0; i < pixels; ++i)
            out.index[static_cast<size_t>(i)] =
                static_cast<GifByteType>(seen.at(pack(rgb + 3 * i)));
    } else {
        // 6 x 7 x 6 = 252 colours; index = (r * 7 + g) * 6 + b
        const int levels[3] = {6, 7, 6};
        for (int r = 0; r < 6; ++r)
            for (int g = 0; g < 7; ++g)
                for (int b = 0; b < 6; ++b)
                    out.colors.push_back({static_cast<GifByteType>(r * 255 / 5),
                                          static_cast<GifByteType>(g * 255 / 6),
                                          static_cast<GifByteType>(b * 255 / 5)});
        for (int64_t i = 0; i < pixels; ++i) {
            const uint8_t* p = rgb + 3 * i;
            int q[3];
            for (int c = 0; c < 3; ++c) q[c] = (p[c] * (levels[c] - 1) + 127) / 255;
            out.index[static_cast<size_t>(i)] =
                static_cast<GifByteType>((q[0] * 7 + q[1]) * 6 + q[2]);
        }
    }
    size_t size = 2;
    while (size < out.colors.size()) size *= 2;
    out.colors.resize(size, GifColorType{0, 0, 0});
    return out;
}

struct MapDeleter {
    void operator()(ColorMapObject* m) const { GifFreeMapObject(m); }
};
using MapPtr = std::unique_ptr<ColorMapObject, MapDeleter>;

MapPtr make_map(const Palette& p) {
    return MapPtr(GifMakeMapObject(static_cast<int>(p.colors.size()), p.colors.data()));
}

}  // namespace

struct GifWriter::State {
    GifFileType* gif = nullptr;
};

GifWriter::GifWriter(const std::string& path, int width, int height, GifOptions options)
    : s_(std::make_unique<State>()),
      path_(path),
      width_(width),
      height_(height),
      options_(options) {
    SOMA_CHECK_VALUE(width > 0 && height > 0 && width <= 65535 && height <= 65535,
                     "GifWriter: ", path, ": frame size must be 1..65535: got ", width, "x",
                     height);
    SOMA_CHECK_VALUE(options.delay_cs >= 0 && options.delay_cs <= 65535 && options.loop >= 0 &&
                         options.loop <= 65535,
                     "GifWriter: ", path, ": delay_cs and loop must be in 0..65535: got ",
                     options.delay_cs, " and ", options.loop);
    tmp_ = path + ".tmp" + std::to_string(::getpid());
    // open() with 0666 so that the umask applies (EGifOpenFileName creates files 0600)
    int fd = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0)
        throw Error("write_gif: " + path + ": cannot create " + tmp_ + ": " + std::strerror(errno));
    int err = 0;
    s_->gif = EGifOpenFileHandle(fd, &err);
    if (!s_->gif) {
        ::close(fd);
        std::error_code ec;
        std::filesystem::remove(tmp_, ec);
        fail(path, "cannot create " + tmp_, err);
    }
}

GifWriter::~GifWriter() {
    if (finished_) return;
    if (s_->gif) {
        int err = 0;
        EGifCloseFile(s_->gif, &err);
    }
    std::error_code ec;
    std::filesystem::remove(tmp_, ec);
}

void GifWriter::add_frame(const uint8_t* rgb) {
    SOMA_CHECK_VALUE(!finished_, "GifWriter.add_frame: ", path_, ": already finished");
    GifFileType* g = s_->gif;
    Palette pal = palettise(rgb, static_cast<int64_t>(width_) * height_);
    MapPtr map = make_map(pal);
    if (!map) throw Error("write_gif: " + path_ + ": out of memory");
    if (frames_ == 0) {
        EGifSetGifVersion(g, true);  // GIF89a: extensions follow
        if (EGifPutScreenDesc(g, width_, height_, GifBitSize(map->ColorCount), 0, map.get()) ==
            GIF_ERROR)
            fail(path_, "writing the screen descriptor", g->Error);
        unsigned char loop[3] = {1, static_cast<unsigned char>(options_.loop & 0xff),
                                 static_cast<unsigned char>(options_.loop >> 8)};
        if (EGifPutExtensionLeader(g, APPLICATION_EXT_FUNC_CODE) == GIF_ERROR ||
            EGifPutExtensionBlock(g, 11, "NETSCAPE2.0") == GIF_ERROR ||
            EGifPutExtensionBlock(g, 3, loop) == GIF_ERROR ||
            EGifPutExtensionTrailer(g) == GIF_ERROR)
            fail(path_, "writing the loop extension", g->Error);
    }
    GraphicsControlBlock gcb{};
    gcb.DisposalMode = DISPOSE_DO_NOT;
    gcb.UserInputFlag = false;
    gcb.DelayTime = options_.delay_cs;
    gcb.TransparentColor = NO_TRANSPARENT_COLOR;
    GifByteType ext[4];
    size_t len = EGifGCBToExtension(&gcb, ext);
    if (EGifPutExtension(g, GRAPHICS_EXT_FUNC_CODE, static_cast<int>(len), ext) == GIF_ERROR)
        fail(path_, "writing a graphics control extension", g->Error);
    if (EGifPutImageDesc(g, 0, 0, width_, height_, false, map.get()) == GIF_ERROR)
        fail(path_, "writing an image descriptor", g->Error);
    for (int y = 0; y < height_; ++y)
        if (EGifPutLine(g, pal.index.data() + static_cast<size_t>(y) * static_cast<size_t>(width_),
                        width_) == GIF_ERROR)
            fail(path_, "writing pixels", g->Error);
    ++frames_;
}

void GifWriter::add_frame(const Canvas& c) {
    SOMA_CHECK_VALUE(c.width() == width_ && c.height() == height_, "GifWriter.add_frame: ", path_,
                     ": canvas is ", c.width(), "x", c.height(), ", expected ", width_, "x",
                     height_);
    add_frame(c.rgb().data());
}

void GifWriter::finish() {
    SOMA_CHECK_VALUE(!finished_, "GifWriter.finish: ", path_, ": already finished");
    SOMA_CHECK_VALUE(frames_ > 0, "GifWriter.finish: ", path_, ": no frames were added");
    int err = 0;
    int rc = EGifCloseFile(s_->gif, &err);
    s_->gif = nullptr;
    if (rc == GIF_ERROR) fail(path_, "closing " + tmp_, err);
    std::error_code ec;
    std::filesystem::rename(tmp_, path_, ec);
    if (ec) {
        std::filesystem::remove(tmp_, ec);
        throw Error("write_gif: renaming " + tmp_ + " to " + path_ + " failed");
    }
    finished_ = true;
}

void write_gif(const std::string& path, const std::vector<Canvas>& frames, GifOptions options) {
    SOMA_CHECK_VALUE(!frames.empty(), "write_gif: ", path, ": no frames");
    GifWriter w(path, frames.front().width(), frames.front().height(), options);
    for (const auto& f : frames) w.add_frame(f);
    w.finish();
}

}  // namespace soma
