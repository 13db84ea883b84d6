"""Registry of data sources: one entry per training set / benchmark, selectable by name.

Each hub source knows its Hub id (which becomes the prepared rows' ``data_source``), the
configs to load and concatenate, the split names on the Hub, the default prompt template and
an *adapter* that turns one row in the source's own column format into a ``RawProblem``.
``local`` reads a JSONL/parquet file a user already has; ``synthetic`` is the embedded
backend's multiplication task (``riskrl.embedded.task``), imported only when used.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from riskrl.data.schema import to_python
from riskrl.data.templates import strip_template
from riskrl.rewards.extract import gsm8k_answer, last_boxed


class DataError(Exception):
    """Bad input for a data stage; the message is one line naming the problem and the fix."""


@dataclass(frozen=True)
class RawProblem:
    problem: str
    answer: str | None  # None: no answer could be found (the row is dropped and counted)
    source_id: str
    meta: dict[str, Any] = field(default_factory=dict)


Adapter = Callable[[dict[str, Any], str], RawProblem]  # (row, fallback id "<split>:<row>") -> RawProblem


@dataclass(frozen=True)
class Source:
    name: str
    hub_id: str | None  # None for local / synthetic
    splits: dict[str, str]  # our split name -> split name on the Hub
    adapter: Adapter | None = None
    configs: tuple[str | None, ...] = (None,)  # Hub configs, loaded and concatenated in order
    template: str = "boxed"
    kind: Literal["hub", "local", "synthetic"] = "hub"
    description: str = ""

    @property
    def default_split(self) -> str:
        return next(iter(self.splits))


SOURCES: dict[str, Source] = {}


def register_source(source: Source) -> Source:
    if source.name in SOURCES:
        raise ValueError(f"source {source.name!r} is already registered")
    SOURCES[source.name] = source
    return source


def get_source(name: str) -> Source:
    if name not in SOURCES:
        raise DataError(f"unknown source {name!r}; known: {', '.join(SOURCES)}")
    return SOURCES[name]


# ---------------------------------------------------------------------------- adapters


def col(row: dict[str, Any], *names: str) -> Any:
    """The first of ``names`` present in ``row``; KeyError naming them all otherwise."""
    for name in names:
        if name in row:
            return row[name]
    raise KeyError(" or ".join(repr(n) for n in names))


def answer_text(value: Any) -> str | None:
    """An answer cell as a string: ``27.0`` -> ``"27"``, ``" 5 "`` -> ``"5"``, None/"" -> None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, numbers.Real)):
        raise BadCell(f"answer is {value!r} ({type(value).__name__}), not a string or number")
    if isinstance(value, float):
        if value != value:  # NaN
            return None
        value = int(value) if value.is_integer() else value
    text = str(value).strip()
    return text or None


def boxed_answer(solution: str) -> str | None:
    """MATH reference answer: the content of the last ``\\boxed{}`` of the solution."""
    found = last_boxed(str(solution))
    return found[1] if found and found[1] else None


class BadCell(ValueError):
    """A problem or answer cell that is not text (NaN, a number, a list...): the row is refused."""


def text(value: Any, what: str = "problem") -> str:
    """A problem cell: a string (None -> "", dropped as an empty problem); anything else is refused,
    so a NaN never becomes the prompt ``"nan"``."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadCell(f"{what} is {value!r} ({type(value).__name__}), not a string")
    return value


def _id(row: dict[str, Any], fallback: str, *names: str) -> str:
    for name in names:
        if row.get(name) not in (None, ""):
            return str(row[name])
    return fallback


def dapo_row(row: dict[str, Any], fallback: str) -> RawProblem:
    prompt = to_python(col(row, "prompt"))
    content = next((m["content"] for m in reversed(prompt) if m.get("role") == "user"), "")
    extra = to_python(row.get("extra_info") or {})
    return RawProblem(
        problem=strip_template(content),
        answer=answer_text(to_python(col(row, "reward_model"))["ground_truth"]),
        source_id=_id(extra, fallback, "index"),
    )


def math_row(row: dict[str, Any], fallback: str) -> RawProblem:
    return RawProblem(
        problem=text(col(row, "problem")),
        answer=boxed_answer(col(row, "solution")),
        source_id=_id(row, fallback, "unique_id", "id"),
        meta={k: str(row[k]) for k in ("level", "type") if row.get(k) is not None},
    )


def gsm8k_row(row: dict[str, Any], fallback: str) -> RawProblem:
    return RawProblem(
        problem=text(col(row, "question")), answer=gsm8k_answer(col(row, "answer")), source_id=fallback
    )


def answer_row(row: dict[str, Any], fallback: str) -> RawProblem:
    """Benchmarks with a final-answer column: AIME 2024/2025, AMC 2023, MATH-500, plain JSONL."""
    meta = {k: str(row[k]) for k in ("subject", "level", "year", "url") if row.get(k) is not None}
    return RawProblem(
        problem=text(col(row, "problem", "question")),
        answer=answer_text(col(row, "answer")),
        source_id=_id(row, fallback, "unique_id", "id"),
        meta=meta,
    )


def local_row(row: dict[str, Any], fallback: str) -> RawProblem:
    """A user's file: ``problem``/``question`` + ``answer`` (or a ``solution`` with ``\\boxed{}``,
    or a GSM8K ``####`` answer), or rows already in the prepared verl schema."""
    if "prompt" in row and "reward_model" in row:
        prob = dapo_row(row, fallback)
        extra = to_python(row.get("extra_info") or {})
        problem = extra.get("problem") or prob.problem
        return RawProblem(
            problem=text(problem), answer=prob.answer, source_id=_id(extra, fallback, "source_id", "index")
        )
    problem = text(col(row, "problem", "question"))
    if "answer" in row:
        ans = row["answer"]
        answer = gsm8k_answer(ans) if isinstance(ans, str) and "####" in ans else answer_text(ans)
    elif row.get("solution") is not None:
        answer = boxed_answer(text(row["solution"], "solution"))
    else:
        answer = None  # a row without an answer is dropped and counted (no_answer), as documented
    return RawProblem(
        problem=problem, answer=answer, source_id=_id(row, fallback, "unique_id", "id", "source_id")
    )


# ---------------------------------------------------------------------------- registry

register_source(Source(
    name="dapo_math_17k", hub_id="BytedTsinghua-SIA/DAPO-Math-17k", splits={"train": "train"},
    adapter=dapo_row, template="dapo",
    description="DAPO-Math-17k (verl schema on the Hub, rows repeated; deduplicated to unique problems)",
))  # fmt: skip
register_source(Source(
    name="math", hub_id="DigitalLearningGmbH/MATH-lighteval", splits={"train": "train", "test": "test"},
    adapter=math_row, description="Hendrycks MATH (answer: last \\boxed{} of the solution)",
))  # fmt: skip
register_source(Source(
    name="gsm8k", hub_id="openai/gsm8k", configs=("main",), splits={"train": "train", "test": "test"},
    adapter=gsm8k_row, description="GSM8K (answer: after '####', commas removed)",
))  # fmt: skip
register_source(Source(
    name="aime_2024", hub_id="HuggingFaceH4/aime_2024", splits={"test": "train"},
    adapter=answer_row, description="AIME 2024 I+II (30 problems; the Hub calls the split 'train')",
))  # fmt: skip
register_source(Source(
    name="aime_2025", hub_id="opencompass/AIME2025", configs=("AIME2025-I", "AIME2025-II"),
    splits={"test": "test"}, adapter=answer_row, description="AIME 2025 I+II (both configs, 30 problems)",
))  # fmt: skip
register_source(Source(
    name="amc23", hub_id="math-ai/amc23", splits={"test": "test"},
    adapter=answer_row, description="AMC 2023 (40 problems)",
))  # fmt: skip
register_source(Source(
    name="math500", hub_id="HuggingFaceH4/MATH-500", splits={"test": "test"},
    adapter=answer_row, description="MATH-500 (500-problem subset of the MATH test set)",
))  # fmt: skip
register_source(Source(
    name="local", hub_id=None, splits={"train": "train", "test": "test", "val": "val"}, adapter=local_row,
    kind="local", description="a JSONL/JSON/parquet file you already have (--local PATH)",
))  # fmt: skip
register_source(Source(
    name="synthetic", hub_id=None, splits={"train": "train", "val": "val", "test": "test"}, kind="synthetic",
    template="raw", description="the embedded backend's multiplication task (riskrl.embedded.task)",
))  # fmt: skip
