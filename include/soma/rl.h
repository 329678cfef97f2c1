// soma/rl.h — reinforcement learning: environments (Gymnasium-like), vectorised environments,
// replay buffers, GAE, observation / reward normalisers, the DQN, REINFORCE, A2C and PPO agents,
// and renderers (frames, episode GIFs, learning curves). See rl/env.h, rl/classic_control.h,
// rl/agents.h and rl/render.h.
//
//     auto result = soma::rl::train_ppo(soma::rl::env_factory("CartPole-v1"),
//                                       {.total_steps = 200'000, .target_return = 475});
#pragma once

#include "soma/rl/agents.h"
#include "soma/rl/classic_control.h"
#include "soma/rl/env.h"
#include "soma/rl/render.h"
