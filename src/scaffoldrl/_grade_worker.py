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
"""

import functools
import json
import logging
import resource
import sys


def _limit_memory(megabytes: int) -> None:
    """Cap the address space so a runaway sympy computation fails here, not in the OOM killer."""
    if megabytes > 0:
        limit = megabytes * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main() -> None:
    """Answer (gold, prediction) requests from stdin with math-verify verdicts on stdout, one per line."""
    from latex2sympy2_extended.sets import FiniteSet
    from math_verify import parse, verify

    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    reply_to = sys.stdout
    sys.stdout = sys.stderr  # a stray print must not corrupt the protocol

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

    _limit_memory(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    print("ready", file=reply_to, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            reply = grade(request["gold"], request["pred"])
        except Exception as e:  # MemoryError and RecursionError included
            reply = {"error": f"{type(e).__name__}: {str(e)[:200]}"}
        print(json.dumps(reply), file=reply_to, flush=True)


if __name__ == "__main__":
    main()
