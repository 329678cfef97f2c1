#!/usr/bin/python3
"""PyTorch side of the Soma benchmark: the workloads of `soma bench`, same JSON lines.

Run with Debian's PyTorch (1.13), which only /usr/bin/python3 has:

    /usr/bin/python3 bench/peers/torch_bench.py mlp-train-b64 --threads 2
    {"workload": "mlp-train-b64", "threads": 2, "samples_per_s": 51234.5, "peak_rss_mb": 388.1, ...}

Several workloads and --reps R print one line per (rep, workload). torch is imported once; each
run happens in a forked child, so its peak_rss_mb is that of a fresh process that imported
torch and ran this one workload (the child's high-water mark starts at the parent's RSS).

Thread settings: --threads T calls torch.set_num_threads(T); --intra-op N overrides the value
given to set_num_threads (e.g. 1 OpenMP thread while OPENBLAS_NUM_THREADS=2 gives OpenBLAS two).
OpenMP / OpenBLAS environment variables (OMP_WAIT_POLICY, OPENBLAS_NUM_THREADS, ...) must be set
by the caller before this process starts; bench/run.py does that. --setting only labels the
output.

Same models, optimizers, data and timing as apps/soma/bench.cpp: Fashion-MNIST normalised
((x - 0.2860) / 0.3530) in memory (random data of the same shape when absent), batches taken in
order, warm-up (>= 3 steps and 15% of the window) excluded, then >= --seconds of timed steps.
Inference runs in eval mode under torch.inference_mode().
"""
import argparse
import gzip
import json
import os
import resource
import struct
import sys
import time

WORKLOADS = [
    "mlp-train-b64",
    "mlp-train-b256",
    "cnn-train-b64",
    "lstm-train",
    "gan-train",
    "mlp-infer-b1",
    "mlp-infer-b64",
    "cnn-infer-b1",
    "cnn-infer-b64",
    "op-overhead",
    "sgemm",
]

MLP_FLOPS = 2.0 * (784 * 512 + 512 * 256 + 256 * 10)
CNN_FLOPS = 2.0 * (32 * 28 * 28 * 9 + 64 * 14 * 14 * 288 + 3136 * 128 + 128 * 10)
# Training: 3x forward, but 2x for the first layer (the data need no input gradient).
MLP_TRAIN_FLOPS = 3.0 * MLP_FLOPS - 2.0 * 784 * 512
CNN_TRAIN_FLOPS = 3.0 * CNN_FLOPS - 2.0 * 32 * 28 * 28 * 9
LSTM_T, LSTM_B, LSTM_V, LSTM_E, LSTM_H = 64, 32, 96, 128, 256
LSTM_FLOPS_PER_TOKEN = 2.0 * (4 * LSTM_H * LSTM_E + 4 * LSTM_H * LSTM_H + LSTM_H * LSTM_V)
GAN_BATCH, GAN_LATENT = 64, 64
# Transposed convs: in x out x kh x kw multiply-adds per INPUT position (7x7, then 14x14).
GAN_G_FLOPS = 2.0 * (64 * 6272 + 128 * 64 * 16 * 7 * 7 + 64 * 1 * 16 * 14 * 14)
GAN_D_FLOPS = 2.0 * (1 * 64 * 16 * 14 * 14 + 64 * 128 * 16 * 7 * 7 + 6272)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def median(v):
    v = sorted(v)
    n = len(v)
    if n == 0:
        return 0.0
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


# ---- data ---------------------------------------------------------------------------------


def fashion_mnist_dir():
    env = os.environ.get("SOMA_DATA")
    return os.path.join(env, "fashion-mnist") if env else "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    import numpy as np

    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not a ubyte IDX file")
    nd = data[3]
    dims = struct.unpack(">" + "I" * nd, data[4 : 4 + 4 * nd])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def find(dirname, stem):
    for name in (stem + ".gz", stem):
        p = os.path.join(dirname, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(os.path.join(dirname, stem))


def load_data(torch, train):
    """(x [N, 1, 28, 28] float32 normalised, y [N] int64, source)."""
    prefix = "train" if train else "t10k"
    try:
        d = fashion_mnist_dir()
        images = read_idx(find(d, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(find(d, f"{prefix}-labels-idx1-ubyte"))
        x = torch.from_numpy(images.copy()).view(-1, 1, 28, 28).float()
        del images
        x.div_(255.0).sub_(0.2860).div_(0.3530)
        y = torch.from_numpy(labels.astype("int64"))
        return x, y, "fashion-mnist"
    except (OSError, ValueError):
        n = 60000 if train else 10000
        return torch.randn(n, 1, 28, 28), torch.randint(0, 10, (n,)), "random"


# ---- models -------------------------------------------------------------------------------


def make_mlp(nn):
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 512),
        nn.ReLU(),
        nn.Linear(512, 256),
        nn.ReLU(),
        nn.Linear(256, 10),
    )


def make_cnn(nn):
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(3136, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


# ---- timing -------------------------------------------------------------------------------


def time_loop(step, seconds, min_warm, min_iters):
    """Warm-up (>= min_warm calls and 15% of the window), then >= seconds and >= min_iters
    timed calls. Returns (iters, elapsed_s, per-call seconds)."""
    clock = time.perf_counter
    w0 = clock()
    i = 0
    while i < min_warm or clock() - w0 < 0.15 * seconds:
        step()
        i += 1
    per = []
    t0 = clock()
    while len(per) < min_iters or clock() - t0 < seconds:
        s0 = clock()
        step()
        per.append(clock() - s0)
    return len(per), clock() - t0, per


def bench_train(torch, name, cnn, batch, seconds):
    import torch.nn.functional as F

    torch.manual_seed(0)
    x_all, y_all, source = load_data(torch, True)
    model = make_cnn(torch.nn) if cnn else make_mlp(torch.nn)
    model.train()
    if cnn:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    n = x_all.shape[0] // batch * batch
    state = {"pos": 0, "loss": 0.0}

    def step():
        p = state["pos"]
        x, y = x_all[p : p + batch], y_all[p : p + batch]
        state["pos"] = (p + batch) % n
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        state["loss"] = loss.item()

    iters, elapsed, per = time_loop(step, seconds, 3, 5)
    sps = iters * batch / elapsed
    return {
        "samples_per_s": round(sps, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "gflops": round(sps * (CNN_TRAIN_FLOPS if cnn else MLP_TRAIN_FLOPS) / 1e9, 2),
        "step_ms_median": round(median(per) * 1e3, 4),
        "steps": iters,
        "batch": batch,
        "loss": round(state["loss"], 4),
        "data": source,
    }


def bench_infer(torch, name, cnn, batch, seconds):
    torch.manual_seed(0)
    x_all, _, source = load_data(torch, False)
    model = make_cnn(torch.nn) if cnn else make_mlp(torch.nn)
    model.eval()
    n = x_all.shape[0] // batch * batch
    state = {"pos": 0}

    def step():
        p = state["pos"]
        model(x_all[p : p + batch])
        state["pos"] = (p + batch) % n

    with torch.inference_mode():
        iters, elapsed, per = time_loop(step, seconds, 5, 10)
    return {
        "latency_us": round(median(per) * 1e6, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "samples_per_s": round(iters * batch / elapsed, 1),
        "iters": iters,
        "batch": batch,
        "data": source,
    }


def bench_lstm(torch, seconds):
    import torch.nn.functional as F

    nn = torch.nn
    torch.manual_seed(0)
    emb = nn.Embedding(LSTM_V, LSTM_E)
    lstm = nn.LSTM(LSTM_E, LSTM_H)
    head = nn.Linear(LSTM_H, LSTM_V)
    params = list(emb.parameters()) + list(lstm.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=2e-3)
    tokens = torch.randint(0, LSTM_V, (LSTM_T + 1, LSTM_B))
    x, y = tokens[:LSTM_T].contiguous(), tokens[1:].contiguous()
    state = {"loss": 0.0}

    def step():
        opt.zero_grad(set_to_none=True)
        h, _ = lstm(emb(x))
        loss = F.cross_entropy(head(h.reshape(LSTM_T * LSTM_B, LSTM_H)), y.reshape(-1))
        loss.backward()
        opt.step()
        state["loss"] = loss.item()

    iters, elapsed, per = time_loop(step, seconds, 2, 3)
    tps = iters * LSTM_T * LSTM_B / elapsed
    return {
        "tokens_per_s": round(tps, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "gflops": round(tps * 3.0 * LSTM_FLOPS_PER_TOKEN / 1e9, 2),
        "step_ms_median": round(median(per) * 1e3, 4),
        "steps": iters,
        "loss": round(state["loss"], 4),
    }


def bench_gan(torch, seconds):
    import torch.nn.functional as F

    nn = torch.nn
    torch.manual_seed(0)
    x_all, _, source = load_data(torch, True)
    g = nn.Sequential(
        nn.Linear(GAN_LATENT, 6272), nn.BatchNorm1d(6272), nn.ReLU(), nn.Unflatten(1, (128, 7, 7)),
        nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Tanh())
    d = nn.Sequential(
        nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(64, 128, 4, 2, 1),
        nn.BatchNorm2d(128), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(6272, 1))
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real_label, fake_label = torch.ones(GAN_BATCH, 1), torch.zeros(GAN_BATCH, 1)
    n = x_all.shape[0] // GAN_BATCH * GAN_BATCH
    state = {"pos": 0, "d": 0.0, "g": 0.0}

    def step():
        p = state["pos"]
        real = x_all[p : p + GAN_BATCH]
        state["pos"] = (p + GAN_BATCH) % n
        fake = g(torch.randn(GAN_BATCH, GAN_LATENT))
        opt_d.zero_grad(set_to_none=True)
        ld = F.binary_cross_entropy_with_logits(d(real), real_label) + \
            F.binary_cross_entropy_with_logits(d(fake.detach()), fake_label)
        ld.backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        lg = F.binary_cross_entropy_with_logits(d(fake), real_label)
        lg.backward()
        opt_g.step()
        state["d"], state["g"] = ld.item(), lg.item()

    iters, elapsed, per = time_loop(step, seconds, 2, 3)
    ips = iters / elapsed
    return {
        "iters_per_s": round(ips, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "gflops": round(ips * GAN_BATCH * (3.0 * GAN_G_FLOPS + 9.0 * GAN_D_FLOPS) / 1e9, 2),
        "step_ms_median": round(median(per) * 1e3, 4),
        "steps": iters,
        "d_loss": round(state["d"], 4),
        "g_loss": round(state["g"], 4),
        "data": source,
    }


def bench_op_overhead(torch, seconds):
    block = 1000
    a = torch.ones(1, requires_grad=True)
    b = torch.ones(1, requires_grad=True)

    def step():
        for _ in range(block):
            c = a + b  # noqa: F841  (records an AddBackward node)

    _, _, per = time_loop(step, 0.7 * seconds, 10, 20)
    with torch.no_grad():
        _, _, per_ng = time_loop(step, 0.3 * seconds, 10, 20)
    return {
        "us_per_op": round(median(per) * 1e6 / block, 4),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "us_per_op_nograd": round(median(per_ng) * 1e6 / block, 4),
    }


def bench_sgemm(torch, seconds):
    n = 1024
    torch.manual_seed(0)
    a, b = torch.randn(n, n), torch.randn(n, n)
    _, _, per = time_loop(lambda: torch.matmul(a, b), seconds, 3, 5)
    return {
        "gflops": round(2.0 * n**3 / median(per) / 1e9, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "n": n,
        "iters": len(per),
    }


def run(torch, workload, seconds):
    kind, _, rest = workload.partition("-")
    if workload == "op-overhead":
        return bench_op_overhead(torch, seconds)
    if workload == "sgemm":
        return bench_sgemm(torch, seconds)
    if workload == "lstm-train":
        return bench_lstm(torch, seconds)
    if workload == "gan-train":
        return bench_gan(torch, seconds)
    mode, _, b = rest.partition("-")
    batch = int(b[1:])
    if mode == "train":
        return bench_train(torch, workload, kind == "cnn", batch, seconds)
    return bench_infer(torch, workload, kind == "cnn", batch, seconds)


def run_in_child(torch, workload, args):
    """Forks; the child runs one workload and sends its JSON line back through a pipe."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        code = 0
        try:
            torch.set_num_threads(args.intra_op if args.intra_op else args.threads)
            line = {"workload": workload, "threads": args.threads}
            line.update(run(torch, workload, args.seconds))
            line.update(
                {
                    "setting": args.setting,
                    "torch_threads": torch.get_num_threads(),
                    "torch_version": torch.__version__,
                }
            )
            os.write(w, (json.dumps(line) + "\n").encode())
        except BaseException as e:  # report and exit the child, never return into the parent
            os.write(w, (json.dumps({"workload": workload, "error": repr(e)}) + "\n").encode())
            code = 1
        finally:
            os.close(w)
            os._exit(code)
    os.close(w)
    chunks = []
    while True:
        c = os.read(r, 65536)
        if not c:
            break
        chunks.append(c)
    os.close(r)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode().strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("workloads", nargs="*", help="workloads (default: all); --list names them")
    ap.add_argument("--threads", type=int, default=1, help="threads (torch.set_num_threads)")
    ap.add_argument("--intra-op", type=int, default=0, help="override set_num_threads' value")
    ap.add_argument("--seconds", type=float, default=3.0, help="timed window after warm-up")
    ap.add_argument("--reps", type=int, default=1, help="repetitions (one line each)")
    ap.add_argument("--setting", default="plain", help="label for the thread setting")
    ap.add_argument("--list", action="store_true", help="list the workloads")
    ap.add_argument("--serve", action="store_true",
                    help="read workload names from stdin, one per line, and answer each with "
                         "its JSON line (bench/run.py keeps one such process per setting)")
    args = ap.parse_args()
    if args.list:
        print("\n".join(WORKLOADS))
        return 0
    workloads = args.workloads or WORKLOADS
    unknown = [w for w in workloads if w not in WORKLOADS]
    if unknown:
        print(f"torch_bench: unknown workload(s) {unknown}; known: {WORKLOADS}", file=sys.stderr)
        return 2
    import torch  # imported once; every run is a fork of this process

    if args.serve:
        for raw in sys.stdin:
            w = raw.strip()
            if not w:
                continue
            if w not in WORKLOADS:
                print(json.dumps({"workload": w, "error": "unknown workload"}), flush=True)
                continue
            print(run_in_child(torch, w, args), flush=True)
        return 0
    rc = 0
    for _ in range(args.reps):
        for w in workloads:
            line = run_in_child(torch, w, args)
            print(line, flush=True)
            if '"error"' in line:
                rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
