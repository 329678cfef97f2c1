// Charts on a soma::Canvas (internal, not installed): axes with grid, ticks and labels, series
// drawn as lines with dots, legend entries. Shared by the training curves (train/logging.cpp) and
// the generative recipes' line and scatter plots (gen/plot.cpp).
//
//     Canvas c(640, 360);
//     chart::Bounds b;
//     for (size_t i = 0; i < xs.size(); ++i) b.add(xs[i], ys[i]);
//     chart::Frame f = chart::axes(c, 70, 28, 630, 328, b, true, "epoch");
//     chart::draw_series(c, f, xs, ys, chart::kColors[0]);
//     chart::legend_entry(c, f.px1 - 90, f.py0 + 6, 14, 6, "train", chart::kColors[0]);
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "soma/image.h"

namespace soma::chart {

/// The ten colours of matplotlib's tab10.
inline constexpr uint32_t kColors[10] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                         0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf};

/// A tick label: "1.2e-04" / "0.123" / "1.23" / "123" / "1.2e+05" by magnitude.
std::string tick_label(double v);

/// The smallest box holding the points added (points with a non-finite y are skipped).
struct Bounds {
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    void add(double x, double y) {
        if (!std::isfinite(y)) return;
        xmin = std::min(xmin, x), xmax = std::max(xmax, x);
        ymin = std::min(ymin, y), ymax = std::max(ymax, y);
    }
    bool empty() const { return !(ymin <= ymax); }
};

/// The plot box (pixels) and the data ranges it shows.
struct Frame {
    int px0, py0, px1, py1;
    double xmin, xmax, ymin, ymax;
    double sx(double x) const { return px0 + (x - xmin) / (xmax - xmin) * (px1 - px0); }
    double sy(double y) const { return py1 - (y - ymin) / (ymax - ymin) * (py1 - py0); }
};

/// Draws the box (px0, py0)-(px1, py1), five horizontal grid lines with y labels, x ticks (at
/// whole numbers, at most 11, when x_integer; else 5) and `xlabel` below; returns the frame
/// showing `b`, its y range padded by 5% (empty ranges widened). `tick` writes the labels.
Frame axes(Canvas& c, int px0, int py0, int px1, int py1, Bounds b, bool x_integer,
           const std::string& xlabel, std::string (*tick)(double) = tick_label);

/// A filled square dot of half-width `radius` at the data point (x, y).
void dot(Canvas& c, const Frame& f, double x, double y, uint32_t color, int radius);

/// A 2-pixel line through the points (x[i], y[i]) with a dot of half-width `radius` at each; a
/// non-finite y leaves a gap. Returns whether any point was drawn.
bool draw_series(Canvas& c, const Frame& f, const std::vector<double>& x,
                 const std::vector<double>& y, uint32_t color, int radius = 2);

/// A w x h colour swatch at (x, y) and `name` 6 pixels to its right.
void legend_entry(Canvas& c, int x, int y, int w, int h, const std::string& name, uint32_t color);

}  // namespace soma::chart
