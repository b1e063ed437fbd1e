"""The embedded base model: the domain's data, a tiny Qwen2 model, pretraining on facts, SFT, and its hint table.

Stages write into ``out`` and are skipped when their output exists, so a
rerun resumes (:class:`scaffoldrl.runs.Stages`):

1. data — train (levels 1-2) and held-out test (all levels) problems;
2. init — a locally trained tokenizer and a random tiny Qwen2 model;
3. pretrain — language modelling on the world's facts (forward tables, open inverses);
4. sft — SFT on easy and medium problems, with the fact lines mixed in: the *base model*;
5. hint table — greedy accuracy per level with 0, half, and all but the last
   reference step forced at the start of the response.

The choices behind the defaults, and what was measured, are in
``docs/findings/base_model.md``.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

from . import domain, tinymodel
from .hints import response_prefix
from .prompts import reference_response, sparkle_prompt, sparkle_user_turn
from .records import Problem, read_records, write_records
from .runs import Stages, check_settings
from .sft import SFTSettings, pretrain_text, run_sft

HINTS = ("none", "half", "all_but_last")
"""Hint levels of the base-model table: steps revealed = 0, ⌊n/2⌋, n − 1."""


@dataclass
class BaseConfig:
    """Sizes of the embedded base model, chosen to build in minutes on 2 CPU cores.

    What each choice does is measured in ``docs/findings/base_model.md``
    (``bench/base_model.py --set FIELD=VALUE`` reruns any of them).
    """

    seed: int = 0
    world_seed: int = 0
    world_values: int = domain.VALUES
    """Size of the function tables (values 0..world_values-1): the chance of a guessed answer is 1 in this."""
    world_candidates: int = domain.CANDIDATES
    """Values each hidden inverse is stated with in the facts: the base gets one right about 1 in this."""
    train_per_level: int = 2500
    """SFT problems per level (levels 1 and 2)."""
    test_per_level: int = 40
    """Held-out problems per level (all levels)."""
    fact_repeats: int = 60
    """Passes over the world's 240 fact lines in pretraining (900 steps of 16): enough for SFT, where the
    fact lines are mixed in, to complete recall; fewer passes made SFT learn the step lookup later."""
    sft_fact_repeats: int = 18
    """Passes over the fact lines mixed into SFT, so recall is completed and kept."""
    sft_conditions: float = 0.15
    """Share of the SFT problems that are also shown in each of SPARKLE's other forms: with their plan,
    with their knowledge, and as their subproblem chain (one row per link), so that the analysis of
    those conditions measures the model rather than an unseen prompt format (5% each left level 1 with a
    plan or knowledge at 5-10%; 15% brings it to 82-85%, docs/findings/premise.md)."""
    sft_fact_lines_per_row: int = 10
    """Fact lines joined into one SFT row (a short "document") about as long as a problem's, so that a
    padded batch is not mostly padding."""
    pretrain: SFTSettings = field(default_factory=lambda: SFTSettings(
        epochs=1, learning_rate=1e-3, batch_size=16, lr_scheduler="constant_with_warmup"))
    sft: SFTSettings = field(default_factory=lambda: SFTSettings(epochs=4.5, learning_rate=2e-3, batch_size=16,
                                                                 warmup_steps=0.15))
    """Finding a step's line in the problem (a copy) is the last skill SFT learns; 4.5 epochs with a 15%
    warm-up learn it in every seed measured, fewer epochs in some seeds only."""
    model: tinymodel.TinyModelConfig = field(default_factory=tinymodel.TinyModelConfig)
    max_new_tokens: int = 128
    """Longest reference responses are 91 tokens (level 5)."""

    def world(self) -> domain.World:
        """The world of function tables these settings name."""
        return domain.World(seed=self.world_seed, values=self.world_values, candidates=self.world_candidates)

    def sft_condition_pairs(self, problems: list[Problem]) -> list[tuple[str, str]]:
        """(question, response) SFT examples in SPARKLE's plan, knowledge and subproblem-chain forms."""
        return condition_pairs(problems, self.sft_conditions, seed=self.seed)

    def sft_facts(self) -> list[str]:
        """The fact rows mixed into SFT: the world's fact lines in another order than pretraining's, joined."""
        return fact_rows(self.world().facts(self.sft_fact_repeats, seed=self.seed + 1), self.sft_fact_lines_per_row)


def hint_prefix(problem: Problem, hint: str) -> str:
    """The forced start of the response for a hint level of the base-model table."""
    n = len(problem.steps)
    k = {"none": 0, "half": n // 2, "all_but_last": n - 1}[hint]
    return response_prefix("\n".join(problem.steps[:k]) + "\n" if k else "")


def hint_table(model_path: str | Path, problems: list[Problem], max_new_tokens: int = 128) -> dict:
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


def condition_pairs(problems: list[Problem], share: float, seed: int = 0) -> list[tuple[str, str]]:
    """A ``share`` of the problems with their plan, another with their knowledge (the reference response
    either way), and another as a subproblem chain: one example per link, earlier links answered, the
    response the link's own step."""
    from .analysis import chain_question, condition_question

    rng = random.Random(f"conditions-{seed}")
    k = round(share * len(problems))
    pairs = []
    for condition in ("plan", "knowledge"):
        for p in rng.sample(problems, k):
            question = condition_question(p, condition)
            if question is not None:
                pairs.append((question, reference_response(p.steps, p.answer)))
    for p in rng.sample(problems, k):
        answers = [sub.answer for sub in p.subproblems]
        for link, sub in enumerate(p.subproblems):
            pairs.append((chain_question(p, link, answers[:link]), reference_response([p.steps[link]], sub.answer)))
    return pairs


def fact_rows(lines: list[str], per_row: int) -> list[str]:
    """Consecutive fact lines joined ``per_row`` at a time: SFT rows about as long as a problem's."""
    return ["\n".join(lines[i:i + per_row]) for i in range(0, len(lines), per_row)]


SHIPPED = Path(str(resources.files("scaffoldrl") / "vendor" / "base"))
"""The default base model as built by ``scaffoldrl demo --base-only --rebuild-base`` (``bench/ship_base.py``
copies it here), with its ``base.json``: a run with the default settings starts from it instead of
spending minutes on building it, and gets the same hint table."""
MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
               "tokenizer_config.json", "chat_template.jinja")


def shipped_base(config: BaseConfig) -> dict | None:
    """The shipped base's ``base.json`` when it was built with exactly ``config``, else None."""
    path = SHIPPED / "base.json"
    if not path.exists():
        return None
    shipped = json.loads(path.read_text())
    return shipped if shipped["config"] == json.loads(json.dumps(asdict(config))) else None


def build_base(out: str | Path, config: BaseConfig | None = None, log=print, rebuild: bool = False) -> dict:
    """Stages 1-5: returns paths, the hint table and each stage's wall time.

    With the default settings the shipped base model is copied in place of
    stages 2-4 (unless ``rebuild``); the data and the hint table are made as
    always, so the table is measured, not copied.
    """
    config = config or BaseConfig()
    out = Path(out)
    check_settings(out, "base_config.json", asdict(config))
    stages = Stages(out, log)
    shipped = None if rebuild else shipped_base(config)
    world = config.world()
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
        texts = [sparkle_user_turn(p.problem) + reference_response(p.steps, p.answer) for p in train[:300]]
        texts += [sparkle_user_turn(q) + r for q, r in condition_pairs(train[:300], 0.1, seed=config.seed)]
        texts += world.facts()
        numbers = config.world_values if config.model.whole_numbers else 0
        tok = tinymodel.train_tokenizer(texts, config.model.vocab_size, numbers=numbers)
        model = tinymodel.build_tiny_model(tok, config.model)
        tinymodel.save(model, tok, models / "init")
        return {"parameters": sum(p.numel() for p in model.parameters()), "vocab": len(tok)}

    def make_pretrain():
        pretrain_text(models / "init", world.facts(config.fact_repeats, seed=config.seed), models / "pretrained",
                      config.pretrain)
        return {"lines": config.fact_repeats * len(world.facts())}

    def make_sft():
        train = read_records(data / "train.jsonl")
        run_sft(models / "pretrained", train, models / "base", config.sft, texts=config.sft_facts(),
                pairs=config.sft_condition_pairs(train))
        return {"model": str(models / "base")}

    def make_table():
        return hint_table(models / "base", read_records(data / "test.jsonl"), config.max_new_tokens)

    def copy_shipped():
        import shutil

        (models / "base").mkdir(parents=True, exist_ok=True)
        for name in MODEL_FILES:
            shutil.copy(SHIPPED / name, models / "base" / name)
        return {"model": str(models / "base"), "shipped": str(SHIPPED),
                "built_in_seconds": shipped["stage_seconds"]}

    build = (("shipped_base", copy_shipped),) if shipped else (
        ("init", make_init), ("pretrain", make_pretrain), ("sft", make_sft))
    results = {name: stages.run(name, fn) for name, fn in
               (("data", make_data), *build, ("hint_table", make_table))}
    summary = {"config": asdict(config), "base_model": str(models / "base"),
               "stage_seconds": {k: v["seconds"] for k, v in results.items()},
               "hint_table": results["hint_table"]["result"]}
    (out / "base.json").write_text(json.dumps(summary, indent=1))
    return summary
