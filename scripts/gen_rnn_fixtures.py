#!/usr/bin/python3
"""Writes tests/fixtures/rnn.json: PyTorch golden values for LSTM and GRU layers.

Run with Debian's PyTorch (1.13):  /usr/bin/python3 scripts/gen_rnn_fixtures.py
Each case is a 2-layer bidirectional module in float64 with its state_dict (PyTorch names),
input, initial states, output, final states, and the gradients of the scalar
    loss = sum(output * w_out) + sum(h_n * w_h) [+ sum(c_n * w_c)]
(fixed random weights w_*, stored too) with respect to the input, the initial states and every
parameter. The "packed" cases run a padded batch with lengths through pack_padded_sequence
(enforce_sorted=False) and pad_packed_sequence. tests/test_rnn.cpp reads the file.
"""
import json
import os

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

torch.manual_seed(1234)
T, B, IN, H, L = 5, 3, 3, 4, 2


def t2j(t):
    t = t.detach().to(torch.float64).contiguous()
    return {"shape": list(t.shape), "data": t.flatten().tolist()}


def make_case(kind, lengths=None):
    cls = torch.nn.LSTM if kind == "lstm" else torch.nn.GRU
    m = cls(IN, H, num_layers=L, bidirectional=True).double()
    x = torch.randn(T, B, IN, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2 * L, B, H, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(2 * L, B, H, dtype=torch.float64, requires_grad=True)
    inp = x
    if lengths is not None:
        inp = pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=False)
    if kind == "lstm":
        out, (hn, cn) = m(inp, (h0, c0))
    else:
        out, hn = m(inp, h0)
        cn = None
    if lengths is not None:
        out, _ = pad_packed_sequence(out, total_length=T)
    w_out = torch.randn_like(out)
    w_h = torch.randn_like(hn)
    loss = (out * w_out).sum() + (hn * w_h).sum()
    case = {"kind": kind, "T": T, "B": B, "input_size": IN, "hidden_size": H, "num_layers": L,
            "bidirectional": True}
    leaves = {"x": x, "h0": h0}
    if cn is not None:
        w_c = torch.randn_like(cn)
        loss = loss + (cn * w_c).sum()
        leaves["c0"] = c0
        case["w_c"] = t2j(w_c)
        case["c_n"] = t2j(cn)
    loss.backward()
    case.update({
        "loss": loss.item(),
        "w_out": t2j(w_out),
        "w_h": t2j(w_h),
        "output": t2j(out),
        "h_n": t2j(hn),
        "inputs": {k: t2j(v) for k, v in leaves.items()},
        "input_grads": {k: t2j(v.grad) for k, v in leaves.items()},
        "state_dict": {k: t2j(v) for k, v in m.state_dict().items()},
        "param_grads": {k: t2j(p.grad) for k, p in m.named_parameters()},
    })
    if lengths is not None:
        case["lengths"] = lengths
    return case


def main():
    cases = {
        "lstm": make_case("lstm"),
        "gru": make_case("gru"),
        "lstm_packed": make_case("lstm", [5, 2, 4]),
        "gru_packed": make_case("gru", [3, 5, 1]),
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                        "rnn.json")
    with open(path, "w") as f:
        json.dump({"torch_version": torch.__version__, "cases": cases}, f)
    print("wrote", os.path.normpath(path))


if __name__ == "__main__":
    main()
