"""Math answer reward: extract the final answer, compare it to the reference with math-verify.

Pipeline for one response:

1. ``extract_answer``: last ``\\boxed{}`` / ``Answer:`` / ``####`` (no marker -> score 0, pred "");
2. ``quick_equal``: identical up to LaTeX spacing, or equal plain numbers (``1,000`` == ``1000``);
3. math-verify: both sides parsed as ``\\boxed{...}`` LaTeX and compared with ``verify(gold, pred)``
   (fractions vs decimals, ``\\dfrac``, intervals, sets/tuples, units and ``^\\circ`` dropped).

Time is bounded per call by ``timeout_s`` (wall clock, parse + verify together):

- in the main thread, by our own ``SIGALRM`` timer (math-verify's own ``signal.alarm`` timeouts
  are switched off, ``parsing_timeout=None`` / ``timeout_seconds=None``; a timer already set by
  the caller, e.g. pytest-timeout, is re-armed afterwards);
- in any other thread (verl's reward loop calls the function through ``run_in_executor``), by
  sending the comparison to a small pool of worker processes (``riskrl.rewards.pool``) whose main
  thread runs step 3 under the same timer; the parent kills a worker that overruns.

A timed-out comparison scores 0.
"""

from __future__ import annotations

import contextlib
import functools
import signal
import threading
import time
from collections.abc import Iterator

from riskrl.rewards.extract import as_number, extract_answer, last_boxed, quick_equal

DEFAULT_TIMEOUT_S = 5.0
MAX_ANSWER_CHARS = 2000  # a longer "answer" is not one; never hand it to sympy


class ScoreTimeout(BaseException):
    """Raised by the SIGALRM timer; a BaseException so math-verify's ``except Exception`` lets it through."""


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise ``ScoreTimeout`` in the main thread after ``seconds``; restores any previous timer."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("deadline() uses SIGALRM and only works in the main thread")

    def _raise(signum, frame):
        raise ScoreTimeout(f"math-verify took more than {seconds}s")

    old_handler = signal.signal(signal.SIGALRM, _raise)
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-3))
    start = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler if old_handler is not None else signal.SIG_DFL)
        if old_delay > 0:  # give the caller's timer back what is left of it
            left = max(old_delay - (time.monotonic() - start), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, left, old_interval)


def _math_verify():
    import math_verify
    import math_verify.grader
    import math_verify.parser

    # we bound time ourselves (see module docstring); silence the "timeout disabled" warning
    math_verify.parser.TIMEOUT_WARNING_SHOWN = True
    math_verify.grader.TIMEOUT_WARNING_SHOWN = True
    return math_verify


@functools.cache
def warm_up() -> None:
    """Import math-verify and run one parse + verify (ANTLR grammar, sympy caches), outside any
    deadline: a cold first call can take seconds and must not be scored 0 for it."""
    mv = _math_verify()
    mv.verify(
        mv.parse("\\boxed{1/2}", parsing_timeout=None),
        mv.parse("$0.5$", parsing_timeout=None),
        timeout_seconds=None,
    )


def _unbox(gold: str) -> str:
    gold = str(gold).strip()
    inner = last_boxed(gold)
    return inner[1] if inner is not None and inner[0] == 0 else gold


@functools.lru_cache(maxsize=4096)
def _parse(expr: str) -> tuple:
    mv = _math_verify()
    return tuple(
        mv.parse(
            "\\boxed{" + expr + "}", extraction_config=[mv.LatexExtractionConfig()], parsing_timeout=None
        )
    )


def parse_answer(expr: str) -> list:
    """math-verify's parse of one answer string (as ``\\boxed{expr}``); no time bound, main thread or not."""
    return list(_parse(_unbox(expr)))


def is_parseable(gold: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> bool:
    """True iff ``gold`` is a plain number or math-verify turns it into a sympy object.

    Used by the data validation: a ground truth that only survives as math-verify's raw-string
    fallback (``"\\frac{1}{"``) cannot be checked symbolically and is reported.
    """
    gold = _unbox(gold)
    if not gold or len(gold) > MAX_ANSWER_CHARS:
        return False
    if as_number(gold) is not None:
        return True
    from sympy import Basic, MatrixBase

    warm_up()
    try:
        if threading.current_thread() is threading.main_thread():
            with deadline(timeout_s):
                parsed = _parse(gold)
        else:
            parsed = _parse(gold)
    except ScoreTimeout:
        return False
    return bool(parsed) and isinstance(parsed[0], (Basic, MatrixBase))


def verify_in_process(gold: str, pred: str) -> bool:
    """math-verify comparison with no time bound of its own (callers wrap it in ``deadline``)."""
    mv = _math_verify()
    g, p = _parse(_unbox(gold)), _parse(pred)
    if not g or not p:
        return False
    return bool(mv.verify(list(g), list(p), timeout_seconds=None))


def answers_match(gold: str, pred: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> bool:
    """Is ``pred`` (an extracted answer) equal to ``gold``? Bounded by ``timeout_s``, thread-safe."""
    gold = _unbox(gold)
    if not pred or not gold or len(pred) > MAX_ANSWER_CHARS:
        return False
    quick = quick_equal(gold, pred)
    if quick is not None:
        return quick
    if threading.current_thread() is threading.main_thread():
        warm_up()
        try:
            with deadline(timeout_s):
                return verify_in_process(gold, pred)
        except ScoreTimeout:
            return False
    from riskrl.rewards.pool import get_pool

    return bool(get_pool().verify(gold, pred, timeout_s=timeout_s))


def math_score(solution_str: str, ground_truth: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> dict:
    """``{"score": 0.0|1.0, "acc": bool, "pred": str}`` for a math response."""
    pred = extract_answer(solution_str)
    if pred is None:
        return {"score": 0.0, "acc": False, "pred": ""}
    acc = answers_match(str(ground_truth), pred, timeout_s=timeout_s)
    return {"score": float(acc), "acc": acc, "pred": pred}
