"""What the embedded base model learns, built by the library's own stages (TRL), for one or more seeds.

Runs :func:`scaffoldrl.base_model.build_base` (data, init, pretraining on fact lines, SFT) with the
demo's settings or overrides of them, and prints per seed, for the pretrained and the SFT model:

* fact recall, teacher-forced (share of fact lines whose value's tokens are all the argmax): forward / open inverse;
* step copying, teacher-forced on 300 training problems: function names (found in the problem by the
  step's ``c =`` key) and arguments (the first token of the previous step's value);
* mean tokens of an SFT problem row, a fact line and an SFT fact row, with this run's tokenizer;
* the base model's greedy hint table (levels x hint none / half / all but the last step);
* what goes wrong first in its wrong greedy answers without a hint at levels 1-2: the function name of the
  next line (whose argument is this step's variable), another function name, a value, or something else;
* each stage's wall time.

Seeds run one after another in this process; run two processes with ``--threads 1`` to use two cores.

    python bench/base_model.py --seeds 0 --threads 2
    python bench/base_model.py --seeds 1 --set sft.learning_rate=1e-3 --set model.tie_word_embeddings=true
    python bench/base_model.py --seeds 0 --steps 1=2-6 --out runs/bench-base-l16
    python bench/base_model.py --seeds 1 --set sft.epochs=3.5 --plain-keys --out runs/bench-base-plain
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import re
import time
from collections import Counter
from pathlib import Path

import torch

from scaffoldrl import domain, tinymodel
from scaffoldrl.base_model import HINTS, BaseConfig, build_base, fact_rows
from scaffoldrl.prompts import reference_response, sparkle_prompt
from scaffoldrl.recipes import parse_overrides
from scaffoldrl.records import read_records


def configure(config: BaseConfig, overrides: dict) -> BaseConfig:
    """Apply ``section.field=value`` (or ``field=value``) overrides to the nested dataclasses."""
    for key, value in overrides.items():
        section, _, name = key.rpartition(".")
        if section:
            inner = getattr(config, section)
            config = dataclasses.replace(config, **{section: dataclasses.replace(inner, **{name: value})})
        else:
            config = dataclasses.replace(config, **{name: value})
    return config


@torch.no_grad()
def fact_recall(model, tok, world: domain.World) -> tuple[float, float]:
    hits: dict[bool, list[bool]] = {True: [], False: []}
    for line in world.facts():
        ids = tok(line).input_ids
        k = len(ids) - len(tok(line.rpartition(" ")[0]).input_ids)  # the value's tokens
        pred = model(input_ids=torch.tensor([ids])).logits[0, -k - 1:-1].argmax(-1).tolist()
        hits[" so " in line].append(pred == ids[-k:])
    return tuple(round(sum(v) / len(v), 2) for v in (hits[False], hits[True]))


@torch.no_grad()
def copy_accuracy(model, tok, problems) -> dict[str, float]:
    """Teacher-forced argmax accuracy on the response tokens a step copies rather than computes.

    function: a name, found in the problem by the step's key; argument: the number after ``(``; literal:
    the number a first-line inverse restates from the problem (``a such that mip(a) = 14``), four tokens
    after the name (its first token when numbers are split into digits).
    """
    hits: dict[str, list[bool]] = {"function": [], "argument": [], "literal": []}
    for p in problems:
        prompt = tok(sparkle_prompt(p.problem, tok)).input_ids
        ids = prompt + tok(reference_response(p.steps, p.answer)).input_ids
        pred = model(input_ids=torch.tensor([ids])).logits[0].argmax(-1).tolist()
        toks = tok.convert_ids_to_tokens(ids)
        for i in range(len(prompt), len(ids)):
            kind = ("function" if toks[i][1:] in domain.NAMES else
                    "argument" if toks[i].isdigit() and toks[i - 1] == "(" else
                    "literal" if toks[i].isdigit() and toks[i - 4:i - 1] == [f"({toks[i - 6][0]}", ")", "Ġ="]
                    and toks[i - 1] == "Ġ" and toks[i - 6].endswith(" such that") else None)
            if kind:
                hits[kind].append(pred[i - 1] == ids[i])
    return {k: round(sum(v) / len(v), 3) if v else None for k, v in hits.items()}


def first_errors(model, tok, problems) -> dict[str, Counter]:
    """Per level, the kind of the first step that differs from the reference in each wrong greedy answer."""
    from scaffoldrl.generation import SamplingConfig, generate
    from scaffoldrl.verify import get_grader

    outs = generate(model, tok, [sparkle_prompt(p.problem, tok) for p in problems], SamplingConfig(max_new_tokens=128))
    verdicts = get_grader().grade_batch([(out, p.answer) for out, p in zip(outs, problems)])  # as the hint table
    name = lambda step: (re.search(r"(\w+)\(", step) or [None, None])[1]  # noqa: E731
    kinds: dict[str, Counter] = {}
    for p, out, verdict in zip(problems, outs, verdicts):
        if verdict.correct:
            continue
        got = out.split("</think>")[0].replace("<think>", "").strip().split("\n")
        i = next((i for i, (r, g) in enumerate(zip(p.steps, got)) if r != g), min(len(got), len(p.steps)))
        g = got[i] if i < len(got) else ""
        if i >= len(p.steps) or not g:
            kind = "other"
        elif name(g) == name(p.steps[i]):
            kind = "value"
        elif i + 1 < len(p.steps) and name(g) == name(p.steps[i + 1]):
            kind = "next line's function"
        else:
            kind = "other function"
        kinds.setdefault(f"{p.difficulty:g}", Counter())[kind] += 1
    return kinds


def row_tokens(tok, problems, config: BaseConfig) -> str:
    """Mean tokens of an SFT problem row (prompt and response), of a fact line and of an SFT fact row."""
    lines = config.world().facts()
    rows = fact_rows(lines, config.sft_fact_lines_per_row)
    mean = lambda texts: sum(len(tok(t).input_ids) for t in texts) / len(texts)  # noqa: E731
    problem = mean([sparkle_prompt(p.problem, tok) + reference_response(p.steps, p.answer) for p in problems])
    return (f"problem row {problem:.1f}, fact line {mean(lines):.1f}, "
            f"fact row of {config.sft_fact_lines_per_row} lines {mean(rows):.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/bench-base", help="one run folder per seed inside (resumable)")
    parser.add_argument("--seeds", default="0", help="comma-separated BaseConfig seeds (data, order, init)")
    parser.add_argument("--set", dest="sets", action="append", default=[],
                        help="BaseConfig override, e.g. sft.learning_rate=1e-3 or model.num_hidden_layers=2")
    parser.add_argument("--steps", dest="shapes", action="append", default=[],
                        help="LEVEL=MIN-MAX[:OPEN or :LO-HI]: step counts (and open inverses) of a level's problems "
                             "instead of the domain's (an experiment knob, e.g. 1=2-6 puts long problems into SFT)")
    parser.add_argument("--plain-keys", action="store_true",
                        help="tokenize the mid-line variable names of inverse steps (' = b =', ' so c =') with the "
                             "step keys ('b =') instead of as tokens of their own, as before commit 3be7858")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.plain_keys:
        tinymodel.WHOLE_TOKENS[:] = [t for t in tinymodel.WHOLE_TOKENS if not t.startswith((" = ", " so "))]
    for shape in args.shapes:
        level, _, span = shape.partition("=")
        span, _, n_open = span.partition(":")
        lo, hi = (int(x) for x in span.split("-"))
        _, _, hidden, open_ = domain._LEVEL_SHAPE[int(level)]
        if n_open:
            open_ = tuple(int(x) for x in n_open.split("-")) if "-" in n_open else int(n_open)
        domain._LEVEL_SHAPE[int(level)] = (lo, hi, hidden, open_)
    overrides = parse_overrides(args.sets)
    for seed in (int(s) for s in args.seeds.split(",")):
        config = configure(BaseConfig(seed=seed), {**overrides, "model.seed": seed})
        out = Path(args.out) / f"seed{seed}"
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            base = build_base(out, config, log=lambda *a: None)  # TRL's bars and per-step logs
        world = config.world()
        train = read_records(out / "data" / "train.jsonl")
        probe = train[:150] + train[-150:]  # 300 problems of levels 1 and 2: ~1,200 copied names
        print(f"seed {seed} ({time.perf_counter() - started:.0f}s; stages "
              + ", ".join(f"{k} {v:.0f}s" for k, v in base["stage_seconds"].items()) + ")")
        for stage in ("pretrained", "base"):
            model, tok = tinymodel.load(out / "models" / stage)
            model.eval()
            print(f"  {stage:10s} fact recall fwd/inv {fact_recall(model, tok, world)}, "
                  f"copy {copy_accuracy(model, tok, probe)}")
        print(f"  tokens per SFT row: {row_tokens(tok, train, config)}")
        for level, row in base["hint_table"].items():
            print(f"  L{level} " + "  ".join(f"{h} {100 * row[h]:3.0f}%" for h in HINTS))
        test = [p for p in read_records(out / "data" / "test.jsonl") if p.difficulty in (1, 2)]
        for level, kinds in sorted(first_errors(model, tok, test).items()):
            counts = ", ".join(f"{kind} {n}" for kind, n in kinds.most_common())
            print(f"  L{level} wrong without a hint, first error: {counts}")
        print("  config overrides:", json.dumps(overrides), "step counts:", args.shapes or "the domain's",
              "keys:", "plain" if args.plain_keys else "the tokenizer's")


if __name__ == "__main__":
    main()
