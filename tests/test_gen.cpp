// soma/gen: upsampling (PyTorch values, gradients), image grids, the GAN loop (learning,
// files, resume), autoencoder / VAE shapes and steps, k-means, Hungarian, NMI, Fréchet distance.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "soma/gen.h"
#include "soma/gradcheck.h"
#include "soma/image.h"
#include "soma/soma.h"
#include "soma/train.h"

using namespace soma;
namespace F = soma::nn::functional;
namespace fs = std::filesystem;

namespace {

void expect_values(const Tensor& t, const std::vector<double>& want, double tol = 1e-6) {
    std::vector<double> got = t.to_vector<double>();
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "at " << i;
}

Tensor x34() { return arange(0.0, 12.0, 1.0, {.dtype = DType::float64}).reshape({1, 1, 3, 4}); }

fs::path temp_dir(const std::string& name) {
    fs::path p = fs::temp_directory_path() / ("soma_test_gen_" + name);
    fs::remove_all(p);
    return p;
}

}  // namespace

// ---- upsampling (golden values from torch.nn.functional.interpolate) ---------------------------

TEST(GenUpsample, NearestMatchesPyTorch) {
    Tensor y = F::interpolate(x34(), {.size = std::array<int64_t, 2>{5, 3}});
    EXPECT_EQ(y.shape(), (Shape{1, 1, 5, 3}));
    expect_values(y, {0, 1, 2, 0, 1, 2, 4, 5, 6, 4, 5, 6, 8, 9, 10});
    Tensor y2 =
        F::interpolate(x34().to(DType::float32), {.scale_factor = std::array<double, 2>{2, 2}});
    EXPECT_EQ(y2.shape(), (Shape{1, 1, 6, 8}));
    EXPECT_EQ(y2.at<double>({0, 0, 5, 7}), 11.0);
    EXPECT_EQ(y2.at<double>({0, 0, 2, 3}), 5.0);
}

TEST(GenUpsample, BilinearMatchesPyTorch) {
    using M = F::UpsampleMode;
    Tensor y =
        F::interpolate(x34(), {.scale_factor = std::array<double, 2>{2, 2}, .mode = M::bilinear});
    expect_values(y.narrow(2, 0, 2), {0.0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.0, 1.0, 1.25, 1.75,
                                      2.25, 2.75, 3.25, 3.75, 4.0});
    expect_values(y.narrow(2, 5, 1), {8.0, 8.25, 8.75, 9.25, 9.75, 10.25, 10.75, 11.0});
    Tensor s = F::interpolate(x34(), {.size = std::array<int64_t, 2>{5, 3}, .mode = M::bilinear});
    expect_values(
        s, {0.16666666666666663, 1.5, 2.833333333333333, 1.7666666666666666, 3.1, 4.433333333333333,
            4.166666666666667, 5.5, 6.833333333333333, 6.5666666666666655, 7.8999999999999995,
            9.233333333333333, 8.166666666666666, 9.5, 10.833333333333334});
    Tensor ac = F::interpolate(
        x34(), {.size = std::array<int64_t, 2>{5, 3}, .mode = M::bilinear, .align_corners = true});
    expect_values(ac, {0.0, 1.5, 3.0, 2.0, 3.5, 5.0, 4.0, 5.5, 7.0, 6.0, 7.5, 9.0, 8.0, 9.5, 11.0});
}

TEST(GenUpsample, GradientsAndModule) {
    manual_seed(0);
    Tensor x = randn({2, 2, 3, 4}, {.dtype = DType::float64}).requires_grad_();
    for (auto mode : {F::UpsampleMode::nearest, F::UpsampleMode::bilinear}) {
        F::InterpolateArgs a{.size = std::array<int64_t, 2>{5, 7}, .mode = mode};
        auto fn = [a](const std::vector<Tensor>& in) { return F::interpolate(in[0], a); };
        EXPECT_EQ(gradcheck(fn, {x}), "");
        EXPECT_EQ(gradgradcheck(fn, {x}), "");
    }
    nn::Upsample up({.scale_factor = std::array<double, 2>{2, 2}});
    EXPECT_EQ(up(zeros({1, 3, 7, 7})).shape(), (Shape{1, 3, 14, 14}));
    EXPECT_NE(up.to_string().find("Upsample(scale_factor=(2, 2), mode='nearest')"),
              std::string::npos)
        << up.to_string();
    EXPECT_THROW(F::interpolate(zeros({3, 4}), {.scale_factor = std::array<double, 2>{2, 2}}),
                 ShapeError);
    EXPECT_THROW(F::interpolate(zeros({1, 1, 3, 4}), {}), ValueError);
}

// ---- grids --------------------------------------------------------------------------------------

TEST(GenGrid, LayoutAndPng) {
    Tensor imgs = full({3, 1, 2, 2}, -1.0);
    imgs.narrow(0, 1, 1).fill_(1.0);
    Tensor g = gen::make_grid(imgs, {.nrow = 2, .padding = 1, .pad_value = 0.5, .lo = -1, .hi = 1});
    EXPECT_EQ(g.shape(), (Shape{1, 7, 7}));   // 2 rows x 2 cols of 2x2 + padding
    EXPECT_EQ(g.at<double>({0, 0, 0}), 0.5);  // padding
    EXPECT_EQ(g.at<double>({0, 1, 1}), 0.0);  // image 0: -1 -> 0
    EXPECT_EQ(g.at<double>({0, 1, 4}), 1.0);  // image 1: 1 -> 1
    EXPECT_EQ(g.at<double>({0, 4, 4}), 0.5);  // missing 4th image: padding
    fs::path d = temp_dir("grid");
    fs::create_directories(d);
    gen::save_image_grid((d / "g.png").string(), imgs, {.nrow = 2, .lo = -1, .hi = 1});
    Tensor back = read_image((d / "g.png").string());
    EXPECT_EQ(back.shape(), (Shape{1, 10, 10}));
    fs::remove_all(d);
    EXPECT_THROW(gen::make_grid(zeros({2, 2, 4, 4})), ShapeError);
}

// ---- GAN ----------------------------------------------------------------------------------------

namespace {

// Tiny models on 1x4x4 images so the loop runs in milliseconds.
struct TinyG : nn::Module {
    nn::Linear fc{{.in = 4, .out = 16}};
    TinyG() { register_module("fc", fc); }
    Tensor forward(const Tensor& z) override { return tanh(fc(z)).view({-1, 1, 4, 4}); }
};
struct TinyD : nn::Module {
    nn::Linear fc1{{.in = 16, .out = 16}}, fc2{{.in = 16, .out = 1}};
    TinyD() {
        register_module("fc1", fc1);
        register_module("fc2", fc2);
    }
    Tensor forward(const Tensor& x) override { return fc2(leaky_relu(fc1(x.flatten(1)), 0.2)); }
};

std::shared_ptr<data::TensorDataset> real_images(int64_t n) {
    manual_seed(7);
    return std::make_shared<data::TensorDataset>((randn({n, 1, 4, 4}) * 0.1 + 0.7).clamp_(-1, 1));
}

}  // namespace

TEST(GenGan, DcganShapes) {
    manual_seed(1);
    gen::DcganGenerator g(64);
    gen::DcganDiscriminator d;
    gen::dcgan_init(g);
    gen::dcgan_init(d);
    Tensor img = g(randn({4, 64}));
    EXPECT_EQ(img.shape(), (Shape{4, 1, 28, 28}));
    EXPECT_LE(soma::max(img.abs()).item<double>(), 1.0);
    Tensor logits = d(img);
    EXPECT_EQ(logits.shape(), (Shape{4, 1}));
    logits.sum().backward();
    EXPECT_TRUE(g.fc.weight.grad().defined());
    EXPECT_EQ(g.num_parameters(),
              64 * 6272 + 6272 + 2 * 6272 + 128 * 64 * 16 + 64 + 2 * 64 + 64 * 16 + 1);
    EXPECT_EQ(d.num_parameters(), 64 * 16 + 64 + 64 * 128 * 16 + 128 + 2 * 128 + 6272 + 1);
    EXPECT_NEAR(soma::std(d.fc.weight).item<double>(), 0.02, 0.003);
}

TEST(GenGan, LoopLowersDiscriminatorLossAndWritesFiles) {
    auto ds = real_images(64);
    data::DataLoader loader(*ds, {.batch_size = 16, .shuffle = true, .seed = 3, .prefetch = 0});
    manual_seed(11);
    TinyG g;
    TinyD d;
    optim::Adam og(g.parameters(), {.lr = 1e-4, .betas = {0.5, 0.999}});
    optim::Adam od(d.parameters(), {.lr = 5e-3, .betas = {0.5, 0.999}});
    std::vector<double> d_losses;
    fs::path dir = temp_dir("gan");
    gen::GanOptions o{.epochs = 3,
                      .latent_dim = 4,
                      .out_dir = dir.string(),
                      .progress = false,
                      .sample_count = 6,
                      .grid = {.nrow = 3, .lo = -1, .hi = 1}};
    o.on_iteration = [&](int64_t, int64_t, double, double dl) { d_losses.push_back(dl); };
    auto r = gen::fit_gan(g, d, og, od, loader, o);
    ASSERT_EQ(r.history.size(), 3u);
    ASSERT_EQ(d_losses.size(), 12u);
    EXPECT_LT(d_losses.back(), d_losses.front() * 0.8);
    EXPECT_GT(r.history.back().d_real, r.history.back().d_fake);
    EXPECT_TRUE(fs::exists(dir / "samples_epoch_3.png"));
    EXPECT_TRUE(fs::exists(dir / "checkpoint.safetensors"));
    EXPECT_EQ(read_image((dir / "samples.png").string()).shape(), (Shape{1, 14, 20}));
    std::ifstream csv(dir / "metrics.csv");
    std::string header, line;
    std::getline(csv, header);
    EXPECT_EQ(header, "epoch,g_loss,d_loss,d_real,d_fake,seconds,iterations_per_second");
    int lines = 0;
    while (std::getline(csv, line)) ++lines;
    EXPECT_EQ(lines, 3);
    // The generator alone loads from the checkpoint like any model.
    TinyG g2;
    train::load_checkpoint((dir / "checkpoint.safetensors").string(), g2);
    EXPECT_TRUE(equal(g2.fc.weight, g.fc.weight));
    fs::remove_all(dir);
}

TEST(GenGan, ResumeMatchesUninterruptedRun) {
    auto ds = real_images(32);
    auto run = [&](const fs::path& dir, int64_t epochs, bool resume) {
        data::DataLoader loader(*ds, {.batch_size = 8, .shuffle = true, .seed = 5, .prefetch = 0});
        manual_seed(21);
        TinyG g;
        TinyD d;
        optim::Adam og(g.parameters(), {.lr = 1e-3, .betas = {0.5, 0.999}});
        optim::Adam od(d.parameters(), {.lr = 1e-3, .betas = {0.5, 0.999}});
        gen::GanOptions o{.epochs = epochs,
                          .latent_dim = 4,
                          .out_dir = dir.string(),
                          .resume = resume,
                          .progress = false,
                          .sample_count = 4};
        auto r = gen::fit_gan(g, d, og, od, loader, o);
        return std::make_pair(g.fc.weight.clone(), r);
    };
    fs::path a = temp_dir("gan_a"), b = temp_dir("gan_b");
    auto [wa, ra] = run(a, 2, false);
    run(b, 1, false);
    auto [wb, rb] = run(b, 2, true);
    EXPECT_EQ(rb.resumed_from, 1);
    ASSERT_EQ(rb.history.size(), 2u);
    EXPECT_DOUBLE_EQ(rb.history[1].g_loss, ra.history[1].g_loss);
    EXPECT_TRUE(equal(wa, wb));
    fs::remove_all(a);
    fs::remove_all(b);
}

// ---- autoencoders -------------------------------------------------------------------------------

TEST(GenAutoencoder, ShapesAndLearning) {
    manual_seed(2);
    gen::ConvAutoencoder ae({.code = 8});
    Tensor x = rand({8, 1, 28, 28});
    EXPECT_EQ(ae.encode(x).shape(), (Shape{8, 8}));
    EXPECT_EQ(ae(x).shape(), (Shape{8, 1, 28, 28}));
    optim::Adam opt(ae.parameters(), {.lr = 3e-3});
    double first = 0, last = 0;
    for (int i = 0; i < 8; ++i) {
        Tensor loss = F::mse_loss(ae(x), x);
        (i == 0 ? first : last) = loss.item<double>();
        opt.zero_grad();
        loss.backward();
        opt.step();
    }
    EXPECT_LT(last, first);
    data::TensorDataset ds(x);
    data::DataLoader loader(ds, {.batch_size = 4, .prefetch = 0});
    double mse = gen::reconstruction_mse(ae, loader);
    EXPECT_GT(mse, 0.0);
    EXPECT_LT(mse, first);
}

TEST(GenAutoencoder, VaeLossSamplesAndSteps) {
    manual_seed(3);
    gen::ConvVAE vae({.code = 4});
    Tensor x = rand({8, 1, 28, 28});
    gen::VaeOutput out = vae.run(x);
    EXPECT_EQ(out.recon_logits.shape(), (Shape{8, 1, 28, 28}));
    EXPECT_EQ(out.mu.shape(), (Shape{8, 4}));
    // KL of mu = 0, logvar = 0 is zero; of mu = 1, logvar = 0 is 1/2 per dim.
    gen::VaeOutput fake{zeros({2, 1, 28, 28}), ones({2, 4}), zeros({2, 4})};
    gen::VaeLoss l = gen::vae_loss(fake, full({2, 1, 28, 28}, 0.5));
    EXPECT_NEAR(l.kl, 2.0, 1e-6);
    EXPECT_NEAR(l.recon, 784 * std::log(2.0), 1e-3);
    data::TensorDataset ds(x);
    data::DataLoader loader(ds, {.batch_size = 8, .prefetch = 0});
    optim::Adam opt(vae.parameters(), {.lr = 3e-3});
    auto s1 = gen::train_vae_epoch(vae, opt, loader, 0, false);
    gen::VaeEpochStats s2;
    for (int i = 0; i < 5; ++i) s2 = gen::train_vae_epoch(vae, opt, loader, 0, false);
    EXPECT_LT(s2.loss, s1.loss);
    EXPECT_EQ(vae.sample(5).shape(), (Shape{5, 1, 28, 28}));
    Tensor path = gen::interpolate_latent(vae, zeros({4}), ones({4}), 6);
    EXPECT_EQ(path.shape(), (Shape{6, 1, 28, 28}));
}

// ---- clustering ---------------------------------------------------------------------------------

TEST(GenCluster, HungarianKnownOptimum) {
    // Rows 3, cols 3: optimum 1 + 2 + 2 = 5 with (0->1, 1->0, 2->2).
    std::vector<double> c{4, 1, 3, 2, 0, 5, 3, 2, 2};
    auto a = gen::hungarian(c, 3, 3);
    EXPECT_EQ(a, (std::vector<int64_t>{1, 0, 2}));
    // Rectangular: 2 rows, 4 columns.
    std::vector<double> r{9, 2, 7, 8, 6, 4, 3, 7};
    EXPECT_EQ(gen::hungarian(r, 2, 4), (std::vector<int64_t>{1, 2}));
    EXPECT_THROW(gen::hungarian(r, 4, 2), ValueError);
}

TEST(GenCluster, AccuracyAndNmi) {
    Tensor t = from_vector<int64_t>({0, 0, 0, 1, 1, 1, 2, 2, 2, 2});
    Tensor p = from_vector<int64_t>({1, 1, 0, 0, 0, 2, 2, 2, 2, 0});
    // Best mapping 1->0, 0->1, 2->2: 2 + 2 + 3 = 7 correct of 10.
    EXPECT_DOUBLE_EQ(gen::clustering_accuracy(t, p), 0.7);
    EXPECT_NEAR(gen::normalized_mutual_info(t, p), 0.4180179112091443, 1e-12);  // sklearn
    Tensor renamed = from_vector<int64_t>({2, 2, 2, 0, 0, 0, 1, 1, 1, 1});
    EXPECT_DOUBLE_EQ(gen::clustering_accuracy(t, renamed), 1.0);
    EXPECT_NEAR(gen::normalized_mutual_info(t, renamed), 1.0, 1e-12);
    EXPECT_NEAR(gen::normalized_mutual_info(t, zeros({10}, {.dtype = DType::int64})), 0.0, 1e-12);
}

TEST(GenCluster, KMeansFindsBlobs) {
    manual_seed(4);
    Tensor y = randint(0, 4, {400});
    Tensor centers = tensor({{5.0, 0.0}, {-5.0, 0.0}, {0.0, 5.0}, {0.0, -5.0}});
    Tensor x = index_select(centers, 0, y) + randn({400, 2}) * 0.5;
    auto km = gen::kmeans(x, {.k = 4, .seed = 1});
    EXPECT_EQ(km.centroids.shape(), (Shape{4, 2}));
    EXPECT_DOUBLE_EQ(gen::clustering_accuracy(y, km.labels), 1.0);
    EXPECT_NEAR(gen::normalized_mutual_info(y, km.labels), 1.0, 1e-12);
    EXPECT_NEAR(km.inertia / 400, 2 * 0.25, 0.1);  // per-point variance of the noise
    auto again = gen::kmeans(x, {.k = 4, .seed = 1});
    EXPECT_TRUE(equal(again.labels, km.labels));
    // Two points, two clusters: exact.
    auto two = gen::kmeans(tensor({{0.0, 0.0}, {1.0, 1.0}}), {.k = 2});
    EXPECT_DOUBLE_EQ(two.inertia, 0.0);
    EXPECT_THROW(gen::kmeans(zeros({3, 2}), {.k = 4}), ValueError);
}

// ---- Fréchet distance ---------------------------------------------------------------------------

TEST(GenFrechet, EigenAndKnownDistances) {
    std::vector<double> vals, vecs;
    gen::symmetric_eigen({2, 1, 1, 2}, 2, vals, vecs);
    EXPECT_NEAR(vals[0], 1.0, 1e-12);
    EXPECT_NEAR(vals[1], 3.0, 1e-12);
    EXPECT_NEAR(std::abs(vecs[0]), std::sqrt(0.5), 1e-12);
    auto r = gen::sqrtm_psd({4, 0, 0, 9}, 2);
    EXPECT_NEAR(r[0], 2.0, 1e-12);
    EXPECT_NEAR(r[3], 3.0, 1e-12);
    // Diagonal covariances: |m1 - m2|^2 + sum (sqrt(a) - sqrt(b))^2 = 2 + (1 + 1) = 4.
    gen::FeatureStats a{2, {0, 0}, {1, 0, 0, 4}}, b{2, {1, 1}, {4, 0, 0, 9}};
    EXPECT_NEAR(gen::frechet_distance(a, b), 4.0, 1e-10);
    EXPECT_NEAR(gen::frechet_distance(a, a), 0.0, 1e-10);
    // Full covariances: scipy.linalg.sqrtm(A @ B).
    gen::FeatureStats c{3, {0, 1, 2}, {2.0, 0.5, 0.1, 0.5, 1.0, 0.3, 0.1, 0.3, 0.5}};
    gen::FeatureStats d{3, {1, 1, 0.5}, {1.0, -0.2, 0.0, -0.2, 2.0, 0.4, 0.0, 0.4, 1.5}};
    EXPECT_NEAR(gen::frechet_distance(c, d), 4.061841260114522, 1e-9);
}

TEST(GenFrechet, FeatureStatsAndLargeDim) {
    auto s = gen::feature_stats(tensor({{1.0, 2.0}, {3.0, 6.0}, {5.0, 4.0}}));
    EXPECT_NEAR(s.mean[0], 3.0, 1e-12);
    EXPECT_NEAR(s.mean[1], 4.0, 1e-12);
    EXPECT_NEAR(s.cov[0], 4.0, 1e-12);  // unbiased
    EXPECT_NEAR(s.cov[1], 2.0, 1e-12);
    EXPECT_NEAR(s.cov[3], 4.0, 1e-12);
    // Same samples: distance 0 at 64 dims (Jacobi converges on a full, rank-deficient matrix).
    manual_seed(9);
    Tensor f = randn({40, 64});
    EXPECT_NEAR(gen::frechet_distance(f, f), 0.0, 1e-6);
    Tensor g = f + 1.0;
    EXPECT_NEAR(gen::frechet_distance(f, g), 64.0, 1e-6);
}
