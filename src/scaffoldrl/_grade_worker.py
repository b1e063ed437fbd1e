"""A math-verify worker process: one JSON request per line on stdin, one reply per line on stdout.

Run as a script (``python -P _grade_worker.py``), not imported: it must start
without importing scaffoldrl (whose package may pull in torch) and is killed
by its parent when an item runs past the deadline, so math-verify's own
signal-based timeouts are switched off here.

A request is ``{"gold": TARGET, "pred": TARGET}``; a target is ``["p", part, ...]``
(answers, each read as ``\\boxed{part}``; several form one set) or ``["t", text]`` (a
text math-verify extracts the answer from with its default extraction). The reply is
``{"correct": bool, "extracted": str | null}``, ``extracted`` being what math-verify
found in a ``"t"`` prediction (null: it found nothing), or ``{"error": message}``.

With ``warm`` as its second argument the worker warms latex2sympy's parser while idle: ANTLR
builds its prediction DFA as inputs arrive, and a cold parser spends most of a new LaTeX
answer's parse time doing so (measured: 40-45% of the parse time of the speed bench's
unanswered and wrong completions). Between requests, never during one, it parses the
solutions of the vendored Minerva-Math, OlympiadBench and AIME 2024 files one at a time
(each parses in well under a second), so a request waits at most for the one in hand.
The DFA only caches predictions: parse results are the same warm or cold. ``{"warm": true}``
asks it to finish warming; the reply is ``{"warmed": count}``.

LaTeX is parsed in two stages (:func:`two_stage_parsing`) and numbers are built directly
(:func:`direct_numbers`), which give the same results in about half the time; most wrong
answers are told apart at one point instead of by sympy's ``simplify``
(:func:`numeric_rejection`), with the same verdicts.
"""

import functools
import json
import logging
import os
import re
import resource
import select
import sys
from pathlib import Path

WARM_UP_FILES = (("minerva_math.jsonl", "solution"), ("olympiadbench.jsonl", "solution"), ("aime24.jsonl", "solution"))
WARM_UP_MAX_CHARS = 3000
PARSE_CACHE_SIZE = 4096  # math-verify caches its last 20 LaTeX parses; a worker sees many golds and answers
DECIMAL = re.compile(r"[0-9]*\.[0-9]+|[0-9]+\.")  # a decimal sympy.Number reads as Float(text)


def _limit_memory(megabytes: int) -> None:
    """Cap the address space so a runaway sympy computation fails here, not in the OOM killer."""
    if megabytes > 0:
        limit = megabytes * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


class SLLSyntaxError(Exception):
    """A syntax error under SLL prediction, which full LL prediction may not have."""


def _raise_sll_syntax_error(*args) -> None:
    raise SLLSyntaxError


def two_stage_parsing() -> None:
    """Make latex2sympy parse with ANTLR's SLL prediction first and fall back to full LL only on a syntax error.

    ANTLR guarantees that SLL either builds the tree LL builds or reports a syntax error, so
    results are unchanged; SLL skips full-context prediction, which is most of latex2sympy's
    parse time on LaTeX a parser has not seen (``bench/verify_speed.py --profile``).
    """
    from antlr4.atn.PredictionMode import PredictionMode
    from antlr4.error.ErrorListener import ErrorListener
    from latex2sympy2_extended.latex2sympy2 import _Latex2Sympy

    create_parser, parse = _Latex2Sympy.create_parser, _Latex2Sympy.parse
    listener = ErrorListener()
    listener.syntaxError = _raise_sll_syntax_error
    full_ll_next = False  # the next parser created is the LL retry (nested parses start with SLL again)

    def create_two_stage_parser(self, latex_str):
        nonlocal full_ll_next
        parser = create_parser(self, latex_str)
        if full_ll_next:
            full_ll_next = False
            return parser
        parser._interp.predictionMode = PredictionMode.SLL
        parser.removeErrorListeners()
        parser.addErrorListener(listener)
        return parser

    def parse_two_stage(self, latex_str):
        nonlocal full_ll_next
        try:
            return parse(self, latex_str)
        except SLLSyntaxError:
            full_ll_next = True
            return parse(self, latex_str)

    _Latex2Sympy.create_parser, _Latex2Sympy.parse = create_two_stage_parser, parse_two_stage


NUMERIC_POINTS = ("3719/10000", "12289/10000", "5/7", "23/9")  # generic values for a symbol
NUMERIC_INTEGERS = (2, 3, 5, 7)  # for symbols assumed integer
NUMERIC_TOLERANCE = 1e-6  # relative: a point proves "different" only well above evalf's 30-digit error


def _admissible_point(symbols):
    """One value per symbol that satisfies every assumption it carries (positive, integer, ...), or None."""
    from sympy import Integer, Rational

    values = [Rational(v) for v in NUMERIC_POINTS]
    point = {}
    for i, symbol in enumerate(sorted(symbols, key=str)):
        candidates = values[i % len(values):] + values[:i % len(values)] + [Integer(n) for n in NUMERIC_INTEGERS]
        point[symbol] = next((v for v in candidates if all(
            getattr(v, "is_" + key) == holds for key, holds in symbol.assumptions0.items())), None)
        if point[symbol] is None:
            return None
    return point


def differ_at_a_point(a, b) -> bool:
    """True if expressions ``a`` and ``b`` take clearly different finite values at one admissible point.

    Such a pair is not identically equal, so ``simplify(a - b)`` cannot be zero. False means
    "not shown" (equal there, not numbers there, or not expressions), never "equal".
    """
    from sympy import Expr

    if not (isinstance(a, Expr) and isinstance(b, Expr)):
        return False
    try:
        point = _admissible_point((a - b).free_symbols)
        if point is None:
            return False
        va, vb = (complex(x.evalf(30, subs=point)) for x in (a, b))  # not xreplace: x**(10**9) stays cheap
    except Exception:  # not a number at the point (undefined functions, zoo, overflow)
        return False
    if any(v != v or abs(v) == float("inf") for v in (va, vb)):
        return False
    return abs(va - vb) > NUMERIC_TOLERANCE * max(1.0, abs(va), abs(vb))


def numeric_rejection() -> None:
    """Let math-verify's symbolic comparison answer "different" without ``simplify`` where a point shows it.

    ``math_verify.grader.sympy_symbolic_eq(a, b)`` holds only when ``simplify(a - b)`` is zero,
    and it is asked only after the string and numeric comparisons failed: on a wrong answer it
    is most of the verification time. An identically zero difference is zero at every admissible
    point, so :func:`differ_at_a_point` settles those pairs as ``simplify`` would; every other
    pair still goes to ``simplify``.
    """
    from math_verify import grader

    symbolic_eq = grader.sympy_symbolic_eq

    def sympy_symbolic_eq(a, b):
        return False if differ_at_a_point(a, b) else symbolic_eq(a, b)

    grader.sympy_symbolic_eq = sympy_symbolic_eq


def _direct_number(number):
    """``number`` (``sympy.Number``) for strings of digits built without sympy's expression parser."""
    from sympy import Float, Integer

    def direct(text, *rest):
        if not rest and isinstance(text, str) and text.isascii():
            if text.isdigit() and (text == "0" or text[0] != "0"):  # sympy refuses leading zeros
                return Integer(int(text))
            if DECIMAL.fullmatch(text):
                return Float(text)
        return number(text, *rest)

    return direct


def direct_numbers() -> None:
    """Make latex2sympy and math-verify build numbers from digit strings directly.

    Both turn a number token into ``sympy.Number(text)``, which sends the string through
    sympy's expression parser (an ``exec`` of ``from sympy import *`` each time); for plain
    integers and decimals ``Integer(int(text))`` and ``Float(text)`` give the same number.
    """
    import sympy
    from latex2sympy2_extended import latex2sympy2
    from math_verify import parser

    direct = _direct_number(sympy.Number)
    latex2sympy2.Number = parser.Number = direct

    def parse_number(self, text):  # latex2sympy's own, with ``direct`` for ``sympy.Number``
        text = text.replace(",", "")
        return direct(text.lstrip("0") or "0" if text.isdigit() else text)

    latex2sympy2._Latex2Sympy.parse_number = parse_number


def warm_up_texts():
    """Solutions to parse while idle (files shipped with the package; missing ones are skipped)."""
    folder = Path(__file__).with_name("vendor") / "benchmarks"
    for name, key in WARM_UP_FILES:
        try:
            lines = (folder / name).read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            try:
                text = json.loads(line).get(key)
            except ValueError:
                continue
            text = "\n".join(map(str, text)) if isinstance(text, list) else str(text or "")
            if 0 < len(text) <= WARM_UP_MAX_CHARS:
                yield text


def requests(stream, idle):
    """Request lines from ``stream``; ``idle()`` runs while none is waiting, until it returns False."""
    fd, buffer, busy = stream.fileno(), b"", True
    while True:
        while b"\n" not in buffer:
            if busy and not select.select([fd], [], [], 0)[0]:
                busy = idle()
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return
            buffer += chunk
        line, buffer = buffer.split(b"\n", 1)
        yield line


SPEED_UPS = ("two_stage_parsing", "direct_numbers", "numeric_rejection")


def grading(speed_ups=SPEED_UPS):
    """The worker's ``grade(gold, pred) -> reply``, math-verify set up as in a worker with ``speed_ups``
    (names of this module's functions; ``bench/grader_profile.py`` times each)."""
    from latex2sympy2_extended.sets import FiniteSet
    from math_verify import parse, parser, verify

    for name in speed_ups:
        globals()[name]()
    # the same pure function of the LaTeX string, remembering more of them
    parser.parse_latex_cached = functools.lru_cache(maxsize=PARSE_CACHE_SIZE)(parser.parse_latex_cached.__wrapped__)

    def read_parts(parts: tuple) -> list:
        """math-verify's reading of answers; several form a set as math-verify combines the
        boxes of ``$\\boxed{1}$ and $\\boxed{2}$``: each parsed alone, sets flattened."""
        parsed = [parse("\\boxed{" + p + "}", parsing_timeout=None) for p in parts]
        if len(parsed) == 1:
            return parsed[0]
        if all(r and not isinstance(r[0], str) for r in parsed):
            elements = [e for r in parsed for e in (r[0].args if isinstance(r[0], FiniteSet) else [r[0]])]
            return [FiniteSet(*elements), " and ".join(r[-1] for r in parsed if isinstance(r[-1], str))]
        return parse("\\boxed{" + ",".join(parts) + "}", parsing_timeout=None)

    def read(target: tuple) -> list:
        kind, *items = target
        return parse(items[0], parsing_timeout=None) if kind == "t" else read_parts(tuple(items))

    read_gold = functools.lru_cache(maxsize=4096)(read)

    def grade(gold: list, pred: list) -> dict:
        target = read(tuple(pred))
        extracted = None
        if pred[0] == "t":
            if not target:
                return {"correct": False, "extracted": None}
            extracted = next((x for x in reversed(target) if isinstance(x, str)), "")
        return {"correct": bool(verify(read_gold(tuple(gold)), target, timeout_seconds=None)), "extracted": extracted}

    return grade


def main() -> None:
    """Answer (gold, prediction) requests from stdin with math-verify verdicts on stdout, one per line."""
    from math_verify import parse

    grade = grading()
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    reply_to = sys.stdout
    sys.stdout = sys.stderr  # a stray print must not corrupt the protocol

    warm_up = warm_up_texts() if len(sys.argv) > 2 and sys.argv[2] == "warm" else iter(())
    warmed = 0

    def warm_one() -> bool:
        """Parse one warm-up text; False when none is left."""
        nonlocal warmed
        text = next(warm_up, None)
        if text is None:
            return False
        try:
            parse(text, parsing_timeout=None)
        except Exception:
            pass
        warmed += 1
        return True

    _limit_memory(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    print("ready", file=reply_to, flush=True)
    for line in requests(sys.stdin.buffer, warm_one):
        request = json.loads(line)
        try:
            if request.get("warm"):
                while warm_one():
                    pass
                reply = {"warmed": warmed}
            else:
                reply = grade(request["gold"], request["pred"])
        except Exception as e:  # MemoryError and RecursionError included
            reply = {"error": f"{type(e).__name__}: {str(e)[:200]}"}
        print(json.dumps(reply), file=reply_to, flush=True)


if __name__ == "__main__":
    main()
