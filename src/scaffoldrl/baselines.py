"""The baselines SEELE is measured against, as hint policies on the same trainer (SPEC §4).

Each method is split the way the trainer is: the policy decides what every
rollout of a group gets, and the loss treats a completion by its kind.

* **UFT** (:class:`UFTBinomialHints`): every rollout starts from the first
  l ~ Binomial(L, p(t)) steps of the reference, p(t) cosine-annealed from
  p_high to p_low over T_hint steps and 0 after; the hint tokens are out of the
  policy gradient and get the imitation term γ·NLL (the trainer's
  ``imitation_coef``), which is UFT's hint log-likelihood.
* **LUFFY** (:class:`LuffyOffPolicy`): k rollouts of each group are replaced by
  the reference trace (kind ``off_policy``); TRL's advantages are then taken
  over on- and off-policy rewards together, and the trainer trains the
  off-policy tokens with the shaped ratio f(π) = π/(π + γ)
  (:func:`shaped_ratio`) instead of the clipped ratio.
* **Prefix-RFT** (:class:`PrefixRFTHints`): k rollouts of each group continue a
  prefix of the reference whose fraction is cosine-decayed 95% → 5%; the prefix
  tokens stay under TRL's clipped objective, but only the top 20% by entropy
  keep a gradient (the trainer's ``prefix_entropy_quantile``).
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import torch

from .hints import HintPolicy, Reference, RolloutPlan


def cosine_schedule(step: float, steps: float, start: float, end: float) -> float:
    """``start`` at step 0 falling along half a cosine to ``end`` at ``steps``, and ``end`` after."""
    progress = min(max(step / steps, 0.0), 1.0) if steps > 0 else 1.0
    return end + 0.5 * (start - end) * (1.0 + math.cos(math.pi * progress))


def shaped_ratio(per_token_logps: torch.Tensor, gamma: float) -> torch.Tensor:
    """LUFFY's policy shaping f(π) = π/(π + γ) of each token's probability π.

    Off-policy tokens have no behaviour probability to form a ratio with; f
    replaces it. Its gradient γπ/(π + γ)² ∇log π is largest for tokens near
    π = γ, so the policy learns the demonstration's unlikely tokens instead of
    sharpening the ones it already predicts.
    """
    probs = per_token_logps.exp()
    return probs / (probs + gamma)


def _check_guided(guided: int) -> int:
    if guided < 1:
        raise ValueError(f"at least one rollout per group must get the reference, got {guided}")
    return guided


class UFTBinomialHints(HintPolicy):
    """UFT: every rollout's hint length drawn from Binomial(L, p(t)) with p(t) annealed to 0.

    p(t) = p_low + ½(p_high − p_low)(1 + cos(π(t + 1)/T_hint)) for t < T_hint,
    else 0; L is the reference's length in hint units. Draws are seeded by
    (seed, step, round, question), so a resumed run draws what the original did.
    """

    def __init__(self, high: float, low: float, hint_steps: int, seed: int = 0):
        super().__init__()
        self.high, self.low, self.hint_steps, self.seed = high, low, hint_steps, seed

    def rate(self, step: int) -> float:
        """p(t): the expected fraction of the reference a rollout starts from."""
        return cosine_schedule(step + 1, self.hint_steps, self.high, self.low) if step < self.hint_steps else 0.0

    def plan(self, ref: Reference, step: int, round: int, n: int) -> list[RolloutPlan]:
        p = self.rate(step)
        if p == 0.0:
            return [ref.plan(0)] * n
        rng = np.random.default_rng((self.seed, step, round, zlib.crc32(ref.id.encode())))
        return [ref.plan(int(units)) for units in rng.binomial(ref.total, p, size=n)]


class LuffyOffPolicy(HintPolicy):
    """LUFFY: the last ``off_policy`` rollouts of each group are the reference trace itself."""

    def __init__(self, off_policy: int = 1):
        super().__init__()
        self.off_policy = _check_guided(off_policy)

    def plan(self, ref: Reference, step: int, round: int, n: int) -> list[RolloutPlan]:
        if self.off_policy >= n:
            raise ValueError(f"{self.off_policy} off-policy traces leave no on-policy rollout in a group of {n}")
        return [ref.plan(0)] * (n - self.off_policy) + [ref.off_policy()] * self.off_policy


class PrefixRFTHints(HintPolicy):
    """Prefix-RFT: the last ``prefixed`` rollouts of each group continue a cosine-decayed prefix of the reference.

    Unlike SEELE's and UFT's hints, the prefix is trained as part of the
    trajectory: its tokens stay under the policy gradient with the rollout's
    advantage (the trainer keeps only the highest-entropy ones).
    """

    hints_get_policy_gradient = True

    def __init__(self, high: float, low: float, decay_steps: int, prefixed: int = 1):
        super().__init__()
        self.high, self.low, self.decay_steps = high, low, decay_steps
        self.prefixed = _check_guided(prefixed)

    def fraction(self, step: int) -> float:
        """The fraction of the reference given as the prefix at ``step``."""
        return cosine_schedule(step, self.decay_steps, self.high, self.low)

    def plan(self, ref: Reference, step: int, round: int, n: int) -> list[RolloutPlan]:
        if self.prefixed >= n:
            raise ValueError(f"{self.prefixed} prefixed rollouts leave no plain rollout in a group of {n}")
        prefixed = ref.plan(ref.units_for(self.fraction(step)))
        return [ref.plan(0)] * (n - self.prefixed) + [prefixed] * self.prefixed
