// soma/gen tools behind the generative recipes: PCA, classifier features for the Fréchet
// distance, the line and scatter plots.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "soma/gen.h"
#include "soma/gen/plot.h"
#include "soma/image.h"
#include "soma/soma.h"
#include "test_util.h"

using namespace soma;
namespace fs = std::filesystem;

namespace {
fs::path tools_dir(const std::string& name) {
    fs::path p = fs::temp_directory_path() / ("soma_test_gen_tools_" + name);
    fs::remove_all(p);
    fs::create_directories(p);
    return p;
}
}  // namespace

TEST(GenPca, LineAndOrthonormalComponents) {
    // Points on y = 2x: the first component is (1, 2) / sqrt(5), the second explains nothing.
    Tensor x = tensor({{0.0, 0.0}, {1.0, 2.0}, {2.0, 4.0}, {3.0, 6.0}}).to(DType::float64);
    auto p = gen::pca(x, 2);
    EXPECT_EQ(p.components.shape(), (Shape{2, 2}));
    EXPECT_EQ(p.projected.shape(), (Shape{4, 2}));
    EXPECT_EQ(p.projected.dtype(), DType::float64);
    auto c = p.components.to_vector<double>();
    EXPECT_NEAR(c[0], 1 / std::sqrt(5.0), 1e-9);
    EXPECT_NEAR(c[1], 2 / std::sqrt(5.0), 1e-9);
    // var of the projections on the line: |(1,2)|^2 * var(0..3) = 5 * 5/3.
    EXPECT_NEAR(p.explained[0], 25.0 / 3, 1e-9);
    EXPECT_NEAR(p.explained[1], 0.0, 1e-9);
    auto pr = p.projected.to_vector<double>();
    EXPECT_NEAR(pr[0], -1.5 * std::sqrt(5.0), 1e-9);
    EXPECT_NEAR(pr[1], 0.0, 1e-9);

    // Random data: orthonormal rows, decreasing variances equal to those of the projections.
    manual_seed(3);
    Tensor y = randn({200, 6}) * tensor({3.0f, 0.5f, 2.0f, 1.0f, 0.2f, 1.5f});
    auto q = gen::pca(y, 3);
    EXPECT_EQ(q.projected.dtype(), DType::float32);
    Tensor gram = matmul(q.components, q.components.t());
    EXPECT_TRUE(allclose(gram, eye(3), 1e-4, 1e-5));
    EXPECT_GE(q.explained[0], q.explained[1]);
    EXPECT_GE(q.explained[1], q.explained[2]);
    Tensor v = var(q.projected.to(DType::float64), {0});
    for (int64_t j = 0; j < 3; ++j)
        EXPECT_NEAR(v.at<double>({j}), q.explained[static_cast<size_t>(j)], 1e-3 * q.explained[0]);
    // The largest-variance axis is the first input feature (scale 3).
    EXPECT_GT(std::abs(q.components.at<float>({0, 0})), 0.9);
    EXPECT_THROW(gen::pca(y, 7), ValueError);
    EXPECT_THROW(gen::pca(zeros({1, 3}), 1), ShapeError);
}

TEST(GenFid, SequentialFeaturesAndDistances) {
    manual_seed(0);
    nn::Sequential m;
    m.emplace<nn::Flatten>();
    m.emplace<nn::Linear>(nn::LinearOptions{.in = 16, .out = 8});
    m.emplace<nn::ReLU>();
    m.emplace<nn::Linear>(nn::LinearOptions{.in = 8, .out = 3});
    m.train();
    Tensor x = rand({37, 1, 4, 4});
    Tensor f = gen::sequential_features(m, x, 3, 10);  // batches of 10, 10, 10, 7
    EXPECT_EQ(f.shape(), (Shape{37, 8}));
    EXPECT_TRUE(m.is_training());
    EXPECT_FALSE(f.requires_grad());
    Tensor full;
    {
        NoGradGuard ng;
        full = relu(m[1](x.flatten(1)));
    }
    EXPECT_TRUE(allclose(f, full, 1e-5, 1e-6));
    // Identical sets are at distance ~0; a shifted set is farther than a resampled one.
    EXPECT_NEAR(gen::frechet_distance(f, f), 0.0, 1e-6);
    Tensor g = gen::sequential_features(m, rand({37, 1, 4, 4}), 3);
    Tensor h = gen::sequential_features(m, rand({37, 1, 4, 4}) + 2.0, 3);
    EXPECT_LT(gen::frechet_distance(f, g), gen::frechet_distance(f, h));
    EXPECT_THROW(gen::sequential_features(m, x, 5), ValueError);
}

TEST(GenPlot, ScatterAndLinePngs) {
    fs::path d = tools_dir("plots");
    manual_seed(1);
    Tensor pts = randn({300, 2});
    Tensor labels = randint(0, 10, {300});
    std::string sp = (d / "scatter.png").string();
    gen::save_scatter_png(sp, pts, labels, data::FashionMNIST::classes(), "codes");
    Tensor img = read_image(sp);
    EXPECT_EQ(img.size(0), 3);
    EXPECT_GT(img.size(2), img.size(1));  // legend on the right
    // Coloured pixels exist (not just black axes on white).
    Tensor rgb = img.reshape({3, -1});
    Tensor spread = amax(rgb, {0}) - amin(rgb, {0});
    EXPECT_GT(amax(spread).item<double>(), 0.3);
    std::string lp = (d / "lines.png").string();
    gen::save_line_plot_png(lp, "losses", {{"g", {1.0, 0.8, NAN, 0.5}}, {"d", {0.3, 0.4}}});
    EXPECT_TRUE(fs::exists(lp));
    EXPECT_THROW(gen::save_scatter_png(sp, randn({4, 3}), labels.narrow(0, 0, 4), {}), ShapeError);
    EXPECT_THROW(gen::save_scatter_png(sp, randn({4, 2}), labels, {}), ShapeError);
    fs::remove_all(d);
}
