// soma/optim.h — optimizers, learning-rate schedules and gradient clipping.
//
//     #include "soma/optim.h"
//     soma::optim::AdamW opt(params, {.lr = 3e-4});
//     soma::optim::OneCycleLR sched(opt, {.max_lr = {3e-3}, .total_steps = 1000});
//     for (...) { loss.backward(); soma::optim::clip_grad_norm_(params, 1.0);
//                 opt.step(); opt.zero_grad(); sched.step(); }
#pragma once

#include "soma/optim/clip_grad.h"
#include "soma/optim/lr_scheduler.h"
#include "soma/optim/optimizer.h"
