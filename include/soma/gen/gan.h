// soma/gen/gan.h — adversarial training: two models, two optimizers, one loop; image grids.
//
// fit_gan() runs epochs over a DataLoader of real images (batch.input, already scaled to the
// generator's output range, e.g. [-1, 1] for Tanh). Each iteration makes one discriminator step
// (BCE-with-logits: real -> 1, G(z) detached -> 0, the two losses summed) and one generator step
// (non-saturating: D(G(z)) -> 1), as the PyTorch DCGAN tutorial. Like train::fit it shows a
// ProgressBar, rewrites out_dir/metrics.csv (epoch, g_loss, d_loss, d_real = mean D(x),
// d_fake = mean D(G(z)) before the D step, seconds), and writes out_dir/checkpoint.safetensors
// atomically after every epoch: "model.*" = generator (so train::load_checkpoint(path, G) reads
// it), "discriminator.*", "optim.*" = G's optimizer, "d_optim.*", metadata with the epoch,
// history and RNG state; resume = true continues from it. After every epoch it writes
// out_dir/samples_epoch_<e>.png (and samples.png): G(z) for fixed latent vectors drawn from
// sample_seed, in eval mode.
//
//     soma::gen::DcganGenerator g;  soma::gen::DcganDiscriminator d;
//     soma::optim::Adam og(g.parameters(), {.lr = 2e-4, .betas = {0.5, 0.999}});
//     soma::optim::Adam od(d.parameters(), {.lr = 2e-4, .betas = {0.5, 0.999}});
//     auto r = soma::gen::fit_gan(g, d, og, od, loader, {.epochs = 5, .out_dir = "runs/dcgan"});
#pragma once

#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "soma/data.h"
#include "soma/nn.h"
#include "soma/optim.h"

namespace soma::gen {

// ---- image grids ----------------------------------------------------------------------------
struct GridOptions {
    int64_t nrow = 8;           // images per row
    int64_t padding = 2;        // pixels between images
    double pad_value = 0.0;     // in output units ([0, 1])
    double lo = 0.0, hi = 1.0;  // input value range mapped to [0, 1] (e.g. -1, 1 for Tanh)
};
/// images [N, C, H, W] (C = 1 or 3) -> one image [C, H', W'] in [0, 1], row-major tiling.
Tensor make_grid(const Tensor& images, const GridOptions& options = {});
/// make_grid then write_png (atomic). Throws naming the path.
void save_image_grid(const std::string& path, const Tensor& images,
                     const GridOptions& options = {});

// ---- the DCGAN of the gan-train workload (28x28 gray images) ----------------------------------
/// z [N, latent] -> [N, 1, 28, 28] in [-1, 1]: Linear latent->128*7*7, BatchNorm1d, ReLU,
/// view [128, 7, 7], ConvTranspose 128->64 (4, 2, 1), BatchNorm2d, ReLU, ConvTranspose 64->1
/// (4, 2, 1), Tanh. Children: fc, bn0, deconv1, bn1, deconv2.
class DcganGenerator : public nn::Module {
  public:
    explicit DcganGenerator(int64_t latent = 64);
    Tensor forward(const Tensor& z) override;
    std::string type_name() const override { return "DcganGenerator"; }
    int64_t latent_dim;
    nn::Linear fc;
    nn::BatchNorm1d bn0;
    nn::ConvTranspose2d deconv1;
    nn::BatchNorm2d bn1;
    nn::ConvTranspose2d deconv2;
};
/// x [N, 1, 28, 28] -> logits [N, 1]: Conv 1->64 (4, 2, 1), LeakyReLU 0.2, Conv 64->128
/// (4, 2, 1), BatchNorm2d, LeakyReLU 0.2, Flatten, Linear 6272->1. Children: conv1, conv2, bn2, fc.
class DcganDiscriminator : public nn::Module {
  public:
    DcganDiscriminator();
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "DcganDiscriminator"; }
    nn::Conv2d conv1, conv2;
    nn::BatchNorm2d bn2;
    nn::Linear fc;
};
/// DCGAN initialisation (Radford et al.): conv / deconv / linear weights N(0, 0.02), biases 0,
/// BatchNorm weights N(1, 0.02), biases 0. Draws from the default generator.
void dcgan_init(nn::Module& model);

// ---- the loop ---------------------------------------------------------------------------------
struct GanEpochLog {
    int64_t epoch = 0;  // 1-based
    double g_loss = NAN, d_loss = NAN;
    double d_real = NAN, d_fake = NAN;  // mean sigmoid(D(x)), mean sigmoid(D(G(z)))
    double seconds = 0;
    double iterations_per_second = NAN;
};

struct GanOptions {
    int64_t epochs = 1;
    int64_t latent_dim = 64;
    std::string out_dir = "";  // "" = write no files
    bool resume = false;
    bool progress = true;
    int64_t max_batches_per_epoch = 0;  // 0 = all
    double real_label = 1.0;            // one-sided label smoothing: e.g. 0.9
    int64_t sample_count = 64;          // fixed latent vectors for the per-epoch grid
    uint64_t sample_seed = 1234;
    GridOptions grid = {.nrow = 8, .padding = 2, .pad_value = 0.0, .lo = -1.0, .hi = 1.0};
    std::map<std::string, std::string> metadata = {};
    /// Latent sampler (default: N(0, 1) of shape [n, latent_dim] from the default generator).
    std::function<Tensor(int64_t n)> sample_latent = {};
    std::function<bool()> should_stop = {};
    /// Called after each iteration with (epoch, iteration, g_loss, d_loss).
    std::function<void(int64_t, int64_t, double, double)> on_iteration = {};
};

struct GanResult {
    std::vector<GanEpochLog> history;
    int64_t resumed_from = 0;
    double seconds = 0;
};

/// Trains generator and discriminator; see the contract at the top of this header.
GanResult fit_gan(nn::Module& generator, nn::Module& discriminator, optim::Optimizer& g_opt,
                  optim::Optimizer& d_opt, data::DataLoader& train, const GanOptions& options);

/// The fixed latent vectors fit_gan uses for its grids: [n, latent] N(0, 1) from `seed`
/// (a private generator: the default one is not advanced).
Tensor fixed_latents(int64_t n, int64_t latent, uint64_t seed);

/// Rewrites a GAN metrics CSV with the whole history.
void write_gan_metrics_csv(const std::string& path, const std::vector<GanEpochLog>& history);

}  // namespace soma::gen
