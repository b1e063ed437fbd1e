"""LUFFY: off-policy reference traces inside each group, trained through a shaped probability.

k rollouts of each group are replaced by the whole reference trace (kind
``off_policy``, forced and not sampled). TRL then takes the advantages over
on- and off-policy rewards together, and the trace's tokens, which have no
behaviour probability to form a clipped ratio with, get the policy-shaping
term −A · f(π) with f(π) = π/(π + γ), γ = 0.1 (:func:`shaped_ratio`), reduced
together with TRL's on-policy tokens (one token mean over both: ``dapo``).
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from ..hints import KINDS, OFF_POLICY, Reference, RolloutPlan
from .base import REDUCED_LOSS_TYPES, LossContext, Method, check_guided


def shaped_ratio(per_token_logps: torch.Tensor, gamma: float) -> torch.Tensor:
    """LUFFY's policy shaping f(π) = π/(π + γ) of each token's probability π.

    Its gradient γπ/(π + γ)² ∇log π is largest for tokens near π = γ, so the
    policy learns the demonstration's unlikely tokens instead of sharpening
    the ones it already predicts.
    """
    probs = per_token_logps.exp()
    return probs / (probs + gamma)


class Luffy(Method):
    """The last ``off_policy`` rollouts of each group are the reference trace itself."""

    name = "luffy"
    needs_reference = True

    def __init__(self, off_policy: int = 1, gamma: float = 0.1):
        super().__init__()
        if off_policy < 1:
            raise ValueError(f"at least one rollout per group must be the reference, got {off_policy}")
        self.off_policy, self.gamma = off_policy, gamma

    @classmethod
    def check_config(cls, config) -> None:
        check_guided(config, "LUFFY's on-policy rollouts")
        if config.loss_type not in REDUCED_LOSS_TYPES:
            raise ValueError(f"LUFFY's off-policy term is reduced like TRL's loss only for loss_type in "
                             f"{REDUCED_LOSS_TYPES}, got {config.loss_type!r}")

    @classmethod
    def from_config(cls, config) -> "Luffy":
        return cls(config.guided_rollouts, config.off_policy_gamma)

    def plan(self, ref: Reference, step: int, round: int, n: int) -> list[RolloutPlan]:
        if self.off_policy >= n:
            raise ValueError(f"{self.off_policy} off-policy traces leave no on-policy rollout in a group of {n}")
        return [ref.plan(0)] * (n - self.off_policy) + [ref.off_policy()] * self.off_policy

    def prepare_batch(self, batch: dict[str, Any], gather: Callable) -> None:
        """TRL's token count (``num_items_in_batch``, used by ``dapo``) includes the off-policy tokens."""
        batch["num_items_in_batch"] = batch["num_items_in_batch"] + gather(_off_policy_mask(batch).sum())

    def extra_loss(self, ctx: LossContext):
        """−A · f(π) over the off-policy tokens, reduced as TRL reduces its objective."""
        off = _off_policy_mask(ctx.inputs)
        if not bool(off.any()):
            return None
        ctx.log("hint/off_policy_prob", ((ctx.per_token_logps.detach().exp() * off).sum() / off.sum()).item())
        return ctx.reduce(-shaped_ratio(ctx.per_token_logps, self.gamma) * ctx.token_advantages(), off)


def _off_policy_mask(inputs: dict[str, Any]) -> torch.Tensor:
    return inputs["completion_mask"] * (inputs["kinds"] == KINDS.index(OFF_POLICY))[:, None]
