"""Splitting reference solutions into steps, the units that hints are made of.

A hint is the first l steps of a reference solution, so the split decides what
a "step" is. Real solutions have no step markup; SPARKLE's PSS chunker tries,
in order of preference, blank-line paragraphs, numbered items, bold/keyword
headers and sentences, and uses the first that yields enough pieces.
:func:`split_steps` does the same. Cuts never fall inside math (``$…$``,
``$$…$$``, ``\\[…\\]``, ``\\(…\\)``, ``\\begin{env}…\\end{env}``) or an
Asymptote figure, where blank lines and periods are not step boundaries.
Problems of the embedded domain already carry exact steps and are not re-split.
"""

from __future__ import annotations

import re

# Spans that are atomic: a boundary found inside one is ignored.
_ATOMIC = re.compile(
    r"\[asy\].*?\[/asy\]"
    r"|\\begin\{([a-zA-Z]+\*?)\}.*?\\end\{\1\}"
    r"|\$\$.*?\$\$|\\\[.*?\\\]|\\\(.*?\\\)|\$[^$]*\$",
    re.DOTALL,
)

PARAGRAPHS = re.compile(r"\n[ \t]*\n\s*")
NUMBERED_ITEMS = re.compile(r"(?m)^(?=[ \t]*(?:\d{1,2}[.)]|\(\d{1,2}\))[ \t])")
# Markdown or bold headers open a line; "Step 2:", "Case 3." may also follow a space.
HEADERS = re.compile(
    r"(?m)^(?=[ \t]*(?:#{1,6}[ \t]|\*\*[^*\n]+\*\*))"
    r"|(?:^|(?<=\s))(?=(?:Step|Case|Part)[ \t]*\d+[ \t]*[:.)])"
)
# A sentence ends at . ! or ? (possibly closing math, a bracket or a quote) and the
# next one starts with a capital, digit, math or bracket. A bare line break is no
# boundary: MATH solutions break lines before display math mid-sentence.
SENTENCES = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][$)\]\"']))\s+(?=[A-Z0-9$\\(\[])")

#: The boundary patterns in SPARKLE's order of preference.
SPLITTERS: tuple[re.Pattern, ...] = (PARAGRAPHS, NUMBERED_ITEMS, HEADERS, SENTENCES)


def cut(text: str, boundary: re.Pattern) -> list[str]:
    """Cut ``text`` at every match of ``boundary`` outside atomic spans; pieces stripped, empties dropped."""
    atomic = [m.span() for m in _ATOMIC.finditer(text)]
    pieces, start = [], 0
    for m in boundary.finditer(text):
        if any(a < m.start() < b for a, b in atomic):
            continue
        pieces.append(text[start:m.start()])
        start = m.end()
    pieces.append(text[start:])
    return [p.strip() for p in pieces if p.strip()]


def split_steps(text: str, min_steps: int = 2) -> list[str]:
    """Split a solution with the first splitter (SPARKLE's order) that yields ``min_steps`` pieces.

    When none does, the split with the most pieces is returned (ties go to the
    preferred splitter), so a short solution still becomes as many steps as it has.
    """
    best: list[str] = []
    for boundary in SPLITTERS:
        pieces = cut(text, boundary)
        if len(pieces) >= min_steps:
            return pieces
        if len(pieces) > len(best):
            best = pieces
    return best


def group(units: list[str], k: int) -> list[str]:
    """Join ``units`` into ``min(k, len(units))`` contiguous chunks of near-equal count (earlier chunks larger)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if not units:
        return []
    k = min(k, len(units))
    size, extra = divmod(len(units), k)
    chunks, start = [], 0
    for i in range(k):
        end = start + size + (i < extra)
        chunks.append("\n".join(units[start:end]))
        start = end
    return chunks
