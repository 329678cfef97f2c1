#!/usr/bin/python3
"""Writes tests/fixtures/optim.json: golden values for soma::optim from PyTorch 1.13.

Run with Debian's interpreter (the only one with torch):
    /usr/bin/python3 scripts/gen_optim_fixtures.py

Contents
  optimizers: per configuration, the starting parameters (two small float64 tensors), a fixed
              sequence of gradients (null = that parameter has no grad at that step) and the
              parameter values after each optimizer.step() (single-tensor implementations).
  schedulers: per configuration, the lr of every param group after construction and after each
              scheduler.step() (ReduceLROnPlateau: step(metric) over a fixed metric sequence;
              OneCycleLR also records momentum / beta1).
  clip:       clip_grad_norm_ / clip_grad_value_ inputs, returned total norm, clipped grads.
Floats are written with repr(), which round-trips exactly.
"""
import json
import math
import os
import warnings

import torch

torch.set_default_dtype(torch.float64)
warnings.simplefilter("ignore")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "optim.json")

SHAPES = [[2, 3], [4]]
NUM_STEPS = 5


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def start_params():
    g = torch.Generator().manual_seed(1234)
    return [torch.rand(s, generator=g, dtype=torch.float64) * 2 - 1 for s in SHAPES]


def grad_sequence(missing=()):
    """NUM_STEPS x len(SHAPES) gradients; (step, param) pairs in `missing` are None."""
    g = torch.Generator().manual_seed(99)
    seq = []
    for k in range(NUM_STEPS):
        row = []
        for j, s in enumerate(SHAPES):
            v = torch.randn(s, generator=g, dtype=torch.float64)
            row.append(None if (k, j) in missing else v)
        seq.append(row)
    return seq


def make_opt(kind, groups):
    """groups: [(param_indices, options)] -> torch optimizer over fresh leaf params."""
    params = [p.clone().requires_grad_() for p in start_params()]
    torch_groups = [dict(params=[params[i] for i in idx], **opts) for idx, opts in groups]
    cls = dict(SGD=torch.optim.SGD, Adam=torch.optim.Adam, AdamW=torch.optim.AdamW,
               RMSprop=torch.optim.RMSprop, Adagrad=torch.optim.Adagrad)[kind]
    # The first group's options are also the defaults: SGD needs an lr there, and Adagrad
    # creates its accumulators from the defaults' initial_accumulator_value (not the group's).
    return params, cls(torch_groups, foreach=False, **groups[0][1])


def optimizer_case(name, kind, groups, missing=()):
    params, opt = make_opt(kind, groups)
    grads = grad_sequence(missing)
    expected = []
    for row in grads:
        for p, g in zip(params, row):
            p.grad = None if g is None else g.clone()
        opt.step()
        expected.append([flat(p) for p in params])
    # Every group's effective options (the group's own merged with the defaults).
    internal = {"params", "foreach", "differentiable", "capturable", "fused"}
    json_groups = []
    for (idx, _), group in zip(groups, opt.param_groups):
        o = {k: v for k, v in group.items() if k not in internal}
        if "betas" in o:
            o["betas"] = list(o["betas"])
        json_groups.append({"params": idx, "options": o})
    return {
        "name": name,
        "optimizer": kind,
        "groups": json_groups,
        "params": [{"shape": s, "values": flat(p)} for s, p in zip(SHAPES, start_params())],
        "grads": [[None if g is None else flat(g) for g in row] for row in grads],
        "expected": expected,
    }


def optimizer_cases():
    both = [0, 1]
    c = []
    c.append(optimizer_case("sgd_plain", "SGD", [(both, dict(lr=0.1))]))
    c.append(optimizer_case("sgd_momentum", "SGD", [(both, dict(lr=0.1, momentum=0.9))]))
    c.append(optimizer_case("sgd_dampening", "SGD",
                            [(both, dict(lr=0.1, momentum=0.9, dampening=0.3))]))
    c.append(optimizer_case("sgd_nesterov", "SGD",
                            [(both, dict(lr=0.05, momentum=0.8, nesterov=True))]))
    c.append(optimizer_case("sgd_weight_decay", "SGD",
                            [(both, dict(lr=0.1, momentum=0.5, weight_decay=0.1))]))
    c.append(optimizer_case("sgd_maximize", "SGD",
                            [(both, dict(lr=0.1, momentum=0.9, maximize=True))]))
    c.append(optimizer_case("sgd_groups", "SGD",
                            [([0], dict(lr=0.1, momentum=0.9)),
                             ([1], dict(lr=0.01, momentum=0.0))]))
    c.append(optimizer_case("sgd_momentum_skip", "SGD", [(both, dict(lr=0.1, momentum=0.9))],
                            missing={(0, 1), (2, 0), (3, 1)}))
    c.append(optimizer_case("adam_default", "Adam", [(both, dict(lr=1e-3))]))
    c.append(optimizer_case("adam_lr", "Adam", [(both, dict(lr=0.1, betas=(0.8, 0.95)))]))
    c.append(optimizer_case("adam_weight_decay", "Adam",
                            [(both, dict(lr=0.05, weight_decay=0.1))]))
    c.append(optimizer_case("adam_amsgrad", "Adam", [(both, dict(lr=0.05, amsgrad=True))]))
    c.append(optimizer_case("adam_maximize", "Adam", [(both, dict(lr=0.05, maximize=True))]))
    c.append(optimizer_case("adam_groups", "Adam",
                            [([0], dict(lr=0.05)), ([1], dict(lr=0.01, amsgrad=True))]))
    c.append(optimizer_case("adam_skip", "Adam", [(both, dict(lr=0.05))],
                            missing={(0, 1), (2, 0), (3, 1)}))
    c.append(optimizer_case("adamw_default", "AdamW", [(both, dict(lr=1e-3))]))
    c.append(optimizer_case("adamw_decay", "AdamW", [(both, dict(lr=0.05, weight_decay=0.2))]))
    c.append(optimizer_case("adamw_amsgrad", "AdamW",
                            [(both, dict(lr=0.05, weight_decay=0.1, amsgrad=True))]))
    c.append(optimizer_case("rmsprop_plain", "RMSprop", [(both, dict(lr=1e-2))]))
    c.append(optimizer_case("rmsprop_centered", "RMSprop",
                            [(both, dict(lr=1e-2, centered=True, weight_decay=0.05))]))
    c.append(optimizer_case("rmsprop_momentum", "RMSprop",
                            [(both, dict(lr=1e-2, alpha=0.9, momentum=0.9))]))
    c.append(optimizer_case("rmsprop_centered_momentum", "RMSprop",
                            [(both, dict(lr=1e-2, centered=True, momentum=0.5, eps=1e-6))]))
    c.append(optimizer_case("adagrad_plain", "Adagrad", [(both, dict(lr=1e-1))]))
    c.append(optimizer_case("adagrad_decay", "Adagrad",
                            [(both, dict(lr=1e-1, lr_decay=0.1, weight_decay=0.05,
                                         initial_accumulator_value=0.1))]))
    c.append(optimizer_case("adagrad_skip", "Adagrad", [(both, dict(lr=1e-1, lr_decay=0.05))],
                            missing={(0, 1), (2, 0)}))
    return c


# ---- schedulers ------------------------------------------------------------------------------

SCHED_STEPS = 12


def scheduler_case(name, kind, opt_kind, lrs, options, make, metrics=None, steps=SCHED_STEPS,
                   opt_options=None):
    params = [torch.zeros(2, requires_grad=True) for _ in lrs]
    groups = [dict(params=[p], lr=lr) for p, lr in zip(params, lrs)]
    opt_options = opt_options or {}
    if opt_kind == "SGD":
        opt = torch.optim.SGD(groups, lr=lrs[0], **opt_options)
    elif opt_kind == "Adam":
        opt = torch.optim.Adam(groups, **opt_options)
    else:
        raise ValueError(opt_kind)
    sched = make(opt)

    def momenta():
        out = []
        for g in opt.param_groups:
            out.append(g["betas"][0] if "betas" in g else g["momentum"])
        return out

    lr_seq = [[g["lr"] for g in opt.param_groups]]
    mom_seq = [momenta()]
    for k in range(steps):
        opt.step()  # no grads: a no-op that keeps the scheduler's call-order check quiet
        if metrics is not None:
            sched.step(metrics[k])
        else:
            sched.step()
        lr_seq.append([g["lr"] for g in opt.param_groups])
        mom_seq.append(momenta())
    case = {
        "name": name,
        "scheduler": kind,
        "optimizer": opt_kind,
        "optimizer_options": opt_options,
        "lrs": lrs,
        "options": options,
        "expected_lr": lr_seq,
    }
    if metrics is not None:
        case["metrics"] = metrics[:steps]
    if kind == "OneCycleLR":
        case["expected_momentum"] = mom_seq
    return case


def scheduler_cases():
    S = torch.optim.lr_scheduler
    c = []
    c.append(scheduler_case("step_lr", "StepLR", "SGD", [0.1, 0.05],
                            dict(step_size=3, gamma=0.5),
                            lambda o: S.StepLR(o, step_size=3, gamma=0.5)))
    c.append(scheduler_case("multistep_lr", "MultiStepLR", "SGD", [0.1, 0.05],
                            dict(milestones=[2, 5, 5, 9], gamma=0.3),
                            lambda o: S.MultiStepLR(o, milestones=[2, 5, 5, 9], gamma=0.3)))
    c.append(scheduler_case("exponential_lr", "ExponentialLR", "SGD", [0.1, 0.05],
                            dict(gamma=0.9), lambda o: S.ExponentialLR(o, gamma=0.9)))
    c.append(scheduler_case("cosine_lr", "CosineAnnealingLR", "SGD", [0.1, 0.05],
                            dict(t_max=5, eta_min=0.001),
                            lambda o: S.CosineAnnealingLR(o, T_max=5, eta_min=0.001)))
    c.append(scheduler_case("cosine_lr_long", "CosineAnnealingLR", "SGD", [0.1],
                            dict(t_max=10, eta_min=0.0),
                            lambda o: S.CosineAnnealingLR(o, T_max=10)))
    c.append(scheduler_case("linear_warmup", "LinearWarmup", "SGD", [0.1, 0.05],
                            dict(start_factor=0.25, end_factor=1.0, total_iters=4),
                            lambda o: S.LinearLR(o, start_factor=0.25, end_factor=1.0,
                                                 total_iters=4)))
    c.append(scheduler_case("linear_default", "LinearWarmup", "SGD", [0.1],
                            dict(), lambda o: S.LinearLR(o)))
    c.append(scheduler_case("onecycle_sgd", "OneCycleLR", "SGD", [0.1, 0.05],
                            dict(max_lr=[1.0, 0.5], total_steps=12),
                            lambda o: S.OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=12),
                            opt_options=dict(momentum=0.9)))
    c.append(scheduler_case("onecycle_adam", "OneCycleLR", "Adam", [0.001],
                            dict(max_lr=[0.01], epochs=3, steps_per_epoch=5, pct_start=0.25),
                            lambda o: S.OneCycleLR(o, max_lr=0.01, epochs=3, steps_per_epoch=5,
                                                   pct_start=0.25),
                            steps=15))
    c.append(scheduler_case("onecycle_three_phase_linear", "OneCycleLR", "SGD", [0.1],
                            dict(max_lr=[0.4], total_steps=12, three_phase=True,
                                 anneal_strategy="linear", base_momentum=0.8,
                                 max_momentum=0.9, div_factor=10.0, final_div_factor=100.0),
                            lambda o: S.OneCycleLR(o, max_lr=0.4, total_steps=12,
                                                   three_phase=True, anneal_strategy="linear",
                                                   base_momentum=0.8, max_momentum=0.9,
                                                   div_factor=10.0, final_div_factor=100.0),
                            opt_options=dict(momentum=0.9)))
    metrics = [1.0, 0.9, 0.9, 0.95, 0.91, 0.9, 0.89, 0.9, 0.9, 0.9, 0.9, 0.5, 0.6, 0.6, 0.6,
               0.6, 0.6, 0.6]
    c.append(scheduler_case("plateau_min", "ReduceLROnPlateau", "SGD", [0.1, 0.05],
                            dict(mode="min", factor=0.5, patience=2, threshold=0.01, cooldown=1,
                                 min_lr=[0.02]),
                            lambda o: S.ReduceLROnPlateau(o, mode="min", factor=0.5, patience=2,
                                                          threshold=0.01, cooldown=1,
                                                          min_lr=0.02),
                            metrics=metrics, steps=len(metrics)))
    up = [0.1, 0.2, 0.2, 0.2, 0.25, 0.3, 0.3, 0.3, 0.3, 0.3, 0.35, 0.35, 0.35, 0.35]
    c.append(scheduler_case("plateau_max_abs", "ReduceLROnPlateau", "SGD", [0.1],
                            dict(mode="max", factor=0.2, patience=1, threshold=0.04,
                                 threshold_mode="abs", min_lr=[1e-3]),
                            lambda o: S.ReduceLROnPlateau(o, mode="max", factor=0.2, patience=1,
                                                          threshold=0.04, threshold_mode="abs",
                                                          min_lr=1e-3),
                            metrics=up, steps=len(up)))
    return c


# ---- gradient clipping -----------------------------------------------------------------------

def clip_case(name, kind, **kw):
    grads = [g for g in grad_sequence()[0]]
    grads = [g * 0.7 for g in grads]
    params = [torch.zeros(s, requires_grad=True) for s in SHAPES]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    case = {"name": name, "kind": kind, "grads": [flat(g) for g in grads],
            "shapes": SHAPES}
    if kind == "norm":
        norm_type = kw["norm_type"]
        total = torch.nn.utils.clip_grad_norm_(params, kw["max_norm"], norm_type=norm_type)
        case["max_norm"] = kw["max_norm"]
        case["norm_type"] = "inf" if math.isinf(norm_type) else norm_type
        case["total_norm"] = float(total)
    else:
        torch.nn.utils.clip_grad_value_(params, kw["clip_value"])
        case["clip_value"] = kw["clip_value"]
    case["expected"] = [flat(p.grad) for p in params]
    return case


def clip_cases():
    return [
        clip_case("norm2", "norm", max_norm=1.0, norm_type=2.0),
        clip_case("norm2_no_clip", "norm", max_norm=100.0, norm_type=2.0),
        clip_case("norm_inf", "norm", max_norm=0.5, norm_type=math.inf),
        clip_case("norm1", "norm", max_norm=2.0, norm_type=1.0),
        clip_case("norm3", "norm", max_norm=1.0, norm_type=3.0),
        clip_case("value", "value", clip_value=0.5),
    ]


def main():
    data = {
        "generator": "scripts/gen_optim_fixtures.py",
        "torch_version": torch.__version__,
        "optimizers": optimizer_cases(),
        "schedulers": scheduler_cases(),
        "clip": clip_cases(),
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
