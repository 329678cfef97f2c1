// soma/image.h — reading and writing images (PNG through libpng, PGM/PPM by hand).
//
//     auto img = soma::read_image("shoe.png");          // float32 [C, H, W] in [0, 1]
//     soma::write_png("out.png", img);                  // [C, H, W] or [H, W], values in [0, 1]
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "soma/tensor.h"

namespace soma {

/// PNG (gray, gray+alpha, RGB, RGBA, 8 or 16 bit; alpha dropped) or binary/ASCII PGM/PPM.
/// Returns float32 [C, H, W] with C = 1 or 3, values in [0, 1]. Throws naming the file.
Tensor read_image(const std::string& path);
/// Writes [H, W] (gray), [1, H, W] or [3, H, W] float values clamped to [0, 1], atomically.
void write_png(const std::string& path, const Tensor& image);

/// An 8-bit RGB canvas with simple drawing, used for plots and image grids.
class Canvas {
  public:
    Canvas(int width, int height, uint32_t background = 0xffffff);
    int width() const { return w_; }
    int height() const { return h_; }
    void pixel(int x, int y, uint32_t rgb);
    void line(double x0, double y0, double x1, double y1, uint32_t rgb, int thickness = 1);
    void rect(int x0, int y0, int x1, int y1, uint32_t rgb, bool fill = false);
    /// Built-in 5x7 font scaled by `scale`; letters are drawn upper case.
    void text(int x, int y, const std::string& s, uint32_t rgb, int scale = 1);
    static int text_width(const std::string& s, int scale = 1) {
        return static_cast<int>(s.size()) * 6 * scale;
    }
    void save_png(const std::string& path) const;
    const std::vector<uint8_t>& rgb() const { return px_; }

  private:
    int w_, h_;
    std::vector<uint8_t> px_;
};

}  // namespace soma
