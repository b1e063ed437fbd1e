from collections import Counter
from itertools import combinations
from math import comb

import numpy as np
import pytest

from scaffoldrl.metrics import avg_at_n, bootstrap_ci, default_ks, maj_at_k, pass_at_k, summarize


def cases(count=250, max_n=9, seed=0):
    """Random small problems: (answers, correct) with repeated wrong answers and abstentions."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        n = int(rng.integers(1, max_n + 1))
        correct = list(rng.random(n) < rng.random())
        answers = ["gold" if c else rng.choice(["a", "b", "c", None]) for c in correct]
        yield answers, correct, int(rng.integers(1, n + 1))


def brute_pass(correct, k):
    subsets = list(combinations(correct, k))
    return sum(any(s) for s in subsets) / len(subsets)


def brute_avg(correct, k):
    subsets = list(combinations(correct, k))
    return sum(sum(s) / k for s in subsets) / len(subsets)


def brute_maj(answers, correct, k):
    """Majority vote on every k-subset; ties split the credit evenly; no answer abstains."""
    total = 0.0
    for subset in combinations(range(len(answers)), k):
        votes = Counter("CORRECT" if correct[i] else answers[i] for i in subset
                        if correct[i] or answers[i] is not None)
        if votes:
            top = max(votes.values())
            winners = [a for a, v in votes.items() if v == top]
            total += ("CORRECT" in winners) / len(winners)
    return total / comb(len(answers), k)


def test_pass_at_k_equals_brute_force_over_all_k_subsets():
    for _, correct, k in cases():
        assert pass_at_k(len(correct), sum(correct), k) == pytest.approx(brute_pass(correct, k), abs=1e-12)


def test_avg_is_the_mean_over_k_subsets_for_every_k():
    for _, correct, _ in cases(60):
        for k in range(1, len(correct) + 1):
            assert avg_at_n(correct) == pytest.approx(brute_avg(correct, k), abs=1e-12)


def test_maj_at_k_equals_brute_force_ties_and_abstentions_included():
    for answers, correct, k in cases():
        assert maj_at_k(answers, correct, k) == pytest.approx(brute_maj(answers, correct, k), abs=1e-12)


def test_maj_at_k_ties_by_hand():
    assert maj_at_k(["g", "g", "a", "a"], [True, True, False, False], 4) == 0.5
    assert maj_at_k(["g", "a", "b"], [True, False, False], 3) == pytest.approx(1 / 3)
    assert maj_at_k(["g", None, None], [True, False, False], 3) == 1.0  # abstentions do not vote
    assert maj_at_k([None, None], [False, False], 2) == 0.0
    # two correct answers written differently still vote together
    assert maj_at_k(["1/2", "0.5", "3"], [True, True, False], 3) == 1.0


def test_pass_at_k_limits_and_errors():
    assert pass_at_k(10, 0, 5) == 0.0
    assert pass_at_k(10, 6, 5) == 1.0  # fewer than k wrong samples
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(200, 1, 100) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 5)


def test_default_ks():
    assert default_ks(1) == [1]
    assert default_ks(8) == [1, 2, 4, 8]
    assert default_ks(32) == [1, 2, 4, 8, 16, 32]
    assert default_ks(12) == [1, 2, 4, 8, 12]


def test_bootstrap_interval_brackets_the_mean_and_narrows_with_more_problems():
    rng = np.random.default_rng(1)
    small, large = rng.random(30) < 0.4, rng.random(3000) < 0.4
    lo, hi = bootstrap_ci(small)
    assert lo < small.mean() < hi
    lo2, hi2 = bootstrap_ci(large)
    assert lo2 < large.mean() < hi2 and hi2 - lo2 < (hi - lo) / 5
    assert bootstrap_ci(small, seed=3) == bootstrap_ci(small, seed=3)
    assert bootstrap_ci([1.0] * 5) == (1.0, 1.0)


def test_summarize_greedy_and_sampled():
    greedy = summarize({"p1": [(True, "1")], "p2": [(False, "7")], "p3": [(False, None)]}, greedy=True)
    assert greedy["score"] == greedy["pass@1"] == pytest.approx(1 / 3)
    assert {"maj@2", "avg@1"}.isdisjoint(greedy) and greedy["answered"] == pytest.approx(2 / 3)
    groups = {"p1": [(True, "4"), (False, "5"), (True, "4"), (False, "5")],
              "p2": [(False, "1"), (False, "1"), (False, "2"), (True, "3")]}
    s = summarize(groups)
    assert s["score"] == s["avg@4"] == pytest.approx(3 / 8)
    assert s["pass@4"] == 1.0 and s["pass@1"] == pytest.approx(3 / 8)
    assert s["pass@2"] == pytest.approx((brute_pass([1, 0, 1, 0], 2) + brute_pass([0, 0, 0, 1], 2)) / 2)
    assert s["maj@4"] == pytest.approx((0.5 + 0.0) / 2)
    assert s["ci"]["avg@4"][0] <= s["avg@4"] <= s["ci"]["avg@4"][1]
    with pytest.raises(ValueError, match="same number"):
        summarize({"p1": [(True, "1")], "p2": [(True, "1"), (False, "2")]})
