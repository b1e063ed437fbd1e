"""The embedded domain: step-structured problems where difficulty comes from *finding* steps.

A *world* (fixed by a seed) has named functions, each a permutation of the
integers 0..values-1. A problem is a chain of 2-6 definitions, one per line, and
asks for the last variable::

    a = zap(3)
    b such that kel(b) = a
    c = fen(b)
    What is c?

Each step of the solution restates its line and finds the value: a forward
step looks it up (``c = fen(b) = fen(4) = 8``, routine once the tables are
memorised), an inverse step searches (``b such that kel(b) = a = 6 so b = 4``).
Restating the line is a copy, so the only thing to *find* is the value.
Inverses of the *open* functions appear in the easy/medium training data;
inverses of the *hidden* ones appear only at the hard levels, and the world's
facts hold them only *half-known*: each hidden inverse is stated with
``candidates`` values, the right one among them, equally often. A base model
pretrained on the facts gets a hidden inverse step right with probability about
1/candidates, so a problem with h hidden inverses is solved about
(1/candidates)^h of the time — within reach at the top levels only with a hint
that reveals some of them, and RL on the rest sharpens the very facts the
unhinted problems need (``candidates=1``: every inverse fully known;
``candidates=values``: a pure guess). Step counts overlap across levels, so difficulty is not
sequence length, and the training levels hold as many inverse lines as the
hard ones (a base model trained on one per problem broke down, even given all
but the last step, on problems with two or three):

======  ======  ==========================================
level   steps   inverse steps
======  ======  ==========================================
1       2-6     none
2       3-6     one to three of open functions
3       3-6     one of a hidden function (+ maybe one open)
4       4-6     two of hidden functions
5       5-6     three of hidden functions
======  ======  ==========================================

The last step is always a forward step, so "all but the last step" leaves a
routine lookup. Functions are permutations, so a wrong intermediate value
always leads to a wrong answer: a guess cannot be rescued by later steps; and
no step applies a function right after inverting it (or the reverse), which
would hand back the earlier value and skip the inverse.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .records import Problem, Subproblem

NAMES = ("zap", "mip", "gop", "tur", "fen", "kel", "dax", "wub")
VARS = "abcdef"
VALUES = 20
"""Default size of the function tables (values 0..VALUES-1): a guessed inverse is right 1 time in 20."""
CANDIDATES = 2
"""Default number of values a hidden inverse is stated with in the facts: the base gets it right about 1 in 2."""
LEVELS = (1, 2, 3, 4, 5)
# level -> (min steps, max steps, hidden inverses, open inverses: a count or a (min, max) range drawn per problem)
_LEVEL_SHAPE = {1: (2, 6, 0, 0), 2: (3, 6, 0, (1, 3)), 3: (3, 6, 1, (0, 1)), 4: (4, 6, 2, 0), 5: (5, 6, 3, 0)}
HIDDEN_LEVELS = tuple(level for level, shape in _LEVEL_SHAPE.items() if shape[2])
"""Levels whose problems invert a hidden function: without a hint their answer is a guess."""


@dataclass(frozen=True)
class World:
    """The function tables every problem of one domain shares (the model's "knowledge")."""

    seed: int = 0
    n_hidden: int = 4
    values: int = VALUES
    """Every function is a permutation of 0..values-1; a guessed inverse is right 1 time in ``values``."""
    candidates: int = CANDIDATES
    """Values each hidden inverse fact is stated with (the right one among them), equally often."""
    tables: dict[str, tuple[int, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if not 1 <= self.candidates <= self.values:
            raise ValueError(f"candidates must be in 1..values ({self.values}), got {self.candidates}")
        rng = random.Random(f"world-{self.seed}")
        tables = {}
        for name in NAMES:
            perm = list(range(self.values))
            rng.shuffle(perm)
            tables[name] = tuple(perm)
        object.__setattr__(self, "tables", tables)

    def inverse_candidates(self, name: str, y: int) -> tuple[int, ...]:
        """The values a hidden inverse ``name⁻¹(y)`` is stated with in the facts: the right one and
        ``candidates − 1`` others, in a fixed order (one per world, function and value)."""
        x = self.invert(name, y)
        rng = random.Random(f"candidates-{self.seed}-{name}-{y}")
        others = rng.sample([v for v in range(self.values) if v != x], self.candidates - 1)
        out = [x, *others]
        rng.shuffle(out)
        return tuple(out)

    @property
    def hidden(self) -> tuple[str, ...]:
        """The functions whose inverses appear only at the hard levels."""
        return NAMES[len(NAMES) - self.n_hidden:]

    @property
    def open(self) -> tuple[str, ...]:
        """The functions whose inverses the base model learns."""
        return NAMES[: len(NAMES) - self.n_hidden]

    def apply(self, name: str, x: int) -> int:
        """``name(x)``."""
        return self.tables[name][x]

    def invert(self, name: str, y: int) -> int:
        """The x with ``name(x) = y``."""
        return self.tables[name].index(y)

    def facts(self, repeats: int = 1, seed: int = 0) -> list[str]:
        """The world's knowledge as step-shaped lines: every forward value and open inverse, and the hidden
        inverses half-known.

        A base model is pretrained on these (a real base model has read its
        facts somewhere too). Every repeat states each hidden inverse once with
        each of its candidates: a fact with several answers needs more
        exposure than one with a single answer before a model holds them.
        """
        rng = random.Random(f"facts-{self.seed}-{seed}")
        lines = []
        for _ in range(repeats):
            for name in NAMES:
                for x in range(self.values):
                    v, y = rng.choice(VARS), self.apply(name, x)
                    lines.append(f"{v} = {name}({x}) = {y}")
                    if name in self.open:
                        lines.append(f"{v} such that {name}({v}) = {y} so {v} = {x}")
                    elif self.candidates < self.values:
                        lines += [f"{v} such that {name}({v}) = {y} so {v} = {stated}"
                                  for stated in self.inverse_candidates(name, y)]
        rng.shuffle(lines)
        return lines

def _shape(level: int, rng: random.Random, world: World) -> list[tuple[str, bool]]:
    """The (function, inverted?) sequence of a problem at ``level``; last step forward."""
    lo, hi, n_hidden_inv, open_inv = _LEVEL_SHAPE[level]
    n = rng.randint(lo, hi)
    n_open_inv = rng.randint(*open_inv) if isinstance(open_inv, tuple) else open_inv
    n_open_inv = min(n_open_inv, n - 1 - n_hidden_inv)
    slots = rng.sample(range(n - 1), n_hidden_inv + n_open_inv)
    hidden_slots, open_slots = set(slots[:n_hidden_inv]), set(slots[n_hidden_inv:])
    steps: list[tuple[str, bool]] = []
    for i in range(n):
        inverted = i in hidden_slots or i in open_slots
        names = world.hidden if i in hidden_slots else world.open if i in open_slots else NAMES
        if steps and steps[-1][1] != inverted:  # f after its own inverse (or before it) would cancel out
            names = [name for name in names if name != steps[-1][0]]
        steps.append((rng.choice(names), inverted))
    return steps


def make_problem(world: World, level: int, rng: random.Random, index: int, split: str) -> Problem:
    """One problem with its exact steps, a plan, the knowledge it needs and its subproblem chain.

    The knowledge is the table entries the solution uses, as forward facts in
    sorted order (not the order of the steps): an inverse step still has to
    find its entry by the value, as it would in a reference text.
    """
    if level not in _LEVEL_SHAPE:
        raise ValueError(f"level must be one of {LEVELS}, got {level}")
    shape = _shape(level, rng, world)
    start = rng.randrange(world.values)
    lines, steps, plan, subs, facts = [], [], [], [], []
    prev, value = str(start), start
    for i, (name, inverted) in enumerate(shape):
        v = VARS[i]
        if inverted:
            target = value
            value = world.invert(name, target)
            facts.append(f"{name}({value}) = {target}")
            lines.append(f"{v} such that {name}({v}) = {prev}")
            given = "" if i == 0 else f" = {target}"
            steps.append(f"{lines[-1]}{given} so {v} = {value}")
            plan.append(f"{i + 1}. Find {v} by inverting {name}.")
            question = f"Find {v} such that {name}({v}) = {{x}}."
        else:
            arg = value
            value = world.apply(name, arg)
            facts.append(f"{name}({arg}) = {value}")
            lines.append(f"{v} = {name}({prev})")
            given = "" if i == 0 else f" = {name}({arg})"
            steps.append(f"{lines[-1]}{given} = {value}")
            plan.append(f"{i + 1}. Compute {v} by applying {name}.")
            question = f"What is {v} = {name}({{x}})?"
        if i == 0:
            subs.append(Subproblem(question.replace("{x}", str(start)), str(value)))
        else:
            link = f"Let {VARS[i - 1]} be the answer to Q{i}. "
            subs.append(Subproblem(link + question.replace("{x}", VARS[i - 1]), str(value)))
        prev = v
    lines.append(f"What is {VARS[len(shape) - 1]}?")
    return Problem(
        id=f"synth-{world.seed}-{split}-L{level}-{index}",
        problem="\n".join(lines),
        answer=str(value),
        steps=steps,
        plan="\n".join(plan),
        knowledge="\n".join(sorted(set(facts))),
        subproblems=subs,
        difficulty=float(level),
        source="synth",
        meta={"world_seed": world.seed, "world_values": world.values, "split": split,
              "inverse_steps": [i for i, (_, inv) in enumerate(shape) if inv],
              "hidden_inverses": sum(inv and n in world.hidden for n, inv in shape)},
    )


def generate(n: int, levels: tuple[int, ...] = LEVELS, *, seed: int = 0, world: World | None = None,
             split: str = "train", exclude: set[str] | None = None) -> list[Problem]:
    """``n`` problems per level, deterministic in (seed, split); problem texts in ``exclude`` are skipped.

    Pass the texts of another split as ``exclude`` to keep held-out problems unseen.
    """
    world = world or World()
    rng = random.Random(f"problems-{seed}-{split}")
    seen = set(exclude or ())
    out = []
    for level in levels:
        made, tries = 0, 0
        while made < n:
            tries += 1
            if tries > 50 * n + 1000:
                raise RuntimeError(f"level {level}: cannot find {n} distinct problems outside 'exclude'")
            p = make_problem(world, level, rng, made, split)
            if p.problem in seen:
                continue
            seen.add(p.problem)
            out.append(p)
            made += 1
    return out
