import json
import re

import pytest

from scaffoldrl.sources import VENDOR, load_source
from scaffoldrl.steps import group, split_steps


def test_paragraphs_come_first():
    text = "First we note a thing. It is true.\n\nThen we compute. It is 4.\n\nSo the answer is $\\boxed{4}$."
    assert split_steps(text) == ["First we note a thing. It is true.", "Then we compute. It is 4.",
                                 "So the answer is $\\boxed{4}$."]


def test_numbered_items_when_one_paragraph():
    text = "We proceed in order:\n1. Expand the square. Collect terms.\n2) Factor it.\n(3) Read off $x=2$."
    assert split_steps(text) == ["We proceed in order:", "1. Expand the square. Collect terms.",
                                 "2) Factor it.", "(3) Read off $x=2$."]


def test_bold_and_keyword_headers():
    text = "**Setup** Let $n$ be odd. Write $n=2m+1$.\n**Count** The **key** pairs. Step 3: Conclude."
    assert split_steps(text) == ["**Setup** Let $n$ be odd. Write $n=2m+1$.",
                                 "**Count** The **key** pairs.", "Step 3: Conclude."]


def test_sentences_last_and_not_inside_math_or_decimals():
    text = "Let $x = 3.5. Y$ hold. Then $y = x^2.$ So e.g. the answer is $\\boxed{12.25}$."
    assert split_steps(text) == ["Let $x = 3.5. Y$ hold.", "Then $y = x^2.$",
                                 "So e.g. the answer is $\\boxed{12.25}$."]


def test_no_cut_inside_figures_or_environments():
    text = ("Draw it.\n\n[asy]\ndraw(A--B);\n\nlabel(\"A\", A);\n[/asy]\n\n"
            "\\begin{align*}\nx &= 1. \\\\\n\nY &= 2.\n\\end{align*}")
    assert split_steps(text) == ["Draw it.", "[asy]\ndraw(A--B);\n\nlabel(\"A\", A);\n[/asy]",
                                 "\\begin{align*}\nx &= 1. \\\\\n\nY &= 2.\n\\end{align*}"]


def test_min_steps_falls_through_to_finer_splitters():
    text = "One. Two. Three.\n\nFour. Five."
    assert len(split_steps(text, min_steps=2)) == 2
    assert split_steps(text, min_steps=4) == ["One.", "Two.", "Three.", "Four.", "Five."]
    # nothing reaches 9: the finest split available is returned, not the first
    assert len(split_steps(text, min_steps=9)) == 5


def test_group_is_contiguous_and_near_equal():
    units = [str(i) for i in range(10)]
    assert group(units, 4) == ["0\n1\n2", "3\n4\n5", "6\n7", "8\n9"]
    assert group(units[:2], 4) == ["0", "1"]
    assert group([], 4) == []
    with pytest.raises(ValueError):
        group(units, 0)


def test_real_solutions_lose_no_text():
    squash = lambda s: re.sub(r"\s+", "", s)
    lines = (VENDOR / "benchmarks/math500.jsonl").read_text(encoding="utf-8").splitlines()
    raw = [json.loads(line) for line in lines]
    problems = load_source("math500")
    assert sum(len(p.steps) > 1 for p in problems) > 350  # most one-paragraph solutions get sentence steps
    for row, p in zip(raw, problems, strict=True):
        assert squash("".join(p.steps)) == squash(row["solution"])
