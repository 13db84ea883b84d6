"""Prompt templates of the published scripts, and problem-text normalisation.

``dapo``  DAPO's prompt (BytedTsinghua-SIA/DAPO-Math-17k ships it): the answer goes on a last
          line ``Answer: ...``.
``boxed`` the RiskPO / verl ``examples/data_preprocess`` suffix for MATH and GSM8K:
          ``<problem> Let's think step by step and output the final answer within \\boxed{}.``
``raw``   the problem alone (for models whose chat template adds its own instruction).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

DAPO_PREFIX = (
    "Solve the following math problem step by step. The last line of your response should be of the form "
    "Answer: $Answer (without quotes) where $Answer is the answer to the problem.\n\n"
)
DAPO_SUFFIX = '\n\nRemember to put your answer on its own line after "Answer:".'
BOXED_SUFFIX = "Let's think step by step and output the final answer within \\boxed{}."

TEMPLATES: dict[str, str] = {
    "dapo": DAPO_PREFIX + "{problem}" + DAPO_SUFFIX,
    "boxed": "{problem} " + BOXED_SUFFIX,
    "raw": "{problem}",
}


def render(problem: str, template: str) -> str:
    """The user message for ``problem`` under ``template`` (a key of ``TEMPLATES``)."""
    if template not in TEMPLATES:
        raise ValueError(f"unknown template {template!r}; known: {', '.join(TEMPLATES)}")
    return TEMPLATES[template].replace("{problem}", problem.strip())


def strip_template(content: str) -> str:
    """Recover the raw problem from a prompt built by one of ``TEMPLATES`` (else return it as is)."""
    text = content
    if text.startswith(DAPO_PREFIX) and text.endswith(DAPO_SUFFIX):
        text = text[len(DAPO_PREFIX) : len(text) - len(DAPO_SUFFIX)]
    elif text.endswith(" " + BOXED_SUFFIX):
        text = text[: -len(BOXED_SUFFIX) - 1]
    return text.strip()


_SPACING = re.compile(r"\\[,;:! ]|\\q?quad\b|\$|\s+")


def normalize_problem(text: str) -> str:
    """Problem text up to case, Unicode form, whitespace, ``$`` and LaTeX spacing commands.

    Two rows whose normalised problems are equal are the same problem (deduplication, the
    contamination check).
    """
    text = unicodedata.normalize("NFKC", str(text)).lower()
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    return _SPACING.sub("", text).rstrip(".")


def problem_hash(text: str) -> str:
    """sha256 (first 16 hex digits) of ``normalize_problem(text)``."""
    return hashlib.sha256(normalize_problem(text).encode("utf-8")).hexdigest()[:16]
