import json

import pandas as pd
import pytest

from riskrl.embedded.sft import SFTConfig, lr_at, run_sft


def test_sft_lowers_the_loss_and_saves_a_hub_style_model(tiny_init, tiny_data, tmp_path):
    out = tmp_path / "base"
    summary = run_sft(
        SFTConfig(
            model=str(tiny_init),
            data=str(tiny_data / "train.parquet"),
            out=str(out),
            steps=30,
            batch_size=16,
            lr=1e-2,
            warmup_steps=3,
            target_acc=0.0,
            progress=False,
        )
    )
    losses = pd.read_csv(out / "sft_log.csv")["loss"]
    assert len(losses) == 30 and losses.iloc[-5:].mean() < 0.7 * losses.iloc[:3].mean()
    meta = json.loads((out / "riskrl_meta.json").read_text())
    assert meta["stage"] == "sft" and meta["sft_config"]["steps"] == 30 and summary["examples"] == 40
    from transformers import AutoModelForCausalLM, AutoTokenizer

    AutoModelForCausalLM.from_pretrained(out)
    AutoTokenizer.from_pretrained(out)


def test_sft_stops_at_the_target_accuracy(tiny_init, tmp_path):
    # the held-out rows (the first eval_rows) repeat later in the data, so they can be learned
    from riskrl.embedded.task import generate_rows

    rows = generate_rows(20, 0, "train", a_digits=1, b_digits=1, heldout_frac=0.2) * 3
    data = tmp_path / "d.parquet"
    pd.DataFrame(rows).to_parquet(data)
    summary = run_sft(
        SFTConfig(
            model=str(tiny_init),
            data=str(data),
            out=str(tmp_path / "b"),
            steps=400,
            batch_size=32,
            lr=1e-2,
            warmup_steps=5,
            target_acc=0.3,
            eval_rows=20,
            eval_every=10,
            eval_samples=4,
            progress=False,
        )
    )
    assert summary["stopped_early"] and summary["steps_run"] % 10 == 0 and summary["steps_run"] < 400
    assert summary["held_out_acc"] >= 0.3 and summary["examples"] == 40
    log = pd.read_csv(tmp_path / "b" / "sft_log.csv")
    checks = log["held_out_acc"].dropna()
    assert len(log) == summary["steps_run"] and (checks.iloc[:-1] < 0.3).all() and checks.iloc[-1] >= 0.3
    with pytest.raises(ValueError, match="more than 2 \\* eval_rows"):
        run_sft(SFTConfig(model=str(tiny_init), data=str(data), out=str(tmp_path / "c"), eval_rows=40))


def test_schedule_and_bad_input(tmp_path):
    cfg = SFTConfig(steps=100, lr=1.0, warmup_steps=10, min_lr_frac=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.1) and lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(99, cfg) == pytest.approx(0.1, abs=1e-3)
    with pytest.raises(ValueError, match="target_acc must be in"):
        SFTConfig(target_acc=1.5)
    with pytest.raises(ValueError, match="sft.steps must be >= 1"):
        SFTConfig(steps=0)
    with pytest.raises(ValueError, match="needs model, data and out"):
        run_sft(SFTConfig())
    bad = tmp_path / "bad.parquet"
    pd.DataFrame({"prompt": [[{"role": "user", "content": "1*2="}]]}).to_parquet(bad)
    with pytest.raises(ValueError, match="missing column"):
        from riskrl.embedded.data import load_examples

        load_examples(bad)
