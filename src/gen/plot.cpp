// Line and scatter plots for the generative recipes (see plot.h), drawn on a soma::Canvas.
#include "soma/gen/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "soma/error.h"
#include "soma/image.h"

namespace soma::gen {

namespace {

// The ten colours of matplotlib's tab10.
constexpr uint32_t kColors[10] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                  0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf};

std::string tick(double v) {
    char buf[32];
    double a = std::fabs(v);
    if (a != 0 && (a < 1e-3 || a >= 1e5))
        std::snprintf(buf, sizeof buf, "%.1e", v);
    else if (a < 10)
        std::snprintf(buf, sizeof buf, "%.2f", v);
    else
        std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
}

struct Frame {
    int px0, py0, px1, py1;
    double xmin, xmax, ymin, ymax;
    double sx(double x) const { return px0 + (x - xmin) / (xmax - xmin) * (px1 - px0); }
    double sy(double y) const { return py1 - (y - ymin) / (ymax - ymin) * (py1 - py0); }
};

// Axes box, four y ticks and (when x_integer) integer x ticks; pads degenerate ranges.
Frame axes(Canvas& c, int px0, int py0, int px1, int py1, double xmin, double xmax, double ymin,
           double ymax, bool x_integer, const std::string& xlabel) {
    if (!(xmax > xmin)) xmax = xmin + 1;
    double pad = (ymax - ymin) * 0.05;
    if (!(pad > 0)) pad = std::max(std::fabs(ymax) * 0.05, 1e-3);
    Frame f{px0, py0, px1, py1, xmin, xmax, ymin - pad, ymax + pad};
    c.rect(px0, py0, px1, py1, 0x404040);
    for (int i = 0; i <= 4; ++i) {
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

}  // namespace

void save_line_plot_png(const std::string& path, const std::string& title,
                        const std::vector<LineSeries>& series) {
    const int W = 640, H = 360;
    Canvas c(W, H);
    c.text(60, 6, title, 0x202020, 2);
    double xmax = 1, ymin = INFINITY, ymax = -INFINITY;
    for (auto& s : series)
        for (size_t i = 0; i < s.y.size(); ++i)
            if (std::isfinite(s.y[i])) {
                xmax = std::max(xmax, static_cast<double>(i + 1));
                ymin = std::min(ymin, s.y[i]);
                ymax = std::max(ymax, s.y[i]);
            }
    if (!std::isfinite(ymin)) ymin = 0, ymax = 1;
    Frame f = axes(c, 70, 28, W - 10, H - 32, 1, xmax, ymin, ymax, true, "epoch");
    int ly = f.py0 + 6;
    for (size_t k = 0; k < series.size(); ++k) {
        const auto& s = series[k];
        uint32_t col = kColors[k % 10];
        for (size_t i = 0; i < s.y.size(); ++i) {
            if (!std::isfinite(s.y[i])) continue;
            double x = static_cast<double>(i + 1);
            if (i > 0 && std::isfinite(s.y[i - 1]))
                c.line(f.sx(x - 1), f.sy(s.y[i - 1]), f.sx(x), f.sy(s.y[i]), col, 2);
            int cx = static_cast<int>(std::lround(f.sx(x))),
                cy = static_cast<int>(std::lround(f.sy(s.y[i])));
            c.rect(cx - 2, cy - 2, cx + 2, cy + 2, col, true);
        }
        c.rect(f.px1 - 110, ly, f.px1 - 96, ly + 6, col, true);
        c.text(f.px1 - 90, ly, s.name, 0x202020);
        ly += 12;
    }
    c.save_png(path);
}

void save_scatter_png(const std::string& path, const Tensor& points, const Tensor& labels,
                      const std::vector<std::string>& class_names, const std::string& title) {
    SOMA_CHECK_SHAPE(points.defined() && points.dim() == 2 && points.size(1) == 2,
                     "save_scatter_png: points must be [N, 2]: got ",
                     points.defined() ? points.shape() : Shape{}, ".");
    SOMA_CHECK_SHAPE(labels.defined() && labels.dim() == 1 && labels.size(0) == points.size(0),
                     "save_scatter_png: labels must be [N] with N = ", points.size(0), ": got ",
                     labels.defined() ? labels.shape() : Shape{}, ".");
    std::vector<double> p = points.to_vector<double>();
    std::vector<int64_t> l = labels.to(DType::int64).to_vector<int64_t>();
    const size_t n = l.size();
    int64_t classes = static_cast<int64_t>(class_names.size());
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (size_t i = 0; i < n; ++i) {
        classes = std::max(classes, l[i] + 1);
        xmin = std::min(xmin, p[2 * i]), xmax = std::max(xmax, p[2 * i]);
        ymin = std::min(ymin, p[2 * i + 1]), ymax = std::max(ymax, p[2 * i + 1]);
    }
    if (n == 0) xmin = ymin = 0, xmax = ymax = 1;
    double xpad = (xmax - xmin) * 0.03;  // keep the extreme points off the frame
    xmin -= xpad, xmax += xpad;
    const int W = 820, H = 600, legend = 150;
    Canvas c(W, H);
    c.text(60, 6, title, 0x202020, 2);
    Frame f = axes(c, 70, 28, W - legend - 10, H - 32, xmin, xmax, ymin, ymax, false, "pc 1");
    c.text(4, (f.py0 + f.py1) / 2 - 12, "pc 2", 0x404040);
    for (size_t i = 0; i < n; ++i) {
        int x = static_cast<int>(std::lround(f.sx(p[2 * i])));
        int y = static_cast<int>(std::lround(f.sy(p[2 * i + 1])));
        uint32_t col = kColors[static_cast<size_t>(std::max<int64_t>(l[i], 0)) % 10];
        c.rect(x - 1, y - 1, x + 1, y + 1, col, true);
    }
    int ly = f.py0 + 6;
    for (int64_t k = 0; k < classes; ++k) {
        std::string name =
            k < static_cast<int64_t>(class_names.size()) ? class_names[k] : std::to_string(k);
        c.rect(W - legend, ly, W - legend + 10, ly + 7, kColors[k % 10], true);
        c.text(W - legend + 16, ly, name, 0x202020);
        ly += 14;
    }
    c.save_png(path);
}

}  // namespace soma::gen
