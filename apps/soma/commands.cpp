// soma train / eval / predict / recipes / summary / info.
#include "commands.h"

#include <oneapi/dnnl/dnnl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>

#include "recipe.h"
#include "soma/autograd.h"
#include "soma/image.h"
#include "soma/io.h"
#include "soma/ops.h"
#include "soma/parallel.h"
#include "soma/random.h"
#include "workflows.h"

namespace soma::app {

namespace {

struct Loaded {
    Recipe recipe;
    std::shared_ptr<nn::Sequential> model;
};

Loaded load_model_from_checkpoint(const std::string& path) {
    SafetensorsFile f;
    try {
        f = load_safetensors(path);
    } catch (const Error& e) {
        throw UsageError(e.what());
    }
    auto it = f.metadata.find("recipe_json");
    if (it == f.metadata.end())
        throw UsageError("checkpoint " + path +
                         ": no recipe in its metadata (was it written by `soma train`?)");
    Loaded l{recipe_from_json(nlohmann::json::parse(it->second), path), nullptr};
    l.model = build_model(l.recipe);
    train::load_checkpoint(path, *l.model);
    l.model->eval();
    return l;
}

// A grid of test images with predicted and true labels (green right, red wrong).
void save_prediction_grid(const std::string& path, nn::Module& model, const Data& d, int n) {
    NoGradGuard ng;
    n = static_cast<int>(std::min<int64_t>(n, d.test->size()));
    std::vector<int64_t> idx(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) idx[i] = i * (d.test->size() / n);
    auto batch = d.test->get_batch(idx);
    Tensor pred = argmax(model(batch.input), 1);
    const int cols = 8, scale = 3, cell_w = 28 * scale + 16, cell_h = 28 * scale + 30;
    int rows = (n + cols - 1) / cols;
    Canvas c(cols * cell_w, rows * cell_h + 20);
    c.text(6, 4, "sample test predictions (predicted / true)", 0x000000);
    Tensor x = batch.input.reshape({n, -1});
    auto v = x.to_vector<float>();
    float lo = *std::min_element(v.begin(), v.end()), hi = *std::max_element(v.begin(), v.end());
    for (int i = 0; i < n; ++i) {
        int ox = (i % cols) * cell_w + 8, oy = (i / cols) * cell_h + 20;
        for (int y = 0; y < 28 * scale; ++y)
            for (int xx = 0; xx < 28 * scale; ++xx) {
                float p = (v[static_cast<size_t>(i) * 784 + (y / scale) * 28 + xx / scale] - lo) /
                          (hi - lo);
                auto g = static_cast<uint32_t>(std::clamp(255.0f - p * 255.0f, 0.0f, 255.0f));
                c.pixel(ox + xx, oy + y, (g << 16) | (g << 8) | g);
            }
        int64_t pr = pred.at<int64_t>({i}), tr = batch.target.at<int64_t>({i});
        auto name = [&](int64_t k) {
            std::string s = k < static_cast<int64_t>(d.class_names.size()) ? d.class_names[k]
                                                                           : std::to_string(k);
            return s.substr(0, 7);
        };
        c.text(ox, oy + 28 * scale + 3, name(pr), pr == tr ? 0x008000 : 0xcc0000);
        c.text(ox, oy + 28 * scale + 13, name(tr), 0x606060);
    }
    c.save_png(path);
}

}  // namespace

int cmd_train(const TrainArgs& a) {
    if (const Workflow* w = find_workflow(a.recipe)) return w->train(a);
    if (!a.sets.empty() || a.seconds > 0 || a.steps > 0)
        throw UsageError("train " + a.recipe +
                         ": --set, --seconds and --steps apply to workflow recipes only; use "
                         "--epochs, --batch-size, --lr and --seed");
    Recipe r = load_recipe(a.recipe);
    if (a.epochs >= 0) r.epochs = a.epochs;
    if (a.batch_size > 0) r.batch_size = a.batch_size;
    if (a.lr > 0) {
        r.lr = a.lr;
        r.spec["optimizer"]["lr"] = a.lr;
    }
    if (a.seed >= 0) r.seed = static_cast<uint64_t>(a.seed);
    r.spec["epochs"] = r.epochs;
    r.spec["batch_size"] = r.batch_size;
    r.spec["seed"] = r.seed;
    if (a.threads > 0) set_num_threads(a.threads);
    std::string out = a.out.empty() ? "runs/" + r.name : a.out;
    StopOnSigint sig;

    auto t0 = std::chrono::steady_clock::now();
    Data d = load_data(r);
    auto model = build_model(r);
    auto loss = build_loss(r);
    auto opt = build_optimizer(r, *model);
    data::DataLoader train_loader(d.train,
                                  {.batch_size = r.batch_size, .shuffle = true, .seed = r.seed});
    data::DataLoader test_loader(d.test, {.batch_size = 1000});
    int64_t steps = train_loader.size();
    if (a.max_batches > 0) steps = std::min(steps, a.max_batches);
    bool per_batch = false;
    auto sched = build_scheduler(r, *opt, steps, per_batch);
    if (!a.quiet)
        std::fprintf(stderr,
                     "soma train %s: %lld training / %lld test examples, %lld parameters, "
                     "%d threads, output in %s/\n",
                     r.name.c_str(), static_cast<long long>(d.train->size()),
                     static_cast<long long>(d.test->size()),
                     static_cast<long long>(model->num_parameters()), get_num_threads(),
                     out.c_str());
    train::FitOptions fo;
    fo.epochs = r.epochs;
    fo.task = r.task;
    fo.out_dir = out;
    fo.resume = a.resume;
    fo.progress = !a.quiet;
    fo.scheduler = sched.get();
    fo.scheduler_per_batch = per_batch;
    fo.max_batches_per_epoch = a.max_batches;
    fo.metadata = {{"recipe", r.name}, {"recipe_json", r.spec.dump()}};
    fo.should_stop = [] { return g_stop != 0; };
    train::FitResult res;
    if (int rc = run_interruptible(out + "/checkpoint.safetensors", [&] {
            res = train::fit(*model, *loss, *opt, train_loader, &test_loader, fo);
        }))
        return rc;
    auto ev = train::evaluate(*model, *loss, test_loader, r.task);
    save_safetensors(
        out + "/model.safetensors", model->state_dict(),
        {{"recipe", r.name}, {"recipe_json", r.spec.dump()}, {"format", "soma-model-1"}});
    bool images = !d.class_names.empty();
    if (images) save_prediction_grid(out + "/predictions.png", *model, d, 32);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!a.quiet) {
        if (r.task == train::Task::classification)
            std::fprintf(stderr, "test accuracy %.4f, test loss %.4f\n", ev.accuracy, ev.loss);
        else
            std::fprintf(stderr, "test RMSE %.4f, R^2 %.4f, test loss %.4f\n", ev.rmse, ev.r2,
                         ev.loss);
        std::fprintf(stderr,
                     "wrote %s/checkpoint.safetensors, %s/model.safetensors, %s/metrics.csv, "
                     "%s/curves.png%s\n",
                     out.c_str(), out.c_str(), out.c_str(), out.c_str(),
                     images ? (", " + out + "/predictions.png").c_str() : "");
    }
    std::string j = "{\"recipe\":\"" + r.name + "\",\"epochs\":" + std::to_string(r.epochs);
    if (r.task == train::Task::classification)
        j += ",\"test_accuracy\":" + jnum(ev.accuracy);
    else
        j += ",\"test_rmse\":" + jnum(ev.rmse) + ",\"test_r2\":" + jnum(ev.r2);
    j += ",\"test_loss\":" + jnum(ev.loss) + ",\"seconds\":" + jnum(secs) + ",\"out\":\"" + out +
         "\"}";
    std::printf("%s\n", j.c_str());
    return 0;
}

int cmd_eval(const std::string& checkpoint, int threads) {
    if (threads > 0) set_num_threads(threads);
    if (const Workflow* w = workflow_of_checkpoint(checkpoint)) {
        if (!w->eval)
            throw UsageError("eval: " + checkpoint + " was written by " + w->name +
                             ", which has no evaluation; try `soma generate` or `soma play`");
        return w->eval(checkpoint, threads);
    }
    auto t0 = std::chrono::steady_clock::now();
    Loaded l = load_model_from_checkpoint(checkpoint);
    Data d = load_data(l.recipe);
    auto loss = build_loss(l.recipe);
    data::DataLoader loader(d.test, {.batch_size = 1000});
    auto ev = train::evaluate(*l.model, *loss, loader, l.recipe.task);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "%s on %lld test examples\n", l.recipe.name.c_str(),
                 static_cast<long long>(ev.count));
    std::string j = "{\"recipe\":\"" + l.recipe.name + "\",\"checkpoint\":\"" + checkpoint + "\"";
    if (l.recipe.task == train::Task::classification)
        j += ",\"test_accuracy\":" + jnum(ev.accuracy);
    else
        j += ",\"test_rmse\":" + jnum(ev.rmse) + ",\"test_r2\":" + jnum(ev.r2);
    j += ",\"test_loss\":" + jnum(ev.loss) + ",\"seconds\":" + jnum(secs) + "}";
    std::printf("%s\n", j.c_str());
    return 0;
}

int cmd_predict(const std::string& checkpoint, const std::string& input, int top, int threads) {
    if (threads > 0) set_num_threads(threads);
    Loaded l = load_model_from_checkpoint(checkpoint);
    const auto& dspec = l.recipe.spec.at("data");
    std::string ds = dspec.value("dataset", "");
    Tensor x;
    std::string what;
    int64_t truth = -1;
    Data d;
    bool is_index = !input.empty() && input.find_first_not_of("0123456789") == std::string::npos;
    if (is_index) {
        d = load_data(l.recipe);
        int64_t i = std::stoll(input);
        if (i >= d.test->size())
            throw UsageError("predict: index " + input + " is out of range: the test set has " +
                             std::to_string(d.test->size()) + " examples");
        auto ex = d.test->get(i);
        x = ex.input.unsqueeze(0);
        if (ex.target.dtype() == DType::int64) truth = ex.target.item<int64_t>();
        what = "test example " + input;
    } else {
        if (ds != "fashion-mnist")
            throw UsageError("predict: image input needs an image recipe; for " + ds +
                             " pass an index into the test set");
        Tensor img;
        try {
            img = read_image(input);
        } catch (const Error& e) {
            throw UsageError(e.what());
        }
        if (img.size(0) == 3) img = img.mean({0}, true);  // to gray
        int64_t H = img.size(1), W = img.size(2);
        if (H != 28 || W != 28) {  // nearest-neighbour resize to 28x28
            std::vector<float> src = img.to_vector<float>(), dst(784);
            for (int y = 0; y < 28; ++y)
                for (int xx = 0; xx < 28; ++xx)
                    dst[y * 28 + xx] = src[(y * H / 28) * W + xx * W / 28];
            img = from_vector(dst, {1, 28, 28});
        }
        // Fashion-MNIST is light-on-dark: invert photos of dark objects on light backgrounds.
        if (img.mean().item<double>() > 0.5) img = 1.0 - img;
        if (dspec.contains("normalize")) {
            auto mv = dspec.at("normalize").get<std::vector<double>>();
            img = (img - mv.at(0)) / mv.at(1);
        }
        x = img.unsqueeze(0);
        d.class_names = data::FashionMNIST::classes();
        what = input;
    }
    NoGradGuard ng;
    Tensor out = (*l.model)(x);
    if (l.recipe.task == train::Task::regression) {
        double v = out.reshape({-1}).item<double>();
        std::fprintf(stderr, "%s: predicted %.4f\n", what.c_str(), v);
        std::printf("{\"input\":\"%s\",\"prediction\":%s}\n", what.c_str(), jnum(v).c_str());
        return 0;
    }
    Tensor p = softmax(out, 1).reshape({-1});
    auto probs = p.to_vector<double>();
    std::vector<int64_t> order(probs.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
    std::sort(order.begin(), order.end(),
              [&](int64_t a, int64_t b) { return probs[a] > probs[b]; });
    auto name = [&](int64_t k) {
        return k < static_cast<int64_t>(d.class_names.size()) ? d.class_names[k]
                                                              : std::to_string(k);
    };
    std::fprintf(stderr, "%s:%s\n", what.c_str(),
                 truth >= 0 ? (" (true class: " + name(truth) + ")").c_str() : "");
    std::string j = "{\"input\":\"" + what + "\",\"prediction\":\"" + name(order[0]) +
                    "\",\"class\":" + std::to_string(order[0]) + ",\"top\":[";
    for (int k = 0; k < std::min<int>(top, static_cast<int>(order.size())); ++k) {
        std::fprintf(stderr, "  %d. %-12s %6.2f%%\n", k + 1, name(order[k]).c_str(),
                     100 * probs[order[k]]);
        j += std::string(k ? "," : "") + "{\"class\":\"" + name(order[k]) +
             "\",\"p\":" + jnum(probs[order[k]]) + "}";
    }
    j += "]";
    if (truth >= 0) j += ",\"true_class\":\"" + name(truth) + "\"";
    std::printf("%s}\n", j.c_str());
    return 0;
}

int cmd_recipes() {
    for (auto& [n, desc] : builtin_recipes()) std::printf("%-20s %s\n", n.c_str(), desc.c_str());
    for (const auto& w : workflows())
        std::printf("%-20s %s\n", w.name.c_str(), w.description.c_str());
    return 0;
}

int cmd_summary(const std::string& what) {
    std::shared_ptr<nn::Sequential> model;
    Recipe r;
    std::ifstream probe(what, std::ios::binary);
    char c = 0;
    bool is_checkpoint = probe && probe.get(c) && c != '{' &&
                         what.find(".json") == std::string::npos &&
                         what.find(".safetensors") != std::string::npos;
    if (is_checkpoint) {
        Loaded l = load_model_from_checkpoint(what);
        r = l.recipe;
        model = l.model;
    } else {
        r = load_recipe(what);
        model = build_model(r);
    }
    Shape in;
    std::string ds = r.spec.at("data").value("dataset", "");
    if (ds == "fashion-mnist")
        in = {1, 1, 28, 28};
    else
        in = {1, r.spec.at("model").at(0).value("in", int64_t{1})};
    std::printf("%s\n%s", model->to_string().c_str(), model->summary(in).c_str());
    return 0;
}

int cmd_info() {
    std::printf("soma 0.1.0\n");
#ifdef NDEBUG
    std::printf("build: release\n");
#else
    std::printf("build: debug\n");
#endif
    std::printf("threads: %d (hardware: %u)\n", get_num_threads(),
                std::thread::hardware_concurrency());
    std::string feats;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) feats += " avx2";
    if (__builtin_cpu_supports("fma")) feats += " fma";
    if (__builtin_cpu_supports("avx512f")) feats += " avx512f";
    if (__builtin_cpu_supports("avx512bw")) feats += " avx512bw";
    if (__builtin_cpu_supports("avx512vl")) feats += " avx512vl";
    std::printf("cpu features:%s\n", feats.empty() ? " (none of avx2/fma/avx512)" : feats.c_str());
    const dnnl_version_t* v = dnnl_version();
    std::printf(
        "backends: cpu (oneDNN %d.%d.%d: convolution and GEMM; OpenBLAS: GEMM; one OpenMP thread "
        "team); cuda: not built\n",
        v->major, v->minor, v->patch);
    std::printf("data: fashion-mnist at %s\n", data::fashion_mnist_dir().c_str());
    return 0;
}

}  // namespace soma::app
