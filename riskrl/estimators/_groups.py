"""Prompt ids -> dense group ids, in order of first appearance, without a Python loop.

verl hands an estimator only ``index`` (the ``uid`` of each response, one uuid4 string per
prompt, shared by its rollouts; VERL_NOTES §1). RiskPO needs more than a grouping: bundles
are runs of *consecutive* prompts, so prompts are numbered in the order they first appear
in the batch (as the published trainer cut its batch), not in the sorted order that
``np.unique`` (and verl's ``as_torch_index``) would give.

verl's V1 trainer pads batches with synthetic rows whose uid starts with ``pad`` and whose
response mask is all zero (``trainer/ppo/padding_utils.py``); those rows get no group
(id -1) and advantage 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

PAD_PREFIX = "pad"


@dataclass
class Groups:
    """Dense grouping of the N responses of one batch.

    group:      (N,) int64, prompt number in order of first appearance, -1 for pad rows
    num_groups: number of real prompts P
    counts:     (P,) int64, responses per prompt
    has_pad:    whether any row is padding
    """

    group: torch.Tensor
    num_groups: int
    counts: torch.Tensor
    has_pad: bool
    _position: torch.Tensor | None = None

    @property
    def valid(self) -> torch.Tensor:
        return self.group >= 0

    @property
    def position(self) -> torch.Tensor:
        """(N,) int64 rank of each response among its prompt's responses in batch order
        (0-based), -1 for pad rows. Computed on first use (only RiskPO needs it)."""
        if self._position is None:
            g = self.group
            key = torch.where(g >= 0, g, self.num_groups)  # pads sort last
            order = torch.argsort(key, stable=True)
            counts = torch.cat([self.counts, torch.zeros(1, dtype=self.counts.dtype, device=g.device)])
            counts[-1] = g.numel() - int(self.counts.sum())
            starts = torch.cumsum(counts, 0) - counts
            rank = torch.empty_like(g)
            rank[order] = torch.arange(g.numel(), device=g.device) - starts[key[order]]
            self._position = torch.where(g >= 0, rank, torch.full_like(rank, -1))
        return self._position


def _to_numpy_index(index) -> np.ndarray:
    if isinstance(index, torch.Tensor):
        return index.detach().cpu().numpy()
    return np.asarray(index)


def _first_appearance_codes(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(codes (N,) int64, uniques (P,)): prompts numbered by first appearance in ``idx``.

    One ``np.unique`` (a sort, as verl's own ``as_torch_index``) gives the sorted uniques, the
    first position of each and the inverse map; ranking the uniques by first position turns
    the sorted numbering into the first-appearance numbering. No Python loop over responses.
    """
    if idx.shape[0] == 0:
        return np.zeros(0, dtype=np.int64), idx[:0]
    try:
        uniq, first, inv = np.unique(idx, return_index=True, return_inverse=True)
    except TypeError:  # mixed, unorderable labels: compare their strings
        uniq, first, inv = np.unique(idx.astype(str), return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # sorted-unique number -> rank by first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(order.shape[0])
    return rank[inv.reshape(-1)].astype(np.int64, copy=False), uniq[order]


def factorize(index, *, device: torch.device | str, response_mask: torch.Tensor | None = None) -> Groups:
    """Number the prompts of ``index`` by first appearance and rank responses inside each.

    Args:
        index: (N,) prompt id per response: verl's uid ndarray (strings), or ints.
        device: device of the returned tensors (never assume CUDA: VERL_NOTES §5).
        response_mask: optional (N, L) mask. String ids starting with ``pad`` are padding;
            with a mask, only if their mask is also all zero (verl V1 pads exactly so).
    """
    idx = _to_numpy_index(index)
    if idx.ndim != 1:
        raise ValueError(f"index must be 1-D (one prompt id per response), got shape {tuple(idx.shape)}")
    n = idx.shape[0]
    codes, uniques = _first_appearance_codes(idx)
    if n and (uniques.dtype == object or uniques.dtype.kind in "US"):
        pad_u = np.char.startswith(uniques.astype(str), PAD_PREFIX)
        pad = pad_u[codes] if pad_u.any() else None
    else:
        pad = None
    if pad is not None and response_mask is not None:
        # only the (few) pad-named rows are checked, so the common case costs no pass over (N, L)
        rows = np.flatnonzero(pad)
        has_tokens = response_mask[torch.from_numpy(rows).to(response_mask.device)].any(dim=-1)
        pad[rows[has_tokens.cpu().numpy()]] = False
    if pad is not None and pad.any():
        # renumber the real prompts densely, keeping first-appearance order (codes already follow it)
        real_codes = np.unique(codes[~pad], return_inverse=True)[1].reshape(-1).astype(np.int64, copy=False)
        codes = np.full(n, -1, dtype=np.int64)
        codes[~pad] = real_codes
        has_pad = True
    else:
        has_pad = False
    num_groups = int(codes.max()) + 1 if n and codes.max() >= 0 else 0
    group = torch.from_numpy(codes).to(device)
    counts = torch.bincount(group[group >= 0] if has_pad else group, minlength=num_groups)
    return Groups(group=group, num_groups=num_groups, counts=counts, has_pad=has_pad)


def check_finite(scores: torch.Tensor, name: str = "scores") -> None:
    """Raise a one-line ValueError if any reward of ``scores`` (1-D: one per row) is NaN or inf.
    verl's token-level rewards are checked through their row sums (a NaN/inf token makes its sum
    non-finite)."""
    if scores.dim() != 1:
        raise ValueError(f"{name} must be 1-D (one reward per row), got shape {tuple(scores.shape)}")
    bad = ~torch.isfinite(scores)
    nbad = int(bad.sum())
    if nbad:
        raise ValueError(f"{name}: {nbad} of {bad.numel()} rows have NaN or inf rewards")


def response_groups(scores: torch.Tensor, index) -> Groups:
    """The checks every per-response estimator starts with (1-D finite scores, one index entry per
    response), then the prompt groups of ``index``; one-line ValueError otherwise."""
    if scores.dim() != 1:
        raise ValueError(f"scores must be 1-D (one reward per response), got shape {tuple(scores.shape)}")
    check_finite(scores)
    groups = factorize(index, device=scores.device)
    if groups.group.numel() != scores.numel():
        raise ValueError(f"index has {groups.group.numel()} entries but scores has {scores.numel()}")
    return groups


def out_dtype(scores: torch.Tensor) -> torch.dtype:
    """The advantages' dtype: ``promote(scores.dtype, float32)``."""
    return torch.promote_types(scores.dtype, torch.float32) if scores.is_floating_point() else torch.float32
