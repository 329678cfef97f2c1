// fit() and evaluate(): the training loop every recipe and the CLI use.
#include <sys/stat.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "soma/autograd.h"
#include "soma/ops.h"
#include "soma/random.h"
#include "soma/train.h"

namespace soma::train {

namespace {

double now_seconds() {
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
}

bool file_exists(const std::string& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0;
}

void make_dirs(const std::string& dir) {
    std::string cur;
    for (size_t i = 0; i <= dir.size(); ++i) {
        if (i == dir.size() || dir[i] == '/') {
            if (!cur.empty() && !file_exists(cur) && ::mkdir(cur.c_str(), 0755) != 0 &&
                errno != EEXIST)
                throw Error("fit: cannot create output directory " + cur + ": " +
                            std::strerror(errno));
        }
        if (i < dir.size()) cur += dir[i];
    }
}

std::string num(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

nlohmann::json history_json(const std::vector<EpochLog>& h) {
    nlohmann::json a = nlohmann::json::array();
    auto val = [](double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); };
    for (auto& e : h)
        a.push_back({{"epoch", e.epoch},
                     {"train_loss", val(e.train_loss)},
                     {"train_metric", val(e.train_metric)},
                     {"val_loss", val(e.val_loss)},
                     {"val_metric", val(e.val_metric)},
                     {"lr", val(e.lr)},
                     {"seconds", e.seconds}});
    return a;
}

std::vector<EpochLog> history_from_json(const std::string& s) {
    std::vector<EpochLog> h;
    auto j = nlohmann::json::parse(s);
    auto get = [](const nlohmann::json& o, const char* k) {
        return o.contains(k) && o[k].is_number() ? o[k].get<double>() : NAN;
    };
    for (auto& o : j) {
        EpochLog e;
        e.epoch = o.at("epoch").get<int64_t>();
        e.train_loss = get(o, "train_loss");
        e.train_metric = get(o, "train_metric");
        e.val_loss = get(o, "val_loss");
        e.val_metric = get(o, "val_metric");
        e.lr = get(o, "lr");
        e.seconds = get(o, "seconds");
        h.push_back(e);
    }
    return h;
}

// Correct predictions (classification) or the sum of squared errors (regression) of a batch.
double batch_stat(const Tensor& out, const Tensor& target, Task task) {
    NoGradGuard ng;
    if (task == Task::classification) {
        if (target.dtype() != DType::int64 || out.dim() < 2) return NAN;
        return sum(eq(argmax(out, 1), target)).item<double>();
    }
    Tensor d = out.detach().reshape({-1}) - target.detach().to(out.dtype()).reshape({-1});
    return sum(d * d).item<double>();
}

}  // namespace

EvalResult evaluate(nn::Module& model, const nn::Loss& loss_fn, data::DataLoader& loader,
                    Task task) {
    bool was_training = model.is_training();
    model.eval();
    NoGradGuard ng;
    double loss_sum = 0, stat = 0;
    int64_t count = 0;
    std::vector<double> targets;
    for (const data::Example& b : loader) {
        Tensor out = model(b.input);
        int64_t n = b.input.size(0);
        loss_sum += loss_fn(out, b.target).item<double>() * static_cast<double>(n);
        stat += batch_stat(out, b.target, task);
        count += n;
        if (task == Task::regression)
            for (double v : b.target.to_vector<double>()) targets.push_back(v);
    }
    model.train(was_training);
    EvalResult r;
    r.count = count;
    if (count == 0) return r;
    r.loss = loss_sum / static_cast<double>(count);
    if (task == Task::classification) {
        r.accuracy = stat / static_cast<double>(count);
    } else {
        double n = static_cast<double>(targets.size());
        r.rmse = std::sqrt(stat / n);
        double mean = 0, ss_tot = 0;
        for (double v : targets) mean += v / n;
        for (double v : targets) ss_tot += (v - mean) * (v - mean);
        r.r2 = ss_tot > 0 ? 1.0 - stat / ss_tot : NAN;
    }
    return r;
}

FitResult fit(nn::Module& model, const nn::Loss& loss_fn, optim::Optimizer& opt,
              data::DataLoader& train, data::DataLoader* val, const FitOptions& o) {
    SOMA_CHECK_VALUE(o.epochs >= 0, "fit: epochs must be >= 0, got ", o.epochs);
    SOMA_CHECK_VALUE(!o.resume || !o.out_dir.empty(),
                     "fit: resume needs out_dir (where checkpoint.safetensors is)");
    const double t0 = now_seconds();
    FitResult result;
    Trainer tr{model, opt, o, 0, {}};
    std::string ckpt, csv, png;
    if (!o.out_dir.empty()) {
        make_dirs(o.out_dir);
        ckpt = o.out_dir + "/checkpoint.safetensors";
        csv = o.out_dir + "/metrics.csv";
        png = o.out_dir + "/curves.png";
    }
    double best = INFINITY;
    int64_t best_epoch = 0, bad_epochs = 0, start = 0;
    if (o.resume && file_exists(ckpt)) {
        auto meta = load_checkpoint(ckpt, model, &opt, o.scheduler, o.plateau);
        start = std::stoll(meta.at("epoch"));
        tr.history = history_from_json(meta.at("history"));
        default_generator().set_state(
            {std::stoull(meta.at("rng_seed")), std::stoull(meta.at("rng_offset"))});
        best = meta.count("best") ? std::stod(meta.at("best")) : INFINITY;
        best_epoch = meta.count("best_epoch") ? std::stoll(meta.at("best_epoch")) : 0;
        bad_epochs = meta.count("bad_epochs") ? std::stoll(meta.at("bad_epochs")) : 0;
        write_metrics_csv(csv, tr.history, o.task);
        result.resumed_from = start;
        if (o.progress)
            std::fprintf(stderr, "resuming from %s after epoch %lld\n", ckpt.c_str(),
                         static_cast<long long>(start));
    } else if (!csv.empty()) {
        write_metrics_csv(csv, {}, o.task);  // start a fresh log
    }
    for (auto& cb : o.callbacks) cb->on_train_begin(tr);

    for (int64_t epoch = start + 1; epoch <= o.epochs; ++epoch) {
        tr.epoch = epoch;
        const double te = now_seconds();
        model.train();
        train.set_epoch(epoch - 1);
        int64_t nb = train.size();
        if (o.max_batches_per_epoch > 0) nb = std::min(nb, o.max_batches_per_epoch);
        ProgressBar bar("epoch " + std::to_string(epoch) + "/" + std::to_string(o.epochs), nb);
        double loss_sum = 0, stat = 0, stat_count = 0;  // stat_count: examples or target elements
        int64_t seen = 0, b = 0;
        for (const data::Example& batch : train) {
            if (b >= nb) break;
            if (o.should_stop && o.should_stop()) throw Error("fit: stopped by request");
            Tensor out = model(batch.input);
            Tensor loss = loss_fn(out, batch.target);
            double lv = loss.item<double>();
            if (!std::isfinite(lv))
                throw Error("fit: the loss became " + num(lv) + " at epoch " +
                            std::to_string(epoch) + ", batch " + std::to_string(b + 1) +
                            ". Lower the learning rate or check the data.");
            opt.zero_grad();
            loss.backward();
            if (o.clip_grad_norm > 0) optim::clip_grad_norm_(model.parameters(), o.clip_grad_norm);
            opt.step();
            if (o.scheduler && o.scheduler_per_batch) o.scheduler->step();
            int64_t n = batch.input.size(0);
            loss_sum += lv * static_cast<double>(n);
            stat += batch_stat(out, batch.target, o.task);
            stat_count += o.task == Task::classification
                              ? static_cast<double>(n)
                              : static_cast<double>(batch.target.numel());
            seen += n;
            ++b;
            for (auto& cb : o.callbacks) cb->on_batch_end(tr, b, lv);
            if (o.progress) bar.update(b, seen, loss_sum / static_cast<double>(seen));
        }
        EpochLog log;
        log.epoch = epoch;
        log.lr = opt.lr();
        log.train_loss = seen ? loss_sum / static_cast<double>(seen) : NAN;
        log.train_metric = stat_count > 0
                               ? (o.task == Task::classification ? stat / stat_count
                                                                 : std::sqrt(stat / stat_count))
                               : NAN;
        if (val) {
            EvalResult ev = evaluate(model, loss_fn, *val, o.task);
            log.val_loss = ev.loss;
            log.val_metric = o.task == Task::classification ? ev.accuracy : ev.rmse;
        }
        if (o.scheduler && !o.scheduler_per_batch) o.scheduler->step();
        if (o.plateau) o.plateau->step(val ? log.val_loss : log.train_loss);
        log.seconds = now_seconds() - te;
        tr.history.push_back(log);

        double monitored = val ? log.val_loss : log.train_loss;
        if (monitored < best) {
            best = monitored;
            best_epoch = epoch;
            bad_epochs = 0;
        } else {
            ++bad_epochs;
        }
        if (o.progress) {
            char buf[256];
            if (val)
                std::snprintf(buf, sizeof buf,
                              "loss %.4f %s %.4f  val_loss %.4f val_%s %.4f  %.1fs", log.train_loss,
                              o.task == Task::classification ? "acc" : "rmse", log.train_metric,
                              log.val_loss, o.task == Task::classification ? "acc" : "rmse",
                              log.val_metric, log.seconds);
            else
                std::snprintf(buf, sizeof buf, "loss %.4f %s %.4f  %.1fs", log.train_loss,
                              o.task == Task::classification ? "acc" : "rmse", log.train_metric,
                              log.seconds);
            bar.finish(buf);
        }
        if (!csv.empty()) {
            append_metrics_csv(csv, log, o.task);
            if (o.plot)
                plot_curves_png(png, tr.history, o.task,
                                o.metadata.count("recipe") ? o.metadata.at("recipe") : "");
            auto meta = o.metadata;
            auto st = default_generator().state();
            meta["epoch"] = std::to_string(epoch);
            meta["rng_seed"] = std::to_string(st[0]);
            meta["rng_offset"] = std::to_string(st[1]);
            meta["history"] = history_json(tr.history).dump();
            meta["best"] = num(best);
            meta["best_epoch"] = std::to_string(best_epoch);
            meta["bad_epochs"] = std::to_string(bad_epochs);
            save_checkpoint(ckpt, model, &opt, o.scheduler, meta, o.plateau);
        }
        bool stop = false;
        for (auto& cb : o.callbacks) stop = cb->on_epoch_end(tr, log) || stop;
        if (o.early_stopping_patience > 0 && bad_epochs >= o.early_stopping_patience) {
            if (o.progress)
                std::fprintf(
                    stderr, "early stopping: no improvement for %lld epochs (best epoch %lld)\n",
                    static_cast<long long>(bad_epochs), static_cast<long long>(best_epoch));
            result.stopped_early = true;
            stop = true;
        }
        if (stop) break;
    }
    result.history = tr.history;
    result.best_epoch = best_epoch;
    result.seconds = now_seconds() - t0;
    return result;
}

}  // namespace soma::train
