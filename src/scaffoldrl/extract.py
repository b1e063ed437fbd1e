"""Pulling a final answer out of free text.

Kept apart from grading so that data loaders (Minerva's answers live in the
last ``\\boxed{}`` of its solutions) and the verifier share one implementation.
"""

from __future__ import annotations

import re

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*")


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` / ``\\fbox{...}`` (nested braces allowed), or None.

    ``\\boxed 5`` (a space, no braces) yields the following token.
    """
    for m in reversed(list(_BOXED.finditer(text))):
        i = m.end()
        if i < len(text) and text[i] == "{":
            depth = 0
            for j in range(i, len(text)):
                c = text[j]
                if c == "{":
                    depth += 1
                elif c == "}":
                    depth -= 1
                    if depth == 0:
                        return text[i + 1 : j]
            continue  # unbalanced: try an earlier box
        token = re.match(r"[^\s$]+", text[i:])
        if token and m.group(0).endswith(" "):
            return token.group(0)
    return None
