#!/usr/bin/python3
"""Writes tests/fixtures/rl_losses.json: PPO (categorical and Gaussian), A2C and REINFORCE
losses and gradients of a small actor-critic, computed with PyTorch (CleanRL's formulas).

Run with Debian's python3-torch: /usr/bin/python3 scripts/gen_rl_loss_fixtures.py
The network mirrors soma::rl::ActorCritic(obs=3, hidden={5}): actor = Linear(3,5) Tanh
Linear(5,A), critic = Linear(3,5) Tanh Linear(5,1), log_std [k] for Gaussian policies.
"""
import json
import math
import os

import torch

torch.manual_seed(7)
B, D, H = 6, 3, 5


def net(out):
    return torch.nn.Sequential(torch.nn.Linear(D, H), torch.nn.Tanh(), torch.nn.Linear(H, out)).double()


def tolist(t):
    return t.detach().double().reshape(-1).tolist()


def params(actor, critic, log_std):
    p = {}
    for prefix, m in (("actor.", actor), ("critic.", critic)):
        for k, v in m.state_dict().items():
            p[prefix + k] = {"shape": list(v.shape), "data": tolist(v)}
    if log_std is not None:
        p["log_std"] = {"shape": list(log_std.shape), "data": tolist(log_std)}
    return p


def evaluate(actor, critic, log_std, obs, actions, discrete):
    out = actor(obs)
    if discrete:
        logp_all = torch.log_softmax(out, -1)
        logp = logp_all.gather(1, actions.unsqueeze(1)).squeeze(1)
        ent = -(logp_all.exp() * logp_all).sum(-1)
    else:
        dist = torch.distributions.Normal(out, log_std.exp().expand_as(out))
        logp = dist.log_prob(actions).sum(1)
        ent = dist.entropy().sum(1)
    return logp, ent, critic(obs).squeeze(-1)


def case(kind, discrete, cfg):
    A = 3 if discrete else 2
    actor, critic = net(A), net(1)
    log_std = torch.nn.Parameter(torch.randn(A, dtype=torch.float64) * 0.3) if not discrete else None
    obs = torch.randn(B, D, dtype=torch.float64)
    actions = torch.randint(0, A, (B,)) if discrete else torch.randn(B, A, dtype=torch.float64)
    old_logp = (torch.randn(B, dtype=torch.float64) * 0.3) - 1.0
    old_value = torch.randn(B, dtype=torch.float64)
    adv = torch.randn(B, dtype=torch.float64)
    ret = torch.randn(B, dtype=torch.float64)
    logp, ent, value = evaluate(actor, critic, log_std, obs, actions, discrete)
    if kind == "ppo":
        # old log-probs near the current ones so that some ratios clip and some do not
        old_logp = logp.detach() + torch.tensor([0.5, -0.5, 0.05, -0.05, 0.3, -0.01], dtype=torch.float64)
        a = (adv - adv.mean()) / (adv.std() + 1e-8) if cfg["norm_adv"] else adv
        ratio = (logp - old_logp).exp()
        c = cfg["clip_coef"]
        pg = torch.max(-a * ratio, -a * torch.clamp(ratio, 1 - c, 1 + c)).mean()
        if cfg["clip_vloss"]:
            vc = old_value + torch.clamp(value - old_value, -c, c)
            vl = 0.5 * torch.max((value - ret) ** 2, (vc - ret) ** 2).mean()
        else:
            vl = 0.5 * ((value - ret) ** 2).mean()
    elif kind == "a2c":
        a = (adv - adv.mean()) / (adv.std() + 1e-8) if cfg["norm_adv"] else adv
        pg = -(logp * a).mean()
        vl = 0.5 * ((value - ret) ** 2).mean()
    else:  # reinforce: returns are G_t, advantage G - V (baseline detached)
        a = ret - value.detach() if cfg["baseline"] else ret
        if cfg["norm_adv"]:
            a = (a - a.mean()) / (a.std() + 1e-8)
        pg = -(logp * a).mean()
        vl = 0.5 * ((value - ret) ** 2).mean() if cfg["baseline"] else torch.zeros((), dtype=torch.float64)
    em = ent.mean()
    loss = pg - cfg["ent_coef"] * em + cfg["vf_coef"] * vl
    plist = list(actor.parameters()) + list(critic.parameters()) + ([log_std] if log_std is not None else [])
    names = ["actor." + k for k, _ in actor.named_parameters()] + \
            ["critic." + k for k, _ in critic.named_parameters()] + (["log_std"] if log_std is not None else [])
    grads = torch.autograd.grad(loss, plist, allow_unused=True)
    return {
        "kind": kind, "discrete": discrete, "config": cfg,
        "params": params(actor, critic, log_std),
        "obs": tolist(obs), "obs_shape": [B, D],
        "actions": actions.reshape(-1).tolist() if discrete else tolist(actions),
        "action_size": A,
        "old_log_prob": tolist(old_logp), "old_value": tolist(old_value),
        "advantages": tolist(adv), "returns": tolist(ret),
        "loss": loss.item(), "pg_loss": pg.item(), "v_loss": vl.item(), "entropy": em.item(),
        "grads": {n: (tolist(g) if g is not None else [0.0] * p.numel()) for n, g, p in zip(names, grads, plist)},
    }


cases = [
    case("ppo", True, {"clip_coef": 0.2, "clip_vloss": True, "norm_adv": True, "ent_coef": 0.01, "vf_coef": 0.5}),
    case("ppo", False, {"clip_coef": 0.2, "clip_vloss": True, "norm_adv": True, "ent_coef": 0.01, "vf_coef": 0.5}),
    case("ppo", False, {"clip_coef": 0.1, "clip_vloss": False, "norm_adv": False, "ent_coef": 0.0, "vf_coef": 0.25}),
    case("a2c", True, {"norm_adv": False, "ent_coef": 0.01, "vf_coef": 0.5}),
    case("a2c", False, {"norm_adv": True, "ent_coef": 0.02, "vf_coef": 0.5}),
    case("reinforce", True, {"baseline": True, "norm_adv": True, "ent_coef": 0.0, "vf_coef": 0.5}),
    case("reinforce", False, {"baseline": True, "norm_adv": False, "ent_coef": 0.01, "vf_coef": 1.0}),
    case("reinforce", True, {"baseline": False, "norm_adv": False, "ent_coef": 0.0, "vf_coef": 0.5}),
]
# discounted returns over two episodes in one buffer (done after t = 2)
rewards, dones, gamma = [1.0, 2.0, 3.0, 0.5, -1.0], [False, False, True, False, False], 0.9
G, nxt = [0.0] * 5, 0.0
for t in reversed(range(5)):
    if dones[t] or t == 4:
        nxt = 0.0
    nxt = rewards[t] + gamma * nxt
    G[t] = nxt
out = {"torch": torch.__version__, "cases": cases,
       "returns": {"rewards": rewards, "dones": dones, "gamma": gamma, "expected": G}}
path = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "rl_losses.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
print("wrote", os.path.normpath(path), len(cases), "cases")
