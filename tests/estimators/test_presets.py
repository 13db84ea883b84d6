"""The three published RiskPO scripts, pinned by value (not against the code itself)."""

import re
from pathlib import Path

import pytest

from riskrl.estimators import RISKPO_PRESETS, RiskPOOptions

DOCS = Path(__file__).resolve().parents[2] / "docs" / "estimators.md"

# METHODS.md table / docs/estimators.md "Presets", typed in by hand
PUBLISHED = {
    "dapo": dict(
        quantile_down=0.2, quantile_up=0.8, bundle_size=5, lr_q=0.1, use_q_track_mode="track",
        credit_assign_mode="sum-mean", use_mixing_risk_measure=True, w_mix=1.5, risk_seeking_upper_tail=False,
        upper_weight=1.5, natural_baseline_adv=False, use_mean_as_baseline=False, natural_baseline_base=True,
    ),
    "math": dict(
        quantile_down=0.2, quantile_up=0.9, bundle_size=5, lr_q=0.1, use_q_track_mode="track",
        credit_assign_mode="std", use_mixing_risk_measure=True, w_mix=1.5, risk_seeking_upper_tail=False,
        upper_weight=1.5, natural_baseline_adv=True, use_mean_as_baseline=False, natural_baseline_base=True,
    ),
    "risky": dict(
        quantile_down=0.2, quantile_up=0.8, bundle_size=5, lr_q=0.1, use_q_track_mode="track",
        credit_assign_mode="std", use_mixing_risk_measure=False, w_mix=1.5, risk_seeking_upper_tail=True,
        upper_weight=1.5, natural_baseline_adv=True, use_mean_as_baseline=False, natural_baseline_base=True,
    ),
}


def _docs_table() -> dict[str, dict[str, object]]:
    text = DOCS.read_text()
    start = text.index("| key | dapo | math | risky |")
    rows = {}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        key, *vals = [c.strip() for c in line.strip("|").split("|")]
        rows[key.strip("`")] = vals
    out: dict[str, dict[str, object]] = {p: {} for p in ("dapo", "math", "risky")}
    for key, vals in rows.items():
        for preset, v in zip(("dapo", "math", "risky"), vals, strict=True):
            if v in ("true", "false"):
                out[preset][key] = v == "true"
            elif re.fullmatch(r"-?\d+", v):
                out[preset][key] = int(v)
            elif re.fullmatch(r"-?\d*\.\d+", v):
                out[preset][key] = float(v)
            else:
                out[preset][key] = v
    return out


@pytest.mark.parametrize("preset", ["dapo", "math", "risky"])
def test_presets_equal_published_values(preset):
    assert RISKPO_PRESETS[preset] == PUBLISHED[preset]
    # and every key of a preset is a real option, with the option's default epsilon
    assert RiskPOOptions(**RISKPO_PRESETS[preset]).epsilon == 1e-6


def test_docs_table_equals_published_values():
    assert sorted(RISKPO_PRESETS) == ["dapo", "math", "risky"]
    assert _docs_table() == PUBLISHED
