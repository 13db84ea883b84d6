"""The samples table: one row per (benchmark, problem, sample), written by every sampler.

Samplers (embedded on CPU, vLLM on GPU) build it through ``run_evaluation`` and
``validate_samples``; ``metrics.py`` and the report read it. One parquet file per benchmark,
``<samples_dir>/<benchmark>.parquet``. Extra columns are kept and ignored.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

#: column -> pandas dtype; ``problem_id`` is always stored as a string so int and str ids mix.
SAMPLES_SCHEMA: dict[str, str] = {
    "benchmark": "str",  # benchmark name (the key given to run_evaluation), e.g. "gsm8k"
    "problem_id": "str",  # extra_info.index of the prepared row, else its row number
    "sample_idx": "int64",  # 0 .. n-1 within the problem
    "response": "str",  # generated text (no prompt)
    "pred": "str",  # parsed final answer; "" when none could be parsed
    "score": "float64",  # 0.0 / 1.0 correctness (the reward's ``acc``)
    "num_tokens": "int64",  # response length in tokens
}
SAMPLES_COLUMNS: tuple[str, ...] = tuple(SAMPLES_SCHEMA)
KEY_COLUMNS: tuple[str, ...] = ("benchmark", "problem_id", "sample_idx")


def empty_samples() -> pd.DataFrame:
    """A zero-row samples table with the schema's columns and dtypes."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in SAMPLES_SCHEMA.items()})


def validate_samples(df: pd.DataFrame, *, source: str = "samples table") -> pd.DataFrame:
    """Check a samples table and return a copy with the schema's dtypes (``pred`` NaN -> "").

    Raises ``ValueError`` with one line naming the problem: missing columns, no rows, missing
    values, a score other than 0/1, negative token counts, duplicate (benchmark, problem_id,
    sample_idx) keys.
    """
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"{source}: expected a pandas DataFrame; got {type(df).__name__}")
    missing = [c for c in SAMPLES_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(
            f"{source} is missing column(s) {', '.join(map(repr, missing))}; needs: {', '.join(SAMPLES_COLUMNS)}"
        )
    if len(df) == 0:
        raise ValueError(f"{source} has no rows")
    out = df.copy()
    out["pred"] = out["pred"].where(out["pred"].notna(), "")
    for col in SAMPLES_COLUMNS:
        if out[col].isna().any():
            row = int(np.flatnonzero(out[col].isna().to_numpy())[0])
            raise ValueError(f"{source}: column '{col}' has a missing value (row {row})")
    for col in ("benchmark", "problem_id", "response", "pred"):
        out[col] = out[col].astype(str)
    if (out["benchmark"] == "").any():
        raise ValueError(f"{source}: column 'benchmark' has an empty name")
    for col in ("sample_idx", "num_tokens", "score"):
        num = pd.to_numeric(out[col], errors="coerce")
        if num.isna().any():
            bad = out[col][num.isna()].iloc[0]
            raise ValueError(f"{source}: column '{col}' must be numeric; found {bad!r}")
        if col != "score" and ((num != np.round(num)) | (num < 0)).any():
            bad = num[(num != np.round(num)) | (num < 0)].iloc[0]
            raise ValueError(
                f"{source}: column '{col}' must hold non-negative integers; found {float(bad):g}"
            )
        out[col] = num.astype(SAMPLES_SCHEMA[col])
    bad_score = ~out["score"].isin([0.0, 1.0])
    if bad_score.any():
        r = out[bad_score].iloc[0]
        raise ValueError(
            f"{source}: column 'score' must be 0 or 1; found {float(r['score']):g} "
            f"(benchmark '{r['benchmark']}', problem '{r['problem_id']}')"
        )
    dup = out.duplicated(list(KEY_COLUMNS))
    if dup.any():
        r = out[dup].iloc[0]
        raise ValueError(
            f"{source}: duplicate sample (benchmark '{r['benchmark']}', problem '{r['problem_id']}', "
            f"sample_idx {r['sample_idx']})"
        )
    return out


def read_samples(path: str | os.PathLike) -> pd.DataFrame:
    """Read samples tables: a parquet file, or every ``*.parquet`` in a directory; validated."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.parquet"))
        if not files:
            raise ValueError(f"no samples: directory '{path}' holds no *.parquet file")
    elif path.is_file():
        files = [path]
    else:
        raise ValueError(f"no samples: '{path}' does not exist")
    frames = [validate_samples(pd.read_parquet(f), source=f"samples file '{f}'") for f in files]
    return validate_samples(pd.concat(frames, ignore_index=True), source=f"samples in '{path}'")
