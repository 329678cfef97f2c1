#!/usr/bin/python3
"""Writes tests/fixtures/rl.json: trajectories of the classic-control tasks computed with numpy
from Gymnasium's published equations (classic_control: cartpole.py, acrobot.py, mountain_car.py,
pendulum.py), independently of the C++ code. Each case: a start state, a fixed action sequence,
and per step the float32 observation, reward, terminated and truncated flags (the time limit is
applied as Gymnasium's TimeLimit wrapper does). Run with /usr/bin/python3 (numpy)."""
import json
import math
import os

import numpy as np


def cartpole_step(s, a):
    g, mc, mp, l, fm, tau = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
    x, x_dot, th, th_dot = s
    f = fm if a == 1 else -fm
    ct, st = math.cos(th), math.sin(th)
    temp = (f + mp * l * th_dot**2 * st) / (mc + mp)
    thacc = (g * st - ct * temp) / (l * (4.0 / 3.0 - mp * ct**2 / (mc + mp)))
    xacc = temp - mp * l * thacc * ct / (mc + mp)
    x, x_dot = x + tau * x_dot, x_dot + tau * xacc
    th, th_dot = th + tau * th_dot, th_dot + tau * thacc
    s = [x, x_dot, th, th_dot]
    thr = 12 * 2 * math.pi / 360
    term = x < -2.4 or x > 2.4 or th < -thr or th > thr
    return s, list(s), 1.0, term


def acrobot_dsdt(y):
    m1 = m2 = l1 = 1.0
    lc1 = lc2 = 0.5
    i1 = i2 = 1.0
    g = 9.8
    t1, t2, dt1, dt2, a = y
    d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * math.cos(t2)) + i1 + i2
    d2 = m2 * (lc2**2 + l1 * lc2 * math.cos(t2)) + i2
    phi2 = m2 * lc2 * g * math.cos(t1 + t2 - math.pi / 2.0)
    phi1 = (-m2 * l1 * lc2 * dt2**2 * math.sin(t2)
            - 2 * m2 * l1 * lc2 * dt2 * dt1 * math.sin(t2)
            + (m1 * lc1 + m2 * l1) * g * math.cos(t1 - math.pi / 2) + phi2)
    ddt2 = (a + d2 / d1 * phi1 - m2 * l1 * lc2 * dt1**2 * math.sin(t2) - phi2) / (
        m2 * lc2**2 + i2 - d2**2 / d1)
    ddt1 = -(d2 * ddt2 + phi1) / d1
    return np.array([dt1, dt2, ddt1, ddt2, 0.0])


def acrobot_step(s, a):
    dt = 0.2
    y0 = np.array(list(s) + [[-1.0, 0.0, 1.0][a]])
    k1 = acrobot_dsdt(y0)
    k2 = acrobot_dsdt(y0 + dt / 2 * k1)
    k3 = acrobot_dsdt(y0 + dt / 2 * k2)
    k4 = acrobot_dsdt(y0 + dt * k3)
    ns = (y0 + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4))[:4]

    def wrap(x, lo, hi):
        while x > hi:
            x -= hi - lo
        while x < lo:
            x += hi - lo
        return x

    ns[0] = wrap(ns[0], -math.pi, math.pi)
    ns[1] = wrap(ns[1], -math.pi, math.pi)
    ns[2] = min(max(ns[2], -4 * math.pi), 4 * math.pi)
    ns[3] = min(max(ns[3], -9 * math.pi), 9 * math.pi)
    term = bool(-math.cos(ns[0]) - math.cos(ns[1] + ns[0]) > 1.0)
    obs = [math.cos(ns[0]), math.sin(ns[0]), math.cos(ns[1]), math.sin(ns[1]), ns[2], ns[3]]
    return list(ns), obs, (0.0 if term else -1.0), term


def mountain_car_step(s, a):
    p, v = s
    v += (a - 1) * 0.001 + math.cos(3 * p) * (-0.0025)
    v = min(max(v, -0.07), 0.07)
    p += v
    p = min(max(p, -1.2), 0.6)
    if p == -1.2 and v < 0:
        v = 0.0
    term = bool(p >= 0.5 and v >= 0)
    return [p, v], [p, v], -1.0, term


def pendulum_step(s, a):
    th, thdot = s
    u = float(np.float32(min(max(a, -2.0), 2.0)))
    norm = ((th + math.pi) % (2 * math.pi)) - math.pi
    cost = norm**2 + 0.1 * thdot**2 + 0.001 * u**2
    nthdot = thdot + (3 * 10.0 / 2 * math.sin(th) + 3.0 * u) * 0.05
    nthdot = min(max(nthdot, -8.0), 8.0)
    nth = th + nthdot * 0.05
    return [nth, nthdot], [math.cos(nth), math.sin(nth), nthdot], -cost, False


def run(step, state, actions, limit):
    steps = []
    for t, a in enumerate(actions):
        state, obs, r, term = step(state, a)
        trunc = t + 1 >= limit
        steps.append({
            "obs": [float(np.float32(o)) for o in obs],
            "reward": r,
            "terminated": bool(term),
            "truncated": bool(trunc),
        })
        if term or trunc:
            break
    return steps


def main():
    rng = np.random.default_rng(7)
    cases = []

    def add(env, step, state, actions, limit):
        actions = [a if isinstance(a, float) else int(a) for a in actions]
        traj = run(step, list(state), actions, limit)
        cases.append({"env": env, "state": list(state), "actions": actions[:len(traj)],
                      "steps": traj})

    add("CartPole-v1", cartpole_step, [0.01, -0.02, 0.03, 0.04], [1] * 100, 500)
    add("CartPole-v1", cartpole_step, [-0.03, 0.02, -0.01, 0.01],
        rng.integers(0, 2, size=100).tolist(), 500)
    # a balancing controller: survives to the 500-step limit (truncated)
    acts, s = [], [0.02, 0.0, -0.03, 0.0]
    for _ in range(500):
        a = 1 if s[2] + 0.5 * s[3] > 0 else 0
        acts.append(a)
        s, _, _, term = cartpole_step(s, a)
        if term:
            break
    add("CartPole-v1", cartpole_step, [0.02, 0.0, -0.03, 0.0], acts, 500)
    add("Acrobot-v1", acrobot_step, [0.05, -0.08, 0.02, -0.01],
        rng.integers(0, 3, size=150).tolist(), 500)
    add("Acrobot-v1", acrobot_step, [1.0, 2.5, 3.0, -5.0], [2] * 40, 500)
    add("MountainCar-v0", mountain_car_step, [-0.5, 0.0],
        rng.integers(0, 3, size=250).tolist(), 200)
    # push with the velocity: reaches the goal (terminated) before the limit
    acts, s = [], [-0.5, 0.0]
    for _ in range(200):
        a = 2 if s[1] >= 0 else 0
        acts.append(a)
        s, _, _, term = mountain_car_step(s, a)
        if term:
            break
    add("MountainCar-v0", mountain_car_step, [-0.5, 0.0], acts, 200)
    add("Pendulum-v1", pendulum_step, [2.5, -0.5],
        [float(x) for x in rng.uniform(-3.0, 3.0, size=250)], 200)
    add("Pendulum-v1", pendulum_step, [-3.0, 7.5], [2.0] * 30, 200)

    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                       "rl.json")
    with open(out, "w") as f:
        json.dump({"generator": "scripts/gen_rl_fixtures.py", "cases": cases}, f, indent=1)
    for c in cases:
        last = c["steps"][-1]
        print(c["env"], len(c["steps"]), "steps, terminated", last["terminated"], "truncated",
              last["truncated"])


if __name__ == "__main__":
    main()
