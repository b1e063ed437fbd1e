"""Pulling a final answer out of free text.

Kept apart from grading so that data loaders (Minerva's answers live in the
last ``\\boxed{}`` of its solutions) and the verifier share one implementation.
Every rule runs in linear time: completions reach 100k characters and the
grader must never hang in the parent process.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*")
_TOKEN = re.compile(r"[^\s$]+")
_ANSWER_IS = re.compile(r"answer\s*(?:is\b|:)\s*:?\s*", re.I)
_HASHES = re.compile(r"####\s*([^\n]+)")
_A_COLON = re.compile(r"(?m)^\s*A:\s*\$?(-?\d[\d,]*(?:\.\d+)?)")
_NUMBER = re.compile(r"(-?\d[\d,]*(?:\.\d+)?)")
_SENTENCE_END = re.compile(r"\.(?:\s|$)")
_MATH_DELIMS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))


def _brace_partners(text: str) -> dict[int, int]:
    """Map each unescaped ``{`` to its closing ``}`` in one pass (unclosed ones are absent)."""
    partners, stack = {}, []
    for i, c in enumerate(text):
        if c in "{}" and i > 0 and text[i - 1] == "\\":
            continue
        if c == "{":
            stack.append(i)
        elif c == "}" and stack:
            partners[stack.pop()] = i
    return partners


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` / ``\\fbox{...}`` (nested braces allowed), or None.

    ``\\boxed 5`` (a space, no braces) yields the following token. An unclosed
    box is skipped in favour of an earlier one.
    """
    matches = list(_BOXED.finditer(text))
    if not matches:
        return None
    partners = _brace_partners(text)
    for m in reversed(matches):
        i = m.end()
        if i < len(text) and text[i] == "{":
            if i in partners:
                return text[i + 1 : partners[i]]
            continue
        token = _TOKEN.match(text, i) if m.group(0).endswith(" ") else None
        if token:
            return token.group(0)
    return None


def clean_answer(answer: str) -> str:
    """Strip what surrounds an answer but is not part of it: spaces, math delimiters, a final
    period, a ``\\textbf{}`` around all of it (math-verify cannot read ``\\textbf{073}``)."""
    s = answer.strip()
    s = s[:-1].rstrip() if s.endswith(".") else s
    for left, right in _MATH_DELIMS:
        if len(s) > len(left) + len(right) and s.startswith(left) and s.endswith(right):
            s = s[len(left) : -len(right)].strip()
            break
    if s.startswith("\\textbf{") and _brace_partners(s).get(len("\\textbf")) == len(s) - 1:
        s = s[len("\\textbf{") : -1].strip()
    return s if s.strip("$") else ""


def _math_span(text: str) -> str | None:
    """The leading ``$...$`` / ``\\(...\\)`` span of ``text``, delimiters removed (``\\$`` is a dollar sign)."""
    for left, right in _MATH_DELIMS:
        if text.startswith(left):
            end = re.compile(r"(?<!\\)" + re.escape(right)).search(text, len(left) + 1)
            if end:
                return text[len(left) : end.start()]
    return None


def _last_match(pattern: re.Pattern, text: str) -> re.Match | None:
    found = None
    for found in pattern.finditer(text):
        pass
    return found


def _last(pattern: re.Pattern, text: str) -> str | None:
    found = _last_match(pattern, text)
    return found.group(1) if found else None


def _after_answer_is(text: str) -> str | None:
    """What follows the last "answer is" / "answer:", up to the end of its math span or sentence."""
    last = _last_match(_ANSWER_IS, text)
    if last is None:
        return None
    rest = text[last.end() :]
    span = _math_span(rest)
    if span is not None:
        return span
    line = rest.split("\n", 1)[0]
    end = _SENTENCE_END.search(line)
    return line[: end.start()] if end else line


def answer_block(text: str) -> str | None:
    """Content of the last non-empty ``<answer>...</answer>`` block."""
    end = text.rfind("</answer>")
    start = text.rfind("<answer>", 0, end) if end >= 0 else -1
    block = text[start + len("<answer>") : end] if start >= 0 else None
    return block if block and block.strip() else None


def _answer_tag(text: str) -> str | None:
    block = answer_block(text)
    return None if block is None else (_after_answer_is(block) or block)


def _last_number(text: str) -> str | None:
    found = _last(_NUMBER, text)
    return found.replace(",", "") if found else None


# ---------------------------------------------------------------- the answer of a text, in order of precedence

EXTRACTIONS = ("default", "strict")
"""How much of a text may hold its answer: ``strict`` reads answer tags and boxes only (the
answer SPARKLE's format reward asks for); ``default`` reads every rule of :func:`find_answer`
and, when none fires, lets math-verify extract the answer from the whole text itself."""


class Answer(NamedTuple):
    """An answer found in a text.

    ``parts`` are answer strings, each read by math-verify as ``\\boxed{part}``; several
    (a solution set written as several boxes) form one set. A fallback answer has no parts
    but a ``text`` from which math-verify extracts the answer itself, and ``shown`` None
    until it has.
    """

    shown: str | None
    rule: str
    parts: tuple[str, ...] = ()
    text: str | None = None


_BOX_SEPARATOR = re.compile(r"\b(?:and|or)\b|,|;")
_MINERVA = re.compile(r"final answer is\s*:?\s*", re.I)
_I_HOPE = re.compile(r"\.?\s?I hope")
_FINAL_ANSWER = re.compile(r"final answer", re.I)
_IS = re.compile(r"\s+is\b:?\s*")
_TEXT_GROUP = re.compile(r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mathit|operatorname|mbox)\s*\{[^{}]*\}")
_UNESCAPED_DOLLAR = re.compile(r"(?<!\\)\$")
_COMMAND = re.compile(r"\\[A-Za-z]+")
_WORD = re.compile(r"[A-Za-z]{3,}")
_MATH_WORDS = frozenset("sin cos tan cot sec csc arcsin arccos arctan sinh cosh tanh log exp sqrt max min gcd lcm "
                        "mod det deg inf sup lim".split())
_LEADING_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:\s*\\?%)?(?![\w.])|-?\d[\d,]*\.\d+")
_SPACED_NUMBER = re.compile(r"-?\d{1,3}(?:(?: |\u2009|\u202f|\\,|\\ |\\!|~)\d{3})+(?:\.\d+)?")
_SPACES_IN_NUMBER = re.compile(r" |\u2009|\u202f|\\,|\\ |\\!|~")


def answer_like(s: str) -> bool:
    """True for a bare answer (``3.5``, ``x = 5``, ``[-2, 7]``, ``\\text{Devon}``, ``12 cm``), False for prose.

    Prose is a word of three or more letters outside LaTeX commands, ``\\text{}`` groups
    and function names, or a math span inside the string: the answer is in there somewhere,
    and math-verify's extraction finds it better than reading the phrase whole.
    """
    if not s.strip() or _UNESCAPED_DOLLAR.search(s) or "\\(" in s or "\\[" in s or len(s) > 300:
        return False
    bare = _COMMAND.sub(" ", _TEXT_GROUP.sub(" ", s))
    return all(w.lower() in _MATH_WORDS for w in _WORD.findall(bare))


def _closed_boxes(text: str) -> list[tuple[int, int, str]]:
    """(start of ``\\boxed``, index of its closing brace or last character, stripped content) of every
    box that closes, in order; ``\\boxed 5`` gives its token."""
    partners, boxes = None, []
    for m in _BOXED.finditer(text):
        i = m.end()
        if i < len(text) and text[i] == "{":
            partners = _brace_partners(text) if partners is None else partners
            if i in partners:
                boxes.append((m.start(), partners[i], text[i + 1 : partners[i]].strip()))
        elif m.group(0).endswith(" ") and (token := _TOKEN.match(text, i)):
            boxes.append((m.start(), token.end() - 1, token.group(0)))
    return boxes


def box_group(text: str) -> tuple[tuple[str, ...], int, bool] | None:
    """The contents of the last box and of the boxes before it that form one answer with it,
    where the last one ends, and whether each box sits in a math span of its own; None
    without a closed box.

    An earlier box joins when it ends less than 10 characters before the next one starts, or
    less than 70 with "and", "or", a comma or a semicolon between and a different content:
    math-verify's rule for ``$\\boxed{1}$ and $\\boxed{2}$`` (latex2sympy2_extended's
    ``extract_boxed_content``). Repeated contents count once. math-verify reads boxes in
    math spans of their own one by one and joins the values into a set, other boxes as
    their contents joined by commas (``\\boxed{35 cm}, \\boxed{4}`` is ``{35 cm, 4}``).
    """
    boxes = _closed_boxes(text)
    if not boxes:
        return None
    *earlier, last = boxes
    group, right, separate = [last[2]], last, True
    for box in reversed(earlier):
        if box[1] >= right[0]:  # it encloses the box after it
            break
        between = text[box[1] + 1 : right[0]]
        if not (len(between) < 10 or (box[2] != group[-1] and len(between) < 70 and _BOX_SEPARATOR.search(between))):
            break
        if box[2] != group[-1]:
            group.append(box[2])
        separate = separate and any(d in between for d in ("$", "\\)", "\\]"))
        right = box
    parts = tuple(clean_answer(p) for p in reversed(group))
    return (parts, last[1], separate) if all(parts) else None


def _phrase_value(rest: str) -> tuple[str, int] | None:
    """The value at the start of ``rest``: a math span, an answer-like phrase to the end of the sentence,
    or a leading number; with the length of ``rest`` it takes up."""
    for left, right in _MATH_DELIMS:
        if rest.startswith(left):
            end = re.compile(r"(?<!\\)" + re.escape(right)).search(rest, len(left) + 1)
            if end:
                return rest[len(left) : end.start()], end.end()
            return None
    line = rest.split("\n", 1)[0]
    end = _SENTENCE_END.search(line)
    phrase = line[: end.start()] if end else line
    if answer_like(phrase) and clean_answer(phrase):
        return phrase, len(phrase)
    number = _LEADING_NUMBER.match(rest)
    return (number.group(0), number.end()) if number else None


def _minerva(text: str) -> str | None:
    """X of Minerva's "Final Answer: The final answer is X. I hope it is correct." (the last one)."""
    last = _last_match(_MINERVA, text)
    if last is None:
        return None
    rest = text[last.end() : last.end() + 1000]
    value = _phrase_value(rest)
    if value is not None and _I_HOPE.match(rest, value[1]):
        return value[0]
    hope = rest.find("I hope")
    if hope < 0 or "\n" in rest[:hope]:
        return None
    return rest[:hope].strip()


def _final_answer_is(text: str) -> tuple[str, int] | None:
    """X of the last "final answer ... is X" (up to 100 characters between), and where X ends."""
    last = _last_match(_FINAL_ANSWER, text)
    if last is None:
        return None
    window = text[last.end() : last.end() + 100 + 10]
    is_ = _IS.search(window)
    if is_ is None or is_.start() > 100:
        return None
    value = _phrase_value(window[is_.end() :] + text[last.end() + len(window) : last.end() + len(window) + 1000])
    return (value[0], last.end() + is_.end() + value[1]) if value else None


def _answered(answer: str | None, rule: str) -> Answer | None:
    answer = clean_answer(answer) if answer is not None else ""
    return Answer(answer, rule, (answer,)) if answer else None


def _boxes_or_final_answer(text: str, rule: str, strict: bool) -> Answer | None:
    """The box group, or a "final answer ... is X" that ends after it (math-verify ranks the two alike)."""
    boxes = box_group(text)
    final = None if strict else _final_answer_is(text)
    if final is not None and "\\boxed" not in final[0] and "\\fbox" not in final[0]:
        if boxes is None or final[1] > boxes[1]:
            if found := _answered(final[0], "final_answer"):
                return found
    if boxes is not None:
        parts, _, separate = boxes
        return Answer(", ".join(parts), rule, parts if separate else (",".join(parts),))
    return None


def _marked(text: str, strict: bool, box_rule: str = "boxed") -> Answer | None:
    """Rules 2-5 of :func:`find_answer` (the answer block's own rules are these, on the block)."""
    if not strict and (found := _answered(_minerva(text), "final_answer")):
        return found
    if found := _boxes_or_final_answer(text, box_rule, strict):
        return found
    if strict:
        return None
    last = _last_match(_ANSWER_IS, text)
    if last is not None and (value := _phrase_value(text[last.end() : last.end() + 1000])):
        if found := _answered(value[0], "answer_is"):
            return found
    for rule, pattern in (("hashes", _HASHES), ("a_colon", _A_COLON)):
        if found := _answered(_last(pattern, text), rule):
            return found
    return None


def _in_answer_block(text: str, strict: bool) -> Answer | None:
    block = answer_block(text)
    if block is None:
        return None
    if found := _marked(block, strict, box_rule="answer_tag_boxed"):
        return found if found.rule == "answer_tag_boxed" else found._replace(rule="answer_tag")
    if strict or answer_like(clean_answer(block)):
        return _answered(_after_answer_is(block) or block, "answer_tag")
    return Answer(None, "answer_tag", text=block)


def find_answer(text: str, extraction: str = "default", fallback_last_number: bool = False) -> Answer | None:
    """The answer of ``text``, or None; the first of these that finds one wins.

    1. The last non-empty ``<answer>...</answer>`` block (``answer_tag_boxed`` for its boxes,
       else ``answer_tag``), read by rules 2-5; a block they find nothing in is the answer
       itself when it is one (:func:`answer_like`), else math-verify extracts it from the block.
    2. Minerva's "The final answer is X. I hope it is correct." (``final_answer``), as in
       math-verify, where it outranks boxes.
    3. The last box with the boxes that form one answer with it (:func:`box_group`: a
       solution set of several boxes is one set) (``boxed``), or a "final answer ... is X"
       that ends after them (``final_answer``).
    4. "answer is X" / "answer: X" where X is a math span or an answer-like phrase (``answer_is``).
    5. GSM8K's ``#### X`` (``hashes``), then ``A: X`` (``a_colon``).
    6. Only with ``fallback_last_number``: the last number (``last_number``).
    7. math-verify's own extraction on the whole text (``math_verify``): display and inline
       math, plain numbers with separators, percentages, intervals, relations, matrices, ...

    ``strict`` keeps rule 1 (a block read for its boxes, else taken whole) and the boxes of
    rule 3, nothing else.
    """
    if extraction not in EXTRACTIONS:
        raise ValueError(f"unknown extraction {extraction!r}; known: {', '.join(EXTRACTIONS)}")
    strict = extraction == "strict"
    if found := _in_answer_block(text, strict):
        return found
    if found := _marked(text, strict):
        return found
    if strict:
        return None
    if fallback_last_number and (found := _answered(_last_number(text), "last_number")):
        return found
    return Answer(None, "math_verify", text=text) if text.strip() else None


def extract_answer(text: str, fallback_last_number: bool = False,
                   extraction: str = "default") -> tuple[str | None, str | None]:
    """The answer :func:`find_answer` reads in ``text`` without math-verify and its rule, or ``(None, None)``.

    Several boxes forming one answer come joined by ", ". An answer only math-verify's own
    extraction finds (rule 7) is ``(None, None)`` here; :class:`scaffoldrl.verify.Grader` finds it.
    """
    found = find_answer(text, extraction, fallback_last_number)
    return (found.shown, found.rule) if found is not None and found.parts else (None, None)


def gold_target(gold) -> Answer:
    """A gold answer as the grader reads it: its marked answer (box, boxes, tag, "final answer",
    ``#### X``); else the gold itself, math delimiters removed, when it is an answer (``x = 5``,
    ``1, 2``, ``\\text{E}``; ``1 000`` as 1000); else (a whole solution with nothing marked)
    what math-verify extracts from it."""
    text = str(gold)
    if found := (_in_answer_block(text, False) or _marked(text, False)):
        if found.parts:
            return found._replace(parts=tuple(map(_unspaced_number, found.parts)))
        return found
    answer = clean_answer(text)
    if answer and (answer_like(answer) or ("$" not in answer and "\\(" not in answer and len(answer) <= 80)):
        return Answer(_unspaced_number(answer), "gold", (_unspaced_number(answer),))
    return Answer(None, "math_verify", text=text)


def _unspaced_number(s: str) -> str:
    """``1 000`` (thousands separated by spaces, as ISO writes them) as ``1000``; anything else unchanged."""
    return _SPACES_IN_NUMBER.sub("", s) if _SPACED_NUMBER.fullmatch(s) else s
