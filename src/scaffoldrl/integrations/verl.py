"""veRL: our training rows as veRL Parquet, and our rewards as its custom reward function.

**Reward.** In a veRL config (veRL 0.9 nests the two keys under ``reward.``;
earlier versions have them at the top level)::

    reward.custom_reward_function.path=pkg://scaffoldrl.integrations.verl
    reward.custom_reward_function.name=compute_score

veRL imports this module and calls :func:`compute_score` once per response,
from a thread pool (or an asyncio executor), with keyword arguments
``data_source``, ``solution_str`` (the decoded response only),
``ground_truth`` and ``extra_info``, plus whatever is under
``custom_reward_function.reward_kwargs``. The grading itself is
:mod:`scaffoldrl.rewards` (the one grader, math-verify in killable worker
processes): nothing here uses signals, so any thread may call it.

The reward is chosen, first match wins, by

1. ``reward_kwargs.reward`` in the config (every row),
2. ``extra_info["reward"]`` (what ``scaffoldrl export verl`` writes on each row),
3. ``data_source``: :data:`DATA_SOURCES` (ours and SPARKLE's own file names),
4. otherwise ``binary`` (1 correct, 0 not: what SPARKLE validates with).

The answer extraction is ``reward_kwargs.extraction`` when given (``strict``:
answer tags and boxes only; ``default``: every rule, then math-verify's own
extraction, :func:`scaffoldrl.extract.find_answer`), else the shared grader's
(``SCAFFOLDRL_GRADER_EXTRACTION``).

Names: ``binary`` (alias ``correctness``), ``sparkle`` (``spk_h``: 2 / 1 / 0 /
−1), ``sparkle_aug`` (``spk_h_aug``). veRL never passes the prompt to a
reward, so for ``sparkle_aug`` whether the prompt opened ``<think>`` comes
from ``extra_info``: its ``prompt`` when present, else ``thinking_level``
(0 = a plain row, scored as ``spk_h``; SPARKLE's own files carry it too),
else the row is taken as augmented.

**Data.** :func:`export_verl` turns problem records into veRL's row schema
(:data:`ROW_SCHEMA`), with SPARKLE's prompt; with the PSS method every problem
gives its plain row and one row per hint level, built by
:class:`scaffoldrl.methods.sparkle.SparklePSS`, with ``thinking_level`` in ``extra_info``.
Rows over the prompt limit (in tokens of a given tokenizer, through its chat
template, as veRL measures them) are dropped and counted here, rather than
silently by veRL's ``filter_overlong_prompts``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from .. import rewards

SCORERS: dict[str, Callable[..., dict]] = {
    "binary": rewards.compute_score,
    "sparkle": rewards.compute_score_sparkle,
    "sparkle_aug": rewards.compute_score_sparkle_aug,
}
"""Reward name → a veRL ``compute_score`` from :mod:`scaffoldrl.rewards`."""

REWARDS: dict[str, Callable] = {
    "binary": rewards.correctness_reward,
    "sparkle": rewards.sparkle_reward,
    "sparkle_aug": rewards.sparkle_aug_reward,
}
"""Reward name → the TRL reward function behind :data:`SCORERS`' entry."""

ALIASES = {"correctness": "binary", "spk_h": "sparkle", "spk_h_aug": "sparkle_aug"}

DATA_SOURCES = {
    **{f"scaffoldrl/{name}": name for name in SCORERS},
    # SPARKLE's own files: stage 1 (dsr40k, spk_h) and stage 2 (hardmath, spk_h_aug; level-0 rows carry thinking_level 0)
    "sparkle_dsr40k": "sparkle",
    "sparkle_hardmath": "sparkle_aug",
}
"""``data_source`` values that pick a reward when neither the config nor the row names one."""


def reward_name(name: str) -> str:
    """The canonical reward name for ``name`` (aliases accepted); raises on an unknown one."""
    name = ALIASES.get(str(name).strip(), str(name).strip())
    if name not in SCORERS:
        raise ValueError(f"unknown reward {name!r}; known: {', '.join(SCORERS)} (aliases: {', '.join(ALIASES)})")
    return name


def choose_reward(data_source: str, extra_info: Mapping | None = None, reward: str | None = None) -> str:
    """Which reward scores a row: the config's ``reward``, the row's, its ``data_source``'s, or ``binary``."""
    chosen = reward or (extra_info or {}).get("reward") or DATA_SOURCES.get(str(data_source), "binary")
    return reward_name(chosen)


def _level(extra_info: Mapping) -> int | None:
    value = extra_info.get("thinking_level")
    return None if value is None else int(value)


def _gold(ground_truth: Any) -> str:
    """veRL hands Parquet lists over as arrays: several answers become one comma-separated answer."""
    if hasattr(ground_truth, "tolist") and not isinstance(ground_truth, str):
        ground_truth = ground_truth.tolist()
    if isinstance(ground_truth, (list, tuple)):
        return ", ".join(str(g) for g in ground_truth)
    return str(ground_truth)


def compute_score(data_source, solution_str, ground_truth, extra_info=None, reward: str | None = None,
                  extraction: str | None = None, **kwargs) -> dict:
    """veRL's custom reward: ``{"score", "acc", "extracted"}`` for one response.

    ``score`` is the chosen reward (0.0 for a response that could not be
    graded), ``acc`` 1.0/0.0 correctness, ``extracted`` the answer found
    ("" if none). Other keyword arguments veRL may add are ignored.
    """
    info = extra_info if isinstance(extra_info, Mapping) else {}
    name = choose_reward(data_source, info, reward)
    if name == "sparkle_aug" and "prompt" not in info and _level(info) == 0:
        name = "sparkle"  # the plain row of an augmented set: its prompt opened nothing
    scorer = SCORERS[name] if extraction is None else rewards.verl_score(REWARDS[name], extraction)
    return scorer(data_source, solution_str, _gold(ground_truth), info)


# ------------------------------------------------------------------------------- data


def row_schema():
    """veRL's row schema, with our ``extra_info`` fields; every exported file has exactly this."""
    import pyarrow as pa

    return pa.schema([
        ("data_source", pa.string()),
        ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
        ("ability", pa.string()),
        ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
        ("extra_info", pa.struct([
            ("split", pa.string()), ("index", pa.int64()), ("id", pa.string()), ("problem_id", pa.string()),
            ("question", pa.string()), ("thinking_level", pa.int64()), ("total_thinking_levels", pa.int64()),
            ("reward", pa.string()), ("source", pa.string()),
        ])),
    ])


METHODS = ("grpo", "pss")
"""Methods whose rows veRL can train on as they are: plain rows, or SPARKLE's prompt-side levels."""


def row_method(method: str, pss=None):
    """The method that builds the rows: ``grpo`` (plain rows) or ``pss`` (SPARKLE's levels, :class:`~scaffoldrl.methods.sparkle.PSSConfig`)."""
    from ..methods.grpo import GRPO
    from ..methods.sparkle import SparklePSS

    if method == "grpo":
        return GRPO()
    if method == "pss":
        return SparklePSS(pss)
    raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")


def verl_row(row, index: int, *, data_source: str, reward: str, split: str) -> dict:
    """One :class:`~scaffoldrl.hints.PromptRow` as a veRL row."""
    return {
        "data_source": data_source,
        "prompt": [{"role": "user", "content": row.content}],
        "ability": "math",
        "reward_model": {"style": "rule", "ground_truth": row.answer},
        "extra_info": {"split": split, "index": index, "id": row.id, "problem_id": row.problem_id,
                       "question": row.question, "thinking_level": row.level,
                       "total_thinking_levels": row.levels - 1, "reward": reward, "source": row.source},
    }


@dataclass
class VerlExport:
    """What :func:`export_verl` wrote: the file, rows per hint level, and the rows dropped as too long."""

    path: Path
    problems: int
    rows: int
    per_level: dict[int, int]
    dropped: list[str] = field(default_factory=list)
    checked: bool = False
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The manifest written next to the rows."""
        return {"path": str(self.path), "problems": self.problems, "rows": self.rows,
                "per_level": {str(k): v for k, v in self.per_level.items()}, "dropped": len(self.dropped),
                "dropped_ids": self.dropped, "lengths_checked": self.checked, **self.settings}


def export_verl(problems: Iterable, out: str | Path, *, method: str = "grpo", pss=None, tokenizer: Any = None,
                max_prompt_tokens: int | None = 1024, data_source: str = "scaffoldrl", reward: str | None = None,
                split: str = "train", where: str = "the problems") -> VerlExport:
    """Write ``out/{split}.parquet`` (veRL rows) and ``out/{split}.json`` (counts, dropped ids, settings).

    ``reward`` (written to each row's ``extra_info``) defaults to
    ``sparkle_aug`` for ``pss`` and ``sparkle`` otherwise. Without a
    ``tokenizer`` lengths are not checked and nothing is dropped. ``pss``
    needs every problem's reference steps: problems without any raise
    :class:`~scaffoldrl.methods.MissingReference` naming ``where`` (their file).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..methods import check_references

    problems = list(problems)
    reward = reward_name(reward or ("sparkle_aug" if method == "pss" else "sparkle"))
    builder = row_method(method, pss)
    check_references(builder, problems, where)
    rowset = builder.rows(problems, tokenizer=tokenizer, max_prompt_tokens=max_prompt_tokens)
    rows = [verl_row(r, i, data_source=data_source, reward=reward, split=split) for i, r in enumerate(rowset.rows)]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{split}.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=row_schema()), path)
    settings = {"method": method, "reward": reward, "data_source": data_source, "split": split,
                "max_prompt_tokens": max_prompt_tokens if rowset.checked else None}
    if method == "pss":
        config = builder.config
        settings |= {"levels": config.levels, "hide_final_step": config.hide_final_step, "resplit": config.resplit}
    result = VerlExport(path, len(problems), len(rows), dict(sorted(Counter(r.level for r in rowset.rows).items())),
                        list(rowset.dropped), rowset.checked, settings)
    (out / f"{split}.json").write_text(json.dumps(result.to_dict(), indent=1) + "\n")
    return result
