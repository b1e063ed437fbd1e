"""Pulling a final answer out of free text.

Kept apart from grading so that data loaders (Minerva's answers live in the
last ``\\boxed{}`` of its solutions) and the verifier share one implementation.
Every rule runs in linear time: completions reach 100k characters and the
grader must never hang in the parent process.
"""

from __future__ import annotations

import re

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


def _answer_block(text: str) -> str | None:
    """Content of the last non-empty ``<answer>...</answer>`` block."""
    end = text.rfind("</answer>")
    start = text.rfind("<answer>", 0, end) if end >= 0 else -1
    block = text[start + len("<answer>") : end] if start >= 0 else None
    return block if block and block.strip() else None


def _answer_tag(text: str) -> str | None:
    block = _answer_block(text)
    return None if block is None else (_after_answer_is(block) or block)


def _last_number(text: str) -> str | None:
    found = _last(_NUMBER, text)
    return found.replace(",", "") if found else None


# Tried in order; the first rule that finds a non-empty answer fires.
RULES = (
    ("answer_tag_boxed", lambda t: last_boxed(_answer_block(t) or "")),
    ("answer_tag", _answer_tag),
    ("boxed", last_boxed),
    ("answer_is", _after_answer_is),
    ("hashes", lambda t: _last(_HASHES, t)),
    ("a_colon", lambda t: _last(_A_COLON, t)),
)


def extract_answer(text: str, fallback_last_number: bool = False) -> tuple[str | None, str | None]:
    """The final answer in ``text`` and the name of the rule that found it, or ``(None, None)``.

    An ``<answer>`` block wins over everything else (a box inside it first);
    then the last box, "the answer is ...", GSM8K's ``#### N``, ``A: N``, and,
    only when asked, the last number in the text.
    """
    rules = RULES + ((("last_number", _last_number),) if fallback_last_number else ())
    for name, find in rules:
        found = find(text)
        if found is not None and (answer := clean_answer(found)):
            return answer, name
    return None, None
