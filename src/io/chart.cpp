// Axes, series and legends on a Canvas (see chart.h).
#include "io/chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace soma::chart {

std::string tick_label(double v) {
    char buf[32];
    double a = std::fabs(v);
    if (a != 0 && (a < 1e-3 || a >= 1e5))
        std::snprintf(buf, sizeof buf, "%.1e", v);
    else if (a < 1)
        std::snprintf(buf, sizeof buf, "%.3f", v);
    else if (a < 10)
        std::snprintf(buf, sizeof buf, "%.2f", v);
    else
        std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
}

Frame axes(Canvas& c, int px0, int py0, int px1, int py1, Bounds b, bool x_integer,
           const std::string& xlabel, std::string (*tick)(double)) {
    const double xmin = b.xmin, xmax = b.xmax > b.xmin ? b.xmax : b.xmin + 1;
    double pad = (b.ymax - b.ymin) * 0.05;
    if (!(pad > 0)) pad = std::max(std::fabs(b.ymax) * 0.05, 1e-3);
    Frame f{px0, py0, px1, py1, xmin, xmax, b.ymin - pad, b.ymax + pad};
    c.rect(px0, py0, px1, py1, 0x404040);
    for (int i = 0; i <= 4; ++i) {  // y grid and labels
        double v = f.ymin + (f.ymax - f.ymin) * i / 4;
        int y = static_cast<int>(std::lround(f.sy(v)));
        c.line(px0 + 1, y, px1 - 1, y, 0xe6e6e6);
        std::string l = tick(v);
        c.text(px0 - 6 - Canvas::text_width(l), y - 3, l, 0x404040);
    }
    int nx = x_integer ? static_cast<int>(std::min(10.0, xmax - xmin)) : 4;
    for (int i = 0; i <= nx; ++i) {
        double v = xmin + (xmax - xmin) * i / std::max(nx, 1);
        if (x_integer) v = std::round(v);
        int x = static_cast<int>(std::lround(f.sx(v)));
        c.line(x, py1, x, py1 + 4, 0x404040);
        std::string l = x_integer ? std::to_string(static_cast<long long>(v)) : tick(v);
        c.text(x - Canvas::text_width(l) / 2, py1 + 8, l, 0x404040);
    }
    c.text((px0 + px1) / 2 - Canvas::text_width(xlabel) / 2, py1 + 19, xlabel, 0x404040);
    return f;
}

void dot(Canvas& c, const Frame& f, double x, double y, uint32_t color, int radius) {
    int cx = static_cast<int>(std::lround(f.sx(x))), cy = static_cast<int>(std::lround(f.sy(y)));
    c.rect(cx - radius, cy - radius, cx + radius, cy + radius, color, true);
}

bool draw_series(Canvas& c, const Frame& f, const std::vector<double>& x,
                 const std::vector<double>& y, uint32_t color, int radius) {
    bool any = false;
    for (size_t i = 0; i < x.size(); ++i) {
        if (!std::isfinite(y[i])) continue;
        any = true;
        if (i > 0 && std::isfinite(y[i - 1]))
            c.line(f.sx(x[i - 1]), f.sy(y[i - 1]), f.sx(x[i]), f.sy(y[i]), color, 2);
        dot(c, f, x[i], y[i], color, radius);
    }
    return any;
}

void legend_entry(Canvas& c, int x, int y, int w, int h, const std::string& name, uint32_t color) {
    c.rect(x, y, x + w, y + h, color, true);
    c.text(x + w + 6, y, name, 0x202020);
}

}  // namespace soma::chart
