"""Tiny fixture rows in each source's real column format (as on the Hub); tests write them into tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

DAPO_PREFIX = (
    "Solve the following math problem step by step. The last line of your response should be of the form "
    "Answer: $Answer (without quotes) where $Answer is the answer to the problem.\n\n"
)
DAPO_SUFFIX = '\n\nRemember to put your answer on its own line after "Answer:".'


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_parquet(path: Path, rows: list[dict]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def dapo_rows() -> list[dict]:
    """BytedTsinghua-SIA/DAPO-Math-17k: already verl-shaped; the file repeats each problem."""
    problems = [
        ("Find $2^5+2$.", "34"),
        ("How many primes are below $10$?", "4"),
        ("Compute $7\\cdot 8$.", "56"),
    ]
    rows = []
    for rep in range(3):
        for k, (p, a) in enumerate(problems):
            rows.append(
                {
                    "data_source": "math_dapo",
                    "prompt": [{"content": DAPO_PREFIX + p + DAPO_SUFFIX, "role": "user"}],
                    "ability": "MATH",
                    "reward_model": {"ground_truth": a, "style": "rule"},
                    "extra_info": {"index": f"9a1c-{k}-{rep}"},
                }
            )
    return rows


MATH_ROWS = [  # DigitalLearningGmbH/MATH-lighteval: problem, level, type, solution
    {"problem": "What is $\\frac{1}{2}+\\frac{1}{4}$?", "level": "Level 1", "type": "Prealgebra",
     "solution": "We have $\\frac{1}{2}+\\frac{1}{4}=\\boxed{\\frac{3}{4}}$."},
    {"problem": "Solve $x^2=4$ for $x>0$.", "level": "Level 2", "type": "Algebra",
     "solution": "Either $\\boxed{-2}$ is wrong, so $x=\\boxed{2}$."},
    {"problem": "Find the interval where $x-3\\le 0$.", "level": "Level 3", "type": "Algebra",
     "solution": "$x \\in \\boxed{(-\\infty, 3]}$"},
    {"problem": "A problem whose solution forgot the box.", "level": "Level 1", "type": "Algebra",
     "solution": "The answer is 5."},
]  # fmt: skip

GSM8K_ROWS = [  # openai/gsm8k (main): question, answer with '#### <number>'
    {"question": "Tom has 3 apples and buys 4 more. How many apples does he have?",
     "answer": "Tom has 3 + 4 = <<3+4=7>>7 apples.\n#### 7"},
    {"question": "A car costs $1,200 and a bike $300. What do both cost?",
     "answer": "1,200 + 300 = <<1200+300=1500>>1,500\n#### 1,500"},
]  # fmt: skip

AIME24_ROWS = [  # HuggingFaceH4/aime_2024 (split 'train'): id, problem, solution, answer, url, year
    {"id": 60, "problem": "Every morning Aya goes for a $9$-kilometer-long walk. Find the minutes.",
     "solution": "... $\\boxed{204}$", "answer": "204",
     "url": "https://artofproblemsolving.com/wiki/index.php/2024_AIME_I_Problems/Problem_1", "year": "2024"},
    {"id": 61, "problem": "Let $ABC$ be a triangle inscribed in circle $\\omega$. Find $m+n$.",
     "solution": "...", "answer": "113",
     "url": "https://artofproblemsolving.com/wiki/index.php/2024_AIME_I_Problems/Problem_10", "year": "2024"},
]  # fmt: skip

AIME25_I = [
    {"question": "Find the sum of all integer bases $b>9$ for which $17_b$ divides $97_b$.", "answer": "70"}
]
AIME25_II = [
    {"question": "Six points lie in a straight line. Find the area of triangle $BGE$.", "answer": "468"}
]

AMC23_ROWS = [  # math-ai/amc23: id, question, answer (a float on the Hub), url
    {"id": 0, "question": "Cities $A$ and $B$ are $45$ miles apart. How many miles from $A$ do they meet?",
     "answer": 27.0, "url": "https://artofproblemsolving.com/wiki/index.php/2023_AMC_12A_Problems/Problem_1"},
    {"id": 1, "question": "Positive reals satisfy $y^3=x^2$ and $(y-x)^2=4y^2$. What is $x+y$?",
     "answer": 36.0, "url": "https://artofproblemsolving.com/wiki/index.php/2023_AMC_12A_Problems/Problem_2"},
]  # fmt: skip

MATH500_ROWS = [  # HuggingFaceH4/MATH-500: problem, solution, answer, subject, level, unique_id
    {"problem": "Convert the point $(0,3)$ in rectangular coordinates to polar coordinates.",
     "solution": "... $\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}$", "answer": "\\left( 3, \\frac{\\pi}{2} \\right)",
     "subject": "Precalculus", "level": 2, "unique_id": "test/precalculus/807.json"},
    {"problem": "If $f(x) = \\frac{3x-2}{x-2}$, what is the value of $f(-2)$?",
     "solution": "... $\\boxed{\\frac{14}{3}}$", "answer": "\\frac{14}{3}",
     "subject": "Algebra", "level": 3, "unique_id": "test/algebra/2584.json"},
    {"problem": "What is $1+1$?", "solution": "$\\boxed{2}$", "answer": "2",
     "subject": "Prealgebra", "level": 1, "unique_id": "test/prealgebra/1.json"},
]  # fmt: skip

LOCAL_ROWS = [
    {"problem": "What is $3\\cdot 3$?", "answer": "9"},
    {"problem": "Name the first prime.", "answer": "2"},
]
