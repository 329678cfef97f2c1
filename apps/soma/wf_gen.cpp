// Workflows: GAN, autoencoder, VAE and clustering recipes on Fashion-MNIST (issue 6).
//
//   dcgan-fashion        DCGAN (soma::gen::fit_gan); sample grid per epoch; FID at the end
//   vae-fashion          convolutional VAE; samples, latent interpolation; FID at the end
//   autoencoder-fashion  convolutional autoencoder (train::fit, MSE); reconstructions; test MSE
//   cluster-fashion      k-means on the autoencoder's codes and on raw pixels; accuracy, NMI,
//                        PCA scatter of the codes
//
// FID here is the Fréchet distance in the feature space of our own cnn-fashion classifier (its
// penultimate-layer activations), not Inception's: numbers compare runs of this code, not papers.
// It is reported beside a floor (real training images against the test set), a ceiling
// (uniform noise against the test set) and, for scale, Gaussian-blurred training images.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>
#include <set>
#include <tuple>

#include "recipe.h"
#include "soma/autograd.h"
#include "soma/gen.h"
#include "soma/gen/plot.h"
#include "soma/io.h"
#include "soma/ops.h"
#include "soma/parallel.h"
#include "soma/random.h"
#include "soma/train.h"
#include "workflows.h"

namespace soma::app {

namespace {

namespace fs = std::filesystem;

double now_seconds() {
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
}

struct Common {
    int64_t epochs, batch_size, seed;
    double lr;
    std::string out;
    int64_t eval_cap;  // --max-batches (quick runs) also caps the images evaluated
};

Common common(const TrainArgs& a, const std::string& name, int64_t epochs, int64_t batch,
              double lr) {
    if (a.seconds > 0 || a.steps > 0)
        throw UsageError(name + ": --seconds and --steps do not apply; use --epochs");
    if (a.threads > 0) set_num_threads(a.threads);
    return {a.epochs >= 0 ? a.epochs : epochs,
            a.batch_size > 0 ? a.batch_size : batch,
            a.seed >= 0 ? a.seed : 0,
            a.lr > 0 ? a.lr : lr,
            a.out.empty() ? "runs/" + name : a.out,
            a.max_batches > 0 ? a.max_batches * (a.batch_size > 0 ? a.batch_size : batch)
                              : std::numeric_limits<int64_t>::max()};
}

struct Fashion {
    data::TensorDataset train, test;  // inputs [N, 1, 28, 28] in [0, 1], targets int64 [N]
};

const Fashion& fashion() {
    static Fashion f = [] {
        try {
            return Fashion{data::fashion_mnist("", true), data::fashion_mnist("", false)};
        } catch (const Error& e) {
            throw UsageError(std::string(e.what()) + " (Fashion-MNIST is read from " +
                             data::fashion_mnist_dir() + ")");
        }
    }();
    return f;
}

// The first min(cap, 10000) test images.
Tensor fm_test_inputs(int64_t cap) {
    const Fashion& fm = fashion();
    return fm.test.inputs().narrow(0, 0, std::min(cap, fm.test.size()));
}

SafetensorsFile open_checkpoint(const std::string& path) {
    try {
        return load_safetensors(path);
    } catch (const Error& e) {
        throw UsageError(e.what());
    }
}

std::string meta(const SafetensorsFile& f, const std::string& key, const std::string& path) {
    auto it = f.metadata.find(key);
    if (it == f.metadata.end())
        throw UsageError("checkpoint " + path + ": no \"" + key + "\" metadata entry");
    return it->second;
}

void load_model_section(const SafetensorsFile& f, const std::string& path, nn::Module& m) {
    nn::NamedTensors sd;
    for (auto& [n, t] : f.tensors)
        if (n.rfind("model.", 0) == 0) sd.emplace_back(n.substr(6), t);
    try {
        m.load_state_dict(sd);
    } catch (const Error& e) {
        throw UsageError("checkpoint " + path + ": " + e.what());
    }
}

// Runs `fn` on batches of `n` rows and concatenates: keeps peak memory at one batch.
template <class Fn>
Tensor batched(int64_t n, int64_t batch, Fn fn) {
    NoGradGuard ng;
    std::vector<Tensor> parts;
    for (int64_t i = 0; i < n; i += batch) parts.push_back(fn(i, std::min(batch, n - i)));
    return cat(parts, 0);
}

// ---- FID with our own classifier ------------------------------------------------------------

constexpr const char* kDefaultClassifier = "runs/cnn-fashion/model.safetensors";
constexpr const char* kClassifierCache = "runs/fid-classifier";

struct FidClassifier {
    std::shared_ptr<nn::Sequential> model;
    size_t layers = 0;  // children before the last Linear: penultimate-layer activations
    double mean = 0, std = 1;
    std::string path;
};

FidClassifier load_classifier(const std::string& path) {
    SafetensorsFile f = open_checkpoint(path);
    auto it = f.metadata.find("recipe_json");
    if (it == f.metadata.end())
        throw UsageError("classifier " + path +
                         ": no recipe in its metadata; pass a checkpoint written by `soma train "
                         "cnn-fashion`");
    Recipe r = recipe_from_json(nlohmann::json::parse(it->second), path);
    const auto& d = r.spec.at("data");
    if (d.value("dataset", "") != "fashion-mnist" || r.task != train::Task::classification)
        throw UsageError("classifier " + path + ": recipe " + r.name +
                         " is not a Fashion-MNIST classifier (use cnn-fashion)");
    FidClassifier c;
    c.path = path;
    c.model = build_model(r);
    bool prefixed = std::any_of(f.tensors.begin(), f.tensors.end(),
                                [](auto& p) { return p.first.rfind("model.", 0) == 0; });
    nn::NamedTensors sd;
    for (auto& [n, t] : f.tensors)
        if (!prefixed)
            sd.emplace_back(n, t);
        else if (n.rfind("model.", 0) == 0)
            sd.emplace_back(n.substr(6), t);
    try {
        c.model->load_state_dict(sd);
    } catch (const Error& e) {
        throw UsageError("classifier " + path + ": " + e.what());
    }
    c.model->eval();
    for (size_t i = c.model->size(); i-- > 1;)
        if ((*c.model)[i].type_name() == "Linear") {
            c.layers = i;
            break;
        }
    if (c.layers == 0)
        throw UsageError("classifier " + path + ": no hidden layer before its last Linear");
    if (d.contains("normalize")) {
        auto mv = d.at("normalize").get<std::vector<double>>();
        c.mean = mv.at(0);
        c.std = mv.at(1);
    }
    return c;
}

// Trains cnn-fashion for one epoch (about 89% test accuracy) into runs/fid-classifier/ (resumable)
// and returns the path of its model.safetensors.
std::string train_fid_classifier(bool quiet) {
    std::string out = kClassifierCache;
    Recipe r = load_recipe("cnn-fashion");
    r.epochs = 1;
    r.spec["epochs"] = r.epochs;
    Data d = load_data(r);
    auto model = build_model(r);
    auto loss = build_loss(r);
    auto opt = build_optimizer(r, *model);
    data::DataLoader tl(d.train, {.batch_size = r.batch_size, .shuffle = true, .seed = r.seed});
    data::DataLoader vl(d.test, {.batch_size = 1000});
    bool per_batch = false;
    auto sched = build_scheduler(r, *opt, tl.size(), per_batch);
    train::FitOptions fo;
    fo.epochs = r.epochs;
    fo.task = r.task;
    fo.out_dir = out;
    fo.resume = true;
    fo.progress = !quiet;
    fo.scheduler = sched.get();
    fo.scheduler_per_batch = per_batch;
    fo.metadata = {{"recipe", r.name}, {"recipe_json", r.spec.dump()}};
    fo.should_stop = [] { return g_stop != 0; };
    train::fit(*model, *loss, *opt, tl, &vl, fo);
    auto ev = train::evaluate(*model, *loss, vl, r.task);
    std::string path = out + "/model.safetensors";
    save_safetensors(
        path, model->state_dict(),
        {{"recipe", r.name}, {"recipe_json", r.spec.dump()}, {"format", "soma-model-1"}});
    std::fprintf(stderr, "FID classifier: test accuracy %.4f, saved %s\n", ev.accuracy,
                 path.c_str());
    return path;
}

// --set classifier=PATH, else runs/cnn-fashion/model.safetensors, else the cache under
// runs/fid-classifier/, else train one there.
FidClassifier fid_classifier(const std::string& requested, bool quiet) {
    if (!requested.empty()) {
        if (!fs::exists(requested))
            throw UsageError("--set classifier=" + requested +
                             ": no such file (write one with `soma train cnn-fashion`)");
        return load_classifier(requested);
    }
    if (fs::exists(kDefaultClassifier)) return load_classifier(kDefaultClassifier);
    std::string cached = std::string(kClassifierCache) + "/model.safetensors";
    if (fs::exists(cached)) {
        if (!quiet) std::fprintf(stderr, "FID classifier: using %s\n", cached.c_str());
        return load_classifier(cached);
    }
    std::fprintf(stderr,
                 "FID classifier: %s does not exist; training cnn-fashion for 1 epoch into "
                 "%s/ (once; --set classifier=PATH uses another)\n",
                 kDefaultClassifier, kClassifierCache);
    return load_classifier(train_fid_classifier(quiet));
}

Tensor classifier_features(FidClassifier& c, const Tensor& images01) {
    return batched(images01.size(0), 500, [&](int64_t i, int64_t n) {
        Tensor x = (images01.narrow(0, i, n) - c.mean) / c.std;
        return gen::sequential_features(*c.model, x, c.layers, n);
    });
}

struct FidReport {
    double fid = NAN, floor = NAN, ceiling = NAN;
    double blur = NAN;  // real training images blurred: shapes right, detail gone
    int64_t samples = 0;
};

// Gaussian blur (sigma 1.5, 7x7 kernel, zero padding) of images [N, 1, 28, 28].
Tensor gaussian_blur(const Tensor& x) {
    std::vector<float> k(49);
    double sum = 0;
    for (int i = 0; i < 7; ++i)
        for (int j = 0; j < 7; ++j) {
            double v = std::exp(-((i - 3) * (i - 3) + (j - 3) * (j - 3)) / 4.5);
            k[static_cast<size_t>(i * 7 + j)] = static_cast<float>(v);
            sum += v;
        }
    for (auto& v : k) v = static_cast<float>(v / sum);
    Tensor w = from_vector(k, {1, 1, 7, 7});
    return batched(x.size(0), 500, [&](int64_t i, int64_t n) {
        return nn::functional::conv2d(x.narrow(0, i, n), w, {}, {.padding = {3, 3}});
    });
}

// fake01: generated images [M, 1, 28, 28] in [0, 1]. All sets are compared with the first
// `n` test images.
FidReport fid_report(FidClassifier& c, const Tensor& fake01, int64_t n, uint64_t seed, bool quiet) {
    const Fashion& fm = fashion();
    n = std::min({n, fm.test.size(), fm.train.size()});
    double t0 = now_seconds();
    auto test = gen::feature_stats(classifier_features(c, fm.test.inputs().narrow(0, 0, n)));
    FidReport r;
    r.samples = n;
    r.fid = gen::frechet_distance(gen::feature_stats(classifier_features(c, fake01)), test);
    const Tensor train_x = fm.train.inputs().narrow(0, 0, n);
    r.floor = gen::frechet_distance(gen::feature_stats(classifier_features(c, train_x)), test);
    r.blur = gen::frechet_distance(
        gen::feature_stats(classifier_features(c, gaussian_blur(train_x))), test);
    Generator g(seed);
    std::vector<float> noise(static_cast<size_t>(n * 784));
    for (auto& v : noise) v = static_cast<float>(g.next_double());
    r.ceiling = gen::frechet_distance(
        gen::feature_stats(classifier_features(c, from_vector(noise, {n, 1, 28, 28}))), test);
    if (!quiet)
        std::fprintf(stderr,
                     "FID (features of %s, %lld images each, %.1fs): generated %.2f, real "
                     "training images %.2f, blurred training images %.2f, uniform noise %.2f\n",
                     c.path.c_str(), static_cast<long long>(n), now_seconds() - t0, r.fid, r.floor,
                     r.blur, r.ceiling);
    return r;
}

std::string fid_json(const FidReport& r) {
    return ",\"fid\":" + jnum(r.fid) + ",\"fid_real_floor\":" + jnum(r.floor) +
           ",\"fid_noise_ceiling\":" + jnum(r.ceiling) + ",\"fid_blur\":" + jnum(r.blur) +
           ",\"fid_samples\":" + std::to_string(r.samples);
}

// ---- DCGAN ------------------------------------------------------------------------------------

constexpr int64_t kFidSeed = 777;

Tensor gan_images01(gen::DcganGenerator& g, const Tensor& z) {
    g.eval();
    return batched(z.size(0), 500,
                   [&](int64_t i, int64_t n) { return (g(z.narrow(0, i, n)) + 1.0) * 0.5; });
}

int train_dcgan(const TrainArgs& a) {
    const std::string name = "dcgan-fashion";
    Sets s(name, a.sets, {"latent", "classifier", "fid_samples", "real_label"});
    Common c = common(a, name, 5, 64, 2e-4);
    int64_t latent = s.integer("latent", 64);
    int64_t fid_n = std::max<int64_t>(2, std::min(s.integer("fid_samples", 10000, 2), c.eval_cap));
    double real_label = s.real("real_label", 1.0);
    double t0 = now_seconds();
    const Fashion& fm = fashion();
    FidClassifier clf = fid_classifier(s.str("classifier", ""), a.quiet);
    data::TensorDataset train(fm.train.inputs() * 2.0 - 1.0);  // the Tanh range
    data::DataLoader loader(train, {.batch_size = c.batch_size,
                                    .shuffle = true,
                                    .drop_last = true,
                                    .seed = static_cast<uint64_t>(c.seed)});
    manual_seed(static_cast<uint64_t>(c.seed));
    gen::DcganGenerator g(latent);
    gen::DcganDiscriminator d;
    gen::dcgan_init(g);
    gen::dcgan_init(d);
    optim::Adam og(g.parameters(), {.lr = c.lr, .betas = {0.5, 0.999}});
    optim::Adam od(d.parameters(), {.lr = c.lr, .betas = {0.5, 0.999}});
    gen::GanOptions o{.epochs = c.epochs,
                      .latent_dim = latent,
                      .out_dir = c.out,
                      .resume = a.resume,
                      .progress = !a.quiet,
                      .max_batches_per_epoch = a.max_batches,
                      .real_label = real_label};
    o.metadata = {{"recipe", name}, {"seed", std::to_string(c.seed)}};
    o.should_stop = [] { return g_stop != 0; };
    if (!a.quiet)
        std::fprintf(stderr,
                     "soma train %s: %lld training images, G %lld / D %lld parameters, %d "
                     "threads, output in %s/\n",
                     name.c_str(), static_cast<long long>(train.size()),
                     static_cast<long long>(g.num_parameters()),
                     static_cast<long long>(d.num_parameters()), get_num_threads(), c.out.c_str());
    gen::GanResult r;
    {
        StopOnSigint guard;
        if (int rc = run_interruptible(c.out + "/checkpoint.safetensors",
                                       [&] { r = gen::fit_gan(g, d, og, od, loader, o); }))
            return rc;
    }
    std::vector<gen::LineSeries> ls{{"g_loss", {}}, {"d_loss", {}}, {"d(x)", {}}, {"d(g(z))", {}}};
    for (auto& e : r.history) {
        ls[0].y.push_back(e.g_loss);
        ls[1].y.push_back(e.d_loss);
        ls[2].y.push_back(e.d_real);
        ls[3].y.push_back(e.d_fake);
    }
    gen::save_line_plot_png(c.out + "/curves.png", "dcgan-fashion", ls);
    Tensor fake = gan_images01(g, gen::fixed_latents(fid_n, latent, kFidSeed));
    FidReport fr = fid_report(clf, fake, fid_n, kFidSeed, a.quiet);
    double secs = now_seconds() - t0;
    if (!a.quiet)
        std::fprintf(stderr,
                     "wrote %s/checkpoint.safetensors, %s/metrics.csv, %s/curves.png, "
                     "%s/samples.png (and samples_epoch_<e>.png)\n",
                     c.out.c_str(), c.out.c_str(), c.out.c_str(), c.out.c_str());
    std::string j = "{\"recipe\":\"" + name + "\",\"epochs\":" + std::to_string(c.epochs);
    if (!r.history.empty())
        j += ",\"g_loss\":" + jnum(r.history.back().g_loss) +
             ",\"d_loss\":" + jnum(r.history.back().d_loss);
    j += fid_json(fr) + ",\"seconds\":" + jnum(secs) + ",\"out\":\"" + c.out + "\"}";
    std::printf("%s\n", j.c_str());
    return 0;
}

// ---- VAE --------------------------------------------------------------------------------------

struct VaeLog {
    int64_t epoch = 0;
    double loss = NAN, recon = NAN, kl = NAN, test_loss = NAN, test_mse = NAN, seconds = 0;
};

void write_vae_csv(const std::string& path, const std::vector<VaeLog>& h) {
    std::string s = "epoch,loss,recon,kl,test_loss,test_mse,seconds\n";
    char buf[256];
    for (auto& e : h) {
        std::snprintf(buf, sizeof buf, "%lld,%.6g,%.6g,%.6g,%.6g,%.6g,%.3f\n",
                      static_cast<long long>(e.epoch), e.loss, e.recon, e.kl, e.test_loss,
                      e.test_mse, e.seconds);
        s += buf;
    }
    write_file_atomic(path, s);
}

nlohmann::json vae_history_json(const std::vector<VaeLog>& h) {
    auto v = [](double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(); };
    nlohmann::json a = nlohmann::json::array();
    for (auto& e : h)
        a.push_back(
            {e.epoch, v(e.loss), v(e.recon), v(e.kl), v(e.test_loss), v(e.test_mse), e.seconds});
    return a;
}

std::vector<VaeLog> vae_history_from_json(const std::string& s) {
    std::vector<VaeLog> h;
    auto v = [](const nlohmann::json& x) { return x.is_number() ? x.get<double>() : NAN; };
    for (auto& r : nlohmann::json::parse(s))
        h.push_back({r.at(0).get<int64_t>(), v(r.at(1)), v(r.at(2)), v(r.at(3)), v(r.at(4)),
                     v(r.at(5)), v(r.at(6))});
    return h;
}

// Test loss (recon + KL with z = mu) and reconstruction MSE, eval mode.
std::pair<double, double> vae_test(gen::ConvVAE& vae, const Tensor& x) {
    vae.eval();
    NoGradGuard ng;
    double loss = 0, se = 0;
    const int64_t n = x.size(0);
    for (int64_t i = 0; i < n; i += 500) {
        Tensor b = x.narrow(0, i, std::min<int64_t>(500, n - i));
        auto out = vae.run(b);
        loss += gen::vae_loss(out, b).total.item<double>() * static_cast<double>(b.size(0));
        Tensor diff = sigmoid(out.recon_logits) - b;
        se += (diff * diff).sum().item<double>();
    }
    vae.train();
    return {loss / static_cast<double>(n), se / static_cast<double>(x.numel())};
}

int train_vae(const TrainArgs& a) {
    const std::string name = "vae-fashion";
    Sets s(name, a.sets, {"code", "classifier", "fid_samples"});
    Common c = common(a, name, 10, 128, 1e-3);
    int64_t code = s.integer("code", 16);
    int64_t fid_n = std::max<int64_t>(2, std::min(s.integer("fid_samples", 10000, 2), c.eval_cap));
    const Tensor test_x = fm_test_inputs(c.eval_cap);
    double t0 = now_seconds();
    const Fashion& fm = fashion();
    FidClassifier clf = fid_classifier(s.str("classifier", ""), a.quiet);
    data::DataLoader loader(
        fm.train,
        {.batch_size = c.batch_size, .shuffle = true, .seed = static_cast<uint64_t>(c.seed)});
    manual_seed(static_cast<uint64_t>(c.seed));
    gen::ConvVAE vae({.code = code});
    optim::Adam opt(vae.parameters(), {.lr = c.lr});
    fs::create_directories(c.out);
    const std::string ckpt = c.out + "/checkpoint.safetensors", csv = c.out + "/metrics.csv";
    std::vector<VaeLog> hist;
    int64_t start = 0;
    if (a.resume && fs::exists(ckpt)) {
        std::map<std::string, std::string> m;
        try {
            m = train::load_checkpoint(ckpt, vae, &opt);
        } catch (const Error& e) {
            throw UsageError(std::string(e.what()) + " (was it written with another --set code?)");
        }
        start = std::stoll(m.at("epoch"));
        hist = vae_history_from_json(m.at("history"));
        default_generator().set_state(
            {std::stoull(m.at("rng_seed")), std::stoull(m.at("rng_offset"))});
        if (!a.quiet)
            std::fprintf(stderr, "resuming from %s after epoch %lld\n", ckpt.c_str(),
                         static_cast<long long>(start));
    }
    if (!a.quiet)
        std::fprintf(stderr,
                     "soma train %s: %lld training images, %lld parameters, code %lld, %d "
                     "threads, output in %s/\n",
                     name.c_str(), static_cast<long long>(fm.train.size()),
                     static_cast<long long>(vae.num_parameters()), static_cast<long long>(code),
                     get_num_threads(), c.out.c_str());
    const Tensor fixed_z = gen::fixed_latents(64, code, 1234);
    auto save_samples = [&](const std::string& path, const Tensor& z) {
        vae.eval();
        NoGradGuard ng;
        gen::save_image_grid(path, vae.decode(z));
        vae.train();
    };
    {
        StopOnSigint guard;
        for (int64_t e = start + 1; e <= c.epochs; ++e) {
            if (g_stop) return interrupted(ckpt);
            loader.set_epoch(e - 1);
            gen::VaeEpochStats st;
            if (int rc = run_interruptible(ckpt, [&] {
                    st = gen::train_vae_epoch(
                        vae, opt, loader, a.max_batches, !a.quiet,
                        "epoch " + std::to_string(e) + "/" + std::to_string(c.epochs),
                        [] { return g_stop != 0; });
                }))
                return rc;
            auto [tl, tm] = vae_test(vae, test_x);
            hist.push_back({e, st.loss, st.recon, st.kl, tl, tm, st.seconds});
            if (!a.quiet)
                std::fprintf(stderr, "  test loss %.2f, test reconstruction MSE %.5f\n", tl, tm);
            write_vae_csv(csv, hist);
            std::vector<gen::LineSeries> ls{{"train loss", {}}, {"test loss", {}}};
            for (auto& h : hist) ls[0].y.push_back(h.loss), ls[1].y.push_back(h.test_loss);
            gen::save_line_plot_png(c.out + "/curves.png", "vae-fashion (recon + kl)", ls);
            save_samples(c.out + "/samples_epoch_" + std::to_string(e) + ".png", fixed_z);
            auto rng = default_generator().state();
            train::save_checkpoint(ckpt, vae, &opt, nullptr,
                                   {{"recipe", name},
                                    {"code", std::to_string(code)},
                                    {"epoch", std::to_string(e)},
                                    {"history", vae_history_json(hist).dump()},
                                    {"rng_seed", std::to_string(rng[0])},
                                    {"rng_offset", std::to_string(rng[1])}});
        }
    }
    save_samples(c.out + "/samples.png", fixed_z);
    // Six rows: each decodes ten points on the line between the means of two test images.
    {
        vae.eval();
        NoGradGuard ng;
        auto [mu, logvar] = vae.encode(fm.test.inputs().narrow(0, 0, 12));
        std::vector<Tensor> rows;
        for (int64_t r = 0; r < 6; ++r)
            rows.push_back(gen::interpolate_latent(vae, mu[2 * r], mu[2 * r + 1], 10));
        gen::save_image_grid(c.out + "/interpolation.png", cat(rows, 0), {.nrow = 10});
    }
    vae.eval();
    Tensor z = gen::fixed_latents(fid_n, code, kFidSeed);
    Tensor fake =
        batched(fid_n, 500, [&](int64_t i, int64_t n) { return vae.decode(z.narrow(0, i, n)); });
    FidReport fr = fid_report(clf, fake, fid_n, kFidSeed, a.quiet);
    double secs = now_seconds() - t0;
    if (!a.quiet)
        std::fprintf(stderr,
                     "wrote %s/checkpoint.safetensors, %s/metrics.csv, %s/curves.png, "
                     "%s/samples.png, %s/interpolation.png\n",
                     c.out.c_str(), c.out.c_str(), c.out.c_str(), c.out.c_str(), c.out.c_str());
    std::string j = "{\"recipe\":\"" + name + "\",\"epochs\":" + std::to_string(c.epochs);
    if (!hist.empty())
        j += ",\"loss\":" + jnum(hist.back().loss) +
             ",\"test_loss\":" + jnum(hist.back().test_loss) +
             ",\"test_mse\":" + jnum(hist.back().test_mse);
    j += fid_json(fr) + ",\"seconds\":" + jnum(secs) + ",\"out\":\"" + c.out + "\"}";
    std::printf("%s\n", j.c_str());
    return 0;
}

// ---- autoencoder ------------------------------------------------------------------------------

struct AeResult {
    double test_mse = NAN;
    std::string checkpoint;
    int64_t epochs = 0;
};

// Trains (or resumes) the autoencoder, writes reconstructions.png; returns an exit status (130
// when interrupted) and fills `res`.
int run_autoencoder(const TrainArgs& a, const std::string& name, int64_t code, AeResult& res) {
    Common c = common(a, name, 5, 128, 1e-3);
    const Fashion& fm = fashion();
    data::TensorDataset train(fm.train.inputs(), fm.train.inputs());
    const Tensor test_x = fm_test_inputs(c.eval_cap);
    data::TensorDataset test(test_x, test_x);
    data::DataLoader tl(
        train,
        {.batch_size = c.batch_size, .shuffle = true, .seed = static_cast<uint64_t>(c.seed)});
    data::DataLoader vl(test, {.batch_size = 500});
    manual_seed(static_cast<uint64_t>(c.seed));
    gen::ConvAutoencoder ae({.code = code});
    optim::Adam opt(ae.parameters(), {.lr = c.lr});
    nn::MSELoss mse;
    if (!a.quiet)
        std::fprintf(stderr,
                     "soma train %s: %lld training images, %lld parameters, code %lld, %d "
                     "threads, output in %s/\n",
                     name.c_str(), static_cast<long long>(train.size()),
                     static_cast<long long>(ae.num_parameters()), static_cast<long long>(code),
                     get_num_threads(), c.out.c_str());
    train::FitOptions fo;
    fo.epochs = c.epochs;
    fo.task = train::Task::regression;
    fo.out_dir = c.out;
    fo.resume = a.resume;
    fo.progress = !a.quiet;
    fo.max_batches_per_epoch = a.max_batches;
    fo.metadata = {{"recipe", "autoencoder-fashion"}, {"code", std::to_string(code)}};
    fo.should_stop = [] { return g_stop != 0; };
    {
        StopOnSigint guard;
        if (int rc = run_interruptible(c.out + "/checkpoint.safetensors",
                                       [&] { train::fit(ae, mse, opt, tl, &vl, fo); }))
            return rc;
    }
    res.test_mse = gen::reconstruction_mse(ae, vl);
    res.checkpoint = c.out + "/checkpoint.safetensors";
    res.epochs = c.epochs;
    // Four pairs of rows: eight test inputs above their reconstructions.
    ae.eval();
    NoGradGuard ng;
    std::vector<Tensor> parts;
    for (int64_t r = 0; r < 4; ++r) {
        Tensor x = fm.test.inputs().narrow(0, r * 8, 8);
        parts.push_back(x);
        parts.push_back(ae(x));
    }
    gen::save_image_grid(c.out + "/reconstructions.png", cat(parts, 0), {.nrow = 8});
    if (!a.quiet)
        std::fprintf(stderr,
                     "test reconstruction MSE %.5f; wrote %s, %s/metrics.csv, %s/curves.png, "
                     "%s/reconstructions.png (inputs above reconstructions)\n",
                     res.test_mse, res.checkpoint.c_str(), c.out.c_str(), c.out.c_str(),
                     c.out.c_str());
    return 0;
}

int train_autoencoder(const TrainArgs& a) {
    const std::string name = "autoencoder-fashion";
    Sets s(name, a.sets, {"code"});
    double t0 = now_seconds();
    AeResult r;
    if (int rc = run_autoencoder(a, name, s.integer("code", 16), r)) return rc;
    std::string out = a.out.empty() ? "runs/" + name : a.out;
    std::printf(
        "{\"recipe\":\"%s\",\"epochs\":%lld,\"test_mse\":%s,\"seconds\":%s,\"out\":\"%s\"}\n",
        name.c_str(), static_cast<long long>(r.epochs), jnum(r.test_mse).c_str(),
        jnum(now_seconds() - t0).c_str(), out.c_str());
    return 0;
}

std::unique_ptr<gen::ConvAutoencoder> load_autoencoder(const std::string& path) {
    SafetensorsFile f = open_checkpoint(path);
    if (meta(f, "recipe", path) != "autoencoder-fashion")
        throw UsageError(path + " was not written by autoencoder-fashion");
    auto ae = std::make_unique<gen::ConvAutoencoder>(
        gen::AutoencoderOptions{.code = std::stoll(meta(f, "code", path))});
    load_model_section(f, path, *ae);
    ae->eval();
    return ae;
}

int eval_autoencoder(const std::string& checkpoint, int threads) {
    if (threads > 0) set_num_threads(threads);
    double t0 = now_seconds();
    auto ae = load_autoencoder(checkpoint);
    const Fashion& fm = fashion();
    data::TensorDataset test(fm.test.inputs(), fm.test.inputs());
    data::DataLoader vl(test, {.batch_size = 500});
    double m = gen::reconstruction_mse(*ae, vl);
    std::fprintf(stderr, "autoencoder-fashion: reconstruction MSE on %lld test images\n",
                 static_cast<long long>(test.size()));
    std::printf(
        "{\"recipe\":\"autoencoder-fashion\",\"checkpoint\":\"%s\",\"test_mse\":%s,"
        "\"seconds\":%s}\n",
        checkpoint.c_str(), jnum(m).c_str(), jnum(now_seconds() - t0).c_str());
    return 0;
}

// ---- clustering -------------------------------------------------------------------------------

int train_cluster(const TrainArgs& a) {
    const std::string name = "cluster-fashion";
    Sets s(name, a.sets, {"autoencoder", "code", "k", "n_init"});
    Common c = common(a, name, 5, 128, 1e-3);
    int64_t k = s.integer("k", 10), n_init = s.integer("n_init", 3);
    double t0 = now_seconds();
    std::string ae_path = s.str("autoencoder", "");
    if (!ae_path.empty() && !fs::exists(ae_path))
        throw UsageError("--set autoencoder=" + ae_path +
                         ": no such file (write one with `soma train autoencoder-fashion`)");
    if (ae_path.empty()) {
        // Train the autoencoder into <out>/autoencoder (resumable) with this run's settings.
        TrainArgs t = a;
        t.sets.clear();
        t.out = c.out + "/autoencoder";
        if (!a.quiet)
            std::fprintf(stderr,
                         "cluster-fashion: training the autoencoder into %s/ (--set "
                         "autoencoder=PATH uses a trained one)\n",
                         t.out.c_str());
        AeResult r;
        if (int rc = run_autoencoder(t, "autoencoder-fashion", s.integer("code", 16), r)) return rc;
        ae_path = r.checkpoint;
    }
    auto ae = load_autoencoder(ae_path);
    const Fashion& fm = fashion();
    const int64_t n_test = std::min(fm.test.size(), c.eval_cap);
    const Tensor x = fm.test.inputs().narrow(0, 0, n_test);
    const Tensor labels = fm.test.targets().narrow(0, 0, n_test);
    Tensor codes = batched(x.size(0), 500,
                           [&](int64_t i, int64_t n) { return ae->encode(x.narrow(0, i, n)); });
    Tensor pixels = x.reshape({x.size(0), -1});
    auto cluster = [&](const Tensor& feats, const char* what) {
        double t = now_seconds();
        auto km =
            gen::kmeans(feats, {.k = k, .seed = static_cast<uint64_t>(c.seed), .n_init = n_init});
        double acc = gen::clustering_accuracy(labels, km.labels);
        double nmi = gen::normalized_mutual_info(labels, km.labels);
        if (!a.quiet)
            std::fprintf(stderr,
                         "k-means (k = %lld) on %s [%lld x %lld]: accuracy %.4f, NMI %.4f, "
                         "%lld iterations, %.1fs\n",
                         static_cast<long long>(k), what, static_cast<long long>(feats.size(0)),
                         static_cast<long long>(feats.size(1)), acc, nmi,
                         static_cast<long long>(km.iterations), now_seconds() - t);
        return std::make_tuple(km, acc, nmi);
    };
    auto [kc, code_acc, code_nmi] = cluster(codes, "autoencoder codes");
    auto [kp, pixel_acc, pixel_nmi] = cluster(pixels, "raw pixels");
    fs::create_directories(c.out);
    auto p = gen::pca(codes, 2);
    gen::save_scatter_png(c.out + "/codes_pca.png", p.projected, labels,
                          data::FashionMNIST::classes(), "autoencoder codes of the test set, pca");
    std::string csv = "features,dim,accuracy,nmi,inertia,iterations\n";
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "codes,%lld,%.6f,%.6f,%.6g,%lld\npixels,%lld,%.6f,%.6f,%.6g,%lld\n",
                  static_cast<long long>(codes.size(1)), code_acc, code_nmi, kc.inertia,
                  static_cast<long long>(kc.iterations), static_cast<long long>(pixels.size(1)),
                  pixel_acc, pixel_nmi, kp.inertia, static_cast<long long>(kp.iterations));
    write_file_atomic(c.out + "/metrics.csv", csv + buf);
    save_safetensors(c.out + "/checkpoint.safetensors",
                     {{"code_centroids", kc.centroids},
                      {"pixel_centroids", kp.centroids},
                      {"pca_components", p.components},
                      {"pca_mean", p.mean}},
                     {{"recipe", name}, {"autoencoder", ae_path}, {"k", std::to_string(k)}});
    if (!a.quiet)
        std::fprintf(stderr, "wrote %s/codes_pca.png, %s/metrics.csv, %s/checkpoint.safetensors\n",
                     c.out.c_str(), c.out.c_str(), c.out.c_str());
    std::printf(
        "{\"recipe\":\"%s\",\"k\":%lld,\"code_accuracy\":%s,\"pixel_accuracy\":%s,\"code_nmi\":%s,"
        "\"pixel_nmi\":%s,\"autoencoder\":\"%s\",\"seconds\":%s,\"out\":\"%s\"}\n",
        name.c_str(), static_cast<long long>(k), jnum(code_acc).c_str(), jnum(pixel_acc).c_str(),
        jnum(code_nmi).c_str(), jnum(pixel_nmi).c_str(), ae_path.c_str(),
        jnum(now_seconds() - t0).c_str(), c.out.c_str());
    return 0;
}

// ---- generate and eval for the image generators ----------------------------------------------

// The generator of a dcgan-fashion or vae-fashion checkpoint as images01(z) plus its latent size.
struct ImageGenerator {
    std::shared_ptr<nn::Module> module;
    int64_t latent = 0;
    std::function<Tensor(const Tensor&)> images01;
};

ImageGenerator load_generator(const std::string& path) {
    SafetensorsFile f = open_checkpoint(path);
    std::string recipe = meta(f, "recipe", path);
    ImageGenerator ig;
    if (recipe == "dcgan-fashion") {
        ig.latent = std::stoll(meta(f, "latent_dim", path));
        auto g = std::make_shared<gen::DcganGenerator>(ig.latent);
        load_model_section(f, path, *g);
        ig.module = g;
        ig.images01 = [g](const Tensor& z) { return gan_images01(*g, z); };
    } else if (recipe == "vae-fashion") {
        ig.latent = std::stoll(meta(f, "code", path));
        auto v = std::make_shared<gen::ConvVAE>(gen::AutoencoderOptions{.code = ig.latent});
        load_model_section(f, path, *v);
        v->eval();
        ig.module = v;
        ig.images01 = [v](const Tensor& z) {
            return batched(z.size(0), 500,
                           [&](int64_t i, int64_t n) { return v->decode(z.narrow(0, i, n)); });
        };
    } else {
        throw UsageError(path + ": written by " + recipe + ", not an image generator");
    }
    return ig;
}

int generate_images(const GenerateArgs& a) {
    if (a.threads > 0) set_num_threads(a.threads);
    if (a.n < 1) throw UsageError("generate: --n must be >= 1, got " + std::to_string(a.n));
    ImageGenerator ig = load_generator(a.checkpoint);
    std::string out = a.out;
    if (out.empty()) {
        fs::path p = fs::path(a.checkpoint).parent_path() / "generated.png";
        out = p.string();
    }
    Tensor imgs = ig.images01(gen::fixed_latents(a.n, ig.latent, static_cast<uint64_t>(a.seed)));
    auto nrow = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(a.n))));
    try {
        gen::save_image_grid(out, imgs, {.nrow = nrow});
    } catch (const Error& e) {
        throw UsageError(e.what());
    }
    std::fprintf(stderr, "wrote %lld images to %s\n", static_cast<long long>(a.n), out.c_str());
    std::printf("{\"checkpoint\":\"%s\",\"n\":%lld,\"seed\":%lld,\"out\":\"%s\"}\n",
                a.checkpoint.c_str(), static_cast<long long>(a.n), static_cast<long long>(a.seed),
                out.c_str());
    return 0;
}

int eval_generator(const std::string& checkpoint, int threads) {
    if (threads > 0) set_num_threads(threads);
    double t0 = now_seconds();
    ImageGenerator ig = load_generator(checkpoint);
    const int64_t n = 10000;
    FidClassifier clf = fid_classifier("", false);
    Tensor fake = ig.images01(gen::fixed_latents(n, ig.latent, kFidSeed));
    FidReport fr = fid_report(clf, fake, n, kFidSeed, false);
    std::string j = "{\"checkpoint\":\"" + checkpoint + "\"";
    if (auto* v = dynamic_cast<gen::ConvVAE*>(ig.module.get())) {
        auto [tl, tm] = vae_test(*v, fashion().test.inputs());
        j += ",\"test_loss\":" + jnum(tl) + ",\"test_mse\":" + jnum(tm);
    }
    j += fid_json(fr) + ",\"seconds\":" + jnum(now_seconds() - t0) + "}";
    std::printf("%s\n", j.c_str());
    return 0;
}

}  // namespace

void add_gen_workflows(std::vector<Workflow>& out) {
    out.push_back({"dcgan-fashion",
                   "DCGAN on Fashion-MNIST: sample grid per epoch, G/D losses, FID at the end",
                   train_dcgan, generate_images, nullptr, eval_generator});
    out.push_back({"vae-fashion",
                   "Convolutional VAE on Fashion-MNIST: samples, latent interpolation, FID",
                   train_vae, generate_images, nullptr, eval_generator});
    out.push_back({"autoencoder-fashion",
                   "Convolutional autoencoder (16-number code): reconstructions, test MSE",
                   train_autoencoder, nullptr, nullptr, eval_autoencoder});
    out.push_back({"cluster-fashion",
                   "k-means on autoencoder codes vs raw pixels: accuracy, NMI, PCA scatter",
                   train_cluster, nullptr, nullptr, nullptr});
}

}  // namespace soma::app
