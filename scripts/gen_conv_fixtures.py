#!/usr/bin/python3
"""Writes tests/fixtures/conv.json: PyTorch golden values for linear, conv and pooling.

Run with Debian's PyTorch (1.13):  /usr/bin/python3 scripts/gen_conv_fixtures.py
Each case has float64 inputs, the op's arguments, its output, a fixed random grad_output and
the gradient with respect to every floating input. tests/test_conv.cpp reads the file; tests
never need torch.
"""
import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(1234)


def t2j(t):
    t = t.detach().to(torch.float64).contiguous()
    return {"shape": list(t.shape), "data": t.flatten().tolist()}


def rnd(*shape):
    return torch.randn(*shape, dtype=torch.float64)


CASES = []


def case(name, op, args, inputs):
    """inputs: dict name -> tensor (None for an absent bias). args: JSON-able kwargs."""
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items() if v is not None}
    call = {
        "linear": lambda: F.linear(leaves["x"], leaves["w"], leaves.get("b")),
        "conv1d": lambda: F.conv1d(leaves["x"], leaves["w"], leaves.get("b"), **args),
        "conv2d": lambda: F.conv2d(leaves["x"], leaves["w"], leaves.get("b"), **args),
        "conv_transpose2d": lambda: F.conv_transpose2d(
            leaves["x"], leaves["w"], leaves.get("b"), **args),
        "max_pool2d": lambda: F.max_pool2d(leaves["x"], **args),
        "avg_pool2d": lambda: F.avg_pool2d(leaves["x"], **args),
        "adaptive_avg_pool2d": lambda: F.adaptive_avg_pool2d(leaves["x"], **args),
    }[op]
    out = call()
    grad_out = rnd(*out.shape)
    out.backward(grad_out)
    CASES.append({
        "name": name,
        "op": op,
        "args": args,
        "inputs": {k: t2j(v) for k, v in leaves.items()},
        "out": t2j(out),
        "grad_out": t2j(grad_out),
        "grads": {k: t2j(v.grad) for k, v in leaves.items()},
    })


# ---- linear -------------------------------------------------------------------------------
case("linear_basic", "linear", {}, {"x": rnd(5, 4), "w": rnd(3, 4), "b": rnd(3)})
case("linear_3d_nobias", "linear", {}, {"x": rnd(2, 3, 4), "w": rnd(6, 4)})
case("linear_1d", "linear", {}, {"x": rnd(4), "w": rnd(3, 4), "b": rnd(3)})

# ---- conv1d -------------------------------------------------------------------------------
case("conv1d_stride_pad", "conv1d", {"stride": 2, "padding": 1},
     {"x": rnd(2, 3, 10), "w": rnd(4, 3, 3), "b": rnd(4)})
case("conv1d_groups_dilation", "conv1d", {"padding": 2, "dilation": 2, "groups": 2},
     {"x": rnd(2, 4, 12), "w": rnd(6, 2, 3)})
case("conv1d_unbatched", "conv1d", {}, {"x": rnd(3, 8), "w": rnd(2, 3, 2), "b": rnd(2)})

# ---- conv2d -------------------------------------------------------------------------------
case("conv2d_pad1", "conv2d", {"padding": [1, 1]},
     {"x": rnd(2, 3, 7, 6), "w": rnd(4, 3, 3, 3), "b": rnd(4)})
case("conv2d_stride_pad", "conv2d", {"stride": [2, 3], "padding": [1, 2]},
     {"x": rnd(2, 2, 9, 8), "w": rnd(3, 2, 3, 2), "b": rnd(3)})
case("conv2d_dilation_nobias", "conv2d", {"padding": [2, 1], "dilation": [2, 3]},
     {"x": rnd(1, 2, 10, 9), "w": rnd(2, 2, 3, 3)})
case("conv2d_groups", "conv2d", {"stride": [2, 2], "padding": [1, 1], "groups": 3},
     {"x": rnd(2, 6, 6, 5), "w": rnd(9, 2, 3, 3), "b": rnd(9)})
case("conv2d_depthwise", "conv2d", {"groups": 4},
     {"x": rnd(2, 4, 5, 5), "w": rnd(8, 1, 3, 3)})
case("conv2d_pointwise", "conv2d", {}, {"x": rnd(2, 5, 4, 4), "w": rnd(3, 5, 1, 1)})
case("conv2d_unbatched", "conv2d", {"padding": [1, 1]},
     {"x": rnd(3, 6, 6), "w": rnd(2, 3, 3, 3), "b": rnd(2)})
case("conv2d_full_kernel", "conv2d", {}, {"x": rnd(2, 1, 5, 5), "w": rnd(2, 1, 5, 5)})

# ---- conv_transpose2d ---------------------------------------------------------------------
case("conv_transpose2d_s2_p1_op1", "conv_transpose2d",
     {"stride": [2, 2], "padding": [1, 1], "output_padding": [1, 1]},
     {"x": rnd(2, 3, 4, 5), "w": rnd(3, 2, 3, 3), "b": rnd(2)})
case("conv_transpose2d_groups", "conv_transpose2d",
     {"stride": [2, 2], "padding": [1, 1], "output_padding": [1, 0], "groups": 2},
     {"x": rnd(2, 4, 3, 3), "w": rnd(4, 3, 3, 3), "b": rnd(6)})
case("conv_transpose2d_dilation", "conv_transpose2d",
     {"stride": [1, 2], "padding": [0, 1], "output_padding": [0, 1], "dilation": [2, 1]},
     {"x": rnd(1, 2, 4, 4), "w": rnd(2, 3, 2, 3)})
case("conv_transpose2d_outpad_lt_dilation", "conv_transpose2d",
     {"output_padding": [1, 1], "dilation": [2, 2]},
     {"x": rnd(1, 1, 3, 3), "w": rnd(1, 2, 3, 3), "b": rnd(2)})
case("conv_transpose2d_unbatched", "conv_transpose2d", {"stride": [2, 2]},
     {"x": rnd(2, 3, 3), "w": rnd(2, 2, 3, 3)})

# ---- pooling ------------------------------------------------------------------------------
case("max_pool2d_k2", "max_pool2d", {"kernel_size": [2, 2]}, {"x": rnd(2, 3, 8, 8)})
case("max_pool2d_ceil_pad", "max_pool2d",
     {"kernel_size": [3, 3], "stride": [2, 2], "padding": [1, 1], "ceil_mode": True},
     {"x": rnd(2, 2, 7, 9)})
case("max_pool2d_dilation", "max_pool2d",
     {"kernel_size": [3, 3], "stride": [2, 2], "padding": [1, 1], "dilation": [2, 2]},
     {"x": rnd(1, 2, 9, 9)})
case("max_pool2d_rect", "max_pool2d", {"kernel_size": [2, 3], "stride": [1, 2]},
     {"x": rnd(2, 2, 6, 7)})
case("max_pool2d_unbatched_ceil", "max_pool2d",
     {"kernel_size": [2, 2], "stride": [2, 2], "ceil_mode": True}, {"x": rnd(3, 5, 5)})
case("avg_pool2d_k2", "avg_pool2d", {"kernel_size": [2, 2]}, {"x": rnd(2, 3, 8, 8)})
case("avg_pool2d_ceil_pad", "avg_pool2d",
     {"kernel_size": [3, 3], "stride": [2, 2], "padding": [1, 1], "ceil_mode": True},
     {"x": rnd(2, 2, 7, 9)})
case("avg_pool2d_ceil_pad_exclude", "avg_pool2d",
     {"kernel_size": [3, 3], "stride": [2, 2], "padding": [1, 1], "ceil_mode": True,
      "count_include_pad": False},
     {"x": rnd(2, 2, 7, 9)})
case("avg_pool2d_rect_exclude", "avg_pool2d",
     {"kernel_size": [3, 2], "stride": [2, 1], "padding": [1, 1], "count_include_pad": False},
     {"x": rnd(1, 2, 6, 7)})
case("avg_pool2d_unbatched_ceil", "avg_pool2d",
     {"kernel_size": [2, 2], "ceil_mode": True}, {"x": rnd(3, 5, 6)})
case("adaptive_avg_pool2d_nondivisible", "adaptive_avg_pool2d", {"output_size": [3, 4]},
     {"x": rnd(2, 3, 7, 9)})
case("adaptive_avg_pool2d_upsample", "adaptive_avg_pool2d", {"output_size": [5, 7]},
     {"x": rnd(1, 2, 3, 5)})
case("adaptive_avg_pool2d_unbatched", "adaptive_avg_pool2d", {"output_size": [3, 3]},
     {"x": rnd(3, 10, 10)})
case("adaptive_avg_pool2d_global", "adaptive_avg_pool2d", {"output_size": [1, 1]},
     {"x": rnd(2, 3, 5, 5)})

out_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                        "conv.json")
os.makedirs(os.path.dirname(out_path), exist_ok=True)
with open(out_path, "w") as f:
    json.dump({"generator": "scripts/gen_conv_fixtures.py", "torch": torch.__version__,
               "cases": CASES}, f)
    f.write("\n")
print(f"wrote {len(CASES)} cases to {os.path.normpath(out_path)}")
