"""The RiskPO quantile tracker: 19 quantiles of the paper-score distribution, kept across steps.

Math (METHODS.md "RiskPO", step 6): levels ``l_k = 0.05, 0.10, ..., 0.95``. On the first
update ``q_k`` is the empirical quantile (linear interpolation, as ``torch.quantile``) of all
of the step's paper scores; on every later update one SGD step on the pinball loss,

    q_k <- q_k + lr_q * (l_k - mean_m 1[S_m < q_k])

The state is float32, updated exactly as the published ``torch.optim.SGD`` step on a float32
``nn.Parameter`` (``q.add_(grad, alpha=-lr_q)`` with ``grad = -(l - mean(1[S < q]).float())``),
so a run can be compared number for number with the published code.

Unlike the published trainer, step t's tracked values drive step t+1's advantage (the
published trainer wrote them into a batch that was discarded, so its runs used ``batch``
quantiles), and the state is checkpointed: ``state_dict()`` / ``load_state_dict()``.
"""

from __future__ import annotations

import torch

LEVELS: tuple[float, ...] = tuple(round(0.05 * k, 2) for k in range(1, 20))
MODES = ("batch", "track", "mix")
MODE_CODES = {m: i for i, m in enumerate(MODES)}  # numeric code logged as riskpo/mode


def level_key(level: float) -> str:
    return f"{level:.2f}"


class QuantileTracker:
    """Tracked quantiles of RiskPO's paper scores, with the baselines derived from them.

    Args:
        lr_q: SGD step of the pinball-loss update (published default 0.1).
    """

    def __init__(self, lr_q: float = 0.1) -> None:
        lr_q = float(lr_q)
        if not lr_q > 0:
            raise ValueError(f"lr_q must be > 0, got {lr_q}")
        self.lr_q = lr_q
        self.levels = torch.tensor(LEVELS, dtype=torch.float32)
        self.q = torch.zeros(len(LEVELS), dtype=torch.float32)
        self.initialized = False
        self.updates = 0
        self.last: dict[str, float] = {}  # metrics of the last estimator call
        self.last_mode: str | None = None  # quantile mode the last call actually used

    # -- state -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "q": self.q.clone(),
            "levels": self.levels.clone(),
            "initialized": self.initialized,
            "updates": self.updates,
            "lr_q": self.lr_q,
        }

    def load_state_dict(self, state: dict) -> None:
        missing = {"q", "initialized", "updates", "lr_q"} - set(state)
        if missing:
            raise ValueError(f"QuantileTracker state is missing {sorted(missing)}")
        q = torch.as_tensor(state["q"], dtype=torch.float32).detach().cpu().clone()
        if q.shape != self.q.shape:
            raise ValueError(f"QuantileTracker state has {q.numel()} quantiles, expected {self.q.numel()}")
        if "levels" in state and not torch.allclose(torch.as_tensor(state["levels"]).float(), self.levels):
            raise ValueError("QuantileTracker state was saved with other levels")
        self.q = q
        self.initialized = bool(state["initialized"])
        self.updates = int(state["updates"])
        self.lr_q = float(state["lr_q"])

    def reset(self) -> None:
        self.q.zero_()
        self.initialized = False
        self.updates = 0
        self.last = {}
        self.last_mode = None

    # -- reading -------------------------------------------------------------------------
    def level_index(self, level: float) -> int:
        """Index of the level nearest to ``level``; a tie goes to the lower level."""
        dist = [round(abs(lv - float(level)), 9) for lv in LEVELS]
        return dist.index(min(dist))

    def value(self, level: float) -> float:
        return float(self.q[self.level_index(level)])

    def baselines(self, alpha: float, beta: float, natural_baseline_base: bool = True) -> tuple[float, float]:
        """(RVaR baseline, CVaR baseline): trapezoid integrals over the levels (not renormalised)
        of ``g(q_k; a, b)`` and ``-(a - q_k)^+`` with the TRACKED ``a, b``; 0 before init."""
        if not self.initialized:
            return 0.0, 0.0
        q = self.q.double()
        a, b = q[self.level_index(alpha)], q[self.level_index(beta)]
        g = (q - a).clamp(min=0) - (q - b).clamp(min=0)
        if natural_baseline_base:
            g = g + (a - b)
        levels = self.levels.double()
        rvar = torch.trapezoid(g, levels)
        cvar = torch.trapezoid(-(a - q).clamp(min=0), levels)
        return float(rvar), float(cvar)

    # -- updating ------------------------------------------------------------------------
    @torch.no_grad()
    def update(self, paper_scores: torch.Tensor) -> None:
        """One tracker step with all of a step's paper scores (pooled across bundles)."""
        s = paper_scores.detach().reshape(-1).to("cpu", torch.float32)
        if s.numel() == 0:
            return
        if not self.initialized:
            self.q = torch.quantile(s, self.levels).to(torch.float32)
            self.initialized = True
        else:
            below = (s.unsqueeze(0) < self.q.unsqueeze(1)).float().mean(dim=1)  # (19,)
            grad = -(self.levels - below)
            self.q.add_(grad, alpha=-self.lr_q)
        self.updates += 1

    def metrics(self, prefix: str = "riskpo/") -> dict[str, float]:
        """Flat metrics dict for logging: every q_k, the tracker state and the last call's figures.

        All values are floats (``riskpo/mode`` is a code: 0 batch, 1 track, 2 mix), so the
        dict can go to any verl logger backend.
        """
        out = {f"{prefix}q_{level_key(lv)}": float(v) for lv, v in zip(LEVELS, self.q.tolist(), strict=True)}
        out[f"{prefix}tracker_initialized"] = float(self.initialized)
        out[f"{prefix}tracker_updates"] = float(self.updates)
        out.update({f"{prefix}{k}": float(v) for k, v in self.last.items()})
        return out

    def __repr__(self) -> str:
        qs = ", ".join(f"{v:.3g}" for v in self.q.tolist())
        return f"QuantileTracker(lr_q={self.lr_q}, initialized={self.initialized}, updates={self.updates}, q=[{qs}])"
