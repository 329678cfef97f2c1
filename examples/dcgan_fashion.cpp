// The C++ API behind `soma train dcgan-fashion`: a DCGAN on Fashion-MNIST trained for one epoch
// with soma::gen::fit_gan, which writes runs/dcgan-example/samples.png (64 fixed latents),
// metrics.csv and a resumable checkpoint. The CLI recipe adds the FID and `soma generate`.
#include <soma/gen.h>
#include <soma/soma.h>

#include <cstdio>

int main() try {
    soma::data::TensorDataset raw = soma::data::fashion_mnist("", true);
    soma::data::TensorDataset train(raw.inputs() * 2.0 - 1.0);  // [-1, 1], the Tanh range
    soma::data::DataLoader loader(train, {.batch_size = 64, .shuffle = true, .drop_last = true});
    soma::manual_seed(0);
    soma::gen::DcganGenerator g(64);
    soma::gen::DcganDiscriminator d;
    soma::gen::dcgan_init(g);
    soma::gen::dcgan_init(d);
    soma::optim::Adam og(g.parameters(), {.lr = 2e-4, .betas = {0.5, 0.999}});
    soma::optim::Adam od(d.parameters(), {.lr = 2e-4, .betas = {0.5, 0.999}});
    auto r = soma::gen::fit_gan(g, d, og, od, loader,
                                {.epochs = 1, .latent_dim = 64, .out_dir = "runs/dcgan-example"});
    std::printf("{\"g_loss\": %.4f, \"d_loss\": %.4f}\n", r.history.back().g_loss,
                r.history.back().d_loss);
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "dcgan_fashion: %s\n", e.what());
    return 1;
}
