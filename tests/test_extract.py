import time

import pytest

from scaffoldrl.extract import answer_like, box_group, clean_answer, extract_answer, find_answer, gold_target, last_boxed


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
    "$" * 100_000,
    "\\[" * 50_000,
    "final answer is " * 6000,
    "Final answer: it is " * 5000,
    "\\boxed{1}" * 11_000,
    "$\\boxed{1}$ and " * 6000,
    "<answer>" + "a " * 50_000 + "</answer>",
])
def test_extraction_is_linear_on_adversarial_text(text):
    # A guard, not a speed target: quadratic work on these inputs takes minutes, linear work milliseconds,
    # so a generous bound separates them even on a loaded CI machine (bench/verify_speed.py has the speed).
    start = time.perf_counter()
    extract_answer(text, fallback_last_number=True)
    find_answer(text)
    gold_target(text)
    assert time.perf_counter() - start < 10


@pytest.mark.parametrize("text, shown, rule, parts", [
    # answer formats models write
    ("$\\boxed{1}$ and $\\boxed{2}$", "1, 2", "boxed", ("1", "2")),  # each box in its own span: a set of values
    ("\\boxed{1}, \\boxed{2}", "1, 2", "boxed", ("1,2",)),  # bare boxes: their contents joined, as math-verify
    ("Final Answer: The largest $n$ is 34.", "34", "final_answer", ("34",)),
    ("so \\boxed{200}. ...Final Answer: The final answer is $10,455$. I hope it is correct.", "10,455",
     "final_answer", ("10,455",)),  # Minerva's line outranks a box, as in math-verify
    ("\\boxed{3} and later: the final answer is $4$", "4", "final_answer", ("4",)),  # it ends after the box
    ("The final answer is $4$, checked: \\boxed{3}", "3", "boxed", ("3",)),
    ("<answer>3</answer>", "3", "answer_tag", ("3",)),
    ("the answer is 18 apples.", "18", "answer_is", ("18",)),
    ("#### 1,000", "1,000", "hashes", ("1,000",)),
    ("\\boxed{\\boxed{5}}", "5", "boxed", ("5",)),
])
def test_find_answer_precedence(text, shown, rule, parts):
    assert find_answer(text)[:3] == (shown, rule, parts)


@pytest.mark.parametrize("text", ["Therefore,\n\\[\n3\n\\]\nis the value", "$\\tfrac{1}{3}$", "1 000",
                                  "<think>x</think><answer>The value is $3$.</answer>"])
def test_unmarked_answers_go_to_math_verify_unless_strict(text):
    found = find_answer(text)
    assert found.parts == () and found.text in (text, "The value is $3$.") and found.shown is None
    assert extract_answer(text) == (None, None)
    strict = find_answer(text, "strict")
    assert strict is None or strict.rule == "answer_tag"


def test_strict_reads_tags_and_boxes_only():
    assert find_answer("Final Answer: The final answer is $5$. I hope it is correct.", "strict") is None
    assert find_answer("The answer is $5$.", "strict") is None
    assert find_answer("\\boxed{1} then Final Answer: The final answer is $5$. I hope it is correct.", "strict").shown == "1"
    with pytest.raises(ValueError, match="unknown extraction"):
        find_answer("x", "loose")


@pytest.mark.parametrize("text", [
    "$\\boxed{1}$ and $\\boxed{2}$", "\\boxed{1}\\boxed{2}", "\\boxed{1}, \\boxed{1}", "a \\boxed{3} " + "x" * 80 + " \\boxed{4}",
    "\\boxed{1} and some words between the two boxes that run on past seventy characters \\boxed{2}",
    "\\boxed{1}; \\boxed{2} or \\boxed{3}", "\\boxed{\\boxed{5}}", "\\boxed{x^{2}} and \\fbox{7}",
])
def test_box_group_joins_the_boxes_math_verify_joins(text):
    from latex2sympy2_extended.math_normalization import extract_boxed_content  # math-verify's own reading

    parts, _, _ = box_group(text)
    assert ",".join(parts) == extract_boxed_content(text, mode="last")


@pytest.mark.parametrize("gold, parts", [("\\boxed{5}", ("5",)), ("x = 5", ("x = 5",)), ("1 000", ("1000",)),
                                         ("$\\frac{1}{2}$", ("\\frac{1}{2}",)), ("1, 2", ("1, 2",)),
                                         ("$\\boxed{1}$ and $\\boxed{2}$", ("1", "2")), ("#### 18", ("18",))])
def test_gold_target(gold, parts):
    assert gold_target(gold).parts == parts


def test_gold_with_nothing_marked_goes_to_math_verify():
    solution = "We have $x = 2$, so the total is $x + 2 = 4$."
    assert gold_target(solution).text == solution and gold_target(solution).parts == ()


@pytest.mark.parametrize("s, like", [("3.5", True), ("x \\in [-2, 7]", True), ("\\text{Devon}", True), ("12 cm", True),
                                     ("\\sin x", True), ("18 apples", False), ("The largest $n$ is 34", False)])
def test_answer_like(s, like):
    assert answer_like(s) is like
