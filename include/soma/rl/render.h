// soma/rl/render.h — pictures of the classic-control tasks and of training.
//
// render() draws an environment's current state as Gymnasium does (cart and pole, pendulum,
// acrobot links, car on the hill), with the step and the return so far written in a corner.
// record_gif() plays one greedy episode and writes every frame to an animated GIF (soma/gif.h).
// plot_learning_curve_png() draws episode returns against env steps (each episode as a dot, a
// moving average and the evaluation points).
//
//     auto policy = soma::rl::load_policy("runs/ppo-cartpole/checkpoint.safetensors");
//     auto r = soma::rl::record_gif(policy, soma::rl::env_factory("CartPole-v1"), "cart.gif", 0);
#pragma once

#include <string>
#include <vector>

#include "soma/image.h"
#include "soma/rl/agents.h"
#include "soma/rl/env.h"

namespace soma::rl {

/// The env's current state; `step` and `ret` are printed when step >= 0. ValueError for an
/// environment without a renderer.
Canvas render(const Env& env, int width = 480, int height = 320, int64_t step = -1, double ret = 0);
/// Hundredths of a second per frame that play the env near real time (CartPole 2, Pendulum 5,
/// Acrobot 10 (2x speed), MountainCar 3).
int frame_delay_cs(const Env& env);

struct Recording {
    double ret = 0;
    int64_t steps = 0;
    int64_t frames = 0;
};
/// Plays one episode (env seeded with `seed`) and writes it to `path` atomically, one frame per
/// `frame_skip` steps plus the first and last states.
Recording record_gif(const Policy& policy, const EnvFactory& factory, const std::string& path,
                     uint64_t seed = 0, int frame_skip = 1, int width = 480, int height = 320);

/// Episode returns (x = env steps when each ended) and evaluation points, written atomically.
void plot_learning_curve_png(const std::string& path, const std::vector<double>& steps,
                             const std::vector<double>& returns,
                             const std::vector<EvalPoint>& evals, const std::string& title);

}  // namespace soma::rl
