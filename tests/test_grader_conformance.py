"""The grader against math-verify on real answer formats: tests/data/grader_conformance.json.

Each row is (category, source, gold, pred, expected, math_verify): ``expected`` is the
right verdict, ``math_verify`` math-verify's own. Two kinds of rows:

* math-verify 0.9.0's own test cases (its sdist's ``tests/``, cited by file, test and
  line): ``expected`` is the test's label and ``math_verify`` its verdict in that test's
  harness (the same on every row here: math-verify passes its own tests);
* the formats below (:data:`FORMATS`), each citing where the format comes from:
  ``math_verify`` is ``verify(parse(gold), parse(pred))`` with math-verify's default
  extraction, a bare gold written as ``\\boxed{gold}`` (how graders hand it a gold answer).

The test grades every row with our default extraction and checks it against
``expected``; :data:`KNOWN` lists the rows where math-verify and ours differ, and why.
Rebuild the data (math-verify's sdist unpacked at MV)::

    python tests/test_grader_conformance.py --rebuild MV/tests
    python tests/test_grader_conformance.py --table      # agreement per category
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import pytest

DATA = Path(__file__).with_name("data") / "grader_conformance.json"

MINERVA = "Minerva's answer line (Lewkowycz et al. 2022; lm-evaluation-harness minerva_math)"
SPARKLE = "SPARKLE's <answer> format (arXiv 2506.04723; docs SPEC section 2)"
GSM8K = "GSM8K's reference format (Cobbe et al. 2021, '#### N'), e.g. vendor/benchmarks/gsm8k.jsonl"
COT = "chain-of-thought few-shot format 'A: ... The answer is N.' (Wei et al. 2022; lm-eval gsm8k_cot)"
MV = "math-verify 0.9.0 tests"

# (category, source, gold, pred, expected)
FORMATS = [
    # several boxes: a solution set
    ("several_boxes", f"{MV}/test_all.py line 875 (two adjacent boxes)", "1, 2", "$\\boxed{1}\\boxed{2}$", True),
    ("several_boxes", f"{MV}/test_all.py line 881 (open-thoughts completion ending in two boxes)", "-2, 1",
     "So the integers are \\[ \\boxed{-2} \\quad \\text{and} \\quad \\boxed{1}. \\]", True),
    ("several_boxes", f"{MV}/test_open_thoughts.py line 9 (boxes in one display)", "2, 3, 5, 7, 13",
     "$$\\boxed{2}, \\boxed{3}, \\boxed{5}, \\boxed{7}, \\boxed{13}$$", True),
    ("several_boxes", "math-verify README (several boxes form a set); inline spans", "1, 2",
     "The solutions are $\\boxed{1}$ and $\\boxed{2}$.", True),
    ("several_boxes", "math-verify README (several boxes form a set); inline spans", "1, 2",
     "so $x=\\boxed{1}$ or $x = \\boxed{2}$.", True),
    ("several_boxes", "math-verify README (several boxes form a set); a wrong member", "1, 2",
     "The solutions are $\\boxed{1}$ and $\\boxed{3}$.", False),
    ("several_boxes", "MATH500 test/geometry/178 (one answer boxed twice, far apart)", "2",
     "we have $\\tan A = \\frac{BC}{AB} = \\boxed{2}$.\n\nWe also could have noted that "
     "$\\tan A = \\frac{\\sin A}{\\cos A} = \\frac{2\\cos A}{\\cos A } =\\boxed{2}$.", True),
    # display and inline math without a box
    ("display_math", "DeepSeek-R1/Qwen style closing display (math-verify latexDisplayBracket)", "3",
     "Therefore,\n\\[\n3\n\\]\nis the value", True),
    ("display_math", "DeepSeek-R1/Qwen style closing display (math-verify latexDisplayBracket)", "3",
     "Therefore,\n\\[\n4\n\\]\nis the value", False),
    ("display_math", "math-verify latexDisplayDollar", "\\frac{7}{2}", "So the area is\n$$\\frac{7}{2}$$", True),
    ("display_math", "math-verify latexInlineParenthesis", "12", "Hence the total is \\(12\\).", True),
    ("display_math", "math-verify latexInlineDollar", "-5", "and we are left with $x = -5$.", True),
    # "final answer" sentences
    ("final_answer", MINERVA + " (free form)", "34", "Final Answer: The largest $n$ is 34.", True),
    ("final_answer", f"{MV}/test_all.py line 818 with {MINERVA}: an earlier box", "10455",
     "so the interest is $\\boxed{200}$ after six months, then $10,200 + $255 = $10,455. "
     "Final Answer: The final answer is $10,455$. I hope it is correct.", True),
    ("final_answer", MINERVA, "\\frac{5}{3}", "Final Answer: The final answer is $\\frac{5}{3}$. I hope it is correct.",
     True),
    ("final_answer", MINERVA, "\\frac{5}{3}", "Final Answer: The final answer is $\\frac{3}{5}$. I hope it is correct.",
     False),
    ("final_answer", "'The final answer is N' closing line (math-verify final_answer_prefixed_just_is)", "42",
     "The final answer is 42.", True),
    # bare answers (the whole completion is the answer)
    ("bare_answer", "math-verify README: parse('$\\frac{1}{3}$')", "\\frac{1}{3}", "$\\frac{1}{3}$", True),
    ("bare_answer", "\\tfrac spelling (MATH solutions)", "\\frac{1}{3}", "$\\tfrac{1}{3}$", True),
    ("bare_answer", f"{MV}/test_all.py test_number_extraction (space thousands)", "1000", "1 000", True),
    ("bare_answer", "interval membership (MATH500 answers such as x \\in [-2,7])", "[-2,7]", "$x \\in [-2,7]$", True),
    ("bare_answer", "multiple-choice letter in \\text{} (MATH500 '\\text{(E)}' answers)", "$\\text{E}$", "$E$", True),
    ("bare_answer", "matrix answer (MATH500 precalculus)", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}",
     "$\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}$", True),
    ("bare_answer", "matrix answer (MATH500 precalculus)", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}",
     "$\\begin{pmatrix} 2 \\\\ 1 \\end{pmatrix}$", False),
    ("bare_answer", f"{MV}/test_all.py test_percent_notation", "0.5", "50%", True),
    ("bare_answer", "plain number with thousands separators (GSM8K answers)", "7425000", "7,425,000", True),
    # gold answers in other forms
    ("gold_forms", "gold given boxed (MATH solutions carry \\boxed{})", "\\boxed{5}", "The answer is $5$.", True),
    ("gold_forms", "gold given as several boxes", "$\\boxed{1}$ and $\\boxed{2}$", "\\boxed{\\{1, 2\\}}", True),
    ("gold_forms", "gold given as an equation (MATH500 answers such as x=5)", "x = 5", "\\boxed{5}", True),
    ("gold_forms", "gold given as a whole MATH500 solution (test/algebra/841)",
     "we have $4d = 500-200 = 300$. Therefore, we find $d=75$.  The sixth term is two steps after the fourth, "
     "or $200 + 2d = \\boxed{350}$.", "\\boxed{350}", True),
    ("gold_forms", "gold given as a whole AIME24 solution with nothing marked (vendor/benchmarks/aime24.jsonl #0)",
     "The t minutes spent at the coffeeshop can be written as $144-48(2.5)$, so t = 24. $180 + 24 = 204$. -sepehr2010",
     "\\boxed{204}", True),
    ("gold_forms", "gold given as a GSM8K reference solution (vendor/benchmarks/gsm8k.jsonl #0)",
     "She makes 9 * 2 = $<<9*2=18>>18 every day at the farmer's market.\n#### 18", "The answer is 18.", True),
    # answer tags
    ("answer_tags", SPARKLE, "7", "<think>\nx = 3, so \\boxed{3} is not it\n</think>\n<answer>\nThe answer is \\boxed{7}.\n</answer>",
     True),
    ("answer_tags", SPARKLE + ", a bare answer in the tags", "3", "<think>2 + 1</think>\n<answer>3</answer>", True),
    ("answer_tags", SPARKLE + ", a sentence in the tags", "3", "<think>2 + 1</think>\n<answer>The value is $3$.</answer>", True),
    # GSM8K
    ("gsm8k", GSM8K, "18", "She makes 9 * 2 = 18 dollars.\n#### 18", True),
    ("gsm8k", GSM8K, "18", "She makes 9 * 2 = 18 dollars.\n#### 1,8", False),
    ("gsm8k", COT, "18", "Q: How much does she make?\nA: 18", True),
    ("gsm8k", COT, "18", "She eats 3 and bakes 4, so 9 are left and she makes 9 * 2 = 18. The answer is 18.", True),
    ("gsm8k", COT, "18", "9 are left and she makes 9 * 2 = 18 dollars. The answer is 18 dollars.", True),
]

KNOWN = {
    # source -> why ours differs from math-verify's verdict or from the label
    f"{MV}/test_all.py line 132": "the test reads LaTeX only (test_latex_notation); with math-verify's default "
    "extraction (LaTeX and expressions, ours) 'Answer $ \\n 9 \\n $' does answer 9",
    f"{MV}/test_all.py line 133": "as line 132, with \\( \\)",
    f"{MV}/test_all.py line 71": "the test reads expressions only (test_number_extraction), where the gold '1,22' is "
    "a decimal comma; we read a bare gold as LaTeX, where math-verify too reads \\boxed{1,22} as the set {1, 22}",
    SPARKLE + ", a bare answer in the tags": "math-verify does not read <answer> tags (its answer is '2 + 1' from the "
    "reasoning); ours reads the tag: right",
    "gold given as a whole AIME24 solution with nothing marked (vendor/benchmarks/aime24.jsonl #0)": "both wrong: a "
    "gold with nothing marked goes to math-verify's extraction, whose last span is the equation '180 + 24 = 204'",
}


def rebuild(mv_tests: Path) -> list[dict]:
    """Rows from math-verify's own tests (every 3-column compare_strings case at default precision)
    and :data:`FORMATS`, with math-verify's verdicts."""
    import ast
    import logging
    import math

    from math_verify import parse, verify

    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    sys.path.insert(0, str(mv_tests.parent))
    from tests.test_all import compare_strings  # math-verify's own harness

    rows = []
    for path in sorted(mv_tests.glob("test_*.py")):
        for fn in ast.parse(path.read_text()).body:
            calls = [n for n in ast.walk(fn) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "compare_strings"]
            if not isinstance(fn, ast.FunctionDef) or not calls:
                continue
            kw = {k.arg: k.value for k in calls[0].keywords}
            match_types = ast.literal_eval(kw["match_types"]) if "match_types" in kw else ["latex", "expr"]
            if set(kw) - {"match_types", "precision"}:
                continue
            for dec in fn.decorator_list:
                if not (isinstance(dec, ast.Call) and getattr(dec.func, "attr", "") == "parametrize"):
                    continue
                names = [s.strip() for s in ast.literal_eval(dec.args[0]).split(",")]
                for elt in dec.args[1].elts:
                    try:
                        row = dict(zip(names, eval(compile(ast.Expression(elt), str(path), "eval"), {"math": math})))
                    except Exception:
                        continue
                    if "expected" not in row or row.get("precision", 6) != 6:
                        continue
                    rows.append({"category": "mv:" + fn.name.removeprefix("test_"),
                                 "source": f"{MV}/{path.name} line {elt.lineno}", "gold": row["gold"],
                                 "pred": row["pred"], "expected": bool(row["expected"]),
                                 "math_verify": bool(compare_strings(row["gold"], row["pred"], match_types=match_types))})
    for category, source, gold, pred, expected in FORMATS:
        anchored = gold if any(m in gold for m in ("$", "\\(", "\\[", "\\boxed")) else f"\\boxed{{{gold}}}"
        rows.append({"category": category, "source": source, "gold": gold, "pred": pred, "expected": expected,
                     "math_verify": bool(verify(parse(anchored), parse(pred)))})
    return rows


def load() -> list[dict]:
    return json.loads(DATA.read_text())


@pytest.fixture(scope="module")
def grader():
    from scaffoldrl.verify import Grader

    with Grader(workers=2, timeout=10.0) as g:
        yield g


@pytest.fixture(scope="module")
def graded(grader):
    rows = load()
    return rows, grader.grade_batch([(r["pred"], r["gold"]) for r in rows])


def test_data_covers_the_formats():
    rows = load()
    categories = {r["category"] for r in rows}
    assert {"several_boxes", "display_math", "final_answer", "bare_answer", "gold_forms", "answer_tags",
            "gsm8k"} <= categories
    assert sum(r["source"].startswith(MV) for r in rows) >= 250
    assert all(r["source"] for r in rows)


def test_every_row_graded_right(graded):
    rows, verdicts = graded
    wrong = [(r["source"], r["gold"][:60], r["pred"][-80:], v) for r, v in zip(rows, verdicts)
             if bool(v.correct) != r["expected"] and r["source"] not in KNOWN]
    assert wrong == []
    assert all(v.status in ("ok", "no_answer") for v in verdicts)


def test_differences_from_math_verify_are_the_known_ones(graded):
    rows, verdicts = graded
    differ = {r["source"] for r, v in zip(rows, verdicts) if bool(v.correct) != r["math_verify"]}
    assert differ <= set(KNOWN) | {r["source"] for r in rows if r["expected"] != r["math_verify"]}


def test_strict_reads_tags_and_boxes_only(grader):
    by_category = defaultdict(list)
    for category, _, gold, pred, expected in FORMATS:
        by_category[category].append((pred, gold))
    display = grader.grade_batch(by_category["display_math"], extraction="strict")
    boxes = grader.grade_batch(by_category["several_boxes"][:4], extraction="strict")
    tags = grader.grade_batch(by_category["answer_tags"], extraction="strict")
    assert {v.status for v in display} == {"no_answer"}
    assert [v.correct for v in boxes] == [True] * 4
    assert [v.correct for v in tags] == [True, True, False]  # "The value is $3$" read whole: not an answer


def table(rows: list[dict], verdicts) -> str:
    """Agreement of ours with math-verify's verdicts and with the labels, per category (Markdown)."""
    stats = defaultdict(lambda: [0, 0, 0, 0])
    for r, v in zip(rows, verdicts):
        s = stats[r["category"]]
        s[0] += 1
        s[1] += bool(v.correct) == r["math_verify"]
        s[2] += r["math_verify"] == r["expected"]
        s[3] += bool(v.correct) == r["expected"]
    lines = ["| category | rows | ours = math-verify | math-verify = label | ours = label |", "|---|---:|---:|---:|---:|"]
    for name, (n, agree, mv_right, ours_right) in sorted(stats.items(), key=lambda kv: (kv[0].startswith("mv:"), kv[0])):
        lines.append(f"| {name} | {n} | {agree}/{n} | {mv_right}/{n} | {ours_right}/{n} |")
    n, agree, mv_right, ours_right = (sum(s[i] for s in stats.values()) for i in range(4))
    lines.append(f"| **all** | {n} | {agree}/{n} ({agree / n:.1%}) | {mv_right}/{n} ({mv_right / n:.1%}) | "
                 f"{ours_right}/{n} ({ours_right / n:.1%}) |")
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--rebuild"]:
        data = rebuild(Path(sys.argv[2]))
        DATA.parent.mkdir(exist_ok=True)
        DATA.write_text(json.dumps(data, indent=0, ensure_ascii=False) + "\n")
        print(f"{DATA}: {len(data)} rows")
    elif sys.argv[1:2] == ["--table"]:
        from scaffoldrl.verify import Grader

        data = load()
        with Grader(workers=2, timeout=10.0) as grader:
            verdicts = grader.grade_batch([(r["pred"], r["gold"]) for r in data])
        print(table(data, verdicts))
        for r, v in zip(data, verdicts):
            if bool(v.correct) != r["math_verify"]:
                print(f"- {r['source']}: ours {v.correct} ({v.rule}), math-verify {r['math_verify']}, "
                      f"label {r['expected']}: {KNOWN.get(r['source'], '?')}")
