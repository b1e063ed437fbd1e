"""The baselines' rollout plans and loss pieces against hand-computed values (their runs through TRL: test_trainer.py)."""

import math

import numpy as np
import pytest
import torch

from scaffoldrl.methods.base import cosine_schedule
from scaffoldrl.methods.luffy import Luffy, shaped_ratio
from scaffoldrl.methods.prefix_rft import PrefixRFT
from scaffoldrl.methods.uft import UFT
from scaffoldrl.hints import HINTED, OFF_POLICY, ON_POLICY, Reference
from scaffoldrl.records import Problem


def reference(n_steps=6, pid="p1"):
    steps = [f"Step {i}: x{i} = {i * i}." for i in range(1, n_steps + 1)]
    return Reference(Problem(id=pid, problem="Find x.", answer="1", steps=steps))


def test_cosine_schedule_end_points():
    assert cosine_schedule(0, 10, 0.95, 0.05) == pytest.approx(0.95)
    assert cosine_schedule(5, 10, 0.95, 0.05) == pytest.approx(0.5)  # halfway: the mean of the ends
    assert cosine_schedule(10, 10, 0.95, 0.05) == pytest.approx(0.05)
    assert cosine_schedule(25, 10, 0.95, 0.05) == pytest.approx(0.05)  # held after the horizon
    prefix = PrefixRFT(0.95, 0.05, decay_steps=100)
    assert (prefix.fraction(0), prefix.fraction(100)) == pytest.approx((0.95, 0.05))
    uft = UFT(0.9, 0.1, hint_steps=10)
    # p(t) = p_low + (p_high - p_low)/2 * (1 + cos(pi (t + 1) / T_hint)) for t < T_hint, else 0
    assert uft.rate(0) == pytest.approx(0.1 + 0.4 * (1 + math.cos(math.pi / 10)))
    assert uft.rate(9) == pytest.approx(0.1)  # p_low at the last hinted step
    assert uft.rate(10) == uft.rate(500) == 0.0


def test_uft_hint_lengths_are_binomial():
    """At p = 0.5 over L = 6 steps, 20,000 draws have mean L·p = 3 and variance L·p(1 − p) = 1.5."""
    uft, ref = UFT(0.9, 0.1, hint_steps=10), reference(6)
    assert uft.rate(4) == pytest.approx(0.5)  # cos(pi/2) = 0
    plans = uft.plan(ref, step=4, round=0, n=20_000)
    units = np.array([p.units for p in plans])
    assert units.mean() == pytest.approx(3.0, abs=0.03)  # standard error 0.009
    assert units.var() == pytest.approx(1.5, abs=0.05)
    assert set(units) == set(range(7))
    assert all(p.kind == (HINTED if p.units else ON_POLICY) and p.rate == p.units / 6 for p in plans[:50])
    assert uft.plan(ref, 4, 0, 50) == plans[:50]  # seeded: a resumed run draws the same lengths
    assert uft.plan(reference(6, "p2"), 4, 0, 50) != plans[:50]
    assert {p.kind for p in uft.plan(ref, step=10, round=0, n=100)} == {ON_POLICY}  # no hints after T_hint


def test_shaped_ratio_value_and_gradient():
    """f(π) = π/(π + 0.1) and df/dlog π = 0.1·π/(π + 0.1)², at π = 0.3 and 0.9."""
    logps = torch.log(torch.tensor([0.3, 0.9])).requires_grad_()
    shaped = shaped_ratio(logps, 0.1)
    assert shaped.tolist() == pytest.approx([0.75, 0.9])
    shaped.sum().backward()
    assert logps.grad.tolist() == pytest.approx([0.1 * 0.3 / 0.16, 0.1 * 0.9 / 1.0])  # 0.1875, 0.09


def test_luffy_and_prefix_rft_replace_the_last_rollouts_of_a_group():
    ref = reference(6)
    luffy = Luffy(2).plan(ref, step=0, round=0, n=8)
    assert [p.kind for p in luffy] == [ON_POLICY] * 6 + [OFF_POLICY] * 2 and luffy[-1].units == 6
    prefix = PrefixRFT(0.95, 0.05, decay_steps=10, prefixed=2)
    first, last = prefix.plan(ref, 0, 0, 8), prefix.plan(ref, 10, 0, 8)
    assert [p.units for p in first] == [0] * 6 + [ref.units_for(0.95)] * 2 == [0] * 6 + [6, 6]
    assert [p.units for p in last] == [0] * 8  # 5% of 6 steps rounds to none
    with pytest.raises(ValueError, match="no on-policy"):
        Luffy(4).plan(ref, 0, 0, 4)
    with pytest.raises(ValueError, match="at least one"):
        PrefixRFT(0.95, 0.05, 10, prefixed=0)
