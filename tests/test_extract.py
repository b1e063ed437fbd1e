import time

import pytest

from scaffoldrl.extract import clean_answer, extract_answer, last_boxed


@pytest.mark.parametrize("text, answer", [
    ("so \\boxed{\\frac{1}{2}} and then \\boxed{\\frac{\\sqrt{3}}{2}}.", "\\frac{\\sqrt{3}}{2}"),
    ("\\boxed{\\{1,2\\}}", "\\{1,2\\}"),
    ("\\boxed 5 apples", "5"),
    ("\\fbox{x^{2}}", "x^{2}"),
    ("\\boxed{3} then \\boxed{4", "3"),  # an unclosed box falls back to the earlier one
    ("no box here", None),
])
def test_last_boxed(text, answer):
    assert last_boxed(text) == answer


@pytest.mark.parametrize("text, answer, rule", [
    ("<think>\\boxed{3}</think>\n<answer>\nThe answer is \\boxed{\\frac{1}{2}}.\n</answer>", "\\frac{1}{2}",
     "answer_tag_boxed"),
    ("<think>x = \\boxed{3}</think><answer>The answer is 7.</answer>", "7", "answer_tag"),
    ("<answer>  </answer> so \\boxed{4}", "4", "boxed"),
    ("We get $\\boxed{\\textbf{(073)}}$.", "(073)", "boxed"),
    ("so the answer is $\\frac{3}{4}$. Done.", "\\frac{3}{4}", "answer_is"),
    ("Final Answer: The final answer is $12$. I hope it is correct.", "12", "final_answer"),
    ("The answer is $\\$32,\\!348$.", "\\$32,\\!348", "answer_is"),
    ("The answer is: 3.5.", "3.5", "answer_is"),
    ("She pays 2 * 500 = 1,000 dollars.\n#### 1,000", "1,000", "hashes"),
    ("Q: What is 6*7?\nA: 42", "42", "a_colon"),
    ("I got 17 then 18.5.", None, None),
    ("", None, None),
])
def test_extract_answer_rules(text, answer, rule):
    assert extract_answer(text) == (answer, rule)


def test_last_number_only_when_asked():
    assert extract_answer("I got 17, then 1,018.5 apples.", fallback_last_number=True) == ("1018.5", "last_number")
    assert extract_answer("nothing numeric", fallback_last_number=True) == (None, None)


def test_clean_answer():
    assert clean_answer(" $\\frac12$. ") == "\\frac12"
    assert clean_answer("\\textbf{a}+\\textbf{b}") == "\\textbf{a}+\\textbf{b}"
    assert clean_answer("$$") == ""


@pytest.mark.parametrize("text", [
    "\\boxed{" * 15000,
    "\\boxed\\boxed" * 20000,
    "<answer>" * 20000,
    "{" * 100_000,
    "answer is " * 10000,
    "#### " * 20000 + "1",
    "1," * 50000,
])
def test_extraction_is_linear_on_adversarial_text(text):
    # A guard, not a speed target: quadratic work on these inputs takes minutes, linear work milliseconds,
    # so a generous bound separates them even on a loaded CI machine (bench/verify_speed.py has the speed).
    start = time.perf_counter()
    extract_answer(text, fallback_last_number=True)
    assert time.perf_counter() - start < 10
