// soma/gen/autoencoder.h — a convolutional autoencoder and a variational autoencoder for 28x28
// gray images in [0, 1], with the VAE loss and a one-epoch VAE training step.
//
// Encoder (both): Conv 1->32 (3, 2, 1) ReLU [32, 14, 14], Conv 32->64 (3, 2, 1) ReLU [64, 7, 7],
// Flatten, then Linear 3136->code (VAE: two heads, mu and logvar). Decoder (both): Linear
// code->3136 ReLU, view [64, 7, 7], Upsample x2 nearest, Conv 64->32 (3, 1, 1) ReLU, Upsample x2,
// Conv 32->1 (3, 1, 1) -> logits [N, 1, 28, 28]; decode() applies the sigmoid.
//
//     soma::gen::ConvAutoencoder ae({.code = 16});
//     auto recon = ae(x);                      // [N, 1, 28, 28] in (0, 1)
//     soma::gen::ConvVAE vae({.code = 16});
//     auto out = vae.run(x);                   // recon_logits, mu, logvar
//     auto l = soma::gen::vae_loss(out, x);    // (BCE summed over pixels + KL) / N
#pragma once

#include <cmath>
#include <functional>
#include <string>

#include "soma/data.h"
#include "soma/gen/upsample.h"
#include "soma/nn.h"
#include "soma/optim.h"

namespace soma::gen {

struct AutoencoderOptions {
    int64_t code = 16;
};

/// The shared decoder: code [N, code] -> logits [N, 1, 28, 28].
class ConvDecoder : public nn::Module {
  public:
    explicit ConvDecoder(int64_t code);
    Tensor forward(const Tensor& z) override;
    std::string type_name() const override { return "ConvDecoder"; }
    nn::Linear fc;
    nn::Upsample up1, up2;
    nn::Conv2d conv1, conv2;
};

class ConvAutoencoder : public nn::Module {
  public:
    explicit ConvAutoencoder(AutoencoderOptions o = {});
    /// x [N, 1, 28, 28] -> reconstruction in (0, 1).
    Tensor forward(const Tensor& x) override { return decode(encode(x)); }
    Tensor encode(const Tensor& x);  // -> code [N, code]
    Tensor decode(const Tensor& z);  // -> [N, 1, 28, 28] in (0, 1)
    std::string type_name() const override { return "ConvAutoencoder"; }
    AutoencoderOptions options;
    nn::Conv2d conv1, conv2;
    nn::Linear fc;
    ConvDecoder decoder;
};

struct VaeOutput {
    Tensor recon_logits;  // [N, 1, 28, 28]
    Tensor mu, logvar;    // [N, code]
};

class ConvVAE : public nn::Module {
  public:
    explicit ConvVAE(AutoencoderOptions o = {});
    /// Training: z = mu + exp(logvar / 2) * eps (reparameterisation); eval: z = mu.
    VaeOutput run(const Tensor& x);
    /// Reconstruction in (0, 1) (via run()).
    Tensor forward(const Tensor& x) override;
    /// x -> (mu, logvar).
    std::pair<Tensor, Tensor> encode(const Tensor& x);
    Tensor decode(const Tensor& z);  // [N, code] -> [N, 1, 28, 28] in (0, 1)
    /// n images from z ~ N(0, I) (default generator), no grad.
    Tensor sample(int64_t n);
    std::string type_name() const override { return "ConvVAE"; }
    AutoencoderOptions options;
    nn::Conv2d conv1, conv2;
    nn::Linear fc_mu, fc_logvar;
    ConvDecoder decoder;
};

struct VaeLoss {
    Tensor total;                  // 0-dim, differentiable: (recon + beta * kl)
    double recon = NAN, kl = NAN;  // per example
};
/// recon = BCE-with-logits summed over pixels, mean over the batch; kl = -1/2 sum(1 + logvar -
/// mu^2 - exp(logvar)) mean over the batch.
VaeLoss vae_loss(const VaeOutput& out, const Tensor& x, double beta = 1.0);

struct VaeEpochStats {
    double loss = NAN, recon = NAN, kl = NAN;
    int64_t batches = 0;
    double seconds = 0;
};
/// One epoch of VAE training (batch.input in [0, 1]); max_batches = 0 means all. should_stop is
/// polled between batches; when it returns true the epoch ends by throwing soma::Error.
VaeEpochStats train_vae_epoch(ConvVAE& vae, optim::Optimizer& opt, data::DataLoader& loader,
                              int64_t max_batches = 0, bool progress = true,
                              const std::string& label = "vae",
                              const std::function<bool()>& should_stop = {});

/// Mean squared error per element between x and model(x) over a loader (eval mode, no grad).
double reconstruction_mse(nn::Module& model, data::DataLoader& loader);

/// Decodes `steps` points on the line from za to zb ([code] each): [steps, 1, 28, 28].
Tensor interpolate_latent(ConvVAE& vae, const Tensor& za, const Tensor& zb, int64_t steps);

}  // namespace soma::gen
