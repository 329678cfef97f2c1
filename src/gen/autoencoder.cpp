// Convolutional autoencoder and VAE (shapes in autoencoder.h), the VAE loss and its epoch loop.
#include "soma/gen/autoencoder.h"

#include <chrono>

#include "soma/autograd.h"
#include "soma/ops.h"
#include "soma/train.h"

namespace soma::gen {

namespace F = nn::functional;

namespace {
constexpr int64_t kHidden = 64 * 7 * 7;

double now_seconds() {
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
}

nn::Conv2dOptions down(int64_t in, int64_t out) {
    return {.in = in, .out = out, .kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}};
}
nn::Conv2dOptions same(int64_t in, int64_t out) {
    return {.in = in, .out = out, .kernel = {3, 3}, .stride = {1, 1}, .padding = {1, 1}};
}
}  // namespace

ConvDecoder::ConvDecoder(int64_t code)
    : fc({.in = code, .out = kHidden}),
      up1({.scale_factor = std::array<double, 2>{2, 2}}),
      up2({.scale_factor = std::array<double, 2>{2, 2}}),
      conv1(same(64, 32)),
      conv2(same(32, 1)) {
    register_module("fc", fc);
    register_module("up1", up1);
    register_module("conv1", conv1);
    register_module("up2", up2);
    register_module("conv2", conv2);
}

Tensor ConvDecoder::forward(const Tensor& z) {
    Tensor h = relu(fc(z)).view({-1, 64, 7, 7});  // [N, 64, 7, 7]
    h = relu(conv1(up1(h)));                      // [N, 32, 14, 14]
    return conv2(up2(h));                         // [N, 1, 28, 28] logits
}

ConvAutoencoder::ConvAutoencoder(AutoencoderOptions o)
    : options(o),
      conv1(down(1, 32)),
      conv2(down(32, 64)),
      fc({.in = kHidden, .out = o.code}),
      decoder(o.code) {
    SOMA_CHECK_VALUE(o.code > 0, "ConvAutoencoder: code must be > 0, got ", o.code);
    register_module("conv1", conv1);
    register_module("conv2", conv2);
    register_module("fc", fc);
    register_module("decoder", decoder);
}

Tensor ConvAutoencoder::encode(const Tensor& x) {
    return fc(relu(conv2(relu(conv1(x)))).flatten(1));
}

Tensor ConvAutoencoder::decode(const Tensor& z) { return sigmoid(decoder(z)); }

ConvVAE::ConvVAE(AutoencoderOptions o)
    : options(o),
      conv1(down(1, 32)),
      conv2(down(32, 64)),
      fc_mu({.in = kHidden, .out = o.code}),
      fc_logvar({.in = kHidden, .out = o.code}),
      decoder(o.code) {
    SOMA_CHECK_VALUE(o.code > 0, "ConvVAE: code must be > 0, got ", o.code);
    register_module("conv1", conv1);
    register_module("conv2", conv2);
    register_module("fc_mu", fc_mu);
    register_module("fc_logvar", fc_logvar);
    register_module("decoder", decoder);
}

std::pair<Tensor, Tensor> ConvVAE::encode(const Tensor& x) {
    Tensor h = relu(conv2(relu(conv1(x)))).flatten(1);
    return {fc_mu(h), fc_logvar(h)};
}

// z = mu + sigma * eps, sigma = exp(logvar / 2), eps ~ N(0, I): gradients reach mu and logvar.
VaeOutput ConvVAE::run(const Tensor& x) {
    auto [mu, logvar] = encode(x);
    Tensor z = is_training() ? mu + exp(logvar * 0.5) * randn_like(mu) : mu;
    return {decoder(z), mu, logvar};
}

Tensor ConvVAE::forward(const Tensor& x) { return sigmoid(run(x).recon_logits); }

Tensor ConvVAE::decode(const Tensor& z) { return sigmoid(decoder(z)); }

Tensor ConvVAE::sample(int64_t n) {
    NoGradGuard ng;
    bool was = is_training();
    eval();
    Tensor out = decode(randn({n, options.code}));
    train(was);
    return out;
}

// KL(N(mu, sigma^2) || N(0, 1)) = -1/2 sum(1 + log sigma^2 - mu^2 - sigma^2).
VaeLoss vae_loss(const VaeOutput& out, const Tensor& x, double beta) {
    SOMA_CHECK_SHAPE(out.recon_logits.shape() == x.shape(),
                     "vae_loss: reconstruction and input shapes differ: got ",
                     out.recon_logits.shape(), ", expected ", x.shape(), ".");
    auto n = static_cast<double>(x.size(0));
    Tensor rec =
        F::binary_cross_entropy_with_logits(out.recon_logits, x, {}, {}, F::Reduction::sum) / n;
    Tensor kl = (1 + out.logvar - out.mu * out.mu - exp(out.logvar)).sum() * (-0.5 / n);
    VaeLoss l;
    l.total = rec + kl * beta;
    l.recon = rec.item<double>();
    l.kl = kl.item<double>();
    return l;
}

VaeEpochStats train_vae_epoch(ConvVAE& vae, optim::Optimizer& opt, data::DataLoader& loader,
                              int64_t max_batches, bool progress, const std::string& label,
                              const std::function<bool()>& should_stop) {
    const double t0 = now_seconds();
    vae.train();
    int64_t nb = loader.size();
    if (max_batches > 0) nb = std::min(nb, max_batches);
    train::ProgressBar bar(label, nb);
    VaeEpochStats s{0, 0, 0, 0, 0};
    int64_t seen = 0;
    for (const data::Example& batch : loader) {
        if (s.batches >= nb) break;
        if (should_stop && should_stop()) throw Error("train_vae_epoch: stopped by request");
        VaeLoss l = vae_loss(vae.run(batch.input), batch.input);
        double lv = l.total.item<double>();
        SOMA_CHECK(std::isfinite(lv), "train_vae_epoch: the loss became ", lv, " at batch ",
                   s.batches + 1, ". Lower the learning rate.");
        opt.zero_grad();
        l.total.backward();
        opt.step();
        auto n = batch.input.size(0);
        s.loss += lv * static_cast<double>(n);
        s.recon += l.recon * static_cast<double>(n);
        s.kl += l.kl * static_cast<double>(n);
        seen += n;
        ++s.batches;
        if (progress) bar.update(s.batches, seen, s.loss / static_cast<double>(seen));
    }
    if (seen > 0) {
        s.loss /= static_cast<double>(seen);
        s.recon /= static_cast<double>(seen);
        s.kl /= static_cast<double>(seen);
    }
    s.seconds = now_seconds() - t0;
    if (progress) {
        char buf[128];
        std::snprintf(buf, sizeof buf, "loss %.2f recon %.2f kl %.2f  %.1fs", s.loss, s.recon, s.kl,
                      s.seconds);
        bar.finish(buf);
    }
    return s;
}

double reconstruction_mse(nn::Module& model, data::DataLoader& loader) {
    bool was = model.is_training();
    model.eval();
    NoGradGuard ng;
    double sum = 0;
    int64_t count = 0;
    for (const data::Example& b : loader) {
        Tensor d = model(b.input) - b.input;
        sum += (d * d).sum().item<double>();
        count += b.input.numel();
    }
    model.train(was);
    return count ? sum / static_cast<double>(count) : NAN;
}

Tensor interpolate_latent(ConvVAE& vae, const Tensor& za, const Tensor& zb, int64_t steps) {
    SOMA_CHECK_VALUE(steps >= 2, "interpolate_latent: steps must be >= 2, got ", steps);
    NoGradGuard ng;
    Tensor t = linspace(0.0, 1.0, steps).unsqueeze(1);  // [steps, 1]
    Tensor z = za.reshape({1, -1}) * (1 - t) + zb.reshape({1, -1}) * t;
    bool was = vae.is_training();
    vae.eval();
    Tensor out = vae.decode(z);
    vae.train(was);
    return out;
}

}  // namespace soma::gen
