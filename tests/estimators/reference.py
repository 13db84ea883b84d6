"""Plain-loop reference implementations, written straight from METHODS.md.

Deliberately naive: Python dicts and loops over prompts, bundles, papers and responses,
``torch.quantile`` per bundle, ``statistics.stdev``. The vectorised estimators must match
these to 1e-6.
"""

from __future__ import annotations

import itertools
import math
import statistics

import torch

LEVELS = [round(0.05 * k, 2) for k in range(1, 20)]
EPS = 1e-6


def is_pad(uid) -> bool:
    return isinstance(uid, str) and uid.startswith("pad")


def prompts_in_order(uids) -> tuple[list, dict]:
    order, members = [], {}
    for i, u in enumerate(uids):
        if is_pad(u):
            continue
        if u not in members:
            order.append(u)
            members[u] = []
        members[u].append(i)
    return order, members


def ref_rs_grpo(scores: list[float], uids: list, beta: float) -> list[float]:
    order, members = prompts_in_order(uids)
    adv = [0.0] * len(scores)
    for u in order:
        idx = members[u]
        n = len(idx)
        if n == 1:
            continue
        rs = [float(scores[i]) for i in idx]
        if beta == 0:
            mean = sum(rs) / n
            for i, r in zip(idx, rs, strict=True):
                adv[i] = r - mean
        else:
            denom = sum(math.exp(beta * r) for r in rs) / n
            for i, r in zip(idx, rs, strict=True):
                adv[i] = (math.exp(beta * r) / denom - 1.0) / beta
    return adv


class RefTracker:
    """The published tracker, one level at a time, in float32 like the fork's nn.Parameter."""

    def __init__(self, lr_q: float):
        self.lr_q = lr_q
        self.q = [torch.tensor(0.0, dtype=torch.float32) for _ in LEVELS]
        self.init = False

    def nearest(self, level: float) -> float:
        best = None
        for k, lv in enumerate(LEVELS):  # first (lower) level wins a tie
            d = round(abs(lv - level), 9)
            if best is None or d < best[0]:
                best = (d, k)
        return float(self.q[best[1]])

    def update(self, papers: list[float]):
        s = torch.tensor(papers, dtype=torch.float32)
        for k, lv in enumerate(LEVELS):
            if not self.init:
                self.q[k] = torch.quantile(s, torch.tensor(lv, dtype=torch.float32))
            else:
                below = (s < self.q[k]).float().mean()
                grad = -(torch.tensor(lv, dtype=torch.float32) - below)
                self.q[k] = self.q[k] + (-self.lr_q) * grad
        self.init = True

    def baselines(self, alpha, beta, natural_base):
        if not self.init:
            return 0.0, 0.0
        a, b = self.nearest(alpha), self.nearest(beta)
        gs, cs = [], []
        for q in self.q:
            q = float(q)
            g = max(q - a, 0.0) - max(q - b, 0.0) + ((a - b) if natural_base else 0.0)
            gs.append(g)
            cs.append(-max(a - q, 0.0))
        trap = lambda ys: sum((LEVELS[k + 1] - LEVELS[k]) * (ys[k] + ys[k + 1]) / 2 for k in range(len(ys) - 1))  # noqa: E731
        return trap(gs), trap(cs)


def ref_riskpo(scores: list[float], uids: list, opts: dict, tracker: RefTracker, norm: bool = True) -> list[float]:
    alpha, beta = opts["quantile_down"], opts["quantile_up"]
    eps = opts.get("epsilon", EPS)
    K = opts["bundle_size"]
    mode = opts["use_q_track_mode"]
    order, members = prompts_in_order(uids)
    bundles = [order[k : k + K] for k in range(0, len(order), K)]
    adv = [0.0] * len(scores)
    if opts["use_mean_as_baseline"]:
        base_r, base_c = tracker.baselines(alpha, beta, opts["natural_baseline_base"])
    else:
        base_r, base_c = 0.0, 0.0
    all_papers = []
    for bun in bundles:
        M = min(len(members[u]) for u in bun)
        papers = [sum(float(scores[members[u][m]]) for u in bun) for m in range(M)]
        all_papers += papers
        st = torch.tensor(papers, dtype=torch.float64)
        a_b, b_b = float(torch.quantile(st, alpha)), float(torch.quantile(st, beta))
        if mode == "batch" or not tracker.init:
            a, b = a_b, b_b
        elif mode == "track":
            a, b = tracker.nearest(alpha), tracker.nearest(beta)
        else:
            a, b = (a_b + tracker.nearest(alpha)) / 2, (b_b + tracker.nearest(beta)) / 2
        pstd = statistics.stdev(papers) if M > 1 else 1.0
        if pstd <= 1e-3:
            pstd = 1.0
        for m, S in enumerate(papers):
            g = max(S - a, 0.0) - max(S - b, 0.0) + ((a - b) if opts["natural_baseline_adv"] else 0.0)
            A = (g - base_r) / (beta - alpha + eps)
            if opts["use_mixing_risk_measure"]:
                c = (-max(a - S, 0.0) - base_c) / (alpha + eps)
                A = (opts["w_mix"] * c + A) / (opts["w_mix"] + 1)
            elif opts["risk_seeking_upper_tail"]:
                up = max(S - b, 0.0) / (1 - beta + eps)
                A = (opts["upper_weight"] * up + A) / (opts["upper_weight"] + 1)
            if norm:
                A = A / (pstd + eps)
            resp = [members[u][m] for u in bun]
            ds = {}
            for u, i in zip(bun, resp, strict=True):
                rs = [float(scores[j]) for j in members[u]]
                ds[i] = float(scores[i]) - sum(rs) / len(rs)
            sum_d = sum(ds.values())
            for u, i in zip(bun, resp, strict=True):
                mode_c = opts["credit_assign_mode"]
                if mode_c == "uniform":
                    adv[i] = A
                elif mode_c == "score":
                    adv[i] = 0.5 * A if scores[i] > 0 else 1.5 * A
                elif mode_c == "std":
                    rs = [float(scores[j]) for j in members[u]]
                    s = statistics.stdev(rs) if len(rs) > 1 else 1.0
                    if s <= 1e-3:
                        s = 1.0
                    adv[i] = A / (s + eps)
                else:
                    adv[i] = A / len(bun) if abs(sum_d) <= 1e-6 else A * ds[i] / sum_d
    if all_papers:
        tracker.update(all_papers)
    return adv


def comb(a: int, b: int) -> int:
    """C(a, b) with C(a, b) = 0 when b > a, b < 0 or a < 0 (METHODS.md)."""
    if a < 0 or b < 0 or b > a:
        return 0
    return math.comb(a, b)


def ref_passk(scores: list[float], uids: list, k: int, threshold: float = 0.5, eps: float = EPS) -> list[float]:
    """Pass@k Training, one prompt at a time, with exact integer binomials."""
    order, members = prompts_in_order(uids)
    adv = [0.0] * len(scores)
    for u in order:
        idx = members[u]
        n = len(idx)
        if n == 1:
            continue
        correct = {i: float(scores[i]) >= threshold for i in idx}
        c = sum(correct.values())
        kg = min(k, n)
        R = 1 - comb(n - c, kg) / comb(n, kg)
        sigma = math.sqrt(R * (1 - R))
        for i in idx:
            if correct[i]:
                adv[i] = (1 - R) / (sigma + eps)
            else:
                adv[i] = (1 - R - comb(n - c - 1, kg - 1) / comb(n - 1, kg - 1)) / (sigma + eps)
    return adv


def ref_pkpo(scores: list[float], uids: list, k: int, baseline: str = "loo") -> list[float]:
    """PKPO by enumerating every k_g-subset of each prompt's responses (itertools)."""
    order, members = prompts_in_order(uids)
    adv = [0.0] * len(scores)
    for u in order:
        idx = members[u]
        n = len(idx)
        if n == 1:
            continue
        kg = min(k, n)
        r = {i: float(scores[i]) for i in idx}
        subsets = list(itertools.combinations(idx, kg))
        s = {i: sum(max(r[j] for j in sub) for sub in subsets if i in sub) / len(subsets) for i in idx}
        for i in idx:
            if baseline == "none":
                adv[i] = s[i]
            elif baseline == "mean":
                adv[i] = s[i] - sum(s.values()) / n
            elif kg == 1:
                others = [r[j] for j in idx if j != i]
                adv[i] = (r[i] - sum(others) / len(others)) / n
            else:
                adv[i] = sum(
                    max(r[j] for j in sub) - max(r[j] for j in sub if j != i) for sub in subsets if i in sub
                ) / len(subsets)
    return adv
