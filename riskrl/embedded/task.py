"""The embedded task: fixed-width multiplication with an exact checker.

A problem is ``aaa*b=`` (operands zero padded to ``a_digits`` and ``b_digits``) and its
answer the product zero padded to ``a_digits + b_digits`` digits, most significant digit
first: ``123*4=`` -> ``0492``; with ``b_digits=2``, ``123*45=`` -> ``05535``. Every answer
has the same length, so generation needs exactly ``answer_len + 1`` new tokens (digits + EOS).

Default difficulty (3 x 1 digits, uniform operands): after the default SFT the base solves
about a third of held-out problems per sample and about two thirds within 16 samples, the wide
Pass@1 -> Pass@16 gap the estimator study needs (docs/embedded.md). 3 x 2 digits is far
harder for the 0.86 M model: Pass@16 stays near 0.1-0.25 after 400-1000 SFT steps.

The problem space ``[1, 10**a_digits) x [1, 10**b_digits)`` is cut once, by a seeded hash
(``partition_seed``), into ``train``, ``val`` and ``test``: held-out splits never share a
problem with ``train`` whatever sampling seed the caller uses. Rows follow the prepared
verl schema (``prompt``, ``data_source``, ``ability``, ``reward_model``, ``extra_info``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

DATA_SOURCE = "riskrl/multiply"
ABILITY = "arithmetic"
SPLITS = ("train", "val", "test")
OPERAND_SAMPLING = ("digits", "values")


@dataclass
class TaskConfig:
    """Difficulty and split of the multiplication task (params.yaml section ``task``)."""

    a_digits: int = 3
    """width of the first operand: 1 <= a < 10**a_digits, written zero padded"""
    b_digits: int = 1
    """width of the second operand: 1 <= b < 10**b_digits, written zero padded"""
    heldout_frac: float = 0.1
    """fraction of the problem space given to each held-out split (``val`` and ``test``)"""
    partition_seed: int = 0
    """seed of the hash that partitions problems into splits; keep it fixed across splits"""
    answer_order: str = "msb"
    """``msb``: the product's most significant digit first (as written); ``lsb``: reversed, an
    easier task (each digit then depends only on digits already written)"""
    operand_sampling: str = "values"
    """``values``: uniform over the split's problems; ``digits``: each operand's digit count
    uniform, then its value (more short, easy operands)"""

    def __post_init__(self) -> None:
        if not (1 <= self.a_digits <= 6 and 1 <= self.b_digits <= 6):
            raise ValueError(f"a_digits and b_digits must be in 1..6, got {self.a_digits}, {self.b_digits}")
        if not (0.0 < self.heldout_frac < 0.5):
            raise ValueError(f"heldout_frac must be in (0, 0.5), got {self.heldout_frac}")
        if self.answer_order not in ("msb", "lsb"):
            raise ValueError(f"unknown answer_order {self.answer_order!r}; known: msb, lsb")
        if self.operand_sampling not in OPERAND_SAMPLING:
            raise ValueError(
                f"unknown operand_sampling {self.operand_sampling!r}; known: {', '.join(OPERAND_SAMPLING)}"
            )

    @property
    def answer_len(self) -> int:
        return self.a_digits + self.b_digits


def format_problem(a: int, b: int, cfg: TaskConfig) -> str:
    return f"{a:0{cfg.a_digits}d}*{b:0{cfg.b_digits}d}="


def format_answer(a: int, b: int, cfg: TaskConfig) -> str:
    digits = f"{a * b:0{cfg.answer_len}d}"
    return digits if cfg.answer_order == "msb" else digits[::-1]


def cut_response(text: str, eos: str = "<eos>") -> str:
    """The answer a response gives: its text up to the first whitespace or EOS marker."""
    text = text.split(eos, 1)[0]
    parts = text.split(None, 1)
    return parts[0] if parts else ""


def check_answer(response: str, ground_truth: str) -> bool:
    """Exact checker: True iff the response, cut at the first whitespace/EOS, equals the answer."""
    return cut_response(response) == str(ground_truth).strip()


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """A good 64-bit mixing hash (vectorised; uint64 arithmetic wraps)."""
    x = x.astype(np.uint64)
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return x


def split_problems(cfg: TaskConfig, split: str) -> np.ndarray:
    """All problems of ``split`` as an (N, 2) int64 array of (a, b), sorted."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    a, b = np.meshgrid(np.arange(1, 10**cfg.a_digits), np.arange(1, 10**cfg.b_digits), indexing="ij")
    a, b = a.ravel(), b.ravel()
    key = (a.astype(np.uint64) << np.uint64(32)) | b.astype(np.uint64)
    salt = _splitmix64(np.array([cfg.partition_seed], dtype=np.uint64))[0]
    u = (_splitmix64(key ^ salt) >> np.uint64(11)).astype(np.float64) / float(1 << 53)  # uniform [0, 1)
    f = cfg.heldout_frac
    which = np.where(u < f, 2, np.where(u < 2 * f, 1, 0))  # 0 train, 1 val, 2 test
    keep = which == SPLITS.index(split)
    return np.stack([a[keep], b[keep]], axis=1).astype(np.int64)


def problem_weights(problems: np.ndarray) -> np.ndarray:
    """(N,) weights making each operand's digit count uniform: 1 / #(numbers with that many digits)."""

    def per_operand(x: np.ndarray) -> np.ndarray:
        digits = np.floor(np.log10(x)).astype(np.int64) + 1  # x >= 1
        return 1.0 / (9.0 * 10.0 ** (digits - 1))

    return per_operand(problems[:, 0]) * per_operand(problems[:, 1])


def make_row(a: int, b: int, index: int, split: str, cfg: TaskConfig) -> dict[str, Any]:
    problem = format_problem(a, b, cfg)
    return {
        "data_source": DATA_SOURCE,
        "prompt": [{"role": "user", "content": problem}],
        "ability": ABILITY,
        "reward_model": {"style": "rule", "ground_truth": format_answer(a, b, cfg)},
        "extra_info": {"index": int(index), "split": split, "source_id": problem[:-1], "problem": problem},
    }


def generate_rows(n: int, seed: int, split: str, **difficulty: Any) -> list[dict[str, Any]]:
    """``n`` distinct problems of ``split``, drawn with ``seed``, as prepared-schema rows.

    ``difficulty`` holds ``TaskConfig`` fields (``a_digits``, ``b_digits``, ``heldout_frac``,
    ``partition_seed``). Raises if ``n`` exceeds the split's size.
    """
    from riskrl.embedded.configs import from_dict

    cfg = from_dict(TaskConfig, difficulty, section="task")
    pool = split_problems(cfg, split)
    if not (0 < n <= len(pool)):
        raise ValueError(f"n={n} must be in 1..{len(pool)} (the problems of split {split!r})")
    rng = np.random.default_rng(seed)
    if cfg.operand_sampling == "values":
        pick = rng.choice(len(pool), size=n, replace=False)
    else:
        w = problem_weights(pool)  # weighted sampling without replacement (Efraimidis-Spirakis)
        pick = np.argsort(rng.exponential(size=len(pool)) / w, kind="stable")[:n]
    return [make_row(int(a), int(b), i, split, cfg) for i, (a, b) in enumerate(pool[pick])]


def write_split(path: str | os.PathLike, n: int, seed: int, split: str, **difficulty: Any) -> None:
    """Write ``generate_rows(n, seed, split, **difficulty)`` to a parquet file atomically."""
    import pandas as pd

    from riskrl.io import write_parquet

    write_parquet(path, pd.DataFrame(generate_rows(n, seed, split, **difficulty)))
