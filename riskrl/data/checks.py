"""Helper columns for the validation suite: checks great-expectations has no built-in for.

``check_frame`` returns the prepared DataFrame plus one column per derived quantity. Where a
check is a yes/no question its column holds ``"ok"`` or a short description of what is wrong
(``"unparseable: \\frac{1}{"``), so GE's ``expect_column_values_to_be_in_set(["ok"])`` reports
useful example values. Columns:

    row                 position in the file (GE's unexpected-index column)
    prompt_check        prompt is a non-empty list of {role, content} messages with a user turn
    problem             raw problem text (``extra_info.problem`` or the prompt minus its template)
    prompt_length       characters of all message contents, or tokens with ``length_fn``
    reward_model_check  reward_model is {"style": "rule", "ground_truth": str}
    ground_truth        reward_model.ground_truth
    ground_truth_check  math-verify can parse it (``riskrl/*`` sources: non-empty is enough)
    extra_info_check    extra_info is a dict with index, split, source_id
    index, split        extra_info.index / extra_info.split
    problem_key         ``normalize_problem(problem)`` (None when empty), for the duplicate check
    contamination_check the problem is not in any benchmark (``eval_hashes``; train files only)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from riskrl.data.prepare import problem_of
from riskrl.data.schema import ROLES, to_python
from riskrl.data.templates import normalize_problem, problem_hash
from riskrl.rewards import EXACT_PREFIX, is_parseable

if TYPE_CHECKING:
    import pandas as pd  # imported where used: `import riskrl.data` in every stage stays light

OK = "ok"
HELPERS: tuple[str, ...] = (
    "row", "prompt_check", "problem", "prompt_length", "reward_model_check", "ground_truth",
    "ground_truth_check", "extra_info_check", "index", "split", "problem_key", "contamination_check",
)  # fmt: skip


def _short(value: Any, n: int = 60) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= n else text[: n - 3] + "..."


def prompt_problem(prompt: Any) -> str:
    """What is wrong with a ``prompt`` cell, or ``"ok"``."""
    if not isinstance(prompt, list):
        return f"not a list of messages: {type(prompt).__name__}"
    if not prompt:
        return "no messages"
    for i, m in enumerate(prompt):
        if not isinstance(m, dict):
            return f"message {i} is a {type(m).__name__}, not a dict"
        if m.get("role") not in ROLES:
            return f"message {i} has role {m.get('role')!r}"
        if not isinstance(m.get("content"), str) or not m["content"].strip():
            return f"message {i} has empty or non-text content"
    if not any(m["role"] == "user" for m in prompt):
        return "no user message"
    return OK


def reward_model_problem(rm: Any) -> str:
    if not isinstance(rm, dict):
        return f"not a dict: {type(rm).__name__}"
    if rm.get("style") != "rule":
        return f"style is {rm.get('style')!r}, not 'rule'"
    if "ground_truth" not in rm:
        return "no ground_truth"
    if rm["ground_truth"] is not None and not isinstance(rm["ground_truth"], str):
        return f"ground_truth is a {type(rm['ground_truth']).__name__}, not a str"
    return OK


def extra_info_problem(extra: Any) -> str:
    if not isinstance(extra, dict):
        return f"not a dict: {type(extra).__name__}"
    missing = [k for k in ("index", "split", "source_id") if extra.get(k) is None]
    return f"missing {', '.join(missing)}" if missing else OK


def check_frame(
    records: list[dict[str, Any]],
    *,
    length_fn: Callable[[list[dict]], int] | None = None,
    eval_hashes: Mapping[str, str] | None = None,
    desc: str = "check",
) -> pd.DataFrame:
    """A prepared file's rows (``pyarrow`` ``to_pylist()``: exact Python types, None for nulls) as a
    DataFrame of object columns, plus the helper columns of the module docstring."""
    cols: dict[str, list[Any]] = {h: [] for h in HELPERS}
    for i, rec in enumerate(tqdm(records, desc=desc, unit="row", disable=None)):
        prompt = to_python(rec.get("prompt"))
        rm = to_python(rec.get("reward_model"))
        extra = to_python(rec.get("extra_info"))
        pcheck = prompt_problem(prompt)
        problem = problem_of({"prompt": prompt if pcheck == OK else [], "extra_info": extra}).strip()
        if pcheck != OK:
            length = 0
        elif length_fn is not None:
            length = int(length_fn(prompt))
        else:
            length = sum(len(m["content"]) for m in prompt)
        gt = (
            rm.get("ground_truth")
            if isinstance(rm, dict) and isinstance(rm.get("ground_truth"), str)
            else None
        )
        gcheck = OK
        if gt and gt.strip():
            exact = str(rec.get("data_source", "")).startswith(EXACT_PREFIX)
            if not exact and not is_parseable(gt):
                gcheck = f"unparseable: {_short(gt)}"
        contamination = OK
        if eval_hashes and problem:
            where = eval_hashes.get(problem_hash(problem))
            if where is not None:
                contamination = f"in {where}: {_short(problem)}"
        values = {
            "row": i,
            "prompt_check": pcheck,
            "problem": problem,
            "prompt_length": length,
            "reward_model_check": reward_model_problem(rm),
            "ground_truth": gt,
            "ground_truth_check": gcheck,
            "extra_info_check": extra_info_problem(extra),
            "index": extra.get("index") if isinstance(extra, dict) else None,
            "split": extra.get("split") if isinstance(extra, dict) else None,
            "problem_key": normalize_problem(problem) if problem else None,
            "contamination_check": contamination,
        }
        for k, v in values.items():
            cols[k].append(v)
    names = list(dict.fromkeys(k for rec in records for k in rec if k not in HELPERS))
    # object dtype keeps each cell's own Python type, so GE's type checks go row by row
    import pandas as pd

    out = pd.DataFrame({c: pd.Series([rec.get(c) for rec in records], dtype=object) for c in names})
    for h in HELPERS:
        out[h] = pd.Series(cols[h], dtype="int64" if h in ("row", "prompt_length") else object)
    return out
