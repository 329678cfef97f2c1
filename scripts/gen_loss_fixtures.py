#!/usr/bin/python3
"""Writes tests/fixtures/loss.json: PyTorch golden values for the losses, batch_norm and
layer_norm in soma::nn::functional (tests/test_loss_norm.cpp reads it).

Run with Debian's interpreter, which has PyTorch 1.13 (the `python3` on PATH may not):
    /usr/bin/python3 scripts/gen_loss_fixtures.py

Every case stores its float64 inputs, the upstream gradient fed to backward, the output and the
gradients of every input PyTorch differentiates (input, target where it has one, weight/bias for
the norms). Tensors are {"shape": [...], "dtype": "float64" | "int64", "data": [row-major]}.
"""
import json
import os
import warnings

import torch
import torch.nn.functional as F

warnings.filterwarnings("ignore")  # size-mismatch and kl_div "mean" warnings are expected
torch.manual_seed(1234)
D = torch.float64
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                   "loss.json")


def enc(t):
    t = t.detach()
    return {"shape": list(t.shape), "dtype": "int64" if t.dtype == torch.int64 else "float64",
            "data": t.reshape(-1).tolist()}


def run(fn, inputs, diff):
    """inputs: name -> tensor; diff: names to differentiate. Returns (out, grad_out, grads)."""
    leaves = {k: (v.clone().requires_grad_() if k in diff else v) for k, v in inputs.items()}
    out = fn(**leaves)
    go = torch.randn(out.shape, dtype=D) if out.dim() > 0 else torch.tensor(0.75, dtype=D)
    grads = torch.autograd.grad(out, [leaves[k] for k in diff], go)
    return out, go, dict(zip(diff, grads))


cases = []


def add(name, op, fn, inputs, diff, **args):
    out, go, grads = run(fn, inputs, diff)
    cases.append({"name": name, "op": op, "args": args,
                  "inputs": {k: enc(v) for k, v in inputs.items()},
                  "grad_output": enc(go), "output": enc(out),
                  "grads": {k: enc(v) for k, v in grads.items()}})


REDS = ["none", "mean", "sum"]

# ---- regression losses --------------------------------------------------------------------
x = torch.randn(3, 4, dtype=D) * 2
y = torch.randn(3, 4, dtype=D) * 2
for r in REDS:
    add(f"mse_loss/{r}", "mse_loss", lambda input, target: F.mse_loss(input, target,
        reduction=r), {"input": x, "target": y}, ["input", "target"], reduction=r)
    add(f"l1_loss/{r}", "l1_loss", lambda input, target: F.l1_loss(input, target, reduction=r),
        {"input": x, "target": y}, ["input", "target"], reduction=r)
    for beta in [1.0, 0.5, 0.0]:
        add(f"smooth_l1_loss/beta{beta}/{r}", "smooth_l1_loss",
            lambda input, target: F.smooth_l1_loss(input, target, reduction=r, beta=beta),
            {"input": x, "target": y}, ["input", "target"], reduction=r, beta=beta)
    for delta in [1.0, 0.5, 2.5]:
        add(f"huber_loss/delta{delta}/{r}", "huber_loss",
            lambda input, target: F.huber_loss(input, target, reduction=r, delta=delta),
            {"input": x, "target": y}, ["input", "target"], reduction=r, delta=delta)
# broadcasting target (PyTorch warns but broadcasts)
add("mse_loss/broadcast/mean", "mse_loss", lambda input, target: F.mse_loss(input, target),
    {"input": x, "target": y[0]}, ["input", "target"], reduction="mean")

# ---- binary cross-entropy -----------------------------------------------------------------
p = torch.sigmoid(torch.randn(3, 4, dtype=D))
t = torch.rand(3, 4, dtype=D)
wcol = torch.rand(4, dtype=D) + 0.5
wfull = torch.rand(3, 4, dtype=D) + 0.5
for r in REDS:
    add(f"binary_cross_entropy/{r}", "binary_cross_entropy",
        lambda input, target: F.binary_cross_entropy(input, target, reduction=r),
        {"input": p, "target": t}, ["input", "target"], reduction=r)
    add(f"binary_cross_entropy/weight/{r}", "binary_cross_entropy",
        lambda input, target, weight: F.binary_cross_entropy(input, target, weight, reduction=r),
        {"input": p, "target": t, "weight": wcol}, ["input", "target"], reduction=r)
add("binary_cross_entropy/weight_full/mean", "binary_cross_entropy",
    lambda input, target, weight: F.binary_cross_entropy(input, target, weight),
    {"input": p, "target": t, "weight": wfull}, ["input", "target"], reduction="mean")
# log clamped to -100 at exactly 0 and 1
pc = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.3], dtype=D)
tc = torch.tensor([0.0, 1.0, 1.0, 0.0, 0.6], dtype=D)
add("binary_cross_entropy/clamp/sum", "binary_cross_entropy",
    lambda input, target: F.binary_cross_entropy(input, target, reduction="sum"),
    {"input": pc, "target": tc}, ["input"], reduction="sum")

z = torch.randn(3, 4, dtype=D) * 3
z[0, 0], z[1, 1], z[2, 2] = 60.0, -60.0, 0.0
pw = torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=D)
for r in REDS:
    add(f"binary_cross_entropy_with_logits/{r}", "binary_cross_entropy_with_logits",
        lambda input, target: F.binary_cross_entropy_with_logits(input, target, reduction=r),
        {"input": z, "target": t}, ["input", "target"], reduction=r)
    add(f"binary_cross_entropy_with_logits/pos_weight/{r}", "binary_cross_entropy_with_logits",
        lambda input, target, pos_weight: F.binary_cross_entropy_with_logits(
            input, target, pos_weight=pos_weight, reduction=r),
        {"input": z, "target": t, "pos_weight": pw}, ["input", "target"], reduction=r)
    add(f"binary_cross_entropy_with_logits/weight_pos_weight/{r}",
        "binary_cross_entropy_with_logits",
        lambda input, target, weight, pos_weight: F.binary_cross_entropy_with_logits(
            input, target, weight, pos_weight=pos_weight, reduction=r),
        {"input": z, "target": t, "weight": wfull, "pos_weight": pw}, ["input", "target"],
        reduction=r)

# ---- kl_div -------------------------------------------------------------------------------
lp = torch.log_softmax(torch.randn(3, 5, dtype=D), 1)
q = torch.softmax(torch.randn(3, 5, dtype=D), 1)
lq = torch.log_softmax(torch.randn(3, 5, dtype=D), 1)
for r in REDS + ["batchmean"]:
    add(f"kl_div/{r}", "kl_div", lambda input, target: F.kl_div(input, target, reduction=r),
        {"input": lp, "target": q}, ["input", "target"], reduction=r, log_target=False)
    add(f"kl_div/log_target/{r}", "kl_div",
        lambda input, target: F.kl_div(input, target, reduction=r, log_target=True),
        {"input": lp, "target": lq}, ["input", "target"], reduction=r, log_target=True)

# ---- cross_entropy / nll_loss ---------------------------------------------------------------
N, C = 6, 4
logits = torch.randn(N, C, dtype=D) * 2
tgt = torch.tensor([0, 3, 1, 2, 3, 1])
tgt_ign = torch.tensor([0, -100, 1, 2, -100, 1])
tgt_ign1 = torch.tensor([0, 3, 1, 2, 3, 1])  # ignore_index = 1 hits two targets
cw = torch.tensor([0.2, 1.0, 2.5, 0.7], dtype=D)
probs = torch.softmax(torch.randn(N, C, dtype=D), 1)
kd = torch.randn(2, 3, 4, 5, dtype=D)
kd_t = torch.randint(0, 3, (2, 4, 5))
kd_t[0, 0, 0] = -100
kd_t[1, 2, 3] = -100
kd_p = torch.softmax(torch.randn(2, 3, 4, 5, dtype=D), 1)
ub = torch.randn(5, dtype=D)
ub_t = torch.tensor(3)
ub_p = torch.softmax(torch.randn(5, dtype=D), 0)
cw3 = torch.tensor([0.5, 1.5, 1.0], dtype=D)
cw5 = torch.tensor([1.0, 0.3, 2.0, 0.5, 1.2], dtype=D)


def ce_cases(op, fn, lsm_ok):
    variants = [
        ("basic", logits, tgt, {}),
        ("weight", logits, tgt, {"weight": cw}),
        ("ignore", logits, tgt_ign, {}),
        ("weight_ignore", logits, tgt_ign, {"weight": cw}),
        ("ignore_index1", logits, tgt_ign1, {"ignore_index": 1}),
        ("kdim", kd, kd_t, {}),
        ("kdim_weight", kd, kd_t, {"weight": cw3}),
        ("unbatched", ub, ub_t, {}),
        ("unbatched_weight", ub, ub_t, {"weight": cw5}),
    ]
    if lsm_ok:
        variants += [
            ("smooth", logits, tgt, {"label_smoothing": 0.1}),
            ("smooth_weight", logits, tgt, {"label_smoothing": 0.1, "weight": cw}),
            ("smooth_ignore", logits, tgt_ign, {"label_smoothing": 0.1}),
            ("smooth_weight_ignore", logits, tgt_ign, {"label_smoothing": 0.1, "weight": cw}),
            ("kdim_smooth_weight", kd, kd_t, {"label_smoothing": 0.2, "weight": cw3}),
            ("unbatched_smooth", ub, ub_t, {"label_smoothing": 0.1}),
            ("prob", logits, probs, {}),
            ("prob_weight", logits, probs, {"weight": cw}),
            ("prob_smooth", logits, probs, {"label_smoothing": 0.1}),
            ("prob_smooth_weight", logits, probs, {"label_smoothing": 0.1, "weight": cw}),
            ("kdim_prob", kd, kd_p, {}),
            ("kdim_prob_weight", kd, kd_p, {"weight": cw3, "label_smoothing": 0.05}),
            ("unbatched_prob", ub, ub_p, {}),
        ]
    for vname, inp, target, kw in variants:
        is_prob = target.dtype != torch.int64
        if op == "nll_loss":
            inp = torch.log_softmax(inp, 0 if inp.dim() == 1 else 1)
        for r in REDS:
            inputs = {"input": inp, "target": target}
            if "weight" in kw:
                inputs["weight"] = kw["weight"]
            args = {"reduction": r, "ignore_index": kw.get("ignore_index", -100),
                    "label_smoothing": kw.get("label_smoothing", 0.0)}

            def f(input, target, weight=None):
                extra = {"label_smoothing": args["label_smoothing"]} if lsm_ok else {}
                return fn(input, target, weight=weight, ignore_index=args["ignore_index"],
                          reduction=r, **extra)

            add(f"{op}/{vname}/{r}", op, f, inputs,
                ["input", "target"] if is_prob else ["input"], **args)


ce_cases("cross_entropy", F.cross_entropy, True)
ce_cases("nll_loss", F.nll_loss, False)

# ---- batch_norm ---------------------------------------------------------------------------
norm_cases = []


def bn_case(name, shape, affine, momentum, training):
    x = torch.randn(*shape, dtype=D) * 1.5 + 0.3
    C = shape[1]
    rm0 = torch.randn(C, dtype=D) * 0.1
    rv0 = torch.rand(C, dtype=D) + 0.5
    w = torch.rand(C, dtype=D) + 0.5
    b = torch.randn(C, dtype=D)
    rm, rv = rm0.clone(), rv0.clone()
    xl = x.clone().requires_grad_()
    wl = w.clone().requires_grad_()
    bl = b.clone().requires_grad_()
    out = F.batch_norm(xl, rm, rv, wl if affine else None, bl if affine else None,
                       training=training, momentum=momentum, eps=1e-5)
    go = torch.randn(out.shape, dtype=D)
    leaves = [xl, wl, bl] if affine else [xl]
    grads = torch.autograd.grad(out, leaves, go)
    c = {"name": name, "op": "batch_norm",
         "args": {"training": training, "momentum": momentum, "eps": 1e-5, "affine": affine},
         "inputs": {"input": enc(x), "running_mean": enc(rm0), "running_var": enc(rv0)},
         "grad_output": enc(go), "output": enc(out),
         "grads": {"input": enc(grads[0])},
         "running_mean": enc(rm), "running_var": enc(rv)}
    if affine:
        c["inputs"]["weight"] = enc(w)
        c["inputs"]["bias"] = enc(b)
        c["grads"]["weight"] = enc(grads[1])
        c["grads"]["bias"] = enc(grads[2])
    norm_cases.append(c)


for training in [True, False]:
    mode = "train" if training else "eval"
    bn_case(f"batch_norm/{mode}/nc", (5, 3), True, 0.1, training)
    bn_case(f"batch_norm/{mode}/ncl", (4, 3, 5), True, 0.1, training)
    bn_case(f"batch_norm/{mode}/nchw", (2, 3, 4, 5), True, 0.3, training)
    bn_case(f"batch_norm/{mode}/nchw_noaffine", (2, 3, 4, 5), False, 0.1, training)


def ln_case(name, shape, nshape, affine):
    x = torch.randn(*shape, dtype=D) * 2 + 0.5
    w = torch.rand(*nshape, dtype=D) + 0.5
    b = torch.randn(*nshape, dtype=D)
    inputs = {"input": x}
    if affine:
        inputs.update(weight=w, bias=b)

    def f(input, weight=None, bias=None):
        return F.layer_norm(input, nshape, weight, bias, eps=1e-5)

    out, go, grads = run(f, inputs, list(inputs.keys()))
    norm_cases.append({"name": name, "op": "layer_norm",
                       "args": {"normalized_shape": list(nshape), "eps": 1e-5},
                       "inputs": {k: enc(v) for k, v in inputs.items()},
                       "grad_output": enc(go), "output": enc(out),
                       "grads": {k: enc(v) for k, v in grads.items()}})


ln_case("layer_norm/last", (2, 3, 4), (4,), True)
ln_case("layer_norm/last2", (2, 3, 4), (3, 4), True)
ln_case("layer_norm/noaffine", (5, 6), (6,), False)

os.makedirs(os.path.dirname(OUT), exist_ok=True)
with open(OUT, "w") as f:
    json.dump({"generator": "scripts/gen_loss_fixtures.py", "torch": torch.__version__,
               "cases": cases, "norm_cases": norm_cases}, f, indent=None, separators=(",", ":"))
    f.write("\n")
print(f"wrote {len(cases)} loss cases and {len(norm_cases)} norm cases to {os.path.normpath(OUT)}")
