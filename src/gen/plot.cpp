// Line and scatter plots for the generative recipes (see plot.h), drawn with io/chart.h.
#include "soma/gen/plot.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "io/chart.h"
#include "soma/error.h"

namespace soma::gen {

void save_line_plot_png(const std::string& path, const std::string& title,
                        const std::vector<LineSeries>& series) {
    const int W = 640, H = 360;
    Canvas c(W, H);
    c.text(60, 6, title, 0x202020, 2);
    chart::Bounds b{.xmin = 1, .xmax = 1};
    for (auto& s : series)
        for (size_t i = 0; i < s.y.size(); ++i) b.add(static_cast<double>(i + 1), s.y[i]);
    if (b.empty()) b.ymin = 0, b.ymax = 1;
    chart::Frame f = chart::axes(c, 70, 28, W - 10, H - 32, b, true, "epoch");
    int ly = f.py0 + 6;
    for (size_t k = 0; k < series.size(); ++k) {
        const auto& s = series[k];
        std::vector<double> x(s.y.size());
        std::iota(x.begin(), x.end(), 1.0);  // epochs 1..n
        chart::draw_series(c, f, x, s.y, chart::kColors[k % 10]);
        chart::legend_entry(c, f.px1 - 110, ly, 14, 6, s.name, chart::kColors[k % 10]);
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
    chart::Bounds b;
    for (size_t i = 0; i < n; ++i) {
        classes = std::max(classes, l[i] + 1);
        b.add(p[2 * i], p[2 * i + 1]);
    }
    if (b.empty()) b = {0, 1, 0, 1};
    double xpad = (b.xmax - b.xmin) * 0.03;  // keep the extreme points off the frame
    b.xmin -= xpad, b.xmax += xpad;
    const int W = 820, H = 600, legend = 150;
    Canvas c(W, H);
    c.text(60, 6, title, 0x202020, 2);
    chart::Frame f = chart::axes(c, 70, 28, W - legend - 10, H - 32, b, false, "pc 1");
    c.text(4, (f.py0 + f.py1) / 2 - 12, "pc 2", 0x404040);
    for (size_t i = 0; i < n; ++i)
        chart::dot(c, f, p[2 * i], p[2 * i + 1],
                   chart::kColors[static_cast<size_t>(std::max<int64_t>(l[i], 0)) % 10], 1);
    int ly = f.py0 + 6;
    for (int64_t k = 0; k < classes; ++k) {
        std::string name =
            k < static_cast<int64_t>(class_names.size()) ? class_names[k] : std::to_string(k);
        chart::legend_entry(c, W - legend, ly, 10, 7, name, chart::kColors[k % 10]);
        ly += 14;
    }
    c.save_png(path);
}

}  // namespace soma::gen
