// fit_gan(), the DCGAN modules of the gan-train workload, and image grids.
#include "soma/gen/gan.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "soma/autograd.h"
#include "soma/image.h"
#include "soma/io.h"
#include "soma/ops.h"
#include "soma/random.h"
#include "soma/train.h"

namespace soma::gen {

namespace F = nn::functional;

namespace {

double now_seconds() {
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
}

std::string num(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

nlohmann::json history_json(const std::vector<GanEpochLog>& h) {
    nlohmann::json a = nlohmann::json::array();
    auto val = [](double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); };
    for (auto& e : h)
        a.push_back({{"epoch", e.epoch},
                     {"g_loss", val(e.g_loss)},
                     {"d_loss", val(e.d_loss)},
                     {"d_real", val(e.d_real)},
                     {"d_fake", val(e.d_fake)},
                     {"seconds", e.seconds},
                     {"iterations_per_second", val(e.iterations_per_second)}});
    return a;
}

std::vector<GanEpochLog> history_from_json(const std::string& s) {
    std::vector<GanEpochLog> h;
    auto get = [](const nlohmann::json& o, const char* k) {
        return o.contains(k) && o[k].is_number() ? o[k].get<double>() : NAN;
    };
    for (auto& o : nlohmann::json::parse(s)) {
        GanEpochLog e;
        e.epoch = o.at("epoch").get<int64_t>();
        e.g_loss = get(o, "g_loss");
        e.d_loss = get(o, "d_loss");
        e.d_real = get(o, "d_real");
        e.d_fake = get(o, "d_fake");
        e.seconds = get(o, "seconds");
        e.iterations_per_second = get(o, "iterations_per_second");
        h.push_back(e);
    }
    return h;
}

void add_section(NamedTensorList& out, const std::string& prefix, const nn::NamedTensors& sd) {
    for (auto& [n, t] : sd) out.emplace_back(prefix + n, t);
}

nn::NamedTensors section(const SafetensorsFile& f, const std::string& prefix) {
    nn::NamedTensors sd;
    for (auto& [n, t] : f.tensors)
        if (n.rfind(prefix, 0) == 0) sd.emplace_back(n.substr(prefix.size()), t);
    return sd;
}

double mean_sigmoid(const Tensor& logits) {
    NoGradGuard ng;
    return sigmoid(logits.detach()).mean().item<double>();
}

}  // namespace

// ---- grids ------------------------------------------------------------------------------------

Tensor make_grid(const Tensor& images, const GridOptions& o) {
    SOMA_CHECK_SHAPE(images.defined() && images.dim() == 4 &&
                         (images.size(1) == 1 || images.size(1) == 3) && images.size(0) > 0,
                     "make_grid: images must be [N, C, H, W] with N > 0 and C = 1 or 3: got ",
                     images.defined() ? images.shape() : Shape{}, ".");
    SOMA_CHECK_VALUE(o.nrow > 0 && o.padding >= 0 && o.hi > o.lo,
                     "make_grid: need nrow > 0, padding >= 0 and hi > lo: got nrow ", o.nrow,
                     ", padding ", o.padding, ", range [", o.lo, ", ", o.hi, "]");
    NoGradGuard ng;
    Tensor x = images.detach().to(DType::float32).contiguous();
    const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    const int64_t cols = std::min(o.nrow, n), rows = (n + cols - 1) / cols, p = o.padding;
    const int64_t gh = rows * (h + p) + p, gw = cols * (w + p) + p;
    Tensor grid = full({c, gh, gw}, o.pad_value);
    float* g = grid.data_ptr<float>();
    const float* s = x.data_ptr<float>();
    const double scale = 1.0 / (o.hi - o.lo);
    for (int64_t i = 0; i < n; ++i) {
        int64_t y0 = p + (i / cols) * (h + p), x0 = p + (i % cols) * (w + p);
        for (int64_t ch = 0; ch < c; ++ch)
            for (int64_t r = 0; r < h; ++r)
                for (int64_t q = 0; q < w; ++q) {
                    double v = (s[((i * c + ch) * h + r) * w + q] - o.lo) * scale;
                    g[(ch * gh + y0 + r) * gw + x0 + q] =
                        static_cast<float>(std::clamp(v, 0.0, 1.0));
                }
    }
    return grid;
}

void save_image_grid(const std::string& path, const Tensor& images, const GridOptions& o) {
    write_png(path, make_grid(images, o));
}

// ---- DCGAN ------------------------------------------------------------------------------------

DcganGenerator::DcganGenerator(int64_t latent)
    : latent_dim(latent),
      fc({.in = latent, .out = 128 * 7 * 7}),
      bn0({.features = 128 * 7 * 7}),
      deconv1({.in = 128, .out = 64, .kernel = {4, 4}, .stride = {2, 2}, .padding = {1, 1}}),
      bn1({.features = 64}),
      deconv2({.in = 64, .out = 1, .kernel = {4, 4}, .stride = {2, 2}, .padding = {1, 1}}) {
    register_module("fc", fc);
    register_module("bn0", bn0);
    register_module("deconv1", deconv1);
    register_module("bn1", bn1);
    register_module("deconv2", deconv2);
}

Tensor DcganGenerator::forward(const Tensor& z) {
    Tensor h = relu(bn0(fc(z))).view({-1, 128, 7, 7});  // [N, 128, 7, 7]
    h = relu(bn1(deconv1(h)));                          // [N, 64, 14, 14]
    return tanh(deconv2(h));                            // [N, 1, 28, 28]
}

DcganDiscriminator::DcganDiscriminator()
    : conv1({.in = 1, .out = 64, .kernel = {4, 4}, .stride = {2, 2}, .padding = {1, 1}}),
      conv2({.in = 64, .out = 128, .kernel = {4, 4}, .stride = {2, 2}, .padding = {1, 1}}),
      bn2({.features = 128}),
      fc({.in = 128 * 7 * 7, .out = 1}) {
    register_module("conv1", conv1);
    register_module("conv2", conv2);
    register_module("bn2", bn2);
    register_module("fc", fc);
}

Tensor DcganDiscriminator::forward(const Tensor& x) {
    Tensor h = leaky_relu(conv1(x), 0.2);  // [N, 64, 14, 14]
    h = leaky_relu(bn2(conv2(h)), 0.2);    // [N, 128, 7, 7]
    return fc(h.flatten(1));               // [N, 1]
}

void dcgan_init(nn::Module& model) {
    NoGradGuard ng;
    for (auto& [path, m] : model.named_modules()) {
        std::string t = m->type_name();
        for (auto& [name, p] : m->named_parameters(false)) {
            Tensor q = p;
            if (t == "BatchNorm1d" || t == "BatchNorm2d")
                name == "weight" ? nn::init::normal_(q, 1.0, 0.02) : nn::init::zeros_(q);
            else if (name == "weight")
                nn::init::normal_(q, 0.0, 0.02);
            else if (name == "bias")
                nn::init::zeros_(q);
        }
    }
}

// ---- the loop ---------------------------------------------------------------------------------

Tensor fixed_latents(int64_t n, int64_t latent, uint64_t seed) {
    Generator g(seed);
    std::vector<float> v(static_cast<size_t>(n * latent));
    for (auto& e : v) e = static_cast<float>(g.next_normal());
    return from_vector(v, {n, latent});
}

void write_gan_metrics_csv(const std::string& path, const std::vector<GanEpochLog>& history) {
    std::ostringstream os;
    os << "epoch,g_loss,d_loss,d_real,d_fake,seconds,iterations_per_second\n";
    char buf[256];
    for (auto& e : history) {
        std::snprintf(buf, sizeof buf, "%lld,%.6g,%.6g,%.6g,%.6g,%.3f,%.3f\n",
                      static_cast<long long>(e.epoch), e.g_loss, e.d_loss, e.d_real, e.d_fake,
                      e.seconds, e.iterations_per_second);
        os << buf;
    }
    write_file_atomic(path, os.str());
}

GanResult fit_gan(nn::Module& G, nn::Module& D, optim::Optimizer& g_opt, optim::Optimizer& d_opt,
                  data::DataLoader& train, const GanOptions& o) {
    SOMA_CHECK_VALUE(o.epochs >= 0, "fit_gan: epochs must be >= 0, got ", o.epochs);
    SOMA_CHECK_VALUE(o.latent_dim > 0, "fit_gan: latent_dim must be > 0, got ", o.latent_dim);
    SOMA_CHECK_VALUE(!o.resume || !o.out_dir.empty(),
                     "fit_gan: resume needs out_dir (where checkpoint.safetensors is)");
    const double t0 = now_seconds();
    GanResult result;
    std::string ckpt, csv;
    if (!o.out_dir.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(o.out_dir, ec);
        SOMA_CHECK(!ec, "fit_gan: cannot create output directory ", o.out_dir, ": ", ec.message());
        ckpt = o.out_dir + "/checkpoint.safetensors";
        csv = o.out_dir + "/metrics.csv";
    }
    int64_t start = 0;
    if (o.resume && std::filesystem::exists(ckpt)) {
        SafetensorsFile f = load_safetensors(ckpt);
        try {
            G.load_state_dict(section(f, "model."));
            D.load_state_dict(section(f, "discriminator."));
            g_opt.load_state_dict(section(f, "optim."));
            d_opt.load_state_dict(section(f, "d_optim."));
        } catch (const Error& e) {
            throw Error("checkpoint " + ckpt + ": " + e.what() +
                        " (was it written for a different model or recipe?)");
        }
        auto& meta = f.metadata;
        start = std::stoll(meta.at("epoch"));
        result.history = history_from_json(meta.at("history"));
        default_generator().set_state(
            {std::stoull(meta.at("rng_seed")), std::stoull(meta.at("rng_offset"))});
        result.resumed_from = start;
        if (o.progress)
            std::fprintf(stderr, "resuming from %s after epoch %lld\n", ckpt.c_str(),
                         static_cast<long long>(start));
    }
    if (!csv.empty()) write_gan_metrics_csv(csv, result.history);
    const Tensor fixed_z = fixed_latents(o.sample_count, o.latent_dim, o.sample_seed);
    auto latent = [&](int64_t n) {
        return o.sample_latent ? o.sample_latent(n) : randn({n, o.latent_dim});
    };

    for (int64_t epoch = start + 1; epoch <= o.epochs; ++epoch) {
        const double te = now_seconds();
        G.train();
        D.train();
        train.set_epoch(epoch - 1);
        int64_t nb = train.size();
        if (o.max_batches_per_epoch > 0) nb = std::min(nb, o.max_batches_per_epoch);
        train::ProgressBar bar("epoch " + std::to_string(epoch) + "/" + std::to_string(o.epochs),
                               nb);
        double g_sum = 0, d_sum = 0, real_sum = 0, fake_sum = 0;
        int64_t seen = 0, b = 0;
        for (const data::Example& batch : train) {
            if (b >= nb) break;
            if (o.should_stop && o.should_stop()) throw Error("fit_gan: stopped by request");
            const Tensor& real = batch.input;
            const int64_t n = real.size(0);
            Tensor fake = G(latent(n));
            // Discriminator: real -> real_label, fake (detached) -> 0.
            Tensor d_real = D(real);
            Tensor d_fake = D(fake.detach());
            Tensor d_loss =
                F::binary_cross_entropy_with_logits(d_real, full_like(d_real, o.real_label)) +
                F::binary_cross_entropy_with_logits(d_fake, zeros_like(d_fake));
            d_opt.zero_grad();
            d_loss.backward();
            d_opt.step();
            // Generator: make D call the fakes real (non-saturating loss).
            Tensor d_gen = D(fake);
            Tensor g_loss = F::binary_cross_entropy_with_logits(d_gen, ones_like(d_gen));
            g_opt.zero_grad();
            g_loss.backward();
            g_opt.step();

            double gl = g_loss.item<double>(), dl = d_loss.item<double>();
            if (!std::isfinite(gl) || !std::isfinite(dl))
                throw Error("fit_gan: the losses became g " + num(gl) + ", d " + num(dl) +
                            " at epoch " + std::to_string(epoch) + ", batch " +
                            std::to_string(b + 1) + ". Lower the learning rates.");
            auto w = static_cast<double>(n);
            g_sum += gl * w;
            d_sum += dl * w;
            real_sum += mean_sigmoid(d_real) * w;
            fake_sum += mean_sigmoid(d_fake) * w;
            seen += n;
            ++b;
            if (o.on_iteration) o.on_iteration(epoch, b, gl, dl);
            if (o.progress) bar.update(b, seen, g_sum / static_cast<double>(seen));
        }
        GanEpochLog log;
        log.epoch = epoch;
        if (seen > 0) {
            auto s = static_cast<double>(seen);
            log.g_loss = g_sum / s;
            log.d_loss = d_sum / s;
            log.d_real = real_sum / s;
            log.d_fake = fake_sum / s;
        }
        log.seconds = now_seconds() - te;
        log.iterations_per_second = log.seconds > 0 ? static_cast<double>(b) / log.seconds : NAN;
        result.history.push_back(log);
        if (o.progress) {
            char buf[256];
            std::snprintf(buf, sizeof buf,
                          "g_loss %.4f d_loss %.4f D(x) %.3f D(G(z)) %.3f  %.1f it/s  %.1fs",
                          log.g_loss, log.d_loss, log.d_real, log.d_fake, log.iterations_per_second,
                          log.seconds);
            bar.finish(buf);
        }
        if (!o.out_dir.empty()) {
            if (o.sample_count > 0) {
                bool gt = G.is_training();
                G.eval();
                Tensor samples;
                {
                    NoGradGuard ng;
                    samples = G(fixed_z);
                }
                G.train(gt);
                save_image_grid(o.out_dir + "/samples_epoch_" + std::to_string(epoch) + ".png",
                                samples, o.grid);
                save_image_grid(o.out_dir + "/samples.png", samples, o.grid);
            }
            write_gan_metrics_csv(csv, result.history);
            NamedTensorList all;
            add_section(all, "model.", G.state_dict());
            add_section(all, "discriminator.", D.state_dict());
            add_section(all, "optim.", g_opt.state_dict());
            add_section(all, "d_optim.", d_opt.state_dict());
            auto meta = o.metadata;
            auto st = default_generator().state();
            meta["format"] = "soma-checkpoint-1";
            meta["kind"] = "gan";
            meta["latent_dim"] = std::to_string(o.latent_dim);
            meta["epoch"] = std::to_string(epoch);
            meta["rng_seed"] = std::to_string(st[0]);
            meta["rng_offset"] = std::to_string(st[1]);
            meta["history"] = history_json(result.history).dump();
            save_safetensors(ckpt, all, meta);
        }
    }
    result.seconds = now_seconds() - t0;
    return result;
}

}  // namespace soma::gen
