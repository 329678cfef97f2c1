// soma bench: the Soma side of the Soma-vs-PyTorch benchmark (bench/run.py drives both).
#include "bench.h"

#include <immintrin.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "recipe.h"
#include "soma/autograd.h"
#include "soma/data.h"
#include "soma/nn.h"
#include "soma/nn/rnn.h"
#include "soma/ops.h"
#include "soma/optim.h"
#include "soma/parallel.h"
#include "soma/random.h"

namespace soma::nn::detail {  // internal (src/nn/embedding_fold.h): reported in the LSTM's JSON
bool embedding_fold();
}  // namespace soma::nn::detail

namespace soma::app {

namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::ordered_json;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

double peak_rss_mb() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

double round_to(double v, int digits) {
    double s = std::pow(10.0, digits);
    return std::round(v * s) / s;
}

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// ---- data ----------------------------------------------------------------------------------

// Fashion-MNIST normalised with the usual mean/std, whole split in memory; random data of the
// same shape when the files are absent.
struct BenchData {
    Tensor x;  // [N, 1, 28, 28] float32, normalised
    Tensor y;  // [N] int64
    std::string source;
};

BenchData load_data(bool train) {
    BenchData d;
    try {
        auto ds = data::fashion_mnist("", train);
        d.x = ds.inputs();
        d.x.sub_(0.2860).div_(0.3530);  // in place: no second copy of the split
        d.y = ds.targets();
        d.source = "fashion-mnist";
    } catch (const Error&) {
        int64_t n = train ? 60000 : 10000;
        d.x = randn({n, 1, 28, 28});
        d.y = randint(0, 10, {n});
        d.source = "random";
    }
    return d;
}

// ---- models --------------------------------------------------------------------------------

std::shared_ptr<nn::Sequential> make_mlp() {
    auto m = std::make_shared<nn::Sequential>();
    m->emplace<nn::Flatten>();
    m->emplace<nn::Linear>(nn::LinearOptions{.in = 784, .out = 512});
    m->emplace<nn::ReLU>();
    m->emplace<nn::Linear>(nn::LinearOptions{.in = 512, .out = 256});
    m->emplace<nn::ReLU>();
    m->emplace<nn::Linear>(nn::LinearOptions{.in = 256, .out = 10});
    return m;
}

std::shared_ptr<nn::Sequential> make_cnn() {
    auto m = std::make_shared<nn::Sequential>();
    m->emplace<nn::Conv2d>(
        nn::Conv2dOptions{.in = 1, .out = 32, .kernel = {3, 3}, .padding = {1, 1}});
    m->emplace<nn::ReLU>();
    m->emplace<nn::MaxPool2d>(nn::functional::Pool2dArgs{.kernel = {2, 2}});
    m->emplace<nn::Conv2d>(
        nn::Conv2dOptions{.in = 32, .out = 64, .kernel = {3, 3}, .padding = {1, 1}});
    m->emplace<nn::ReLU>();
    m->emplace<nn::MaxPool2d>(nn::functional::Pool2dArgs{.kernel = {2, 2}});
    m->emplace<nn::Flatten>();
    m->emplace<nn::Linear>(nn::LinearOptions{.in = 3136, .out = 128});
    m->emplace<nn::ReLU>();
    m->emplace<nn::Linear>(nn::LinearOptions{.in = 128, .out = 10});
    return m;
}

// Forward FLOPs per sample (2*M*N*K per GEMM / convolution). Training counts 3x that (forward,
// input gradient, weight gradient) except for the first layer, whose input (the data) needs no
// gradient on either side: 2x there.
constexpr double kMlpFlops = 2.0 * (784 * 512 + 512 * 256 + 256 * 10);
constexpr double kCnnFlops = 2.0 * (32 * 28 * 28 * 9 + 64 * 14 * 14 * 288 + 3136 * 128 + 128 * 10);
constexpr double kMlpTrainFlops = 3.0 * kMlpFlops - 2.0 * 784 * 512;
constexpr double kCnnTrainFlops = 3.0 * kCnnFlops - 2.0 * 32 * 28 * 28 * 9;

// ---- timing loops --------------------------------------------------------------------------

struct Timed {
    int64_t iters = 0;
    double elapsed_s = 0;
    std::vector<double> per_iter_s;
};

// Runs `step` for a warm-up (at least `min_warm` calls and 15% of the window), then for at least
// `seconds` (and at least `min_iters` calls), timing every call.
Timed time_loop(const std::function<void()>& step, double seconds, int64_t min_warm,
                int64_t min_iters) {
    auto w0 = Clock::now();
    for (int64_t i = 0; i < min_warm || seconds_since(w0) < 0.15 * seconds; ++i) step();
    Timed t;
    auto t0 = Clock::now();
    while (t.iters < min_iters || seconds_since(t0) < seconds) {
        auto s0 = Clock::now();
        step();
        t.per_iter_s.push_back(seconds_since(s0));
        ++t.iters;
    }
    t.elapsed_s = seconds_since(t0);
    return t;
}

Json header(const std::string& workload, int threads) {
    Json j;
    j["workload"] = workload;
    j["threads"] = threads;
    return j;
}

Json bench_train(const std::string& name, bool cnn, int64_t batch, int threads, double seconds) {
    manual_seed(0);
    BenchData d = load_data(true);
    auto model = cnn ? make_cnn() : make_mlp();
    model->train();
    std::unique_ptr<optim::Optimizer> opt;
    if (cnn)
        opt = std::make_unique<optim::Adam>(model->parameters(), optim::AdamOptions{.lr = 1e-3});
    else
        opt = std::make_unique<optim::SGD>(model->parameters(),
                                           optim::SGDOptions{.lr = 0.01, .momentum = 0.9});
    const int64_t n = d.x.size(0) / batch * batch;
    int64_t pos = 0;
    double last_loss = 0;
    auto step = [&] {
        Tensor x = d.x.narrow(0, pos, batch), y = d.y.narrow(0, pos, batch);
        pos = (pos + batch) % n;
        opt->zero_grad();
        Tensor loss = nn::functional::cross_entropy((*model)(x), y);
        loss.backward();
        opt->step();
        last_loss = loss.item<double>();
    };
    Timed t = time_loop(step, seconds, 3, 5);
    double sps = static_cast<double>(t.iters * batch) / t.elapsed_s;
    double flops = cnn ? kCnnTrainFlops : kMlpTrainFlops;
    Json j = header(name, threads);
    j["samples_per_s"] = round_to(sps, 1);
    j["peak_rss_mb"] = round_to(peak_rss_mb(), 1);
    j["gflops"] = round_to(sps * flops / 1e9, 2);
    j["step_ms_median"] = round_to(median(t.per_iter_s) * 1e3, 4);
    j["steps"] = t.iters;
    j["batch"] = batch;
    j["loss"] = round_to(last_loss, 4);
    j["data"] = d.source;
    return j;
}

Json bench_infer(const std::string& name, bool cnn, int64_t batch, int threads, double seconds) {
    manual_seed(0);
    BenchData d = load_data(false);
    auto model = cnn ? make_cnn() : make_mlp();
    model->eval();
    NoGradGuard ng;
    const int64_t n = d.x.size(0) / batch * batch;
    int64_t pos = 0;
    auto step = [&] {
        Tensor out = (*model)(d.x.narrow(0, pos, batch));
        pos = (pos + batch) % n;
        (void)out;
    };
    Timed t = time_loop(step, seconds, 5, 10);
    Json j = header(name, threads);
    j["latency_us"] = round_to(median(t.per_iter_s) * 1e6, 2);
    j["peak_rss_mb"] = round_to(peak_rss_mb(), 1);
    j["samples_per_s"] = round_to(static_cast<double>(t.iters * batch) / t.elapsed_s, 1);
    j["iters"] = t.iters;
    j["batch"] = batch;
    j["data"] = d.source;
    return j;
}

// lstm-train: Embedding 96->128, LSTM 128->256, Linear 256->96 over every step; sequence 64,
// batch 32; Adam 2e-3. Random tokens (throughput does not depend on the text).
constexpr int64_t kLstmT = 64, kLstmB = 32, kLstmV = 96, kLstmE = 128, kLstmH = 256;
constexpr double kLstmFlopsPerToken =
    2.0 * (4 * kLstmH * kLstmE + 4 * kLstmH * kLstmH + kLstmH * kLstmV);

Json bench_lstm(const std::string& name, int threads, double seconds) {
    manual_seed(0);
    nn::Embedding emb({.num = kLstmV, .dim = kLstmE});
    nn::LSTM lstm({.input_size = kLstmE, .hidden_size = kLstmH});
    nn::Linear head({.in = kLstmH, .out = kLstmV});
    std::vector<Tensor> params;
    for (nn::Module* m : std::initializer_list<nn::Module*>{&emb, &lstm, &head})
        for (auto& p : m->parameters()) params.push_back(p);
    optim::Adam opt(params, optim::AdamOptions{.lr = 2e-3});
    Tensor tokens = randint(0, kLstmV, {kLstmT + 1, kLstmB});
    Tensor x = tokens.narrow(0, 0, kLstmT).contiguous(),
           y = tokens.narrow(0, 1, kLstmT).contiguous();
    double last_loss = 0;
    auto step = [&] {
        opt.zero_grad();
        Tensor h = lstm(emb(x), nn::RNNState{}).output;  // [T, B, H]
        Tensor logits = head(h.reshape({kLstmT * kLstmB, kLstmH}));
        Tensor loss = nn::functional::cross_entropy(logits, y.reshape({-1}));
        loss.backward();
        opt.step();
        last_loss = loss.item<double>();
    };
    Timed t = time_loop(step, seconds, 2, 3);
    double tps = static_cast<double>(t.iters * kLstmT * kLstmB) / t.elapsed_s;
    Json j = header(name, threads);
    j["tokens_per_s"] = round_to(tps, 1);
    j["peak_rss_mb"] = round_to(peak_rss_mb(), 1);
    j["gflops"] = round_to(tps * 3.0 * kLstmFlopsPerToken / 1e9, 2);
    j["step_ms_median"] = round_to(median(t.per_iter_s) * 1e3, 4);
    j["steps"] = t.iters;
    j["loss"] = round_to(last_loss, 4);
    j["embedding_fold"] = nn::detail::embedding_fold();  // the input projection as a table GEMM
    return j;
}

// gan-train: the DCGAN of the issue (G: Linear 64->6272, BN1d, ReLU, [128,7,7], ConvT 128->64,
// BN2d, ReLU, ConvT 64->1, Tanh; D: Conv 1->64, LeakyReLU, Conv 64->128, BN2d, LeakyReLU,
// Linear 6272->1), BCE with logits, Adam 2e-4 (0.5, 0.999), batch 64, one D and one G step.
constexpr int64_t kGanBatch = 64, kGanLatent = 64;
// Forward FLOPs per sample: G's Linear + 2 transposed convs, D's 2 convs + Linear. A transposed
// convolution does in_channels x out_channels x kh x kw multiply-adds per INPUT position (7 x 7,
// then 14 x 14), the same as the convolution it transposes per output position.
constexpr double kGanGFlops = 2.0 * (64 * 6272 + 128 * 64 * 16 * 7 * 7 + 64 * 1 * 16 * 14 * 14);
constexpr double kGanDFlops = 2.0 * (1 * 64 * 16 * 14 * 14 + 64 * 128 * 16 * 7 * 7 + 6272);

Json bench_gan(const std::string& name, int threads, double seconds) {
    manual_seed(0);
    BenchData d = load_data(true);
    nn::Sequential g1, g2, disc;
    g1.emplace<nn::Linear>(nn::LinearOptions{.in = kGanLatent, .out = 6272});
    g1.emplace<nn::BatchNorm1d>(nn::BatchNormOptions{.features = 6272});
    g1.emplace<nn::ReLU>();
    g2.emplace<nn::ConvTranspose2d>(nn::ConvTranspose2dOptions{
        .in = 128, .out = 64, .kernel = {4, 4}, .stride = {2, 2}, .padding = {1, 1}});
    g2.emplace<nn::BatchNorm2d>(nn::BatchNormOptions{.features = 64});
    g2.emplace<nn::ReLU>();
    g2.emplace<nn::ConvTranspose2d>(nn::ConvTranspose2dOptions{
        .in = 64, .out = 1, .kernel = {4, 4}, .stride = {2, 2}, .padding = {1, 1}});
    g2.emplace<nn::Tanh>();
    disc.emplace<nn::Conv2d>(nn::Conv2dOptions{
        .in = 1, .out = 64, .kernel = {4, 4}, .stride = {2, 2}, .padding = {1, 1}});
    disc.emplace<nn::LeakyReLU>(0.2);
    disc.emplace<nn::Conv2d>(nn::Conv2dOptions{
        .in = 64, .out = 128, .kernel = {4, 4}, .stride = {2, 2}, .padding = {1, 1}});
    disc.emplace<nn::BatchNorm2d>(nn::BatchNormOptions{.features = 128});
    disc.emplace<nn::LeakyReLU>(0.2);
    disc.emplace<nn::Flatten>();
    disc.emplace<nn::Linear>(nn::LinearOptions{.in = 6272, .out = 1});
    auto generator = [&](const Tensor& z) { return g2(g1(z).reshape({z.size(0), 128, 7, 7})); };
    std::vector<Tensor> gp = g1.parameters();
    for (auto& p : g2.parameters()) gp.push_back(p);
    optim::AdamOptions ao{.lr = 2e-4, .betas = {0.5, 0.999}};
    optim::Adam opt_g(gp, ao), opt_d(disc.parameters(), ao);
    Tensor real_label = ones({kGanBatch, 1}), fake_label = zeros({kGanBatch, 1});
    const int64_t n = d.x.size(0) / kGanBatch * kGanBatch;
    int64_t pos = 0;
    double d_loss = 0, g_loss = 0;
    auto step = [&] {
        Tensor real = d.x.narrow(0, pos, kGanBatch);
        pos = (pos + kGanBatch) % n;
        Tensor fake = generator(randn({kGanBatch, kGanLatent}));
        opt_d.zero_grad();
        Tensor ld =
            nn::functional::binary_cross_entropy_with_logits(disc(real), real_label) +
            nn::functional::binary_cross_entropy_with_logits(disc(fake.detach()), fake_label);
        ld.backward();
        opt_d.step();
        opt_g.zero_grad();
        Tensor lg = nn::functional::binary_cross_entropy_with_logits(disc(fake), real_label);
        lg.backward();
        opt_g.step();
        d_loss = ld.item<double>();
        g_loss = lg.item<double>();
    };
    Timed t = time_loop(step, seconds, 2, 3);
    double ips = static_cast<double>(t.iters) / t.elapsed_s;
    // Per iteration: G forward + backward (3x), D on real and fake (3x each) and on fake again
    // for the G step (3x, D's weight grads included). Direct-convolution FLOPs, as on the
    // PyTorch side: the Winograd path (src/nn/conv_winograd.cpp) does fewer, so this is an
    // effective rate.
    double flops = kGanBatch * (3.0 * kGanGFlops + 9.0 * kGanDFlops);
    Json j = header(name, threads);
    j["iters_per_s"] = round_to(ips, 2);
    j["peak_rss_mb"] = round_to(peak_rss_mb(), 1);
    j["gflops"] = round_to(ips * flops / 1e9, 2);
    j["step_ms_median"] = round_to(median(t.per_iter_s) * 1e3, 4);
    j["steps"] = t.iters;
    j["d_loss"] = round_to(d_loss, 4);
    j["g_loss"] = round_to(g_loss, 4);
    j["data"] = d.source;
    return j;
}

// A 1-element add with autograd recording (both inputs require grad), timed in blocks of 1000.
Json bench_op_overhead(const std::string& name, int threads, double seconds) {
    constexpr int kBlock = 1000;
    Tensor a = ones({1}).requires_grad_(), b = ones({1}).requires_grad_();
    auto per_op_us = [&](bool grad, double secs) {
        std::unique_ptr<NoGradGuard> ng;
        if (!grad) ng = std::make_unique<NoGradGuard>();
        Timed t = time_loop(
            [&] {
                for (int i = 0; i < kBlock; ++i) {
                    Tensor c = a + b;
                    (void)c;
                }
            },
            secs, 10, 20);
        return median(t.per_iter_s) * 1e6 / kBlock;
    };
    double us = per_op_us(true, 0.7 * seconds);
    double us_nograd = per_op_us(false, 0.3 * seconds);
    Json j = header(name, threads);
    j["us_per_op"] = round_to(us, 4);
    j["peak_rss_mb"] = round_to(peak_rss_mb(), 1);
    j["us_per_op_nograd"] = round_to(us_nograd, 4);
    return j;
}

Json bench_sgemm(const std::string& name, int threads, double seconds) {
    constexpr int64_t n = 1024;
    manual_seed(0);
    Tensor a = randn({n, n}), b = randn({n, n});
    Timed t = time_loop(
        [&] {
            Tensor c = matmul(a, b);
            (void)c;
        },
        seconds, 3, 5);
    Json j = header(name, threads);
    j["gflops"] = round_to(2.0 * n * n * n / median(t.per_iter_s) / 1e9, 2);
    j["peak_rss_mb"] = round_to(peak_rss_mb(), 1);
    j["n"] = n;
    j["iters"] = t.iters;
    return j;
}

// ---- FMA peak ------------------------------------------------------------------------------
// Independent FMA chains (enough to cover latency x throughput) in registers; the result is
// stored so the compiler keeps the work.

constexpr int64_t kFmaIters = 1 << 22;

__attribute__((target("avx2,fma"))) double fma_avx2(float* sink) {
    __m256 acc[12];
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i) * 1e-3f);
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int64_t it = 0; it < kFmaIters; ++it)
        for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], m, c);
    __m256 s = acc[0];
    for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
    _mm256_storeu_ps(sink, s);
    return 2.0 * 8 * 12 * static_cast<double>(kFmaIters);
}

__attribute__((target("avx512f"))) double fma_avx512(float* sink) {
    __m512 acc[16];
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i) * 1e-3f);
    const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (int64_t it = 0; it < kFmaIters; ++it)
        for (int i = 0; i < 16; ++i) acc[i] = _mm512_fmadd_ps(acc[i], m, c);
    __m512 s = acc[0];
    for (int i = 1; i < 16; ++i) s = _mm512_add_ps(s, acc[i]);
    _mm512_storeu_ps(sink, s);
    return 2.0 * 16 * 16 * static_cast<double>(kFmaIters);
}

Json bench_fma_peak(const std::string& name, int threads, double seconds) {
    __builtin_cpu_init();
    const bool avx512 = __builtin_cpu_supports("avx512f");
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    Json j = header(name, threads);
    if (!avx512 && !avx2) {
        j["gflops"] = nullptr;
        j["isa"] = "none";
        return j;
    }
    // One round: every thread runs one kernel call; best round over the window.
    auto round = [&] {
        std::vector<std::thread> pool;
        std::vector<double> flops(static_cast<size_t>(threads));
        std::vector<float> sink(static_cast<size_t>(threads) * 16);
        auto t0 = Clock::now();
        for (int i = 0; i < threads; ++i)
            pool.emplace_back([&, i] {
                float* s = sink.data() + static_cast<size_t>(i) * 16;
                flops[static_cast<size_t>(i)] = avx512 ? fma_avx512(s) : fma_avx2(s);
            });
        for (auto& th : pool) th.join();
        double secs = seconds_since(t0), total = 0;
        for (double f : flops) total += f;
        return total / secs / 1e9;
    };
    double best = 0;
    auto t0 = Clock::now();
    for (int i = 0; i < 3 || seconds_since(t0) < seconds; ++i) best = std::max(best, round());
    j["gflops"] = round_to(best, 2);
    j["peak_rss_mb"] = round_to(peak_rss_mb(), 1);
    j["isa"] = avx512 ? "avx512" : "avx2";
    return j;
}

}  // namespace

const std::vector<BenchWorkload>& bench_workloads() {
    static const std::vector<BenchWorkload> w = {
        {"mlp-train-b64", "MLP 784-512-256-10 training step, batch 64, SGD momentum (samples/s)"},
        {"mlp-train-b256", "MLP 784-512-256-10 training step, batch 256, SGD momentum (samples/s)"},
        {"cnn-train-b64", "2-conv CNN training step, batch 64, Adam (samples/s)"},
        {"lstm-train", "char LSTM 128->256, seq 64, batch 32, Adam (tokens/s)"},
        {"gan-train", "DCGAN on Fashion-MNIST, batch 64, one D + one G step (iterations/s)"},
        {"mlp-infer-b1", "MLP forward, eval, no grad, batch 1 (median latency, us)"},
        {"mlp-infer-b64", "MLP forward, eval, no grad, batch 64 (median latency, us)"},
        {"cnn-infer-b1", "CNN forward, eval, no grad, batch 1 (median latency, us)"},
        {"cnn-infer-b64", "CNN forward, eval, no grad, batch 64 (median latency, us)"},
        {"op-overhead", "1-element add with autograd recording (us per op)"},
        {"sgemm", "1024x1024x1024 matmul (GFLOP/s)"},
        {"fma-peak", "register-only FMA loop, widest ISA available (GFLOP/s)"},
    };
    return w;
}

std::string run_bench(const std::string& workload, int threads, double seconds) {
    if (threads < 1) throw UsageError("bench: --threads must be at least 1");
    if (!(seconds > 0)) throw UsageError("bench: --seconds must be positive");
    set_num_threads(threads);
    Json j;
    if (workload == "mlp-train-b64")
        j = bench_train(workload, false, 64, threads, seconds);
    else if (workload == "mlp-train-b256")
        j = bench_train(workload, false, 256, threads, seconds);
    else if (workload == "cnn-train-b64")
        j = bench_train(workload, true, 64, threads, seconds);
    else if (workload == "lstm-train")
        j = bench_lstm(workload, threads, seconds);
    else if (workload == "gan-train")
        j = bench_gan(workload, threads, seconds);
    else if (workload == "mlp-infer-b1")
        j = bench_infer(workload, false, 1, threads, seconds);
    else if (workload == "mlp-infer-b64")
        j = bench_infer(workload, false, 64, threads, seconds);
    else if (workload == "cnn-infer-b1")
        j = bench_infer(workload, true, 1, threads, seconds);
    else if (workload == "cnn-infer-b64")
        j = bench_infer(workload, true, 64, threads, seconds);
    else if (workload == "op-overhead")
        j = bench_op_overhead(workload, threads, seconds);
    else if (workload == "sgemm")
        j = bench_sgemm(workload, threads, seconds);
    else if (workload == "fma-peak")
        j = bench_fma_peak(workload, threads, seconds);
    else {
        std::string names;
        for (const auto& w : bench_workloads()) names += (names.empty() ? "" : ", ") + w.name;
        throw UsageError("bench: unknown workload '" + workload + "' (known: " + names + ")");
    }
    return j.dump();
}

int cmd_bench(const BenchArgs& a) {
    if (a.list) {
        for (const auto& w : bench_workloads())
            std::printf("%-16s %s\n", w.name.c_str(), w.description.c_str());
        return 0;
    }
    if (a.workload.empty()) throw UsageError("bench: name a workload (see `soma bench --list`)");
    std::printf("%s\n", run_bench(a.workload, a.threads, a.seconds).c_str());
    std::fflush(stdout);
    return 0;
}

}  // namespace soma::app
