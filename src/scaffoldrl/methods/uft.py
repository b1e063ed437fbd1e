"""UFT (unified fine-tuning): every rollout starts from a hint whose length is drawn, annealed to nothing.

Each rollout starts from the first l ~ Binomial(L, p(t)) units of the
reference (L its length in hint units), with p(t) cosine-annealed from p_high
to p_low over T_hint steps and 0 after, so training moves from guided to
unguided rollouts. The hint tokens are out of the policy gradient and get the
hint log-likelihood γ · NLL (:func:`~scaffoldrl.methods.base.hint_imitation_loss`).
p_high, p_low and γ are not stated in the comparison the seeds draw on; the
recipe uses Prefix-RFT's 95% → 5% and SEELE's γ = 0.001.
"""

from __future__ import annotations

import zlib

import numpy as np

from ..hints import Reference, RolloutPlan
from .base import LossContext, Method, cosine_schedule, hint_imitation_loss


class UFT(Method):
    """Binomial hint lengths with p(t) = p_low + ½(p_high − p_low)(1 + cos(π(t + 1)/T_hint)) for t < T_hint, else 0.

    Draws are seeded by (seed, step, round, question), so a resumed run draws
    what the original did.
    """

    name = "uft"
    needs_reference = True

    def __init__(self, high: float, low: float, hint_steps: int, seed: int = 0, imitation_coef: float = 0.001):
        super().__init__()
        self.high, self.low, self.hint_steps, self.seed = high, low, hint_steps, seed
        self.imitation_coef = imitation_coef

    @classmethod
    def check_config(cls, config) -> None:
        if config.schedule_steps < 1:
            raise ValueError("method 'uft' needs hint_schedule_steps or max_steps for its hint schedule")

    @classmethod
    def from_config(cls, config) -> "UFT":
        return cls(config.hint_high, config.hint_low, config.schedule_steps, seed=config.seed,
                   imitation_coef=config.imitation_coef)

    def rate(self, step: int) -> float:
        """p(t): the expected fraction of the reference a rollout starts from."""
        return cosine_schedule(step + 1, self.hint_steps, self.high, self.low) if step < self.hint_steps else 0.0

    def plan(self, ref: Reference, step: int, round: int, n: int) -> list[RolloutPlan]:
        p = self.rate(step)
        if p == 0.0:
            return [ref.plan(0)] * n
        rng = np.random.default_rng((self.seed, step, round, zlib.crc32(ref.id.encode())))
        return [ref.plan(int(units)) for units in rng.binomial(ref.total, p, size=n)]

    def extra_loss(self, ctx: LossContext):
        return hint_imitation_loss(ctx, self.imitation_coef)
