"""Reading prepared-schema parquet files and batching their prompts for the embedded model."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from riskrl.evaluation.sampling import render_prompt  # the one rendering shared with evaluation

REQUIRED = ("prompt", "data_source", "reward_model")


@dataclass
class Example:
    """One prepared row, reduced to what training and evaluation read."""

    prompt: str  # rendered prompt text (the user message for the embedded tokenizer)
    ground_truth: str
    data_source: str
    extra_info: dict[str, Any] = field(default_factory=dict)


def _plain(x: Any) -> Any:
    """pyarrow gives numpy arrays for list columns; turn them back into lists."""
    if isinstance(x, np.ndarray):
        return [_plain(v) for v in x.tolist()]
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    return x


def load_examples(path: str | os.PathLike, tokenizer: Any = None) -> list[Example]:
    """Rows of a prepared parquet file as ``Example``s (one-line errors for bad files)."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no data file at {path}")
    df = pd.read_parquet(path)
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; have {', '.join(df.columns)}")
    if len(df) == 0:
        raise ValueError(f"{path}: no rows")
    out = []
    for row in df.to_dict("records"):
        rm = _plain(row["reward_model"])
        if not isinstance(rm, dict) or "ground_truth" not in rm:
            raise ValueError(f"{path}: reward_model must be a dict with ground_truth, got {rm!r}")
        extra = _plain(row.get("extra_info")) or {}
        out.append(
            Example(
                render_prompt(_plain(row["prompt"]), tokenizer),
                str(rm["ground_truth"]),
                str(row["data_source"]),
                extra,
            )
        )
    return out


def encode_prompts(
    tokenizer: Any, texts: list[str], device: torch.device | str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded (B, P) ids and mask, ``<bos>`` first, on ``device``."""
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    return enc["input_ids"].to(device), enc["attention_mask"].to(device)


def decode_responses(tokenizer: Any, response_ids: torch.Tensor, response_mask: torch.Tensor) -> list[str]:
    """Response texts up to (not including) the first EOS; other special tokens stay visible,
    so a response with a stray ``<pad>`` or ``<bos>`` is simply wrong."""
    eos = tokenizer.eos_token_id
    ids = response_ids.tolist()
    lengths = response_mask.sum(-1).long().tolist()
    texts = []
    for row, n in zip(ids, lengths, strict=True):
        row = row[:n]
        if row and row[-1] == eos:
            row = row[:-1]
        texts.append(tokenizer.decode(row, skip_special_tokens=False))
    return texts
