"""GRPO and Dr.GRPO: on-policy groups with no guidance, the baseline every scaffolding method is measured against.

The rows are the problems, every rollout samples from the bare prompt, and the
loss is TRL's own. GRPO and Dr.GRPO differ only in TRL settings a recipe sets:
``scale_rewards: group`` gives (r − mean)/std per group, ``none`` gives
Dr.GRPO's r − mean; ``loss_type`` picks the token aggregation (``dapo``:
token mean over the batch, ``dr_grpo``: token sum over B · max length).
Recipes: ``grpo`` (SEELE's baseline budget), ``sparkle_stage1`` (SPARKLE's
stage 1, with its hierarchical reward :func:`scaffoldrl.rewards.sparkle_reward`).
"""

from __future__ import annotations

from .base import Method


class GRPO(Method):
    """Plain GRPO: everything :class:`~scaffoldrl.methods.base.Method` does by default."""

    name = "grpo"
