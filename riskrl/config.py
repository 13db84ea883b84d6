"""``params.yaml``: the single source of the study's parameters, validated at load.

One pydantic schema (:class:`Params`) covers every section; each stage reads only its own.
An unknown key, a wrong type or an out-of-range value stops every entry point with one line
naming the key and the allowed values, e.g.::

    params.yaml: train.riskpo.bundle_size=0: Input should be greater than or equal to 1
    params.yaml: unknown key train.lrr (known: estimators, lrs, seeds, ...)

The embedded backend's sections reuse its config dataclasses (``TaskConfig``,
``ModelConfig``, ``SFTConfig``, ``TrainConfig``), so their keys are the dataclass fields.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from riskrl.embedded.configs import ModelConfig, SFTConfig, TrainConfig
from riskrl.embedded.task import TaskConfig
from riskrl.estimators.options import RiskPOOptions, RSGRPOOptions

ESTIMATORS = ("grpo", "rs_grpo", "riskpo")
PARAMS_FILE = "params.yaml"

# TrainConfig fields that the grid or the stage sets, not params.yaml
_TRAIN_RUN_MANAGED = {"model", "data", "out", "estimator", "lr", "seed", "rs_grpo_beta", "riskpo_preset",
                      "riskpo_mode", "riskpo_overrides", "norm_adv_by_std_in_grpo", "resume", "progress"}
TRAIN_RUN_KEYS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name not in _TRAIN_RUN_MANAGED)
_SFT_MANAGED = {"model", "data", "out", "progress"}
SFT_KEYS = tuple(f.name for f in dataclasses.fields(SFTConfig) if f.name not in _SFT_MANAGED)


class ParamsError(ValueError):
    """params.yaml is invalid; the message is one line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClusterParams(_Strict):
    """Where compute runs: a Ray cluster at ``address`` (``$RAY_ADDRESS`` wins), or a local head."""

    address: str | None = Field(None, description="host:port, ray://host:port, auto; null = local head per stage")
    cpus_per_run: float = Field(1.0, gt=0, description="CPUs reserved per training/sampling task")
    local_cpus: int | None = Field(None, ge=1, description="CPUs of the local head (null = all)")
    connect_timeout_s: float = Field(10.0, gt=0, le=300)


class DatasetSpec(_Strict):
    """One prepared dataset (a source of riskrl.data and its split)."""

    source: str = Field(description="riskrl.data source: synthetic, math, gsm8k, dapo_math_17k, aime_2024, ...")
    split: str | None = None
    name: str | None = Field(None, description="prepared file name (default <source>_<split>)")
    n: int | None = Field(None, ge=1, description="synthetic: number of problems")
    seed: int = 0
    limit: int | None = Field(None, ge=1, description="keep the first N problems")
    template: str | None = Field(None, description="prompt template (raw, boxed, dapo); default per source")
    revision: str | None = Field(None, description="pinned Hub revision (commit sha or tag)")
    local: list[str] = Field(default_factory=list, description="local copies to read instead of the Hub")

    @field_validator("source")
    @classmethod
    def _known_source(cls, v: str) -> str:
        from riskrl.data.sources import SOURCES

        if v not in SOURCES:
            raise ValueError(f"unknown source {v!r}; known: {', '.join(sorted(SOURCES))}")
        return v

    @property
    def file_name(self) -> str:
        from riskrl.data.sources import get_source

        return self.name or f"{self.source}_{self.split or get_source(self.source).default_split}"


class DataParams(_Strict):
    train: list[DatasetSpec] = Field(min_length=1)
    benchmarks: list[DatasetSpec] = Field(min_length=1)
    max_prompt_length: int = Field(2048, ge=1, description="validation bound on prompt length (characters)")
    hf_cache: str | None = Field(None, description="datasets cache dir (null = HF default)")


class GRPOParams(_Strict):
    norm_adv_by_std_in_grpo: bool = True


class RSGRPOParams(RSGRPOOptions):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RiskPOParams(RiskPOOptions):
    model_config = ConfigDict(extra="forbid", frozen=True)
    norm_adv_by_std_in_grpo: bool = True


class TrainParams(_Strict):
    """The estimator x learning-rate x seed grid and the shared RL settings."""

    estimators: list[Literal["grpo", "rs_grpo", "riskpo"]] = Field(min_length=1)
    lrs: list[float] = Field(min_length=1)
    seeds: list[int] = Field(min_length=1)
    grpo: GRPOParams = GRPOParams()
    rs_grpo: RSGRPOParams = RSGRPOParams()
    riskpo: RiskPOParams = RiskPOParams()
    run: TrainConfig = Field(default_factory=TrainConfig, description="the TrainConfig keys shared by every run")

    @model_validator(mode="before")
    @classmethod
    def _collect_run_keys(cls, data: Any) -> Any:
        # TrainConfig keys sit flat in train: (train.steps, train.n, ...) so -S train.steps=50 works
        if isinstance(data, dict):
            data = dict(data)
            data["run"] = {k: data.pop(k) for k in list(data) if k in TRAIN_RUN_KEYS}
        return data

    @field_validator("lrs")
    @classmethod
    def _positive(cls, v: list[float]) -> list[float]:
        if any(not x > 0 for x in v):
            raise ValueError(f"every learning rate must be > 0, got {v}")
        return v

    def run_config(self, estimator: str, lr: float, seed: int, *, model: str, data: str, out: str, **kw: Any) -> TrainConfig:
        """The TrainConfig of one grid cell."""
        opts = getattr(self, estimator).model_dump()
        cfg = dataclasses.asdict(self.run)
        cfg.update(model=model, data=data, out=out, estimator=estimator, lr=lr, seed=seed, **kw)
        cfg["norm_adv_by_std_in_grpo"] = opts.pop("norm_adv_by_std_in_grpo", True)
        if estimator == "rs_grpo":
            cfg["rs_grpo_beta"] = opts["beta"]
        if estimator == "riskpo":
            cfg["riskpo_mode"] = opts.pop("use_q_track_mode")
            cfg["riskpo_overrides"] = opts  # every key, so the preset is only a fallback
        return TrainConfig(**cfg)

    def grid(self) -> list[tuple[str, float, int]]:
        return [(e, lr, s) for e in self.estimators for lr in self.lrs for s in self.seeds]


class EvaluateParams(_Strict):
    n: int = Field(16, ge=1, description="samples per problem (Pass@k for k up to n)")
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(6, ge=1)
    max_problems: int | None = Field(None, ge=1, description="evaluate the first N problems per benchmark")
    seed: int = 0
    batch_size: int = Field(512, ge=1, description="embedded sampler: sequences per generate call")
    n_boot: int = Field(1000, ge=100, description="bootstrap resamples for the CIs")


class ReportParams(_Strict):
    k_high: int = Field(16, ge=1, description="the large k of the Pass@k-vs-lr plot")
    n_boot: int = Field(1000, ge=100)


class BanditParams(_Strict):
    betas: list[float] = Field(default_factory=lambda: [0, 2, 4, 8, 16, 32, 64], min_length=1)
    seeds: int = Field(5, ge=1)
    updates: int = Field(25000, ge=1)


class VerlParams(_Strict):
    """backend: verl (GPUs): what the train stage hands to ``python -m riskrl.verl``."""

    model_path: str = "Qwen/Qwen2.5-1.5B-Instruct"
    n_gpus_per_node: int = Field(8, ge=1)
    nnodes: int = Field(1, ge=1)
    rollout_n: int = Field(5, ge=1)
    train_batch_size: int = Field(1024, ge=1)
    ppo_mini_batch_size: int = Field(512, ge=1)
    micro_batch_size_per_gpu: int = Field(4, ge=1)
    max_prompt_length: int = Field(1024, ge=1)
    max_response_length: int = Field(1024, ge=1)
    total_epochs: int = Field(1, ge=1)
    overrides: list[str] = Field(default_factory=list, description="extra Hydra overrides, verbatim")


class Params(_Strict):
    backend: Literal["embedded", "verl"] = "embedded"
    cluster: ClusterParams = ClusterParams()
    data: DataParams
    task: TaskConfig = Field(default_factory=TaskConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    sft: dict[str, Any] = Field(default_factory=dict)
    train: TrainParams
    evaluate: EvaluateParams = EvaluateParams()
    report: ReportParams = ReportParams()
    bandit: BanditParams = BanditParams()
    verl: VerlParams = VerlParams()

    @field_validator("sft")
    @classmethod
    def _sft_keys(cls, v: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(v) - set(SFT_KEYS))
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(unknown)} (known: {', '.join(SFT_KEYS)})")
        SFTConfig(**v)  # types and ranges
        return v

    def sft_config(self, *, model: str, data: str, out: str, **kw: Any) -> SFTConfig:
        return SFTConfig(**{**self.sft, "model": model, "data": data, "out": out, **kw})


def _known_keys(loc: tuple) -> list[str]:
    """Field names of the section that holds ``loc`` (for 'unknown key' messages)."""
    import typing

    model: Any = Params
    for part in loc[:-1]:
        if isinstance(part, int) or part == "run":
            continue
        ann = model.model_fields[part].annotation if hasattr(model, "model_fields") and part in model.model_fields else None
        args = [a for a in typing.get_args(ann) if isinstance(a, type)] if ann is not None else []
        model = next((a for a in [ann, *args] if isinstance(a, type) and (hasattr(a, "model_fields") or dataclasses.is_dataclass(a))), None)
        if model is None:
            return []
    if dataclasses.is_dataclass(model):
        return [f.name for f in dataclasses.fields(model)]
    keys = [k for k in model.model_fields if k != "run"]
    return keys + list(TRAIN_RUN_KEYS) if model is TrainParams else keys


def _one_line(err: ValidationError, source: str) -> ParamsError:
    e = err.errors()[0]
    loc = ".".join(str(x) for x in e["loc"] if x != "run")
    loc = loc.replace(".function-after[_known_source(), str]", "")
    msg = e["msg"].removeprefix("Value error, ")
    more = f" (+{len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    if e["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
        known = _known_keys(tuple(x for x in e["loc"]))
        hint = f" (known: {', '.join(known)})" if known else ""
        return ParamsError(f"{source}: unknown key {loc}{hint}{more}")
    if e["type"] == "missing":
        return ParamsError(f"{source}: missing key {loc}{more}")
    if e["type"] in ("value_error", "assertion_error") or "input" not in e:
        return ParamsError(f"{source}: {loc}: {msg}{more}" if loc else f"{source}: {msg}{more}")
    return ParamsError(f"{source}: {loc}={e['input']!r}: {msg}{more}")


def set_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` edits (values parsed as YAML, as ``dvc exp run -S`` does) to a
    params mapping in place; validate the result with :class:`Params` before using it."""
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ParamsError(f"override {item!r} is not key=value")
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return data


def load_params(path: str | os.PathLike = PARAMS_FILE) -> Params:
    """Read and validate params.yaml; :class:`ParamsError` (one line) on any problem."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: not found (run from the repository root or pass --params)")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ParamsError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: top level must be a mapping of sections")
    try:
        return Params(**raw)
    except ValidationError as err:
        raise _one_line(err, str(path)) from None
