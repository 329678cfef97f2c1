// Renderers for the classic-control tasks (geometry as Gymnasium's render_mode="rgb_array"),
// episode GIFs and the learning-curve plot.
#include "soma/rl/render.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numbers>

#include "io/chart.h"
#include "soma/autograd.h"
#include "soma/gif.h"

namespace soma::rl {

namespace {

void disk(Canvas& c, double cx, double cy, double r, uint32_t rgb) {
    for (int y = static_cast<int>(std::floor(cy - r)); y <= static_cast<int>(std::ceil(cy + r));
         ++y)
        for (int x = static_cast<int>(std::floor(cx - r)); x <= static_cast<int>(std::ceil(cx + r));
             ++x)
            if ((x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r) c.pixel(x, y, rgb);
}

// A filled quadrilateral (convex), by scanning its bounding box.
void quad(Canvas& c, const double (&p)[4][2], uint32_t rgb) {
    double x0 = p[0][0], x1 = p[0][0], y0 = p[0][1], y1 = p[0][1];
    for (const auto& q : p) {
        x0 = std::min(x0, q[0]), x1 = std::max(x1, q[0]);
        y0 = std::min(y0, q[1]), y1 = std::max(y1, q[1]);
    }
    for (int y = static_cast<int>(std::floor(y0)); y <= static_cast<int>(std::ceil(y1)); ++y)
        for (int x = static_cast<int>(std::floor(x0)); x <= static_cast<int>(std::ceil(x1)); ++x) {
            bool pos = false, neg = false;
            for (int i = 0; i < 4; ++i) {
                const double* a = p[i];
                const double* b = p[(i + 1) % 4];
                double cross = (b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0]);
                pos |= cross > 0;
                neg |= cross < 0;
            }
            if (!(pos && neg)) c.pixel(x, y, rgb);
        }
}

// A thick segment from (x0, y0) to (x1, y1) with half-width w, as a quad.
void bar(Canvas& c, double x0, double y0, double x1, double y1, double w, uint32_t rgb) {
    double dx = x1 - x0, dy = y1 - y0, len = std::max(std::hypot(dx, dy), 1e-9);
    double nx = -dy / len * w, ny = dx / len * w;
    double p[4][2] = {
        {x0 + nx, y0 + ny}, {x1 + nx, y1 + ny}, {x1 - nx, y1 - ny}, {x0 - nx, y0 - ny}};
    quad(c, p, rgb);
}

void draw_cartpole(Canvas& c, const std::vector<double>& s) {
    // world 4.8 m wide (x threshold 2.4 each side); pole 1 m (2 * half length 0.5)
    const double W = c.width(), H = c.height(), scale = W / 4.8;
    const double track = H * 0.7, cart_w = 50 * W / 600, cart_h = 30 * W / 600;
    const double cx = W / 2 + s[0] * scale, theta = s[2];
    c.line(0, track, W - 1, track, 0x000000);
    c.rect(static_cast<int>(cx - cart_w / 2), static_cast<int>(track - cart_h / 2),
           static_cast<int>(cx + cart_w / 2), static_cast<int>(track + cart_h / 2), 0x000000, true);
    double axle_y = track - cart_h / 4, pole = scale * 1.0;
    bar(c, cx, axle_y, cx + std::sin(theta) * pole, axle_y - std::cos(theta) * pole, 5 * W / 600,
        0xca9865);
    disk(c, cx, axle_y, 5 * W / 600, 0x8184cb);
}

void draw_acrobot(Canvas& c, const std::vector<double>& s) {
    // two 1 m links hanging from the centre; the goal line is 1 m above the pivot
    const double W = c.width(), H = c.height(), scale = std::min(W, H) / (2 * 2.2);
    const double cx = W / 2, cy = H / 2;
    double x1 = cx + std::sin(s[0]) * scale, y1 = cy + std::cos(s[0]) * scale;
    double x2 = x1 + std::sin(s[0] + s[1]) * scale, y2 = y1 + std::cos(s[0] + s[1]) * scale;
    c.line(0, cy - scale, W - 1, cy - scale, 0x000000);
    bar(c, cx, cy, x1, y1, 0.1 * scale, 0x00cccc);
    bar(c, x1, y1, x2, y2, 0.1 * scale, 0x00cccc);
    disk(c, cx, cy, 0.1 * scale, 0xcccc00);
    disk(c, x1, y1, 0.1 * scale, 0xcccc00);
}

void draw_mountain_car(Canvas& c, const std::vector<double>& s) {
    // height(x) = 0.45 sin(3x) + 0.55 over x in [-1.2, 0.6]; flag at x = 0.5
    const double W = c.width(), H = c.height(), scale = W / 1.8;
    auto sx = [&](double x) { return (x + 1.2) * scale; };
    auto sy = [&](double x) { return H - 10 - (0.45 * std::sin(3 * x) + 0.55) * scale; };
    for (int i = 0; i < 200; ++i) {
        double a = -1.2 + 1.8 * i / 200, b = -1.2 + 1.8 * (i + 1) / 200;
        c.line(sx(a), sy(a), sx(b), sy(b), 0x000000, 2);
    }
    double fx = sx(0.5), fy = sy(0.5);
    c.line(fx, fy, fx, fy - 50 * W / 600, 0x000000, 2);
    double f[4][2] = {{fx, fy - 50 * W / 600},
                      {fx + 25 * W / 600, fy - 45 * W / 600},
                      {fx + 25 * W / 600, fy - 45 * W / 600},
                      {fx, fy - 40 * W / 600}};
    quad(c, f, 0xcccc00);
    // the car: 40 x 20 px (at 600 px width) tilted by the slope, wheels at its lower corners
    double x = s[0], ang = std::atan(0.45 * 3 * std::cos(3 * x));
    double cw = 40 * W / 600, ch = 20 * W / 600, clear = 10 * W / 600;
    double ux = std::cos(ang), uy = -std::sin(ang);  // along the slope (screen y down)
    double nx = uy, ny = -ux;                        // normal, pointing up
    double bx = sx(x) + nx * clear, by = sy(x) + ny * clear;
    double p[4][2] = {{bx - ux * cw / 2, by - uy * cw / 2},
                      {bx + ux * cw / 2, by + uy * cw / 2},
                      {bx + ux * cw / 2 + nx * ch, by + uy * cw / 2 + ny * ch},
                      {bx - ux * cw / 2 + nx * ch, by - uy * cw / 2 + ny * ch}};
    quad(c, p, 0x000000);
    for (double side : {-1.0, 1.0})
        disk(c, bx + ux * side * cw / 4, by + uy * side * cw / 4, ch / 3, 0x808080);
}

void draw_pendulum(Canvas& c, const std::vector<double>& s) {
    // theta = 0 points up, counter-clockwise positive; a 1 m rod in a 2.6 m square view
    const double W = c.width(), H = c.height(), scale = std::min(W, H) / 2.6;
    const double cx = W / 2, cy = H / 2, th = s[0];
    double ex = cx - std::sin(th) * scale, ey = cy - std::cos(th) * scale;
    bar(c, cx, cy, ex, ey, 0.1 * scale, 0xcc4c4c);
    disk(c, ex, ey, 0.1 * scale, 0xcc4c4c);
    disk(c, cx, cy, 0.05 * scale, 0x000000);
}

// Tick labels for env steps and returns ("150k").
std::string tick(double v) {
    char buf[32];
    double a = std::fabs(v);
    if (a != 0 && (a < 1e-2 || a >= 1e6))
        std::snprintf(buf, sizeof buf, "%.1e", v);
    else if (a >= 1e4)
        std::snprintf(buf, sizeof buf, "%.0fk", v / 1e3);
    else if (a < 10)
        std::snprintf(buf, sizeof buf, "%.2f", v);
    else
        std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
}

}  // namespace

Canvas render(const Env& env, int width, int height, int64_t step, double ret) {
    Canvas c(width, height, 0xffffff);
    const std::string n = env.name();
    auto s = env.state();
    if (n == "CartPole-v1")
        draw_cartpole(c, s);
    else if (n == "Acrobot-v1")
        draw_acrobot(c, s);
    else if (n == "MountainCar-v0")
        draw_mountain_car(c, s);
    else if (n == "Pendulum-v1")
        draw_pendulum(c, s);
    else
        SOMA_CHECK_VALUE(false, "rl::render: no renderer for ", n);
    c.text(6, 6, n, 0x404040);
    if (step >= 0) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "step %lld  return %.1f", static_cast<long long>(step), ret);
        c.text(6, 16, buf, 0x404040);
    }
    return c;
}

int frame_delay_cs(const Env& env) {
    const std::string n = env.name();
    if (n == "CartPole-v1") return 2;
    if (n == "Pendulum-v1") return 5;
    if (n == "Acrobot-v1") return 10;
    return 3;
}

Recording record_gif(const Policy& policy, const EnvFactory& factory, const std::string& path,
                     uint64_t seed, int frame_skip, int width, int height) {
    SOMA_CHECK_VALUE(frame_skip >= 1, "rl::record_gif: frame_skip must be >= 1: got ", frame_skip);
    auto env = factory();
    Tensor obs = env->reset(seed);
    GifWriter gif(path, width, height, {.delay_cs = frame_delay_cs(*env) * frame_skip});
    Recording rec;
    gif.add_frame(render(*env, width, height, 0, 0));
    NoGradGuard ng;
    for (;;) {
        Tensor action = policy(obs.unsqueeze(0));
        StepResult r = env->step(action.reshape(
            env->action_space().is_discrete() ? Shape{} : env->action_space().shape));
        rec.ret += r.reward;
        ++rec.steps;
        bool done = r.terminated || r.truncated;
        if (done || rec.steps % frame_skip == 0)
            gif.add_frame(render(*env, width, height, rec.steps, rec.ret));
        if (done) break;
        obs = r.observation;
    }
    rec.frames = gif.frames();
    gif.finish();
    return rec;
}

void plot_learning_curve_png(const std::string& path, const std::vector<double>& steps,
                             const std::vector<double>& returns,
                             const std::vector<EvalPoint>& evals, const std::string& title) {
    const int W = 800, H = 440, left = 70, right = 20, top = 40, bottom = 50;
    Canvas c(W, H, 0xffffff);
    c.text(left, 12, title, 0x000000, 2);
    int px0 = left, px1 = W - right, py0 = top, py1 = H - bottom;
    chart::Bounds b{.xmin = 0, .xmax = 1};
    for (size_t i = 0; i < returns.size() && i < steps.size(); ++i) b.add(steps[i], returns[i]);
    std::vector<double> ex, ey;
    for (const auto& e : evals) {
        ex.push_back(static_cast<double>(e.step));
        ey.push_back(e.mean_return);
        b.add(ex.back(), ey.back());
    }
    if (b.empty()) {
        c.rect(px0, py0, px1, py1, 0x404040);
        c.text(px0 + 10, py0 + 10, "no finished episodes yet", 0x404040);
        c.save_png(path);
        return;
    }
    chart::Frame f = chart::axes(c, px0, py0, px1, py1, b, false, "env steps", tick);
    // every episode as a light dot, then a moving average over 20 episodes
    for (size_t i = 0; i < returns.size() && i < steps.size(); ++i)
        disk(c, f.sx(steps[i]), f.sy(returns[i]), 1.2, 0xaec7e8);
    double sum = 0;
    const size_t win = 20;
    double lx = NAN, ly = NAN;
    for (size_t i = 0; i < returns.size() && i < steps.size(); ++i) {
        sum += returns[i];
        if (i >= win) sum -= returns[i - win];
        double avg = sum / static_cast<double>(std::min(i + 1, win));
        double x = f.sx(steps[i]), y = f.sy(avg);
        if (std::isfinite(lx)) c.line(lx, ly, x, y, chart::kColors[0], 2);
        lx = x, ly = y;
    }
    chart::draw_series(c, f, ex, ey, chart::kColors[1], 3);
    chart::legend_entry(c, px1 - 190, py0 + 8, 14, 6, "train (20-ep avg)", chart::kColors[0]);
    chart::legend_entry(c, px1 - 190, py0 + 20, 14, 6, "greedy eval", chart::kColors[1]);
    c.save_png(path);
}

}  // namespace soma::rl
