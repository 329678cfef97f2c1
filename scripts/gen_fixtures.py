#!/usr/bin/python3
"""Writes tests/fixtures/ops.json: golden op values from PyTorch for the op table tests.

Run with the interpreter that has PyTorch (Debian's python3-torch, 1.13):

    /usr/bin/python3 scripts/gen_fixtures.py

Deterministic (fixed seed; inputs rounded to 3 decimals so they are written exactly). Every case
is one JSON object per line:

    {"name": "add/broadcast", "op": "add", "attrs": {...},
     "inputs": [{"dtype", "shape", "data", "requires_grad"}],
     "outputs": [{"dtype", "shape", "data"}],
     "grad_outputs": [tensor or null per output], "grads": [tensor or null per input],
     "gradcheck": bool, "gradgrad": bool}

grads = d(sum_i <outputs_i, grad_outputs_i>)/d(inputs) from torch.autograd.grad. Non-finite
numbers are the strings "nan", "inf", "-inf". `op` names the soma function (or Tensor method);
`attrs` carry its non-tensor arguments, read by the matching row in tests/op_table.h. The
dispatch below (torch_op) mirrors that table.
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

torch.manual_seed(0)
GEN = torch.Generator().manual_seed(20240601)
F64 = torch.float64
DTYPE_NAME = {torch.float32: "float32", torch.float64: "float64", torch.int64: "int64",
              torch.bool: "bool"}
DTYPE_OF = {v: k for k, v in DTYPE_NAME.items()}

# Ops whose double backward is checked (gradgradcheck): elementwise, linalg, reductions.
UNARY = ["neg", "abs", "exp", "log", "log1p", "sqrt", "rsqrt", "reciprocal", "square", "sin",
         "cos", "erf", "sign", "pow", "clamp", "sigmoid", "tanh", "relu", "leaky_relu", "elu",
         "gelu", "silu", "softplus"]
BINARY = ["add", "sub", "mul", "div", "maximum", "minimum", "where", "masked_fill", "op_neg",
          "op_add", "op_sub", "op_mul", "op_div", "op_rsub_scalar", "op_rdiv_scalar",
          "op_mul_scalar"]
REDUCE = ["sum", "mean", "prod", "max", "min", "amax", "amin", "var", "std", "norm",
          "logsumexp", "softmax", "log_softmax"]
LINALG = ["matmul", "mm", "bmm", "outer"]
GRADGRAD_OPS = set(UNARY + BINARY + REDUCE + LINALG)


# ---- input generators (float64, rounded to 3 decimals so JSON holds them exactly) -------------
def _round(t):
    return torch.round(t * 1000) / 1000


def rnd(*shape, lo=-2.0, hi=2.0):
    return _round(torch.rand(shape, generator=GEN, dtype=F64) * (hi - lo) + lo)


def pos(*shape, lo=0.5, hi=2.0):
    return rnd(*shape, lo=lo, hi=hi)


def away(*shape, margin=0.2, hi=2.0):
    """|x| in [margin, hi], random sign: no kink at 0 (abs, relu, sign, norm p=1)."""
    mag = rnd(*shape, lo=margin, hi=hi)
    sgn = torch.where(torch.rand(shape, generator=GEN) < 0.5, -1.0, 1.0).to(F64)
    return mag * sgn


def distinct(*shape, step=0.137):
    """Distinct values (spacing >= step): no ties for max/min/argmax/sort-like ops."""
    n = math.prod(shape)
    perm = torch.randperm(n, generator=GEN).to(F64)
    return _round((perm - n / 2) * step + 0.011).reshape(shape)


def avoid(t, points, margin=0.05):
    """Moves values within margin of a kink point away from it."""
    for p in points:
        near = (t - p).abs() < margin
        t = torch.where(near, t + 2 * margin, t)
    return _round(t)


def ints(*shape, lo=-5, hi=5):
    return torch.randint(lo, hi, shape, generator=GEN, dtype=torch.int64)


def bools(*shape):
    return torch.rand(shape, generator=GEN) < 0.5


def f32(t):
    return t.to(torch.float32)


def const(values, dtype=F64):
    return torch.tensor(values, dtype=dtype)


# ---- torch reference for each op (mirrors tests/op_table.h) ------------------------------------
def _dims(a):
    d = a.get("dims", [])
    return d if d else None


def _p(a):
    p = a.get("p", 2.0)
    return math.inf if p == "inf" else p


def _reduce(fn, x, a):
    dims = _dims(a)
    kd = a.get("keepdim", False)
    if dims is None:
        return fn(x, dim=list(range(x.dim())), keepdim=kd) if kd else fn(x)
    return fn(x, dim=dims, keepdim=kd)


def _var(x, a, f):
    dims = _dims(a)
    unb = a.get("unbiased", True)
    kd = a.get("keepdim", False)
    if dims is None:
        dims = list(range(x.dim()))
    return f(x, dim=dims, unbiased=unb, keepdim=kd)


def _prod(x, a):
    # torch.prod takes one dim: reduce the dims one at a time (keepdim), then drop them.
    dims = _dims(a)
    kd = a.get("keepdim", False)
    if dims is None:
        dims = list(range(x.dim()))
    if x.dim() == 0:
        return torch.prod(x)
    wd = sorted({d % x.dim() for d in dims}, reverse=True)
    y = x
    for d in wd:
        y = torch.prod(y, d, keepdim=True)
    if not kd:
        y = y.reshape([s for i, s in enumerate(x.shape) if i not in wd])
    return y


def _slice(x, a):
    idx = [slice(None)] * x.dim()
    idx[a["dim"]] = slice(a["start"], a["end"], a.get("step", 1))
    return x[tuple(idx)]


def torch_op(op, x, a):
    """x: list of input tensors; a: attrs. Returns a tensor or a list of tensors."""
    if op in ("neg", "abs", "exp", "log", "log1p", "sqrt", "rsqrt", "reciprocal", "square", "sin",
              "cos", "erf", "sign", "sigmoid", "tanh", "relu", "logical_not"):
        return getattr(torch, op)(x[0])
    if op == "silu":
        return F.silu(x[0])
    if op == "pow":
        form = a.get("form", "tensor_scalar")
        if form == "tensor_scalar":
            return torch.pow(x[0], a["exponent"])
        if form == "tensor_tensor":
            return torch.pow(x[0], x[1])
        return torch.pow(a["base"], x[0])
    if op == "clamp":
        return torch.clamp(x[0], a.get("min"), a.get("max"))
    if op == "leaky_relu":
        return F.leaky_relu(x[0], a.get("negative_slope", 0.01))
    if op == "elu":
        return F.elu(x[0], a.get("alpha", 1.0))
    if op == "gelu":
        return F.gelu(x[0], approximate=a.get("approximate", "none"))
    if op == "softplus":
        return F.softplus(x[0], a.get("beta", 1.0), a.get("threshold", 20.0))
    if op in ("add", "sub"):
        f = getattr(torch, op)
        if "other" in a:
            return f(x[0], a["other"])
        return f(x[0], x[1], alpha=a.get("alpha", 1))
    if op in ("mul", "div", "eq", "ne", "lt", "le", "gt", "ge"):
        f = getattr(torch, op)
        return f(x[0], a["other"]) if "other" in a else f(x[0], x[1])
    if op in ("maximum", "minimum", "logical_and", "logical_or", "logical_xor"):
        return getattr(torch, op)(x[0], x[1])
    if op == "op_neg":
        return -x[0]
    if op == "op_add":
        return x[0] + x[1]
    if op == "op_sub":
        return x[0] - x[1]
    if op == "op_mul":
        return x[0] * x[1]
    if op == "op_div":
        return x[0] / x[1]
    if op == "op_mul_scalar":
        return x[0] * a["other"]
    if op == "op_rsub_scalar":
        return a["other"] - x[0]
    if op == "op_rdiv_scalar":
        return a["other"] / x[0]
    if op == "op_lt":
        return x[0] < x[1]
    if op == "where":
        if "a" in a:
            return torch.where(x[0], torch.tensor(a["a"], dtype=x[1].dtype), x[1])
        if "b" in a:
            return torch.where(x[0], x[1], torch.tensor(a["b"], dtype=x[1].dtype))
        return torch.where(x[0], x[1], x[2])
    if op == "masked_fill":
        return torch.masked_fill(x[0], x[1], a["value"])
    # reductions
    if op in ("sum", "mean", "prod"):
        if op == "prod":
            return _prod(x[0], a)
        return _reduce(getattr(torch, op), x[0], a)
    if op in ("max", "min"):
        if "dim" in a:
            r = getattr(torch, op)(x[0], a["dim"], keepdim=a.get("keepdim", False))
            return [r.values, r.indices]
        return getattr(torch, op)(x[0])
    if op in ("amax", "amin"):
        dims = _dims(a)
        return getattr(torch, op)(x[0], dim=dims if dims else [], keepdim=a.get("keepdim", False))
    if op in ("argmax", "argmin"):
        if "dim" in a:
            return getattr(torch, op)(x[0], a["dim"], keepdim=a.get("keepdim", False))
        return getattr(torch, op)(x[0])
    if op == "var":
        return _var(x[0], a, torch.var)
    if op == "std":
        return _var(x[0], a, torch.std)
    if op == "norm":
        return torch.linalg.vector_norm(x[0], ord=_p(a), dim=_dims(a),
                                        keepdim=a.get("keepdim", False))
    if op == "logsumexp":
        return torch.logsumexp(x[0], a["dims"], keepdim=a.get("keepdim", False))
    if op in ("softmax", "log_softmax"):
        return getattr(torch, op)(x[0], a["dim"])
    # linear algebra
    if op in ("matmul", "mm", "bmm", "outer"):
        return getattr(torch, op)(x[0], x[1])
    # shape and indexing
    if op == "cat":
        return torch.cat(x, a.get("dim", 0))
    if op == "stack":
        return torch.stack(x, a.get("dim", 0))
    if op == "split":
        s = a["sizes"] if "sizes" in a else a["split_size"]
        return list(torch.split(x[0], s, a.get("dim", 0)))
    if op == "chunk":
        return list(torch.chunk(x[0], a["chunks"], a.get("dim", 0)))
    if op == "index_select":
        return torch.index_select(x[0], a["dim"], x[1])
    if op == "gather":
        return torch.gather(x[0], a["dim"], x[1])
    if op == "scatter_add":
        return torch.scatter_add(x[0], a["dim"], x[1], x[2])
    if op == "embedding":
        pi = a.get("padding_idx", -1)
        return F.embedding(x[1], x[0], padding_idx=None if pi < 0 else pi)
    if op == "one_hot":
        return F.one_hot(x[0], a.get("num_classes", -1))
    if op == "pad":
        return F.pad(x[0], a["pads"], value=a.get("value", 0.0))
    if op == "repeat":
        return x[0].repeat(a["repeats"])
    if op == "flip":
        return torch.flip(x[0], a["dims"])
    if op in ("tril", "triu"):
        return getattr(torch, op)(x[0], a.get("diagonal", 0))
    # Tensor view methods
    if op in ("view", "reshape", "expand"):
        return getattr(x[0], op)(a["shape"])
    if op == "permute":
        return x[0].permute(a["dims"])
    if op == "transpose":
        return x[0].transpose(a["dim0"], a["dim1"])
    if op == "t":
        return x[0].t()
    if op == "narrow":
        return x[0].narrow(a["dim"], a["start"], a["length"])
    if op == "slice":
        return _slice(x[0], a)
    if op == "select":
        return x[0].select(a["dim"], a["index"])
    if op == "squeeze":
        return x[0].squeeze(a["dim"]) if "dim" in a else x[0].squeeze()
    if op == "unsqueeze":
        return x[0].unsqueeze(a["dim"])
    if op == "flatten":
        return x[0].flatten(a.get("start_dim", 0), a.get("end_dim", -1))
    if op == "contiguous":
        return x[0].contiguous()
    if op == "clone":
        return x[0].clone()
    if op == "to":
        return x[0].to(DTYPE_OF[a["dtype"]])
    raise KeyError(op)


# ---- serialisation ------------------------------------------------------------------------------
def _num(v, dtype, exact):
    if dtype == torch.bool:
        return bool(v)
    if dtype == torch.int64:
        return int(v)
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if dtype == torch.float32:
        return float("%.9g" % v)  # round-trips float32
    return v if exact else float("%.13g" % v)


def enc(t, exact=False, requires_grad=None):
    t = t.detach()
    d = {"dtype": DTYPE_NAME[t.dtype], "shape": list(t.shape),
         "data": [_num(v, t.dtype, exact) for v in t.reshape(-1).tolist()]}
    if requires_grad is not None:
        d["requires_grad"] = requires_grad
    return d


CASES = []


def case(name, op, inputs, attrs=None, grad=None, gradcheck=True):
    """inputs: tensors; floating ones require grad unless `grad` (list of bools) says otherwise."""
    attrs = attrs or {}
    if grad is None:
        grad = [t.is_floating_point() for t in inputs]
    ins = [t.detach().clone().requires_grad_(g) for t, g in zip(inputs, grad)]
    out = torch_op(op, ins, attrs)
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    gouts = []
    for o in outs:
        if o.requires_grad:
            gouts.append(f32(rnd(*o.shape)).to(o.dtype) if o.dtype == torch.float32
                         else rnd(*o.shape).to(o.dtype))
        else:
            gouts.append(None)
    grads = [None] * len(ins)
    diff_in = [i for i, t in enumerate(ins) if t.requires_grad]
    live = [i for i, g in enumerate(gouts) if g is not None]
    if diff_in and live:
        gs = torch.autograd.grad([outs[i] for i in live], [ins[i] for i in diff_in],
                                 [gouts[i] for i in live], allow_unused=True)
        for i, g in zip(diff_in, gs):
            grads[i] = g
    finite = all(torch.isfinite(o).all() for o in outs if o.is_floating_point())
    c = {
        "name": name, "op": op, "attrs": attrs,
        "inputs": [enc(t, exact=True, requires_grad=g) for t, g in zip(ins, grad)],
        "outputs": [enc(o) for o in outs],
        "grad_outputs": [None if g is None else enc(g, exact=True) for g in gouts],
        "grads": [None if g is None else enc(g) for g in grads],
        "gradcheck": bool(gradcheck and finite and diff_in and live),
        "gradgrad": op in GRADGRAD_OPS,
    }
    assert name not in {x["name"] for x in CASES}, name
    CASES.append(c)


def build():
    # ---- unary ----
    case("neg/basic", "neg", [rnd(3, 4)])
    case("neg/int64", "neg", [ints(5)])
    case("neg/0d", "neg", [rnd()])
    case("abs/basic", "abs", [away(3, 4)])
    case("abs/int64", "abs", [ints(6)])
    case("exp/basic", "exp", [rnd(3, 4)])
    case("exp/float32", "exp", [f32(rnd(2, 3))])
    case("exp/int64_promotes", "exp", [ints(4)])
    case("exp/zero_size", "exp", [rnd(0, 3)])
    case("log/basic", "log", [pos(3, 4)])
    case("log/nonfinite", "log", [const([0.0, -1.0, math.inf, 1.0])], grad=[False])
    case("log1p/basic", "log1p", [rnd(3, 4, lo=-0.5)])
    case("sqrt/basic", "sqrt", [pos(3, 4)])
    case("sqrt/negative_nan", "sqrt", [const([-1.0, 4.0])], grad=[False])
    case("rsqrt/basic", "rsqrt", [pos(3, 4)])
    case("reciprocal/basic", "reciprocal", [away(3, 4, margin=0.5)])
    case("square/basic", "square", [rnd(3, 4)])
    case("square/int64", "square", [ints(5)])
    case("sin/basic", "sin", [rnd(3, 4)])
    case("cos/basic", "cos", [rnd(3, 4)])
    case("erf/basic", "erf", [rnd(3, 4)])
    case("sign/basic", "sign", [away(3, 4)])
    case("sign/int64_zero", "sign", [const([-3, 0, 2], torch.int64)])
    case("pow/float_exponent", "pow", [pos(3, 4)], {"exponent": 2.5})
    case("pow/int_exponent", "pow", [rnd(3, 4)], {"exponent": 3})
    case("pow/negative_exponent", "pow", [pos(3, 4)], {"exponent": -1.5})
    case("pow/zero_exponent", "pow", [rnd(2, 3)], {"exponent": 0})
    case("pow/int64", "pow", [ints(5)], {"exponent": 2})
    case("pow/float32", "pow", [f32(pos(4))], {"exponent": 2.5})
    case("pow/tensor_broadcast", "pow", [pos(3, 4), rnd(4)], {"form": "tensor_tensor"})
    case("pow/scalar_base", "pow", [rnd(3, 4)], {"form": "scalar_tensor", "base": 2.0})
    case("clamp/both", "clamp", [avoid(rnd(3, 4), [-0.5, 0.5])], {"min": -0.5, "max": 0.5})
    case("clamp/min_only", "clamp", [avoid(rnd(3, 4), [0.25])], {"min": 0.25})
    case("clamp/max_only", "clamp", [avoid(rnd(3, 4), [-0.3])], {"max": -0.3})
    case("clamp/int64", "clamp", [ints(6)], {"min": -2, "max": 3})
    case("sigmoid/basic", "sigmoid", [rnd(3, 4, lo=-4, hi=4)])
    case("tanh/basic", "tanh", [rnd(3, 4)])
    case("relu/basic", "relu", [away(3, 4)])
    case("relu/int64", "relu", [ints(6)])
    case("leaky_relu/default", "leaky_relu", [away(3, 4)])
    case("leaky_relu/slope", "leaky_relu", [away(3, 4)], {"negative_slope": 0.2})
    case("elu/default", "elu", [away(3, 4)])
    case("elu/alpha", "elu", [away(3, 4)], {"alpha": 0.5})
    case("gelu/none", "gelu", [rnd(3, 4, lo=-3, hi=3)], {"approximate": "none"})
    case("gelu/tanh", "gelu", [rnd(3, 4, lo=-3, hi=3)], {"approximate": "tanh"})
    case("silu/basic", "silu", [rnd(3, 4, lo=-3, hi=3)])
    case("softplus/default", "softplus", [rnd(3, 4, lo=-3, hi=3)])
    case("softplus/beta_threshold", "softplus", [avoid(rnd(3, 4), [0.5])],
         {"beta": 2.0, "threshold": 1.0})

    # ---- binary ----
    case("add/same_shape", "add", [rnd(3, 4), rnd(3, 4)])
    case("add/broadcast", "add", [rnd(3, 4), rnd(4)])
    case("add/broadcast_both", "add", [rnd(2, 1, 4), rnd(3, 1)])
    case("add/0d_and_1d", "add", [rnd(), rnd(3)])
    case("add/alpha", "add", [rnd(3, 4), rnd(3, 4)], {"alpha": 2.5})
    case("add/scalar", "add", [rnd(3, 4)], {"other": 1.5})
    case("add/int64_float32", "add", [ints(3), f32(rnd(3))])
    case("add/int64_int_scalar", "add", [ints(4)], {"other": 2})
    case("add/int64_float_scalar", "add", [ints(4)], {"other": 0.5})
    case("add/float32_scalar", "add", [f32(rnd(4))], {"other": 2.5})
    case("add/0d_float64_with_float32", "add", [rnd(), f32(rnd(3))])
    case("add/float32_float64", "add", [f32(rnd(3)), rnd(3)])
    case("add/bool", "add", [bools(5), bools(5)])
    case("add/zero_size", "add", [rnd(0, 4), rnd(4)])
    case("sub/same_shape", "sub", [rnd(3, 4), rnd(3, 4)])
    case("sub/broadcast", "sub", [rnd(2, 1, 4), rnd(3, 1)])
    case("sub/alpha", "sub", [rnd(3, 4), rnd(4)], {"alpha": -0.5})
    case("sub/scalar", "sub", [rnd(3, 4)], {"other": 0.75})
    case("sub/int64", "sub", [ints(4), ints(4)])
    case("mul/same_shape", "mul", [rnd(3, 4), rnd(3, 4)])
    case("mul/broadcast", "mul", [rnd(2, 1, 4), rnd(3, 1)])
    case("mul/0d", "mul", [rnd(), rnd(3)])
    case("mul/scalar", "mul", [rnd(3, 4)], {"other": -1.25})
    case("mul/float32_scalar_stays_float32", "mul", [f32(rnd(3, 4))], {"other": 2.5})
    case("mul/int64_float_scalar", "mul", [ints(4)], {"other": 1.5})
    case("mul/int64", "mul", [ints(4), ints(4)])
    case("div/same_shape", "div", [rnd(3, 4), away(3, 4, margin=0.5)])
    case("div/broadcast", "div", [rnd(2, 1, 4), away(3, 1, margin=0.5)])
    case("div/scalar", "div", [rnd(3, 4)], {"other": 4.0})
    case("div/int64_true_division", "div", [ints(4), const([3, -2, 4, 7], torch.int64)])
    case("div/int64_scalar", "div", [ints(4)], {"other": 2})
    case("div/by_zero", "div", [const([1.0, -1.0, 0.0]), const([0.0, 0.0, 0.0])],
         grad=[False, False])
    case("maximum/same_shape", "maximum", [distinct(3, 4), distinct(3, 4, step=0.151)])
    case("maximum/broadcast", "maximum", [distinct(3, 4), distinct(4, step=0.29)])
    case("maximum/ties", "maximum", [const([1.0, 2.0, 3.0]), const([1.0, 0.0, 3.0])],
         gradcheck=False)
    case("minimum/same_shape", "minimum", [distinct(3, 4), distinct(3, 4, step=0.151)])
    case("minimum/broadcast", "minimum", [distinct(2, 3), distinct(2, 1, step=0.29)])
    case("minimum/int64", "minimum", [ints(5), ints(5)])
    # operators (thin wrappers, a few rows)
    case("op_neg/basic", "op_neg", [rnd(3, 4)])
    case("op_add/broadcast", "op_add", [rnd(3, 4), rnd(4)])
    case("op_sub/broadcast", "op_sub", [rnd(3, 4), rnd(3, 1)])
    case("op_mul/broadcast", "op_mul", [rnd(3, 4), rnd(4)])
    case("op_div/broadcast", "op_div", [rnd(3, 4), away(4, margin=0.5)])
    case("op_mul_scalar/float32", "op_mul_scalar", [f32(rnd(3))], {"other": 0.5})
    case("op_rsub_scalar/basic", "op_rsub_scalar", [rnd(3, 4)], {"other": 1.0})
    case("op_rsub_scalar/int64", "op_rsub_scalar", [ints(4)], {"other": 1})
    case("op_rdiv_scalar/basic", "op_rdiv_scalar", [away(3, 4, margin=0.5)], {"other": 2.0})
    case("op_lt/broadcast", "op_lt", [ints(3, 4).to(F64), ints(4).to(F64)], grad=[False, False])

    # ---- comparisons and logic ----
    for op in ("eq", "ne", "lt", "le", "gt", "ge"):
        case(f"{op}/broadcast", op, [ints(3, 4, lo=-2, hi=2).to(F64), ints(4, lo=-2, hi=2).to(F64)],
             grad=[False, False])
        case(f"{op}/scalar", op, [ints(3, 4, lo=-2, hi=2).to(F64)], {"other": 0.0}, grad=[False])
    case("eq/int64_float32", "eq", [const([1, 2, 3], torch.int64), f32(const([1.0, 2.5, 3.0]))],
         grad=[False, False])
    case("lt/int64_float_scalar", "lt", [const([0, 1, 2], torch.int64)], {"other": 1.5})
    for op in ("logical_and", "logical_or", "logical_xor"):
        case(f"{op}/bool", op, [bools(3, 4), bools(4)])
        case(f"{op}/numbers", op, [const([0.0, 1.5, 0.0, -2.0]), const([0, 0, 3, 4], torch.int64)],
             grad=[False, False])
    case("logical_not/bool", "logical_not", [bools(3, 4)])
    case("logical_not/float", "logical_not", [const([0.0, 1.5, -2.0])], grad=[False])
    case("where/tensors", "where", [bools(3, 4), rnd(3, 4), rnd(4)], grad=[False, True, True])
    case("where/broadcast_cond", "where", [bools(3, 1), rnd(3, 4), rnd(3, 4)],
         grad=[False, True, True])
    case("where/scalar_b", "where", [bools(3, 4), rnd(3, 4)], {"b": 0.5}, grad=[False, True])
    case("where/scalar_a", "where", [bools(3, 4), rnd(3, 4)], {"a": -1.0}, grad=[False, True])
    case("masked_fill/broadcast_mask", "masked_fill", [rnd(3, 4), bools(4)], {"value": 0.5})
    case("masked_fill/int64", "masked_fill", [ints(3, 4), bools(3, 4)], {"value": 7})

    # ---- reductions ----
    case("sum/all", "sum", [rnd(3, 4)])
    case("sum/dim", "sum", [rnd(3, 4)], {"dims": [1]})
    case("sum/multi_dim_keepdim", "sum", [rnd(2, 3, 4)], {"dims": [0, 2], "keepdim": True})
    case("sum/negative_dim", "sum", [rnd(2, 3, 4)], {"dims": [-1]})
    case("sum/int64", "sum", [ints(3, 4)], {"dims": [0]})
    case("sum/bool", "sum", [bools(3, 4)])
    case("sum/0d", "sum", [rnd()])
    case("sum/zero_size", "sum", [rnd(0, 3)], {"dims": [0]})
    case("mean/all", "mean", [rnd(3, 4)])
    case("mean/dim", "mean", [rnd(3, 4)], {"dims": [0]})
    case("mean/multi_dim_keepdim", "mean", [rnd(2, 3, 4)], {"dims": [0, -1], "keepdim": True})
    case("mean/negative_dim", "mean", [rnd(2, 3, 4)], {"dims": [-2]})
    case("mean/float32", "mean", [f32(rnd(3, 4))], {"dims": [1]})
    case("mean/zero_size", "mean", [rnd(0, 3)], {"dims": [0]})
    case("prod/all", "prod", [away(2, 3, margin=0.5, hi=1.5)])
    case("prod/dim", "prod", [away(3, 4, margin=0.5, hi=1.5)], {"dims": [1]})
    case("prod/keepdim", "prod", [away(2, 3, 4, margin=0.5, hi=1.5)],
         {"dims": [0], "keepdim": True})
    case("prod/with_zero", "prod", [const([[1.5, 0.0, 2.0], [0.5, -1.0, 3.0]])], {"dims": [1]})
    case("prod/int64", "prod", [ints(2, 3, lo=1, hi=4)], {"dims": [1]})
    case("max/all", "max", [distinct(3, 4)])
    case("max/all_ties", "max", [const([[1.0, 3.0], [3.0, 2.0]])], gradcheck=False)
    case("max/dim", "max", [distinct(3, 4)], {"dim": 1})
    case("max/dim_keepdim", "max", [distinct(2, 3, 4)], {"dim": 0, "keepdim": True})
    case("max/negative_dim", "max", [distinct(2, 3, 4)], {"dim": -1})
    case("max/int64", "max", [const([[3, 1], [7, 2]], torch.int64)], {"dim": 0})
    case("max/zero_size_kept", "max", [rnd(0, 3)], {"dim": 1})
    case("min/all", "min", [distinct(3, 4)])
    case("min/dim", "min", [distinct(3, 4)], {"dim": 0})
    case("min/dim_keepdim", "min", [distinct(2, 3, 4)], {"dim": -2, "keepdim": True})
    case("amax/all", "amax", [distinct(3, 4)])
    case("amax/dim", "amax", [distinct(3, 4)], {"dims": [1]})
    case("amax/multi_dim_keepdim", "amax", [distinct(2, 3, 4)], {"dims": [0, 2], "keepdim": True})
    case("amax/ties", "amax", [const([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])], {"dims": [1]},
         gradcheck=False)
    case("amin/all", "amin", [distinct(3, 4)])
    case("amin/negative_dim", "amin", [distinct(2, 3, 4)], {"dims": [-1]})
    case("amin/multi_dim_keepdim", "amin", [distinct(2, 3, 4)], {"dims": [0, 1], "keepdim": True})
    case("argmax/all", "argmax", [distinct(3, 4)], grad=[False])
    case("argmax/dim", "argmax", [distinct(3, 4)], {"dim": 1}, grad=[False])
    case("argmax/dim_keepdim", "argmax", [distinct(2, 3, 4)], {"dim": -1, "keepdim": True},
         grad=[False])
    case("argmax/int64", "argmax", [const([[3, 9], [7, 2]], torch.int64)], {"dim": 0})
    case("argmin/all", "argmin", [distinct(3, 4)], grad=[False])
    case("argmin/dim", "argmin", [distinct(3, 4)], {"dim": 0}, grad=[False])
    case("argmin/dim_keepdim", "argmin", [distinct(2, 3, 4)], {"dim": 1, "keepdim": True},
         grad=[False])
    case("var/all", "var", [rnd(3, 4)])
    case("var/dim_biased", "var", [rnd(3, 4)], {"dims": [1], "unbiased": False})
    case("var/multi_dim_keepdim", "var", [rnd(2, 3, 4)], {"dims": [0, 2], "keepdim": True})
    case("var/negative_dim", "var", [rnd(2, 3, 4)], {"dims": [-2], "unbiased": True})
    case("std/all", "std", [rnd(3, 4)])
    case("std/all_biased", "std", [rnd(3, 4)], {"unbiased": False})
    case("std/dim_keepdim", "std", [rnd(3, 4)], {"dims": [0], "keepdim": True})
    case("std/multi_dim", "std", [rnd(2, 3, 4)], {"dims": [-1, 0], "unbiased": False})
    case("norm/p2_all", "norm", [rnd(3, 4)])
    case("norm/p2_dim_keepdim", "norm", [rnd(2, 3, 4)], {"p": 2.0, "dims": [1], "keepdim": True})
    case("norm/p1_dim", "norm", [away(3, 4)], {"p": 1.0, "dims": [1]})
    case("norm/p3_multi_dim", "norm", [away(2, 3, 4)], {"p": 3.0, "dims": [0, 2]})
    case("norm/pinf_all", "norm", [distinct(3, 4)], {"p": "inf"})
    case("norm/pinf_dim", "norm", [distinct(3, 4)], {"p": "inf", "dims": [-1]})
    case("logsumexp/dim", "logsumexp", [rnd(3, 4)], {"dims": [1]})
    case("logsumexp/multi_dim_keepdim", "logsumexp", [rnd(2, 3, 4)],
         {"dims": [0, 2], "keepdim": True})
    case("logsumexp/large_values", "logsumexp", [rnd(2, 3, lo=500, hi=510)], {"dims": [-1]})
    case("softmax/dim1", "softmax", [rnd(3, 4)], {"dim": 1})
    case("softmax/dim0", "softmax", [rnd(3, 4)], {"dim": 0})
    case("softmax/negative_dim_3d", "softmax", [rnd(2, 3, 4)], {"dim": -1})
    case("softmax/large_values", "softmax", [rnd(2, 3, lo=500, hi=510)], {"dim": 1})
    case("softmax/zero_size", "softmax", [rnd(0, 3)], {"dim": 1})
    case("log_softmax/dim1", "log_softmax", [rnd(3, 4)], {"dim": 1})
    case("log_softmax/dim0_3d", "log_softmax", [rnd(2, 3, 4)], {"dim": 0})
    case("log_softmax/large_values", "log_softmax", [rnd(2, 3, lo=500, hi=510)], {"dim": -1})

    # ---- linear algebra ----
    case("matmul/1d_1d", "matmul", [rnd(3), rnd(3)])
    case("matmul/1d_2d", "matmul", [rnd(3), rnd(3, 4)])
    case("matmul/2d_1d", "matmul", [rnd(3, 4), rnd(4)])
    case("matmul/2d_2d", "matmul", [rnd(3, 4), rnd(4, 2)])
    case("matmul/3d_3d", "matmul", [rnd(2, 3, 4), rnd(2, 4, 2)])
    case("matmul/3d_2d", "matmul", [rnd(2, 3, 4), rnd(4, 2)])
    case("matmul/2d_3d", "matmul", [rnd(3, 4), rnd(2, 4, 2)])
    case("matmul/3d_1d", "matmul", [rnd(2, 3, 4), rnd(4)])
    case("matmul/1d_3d", "matmul", [rnd(3), rnd(2, 3, 4)])
    case("matmul/broadcast_batch", "matmul", [rnd(2, 1, 3, 4), rnd(3, 4, 2)])
    case("matmul/float32", "matmul", [f32(rnd(3, 4)), f32(rnd(4, 2))])
    case("matmul/zero_size", "matmul", [rnd(0, 3), rnd(3, 2)])
    case("matmul/zero_inner", "matmul", [rnd(2, 0), rnd(0, 3)])
    case("mm/basic", "mm", [rnd(3, 4), rnd(4, 2)])
    case("mm/float32", "mm", [f32(rnd(2, 3)), f32(rnd(3, 2))])
    case("bmm/basic", "bmm", [rnd(2, 3, 4), rnd(2, 4, 2)])
    case("outer/basic", "outer", [rnd(3), rnd(4)])

    # ---- shape and indexing ----
    case("cat/dim0", "cat", [rnd(2, 3), rnd(1, 3)], {"dim": 0})
    case("cat/dim1_three", "cat", [rnd(2, 3), rnd(2, 1), rnd(2, 2)], {"dim": 1})
    case("cat/negative_dim", "cat", [rnd(2, 2, 3), rnd(2, 2, 1)], {"dim": -1})
    case("cat/mixed_float32_float64", "cat", [f32(rnd(2, 3)), rnd(1, 3)], {"dim": 0})
    case("cat/mixed_int64_float32", "cat", [ints(1, 3), f32(rnd(2, 3))], {"dim": 0})
    case("cat/zero_size", "cat", [rnd(0, 3), rnd(2, 3)], {"dim": 0})
    case("stack/dim0", "stack", [rnd(2, 3), rnd(2, 3)], {"dim": 0})
    case("stack/dim1", "stack", [rnd(2, 3), rnd(2, 3), rnd(2, 3)], {"dim": 1})
    case("stack/negative_dim", "stack", [rnd(3), rnd(3)], {"dim": -1})
    case("split/size", "split", [rnd(5, 3)], {"split_size": 2, "dim": 0})
    case("split/sizes", "split", [rnd(2, 4)], {"sizes": [1, 3], "dim": 1})
    case("split/negative_dim", "split", [rnd(2, 3)], {"split_size": 2, "dim": -1})
    case("chunk/uneven", "chunk", [rnd(5, 2)], {"chunks": 3, "dim": 0})
    case("chunk/dim1", "chunk", [rnd(2, 4)], {"chunks": 2, "dim": 1})
    case("index_select/dim0_repeats", "index_select",
         [rnd(3, 4), const([2, 0, 2], torch.int64)], {"dim": 0})
    case("index_select/dim1", "index_select", [rnd(3, 4), const([3, 1], torch.int64)], {"dim": 1})
    case("gather/dim1", "gather", [rnd(3, 4), const([[0, 3], [1, 1], [2, 0]], torch.int64)],
         {"dim": 1})
    case("gather/dim0", "gather", [rnd(3, 4), const([[2, 0, 1, 2]], torch.int64)], {"dim": 0})
    case("scatter_add/dim1_duplicates", "scatter_add",
         [rnd(3, 4), const([[0, 0], [3, 1], [2, 2]], torch.int64), rnd(3, 2)], {"dim": 1})
    case("scatter_add/dim0", "scatter_add",
         [rnd(3, 4), const([[2, 0, 1, 2]], torch.int64), rnd(1, 4)], {"dim": 0})
    case("embedding/basic", "embedding", [rnd(5, 3), const([[0, 4, 2], [2, 2, 1]], torch.int64)])
    # The padding row gets no gradient by design (not the true derivative): no gradcheck.
    case("embedding/padding_idx", "embedding",
         [rnd(5, 3), const([[0, 1, 2], [1, 3, 1]], torch.int64)], {"padding_idx": 1},
         gradcheck=False)
    case("one_hot/infer", "one_hot", [const([0, 2, 1, 3], torch.int64)])
    case("one_hot/num_classes", "one_hot", [const([[0, 2], [1, 1]], torch.int64)],
         {"num_classes": 4})
    case("pad/last_dim", "pad", [rnd(3, 4)], {"pads": [1, 2]})
    case("pad/two_dims_value", "pad", [rnd(3, 4)], {"pads": [1, 1, 2, 0], "value": 0.5})
    case("pad/negative_crops", "pad", [rnd(3, 4)], {"pads": [-1, 1, 0, -1]})
    case("pad/3d_last_only", "pad", [rnd(2, 3, 2)], {"pads": [0, 1]})
    case("repeat/2d", "repeat", [rnd(2, 3)], {"repeats": [2, 1]})
    case("repeat/extra_dim", "repeat", [rnd(2, 3)], {"repeats": [2, 1, 2]})
    case("flip/dim0", "flip", [rnd(3, 4)], {"dims": [0]})
    case("flip/both", "flip", [rnd(3, 4)], {"dims": [0, 1]})
    case("flip/negative_dim_3d", "flip", [rnd(2, 3, 4)], {"dims": [-1]})
    case("tril/basic", "tril", [rnd(3, 4)])
    case("tril/diag_pos", "tril", [rnd(3, 4)], {"diagonal": 1})
    case("tril/batched_neg", "tril", [rnd(2, 3, 3)], {"diagonal": -1})
    case("triu/basic", "triu", [rnd(3, 4)])
    case("triu/diag_neg", "triu", [rnd(4, 3)], {"diagonal": -1})
    case("triu/batched_pos", "triu", [rnd(2, 3, 4)], {"diagonal": 2})

    # ---- Tensor view methods ----
    case("view/2d", "view", [rnd(3, 4)], {"shape": [2, 6]})
    case("view/infer", "view", [rnd(2, 3, 4)], {"shape": [-1]})
    case("view/zero_size", "view", [rnd(0, 3)], {"shape": [3, 0]})
    case("reshape/infer", "reshape", [rnd(2, 3, 4)], {"shape": [4, -1]})
    case("reshape/to_0d", "reshape", [rnd(1, 1)], {"shape": []})
    case("permute/3d", "permute", [rnd(2, 3, 4)], {"dims": [2, 0, 1]})
    case("permute/negative", "permute", [rnd(2, 3)], {"dims": [-1, 0]})
    case("transpose/3d", "transpose", [rnd(2, 3, 4)], {"dim0": 0, "dim1": 2})
    case("transpose/negative", "transpose", [rnd(2, 3, 4)], {"dim0": -1, "dim1": 1})
    case("t/2d", "t", [rnd(3, 4)])
    case("t/1d", "t", [rnd(3)])
    case("narrow/dim1", "narrow", [rnd(3, 4)], {"dim": 1, "start": 1, "length": 2})
    case("narrow/negative_dim", "narrow", [rnd(2, 3, 4)], {"dim": -2, "start": 0, "length": 2})
    case("slice/step", "slice", [rnd(3, 5)], {"dim": 1, "start": 0, "end": 5, "step": 2})
    case("slice/negative_clamped", "slice", [rnd(6, 2)],
         {"dim": 0, "start": -4, "end": 100, "step": 3})
    case("slice/empty", "slice", [rnd(3, 4)], {"dim": 1, "start": 3, "end": 1, "step": 1})
    case("select/dim1", "select", [rnd(3, 4)], {"dim": 1, "index": -1})
    case("select/dim0", "select", [rnd(2, 3, 4)], {"dim": 0, "index": 1})
    case("expand/2d", "expand", [rnd(3, 1)], {"shape": [3, 4]})
    case("expand/new_dims", "expand", [rnd(3, 1)], {"shape": [2, -1, 4]})
    case("squeeze/all", "squeeze", [rnd(1, 3, 1, 2)])
    case("squeeze/dim", "squeeze", [rnd(3, 1, 2)], {"dim": 1})
    case("squeeze/dim_not_one", "squeeze", [rnd(3, 2)], {"dim": 0})
    case("unsqueeze/front", "unsqueeze", [rnd(3, 4)], {"dim": 0})
    case("unsqueeze/negative", "unsqueeze", [rnd(3, 4)], {"dim": -1})
    case("flatten/all", "flatten", [rnd(2, 3, 4)])
    case("flatten/range", "flatten", [rnd(2, 3, 4, 1)], {"start_dim": 1, "end_dim": 2})
    case("flatten/0d", "flatten", [rnd()])
    case("contiguous/basic", "contiguous", [rnd(3, 4)])
    case("clone/basic", "clone", [rnd(3, 4)])
    case("clone/int64", "clone", [ints(2, 3)])
    case("to/float64_to_float32", "to", [rnd(3, 4)], {"dtype": "float32"})
    case("to/float32_to_float64", "to", [f32(rnd(3, 4))], {"dtype": "float64"})
    case("to/float_to_int64", "to", [rnd(3, 4)], {"dtype": "int64"})
    case("to/int64_to_bool", "to", [const([0, 2, -1], torch.int64)], {"dtype": "bool"})


def main():
    build()
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "tests", "fixtures", "ops.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    lines = [json.dumps(c, separators=(",", ":")) for c in CASES]
    with open(path, "w") as f:
        f.write('{"generator":"scripts/gen_fixtures.py","torch":"%s","cases":[\n' %
                torch.__version__)
        f.write(",\n".join(lines))
        f.write("\n]}\n")
    print("%d cases, %d ops, %d bytes -> %s" % (
        len(CASES), len({c["op"] for c in CASES}), os.path.getsize(path), os.path.normpath(path)),
        file=sys.stderr)


if __name__ == "__main__":
    main()
