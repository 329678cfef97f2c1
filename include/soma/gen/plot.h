// soma/gen/plot.h — small charts for the generative recipes: per-epoch line plots of several
// named series (e.g. G and D losses) and a labelled 2-D scatter plot with a legend (e.g. a PCA
// projection of autoencoder codes coloured by true class). PNG files, written atomically.
//
//     soma::gen::save_line_plot_png("runs/x/curves.png", "losses",
//                                   {{"g_loss", {1.2, 0.9}}, {"d_loss", {1.1, 1.3}}});
//     soma::gen::save_scatter_png("runs/x/pca.png", points, labels, class_names, "codes");
#pragma once

#include <string>
#include <vector>

#include "soma/tensor.h"

namespace soma::gen {

struct LineSeries {
    std::string name;
    std::vector<double> y;  // y[i] is the value at epoch i + 1 (NaN = missing)
};

/// One panel per call: x = epoch 1..n, one coloured line per series, legend top right.
void save_line_plot_png(const std::string& path, const std::string& title,
                        const std::vector<LineSeries>& series);

/// points [N, 2] (float), labels int64 [N] in 0..classes-1 (one colour each, up to 10 distinct
/// colours, then repeated); the legend names classes by class_names (or the id). Throws
/// ShapeError on wrong shapes.
void save_scatter_png(const std::string& path, const Tensor& points, const Tensor& labels,
                      const std::vector<std::string>& class_names, const std::string& title = "");

}  // namespace soma::gen
