"""Prefix-RFT: some rollouts continue a decaying prefix of the reference, and the prefix is trained.

k rollouts of each group continue the first fraction of the reference, the
fraction cosine-decayed 95% → 5% over training; the others sample from the
bare prompt. Unlike SEELE's and UFT's hints, the prefix is part of the
trajectory: its tokens stay under TRL's clipped objective with the rollout's
advantage, but only the top 20% by entropy keep it (the others get advantage
0, as TRL's own entropy mask zeroes a token's policy loss): training every
demonstration token would be imitation, and the high-entropy ones are where
the policy is undecided.
"""

from __future__ import annotations

from ..hints import Reference, RolloutPlan
from .base import LossContext, Method, check_guided, cosine_schedule


class PrefixRFT(Method):
    """The last ``prefixed`` rollouts of each group continue a cosine-decayed prefix; its high-entropy tokens train."""

    name = "prefix_rft"
    needs_reference = True
    hints_get_policy_gradient = True

    def __init__(self, high: float, low: float, decay_steps: int, prefixed: int = 1, entropy_quantile: float = 1.0):
        super().__init__()
        if prefixed < 1:
            raise ValueError(f"at least one rollout per group must get the prefix, got {prefixed}")
        if not 0.0 < entropy_quantile <= 1.0:
            raise ValueError(f"prefix_entropy_quantile must be in (0, 1], got {entropy_quantile}")
        self.high, self.low, self.decay_steps = high, low, decay_steps
        self.prefixed, self.entropy_quantile = prefixed, entropy_quantile

    @classmethod
    def check_config(cls, config) -> None:
        if config.schedule_steps < 1:
            raise ValueError("method 'prefix_rft' needs hint_schedule_steps or max_steps for its hint schedule")
        check_guided(config, "Prefix-RFT's plain rollouts")

    @classmethod
    def from_config(cls, config) -> "PrefixRFT":
        return cls(config.hint_high, config.hint_low, config.schedule_steps, config.guided_rollouts,
                   config.prefix_entropy_quantile)

    def fraction(self, step: int) -> float:
        """The fraction of the reference given as the prefix at ``step``."""
        return cosine_schedule(step, self.decay_steps, self.high, self.low)

    def plan(self, ref: Reference, step: int, round: int, n: int) -> list[RolloutPlan]:
        if self.prefixed >= n:
            raise ValueError(f"{self.prefixed} prefixed rollouts leave no plain rollout in a group of {n}")
        prefixed = ref.plan(ref.units_for(self.fraction(step)))
        return [ref.plan(0)] * (n - self.prefixed) + [prefixed] * self.prefixed

    def shape_advantages(self, ctx: LossContext) -> None:
        """Of the prefix tokens under the policy gradient, only the top quantile by entropy keep their advantage."""
        if self.entropy_quantile >= 1.0:
            return
        prefix = ctx.inputs["hint_mask"] * ctx.inputs.get("tool_mask", 1)
        keep = ctx.high_entropy_mask(ctx.entropies, prefix, 1.0 - self.entropy_quantile)
        ctx.inputs["advantages"] = ctx.token_advantages().masked_fill(prefix.bool() & ~keep, 0.0)
        if prefix.any():
            ctx.log("hint/prefix_trained_frac", (keep.sum() / prefix.sum()).item())
