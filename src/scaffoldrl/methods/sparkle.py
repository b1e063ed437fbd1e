"""SPARKLE's partial-step scaffolding (SparkleRL-PSS, arXiv 2506.04723): static prompt-side hint levels.

Stage 2 of SPARKLE's curriculum trains on hard problems (pass@k = 0 for the
stage-1 model) with each problem turned into K + 1 rows: the plain problem
(level 0) and levels 1..K, where the reference solution is split into K
contiguous chunks and level i appends the first i after ``" Assistant:
<think>\\n"``. Every row is its own prompt and its own GRPO group, so the
method acts once, on the dataset; rollouts and loss are plain GRPO's.

The reward is SPARKLE's hierarchical one, with the opened ``<think>`` of an
augmented row accepted (:func:`scaffoldrl.rewards.sparkle_aug_reward`).
Deviation offered, off by default: ``hide_final_step`` never reveals the
final step, which at level K gives the answer away in the original.
Rows over the prompt limit are dropped *and counted* (the original engine
dropped them silently).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..records import Problem
from ..steps import group, split_steps
from .base import Method


@dataclass
class PSSConfig:
    """SPARKLE's partial-step scaffolding (stage-2 augmentation).

    Args:
        levels: K, the number of cumulative hint levels added to the plain row;
            the solution is split into K chunks and level i shows the first i.
        hide_final_step: never reveal the final step (it holds the answer).
            SPARKLE's original reveals the whole solution at level K (False).
        resplit: when a problem has fewer steps than needed, re-split its
            solution more finely (real data). Turn off for exact steps (the
            embedded domain): such a problem then gets fewer levels.
    """

    levels: int = 4
    hide_final_step: bool = False
    resplit: bool = True


class SparklePSS(Method):
    """Static prompt-side levels 0..K, each its own row and group (SparkleRL-PSS)."""

    name = "pss"
    needs_reference = True
    placement = "prompt"

    def __init__(self, config: PSSConfig | None = None):
        super().__init__()
        self.config = config or PSSConfig()
        if self.config.levels < 1:
            raise ValueError(f"levels must be >= 1, got {self.config.levels}")

    @classmethod
    def from_config(cls, config) -> "SparklePSS":
        return cls(PSSConfig(levels=config.pss_levels, hide_final_step=config.pss_hide_final_step,
                             resplit=config.pss_resplit))

    def chunks(self, problem: Problem) -> list[str]:
        """The solution in at most K contiguous chunks (the final step left out when hidden)."""
        needed = self.config.levels + self.config.hide_final_step
        units = list(problem.steps)
        if self.config.resplit and 0 < len(units) < needed:
            units = split_steps("\n\n".join(units), min_steps=needed)
        if self.config.hide_final_step:
            units = units[:-1]
        return group(units, self.config.levels)

    def prompt_hints(self, problem: Problem) -> list[str | None]:
        chunks = self.chunks(problem)
        return [None] + ["\n".join(chunks[:i]) for i in range(1, len(chunks) + 1)]
