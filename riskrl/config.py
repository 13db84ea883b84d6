"""``params.yaml``: the single source of the study's parameters, validated at load.

One pydantic schema (:class:`Params`) covers every section; each stage reads only its own.
An unknown key, a wrong type or an out-of-range value stops every entry point with one line
naming the key and the allowed values, e.g.::

    params.yaml: train.variants.riskpo_track.bundle_size=0: Input should be greater than or equal to 1
    params.yaml: train.variants.rs_grpo_b2.bet: unknown key (known: beta, norm_adv_by_std_in_grpo)
    params.yaml: unknown key train.lrr (known: variants, lrs, seeds, ...)

The study is a grid of named **variants** (``train.variants``: name -> a registered verl
estimator and its options, validated against ``riskrl.estimators.options.ESTIMATOR_OPTIONS``)
x ``train.lrs`` x ``train.seeds``. The embedded backend's sections reuse its config
dataclasses (``TaskConfig``, ``ModelConfig``, ``SFTConfig``, ``TrainConfig``), so their keys
are the dataclass fields.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from riskrl.embedded.configs import (
    NORM_KEY,
    ModelConfig,
    OptionError,
    SFTConfig,
    TrainConfig,
    estimator_section,
)
from riskrl.embedded.task import TaskConfig

PARAMS_FILE = "params.yaml"
VARIANT_NAME = re.compile(r"[a-z0-9_]+")  # a DVC foreach key and a directory name

# TrainConfig fields that the grid, the variant or the stage sets, not params.yaml
_TRAIN_RUN_MANAGED = {"model", "data", "out", "estimator", "estimator_options", "lr", "seed",
                      NORM_KEY, "resume", "progress"}
TRAIN_RUN_KEYS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name not in _TRAIN_RUN_MANAGED)
_SFT_MANAGED = {"model", "data", "out", "progress"}
SFT_KEYS = tuple(f.name for f in dataclasses.fields(SFTConfig) if f.name not in _SFT_MANAGED)


class ParamsError(ValueError):
    """params.yaml is invalid; the message is one line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClusterParams(_Strict):
    """Where compute runs: a Ray cluster at ``address`` (``$RAY_ADDRESS`` wins), or a local head."""

    address: str | None = Field(None, description="host:port, ray://host:port, auto; null = a local head (see share_head)")
    cpus_per_run: float = Field(1.0, gt=0, description="CPUs reserved per training/sampling task")
    local_cpus: int | None = Field(None, ge=1, description="CPUs of the local head (null = all)")
    connect_timeout_s: float = Field(10.0, gt=0, le=300)
    share_head: bool = Field(True, description="no address: the Ray stages of one `dvc repro` share one local head, "
                             "stopped when DVC exits (false: a head per stage)")


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


class KeyedError(ValueError):
    """A validator's error whose key lies below the field (``key`` is appended to its location)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


class Variant(_Strict):
    """One named variant of the study, resolved: a registered verl estimator, verl's
    ``algorithm.norm_adv_by_std_in_grpo`` and the complete ``algorithm.<estimator>`` section."""

    name: str
    estimator: str
    norm_adv_by_std_in_grpo: bool = True
    options: dict[str, Any] = Field(default_factory=dict, description="the algorithm.<estimator> section")


def _registered(estimator: str) -> bool:
    """riskrl's estimators and grpo are known without importing verl (seconds); any other name
    is looked up in verl's registry (riskrl's entries included)."""
    from riskrl.estimators.options import ESTIMATOR_OPTIONS

    if estimator in ESTIMATOR_OPTIONS or estimator == "grpo":
        return True
    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY

    import riskrl.estimators.registry  # noqa: F401  (registers riskrl's estimators with verl)

    return estimator in ADV_ESTIMATOR_REGISTRY


def _known_estimators() -> list[str]:
    from riskrl.estimators.options import ESTIMATOR_OPTIONS

    try:
        from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY

        return sorted({"grpo", *ESTIMATOR_OPTIONS, *ADV_ESTIMATOR_REGISTRY})
    except ImportError:  # pragma: no cover - verl is a dependency
        return sorted({"grpo", *ESTIMATOR_OPTIONS})


def parse_variant(name: str, spec: Any) -> Variant:
    """Validate one ``train.variants.<name>`` entry; :class:`KeyedError` names the bad key."""
    if not isinstance(name, str) or not VARIANT_NAME.fullmatch(name):
        raise KeyedError(str(name), "variant names must match [a-z0-9_]+ (DVC stage keys and directory names)")
    if not isinstance(spec, dict):
        raise KeyedError(name, f"must be a mapping {{estimator: <name>, <options>}}, got {spec!r}")
    opts = dict(spec)
    estimator = opts.pop("estimator", None)
    if estimator is None:
        raise KeyedError(name, "missing key estimator (a registered verl estimator: grpo, rs_grpo, riskpo, ...)")
    if not isinstance(estimator, str) or not _registered(estimator):
        raise KeyedError(f"{name}.estimator", f"={estimator!r}: unknown estimator (known: {', '.join(_known_estimators())})")
    norm = opts.pop(NORM_KEY, True)
    if not isinstance(norm, bool):
        raise KeyedError(f"{name}.{NORM_KEY}", f"={norm!r}: Input should be a valid boolean")
    try:
        section = estimator_section(estimator, opts, also_known=(NORM_KEY,))
    except OptionError as e:
        raise KeyedError(f"{name}.{e.key}" if e.key else name, e.detail.removeprefix(": ") if not e.key else e.detail) from None
    return Variant(name=name, estimator=estimator, norm_adv_by_std_in_grpo=norm, options=section)


def _no_duplicates(values: list, what: str) -> list:
    seen = set()
    for v in values:
        if v in seen:
            raise ValueError(f"{what} {v!r} is listed twice")
        seen.add(v)
    return values


class TrainParams(_Strict):
    """The variant x learning-rate x seed grid and the shared RL settings."""

    variants: dict[str, dict[str, Any]] = Field(
        min_length=1, description="name -> {estimator: <registered verl estimator>, <its options>}"
    )
    lrs: list[float] = Field(min_length=1)
    seeds: list[int] = Field(min_length=1)
    run: TrainConfig = Field(default_factory=TrainConfig, description="the TrainConfig keys shared by every run")

    @model_validator(mode="before")
    @classmethod
    def _collect_run_keys(cls, data: Any) -> Any:
        # TrainConfig keys sit flat in train: (train.steps, train.n, ...) so -S train.steps=50 works
        if isinstance(data, dict):
            data = dict(data)
            data["run"] = {k: data.pop(k) for k in list(data) if k in TRAIN_RUN_KEYS}
        return data

    @field_validator("variants")
    @classmethod
    def _valid_variants(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, spec in v.items():
            parse_variant(name, spec)
        return v

    @field_validator("lrs")
    @classmethod
    def _positive(cls, v: list[float]) -> list[float]:
        if any(not x > 0 for x in v):
            raise ValueError(f"every learning rate must be > 0, got {v}")
        return _no_duplicates(v, "learning rate")

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, v: list[int]) -> list[int]:
        return _no_duplicates(v, "seed")

    def variant(self, name: str) -> Variant:
        """The resolved variant ``name``; ValueError (one line) if the study has no such variant."""
        if name not in self.variants:
            raise ValueError(f"variant {name!r} is not in train.variants ({', '.join(self.variants)})")
        return parse_variant(name, self.variants[name])

    def run_config(self, variant: str, lr: float, seed: int, *, model: str, data: str, out: str, **kw: Any) -> TrainConfig:
        """The TrainConfig of one grid cell (``variant`` names one of ``train.variants``)."""
        v = self.variant(variant)
        cfg = dataclasses.asdict(self.run)
        cfg.update(model=model, data=data, out=out, estimator=v.estimator, estimator_options=dict(v.options),
                   lr=lr, seed=seed, **{NORM_KEY: v.norm_adv_by_std_in_grpo}, **kw)
        return TrainConfig(**cfg)

    def grid(self) -> list[tuple[str, float, int]]:
        """(variant, lr, seed) of every run."""
        return [(name, lr, s) for name in self.variants for lr in self.lrs for s in self.seeds]


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
    eval_tensor_parallel_size: int = Field(1, ge=1, description="evaluate (vLLM): GPUs per engine; one engine "
                                           "per eval_tensor_parallel_size GPUs of the cluster")


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

    @model_validator(mode="after")
    def _k_within_n(self) -> Params:
        # Pass@k needs k <= n samples per problem; a report asking for more would promise a column it cannot fill
        if self.report.k_high > self.evaluate.n:
            raise ValueError(f"report.k_high={self.report.k_high} needs evaluate.n >= {self.report.k_high} "
                             f"(Pass@k needs k samples per problem), got evaluate.n={self.evaluate.n}")
        return self

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
    keyed = (e.get("ctx") or {}).get("error")
    if isinstance(keyed, KeyedError):  # a variant's own key: train.variants.<name>.<key>
        more = f" (+{len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
        sep = "" if str(keyed).startswith("=") or str(keyed).startswith(": ") else ": "
        return ParamsError(f"{source}: {loc}.{keyed.key}{sep}{keyed}{more}")
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
        for i, part in enumerate(parents):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ParamsError(f"override {item!r}: {'.'.join(parents[: i + 1])} is a value, not a section")
        try:
            node[leaf] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise ParamsError(f"override {item!r}: value is not valid YAML ({' '.join(str(err).split())})") from None
    return data


def _check_unique_keys(node: yaml.Node, path: str = "") -> None:
    """Refuse a key given twice in one mapping (plain YAML silently keeps the last one)."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            where = f"{path}.{key}" if path else key
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ParamsError(f"{where}: given twice in one mapping (lines {seen[key]} and {line})")
            seen[key] = line
            _check_unique_keys(value_node, where)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_unique_keys(item, f"{path}.{i}")


def read_yaml(path: str | os.PathLike) -> Any:
    """A YAML file's content; :class:`ParamsError` (one line) if it is not valid YAML or repeats
    a key within a mapping."""
    text = Path(path).read_text()
    try:
        _check_unique_keys(yaml.compose(text, Loader=yaml.SafeLoader))
        return yaml.safe_load(text)
    except ParamsError as err:
        raise ParamsError(f"{path}: {err}") from None
    except yaml.YAMLError as err:
        raise ParamsError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None


def validate_params(data: dict[str, Any], source: str = PARAMS_FILE) -> Params:
    """:class:`Params` from a mapping (e.g. after :func:`set_overrides`); :class:`ParamsError`
    (one line, naming ``source`` and the key) on any problem."""
    try:
        return Params(**data)
    except ValidationError as err:
        raise _one_line(err, source) from None


def load_params(path: str | os.PathLike = PARAMS_FILE) -> Params:
    """Read and validate params.yaml; :class:`ParamsError` (one line) on any problem."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: not found (run from the repository root or pass --params)")
    raw = read_yaml(path) or {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: top level must be a mapping of sections")
    try:
        return Params(**raw)
    except ValidationError as err:
        raise _one_line(err, str(path)) from None
