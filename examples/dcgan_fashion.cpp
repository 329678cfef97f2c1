// A DCGAN on Fashion-MNIST (the gan-train workload): generator and discriminator trained with
// soma::gen::fit_gan; a grid of samples from fixed latent vectors after every epoch.
//
//   dcgan_fashion [--epochs 1] [--max-batches 0] [--out runs/dcgan-fashion] [--threads N]
//                 [--resume] [--seed 0]
// The last line is JSON: {"g_loss": ..., "d_loss": ..., "d_real": ..., "d_fake": ...,
// "iterations_per_second": ...}.
#include <soma/gen.h>
#include <soma/soma.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {
struct Args {
    int64_t epochs = 1, max_batches = 0, threads = 0;
    uint64_t seed = 0;
    bool resume = false;
    std::string out = "runs/dcgan-fashion";
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
        else if (k == "--seed")
            a.seed = std::stoull(next());
        else if (k == "--out")
            a.out = next();
        else if (k == "--resume")
            a.resume = true;
        else
            throw std::runtime_error("unknown option " + k);
    }
    return a;
}
}  // namespace

int main(int argc, char** argv) try {
    Args a = parse(argc, argv);
    if (a.threads > 0) soma::set_num_threads(static_cast<int>(a.threads));
    soma::data::TensorDataset raw = soma::data::fashion_mnist("", true);
    // Images scaled to [-1, 1], the range of the generator's Tanh; no labels.
    soma::data::TensorDataset train(raw.inputs() * 2.0 - 1.0);
    soma::data::DataLoader loader(
        train, {.batch_size = 64, .shuffle = true, .drop_last = true, .seed = a.seed});

    soma::manual_seed(a.seed);
    soma::gen::DcganGenerator g(64);
    soma::gen::DcganDiscriminator d;
    soma::gen::dcgan_init(g);
    soma::gen::dcgan_init(d);
    soma::optim::Adam og(g.parameters(), {.lr = 2e-4, .betas = {0.5, 0.999}});
    soma::optim::Adam od(d.parameters(), {.lr = 2e-4, .betas = {0.5, 0.999}});

    soma::gen::GanOptions o{.epochs = a.epochs,
                            .latent_dim = 64,
                            .out_dir = a.out,
                            .resume = a.resume,
                            .max_batches_per_epoch = a.max_batches};
    o.metadata = {{"recipe", "dcgan-fashion"}};
    auto r = soma::gen::fit_gan(g, d, og, od, loader, o);
    if (r.history.empty()) throw std::runtime_error("no epoch was run");
    const auto& last = r.history.back();
    std::printf(
        "{\"g_loss\": %.4f, \"d_loss\": %.4f, \"d_real\": %.4f, \"d_fake\": %.4f, "
        "\"iterations_per_second\": %.2f, \"seconds\": %.1f, \"samples\": \"%s/samples.png\"}\n",
        last.g_loss, last.d_loss, last.d_real, last.d_fake, last.iterations_per_second, r.seconds,
        a.out.c_str());
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "dcgan_fashion: %s\n", e.what());
    return 1;
}
