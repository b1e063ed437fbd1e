import numpy as np
import pytest

from scaffoldrl.methods.seele import (AdaptiveConfig, Seele, ThreePL, cold_start_rate, fit_points,
                                      fit_three_pl, next_rate)
from scaffoldrl.hints import HINTED, ON_POLICY, Reference
from scaffoldrl.records import Problem

TRUE = ThreePL(k=8.0, mu=-0.6, b=0.1)
RATES = np.linspace(0.0, 1.0, 9)


def ref(n_steps=5, pid="q"):
    return Reference(Problem(id=pid, problem="?", answer="1", steps=[f"s{i}" for i in range(n_steps)]))


def test_three_pl_formula_and_inverse():
    assert TRUE(0.6) == pytest.approx(0.1 + 0.9 / 2)  # −μ is the midpoint
    for target in (0.25, 0.5, 0.75):
        assert TRUE(TRUE.inverse(target)) == pytest.approx(target)


def test_fit_recovers_noiseless_parameters():
    curve = fit_three_pl(RATES, TRUE(RATES))
    assert (curve.k, curve.mu, curve.b) == pytest.approx((8.0, -0.6, 0.1), abs=1e-4)


def test_fit_brackets_parameters_from_binomial_samples():
    fits = [fit_three_pl(RATES, np.random.default_rng(s).binomial(32, TRUE(RATES)) / 32) for s in range(30)]
    for name in ("k", "mu", "b"):
        lo, hi = np.percentile([getattr(c, name) for c in fits], [10, 90])
        assert lo < getattr(TRUE, name) < hi, name
    rates = [next_rate(c, 0.5) for c in fits]
    assert abs(np.median(rates) - TRUE.inverse(0.5)) < 0.05
    for c, p in zip(fits, rates):  # the chosen rate hits a* on each fitted curve
        assert c(p) == pytest.approx(0.5, abs=1e-9)


def test_next_rate_clips_and_gives_up_on_high_floors():
    assert next_rate(ThreePL(k=8.0, mu=-1.5, b=0.0), 0.5) == 1.0   # midpoint past the whole solution
    assert next_rate(ThreePL(k=8.0, mu=0.5, b=0.0), 0.5) == 0.0    # solved without hints
    assert next_rate(ThreePL(k=8.0, mu=-1.5, b=0.5), 0.5) == 0.0   # b ≥ a*: floor already there
    assert next_rate(ThreePL(k=8.0, mu=-1.5, b=0.6), 0.5) == 0.0
    # a floor below a* lowers the rate needed: 0.9 + ln(0.1/0.5)/8
    assert next_rate(ThreePL(k=8.0, mu=-0.9, b=0.4), 0.5) == pytest.approx(0.9 + np.log(0.2) / 8)


def test_fit_points_average_repeats_and_anchor_untried_ends():
    x, y = fit_points([0.5, 0.5, 0.25], [0.0, 1.0, 0.25])
    assert x.tolist() == [0.0, 0.25, 0.5, 1.0] and y.tolist() == [0.0, 0.25, 0.5, 1.0]
    x, y = fit_points([0.0, 1.0], [0.5, 0.75])
    assert x.tolist() == [0.0, 1.0] and y.tolist() == [0.5, 0.75]  # tried ends are not overridden
    assert fit_points([0.5], [0.5], anchors=False)[0].tolist() == [0.5]


def test_cold_start_is_all_but_the_last_step():
    assert cold_start_rate(5) == 0.8 and cold_start_rate(1) == 0.0 and cold_start_rate(0) == 0.0
    policy = Seele()
    plans = policy.plan(ref(5), step=0, round=0, n=8)
    assert len(plans) == 8 and {(p.kind, p.units, p.rate) for p in plans} == {(HINTED, 4, 0.8)}
    assert policy.plan(ref(1, pid="one-step"), 0, 0, 2)[0].kind == ON_POLICY


def simulate_step(policy, questions, rng, rounds=4, n=16):
    """One training step: m rounds of n rollouts per question, accuracy drawn from its true curve."""
    for q, curve in questions:
        for r in range(rounds):
            plan = policy.plan(q, step=0, round=r, n=n)[0]
            policy.observe(q.id, plan.rate, rng.binomial(n, curve(plan.rate)) / n)
    return policy.end_step()


def test_controller_steers_accuracy_to_target():
    rng = np.random.default_rng(0)
    mids = (0.2, 0.35, 0.5, 0.65, 0.8)
    questions = [(ref(10, pid=f"q{i}"), ThreePL(k=10.0, mu=-m, b=0.0)) for i, m in enumerate(mids)]
    policy = Seele(AdaptiveConfig(target=0.5))
    gaps = []
    for _ in range(5):
        stats = simulate_step(policy, questions, rng)
        gaps.append(stats.target_gap)
        assert stats.target_gap == pytest.approx(abs(stats.mean_accuracy - 0.5))
        assert len(stats.round_accuracy) == 4 and stats.questions == len(mids)
    assert gaps[0] > 0.2  # the cold start (90% of the solution) overshoots ...
    assert np.mean(gaps[1:]) < 0.15  # ... and the refits bring accuracy to a*
    for q, curve in questions:  # each question's rate sits near its own curve's inverse
        assert abs(policy.rates[q.id] - curve.inverse(0.5)) < 0.2


def test_observations_reset_each_step_and_final_rate_starts_next_visit():
    q = ref(10)
    policy = Seele()
    simulate_step(policy, [(q, TRUE)], np.random.default_rng(1))
    final = policy.rates[q.id]
    assert policy.observations == {}
    assert policy.plan(q, step=1, round=0, n=1)[0].units == q.units_for(final)
    # the next step's fit sees only its own points: same rate as a fresh controller given them
    policy.observe(q.id, 0.3, 0.25)
    fresh = Seele()
    fresh.observe(q.id, 0.3, 0.25)
    assert policy.rates[q.id] == fresh.rates[q.id] == next_rate(fit_three_pl([0.3], [0.25]), 0.5)


def test_state_round_trip_resumes_the_same_rates(tmp_path):
    rng = np.random.default_rng(2)
    policy = Seele()
    questions = [ref(6, pid=f"q{i}") for i in range(3)]
    simulate_step(policy, [(q, ThreePL(k=6.0, mu=-0.4, b=0.05)) for q in questions], rng)
    path = policy.save_state(tmp_path / "ckpt" / "hint_state.json")
    resumed = Seele()
    resumed.load_state(path)
    assert resumed.rates == policy.rates and len(resumed.rates) == 3
    for q in questions:
        assert resumed.plan(q, 5, 0, 4) == policy.plan(q, 5, 0, 4)
