"""params.yaml: one schema, one-line errors naming the key and the allowed values."""

import copy
from pathlib import Path

import pytest
import yaml

from riskrl.config import ParamsError, load_params

ROOT = Path(__file__).resolve().parents[2]
BASE = yaml.safe_load((ROOT / "params.yaml").read_text())


def load_with(tmp_path, mutate):
    d = copy.deepcopy(BASE)
    mutate(d)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    return lambda: load_params(path)


def test_repository_params_are_valid_and_declare_the_default_grid():
    p = load_params(ROOT / "params.yaml")
    assert p.backend == "embedded"
    assert list(p.train.variants) == ["grpo", "rs_grpo_b2", "riskpo_track", "riskpo_batch", "passk_k4", "pkpo_k4"]
    assert p.train.lrs == [3e-5, 3e-4] and len(p.train.seeds) >= 3
    assert len(p.train.grid()) == 6 * 2 * len(p.train.seeds)
    assert p.train.variant("rs_grpo_b2").options == {"beta": 2.0}
    track, batch = p.train.variant("riskpo_track"), p.train.variant("riskpo_batch")
    assert track.options["use_q_track_mode"] == "track" and batch.options["use_q_track_mode"] == "batch"
    assert {k: v for k, v in track.options.items() if k != "use_q_track_mode"} == \
        {k: v for k, v in batch.options.items() if k != "use_q_track_mode"}  # the mode is the only difference
    assert track.options["quantile_up"] == 0.9 and track.options["natural_baseline_adv"] is True  # MATH preset
    assert p.train.variant("passk_k4").options["k"] == 4 and p.train.variant("pkpo_k4").options["k"] == 4


def test_run_config_maps_every_variant_option(tmp_path):
    def mutate(d):
        d["train"]["variants"]["riskpo_track"].update(bundle_size=3, use_q_track_mode="batch", preset="dapo")
        d["train"]["variants"]["dr_grpo"] = {"estimator": "grpo", "norm_adv_by_std_in_grpo": False}
        d["train"]["variants"]["rloo"] = {"estimator": "rloo"}  # any registered verl estimator

    p = load_with(tmp_path, mutate)()
    cfg = p.train.run_config("riskpo_track", 3e-4, 2, model="m", data="d", out="o")
    assert (cfg.estimator, cfg.lr, cfg.seed, cfg.steps) == ("riskpo", 3e-4, 2, BASE["train"]["steps"])
    opts = cfg.estimator_options
    assert opts["use_q_track_mode"] == "batch" and opts["bundle_size"] == 3  # the keys given win over the preset
    assert opts["credit_assign_mode"] == "sum-mean" and opts["natural_baseline_adv"] is False  # dapo preset
    assert p.train.run_config("rs_grpo_b2", 3e-5, 0, model="m", data="d", out="o").estimator_options == {"beta": 2.0}
    dr = p.train.run_config("dr_grpo", 3e-5, 0, model="m", data="d", out="o")
    assert dr.estimator == "grpo" and dr.norm_adv_by_std_in_grpo is False and dr.estimator_options == {}
    assert p.train.run_config("rloo", 3e-5, 0, model="m", data="d", out="o").estimator == "rloo"
    assert [c for c in p.train.grid() if c[0] == "dr_grpo"] == [("dr_grpo", lr, s) for lr in p.train.lrs for s in p.train.seeds]
    with pytest.raises(ValueError, match=r"variant 'nope' is not in train.variants \(grpo, rs_grpo_b2,"):
        p.train.variant("nope")


def _variant(name, **spec):
    return lambda d: d["train"]["variants"].__setitem__(name, spec)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["train"]["variants"]["riskpo_track"].update(bundle_size=0), "train.variants.riskpo_track.bundle_size=0: Input should be greater than or equal to 1"),
        (lambda d: d["train"].update(lrr=1), "unknown key train.lrr (known: variants, lrs, seeds,"),
        (lambda d: d["train"].update(steps="many"), "train.steps='many': Input should be a valid integer"),
        (lambda d: d["train"].update(steps=0), "train.steps must be >= 1, got 0"),
        # variants: bad estimator name, bad option key, bad value, bad variant name, cross-key check
        (_variant("x", estimator="riskpoo"), "train.variants.x.estimator='riskpoo': unknown estimator (known: "),
        (lambda d: d["train"]["variants"]["rs_grpo_b2"].update(bet=4), "train.variants.rs_grpo_b2.bet: unknown key (known: beta, norm_adv_by_std_in_grpo)"),
        (lambda d: d["train"]["variants"]["rs_grpo_b2"].update(beta="high"), "train.variants.rs_grpo_b2.beta='high': Input should be a valid number"),
        (lambda d: d["train"]["variants"]["rs_grpo_b2"].update(beta=500), "train.variants.rs_grpo_b2.beta=500: Input should be less than or equal to 100"),
        (lambda d: d["train"]["variants"]["grpo"].update(beta=2), "train.variants.grpo.beta: unknown key (known: norm_adv_by_std_in_grpo)"),
        (_variant("x", estimator="rloo", k=4), "train.variants.x.k: unknown key (known: norm_adv_by_std_in_grpo)"),
        (lambda d: d["train"]["variants"]["grpo"].update(norm_adv_by_std_in_grpo="no"), "train.variants.grpo.norm_adv_by_std_in_grpo='no': Input should be a valid boolean"),
        (lambda d: d["train"]["variants"]["riskpo_track"].update(preset="maths"), "train.variants.riskpo_track.preset='maths': unknown preset (known: dapo, math, risky)"),
        (lambda d: d["train"]["variants"]["riskpo_batch"].update(use_q_track_mode="paper"), "train.variants.riskpo_batch.use_q_track_mode='paper': Input should be 'batch', 'track' or 'mix'"),
        (lambda d: d["train"]["variants"]["riskpo_track"].update(quantile_down=0.95), "train.variants.riskpo_track: quantile_down=0.95 must be < quantile_up=0.9"),
        (_variant("RS-GRPO", estimator="rs_grpo"), "train.variants.RS-GRPO: variant names must match [a-z0-9_]+"),
        (_variant("x", beta=2), "train.variants.x: missing key estimator"),
        (lambda d: d["train"].update(variants={}), "train.variants={}: Dictionary should have at least 1 item"),
        # duplicates
        (lambda d: d["train"].update(seeds=[0, 1, 0]), "train.seeds: seed 0 is listed twice"),
        (lambda d: d["train"].update(lrs=[3e-5, 3e-5]), "train.lrs: learning rate 3e-05 is listed twice"),
        (lambda d: d["train"]["variants"]["riskpo_track"].update(quantile_down=0.95), "quantile_down=0.95 must be < quantile_up=0.9"),
        (lambda d: d.update(backend="gpu"), "backend='gpu': Input should be 'embedded' or 'verl'"),
        (lambda d: d["data"]["train"][0].update(source="mathh"), "unknown source 'mathh'; known: aime_2024,"),
        (lambda d: d["sft"].update(stepz=3), "unknown key(s) stepz (known: steps,"),
        (lambda d: d["evaluate"].update(top_p=1.5), "evaluate.top_p=1.5: Input should be less than or equal to 1"),
        (lambda d: d.update(extra={}), "unknown key extra (known: backend, cluster,"),
        (lambda d: d["train"].update(lrs=[-1]), "every learning rate must be > 0"),
        (lambda d: d["cluster"].update(cpus_per_run=0), "cluster.cpus_per_run=0: Input should be greater than 0"),
        (lambda d: d["train"].update(model="x"), "unknown key train.model"),  # paths are set per run
        (lambda d: d["train"].update(estimator="grpo"), "unknown key train.estimator"),  # per variant
        (lambda d: d.pop("train"), "missing key train"),
    ],
)
def test_bad_params_one_line(tmp_path, mutate, message):
    load = load_with(tmp_path, mutate)
    with pytest.raises(ParamsError) as exc:
        load()
    text = str(exc.value)
    assert message in text, text
    assert "\n" not in text and text.startswith(str(tmp_path / "params.yaml"))


def test_a_variant_name_given_twice_is_refused_in_one_line(tmp_path):
    text = (ROOT / "params.yaml").read_text()
    assert "    rs_grpo_b2:" in text
    path = tmp_path / "params.yaml"
    path.write_text(text.replace("    rs_grpo_b2:", "    grpo:\n      estimator: grpo\n    rs_grpo_b2:", 1))
    with pytest.raises(ParamsError) as exc:
        load_params(path)
    text = str(exc.value)
    assert text.startswith(f"{path}: train.variants.grpo: given twice in one mapping (lines ") and "\n" not in text


def test_unreadable_params(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("train: [unclosed")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(tmp_path / "bad.yaml")
