"""End-to-end checks of `scaffoldrl eval` / `scaffoldrl analyze` with a real model, through the real CLI.

1. local greedy eval on math500 + gsm8k, and SPARKLE's protocol (avg@8) on the embedded domain;
2. the same greedy run through an OpenAI-compatible server (`transformers serve`), compared sample by sample;
3. a run killed with SIGKILL halfway and rerun: compared with the uninterrupted run, and counted;
4. the fine-grained analysis on the embedded domain.

    python bench/eval_checks.py --model runs/base --out runs/eval_checks [--limit 100]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent
ENV = os.environ | {"HF_HUB_OFFLINE": "1"}


def cli(*args: str) -> str:
    t = time.time()
    out = subprocess.run([str(BIN / "scaffoldrl"), *args], env=ENV, capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"scaffoldrl {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    print(f"$ scaffoldrl {' '.join(args)}   # {time.time() - t:.0f} s\n  " + "\n  ".join(lines), flush=True)
    return out.stdout


def rows(path: Path) -> dict:
    out = {}
    for line in open(path):
        r = json.loads(line)
        out[(r["benchmark"], r.get("condition"), r["problem_id"], r.get("link"), r["sample"])] = r
    return out


def same(a: dict, b: dict) -> tuple[int, int]:
    """(samples compared, samples whose completion and grade agree)."""
    keys = a.keys() & b.keys()
    return len(keys), sum(a[k]["completion"] == b[k]["completion"] and a[k]["correct"] == b[k]["correct"] for k in keys)


def serve(model: str):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(BIN / "transformers"), "serve", model, "--host", "127.0.0.1", "--port", str(port),
                             "--device", "cpu"], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            return proc, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.5)
    proc.kill()
    sys.exit("transformers serve did not start")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", type=Path, default=Path("runs/eval_checks"))
    ap.add_argument("--limit", type=int, default=None, help="problems per benchmark in steps 1 and 4 (default all)")
    ap.add_argument("--server-limit", type=int, default=40, help="problems per benchmark through the server")
    ap.add_argument("--max-new-tokens", default="128")
    a = ap.parse_args()
    limit = ["--limit", str(a.limit)] if a.limit else []
    common = ["--model", a.model, "--max-new-tokens", a.max_new_tokens]

    print("## 1. local backend", flush=True)
    cli("eval", *common, "--benchmarks", "math500,gsm8k", "--protocol", "greedy", *limit, "--out", str(a.out / "greedy"))
    cli("eval", *common, "--benchmarks", "synth", "--protocol", "sparkle", *limit, "--out", str(a.out / "synth"))

    print("\n## 2. OpenAI-compatible server (transformers serve) vs local, greedy", flush=True)
    small = ["--benchmarks", "math500,gsm8k,synth", "--protocol", "greedy", "--limit", str(a.server_limit)]
    cli("eval", *common, *small, "--out", str(a.out / "local_small"))
    proc, url = serve(a.model)
    try:
        cli("eval", *common, *small, "--base-url", url, "--concurrency", "4", "--out", str(a.out / "server_small"))
    finally:
        proc.terminate()
        proc.wait()
    n, agree = same(rows(a.out / "local_small" / "samples.jsonl"), rows(a.out / "server_small" / "samples.jsonl"))
    print(f"server vs local: {agree}/{n} samples with the same completion and grade")

    print("\n## 3. killed halfway (SIGKILL), then rerun; against an uninterrupted run", flush=True)
    args = [*common, "--benchmarks", "synth", "--protocol", "sparkle", "--limit", "40", "--batch-size", "32"]
    cli("eval", *args, "--out", str(a.out / "uninterrupted"))
    cut = a.out / "killed"
    proc = subprocess.Popen([str(BIN / "scaffoldrl"), "eval", *args, "--out", str(cut)], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples = cut / "samples.jsonl"
    while proc.poll() is None and (not samples.exists() or samples.read_bytes().count(b"\n") < 160):
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    at_kill = samples.read_bytes().count(b"\n")
    print(f"killed with {at_kill}/320 samples saved")
    text = cli("eval", *args, "--out", str(cut))
    generated = int(text.split("generated ")[1].split()[0])
    print(f"saved before the kill {at_kill} + generated after it {generated} = {at_kill + generated} (320 needed)")
    n, agree = same(rows(samples), rows(a.out / "uninterrupted" / "samples.jsonl"))
    equal = json.loads((cut / "summary.json").read_text()) == json.loads((a.out / "uninterrupted" / "summary.json").read_text())
    print(f"resumed vs uninterrupted: {agree}/{n} samples identical; summary.json identical: {equal}")

    print("\n## 4. fine-grained analysis on the embedded domain", flush=True)
    cli("analyze", *common, "--data", "synth", "--protocol", "sparkle", *limit, "--out", str(a.out / "analyze"))
    print((a.out / "analyze" / "report.md").read_text())


if __name__ == "__main__":
    main()
