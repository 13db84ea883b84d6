"""The prepared-row schema: what verl's ``RLHFDataset`` reads, in one place.

A prepared parquet file has exactly these columns, in this order::

    data_source   str   the Hub id (``HuggingFaceH4/MATH-500``), ``local`` or ``riskrl/<task>``;
                        verl's ``data.reward_fn_key``, and what ``riskrl.rewards`` dispatches on
    prompt        list  chat messages ``[{"role": "user", "content": ...}]`` (``data.prompt_key``)
    ability       str   ``math`` (``arithmetic`` for the embedded task)
    reward_model  dict  ``{"style": "rule", "ground_truth": str}``
    extra_info    dict  ``{"index": int, "split": str, "source_id": str, "problem": str, ...}``;
                        ``index`` is the row's position in the file, ``source_id`` the original
                        row id (or ``<split>:<row>`` when the source has none), ``problem`` the
                        raw problem text (used by the contamination check and the evaluator)

The evaluator reuses ``PreparedRow`` / ``read_prepared``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import pandas as pd

COLUMNS: tuple[str, ...] = ("data_source", "prompt", "ability", "reward_model", "extra_info")
ROLES: tuple[str, ...] = ("system", "user", "assistant")
DEFAULT_ABILITY = "math"


class Message(BaseModel):
    model_config = ConfigDict(strict=True)  # no silent coercion: an index "3" is an error

    role: Literal["system", "user", "assistant"]
    content: str = Field(min_length=1)


class RewardModel(BaseModel):
    model_config = ConfigDict(strict=True)

    style: Literal["rule"] = "rule"
    ground_truth: str = Field(min_length=1)


class ExtraInfo(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)  # extras: level, subject, url, ...

    index: int
    split: str
    source_id: str
    problem: str = ""


class PreparedRow(BaseModel):
    """One row of a prepared file (see module docstring)."""

    model_config = ConfigDict(strict=True)

    data_source: str = Field(min_length=1)
    prompt: list[Message] = Field(min_length=1)
    ability: str = DEFAULT_ABILITY
    reward_model: RewardModel
    extra_info: ExtraInfo

    def record(self) -> dict[str, Any]:
        """The row as the plain dict written to parquet (columns in ``COLUMNS`` order)."""
        d = self.model_dump()
        return {c: d[c] for c in COLUMNS}


def to_python(value: Any) -> Any:
    """Parquet round trips give numpy arrays for lists; turn them (recursively) back into lists."""
    if isinstance(value, np.ndarray):
        return [to_python(v) for v in value.tolist()]
    if isinstance(value, list | tuple):
        return [to_python(v) for v in value]
    if isinstance(value, dict):
        return {k: to_python(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def to_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Prepared rows -> DataFrame with exactly ``COLUMNS``."""
    import pandas as pd

    return pd.DataFrame.from_records(rows, columns=list(COLUMNS))


def read_prepared(path: str | os.PathLike) -> list[PreparedRow]:
    """Read and check a prepared parquet file; raises ``ValueError`` naming the first bad row."""
    import pandas as pd

    df = pd.read_parquet(path)
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {', '.join(missing)}; a prepared file has {', '.join(COLUMNS)}"
        )
    rows = []
    for i, rec in enumerate(df[list(COLUMNS)].to_dict("records")):
        try:
            rows.append(PreparedRow.model_validate(to_python(rec)))
        except ValueError as e:
            first = str(e).splitlines()[1:3]
            raise ValueError(
                f"{path}: row {i} is not a prepared row: {' '.join(s.strip() for s in first)}"
            ) from None
    return rows
