"""Estimator options under the published code's key names, validated once, with presets.

The RiskPO keys are the fork's (``algorithm.quantile_down`` ...), so a user of the fork maps
their scripts one to one; riskrl nests them under ``algorithm.riskpo.*`` (and RS-GRPO's beta
under ``algorithm.rs_grpo.beta``). verl's own ``algorithm.norm_adv_by_std_in_grpo`` is read
from the algorithm section, as verl's GRPO reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


def one_line_error(prefix: str, err: ValidationError) -> ValueError:
    """Turn a pydantic ValidationError into one line naming the key and the allowed values."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(options)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            parts.append(f"unknown key {prefix}.{loc}")
            continue
        if e["type"] == "value_error":
            msg = msg.removeprefix("Value error, ")
            parts.append(f"{prefix}: {msg}" if loc == "(options)" else f"{prefix}.{loc}: {msg}")
            continue
        given = e.get("input")
        parts.append(f"{prefix}.{loc}={given!r}: {msg}")
    return ValueError("; ".join(parts))


class RSGRPOOptions(BaseModel):
    """RS-GRPO (risk-sensitive GRPO, seed 002)."""

    model_config = ConfigDict(extra="forbid")
    beta: float = Field(2.0, ge=-100.0, le=100.0, description="risk sensitivity: >0 seeking, 0 = r - mean, <0 averse")


class RiskPOOptions(BaseModel):
    """RiskPO (Mixed Value-at-Risk over bundles with tracked quantiles, seeds 000/001).

    Defaults are the published MATH script (METHODS.md table, column ``math``) in ``track``
    mode, as the paper describes it.
    """

    model_config = ConfigDict(extra="forbid")
    quantile_down: float = Field(0.2, gt=0.0, lt=1.0, description="alpha: lower quantile level")
    quantile_up: float = Field(0.9, gt=0.0, lt=1.0, description="beta: upper quantile level")
    bundle_size: int = Field(5, ge=1, description="consecutive prompts per bundle")
    lr_q: float = Field(0.1, gt=0.0, le=10.0, description="SGD step of the quantile tracker")
    use_q_track_mode: Literal["batch", "track", "mix"] = Field(
        "track", description="batch: per-bundle empirical quantiles (what the published runs used); "
        "track: tracked quantiles of step t-1 (the paper); mix: their mean"
    )
    credit_assign_mode: Literal["uniform", "score", "std", "sum-mean"] = Field(
        "std", description="how a paper's advantage is spread over its responses"
    )
    use_mixing_risk_measure: bool = Field(True, description="MVaR: mix in the CVaR part with weight w_mix")
    w_mix: float = Field(1.5, ge=0.0, description="weight of the CVaR part")
    risk_seeking_upper_tail: bool = Field(False, description="add the upper tail (S-b)^+ instead of MVaR")
    upper_weight: float = Field(1.5, ge=0.0, description="weight of the upper tail")
    natural_baseline_adv: bool = Field(True, description="keep the constant (a - b) in g")
    use_mean_as_baseline: bool = Field(False, description="subtract the tracked-quantile baselines")
    natural_baseline_base: bool = Field(True, description="keep (a - b) in the baseline's own g")
    epsilon: float = Field(1e-6, gt=0.0, le=1e-2, description="denominator guard, as verl's GRPO")

    @model_validator(mode="after")
    def _cross_checks(self) -> RiskPOOptions:
        if self.quantile_down >= self.quantile_up:
            raise ValueError(
                f"quantile_down={self.quantile_down} must be < quantile_up={self.quantile_up} (both in (0, 1))"
            )
        if self.use_mixing_risk_measure and self.risk_seeking_upper_tail:
            raise ValueError(
                "use_mixing_risk_measure=true and risk_seeking_upper_tail=true are alternatives; "
                "set at most one (the published code silently took MVaR)"
            )
        return self


class PassKOptions(BaseModel):
    """Pass@k Training (Chen et al. 2025, arXiv 2508.10751): the analytic pass@k advantage."""

    model_config = ConfigDict(extra="forbid")
    k: int = Field(4, ge=1, description="the k of pass@k (per prompt min(k, n))")
    correct_threshold: float = Field(0.5, allow_inf_nan=False, description="a response is correct when its reward >= this")
    epsilon: float = Field(1e-6, gt=0.0, le=1e-2, description="denominator guard of the std")


class PKPOOptions(BaseModel):
    """PKPO (Walder & Karkhanis 2025, arXiv 2505.15201): unbiased max@k gradient weights."""

    model_config = ConfigDict(extra="forbid")
    k: int = Field(4, ge=1, description="the k of max@k (per prompt min(k, n))")
    baseline: Literal["none", "mean", "loo"] = Field("loo", description="none: s_i; mean: s_i - mean(s); loo: leave-one-out")


class GRPOOptions(BaseModel):
    """verl's GRPO (``norm_adv_by_std_in_grpo: false`` is Dr.GRPO)."""

    model_config = ConfigDict(extra="forbid")
    norm_adv_by_std_in_grpo: bool = Field(True, description="divide by the group's std (false: Dr.GRPO)")


# Published settings of the three RiskPO scripts (METHODS.md table). ``lr_q`` is the fork's
# default. verl's norm_adv_by_std_in_grpo is true in all three.
RISKPO_PRESETS: dict[str, dict[str, Any]] = {
    "dapo": dict(
        quantile_down=0.2, quantile_up=0.8, bundle_size=5, lr_q=0.1, use_q_track_mode="track",
        credit_assign_mode="sum-mean", use_mixing_risk_measure=True, w_mix=1.5,
        risk_seeking_upper_tail=False, upper_weight=1.5, natural_baseline_adv=False,
        use_mean_as_baseline=False, natural_baseline_base=True,
    ),
    "math": dict(
        quantile_down=0.2, quantile_up=0.9, bundle_size=5, lr_q=0.1, use_q_track_mode="track",
        credit_assign_mode="std", use_mixing_risk_measure=True, w_mix=1.5,
        risk_seeking_upper_tail=False, upper_weight=1.5, natural_baseline_adv=True,
        use_mean_as_baseline=False, natural_baseline_base=True,
    ),
    "risky": dict(
        quantile_down=0.2, quantile_up=0.8, bundle_size=5, lr_q=0.1, use_q_track_mode="track",
        credit_assign_mode="std", use_mixing_risk_measure=False, w_mix=1.5,
        risk_seeking_upper_tail=True, upper_weight=1.5, natural_baseline_adv=True,
        use_mean_as_baseline=False, natural_baseline_base=True,
    ),
}


def _plain(cfg: Any) -> dict:
    if cfg is None:
        return {}
    try:  # OmegaConf DictConfig (verl's algorithm config)
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except ImportError:  # pragma: no cover
        pass
    if isinstance(cfg, Mapping):
        return dict(cfg)
    raise TypeError(f"expected a mapping of options, got {type(cfg).__name__}")


def _parse(name: str, cls: type[BaseModel], options: Any, overrides: dict[str, Any]) -> Any:
    """``cls`` from a mapping and/or keywords; one-line ValueError naming ``name.<key>``."""
    try:
        return cls(**{**_plain(options), **overrides})
    except ValidationError as err:
        raise one_line_error(name, err) from None


def parse_riskpo(options: Any = None, **overrides: Any) -> RiskPOOptions:
    """Validate RiskPO options (mapping and/or keywords); one-line ValueError on bad input."""
    return _parse("riskpo", RiskPOOptions, options, overrides)


def parse_rs_grpo(options: Any = None, **overrides: Any) -> RSGRPOOptions:
    return _parse("rs_grpo", RSGRPOOptions, options, overrides)


def parse_passk(options: Any = None, **overrides: Any) -> PassKOptions:
    """Validate Pass@k Training options (``algorithm.passk.*``); one-line ValueError on bad input."""
    return _parse("passk", PassKOptions, options, overrides)


def parse_pkpo(options: Any = None, **overrides: Any) -> PKPOOptions:
    """Validate PKPO options (``algorithm.pkpo.*``); one-line ValueError on bad input."""
    return _parse("pkpo", PKPOOptions, options, overrides)


# riskrl's own estimators: their options, under ``algorithm.<name>.*`` (verl's other estimators
# take only verl's own algorithm keys).
ESTIMATOR_OPTIONS: dict[str, type[BaseModel]] = {
    "rs_grpo": RSGRPOOptions,
    "riskpo": RiskPOOptions,
    "passk": PassKOptions,
    "pkpo": PKPOOptions,
}
