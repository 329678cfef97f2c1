// The animated-GIF writer (soma/gif.h): frames written and read back with giflib's DGifSlurp
// (sizes, frame count, delays, loop extension, exact colours), the colour-cube fallback and
// errors.
#include <gif_lib.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "soma/error.h"
#include "soma/gif.h"

using namespace soma;

namespace {

std::string tmp_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() / name).string();
}

struct Slurped {
    GifFileType* gif = nullptr;
    explicit Slurped(const std::string& path) {
        int err = 0;
        gif = DGifOpenFileName(path.c_str(), &err);
        if (gif && DGifSlurp(gif) == GIF_ERROR) {
            DGifCloseFile(gif, &err);
            gif = nullptr;
        }
    }
    ~Slurped() {
        int err = 0;
        if (gif) DGifCloseFile(gif, &err);
    }
    // RGB of pixel (x, y) in frame i
    uint32_t rgb(int i, int x, int y) const {
        const SavedImage& im = gif->SavedImages[i];
        const ColorMapObject* map = im.ImageDesc.ColorMap ? im.ImageDesc.ColorMap : gif->SColorMap;
        GifByteType k = im.RasterBits[y * im.ImageDesc.Width + x];
        const GifColorType& c = map->Colors[k];
        return (uint32_t{c.Red} << 16) | (uint32_t{c.Green} << 8) | c.Blue;
    }
};

}  // namespace

TEST(Gif, RoundTripFramesDelaysAndLoop) {
    auto path = tmp_path("soma_test_gif_roundtrip.gif");
    std::filesystem::remove(path);
    {
        GifWriter w(path, 40, 30, {.delay_cs = 7});
        for (int i = 0; i < 3; ++i) {
            Canvas c(40, 30, 0xffffff);
            c.rect(5 + 10 * i, 5, 12 + 10 * i, 12, 0xff0000, true);
            c.pixel(0, 29, 0x123456);
            w.add_frame(c);
        }
        EXPECT_FALSE(std::filesystem::exists(path));  // nothing visible before finish()
        w.finish();
        EXPECT_EQ(w.frames(), 3);
    }
    Slurped s(path);
    ASSERT_NE(s.gif, nullptr);
    EXPECT_EQ(s.gif->SWidth, 40);
    EXPECT_EQ(s.gif->SHeight, 30);
    ASSERT_EQ(s.gif->ImageCount, 3);
    for (int i = 0; i < 3; ++i) {
        GraphicsControlBlock gcb;
        ASSERT_EQ(DGifSavedExtensionToGCB(s.gif, i, &gcb), GIF_OK);
        EXPECT_EQ(gcb.DelayTime, 7);
        EXPECT_EQ(s.rgb(i, 0, 0), 0xffffffu);
        EXPECT_EQ(s.rgb(i, 0, 29), 0x123456u);
        EXPECT_EQ(s.rgb(i, 6 + 10 * i, 6), 0xff0000u) << "frame " << i;
        EXPECT_EQ(s.rgb(i, 6 + 10 * ((i + 1) % 3), 6), 0xffffffu) << "frame " << i;
    }
    // the NETSCAPE2.0 loop extension precedes the first frame
    bool loop = false;
    const SavedImage& first = s.gif->SavedImages[0];
    for (int e = 0; e < first.ExtensionBlockCount; ++e) {
        const ExtensionBlock& b = first.ExtensionBlocks[e];
        if (b.Function == APPLICATION_EXT_FUNC_CODE && b.ByteCount == 11 &&
            std::memcmp(b.Bytes, "NETSCAPE2.0", 11) == 0)
            loop = true;
    }
    EXPECT_TRUE(loop);
    std::filesystem::remove(path);
}

TEST(Gif, ManyColoursFallBackToACube) {
    auto path = tmp_path("soma_test_gif_cube.gif");
    std::vector<uint8_t> rgb(32 * 32 * 3);
    for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x) {
            uint8_t* p = rgb.data() + 3 * (y * 32 + x);
            p[0] = static_cast<uint8_t>(x * 8);
            p[1] = static_cast<uint8_t>(y * 8);
            p[2] = static_cast<uint8_t>((x + y) * 4);
        }
    GifWriter w(path, 32, 32);
    w.add_frame(rgb.data());
    w.finish();
    Slurped s(path);
    ASSERT_NE(s.gif, nullptr);
    ASSERT_EQ(s.gif->ImageCount, 1);
    for (int y = 0; y < 32; y += 7)
        for (int x = 0; x < 32; x += 5) {
            uint32_t c = s.rgb(0, x, y);
            const uint8_t* p = rgb.data() + 3 * (y * 32 + x);
            EXPECT_NEAR(static_cast<int>(c >> 16), p[0], 26);
            EXPECT_NEAR(static_cast<int>((c >> 8) & 0xff), p[1], 22);
            EXPECT_NEAR(static_cast<int>(c & 0xff), p[2], 26);
        }
    std::filesystem::remove(path);
}

TEST(Gif, Errors) {
    EXPECT_THROW(GifWriter("/nonexistent_dir_soma/x.gif", 10, 10), Error);
    try {
        GifWriter("/nonexistent_dir_soma/x.gif", 10, 10);
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("/nonexistent_dir_soma/x.gif"), std::string::npos);
    }
    EXPECT_THROW(GifWriter(tmp_path("soma_bad.gif"), 0, 10), ValueError);
    auto path = tmp_path("soma_test_gif_err.gif");
    {
        GifWriter w(path, 10, 10);
        EXPECT_THROW(w.add_frame(Canvas(11, 10)), ValueError);
        EXPECT_THROW(w.finish(), ValueError);  // no frames
    }
    EXPECT_FALSE(std::filesystem::exists(path));  // abandoned writer leaves nothing behind
    EXPECT_THROW(write_gif(path, {}), ValueError);
}
