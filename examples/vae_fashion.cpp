// A convolutional VAE on Fashion-MNIST (16-d latent, reparameterisation, KL term): a grid of
// samples from the prior, and latent interpolations between pairs of test images.
//
//   vae_fashion [--epochs 1] [--max-batches 0] [--code 16] [--out runs/vae-fashion] [--threads N]
// The last line is JSON: loss, recon and kl of the last epoch, test_mse of reconstructions.
#include <soma/gen.h>
#include <soma/soma.h>

#include <cstdio>
#include <filesystem>
#include <string>

namespace {
struct Args {
    int64_t epochs = 1, max_batches = 0, threads = 0, code = 16;
    std::string out = "runs/vae-fashion";
};
Args parse(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        std::string k = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) throw std::runtime_error(k + " needs a value");
            return argv[++i];
        };
        if (k == "--epochs")
            a.epochs = std::stoll(next());
        else if (k == "--max-batches")
            a.max_batches = std::stoll(next());
        else if (k == "--threads")
            a.threads = std::stoll(next());
        else if (k == "--code")
            a.code = std::stoll(next());
        else if (k == "--out")
            a.out = next();
        else
            throw std::runtime_error("unknown option " + k);
    }
    return a;
}
}  // namespace

int main(int argc, char** argv) try {
    Args a = parse(argc, argv);
    if (a.threads > 0) soma::set_num_threads(static_cast<int>(a.threads));
    std::filesystem::create_directories(a.out);
    auto train_raw = soma::data::fashion_mnist("", true);
    auto test_raw = soma::data::fashion_mnist("", false);
    soma::data::TensorDataset train(train_raw.inputs());
    soma::data::TensorDataset test(test_raw.inputs(), test_raw.inputs());
    soma::data::DataLoader loader(train, {.batch_size = 128, .shuffle = true, .seed = 0});
    soma::data::DataLoader test_loader(test, {.batch_size = 500});

    soma::manual_seed(0);
    soma::gen::ConvVAE vae({.code = a.code});
    soma::optim::Adam opt(vae.parameters(), {.lr = 1e-3});
    soma::gen::VaeEpochStats s;
    for (int64_t e = 1; e <= a.epochs; ++e) {
        loader.set_epoch(e - 1);
        s = soma::gen::train_vae_epoch(
            vae, opt, loader, a.max_batches, true,
            "epoch " + std::to_string(e) + "/" + std::to_string(a.epochs));
        soma::gen::save_image_grid(a.out + "/samples_epoch_" + std::to_string(e) + ".png",
                                   vae.sample(64));
    }
    double test_mse = soma::gen::reconstruction_mse(vae, test_loader);
    soma::manual_seed(1);
    soma::gen::save_image_grid(a.out + "/samples.png", vae.sample(64));

    // 6 rows: each decodes 10 points between the means of two test images.
    std::vector<soma::Tensor> rows;
    {
        soma::NoGradGuard ng;
        vae.eval();
        auto [mu, logvar] = vae.encode(test_raw.inputs().narrow(0, 0, 12));
        for (int64_t r = 0; r < 6; ++r)
            rows.push_back(soma::gen::interpolate_latent(vae, mu[2 * r], mu[2 * r + 1], 10));
    }
    soma::gen::save_image_grid(a.out + "/interpolation.png", soma::cat(rows, 0), {.nrow = 10});
    std::printf(
        "{\"loss\": %.3f, \"recon\": %.3f, \"kl\": %.3f, \"test_mse\": %.5f, "
        "\"samples\": \"%s/samples.png\", \"interpolation\": \"%s/interpolation.png\"}\n",
        s.loss, s.recon, s.kl, test_mse, a.out.c_str(), a.out.c_str());
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "vae_fashion: %s\n", e.what());
    return 1;
}
