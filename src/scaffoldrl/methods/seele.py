"""SEELE (arXiv 2509.06923): capability-adaptive response-prefix hints that keep every question near a* = 0.5.

With a binary reward the expected one-step gain on a question is bounded by
a(1 − a)/(2β), largest at accuracy a = 0.5, so each question gets the hint
rate p predicted to bring it to a*. The whole method, as the trainer runs it:

* **Hint**: the first l = round(p·|y|) units (steps or tokens) of the
  reference y, forced as the start of the response.
* **Rounds**: each step samples m rounds of n rollouts per question, one
  after another (the trainer's ``rounds``; SEELE: 4 × 8). After each round
  :meth:`Seele.observe` refits a per-question 3PL item-response curve

      f(p) = b + (1 − b) / (1 + exp(−k (p + μ)))

  (k slope, −μ midpoint, b floor) by unweighted least squares to this step's
  (p, accuracy) points, and inverts it at a*:

      p = −μ + ln((a* − b) / (1 − a*)) / k,   clipped to [0, 1];  p = 0 when b ≥ a*.

  All m·n completions form one group (Dr.GRPO advantage r − mean, in the recipe).
* **State**: points are reset every step; only each question's final rate
  survives (and is checkpointed) to start its next visit. A first visit
  starts at p = (|y| − 1)/|y| with |y| counted in steps: all but the last step.
* **Loss**: hint tokens get no policy gradient; they get γ · NLL instead
  (:func:`~scaffoldrl.methods.base.hint_imitation_loss`, γ = 0.001).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
from scipy.optimize import least_squares

from ..hints import Reference, RolloutPlan
from .base import LossContext, Method, hint_imitation_loss


@dataclass(frozen=True)
class ThreePL:
    """A fitted 3PL curve f(p) = b + (1 − b)/(1 + exp(−k(p + μ)))."""

    k: float
    mu: float
    b: float

    def __call__(self, p):
        return three_pl(p, self.k, self.mu, self.b)

    def inverse(self, target: float) -> float:
        """p with f(p) = a*: −μ + ln((a* − b)/(1 − a*))/k (unclipped; needs b < a* < 1)."""
        return -self.mu + math.log((target - self.b) / (1.0 - target)) / self.k


def three_pl(p, k: float, mu: float, b: float):
    """f(p) = b + (1 − b)/(1 + exp(−k(p + μ))), elementwise over rates ``p``."""
    return b + (1.0 - b) / (1.0 + np.exp(-k * (np.asarray(p, dtype=float) + mu)))


@dataclass
class AdaptiveConfig:
    """SEELE's adaptive hint controller.

    Args:
        target: a*, the accuracy each question is steered to (SEELE: 0.5 best
            of 0.25…0.75).
        anchors: add the points (0, 0) and (1, 1) to every fit unless those
            rates were tried: with no hint the (hard) question is assumed
            unsolved, with the whole solution solved. They make a 3-parameter
            fit possible after a single round.
        k_bounds, mu_bounds, b_bounds: box constraints of the trust-region
            fit. k > 0 makes accuracy rise with the hint; b < 1 keeps the
            inverse defined.
        init: (k, μ, b) the fit starts from (inside the bounds).
    """

    target: float = 0.5
    anchors: bool = True
    k_bounds: tuple[float, float] = (0.1, 50.0)
    mu_bounds: tuple[float, float] = (-3.0, 2.0)
    b_bounds: tuple[float, float] = (0.0, 0.99)
    init: tuple[float, float, float] = (5.0, -0.5, 0.01)


def fit_points(rates: Sequence[float], accuracies: Sequence[float],
               anchors: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The points a fit uses: accuracies at a repeated rate averaged, anchors added where untried."""
    by_rate: dict[float, list[float]] = {}
    for p, a in zip(rates, accuracies):
        by_rate.setdefault(float(p), []).append(float(a))
    if anchors:
        by_rate.setdefault(0.0, [0.0])
        by_rate.setdefault(1.0, [1.0])
    xs = sorted(by_rate)
    return np.array(xs), np.array([sum(by_rate[x]) / len(by_rate[x]) for x in xs])


def fit_three_pl(rates: Sequence[float], accuracies: Sequence[float],
                 config: AdaptiveConfig | None = None) -> ThreePL:
    """Fit f to the points by unweighted least squares, trust-region reflective with bounds."""
    config = config or AdaptiveConfig()
    x, y = fit_points(rates, accuracies, config.anchors)
    lower, upper = zip(config.k_bounds, config.mu_bounds, config.b_bounds)
    result = least_squares(lambda theta: three_pl(x, *theta) - y, config.init,
                           bounds=(lower, upper), method="trf")
    return ThreePL(*map(float, result.x))


def next_rate(curve: ThreePL, target: float) -> float:
    """The rate predicted to give accuracy a*, clipped to [0, 1]; 0 when even no hint reaches a* (b ≥ a*)."""
    if curve.b >= target:
        return 0.0
    return min(1.0, max(0.0, curve.inverse(target)))


def cold_start_rate(n_steps: int) -> float:
    """(|y| − 1)/|y|: all but the last step on a question's first visit."""
    return (n_steps - 1) / n_steps if n_steps > 0 else 0.0


class Seele(Method):
    """Response-prefix hints whose rate is refitted per question after every round (SEELE).

    Per round the trainer calls :meth:`plan` (all n rollouts share the
    question's current rate) and then :meth:`observe` with the accuracy; the
    refit sets the rate of the next round, and after the last round that rate
    is the one stored for the question's next visit.
    """

    name = "seele"
    needs_reference = True
    adaptive = True

    def __init__(self, config: AdaptiveConfig | None = None, imitation_coef: float = 0.001):
        super().__init__()
        self.config = config or AdaptiveConfig()
        self.target = self.config.target
        self.imitation_coef = imitation_coef
        self.rates: dict[str, float] = {}

    @classmethod
    def from_config(cls, config) -> "Seele":
        return cls(AdaptiveConfig(target=config.target), imitation_coef=config.imitation_coef)

    def rate(self, ref: Reference) -> float:
        """The question's current rate; a first visit starts cold."""
        return self.rates.setdefault(ref.id, cold_start_rate(ref.n_steps))

    def plan(self, ref: Reference, step: int, round: int, n: int) -> list[RolloutPlan]:
        return [ref.plan(ref.units_for(self.rate(ref)))] * n

    def observe(self, question_id: str, rate: float, accuracy: float,
                rewards: Sequence[float] | None = None) -> None:
        super().observe(question_id, rate, accuracy, rewards)
        points = self.observations[question_id]
        curve = fit_three_pl([o.rate for o in points], [o.accuracy for o in points], self.config)
        self.rates[question_id] = next_rate(curve, self.config.target)

    def sync(self, question_ids: list[str], gather_object: Callable[[list], list]) -> None:
        """Every process learns the rates the others just refitted, so each question has one rate everywhere."""
        for part in gather_object([{q: self.rates[q] for q in question_ids if q in self.rates}]):
            self.rates.update(part)

    def extra_loss(self, ctx: LossContext):
        return hint_imitation_loss(ctx, self.imitation_coef)

    def state_dict(self) -> dict[str, Any]:
        return {"rates": dict(self.rates)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rates = {str(q): float(p) for q, p in state["rates"].items()}
