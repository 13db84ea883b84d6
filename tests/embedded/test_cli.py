import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from riskrl.embedded.__main__ import main

ROOT = Path(__file__).resolve().parents[2]
PARAMS = str(ROOT / "params.yaml")


def test_cli_end_to_end(tmp_path, capsys):
    m, d = tmp_path / "init", tmp_path / "train.parquet"
    assert (
        main(
            [
                "init-model",
                "--out",
                str(m),
                "--hidden-size",
                "32",
                "--num-layers",
                "1",
                "--num-heads",
                "2",
                "--num-kv-heads",
                "2",
                "--intermediate-size",
                "64",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "make-data",
                "--out",
                str(d),
                "--split",
                "train",
                "--n",
                "30",
                "--a-digits",
                "1",
                "--b-digits",
                "1",
                "--heldout-frac",
                "0.2",
            ]
        )
        == 0
    )
    assert len(pd.read_parquet(d)) == 30
    cfg = tmp_path / "params.yaml"
    cfg.write_text("sft:\n  steps: 5\n  batch_size: 8\n  target_acc: 0\n  progress: false\n")
    assert (
        main(
            [
                "sft",
                "--model",
                str(m),
                "--data",
                str(d),
                "--out",
                str(tmp_path / "base"),
                "--config",
                str(cfg),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(
            [
                "train",
                "--model",
                str(tmp_path / "base"),
                "--data",
                str(d),
                "--out",
                str(tmp_path / "rl"),
                "--estimator",
                "riskpo",
                "--lr",
                "1e-4",
                "--seed",
                "1",
                "--steps",
                "2",
                "--prompts-per-step",
                "5",
                "--n",
                "2",
                "--max-new-tokens",
                "3",
                "--no-progress",
                "--no-tensorboard",
                "--estimator-options",
                '{"use_q_track_mode": "batch", "bundle_size": 2}',
            ]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["estimator"] == "riskpo" and printed["mode"] == "batch" and printed["seed"] == 1
    run = json.loads((tmp_path / "rl" / "run.json").read_text())
    assert run["algorithm"]["riskpo"]["bundle_size"] == 2 and run["lr"] == 1e-4


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert (
        main(
            [
                "train",
                "--model",
                str(tmp_path),
                "--data",
                "x.parquet",
                "--out",
                str(tmp_path / "o"),
                "--estimator",
                "nope",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown estimator 'nope'") and "\n" not in err
    assert (
        main(
            [
                "train",
                "--model",
                str(tmp_path),
                "--data",
                "x.parquet",
                "--out",
                str(tmp_path / "o"),
                "--estimator",
                "riskpo",
                "--estimator-options",
                '{"w_mixx": 1}',
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: train.estimator_options.w_mixx: unknown key (known: preset, quantile_down,")
    assert "\n" not in err


def test_every_config_field_is_documented():
    import dataclasses

    from riskrl.embedded.configs import field_docs
    from riskrl.embedded.model import ModelConfig
    from riskrl.embedded.sft import SFTConfig
    from riskrl.embedded.task import TaskConfig
    from riskrl.embedded.trainer import TrainConfig

    for cls in (TaskConfig, ModelConfig, SFTConfig, TrainConfig):
        docs = field_docs(cls)
        missing = [f.name for f in dataclasses.fields(cls) if not docs.get(f.name)]
        assert not missing, f"{cls.__name__}: undocumented {missing}"
    assert "learning rate" in field_docs(TrainConfig)["lr"]


def test_every_command_reads_the_projects_params_yaml(tmp_path, capsys):
    """``--config params.yaml`` is the project's own file (grid keys and variants included);
    flags give tiny budgets and override it."""
    params = yaml.safe_load(Path(PARAMS).read_text())
    m, d, base = tmp_path / "init", tmp_path / "train.parquet", tmp_path / "base"
    assert main(["init-model", "--config", PARAMS, "--out", str(m), "--num-layers", "1"]) == 0
    cfg = json.loads((m / "config.json").read_text())
    assert cfg["hidden_size"] == params["model"]["hidden_size"] and cfg["num_hidden_layers"] == 1
    assert main(["make-data", "--config", PARAMS, "--out", str(d), "--split", "train", "--n", "24"]) == 0
    prompt = pd.read_parquet(d)["prompt"].iloc[0][0]["content"]
    assert len(prompt.split("*")[0]) == params["task"]["a_digits"]  # the task section's 3 x 1 digits
    sft = ["sft", "--config", PARAMS, "--model", str(m), "--data", str(d), "--out", str(base), "--steps", "2",
           "--batch-size", "4", "--eval-rows", "4", "--eval-every", "1", "--eval-samples", "1", "--no-progress"]
    assert main(sft) == 0
    tiny = ["--model", str(base), "--data", str(d), "--steps", "1", "--prompts-per-step", "3", "--n", "2",
            "--save-every", "0", "--no-progress", "--no-tensorboard"]
    capsys.readouterr()
    assert main(["train", "--config", PARAMS, "--out", str(tmp_path / "first"), *tiny]) == 0
    run = json.loads((tmp_path / "first" / "run.json").read_text())
    first = next(iter(params["train"]["variants"].values()))
    assert run["estimator"] == first["estimator"]  # the first variant, at the grid's first lr and seed
    assert (run["lr"], run["seed"]) == (params["train"]["lrs"][0], params["train"]["seeds"][0])
    assert run["config"]["temperature"] == params["train"]["temperature"]  # a shared train key
    out = tmp_path / "batch"
    assert main(["train", "--config", PARAMS, "--variant", "riskpo_batch", "--out", str(out),
                 "--lr", "1e-4", "--seed", "3", *tiny]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["estimator"] == "riskpo" and run["mode"] == "batch" and (run["lr"], run["seed"]) == (1e-4, 3)
    assert run["algorithm"]["riskpo"]["bundle_size"] == params["train"]["variants"]["riskpo_batch"]["bundle_size"]
    capsys.readouterr()
    assert main(["train", "--config", PARAMS, "--variant", "nope", "--out", str(tmp_path / "x"), *tiny]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: variant 'nope' is not in train.variants (grpo, rs_grpo_b2,") and "\n" not in err


@pytest.mark.parametrize("cmd", ["train", "sft"])
def test_a_bad_params_yaml_stops_the_cli_in_one_line(tmp_path, capsys, cmd):
    bad = tmp_path / "params.yaml"
    bad.write_text(Path(PARAMS).read_text().replace("      beta: 2.0", "      bet: 2.0", 1))
    assert main([cmd, "--config", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {bad}: train.variants.rs_grpo_b2.bet: unknown key (known: beta, norm_adv_by_std_in_grpo)"


@pytest.mark.parametrize(
    "estimator, options, section",
    [("rloo", None, None), ("grpo_passk", None, None), ("rs_grpo", '{"beta": 4}', {"beta": 4.0})],
)
def test_train_runs_any_registered_estimator(tiny_base, tiny_data, tmp_path, capsys, estimator, options, section):
    out = tmp_path / estimator
    argv = ["train", "--model", str(tiny_base), "--data", str(tiny_data / "train.parquet"), "--out", str(out),
            "--estimator", estimator, "--steps", "2", "--prompts-per-step", "4", "--n", "3", "--lr", "1e-2",
            "--save-every", "0", "--no-progress", "--no-tensorboard", "--no-norm-adv-by-std-in-grpo"]
    assert main(argv + (["--estimator-options", options] if options else [])) == 0
    algo = json.loads((out / "run.json").read_text())["algorithm"]
    assert algo["adv_estimator"] == estimator and algo["norm_adv_by_std_in_grpo"] is False
    assert algo.get(estimator) == section  # verl's own estimators get no algorithm.<estimator> section
    log = pd.read_csv(out / "train_metrics.csv")
    assert list(log["step"]) == [1, 2] and log["adv_abs_max"].notna().all()
    capsys.readouterr()
    assert main(argv + ["--estimator-options", '{"k": 4}']) == 2  # not a key of this estimator
    known = "known: beta)" if estimator == "rs_grpo" else f"known: none: {estimator} takes no options)"
    assert capsys.readouterr().err.strip() == f"error: train.estimator_options.k: unknown key ({known}"
