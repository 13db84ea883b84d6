"""RiskPO: Mixed Value-at-Risk advantages over bundles of prompts, with tracked quantiles.

Math: docs/estimators.md (METHODS.md "RiskPO", steps 1-7). For one step:

1. prompts, numbered by first appearance in the batch, are cut into bundles of
   ``bundle_size`` consecutive prompts (a last, shorter bundle is allowed);
2. paper ``m`` of a bundle takes the m-th response of each of its prompts, m < M =
   the fewest responses of any prompt in the bundle; its score ``S_m`` is their reward sum;
   responses past M get advantage 0;
3. quantile values ``a < b`` at levels ``alpha = quantile_down``, ``beta = quantile_up``:
   per-bundle empirical quantiles (``batch``), the tracker's values from the previous
   steps (``track``; ``batch`` until the tracker is initialised) or their mean (``mix``);
4. ``g(S; a, b) = (S - a)^+ - (S - b)^+ + (a - b)`` [the last term only with
   ``natural_baseline_adv``], ``A_rvar = (g - base_rvar) / (beta - alpha + eps)``;
5. MVaR: ``A_cvar = (-(a - S)^+ - base_cvar) / (alpha + eps)``,
   ``A = (w_mix A_cvar + A_rvar) / (w_mix + 1)``; or the upper tail
   ``A_up = (S - b)^+ / (1 - beta + eps)``, ``A = (upper_weight A_up + A_rvar) / (upper_weight + 1)``;
   with ``norm_adv_by_std_in_grpo``, ``A /= std(papers of the bundle) + eps`` where a std
   <= 1e-3 (or a single paper) counts as 1 (guard not in the published code);
6. the tracker is then updated with all of the step's paper scores (it drives step t+1);
7. credit assignment of ``A`` to the responses of its paper (uniform/score/std/sum-mean).

Everything is vectorised: papers live in a padded (bundles, M_max) tensor; per-bundle
quantiles come from one sort along the paper axis. No Python loop over responses,
prompts or bundles.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from riskrl.estimators._groups import Groups, out_dtype, response_groups
from riskrl.estimators.options import RiskPOOptions, parse_riskpo
from riskrl.estimators.tracker import MODE_CODES, QuantileTracker

logger = logging.getLogger("riskrl.riskpo")

STD_GUARD = 1e-3  # a std at or below this counts as 1 (papers of a bundle, responses of a prompt)
SUM_MEAN_ZERO = 1e-6  # |sum d| at or below this: split A evenly (METHODS.md step 7)


def _sorted_quantile(sorted_vals: torch.Tensor, counts: torch.Tensor, level: float) -> torch.Tensor:
    """Linear-interpolation quantile (as ``torch.quantile``) of each row of a sorted, right-
    padded (B, M_max) tensor whose row b holds ``counts[b]`` valid values. Returns (B,)."""
    rank = torch.tensor(level, dtype=sorted_vals.dtype, device=sorted_vals.device) * (counts - 1).to(sorted_vals.dtype)
    lo = rank.floor()
    hi = rank.ceil()
    below = sorted_vals.gather(1, lo.long().unsqueeze(1)).squeeze(1)
    above = sorted_vals.gather(1, hi.long().unsqueeze(1)).squeeze(1)
    return torch.lerp(below, above, rank - lo)


def riskpo_from_groups(
    scores: torch.Tensor,
    groups: Groups,
    opts: RiskPOOptions,
    tracker: QuantileTracker | None = None,
    norm_adv_by_std_in_grpo: bool = True,
) -> torch.Tensor:
    """RiskPO per-response advantage (N,) float64 for grouped ``scores`` (N,).

    Uses ``tracker`` as it stands, then updates it with this step's paper scores and
    stores this call's figures in ``tracker.last`` (also when ``tracker`` is a throwaway).
    """
    dev = scores.device
    f64 = torch.float64
    r = scores.to(f64)
    n = r.numel()
    tracker = tracker if tracker is not None else QuantileTracker(lr_q=opts.lr_q)
    alpha, beta, eps = opts.quantile_down, opts.quantile_up, opts.epsilon
    num_prompts = groups.num_groups
    if num_prompts == 0:
        tracker.last = {"mode": float(MODE_CODES["batch"]), "num_bundles": 0.0}
        return torch.zeros(n, dtype=f64, device=dev)

    # ---- bundles and papers ---------------------------------------------------------------
    valid = groups.valid
    g = groups.group.clamp(min=0)  # pad rows are routed to the dummy paper slot below
    if groups.has_pad:
        r = torch.where(valid, r, torch.zeros_like(r))
    counts = groups.counts  # (P,) responses per prompt
    bundle_of_prompt = torch.arange(num_prompts, device=dev) // opts.bundle_size  # (P,)
    num_bundles = -(-num_prompts // opts.bundle_size)
    papers_per_bundle = torch.full((num_bundles,), torch.iinfo(torch.int64).max, dtype=torch.int64, device=dev)
    papers_per_bundle = papers_per_bundle.scatter_reduce(0, bundle_of_prompt, counts, reduce="amin")  # (B,) M_b
    prompts_per_bundle = torch.bincount(bundle_of_prompt, minlength=num_bundles)  # (B,)
    m_max = int(papers_per_bundle.max())
    n_slots = num_bundles * m_max  # papers as a flat (B * M_max) axis, plus one dummy slot
    bundle = bundle_of_prompt.index_select(0, g)  # (N,)
    pos = groups.position
    in_paper = (pos < papers_per_bundle.index_select(0, bundle)) & (pos >= 0)  # (N,) past M (or pad): no paper
    slot = torch.where(in_paper, bundle * m_max + pos, torch.full_like(pos, n_slots))  # (N,)
    paper = torch.zeros(n_slots + 1, dtype=f64, device=dev).index_add_(0, slot, r)[:n_slots]
    paper = paper.view(num_bundles, m_max)  # (B, M_max) paper scores S
    paper_valid = torch.arange(m_max, device=dev).unsqueeze(0) < papers_per_bundle.unsqueeze(1)  # (B, M_max)
    mb = papers_per_bundle.to(f64)

    # ---- quantile values a, b -------------------------------------------------------------
    sorted_papers = torch.where(paper_valid, paper, torch.full_like(paper, float("inf"))).sort(dim=1).values
    a_batch = _sorted_quantile(sorted_papers, papers_per_bundle, alpha)  # (B,)
    b_batch = _sorted_quantile(sorted_papers, papers_per_bundle, beta)
    tracked = tracker.initialized
    if tracked:
        a_track, b_track = tracker.value(alpha), tracker.value(beta)
    mode = opts.use_q_track_mode
    if mode == "batch" or not tracked:
        mode_used = "batch"
        a, b = a_batch, b_batch
    elif mode == "track":
        mode_used = "track"
        a = torch.full_like(a_batch, a_track)
        b = torch.full_like(b_batch, b_track)
    else:  # mix
        mode_used = "mix"
        a, b = 0.5 * (a_batch + a_track), 0.5 * (b_batch + b_track)
    if mode_used != mode:
        logger.info("riskpo: use_q_track_mode=%s but the tracker is not initialised yet: batch quantiles", mode)
    a, b = a.unsqueeze(1), b.unsqueeze(1)  # (B, 1)
    base_rvar, base_cvar = tracker.baselines(alpha, beta, opts.natural_baseline_base) if opts.use_mean_as_baseline else (0.0, 0.0)

    # ---- paper advantage --------------------------------------------------------------------
    g_s = (paper - a).clamp(min=0) - (paper - b).clamp(min=0)  # (B, M_max)
    if opts.natural_baseline_adv:
        g_s = g_s + (a - b)
    paper_adv = (g_s - base_rvar) / (beta - alpha + eps)
    if opts.use_mixing_risk_measure:
        cvar = (-(a - paper).clamp(min=0) - base_cvar) / (alpha + eps)
        paper_adv = (opts.w_mix * cvar + paper_adv) / (opts.w_mix + 1.0)
    elif opts.risk_seeking_upper_tail:
        upper = (paper - b).clamp(min=0) / (1.0 - beta + eps)
        paper_adv = (opts.upper_weight * upper + paper_adv) / (opts.upper_weight + 1.0)
    if norm_adv_by_std_in_grpo:
        p0 = torch.where(paper_valid, paper, torch.zeros_like(paper))
        mean = p0.sum(1) / mb  # (B,)
        var = (torch.where(paper_valid, paper - mean.unsqueeze(1), torch.zeros_like(paper)) ** 2).sum(1) / (mb - 1).clamp(min=1)
        std = var.sqrt()
        std = torch.where((papers_per_bundle <= 1) | (std <= STD_GUARD), torch.ones_like(std), std)
        paper_adv = paper_adv / (std.unsqueeze(1) + eps)
    paper_adv = torch.where(paper_valid, paper_adv, torch.zeros_like(paper_adv))

    # ---- credit assignment ------------------------------------------------------------------
    # each response reads its paper's A through its slot; the dummy slot holds 0
    resp_adv = torch.cat([paper_adv.reshape(-1), paper_adv.new_zeros(1)]).index_select(0, slot)  # (N,)
    extra: dict[str, float] = {}
    cmode = opts.credit_assign_mode
    if cmode == "score":
        resp_adv = torch.where(r > 0, 0.5 * resp_adv, 1.5 * resp_adv)
    elif cmode in ("std", "sum-mean"):
        cnt = counts.to(f64)
        p_mean = torch.zeros(num_prompts, dtype=f64, device=dev).index_add_(0, g, r) / cnt  # (P,) over all responses
        centred = r - p_mean.index_select(0, g)  # (N,)
        if groups.has_pad:
            centred = torch.where(valid, centred, torch.zeros_like(centred))
        if cmode == "std":
            p_var = torch.zeros(num_prompts, dtype=f64, device=dev).index_add_(0, g, centred**2) / (cnt - 1).clamp(min=1)
            p_std = p_var.sqrt()
            p_std = torch.where((counts <= 1) | (p_std <= STD_GUARD), torch.ones_like(p_std), p_std)
            resp_adv = resp_adv / (p_std.index_select(0, g) + eps)
        else:
            d = torch.where(in_paper, centred, torch.zeros_like(centred))
            sum_d = torch.zeros(n_slots + 1, dtype=f64, device=dev).index_add_(0, slot, d).index_select(0, slot)
            even = sum_d.abs() <= SUM_MEAN_ZERO
            share = 1.0 / prompts_per_bundle.index_select(0, bundle).to(f64)
            weight = torch.where(even, share, d / torch.where(even, torch.ones_like(sum_d), sum_d))
            weight = torch.where(in_paper, weight, torch.zeros_like(weight))
            flipped = (weight < 0) & (resp_adv != 0)
            extra["sum_mean_sign_flip_frac"] = float(flipped.sum()) / max(int(in_paper.sum()), 1)
            extra["sum_mean_max_abs_weight"] = float(weight.abs().max())
            resp_adv = resp_adv * weight
    adv = torch.where(in_paper, resp_adv, torch.zeros_like(resp_adv))

    # ---- metrics, then the tracker step (step t drives step t+1) ---------------------------
    all_papers = paper[paper_valid]
    n_valid = max(int(valid.sum()) if groups.has_pad else n, 1)
    info: dict[str, Any] = {
        "mode": float(MODE_CODES[mode_used]),
        "tracked_quantiles_used": float(mode_used != "batch"),
        "a": float(a.mean()),
        "b": float(b.mean()),
        "batch_a_mean": float(a_batch.mean()),
        "batch_b_mean": float(b_batch.mean()),
        "num_bundles": float(num_bundles),
        "papers_per_bundle_min": float(papers_per_bundle.min()),
        "paper_score_mean": float(all_papers.mean()),
        "responses_without_paper": float(n_valid - int(in_paper.sum())),
        "adv_mean": float(adv.sum()) / n_valid,
        "adv_abs_max": float(adv.abs().max()),
        "adv_pos_frac": float((adv > 0).sum()) / n_valid,
    }
    if opts.use_mean_as_baseline:
        info["baseline_rvar"], info["baseline_cvar"] = base_rvar, base_cvar
    info.update(extra)
    tracker.update(all_papers)
    tracker.last = info
    tracker.last_mode = mode_used
    return adv


def riskpo_advantage(
    scores: torch.Tensor,
    index,
    tracker: QuantileTracker | None = None,
    norm_adv_by_std_in_grpo: bool = True,
    **options: Any,
) -> torch.Tensor:
    """Per-response RiskPO advantage, usable outside verl (e.g. from a TRL subclass).

    Args:
        scores: (N,) float tensor, one scalar reward per response (computed in float64).
        index: (N,) prompt id per response (verl's ``uid`` array, or ints). Prompts form
            bundles in order of first appearance; string ids starting with ``pad`` are verl
            V1 padding rows: advantage 0, never in a bundle.
        tracker: a :class:`QuantileTracker` used as it stands (``track``/``mix`` modes), then
            updated with this step's paper scores. ``None``: a throwaway tracker (so
            ``track`` falls back to ``batch`` quantiles).
        norm_adv_by_std_in_grpo: verl's flag: divide by the bundle's paper-score std.
        **options: RiskPO keys under the published names (``quantile_down``, ``bundle_size``,
            ``use_q_track_mode``, ``credit_assign_mode``, ...; see :class:`RiskPOOptions`).

    Returns:
        (N,) advantages, dtype ``promote(scores.dtype, float32)``, on ``scores.device``.
    """
    groups = response_groups(scores, index)
    opts = parse_riskpo(**options)
    if tracker is not None and "lr_q" in options and float(options["lr_q"]) != tracker.lr_q:
        logger.warning("riskpo: lr_q=%s ignored, the given tracker has lr_q=%s", options["lr_q"], tracker.lr_q)
    adv = riskpo_from_groups(scores, groups, opts, tracker, norm_adv_by_std_in_grpo)
    return adv.to(out_dtype(scores))
