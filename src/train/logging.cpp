// Progress display, metrics.csv and the curves plot.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>

#include "io/chart.h"
#include "soma/train.h"

namespace soma::train {

namespace {
double now_s() {
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
}
std::string hms(double s) {
    if (!std::isfinite(s) || s < 0) s = 0;
    auto t = static_cast<long long>(s + 0.5);
    char buf[32];
    if (t >= 3600)
        std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", t / 3600, t / 60 % 60, t % 60);
    else
        std::snprintf(buf, sizeof buf, "%lld:%02lld", t / 60, t % 60);
    return buf;
}
std::string fmt(double v) {
    if (std::isnan(v)) return "";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
}
}  // namespace

ProgressBar::ProgressBar(std::string label, int64_t total, std::FILE* out)
    : label_(std::move(label)), total_(total), out_(out), start_(now_s()) {
    interactive_ = ::isatty(::fileno(out_)) != 0;
}

void ProgressBar::update(int64_t done, int64_t samples, double loss) {
    double t = now_s();
    double el = t - start_;
    double rate = el > 0 ? static_cast<double>(samples) / el : 0;
    double eta = done > 0 ? el * static_cast<double>(total_ - done) / static_cast<double>(done) : 0;
    if (interactive_) {
        if (done < total_ && t - last_draw_ < 0.1) return;  // at most 10 redraws a second
        last_draw_ = t;
        const int width = 30;
        int filled = total_ > 0 ? static_cast<int>(width * done / total_) : width;
        std::string bar(static_cast<size_t>(filled), '=');
        if (filled < width) bar += '>';
        bar.resize(width, '.');
        std::fprintf(out_, "\r%s [%s] %lld/%lld %.0f samples/s ETA %s loss %.4f\033[K",
                     label_.c_str(), bar.c_str(), static_cast<long long>(done),
                     static_cast<long long>(total_), rate, hms(eta).c_str(), loss);
        std::fflush(out_);
    } else {
        int64_t decile = total_ > 0 ? done * 10 / total_ : 10;
        // Plain mode: a line at each new tenth, at most one every 2 s (short epochs stay quiet).
        if (decile == last_decile_ || decile == 0 || done == total_ || t - last_draw_ < 2.0) return;
        if (last_draw_ < 0 && el < 2.0) return;
        last_decile_ = decile;
        last_draw_ = t;
        std::fprintf(out_, "%s %lld/%lld (%lld%%) %.0f samples/s ETA %s loss %.4f\n",
                     label_.c_str(), static_cast<long long>(done), static_cast<long long>(total_),
                     static_cast<long long>(decile * 10), rate, hms(eta).c_str(), loss);
        std::fflush(out_);
    }
}

void ProgressBar::finish(const std::string& summary) {
    if (interactive_)
        std::fprintf(out_, "\r%s %s\033[K\n", label_.c_str(), summary.c_str());
    else
        std::fprintf(out_, "%s done: %s\n", label_.c_str(), summary.c_str());
    std::fflush(out_);
}

static std::string csv_header(Task task) {
    return task == Task::classification
               ? "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds\n"
               : "epoch,train_loss,train_rmse,val_loss,val_rmse,lr,seconds\n";
}
static std::string csv_row(const EpochLog& e) {
    return std::to_string(e.epoch) + "," + fmt(e.train_loss) + "," + fmt(e.train_metric) + "," +
           fmt(e.val_loss) + "," + fmt(e.val_metric) + "," + fmt(e.lr) + "," + fmt(e.seconds) +
           "\n";
}

void append_metrics_csv(const std::string& path, const EpochLog& log, Task task) {
    bool fresh = !std::ifstream(path).good();
    std::ofstream out(path, std::ios::app);
    if (!out) throw Error("metrics: cannot write " + path);
    if (fresh) out << csv_header(task);
    out << csv_row(log);
}

void write_metrics_csv(const std::string& path, const std::vector<EpochLog>& history, Task task) {
    std::string s = csv_header(task);
    for (auto& e : history) s += csv_row(e);
    write_file_atomic(path, s);
}

namespace {
struct Series {
    std::string name;
    std::vector<double> x, y;
    uint32_t color;
};

void panel(Canvas& c, int x0, int y0, int w, int h, const std::string& title,
           const std::vector<Series>& series, bool legend_bottom) {
    const int left = 60, bottom = 30, top = 24, right = 10;
    int px0 = x0 + left, px1 = x0 + w - right, py0 = y0 + top, py1 = y0 + h - bottom;
    chart::Bounds b;
    for (auto& s : series)
        for (size_t i = 0; i < s.x.size(); ++i) b.add(s.x[i], s.y[i]);
    c.text(x0 + left, y0 + 6, title, 0x202020, 2);
    if (b.empty()) {  // nothing to draw: an empty box
        c.rect(px0, py0, px1, py1, 0x404040);
        return;
    }
    chart::Frame f = chart::axes(c, px0, py0, px1, py1, b, true, "epoch");
    int ly = legend_bottom ? py1 - 6 - 12 * static_cast<int>(series.size()) : py0 + 6;
    for (auto& s : series) {
        if (!chart::draw_series(c, f, s.x, s.y, s.color)) continue;
        chart::legend_entry(c, px1 - 90, ly, 14, 6, s.name, s.color);
        ly += 12;
    }
}
}  // namespace

void plot_curves_png(const std::string& path, const std::vector<EpochLog>& h, Task task,
                     const std::string& title) {
    const int W = 900, H = 380;
    Canvas c(W, H + (title.empty() ? 0 : 24));
    int y0 = 0;
    if (!title.empty()) {
        c.text(10, 6, title, 0x000000, 2);
        y0 = 24;
    }
    const uint32_t blue = chart::kColors[0], orange = chart::kColors[1];
    Series tl{"train", {}, {}, blue}, vl{"val", {}, {}, orange};
    Series tm{"train", {}, {}, blue}, vm{"val", {}, {}, orange};
    for (auto& e : h) {
        double x = static_cast<double>(e.epoch);
        tl.x.push_back(x), tl.y.push_back(e.train_loss);
        vl.x.push_back(x), vl.y.push_back(e.val_loss);
        tm.x.push_back(x), tm.y.push_back(e.train_metric);
        vm.x.push_back(x), vm.y.push_back(e.val_metric);
    }
    panel(c, 0, y0, W / 2, H, "loss", {tl, vl}, false);
    panel(c, W / 2, y0, W / 2, H, task == Task::classification ? "accuracy" : "rmse", {tm, vm},
          task == Task::classification);
    c.save_png(path);
}

}  // namespace soma::train
