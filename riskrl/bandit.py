# Docs (math, defaults, measured results): docs/bandit.md
"""The RS-GRPO bandit check (METHODS.md, "The bandit check"; seed 002).

A 100-armed bandit with deterministic rewards

    m(x) = 0.1 + 0.9 exp(-(x-40)^2/50) + 0.5 exp(-(x-75)^2/50)

(global optimum at arm 40, local optimum at arm 75), a softmax policy whose logits
start around the local optimum, 16 pulls per update, the RS-GRPO advantage as the
weight of grad log pi, and plain SGD on the logits. Every (beta, seed) run is one row
of a single (B*S, 100) logits tensor, so the whole grid advances in one batched step.

    python -m riskrl.bandit --json bandit.json --png bandit.png
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from riskrl.io import atomic_path, write_json

# -- defaults: the published setting ----------------------------------------------------
N_ARMS = 100  # arms 0..99
PULLS = 16  # pulls per update (the "group" of RS-GRPO)
LR = 0.1  # plain SGD step on the logits
UPDATES = 25_000  # 400k pulls
BETAS = (0.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)  # risk sensitivity; 0 = plain policy gradient
N_SEEDS = 5  # default seeds are 0..N_SEEDS-1
CHUNK = 1_000  # updates whose uniforms are drawn at once (fixed: part of the RNG stream)


def arm_rewards(n_arms: int = N_ARMS, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Deterministic reward of each arm, ``m(x)``; shape ``(n_arms,)``."""
    x = torch.arange(n_arms, dtype=dtype)
    return 0.1 + 0.9 * torch.exp(-((x - 40) ** 2) / 50) + 0.5 * torch.exp(-((x - 75) ** 2) / 50)


def initial_logits(n_arms: int = N_ARMS, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Logits of the initial policy, as the published ``codes/bandit.py`` builds them.

    ``p = exp(-(x-75)^2/50) + 0.1``, normalised; ``theta = log(p + 1e-8)``, centred.
    (The 1e-8 and the centring do not change the softmax beyond rounding.)
    """
    x = torch.arange(n_arms, dtype=dtype)
    p = torch.exp(-((x - 75) ** 2) / 50) + 0.1
    p = p / p.sum()
    theta = torch.log(p + 1e-8)
    return theta - theta.mean()


def rs_grpo_advantage_rows(rewards: torch.Tensor, beta: torch.Tensor | float) -> torch.Tensor:
    """RS-GRPO advantage for a batch of independent groups, one group per row.

    Args:
        rewards: ``(N, n)``, the ``n`` rewards of each of ``N`` groups.
        beta: scalar or ``(N,)``, the risk sensitivity of each row (0 allowed).

    Returns:
        ``(N, n)`` advantages. Per row, with ``s = (logsumexp(beta r) - log n) / beta``,

            A_i = expm1(beta (r_i - s)) / beta
                = (1/beta) (exp(beta r_i) / mean_j exp(beta r_j) - 1)

        and ``A_i = r_i - mean r`` exactly where ``beta == 0``.

    Note:
        A local, row-batched twin of ``riskrl.estimators.rs_grpo_advantage`` (which
        takes flat responses with group ids and one beta); the bandit batches groups
        with different betas. ``rs_grpo_advantage_rows_loop`` is the plain reference.
    """
    n = rewards.shape[-1]
    beta = torch.as_tensor(beta, dtype=rewards.dtype).expand(rewards.shape[:-1]).unsqueeze(-1)  # (N, 1)
    zero = beta == 0
    safe = torch.where(zero, torch.ones_like(beta), beta)  # avoids 0/0 in the unused branch
    s = (torch.logsumexp(safe * rewards, dim=-1, keepdim=True) - math.log(n)) / safe  # (N, 1)
    centred = rewards - rewards.mean(dim=-1, keepdim=True)
    return torch.where(zero, centred, torch.expm1(safe * (rewards - s)) / safe)


def rs_grpo_advantage_rows_loop(
    rewards: Sequence[Sequence[float]], betas: Sequence[float]
) -> list[list[float]]:
    """Plain-Python reference of ``rs_grpo_advantage_rows`` (closed form, one row at a time)."""
    out = []
    for row, beta in zip(rewards, betas, strict=True):
        if beta == 0:
            mean = sum(row) / len(row)
            out.append([r - mean for r in row])
        else:
            mean_exp = sum(math.exp(beta * r) for r in row) / len(row)
            out.append([(math.exp(beta * r) / mean_exp - 1) / beta for r in row])
    return out


def policy_gradient(
    probs: torch.Tensor, actions: torch.Tensor, adv: torch.Tensor, *, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Gradient of ``mean_i A_i log pi(a_i)`` with respect to the logits, analytically.

    ``d log pi(a) / d theta = onehot(a) - pi``, so the gradient is
    ``(scatter_add(A at a) - (sum_i A_i) pi) / n``. Shapes: probs ``(N, K)``,
    actions and adv ``(N, n)``; returns ``(N, K)``.
    """
    n = actions.shape[-1]
    g = torch.zeros_like(probs) if out is None else out.zero_()
    g.scatter_add_(1, actions, adv)  # (N, K): sum_i A_i onehot(a_i)
    g.sub_(adv.sum(dim=-1, keepdim=True) * probs)
    return g.div_(n)


class BanditRun(NamedTuple):
    """What ``run_bandit`` returns.

    ``records``: one dict per (beta, seed), betas outer, seeds inner:
    ``{beta, seed, final_expected_reward, argmax_arm, entropy}`` (entropy in nats).
    ``curve``: ``(B, S, updates + 1)``, the expected reward ``E_pi[m]`` of each run
    before update 0, ..., after the last update (``curve[..., -1]`` is the final one).
    """

    records: list[dict]
    curve: np.ndarray


def run_bandit(
    betas: Sequence[float] = BETAS,
    seeds: Sequence[int] = tuple(range(N_SEEDS)),
    updates: int = UPDATES,
    *,
    pulls: int = PULLS,
    lr: float = LR,
    n_arms: int = N_ARMS,
    dtype: torch.dtype = torch.float64,
    threads: int | None = 1,
) -> BanditRun:
    """Run every (beta, seed) of the grid for ``updates`` updates, batched.

    Row ``b * S + s`` of the logits belongs to ``(betas[b], seeds[s])``. Its pulls use
    uniforms from ``torch.Generator().manual_seed(seeds[s])`` only (inverse-CDF
    sampling), so a record depends on its own beta and seed, not on the rest of the
    grid (up to floating-point rounding), and all betas share the seed's random
    numbers (common random numbers). Same grid and seeds: bitwise the same result.

    ``threads``: torch intra-op threads while this runs (restored afterwards; ``None``
    leaves the setting alone). The tensors are tiny; on a busy 2-core machine a second
    thread made a short run up to 20x slower (thread-pool waits), so the default is 1.
    """
    betas = [float(b) for b in betas]
    seeds = [int(s) for s in seeds]
    _check_grid(betas, seeds, updates, pulls)
    prev = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _run(betas, seeds, updates, pulls, lr, n_arms, dtype)
    finally:
        torch.set_num_threads(prev)


def _run(
    betas: list[float], seeds: list[int], updates: int, pulls: int, lr: float, n_arms: int, dtype: torch.dtype
) -> BanditRun:
    B, S, N = len(betas), len(seeds), len(betas) * len(seeds)

    m = arm_rewards(n_arms, dtype)  # (K,)
    logits = initial_logits(n_arms, dtype).expand(N, n_arms).clone()  # (N, K)
    beta_rows = torch.tensor(betas, dtype=dtype).repeat_interleave(S)  # (N,)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    curve = torch.empty(updates + 1, N, dtype=dtype)  # (T+1, N)
    grad = torch.empty_like(logits)

    uniforms = None
    for t in range(updates):
        if t % CHUNK == 0:  # (chunk, N, pulls): each seed's stream, shared by all betas
            c = min(CHUNK, updates - t)
            per_seed = torch.stack([torch.rand(c, pulls, generator=g, dtype=dtype) for g in gens], dim=1)
            uniforms = per_seed.unsqueeze(1).expand(c, B, S, pulls).reshape(c, N, pulls)
        probs = torch.softmax(logits, dim=-1)  # (N, K)
        torch.mv(probs, m, out=curve[t])
        cdf = probs.cumsum(dim=-1)  # (N, K)
        u = uniforms[t % CHUNK] * cdf[:, -1:]  # (N, pulls), scaled so a rounded cdf[-1] < 1 is harmless
        actions = torch.searchsorted(cdf, u, right=True).clamp_(max=n_arms - 1)  # inverse CDF
        rewards = m[actions]  # (N, pulls)
        adv = rs_grpo_advantage_rows(rewards, beta_rows)  # (N, pulls)
        policy_gradient(probs, actions, adv, out=grad)
        logits.add_(grad, alpha=lr)  # ascent; grad is already averaged over the pulls

    final = torch.softmax(logits, dim=-1)
    torch.mv(final, m, out=curve[updates])
    entropy = -(final * torch.log_softmax(logits, dim=-1)).sum(dim=-1)  # nats
    argmax = final.argmax(dim=-1)
    records = [
        {
            "beta": betas[i // S],
            "seed": seeds[i % S],
            "final_expected_reward": float(curve[updates, i]),
            "argmax_arm": int(argmax[i]),
            "entropy": float(entropy[i]),
        }
        for i in range(N)
    ]
    return BanditRun(records, curve.T.reshape(B, S, updates + 1).numpy())


def _check_grid(betas: list[float], seeds: list[int], updates: int, pulls: int) -> None:
    if not betas or not seeds:
        raise ValueError(f"empty grid: betas={betas} seeds={seeds}")
    if len(set(betas)) != len(betas):
        raise ValueError(f"duplicate beta in betas={betas}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"duplicate seed in seeds={seeds}")
    if any(not math.isfinite(b) or b < 0 for b in betas):
        raise ValueError(f"betas must be finite and >= 0; got {betas}")
    if any(s < 0 for s in seeds):
        raise ValueError(f"seeds must be >= 0; got {seeds}")
    if updates < 0 or pulls < 1:
        raise ValueError(f"need updates >= 0 and pulls >= 1; got updates={updates} pulls={pulls}")


# -- reporting ---------------------------------------------------------------------------


def summarise(records: list[dict]) -> list[dict]:
    """Per beta (in order of appearance): mean/min/max final E[r], argmax arms, mean entropy."""
    out = []
    for beta in dict.fromkeys(r["beta"] for r in records):
        rows = [r for r in records if r["beta"] == beta]
        er = [r["final_expected_reward"] for r in rows]
        ent = [r["entropy"] for r in rows]
        out.append(
            {
                "beta": beta,
                "seeds": [r["seed"] for r in rows],
                "mean_final_expected_reward": sum(er) / len(er),
                "min_final_expected_reward": min(er),
                "max_final_expected_reward": max(er),
                "argmax_arms": [r["argmax_arm"] for r in rows],
                "mean_entropy": sum(ent) / len(ent),
                "min_entropy": min(ent),
                "max_entropy": max(ent),
            }
        )
    return out


def print_table(records: list[dict], updates: int, seconds: float | None = None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    summary = summarise(records)
    seeds = summary[0]["seeds"]
    title = f"RS-GRPO bandit: {updates} updates x {PULLS} pulls, seeds {seeds}"
    if seconds is not None:
        title += f", {seconds:.1f} s"
    table = Table(title=title, caption=escape("E[r]: final expected reward; H: final policy entropy (nats)"))
    for col in ("beta", "E[r] mean", "E[r] range", "argmax arm/seed", "H mean", "H range"):
        table.add_column(escape(col), justify="right")
    for s in summary:
        table.add_row(
            f"{s['beta']:g}",
            f"{s['mean_final_expected_reward']:.4f}",
            f"{s['min_final_expected_reward']:.3f}-{s['max_final_expected_reward']:.3f}",
            " ".join(str(a) for a in s["argmax_arms"]),
            f"{s['mean_entropy']:.3f}",
            f"{s['min_entropy']:.3f}-{s['max_entropy']:.3f}",
        )
    Console().print(table)


def plot_curves(path: str, betas: Sequence[float], seeds: Sequence[int], curve: np.ndarray) -> None:
    """PNG of E[r] over updates, one line per beta (mean over seeds, band min..max)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    T = curve.shape[-1]
    stride = max(1, T // 2000)  # ~2000 points per line is plenty at this size
    x = np.arange(0, T, stride)
    y = curve[..., ::stride]  # (B, S, len(x))
    fig, ax = plt.subplots(figsize=(8, 4.8))
    colours = plt.cm.viridis(np.linspace(0, 0.9, len(betas)))
    for b, beta in enumerate(betas):
        ax.fill_between(x, y[b].min(axis=0), y[b].max(axis=0), color=colours[b], alpha=0.2, lw=0)
        ax.plot(x, y[b].mean(axis=0), color=colours[b], lw=1.6, label=rf"$\beta$ = {beta:g}")
    m = arm_rewards().numpy()
    for arm, ls in ((40, ":"), (75, "--")):
        ax.axhline(m[arm], color="grey", ls=ls, lw=0.8)
        ax.annotate(
            f"m({arm}) = {m[arm]:.3f}",
            (T, m[arm]),
            xytext=(-4, 3),
            textcoords="offset points",
            ha="right",
            fontsize=8,
            color="grey",
        )
    ax.set_xlabel("update (16 pulls each)")
    ax.set_ylabel(r"expected reward $E_\pi[m(x)]$")
    ax.set_title(f"RS-GRPO on the 100-armed bandit: mean over seeds {list(seeds)}, band = min..max")
    ax.set_xlim(0, T - 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=150)
    plt.close(fig)


# -- CLI ----------------------------------------------------------------------------------


def _split(tokens: Sequence[str]) -> list[str]:
    return [t for tok in tokens for t in tok.split(",") if t.strip()]


def parse_seeds(tokens: Sequence[str]) -> list[int]:
    """``["5"]`` -> seeds 0..4 (a count); ``["0,3,7"]``, ``["0", "3"]`` or ``["7,"]`` -> that list."""
    items = _split(tokens)
    if len(tokens) == 1 and "," not in tokens[0]:
        return list(range(int(items[0])))
    return [int(t) for t in items]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m riskrl.bandit", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--betas",
        nargs="+",
        default=[",".join(f"{b:g}" for b in BETAS)],
        help="risk sensitivities, space or comma separated (default: %(default)s)",
    )
    p.add_argument(
        "--seeds",
        nargs="+",
        default=[str(N_SEEDS)],
        help="a count N (seeds 0..N-1) or a list '0,3,7' / '0 3 7' / '7,' (default: %(default)s)",
    )
    p.add_argument("--updates", type=int, default=UPDATES, help="updates of 16 pulls (default: %(default)s)")
    p.add_argument("--json", metavar="PATH", help="write the per-(beta, seed) records here (atomic)")
    p.add_argument("--png", metavar="PATH", help="write the E[r]-over-updates plot here (atomic)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default: %(default)s)")
    return p


def main(argv: Sequence[str] | None = None) -> list[dict]:
    args = build_parser().parse_args(argv)
    betas = [float(b) for b in _split(args.betas)]
    seeds = parse_seeds(args.seeds)
    t0 = time.perf_counter()
    run = run_bandit(betas, seeds, args.updates, threads=args.threads)
    seconds = time.perf_counter() - t0
    print_table(run.records, args.updates, seconds)
    if args.json:
        write_json(args.json, run.records)
    if args.png:
        plot_curves(args.png, betas, seeds, run.curve)
    return run.records


if __name__ == "__main__":
    main()
