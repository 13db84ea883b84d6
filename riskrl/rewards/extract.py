"""Find the final answer in a response or a reference solution (pure string work, no sympy).

Three answer markers are recognised, and the one that appears *last* in the text wins:

- ``\\boxed{...}`` / ``\\fbox{...}`` (MATH, the RiskPO ``\\boxed{}`` prompt), braces balanced;
- a line ``Answer: ...`` (the DAPO prompt; ``**Answer:**`` too), as verl's ``math_dapo`` reads it;
- ``#### ...`` (GSM8K reference solutions).

``quick_equal`` decides the easy cases (same string after LaTeX-spacing normalisation, two plain
decimal numbers with thousands commas allowed, base-subscript numerals) and refuses answers of
different kinds that math-verify would call equal (``structure_mismatch``), so most calls never
reach math-verify.
"""

from __future__ import annotations

import re
from fractions import Fraction

_BOXED = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])")
_ANSWER_LINE = re.compile(r"(?i)\banswer\s*\**\s*:\s*\**[ \t]*([^\n]*)")
_HASHES = re.compile(r"####[ \t]*([^\n]*)")
# a plain decimal number: 12, -3.5, .5, 1,234,567.25 (commas only as thousands separators)
_NUMBER = re.compile(r"[+-]?(?:\d+|\d{1,3}(?:,\d{3})+)(?:\.\d+)?|[+-]?\.\d+")
# a numeral in another base: 52_8, 4210_{5}, A3_{16}
_BASE_NUMERAL = re.compile(r"([0-9A-Z]*\d[0-9A-Z]*)_\{?(\d+)\}?")
# the left side of an assignment answer: x, y_1, \\theta, f(x)
_VARIABLE = re.compile(r"[A-Za-z](?:_\{?\w+\}?)?|\\[a-zA-Z]+|[a-zA-Z]\([a-zA-Z]\)")
_UNIT_MARKS = {
    "degree": ("^\\circ", "^{\\circ}", "°", "\\degree"),
    "dollar": ("\\$",),
    "percent": ("\\%", "%"),
}
_LEFT_RIGHT = re.compile(r"\\(?:left|right)(?![a-zA-Z])")
_LATEX_SPACE = re.compile(r"\\[,;:! ]|\\q?quad(?![a-zA-Z])|~")
MAX_BOX_TRIES = 8
_MATH_DELIMS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))


def last_boxed(text: str) -> tuple[int, str] | None:
    """``(start, content)`` of the last ``\\boxed{...}`` / ``\\fbox{...}``; None if there is none.

    ``\\boxed 5`` (no braces) gives ``"5"``; an unclosed brace gives None.
    """
    matches = list(_BOXED.finditer(text))
    for m in reversed(matches[-MAX_BOX_TRIES:]):  # bounded work on long, malformed responses
        i = m.end()
        while i < len(text) and text[i] == " ":
            i += 1
        if i < len(text) and text[i] == "{":
            depth = 0
            for j in range(i, len(text)):
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                    if depth == 0:
                        return m.start(), text[i + 1 : j].strip()
            continue  # unclosed: try an earlier \boxed
        if i > m.end():  # "\boxed 5": the token after the space
            token = re.match(r"[^\s$]+", text[i:])
            if token:
                return m.start(), token.group(0)
    return None


def strip_math_delimiters(s: str) -> str:
    """Drop one pair of surrounding ``$``/``$$``/``\\(\\)``/``\\[\\]`` and a trailing full stop."""
    s = s.strip()
    for left, right in _MATH_DELIMS:
        if len(s) >= len(left) + len(right) and s.startswith(left) and s.endswith(right):
            s = s[len(left) : len(s) - len(right)].strip()
            break
    return s.rstrip(".").strip() if not s.endswith("..") else s


def extract_answer(text: str) -> str | None:
    """The final answer in ``text`` (see module docstring), or None when no marker is found."""
    text = str(text)
    candidates: list[tuple[int, str]] = []
    boxed = last_boxed(text)
    if boxed is not None:
        candidates.append(boxed)
    for pattern in (_ANSWER_LINE, _HASHES):
        found = [m for m in pattern.finditer(text) if m.group(1).strip()]
        if found:
            m = found[-1]
            value = m.group(1).strip()
            inner = last_boxed(value)  # "Answer: $\boxed{5}$"
            candidates.append((m.start(), inner[1] if inner else value))
    if not candidates:
        return None
    _, answer = max(candidates, key=lambda c: c[0])
    answer = strip_math_delimiters(answer)
    return answer or None


def gsm8k_answer(solution: str) -> str | None:
    """GSM8K reference answer: the text after the last ``####``, thousands commas removed."""
    found = _HASHES.findall(str(solution))
    if not found or not found[-1].strip():
        return None
    ans = found[-1].strip()
    return ans.replace(",", "") if _NUMBER.fullmatch(ans) else ans


def canonical(s: str) -> str:
    """LaTeX-spacing-insensitive form used for exact string comparison."""
    s = strip_math_delimiters(str(s))
    s = _LEFT_RIGHT.sub("", s)
    s = _LATEX_SPACE.sub("", s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    return "".join(s.split())


def as_number(s: str) -> Fraction | None:
    """Exact value of a plain decimal number string (``"1,234.5"``), else None."""
    s = strip_math_delimiters(s).replace(" ", "")
    if not _NUMBER.fullmatch(s):
        return None
    return Fraction(s.replace(",", ""))


def _top_level_commas(s: str) -> int:
    depth, n = 0, 0
    for ch in s:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            n += 1
    return n


def collection_kind(s: str) -> str | None:
    """``"unordered"`` for ``1,-2`` / ``\\{1,-2\\}``, ``"ordered"`` for ``(-2,1)`` / ``[1,2)`` / ``(1,2,3)``."""
    c = canonical(s)
    if as_number(c) is not None:
        return None
    if _top_level_commas(c):
        return "unordered"
    if c.startswith("\\{") and c.endswith("\\}") and _top_level_commas(c[2:-2]):
        return "unordered"
    if c[:1] in "([" and c[-1:] in ")]" and len(c) > 2 and _top_level_commas(c[1:-1]):
        return "ordered"
    return None


def _equation_lhs(s: str) -> str | None:
    c = canonical(s)
    if c.count("=") != 1 or any(op in c for op in ("\\le", "\\ge", "<", ">")):
        return None
    return c.split("=")[0]


def _unit_marks(s: str) -> set[str]:
    c = canonical(s)
    marks = {name for name, pats in _UNIT_MARKS.items() if any(p in c for p in pats)}
    return marks


def structure_mismatch(gold: str, pred: str) -> bool:
    """Answers of different kinds that math-verify, being lenient, would still call equal.

    - a solution set against an ordered pair / interval: math-verify matches ``1,-2`` with
      ``(-2,1)`` (it reads the pair as an interval and compares endpoints);
    - a number against an equation whose left side is not a variable: math-verify compares
      ``0`` with the right side of ``5x-7y+11z+4=0``. (``x=5`` against ``5`` stays equal.)
    - two different explicit units (degrees, dollars, percent); one unit against none is fine.
    """
    gu, pu = _unit_marks(gold), _unit_marks(pred)
    if gu and pu and gu != pu:  # 36^\circ vs \$36: math-verify drops both units
        return True
    gk, pk = collection_kind(gold), collection_kind(pred)
    if gk is not None and pk is not None and gk != pk:
        return True
    for side, other in ((pred, gold), (gold, pred)):
        lhs = _equation_lhs(side)
        if lhs is not None and _equation_lhs(other) is None and not _VARIABLE.fullmatch(lhs):
            return True
    return False


def base_numeral(s: str) -> str | None:
    """``"52_{8}"`` -> ``"52_8"``; None unless ``s`` is a numeral with a base subscript."""
    m = _BASE_NUMERAL.fullmatch(canonical(s))
    return f"{m.group(1)}_{m.group(2)}" if m else None


def quick_equal(gold: str, pred: str) -> bool | None:
    """True/False when string work decides; None when math-verify has to look."""
    if canonical(gold) == canonical(pred):
        return True
    gb, pb = base_numeral(gold), base_numeral(pred)
    if gb is not None or pb is not None:  # math-verify drops the subscript: 52_8 == 52 for it
        return gb == pb
    g, p = as_number(gold), as_number(pred)
    if g is not None and p is not None:
        return g == p
    if structure_mismatch(gold, pred):
        return False
    return None
