"""Accuracy over k samples per problem, and bootstrap confidence intervals over problems.

Every estimator uses all n samples drawn for a problem and is unbiased for
its metric at any k ≤ n, so one run at n = 32 also gives pass@4 or maj@8
without extra samples:

- avg@n: the mean correctness of the n samples (SPARKLE's avg@8, SEELE's avg@32);
- pass@k: the probability that at least one of k samples is right, by the
  combinatorial estimator 1 − C(n−c, k) / C(n, k) (Chen et al., 2021);
- maj@k: the expected correctness of a majority vote over a random k-subset
  of the samples; samples without an answer do not vote, and a tie is broken
  uniformly at random (a correct/wrong tie counts 1/2).
"""

from __future__ import annotations

from collections import Counter
from math import comb
from typing import Mapping, Sequence

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``c`` correct of ``n`` samples (a running product: no huge binomials)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    # C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k/i)
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def avg_at_n(correct: Sequence[bool]) -> float:
    """Mean correctness of the samples: the expected accuracy of one sample."""
    if not correct:
        raise ValueError("no samples")
    return sum(map(bool, correct)) / len(correct)


def maj_at_k(answers: Sequence[str | None], correct: Sequence[bool], k: int) -> float:
    """Expected correctness of majority voting over a random k-subset of the samples.

    All correct samples form one voting class (the grader found them equal to
    the gold answer); wrong ones are grouped by their extracted text; ``None``
    (no answer) abstains. Computed exactly: for each number x of correct
    samples drawn, a dynamic programme over the wrong classes counts the draws
    where no wrong class beats x, split by how many tie with it.
    """
    n = len(answers)
    if len(correct) != n or not 1 <= k <= n:
        raise ValueError(f"need len(answers) == len(correct) and 1 <= k <= n, got n={n} k={k}")
    n_correct = sum(map(bool, correct))
    wrong = list(Counter(a for a, ok in zip(answers, correct) if not ok and a is not None).values())
    abstain = n - n_correct - sum(wrong)
    total = 0.0
    for x in range(1, min(n_correct, k) + 1):
        rest = k - x
        # ways[j, t]: draws of j wrong samples, each class at most x, t classes at exactly x
        ways = np.zeros((rest + 1, len(wrong) + 1))
        ways[0, 0] = 1.0
        for size in wrong:
            new = np.zeros_like(ways)
            for y in range(min(size, x, rest) + 1):
                shift = comb(size, y) * ways[: rest + 1 - y]
                if y < x:
                    new[y:] += shift
                else:
                    new[y:, 1:] += shift[:, :-1]
            ways = new
        fill = np.array([comb(abstain, rest - j) for j in range(rest + 1)], dtype=float)
        share = 1.0 / (1.0 + np.arange(len(wrong) + 1))
        total += comb(n_correct, x) * float(fill @ ways @ share)
    return total / comb(n, k)


def default_ks(n: int) -> list[int]:
    """The k of a pass@k curve: powers of two below n, then n."""
    ks = [1 << i for i in range(n.bit_length()) if 1 << i < n]
    return ks + [n]


def bootstrap_ci(values: Sequence[float], resamples: int = 1000, confidence: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the mean when the problems are resampled with replacement."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        raise ValueError("no values")
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(resamples, v.size))].mean(axis=1)
    alpha = (1.0 - confidence) / 2
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def problem_metrics(samples: Sequence[tuple[bool, str | None]], ks: Sequence[int],
                    majority: bool = True) -> dict[str, float]:
    """One problem's metrics from its (correct, extracted answer) samples."""
    correct = [bool(c) for c, _ in samples]
    n, c = len(correct), sum(correct)
    out = {f"avg@{n}": c / n}
    for k in ks:
        out[f"pass@{k}"] = pass_at_k(n, c, k)
        if majority and k > 1:
            out[f"maj@{k}"] = maj_at_k([a for _, a in samples], correct, k)
    return out


def summarize(groups: Mapping[str, Sequence[tuple[bool, str | None]]], *, greedy: bool = False,
              ks: Sequence[int] | None = None, majority: bool = True, resamples: int = 1000,
              confidence: float = 0.95, seed: int = 0) -> dict:
    """Metrics over problems (each the mean of the per-problem values) with bootstrap intervals.

    ``groups`` maps a problem to its samples; every problem must have the same
    number n of them. Greedy runs (n = 1) report ``pass@1`` only. ``score``
    is the headline number: greedy pass@1, else avg@n.
    """
    sizes = {len(s) for s in groups.values()}
    if len(sizes) != 1:
        raise ValueError(f"every problem needs the same number of samples, got sizes {sorted(sizes)}")
    n = sizes.pop()
    if greedy:
        ks, majority = [1], False
    ks = [k for k in (ks or default_ks(n)) if k <= n]
    per_problem = [problem_metrics(s, ks, majority) for s in groups.values()]
    names = ["pass@1"] if greedy else list(per_problem[0])
    metrics = {name: float(np.mean([p[name] for p in per_problem])) for name in names}
    ci = {name: list(bootstrap_ci([p[name] for p in per_problem], resamples, confidence, seed))
          for name in names}
    answered = [a is not None for s in groups.values() for _, a in s]
    return {"score": metrics["pass@1" if greedy else f"avg@{n}"], **metrics,
            "problems": len(per_problem), "samples": n, "answered": sum(answered) / len(answered),
            "ci": ci, "ci_level": confidence}


def across_seeds(values, confidence: float = 0.95) -> tuple[float | None, float | None]:
    """Mean over seeds and the half-width of its t-interval (None with fewer than two seeds)."""
    import statistics

    values = [v for v in values if v is not None]
    if not values:
        return None, None
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, None
    from scipy.stats import t

    return mean, float(t.ppf(0.5 + confidence / 2, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5)
