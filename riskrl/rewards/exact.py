"""Exact-match checker for the synthetic tasks of the embedded backend (``data_source`` ``riskrl/*``).

A response is cut at its first EOS marker and then at its first whitespace; it is correct iff
what remains equals the ground truth exactly (``"05535<eos>..."`` -> ``"05535"``). No
normalisation beyond that: ``"5535"`` is wrong when the answer is ``"05535"``.
"""

from __future__ import annotations

#: special tokens that end a response when a tokenizer decodes them as text
EOS_MARKERS: tuple[str, ...] = ("<eos>", "</s>", "<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<pad>")


def cut_response(solution_str: str) -> str:
    """The answer a response gives: its text up to the first EOS marker or whitespace."""
    text = str(solution_str).strip()
    for marker in EOS_MARKERS:
        text = text.split(marker, 1)[0]
    parts = text.split(None, 1)
    return parts[0] if parts else ""


def exact_score(solution_str: str, ground_truth: str) -> dict:
    """``{"score": 1.0, "acc": True, "pred": ...}`` iff the cut response equals ``ground_truth``."""
    pred = cut_response(solution_str)
    acc = pred != "" and pred == str(ground_truth).strip()
    return {"score": float(acc), "acc": acc, "pred": pred}
