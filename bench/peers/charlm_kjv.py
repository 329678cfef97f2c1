#!/usr/bin/python3
"""PyTorch peer of `soma train charlm-kjv`: the same character LSTM language model, data split,
batching, optimizer and time budget; prints the validation bits per character.

    /usr/bin/python3 bench/peers/charlm_kjv.py --seconds 600 --threads 2

Model: Embedding(vocab, 64) -> LSTM(64, 256) -> Linear(256, vocab), PyTorch default init.
Data: `bible gen1:1-rev22:21` as bytes; vocabulary = the sorted distinct bytes; the last 5% is
validation. Training: the stream cut into 64 parallel rows, truncated BPTT chunks of 128 steps
with the state carried (detached) between chunks and reset every epoch, Adam lr 3e-3, gradient
norm clipped to 1.0, until the training clock (evaluation excluded) passes --seconds. Validation:
32 rows, chunks of 256, state carried, mean cross-entropy / ln 2. Last line is JSON.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

# Idle OpenMP threads sleep instead of spinning: on a shared machine spinning workers made the
# 2-thread run ~10x slower (bench/run.py likewise tries OMP_WAIT_POLICY=PASSIVE).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402


def bptt_layout(ids, batch):
    n = len(ids)
    rows = (n - 1) // batch
    t = torch.tensor(ids, dtype=torch.long)
    idx = torch.arange(batch).view(1, batch) * rows + torch.arange(rows + 1).view(-1, 1)
    return t[idx.clamp(max=n - 1)], rows  # [rows + 1, batch]


class CharLM(torch.nn.Module):
    def __init__(self, vocab, embed, hidden, layers):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, embed)
        self.lstm = torch.nn.LSTM(embed, hidden, layers)
        self.head = torch.nn.Linear(hidden, vocab)

    def forward(self, x, state):
        y, state = self.lstm(self.embed(x), state)
        return self.head(y), state


def evaluate(model, ids, batch=32, bptt=256):
    data, rows = bptt_layout(ids, batch)
    model.eval()
    nats, count, state = 0.0, 0, None
    with torch.no_grad():
        for t0 in range(0, rows, bptt):
            T = min(bptt, rows - t0)
            x, y = data[t0 : t0 + T], data[t0 + 1 : t0 + 1 + T]
            logits, state = model(x, state)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
            nats += loss.item() * y.numel()
            count += y.numel()
    model.train()
    return nats / count / math.log(2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--embed", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--bptt", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log-every", type=float, default=60)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    text = subprocess.run(["bible", "gen1:1-rev22:21"], capture_output=True, check=True).stdout
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    ids = [index[c] for c in text]
    n_val = int(len(ids) * 0.05)
    train, val = ids[: len(ids) - n_val], ids[len(ids) - n_val :]
    print(f"text {len(text)} bytes, vocab {len(chars)}, train {len(train)}, val {len(val)}",
          file=sys.stderr)
    model = CharLM(len(chars), a.embed, a.hidden, a.layers)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    data, rows = bptt_layout(train, a.batch)
    clock, steps, tokens, next_log, done = 0.0, 0, 0, a.log_every, False
    run_nats, run_tok = 0.0, 0
    while not done:
        state = None
        for t0 in range(0, rows, a.bptt):
            start = time.perf_counter()
            T = min(a.bptt, rows - t0)
            x, y = data[t0 : t0 + T], data[t0 + 1 : t0 + 1 + T]
            logits, state = model(x, state)
            state = tuple(s.detach() for s in state)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
            opt.step()
            clock += time.perf_counter() - start
            steps += 1
            tokens += y.numel()
            run_nats += loss.item() * y.numel()
            run_tok += y.numel()
            if clock >= next_log:
                print(f"{clock:6.0f}s step {steps} train bpc {run_nats / run_tok / math.log(2):.3f} "
                      f"{tokens / clock:.0f} tokens/s", file=sys.stderr, flush=True)
                run_nats, run_tok, next_log = 0.0, 0, clock + a.log_every
            if clock >= a.seconds:
                done = True
                break
    vb = evaluate(model, val)
    print(json.dumps({"peer": "pytorch", "threads": a.threads, "seconds": round(clock, 1),
                      "steps": steps, "tokens": tokens, "tokens_per_s": round(tokens / clock, 1),
                      "val_bpc": round(vb, 4)}))


if __name__ == "__main__":
    main()
