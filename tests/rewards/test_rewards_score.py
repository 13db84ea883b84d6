"""compute_score on tricky math answers, answer extraction, the exact checker, the time bound."""

from __future__ import annotations

import signal
import time

import pytest

import riskrl.rewards.math_answer as ms
from riskrl.rewards import compute_score, extract_answer, gsm8k_answer, is_parseable, last_boxed

MATH = "HuggingFaceH4/MATH-500"

CASES = [
    # (gold, response, expected score)
    # fractions vs decimals
    ("\\frac{1}{2}", "so $\\boxed{0.5}$", 1.0),
    ("0.5", "\\boxed{\\frac12}", 1.0),
    ("\\frac{1}{3}", "\\boxed{0.33}", 0.0),
    ("\\frac{14}{3}", "\\boxed{\\frac{14}{5}}", 0.0),
    # \dfrac / \tfrac / spacing
    ("\\frac{3}{4}", "\\boxed{\\dfrac{3}{4}}", 1.0),
    ("\\frac{3}{4}", "\\boxed{\\tfrac34}", 1.0),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "\\boxed{(3,\\dfrac{\\pi}{2})}", 1.0),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "\\boxed{(\\frac{\\pi}{2}, 3)}", 0.0),
    # intervals
    ("(-\\infty, 3]", "\\boxed{(-\\infty,3]}", 1.0),
    ("(-\\infty, 3]", "\\boxed{(-\\infty, 3)}", 0.0),
    ("[2,5)", "\\boxed{x \\in [2,5)}", 1.0),
    ("(-\\infty,-2) \\cup (3,\\infty)", "\\boxed{(3,\\infty)\\cup(-\\infty,-2)}", 1.0),
    # units and degrees
    ("10", "\\boxed{10 \\text{ cm}}", 1.0),
    ("90^\\circ", "\\boxed{90}", 1.0),
    ("15", "\\boxed{15\\mbox{ cm}^2}", 1.0),
    ("36^\\circ", "\\boxed{\\$36}", 0.0),  # two different units
    # GSM8K numbers with commas (ground truths are stored without them)
    ("1500", "#### 1,500", 1.0),
    ("1500", "The total is \\boxed{1,500} dollars.", 1.0),
    ("1234567", "\\boxed{1,234,567}", 1.0),
    ("1500", "\\boxed{15,00}", 0.0),
    # wrong answers that share digits
    ("204", "\\boxed{2040}", 0.0),
    ("204", "\\boxed{20}", 0.0),
    ("204", "\\boxed{402}", 0.0),
    ("3\\sqrt{13}", "\\boxed{13\\sqrt{3}}", 0.0),
    ("52_8", "\\boxed{52}", 0.0),  # math-verify alone drops the base subscript
    ("204", "\\boxed{204_5}", 0.0),
    ("4210_{5}", "\\boxed{4210_5}", 1.0),
    # sets, tuples, expressions, complex numbers, text
    ("1,-2", "\\boxed{-2, 1}", 1.0),
    ("1,-2", "\\boxed{(-2,1)}", 0.0),  # an ordered pair / interval is not the solution set
    ("(-2,1)", "\\boxed{-2, 1}", 0.0),
    ("1,-2", "\\boxed{\\{1,-2\\}}", 1.0),
    ("0", "\\boxed{5x - 7y + 11z + 4 = 0}", 0.0),  # math-verify alone compares 0 with the right side
    ("p - q", "\\boxed{-q+p}", 1.0),
    ("6 - 5i", "\\boxed{6-5i}", 1.0),
    ("x=5", "\\boxed{5}", 1.0),
    ("\\text{Evelyn}", "\\boxed{\\text{Evelyn}}", 1.0),
    ("\\text{Evelyn}", "\\boxed{\\text{Bob}}", 0.0),
    # answer markers
    ("204", "Lots of work.\nAnswer: 204", 1.0),
    ("\\frac{1}{2}", "**Answer:** $\\frac{1}{2}$.", 1.0),
    ("4", "First \\boxed{3}, then correcting myself: \\boxed{4}", 1.0),
    ("4", "\\boxed{4} was a guess.\nAnswer: 5", 0.0),  # the last marker wins
    ("204", "The answer is 204.", 0.0),  # no marker, no score
]


@pytest.mark.parametrize("gold,response,expected", CASES)
def test_math_answers(gold, response, expected):
    out = compute_score(MATH, response, gold)
    assert out["score"] == expected and out["acc"] is (expected == 1.0)
    assert isinstance(out["score"], float) and isinstance(out["pred"], str)


def test_result_keys_and_pred():
    assert compute_score("openai/gsm8k", "so #### 1,500", "1500") == {
        "score": 1.0,
        "acc": True,
        "pred": "1,500",
    }
    assert compute_score(MATH, "no answer given", "3") == {"score": 0.0, "acc": False, "pred": ""}
    assert compute_score(MATH, "\\boxed{\\frac{3}{4}}", "\\frac34", {"index": 0}, reward_router_address=None)[
        "pred"
    ] == ("\\frac{3}{4}")


@pytest.mark.parametrize(
    "response,ground_truth,score,pred",
    [
        ("05535", "05535", 1.0, "05535"),
        ("05535<eos><pad><pad>", "05535", 1.0, "05535"),
        ("  05535 and more text", "05535", 1.0, "05535"),
        ("05535</s>", "05535", 1.0, "05535"),
        ("5535", "05535", 0.0, "5535"),
        ("055350", "05535", 0.0, "055350"),
        ("\\boxed{05535}", "05535", 0.0, "\\boxed{05535}"),
        ("<eos>05535", "05535", 0.0, ""),
        ("", "05535", 0.0, ""),
    ],
)
def test_exact_checker_for_riskrl_sources(response, ground_truth, score, pred):
    assert compute_score("riskrl/multiply", response, ground_truth) == {
        "score": score,
        "acc": score == 1.0,
        "pred": pred,
    }


def test_extraction_helpers():
    text = "a \\boxed{\\frac{1}{2}} b \\boxed{x^{2}}"
    assert last_boxed(text) == (text.rindex("\\boxed"), "x^{2}")
    assert last_boxed("\\boxed 5 apples")[1] == "5"
    assert last_boxed("\\fbox{7}")[1] == "7"
    assert last_boxed("\\boxed{7} and \\boxed{unclosed")[1] == "7"
    assert last_boxed("no box") is None
    assert extract_answer("Answer: $\\boxed{12}$") == "12"
    assert extract_answer("x\n#### 72") == "72"
    assert extract_answer("$$\\boxed{3}$$.") == "3"
    assert extract_answer("nothing") is None
    assert gsm8k_answer("a\n#### 1,234") == "1234"
    assert gsm8k_answer("no hashes") is None


def test_ground_truth_parseability():
    for gold in ["204", "1,000", "\\frac{3}{4}", "(-\\infty, 3]", "\\text{Evelyn}", "\\boxed{5}"]:
        assert is_parseable(gold), gold
    for gold in ["", "\\frac{1}{", "}{"]:
        assert not is_parseable(gold), gold


def test_time_is_bounded_and_the_callers_timer_survives(monkeypatch):
    def slow(gold, pred):
        time.sleep(30)
        return True

    monkeypatch.setattr(ms, "verify_in_process", slow)
    fired = []
    old = signal.signal(signal.SIGALRM, lambda *a: fired.append(1))
    signal.setitimer(signal.ITIMER_REAL, 100.0)  # e.g. pytest-timeout's own alarm
    try:
        t = time.monotonic()
        out = compute_score(MATH, "\\boxed{\\sqrt{2}}", "\\sqrt{8}/2", timeout_s=0.3)
        assert time.monotonic() - t < 3.0
        assert out == {"score": 0.0, "acc": False, "pred": "\\sqrt{2}"}
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 90.0 < left <= 100.0 and not fired
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
