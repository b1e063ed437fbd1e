"""A math-verify worker process: one JSON request per line on stdin, one reply per line on stdout.

Run as a script (``python -P _grade_worker.py``), not imported: it must start
without importing scaffoldrl (whose package may pull in torch) and is killed
by its parent when an item runs past the deadline, so math-verify's own
signal-based timeouts are switched off here.
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
    from math_verify import parse, verify

    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    reply_to = sys.stdout
    sys.stdout = sys.stderr  # a stray print must not corrupt the protocol

    @functools.lru_cache(maxsize=4096)
    def parse_gold(gold: str):
        return parse("\\boxed{" + gold + "}", parsing_timeout=None)

    def grade(gold: str, pred: str) -> bool:
        target = parse("\\boxed{" + pred + "}", parsing_timeout=None)
        return bool(verify(parse_gold(gold), target, timeout_seconds=None))

    _limit_memory(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    print("ready", file=reply_to, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            reply = {"correct": grade(request["gold"], request["pred"])}
        except Exception as e:  # MemoryError and RecursionError included
            reply = {"error": f"{type(e).__name__}: {str(e)[:200]}"}
        print(json.dumps(reply), file=reply_to, flush=True)


if __name__ == "__main__":
    main()
