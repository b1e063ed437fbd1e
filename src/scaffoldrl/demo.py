"""The embedded demo: build the domain and the tiny base model, then show the scaffolding premise.

Stages write into ``out`` and are skipped when their output exists, so a
rerun resumes. Stage 1 of the pipeline (this module's :func:`build_base`):

1. data — train (levels 1-2) and held-out test (all levels) problems;
2. init — a locally trained tokenizer and a random tiny Qwen2 model;
3. pretrain — language modelling on the world's facts (forward tables, open inverses);
4. sft — TRL's SFTTrainer on easy and medium problems: the *base model*;
5. hint table — greedy accuracy per level with 0, half, and all but the last
   reference step forced at the start of the response.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import domain, tinymodel
from .hints import response_prefix
from .prompts import sparkle_prompt, sparkle_user_turn
from .records import Problem, read_records, write_records
from .sft import SFTSettings, pretrain_text, run_sft

HINTS = ("none", "half", "all_but_last")
"""Hint levels of the base-model table: steps revealed = 0, ⌊n/2⌋, n − 1."""


@dataclass
class DemoConfig:
    """Sizes of the default demo; every number here was chosen to fit the 2-core budget."""

    seed: int = 0
    world_seed: int = 0
    train_per_level: int = 2500
    """SFT problems per level (levels 1 and 2)."""
    test_per_level: int = 40
    """Held-out problems per level (all levels)."""
    fact_repeats: int = 480
    """Passes over the world's 120 fact lines in pretraining (900 steps of 64). Recalling a fact is learned
    in a sudden phase change after a plateau (around step 400-500 at this rate), hence the constant rate."""
    sft_fact_repeats: int = 18
    """Passes over the fact lines mixed into SFT (~30% of its rows), so SFT does not erase them."""
    pretrain: SFTSettings = field(default_factory=lambda: SFTSettings(
        epochs=1, learning_rate=1e-3, batch_size=64, lr_scheduler="constant_with_warmup"))
    sft: SFTSettings = field(default_factory=lambda: SFTSettings(epochs=2.5, learning_rate=1e-3, batch_size=32))
    model: tinymodel.TinyModelConfig = field(default_factory=tinymodel.TinyModelConfig)
    max_new_tokens: int = 96


def hint_prefix(problem: Problem, hint: str) -> str:
    """The forced start of the response for a hint level of the base-model table."""
    n = len(problem.steps)
    k = {"none": 0, "half": n // 2, "all_but_last": n - 1}[hint]
    return response_prefix("\n".join(problem.steps[:k]) + "\n" if k else "")


def hint_table(model_path: str | Path, problems: list[Problem], max_new_tokens: int = 96) -> dict:
    """Greedy accuracy per (level, hint level): the premise of scaffolding in one table."""
    from .generation import SamplingConfig, generate
    from .verify import get_grader

    model, tok = tinymodel.load(model_path)
    prompts = [sparkle_prompt(p.problem, tok) for p in problems]
    grader = get_grader()
    table: dict[str, dict[str, float]] = {}
    for hint in HINTS:
        prefixes = [hint_prefix(p, hint) for p in problems]
        outs = generate(model, tok, prompts, SamplingConfig(max_new_tokens=max_new_tokens), prefixes=prefixes)
        verdicts = grader.grade_batch([(pre + o, p.answer) for pre, o, p in zip(prefixes, outs, problems)])
        for p, v in zip(problems, verdicts):
            cell = table.setdefault(f"{p.difficulty:g}", {}).setdefault(hint, [])
            cell.append(bool(v.correct))
    return {level: {h: sum(c) / len(c) for h, c in row.items()} for level, row in sorted(table.items())}


class Stages:
    """Runs named stages once: a stage whose marker file exists is skipped on rerun."""

    def __init__(self, out: Path, log=print):
        self.out, self.log = out, log
        self.times: dict[str, float] = {}
        out.mkdir(parents=True, exist_ok=True)

    def run(self, name: str, fn):
        marker = self.out / "stages" / f"{name}.json"
        if marker.exists():
            self.log(f"[skip] {name} (done in an earlier run)")
            return json.loads(marker.read_text())
        self.log(f"[run] {name}")
        t = time.perf_counter()
        result = fn()
        self.times[name] = time.perf_counter() - t
        marker.parent.mkdir(exist_ok=True)
        marker.write_text(json.dumps({"seconds": self.times[name], "result": result}, indent=1))
        self.log(f"[done] {name} in {self.times[name]:.1f}s")
        return {"seconds": self.times[name], "result": result}


def build_base(out: str | Path, config: DemoConfig | None = None, log=print) -> dict:
    """Stages 1-5: returns paths, the hint table and each stage's wall time."""
    config = config or DemoConfig()
    out = Path(out)
    stages = Stages(out, log)
    world = domain.World(seed=config.world_seed)
    data, models = out / "data", out / "models"

    def make_data():
        train = domain.generate(config.train_per_level, (1, 2), seed=config.seed, world=world, split="train")
        test = domain.generate(config.test_per_level, domain.LEVELS, seed=config.seed + 1, world=world,
                               split="test", exclude={p.problem for p in train})
        write_records(train, data / "train.jsonl")
        write_records(test, data / "test.jsonl")
        return {"train": len(train), "test": len(test)}

    def make_init():
        train = read_records(data / "train.jsonl")
        texts = [sparkle_user_turn(p.problem) + domain.completion_text(p.steps, p.answer) for p in train[:300]]
        texts += world.facts()
        tok = tinymodel.train_tokenizer(texts, config.model.vocab_size)
        model = tinymodel.build_tiny_model(tok, config.model)
        tinymodel.save(model, tok, models / "init")
        return {"parameters": sum(p.numel() for p in model.parameters()), "vocab": len(tok)}

    def make_pretrain():
        pretrain_text(models / "init", world.facts(config.fact_repeats, seed=config.seed), models / "pretrained",
                      config.pretrain)
        return {"lines": config.fact_repeats * len(world.facts())}

    def make_sft():
        facts = world.facts(config.sft_fact_repeats, seed=config.seed + 1)
        run_sft(models / "pretrained", read_records(data / "train.jsonl"), models / "base", config.sft, texts=facts)
        return {"model": str(models / "base")}

    def make_table():
        return hint_table(models / "base", read_records(data / "test.jsonl"), config.max_new_tokens)

    results = {name: stages.run(name, fn) for name, fn in
               (("data", make_data), ("init", make_init), ("pretrain", make_pretrain), ("sft", make_sft),
                ("hint_table", make_table))}
    summary = {"config": asdict(config), "base_model": str(models / "base"),
               "stage_seconds": {k: v["seconds"] for k, v in results.items()},
               "hint_table": results["hint_table"]["result"]}
    (out / "base.json").write_text(json.dumps(summary, indent=1))
    return summary
