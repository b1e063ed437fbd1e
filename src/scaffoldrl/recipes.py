"""YAML training recipes: a model, problems, rewards and a trainer config, in a tiny and a paper-scale variant.

A recipe file holds what its variants share and, under ``variants``, what
differs; a variant's mappings are merged into the shared ones::

    name: seele
    trainer: grpo            # ScaffoldTrainer (or: sft)
    rewards: [correctness]
    config: {method: seele, rounds: 4, ...}      # ScaffoldConfig / SFTConfig fields
    variants:
      tiny:  {model: runs/demo/models/base, data: {domain: {...}}, config: {...}}
      paper: {model: Qwen/Qwen2.5-1.5B, data: {records: ...}, accelerate: zero2, config: {...}}

``data`` is ``{domain: {n, levels, seed}}`` (the embedded domain) or
``{records: PATH}`` (problem records). ``accelerate`` is a file or the name
of a config shipped with the package (``zero2``, ``zero3``). The recipes
shipped with the package (:func:`recipe_names`) are found by name from any
directory.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from importlib import resources

import yaml

from .records import InputError, Problem


class _Loader(yaml.SafeLoader):
    """YAML as PyYAML reads it, except as YAML 1.2 reads two things: ``3e-3`` is a float (YAML 1.1 wants
    ``3.0e-3``, else a string), and only true/false are booleans (YAML 1.1 also takes ``no``, ``off``…, so
    ``save_strategy=no`` would become False)."""


_Loader.yaml_implicit_resolvers = {key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
                                   for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
                              list("-+0123456789."))

TRAINERS = ("grpo", "sft")
CONFIGS = Path(str(resources.files("scaffoldrl") / "configs"))
logger = logging.getLogger(__name__)
RECIPE_DIR = CONFIGS / "recipes"
ACCELERATE_DIR = CONFIGS / "accelerate"


def reward_functions() -> dict[str, Any]:
    """Reward names a recipe may list, all graded by the shared grader."""
    from .rewards import correctness_reward, format_reward, sparkle_aug_reward, sparkle_reward

    return {"correctness": correctness_reward, "sparkle": sparkle_reward, "sparkle_aug": sparkle_aug_reward,
            "format": format_reward}


@dataclass
class Recipe:
    """One variant of a recipe, resolved: everything ``scaffoldrl train`` needs."""

    name: str
    variant: str
    trainer: str
    model: str
    data: dict[str, Any]
    config: dict[str, Any]
    rewards: list[str] = field(default_factory=list)
    accelerate: str | None = None
    description: str = ""
    skip_invalid: bool = False
    """Skip (and count) bad rows of a ``records`` file instead of stopping at the first."""

    def problems(self) -> list[Problem]:
        """The training problems the recipe's ``data`` names (bad rows skipped and counted with ``skip_invalid``)."""
        if "records" in self.data:
            from .records import read_records

            problems = read_records(self.data["records"], skip_invalid=self.skip_invalid)
            if problems.skipped:
                logger.warning("skipped %d bad rows of %s; first: %s", len(problems.skipped), self.data["records"],
                               problems.skipped[0])
            return problems
        from . import domain

        spec = self.data["domain"]
        return domain.generate(spec.get("n", 16), tuple(spec.get("levels", domain.LEVELS)),
                               seed=spec.get("seed", 0), split="train")

    def problems_source(self) -> str:
        """Where :meth:`problems` reads from, for messages: the records file or the embedded domain."""
        return str(self.data["records"]) if "records" in self.data else "the embedded domain"

    def check_problems(self, problems: list[Problem], config=None) -> None:
        """Stop (:class:`~scaffoldrl.methods.MissingReference`, naming the file and rows) when the method, or SFT,
        needs reference steps that some problems lack: they would silently train without hints."""
        from .methods import check_references, get_method, require_steps

        if self.trainer == "sft":
            require_steps(problems, "sft", self.problems_source())
        else:
            config = config or self.trainer_config()
            check_references(get_method(config.method), problems, self.problems_source())

    def trainer_config(self):
        """The recipe's ``config`` as a :class:`~scaffoldrl.trainer.ScaffoldConfig` (grpo) or TRL ``SFTConfig``."""
        if self.trainer == "sft":
            from trl import SFTConfig as cls
        else:
            from .trainer import ScaffoldConfig as cls
        unknown = set(self.config) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise InputError(f"recipe {self.name}/{self.variant}: unknown {cls.__name__} fields {sorted(unknown)}")
        try:
            return cls(**self.config)
        except (ValueError, TypeError) as e:  # a value that TRL's or our config checks refuse
            raise InputError(f"recipe {self.name}/{self.variant}: {' '.join(str(e).split())}") from e


def recipe_names() -> list[str]:
    """The recipes shipped with the package."""
    return sorted(p.stem for p in RECIPE_DIR.glob("*.yaml"))


def resolve_path(recipe: str | Path) -> Path:
    """A recipe file, or the name of a recipe shipped with the package."""
    path = Path(recipe)
    if not path.is_file() and (RECIPE_DIR / f"{recipe}.yaml").is_file():
        path = RECIPE_DIR / f"{recipe}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no recipe {recipe}: a YAML file, or one of {', '.join(recipe_names())}")
    return path


def resolve_accelerate(config: str) -> Path:
    """An accelerate config file, or the name of one shipped with the package (zero2, zero3)."""
    path = Path(config)
    if not path.is_file() and (ACCELERATE_DIR / f"{config}.yaml").is_file():
        path = ACCELERATE_DIR / f"{config}.yaml"
    if not path.is_file():
        shipped = ", ".join(sorted(p.stem for p in ACCELERATE_DIR.glob("*.yaml")))
        raise FileNotFoundError(f"no accelerate config {config}: a YAML file, or one of {shipped}")
    return path


def check_model(model: str) -> None:
    """A local model path that does not exist is an error saying how to get it (a hub name is left to transformers).

    A hub name is ``owner/name``; anything else (``runs/demo/models/base``,
    ``./m``, ``/abs/m``) is a path.
    """
    if Path(model).exists() or (model.count("/") == 1 and not model.startswith((".", "/", "~"))):
        return
    hint = ("build the embedded base model with `scaffoldrl demo --base-only` (about 5 min on 2 CPU cores)"
            if model.rstrip("/").endswith("models/base") else "train it first, or pass --model")
    raise FileNotFoundError(f"model {model} does not exist: {hint}")


def load_recipe(recipe: str | Path, variant: str = "tiny", overrides: dict[str, Any] | None = None) -> Recipe:
    """Read a recipe file, pick ``variant`` and apply ``overrides`` (config fields, or model/data/...)."""
    path = resolve_path(recipe)
    try:
        raw = yaml.load(path.read_text(), Loader=_Loader)
    except yaml.YAMLError as e:
        raise InputError(f"{path}: not valid YAML: {' '.join(str(e).split())}") from None
    if not isinstance(raw, dict):
        raise InputError(f"{path}: a recipe is a YAML mapping")
    variants = raw.pop("variants", {}) or {}
    if variant not in variants:
        raise InputError(f"{path}: no variant {variant!r} (has {sorted(variants)})")
    merged = _merge(raw, variants[variant])
    overrides = dict(overrides or {})
    for key in ("model", "data", "accelerate"):
        if key in overrides:
            merged[key] = overrides.pop(key)
    merged["config"] = {**merged.get("config", {}), **overrides}
    if merged.get("trainer", "grpo") not in TRAINERS:
        raise InputError(f"{path}: trainer must be one of {TRAINERS}")
    merged["config"].setdefault("output_dir", f"runs/{merged.get('name', path.stem)}-{variant}")
    return Recipe(name=merged.get("name", path.stem), variant=variant, trainer=merged.get("trainer", "grpo"),
                  model=str(merged["model"]), data=merged["data"], config=merged["config"],
                  rewards=list(merged.get("rewards", [])), accelerate=merged.get("accelerate"),
                  description=merged.get("description", ""))


def _merge(base: dict, extra: dict) -> dict:
    """``base`` with ``extra`` merged in, mappings recursively."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def run_recipe(recipe: Recipe, callbacks: list | None = None) -> Path:
    """Train as the recipe says; the final model, tokenizer and per-step log go to the config's ``output_dir``.

    ``callbacks`` (transformers ``TrainerCallback``) replace the trainer's own
    progress output (its tqdm bar or printed logs), e.g. the demo's rich bar.
    """
    config = recipe.trainer_config()
    model = recipe.model
    check_model(model)
    problems = recipe.problems()
    recipe.check_problems(problems, config)
    if recipe.trainer == "sft":
        from .sft import train_sft

        return train_sft(model, problems, config, callbacks=callbacks)
    from transformers import AutoTokenizer

    from .sft import replace_progress
    from .trainer import ScaffoldTrainer

    rewards = reward_functions()
    unknown = set(recipe.rewards) - set(rewards)
    if unknown:
        raise InputError(f"recipe {recipe.name}: unknown rewards {sorted(unknown)} (known: {sorted(rewards)})")
    trainer = ScaffoldTrainer(model, config, problems, AutoTokenizer.from_pretrained(model),
                              reward_funcs=[rewards[name] for name in recipe.rewards] or None)
    replace_progress(trainer, callbacks)
    trainer.train(resume_from_checkpoint=config.resume_from_checkpoint)
    trainer.save_model(config.output_dir)
    if trainer.args.should_save:  # the main process only: several writing one folder would race
        trainer.processing_class.save_pretrained(config.output_dir)
    trainer.save_state()  # trainer_state.json: the per-step log, hint statistics included
    return Path(config.output_dir)


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings (values read as YAML: numbers, booleans, lists) into a mapping."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set: expected KEY=VALUE, got {pair!r}")
        out[key.strip()] = yaml.load(value, Loader=_Loader)
    return out


def launch_command(recipe: Recipe, argv: list[str]) -> list[str]:
    """The ``accelerate launch`` command that reruns ``scaffoldrl <argv>`` on the recipe's GPUs."""
    import sys

    if not recipe.accelerate:
        raise InputError(f"recipe {recipe.name}/{recipe.variant} names no accelerate config")
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(resolve_accelerate(recipe.accelerate)),
            "-m", "scaffoldrl", *argv]
