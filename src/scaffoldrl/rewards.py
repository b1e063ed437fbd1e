"""Reward functions, all graded by the one shared grader (:func:`scaffoldrl.verify.get_grader`).

Each is a TRL reward function: ``f(completions, **columns) -> list[float | None]``
with the gold answer in the ``answer`` column (None marks a row that could not
be graded). ``extraction`` (``default`` or ``strict``: answer tags and boxes only,
:func:`scaffoldrl.extract.find_answer`) overrides the shared grader's. :func:`verl_score` turns any of them into a veRL
``compute_score(data_source, solution_str, ground_truth, extra_info)``.
"""

from __future__ import annotations

import re
from typing import Callable, Sequence

from .extract import answer_block
from .verify import Verdict, completion_text, get_grader

FORMAT_TAGS = ("<think>", "</think>", "<answer>", "</answer>")

# An answer that admits not knowing earns 0 under SPARKLE's reward, not -1.
UNCERTAIN = re.compile(
    r"\b(?:i\s+(?:do\s+not|don'?t)\s+know|not\s+sure|unsure|(?:can\s*not|can'?t|unable\s+to)\s+(?:be\s+)?determined?"
    r"|(?:insufficient|not\s+enough)\s+information|undeterminable|indeterminable)\b", re.I)


def _verdicts(completions: Sequence, answer: Sequence, extraction: str | None = None) -> list[Verdict]:
    texts = [completion_text(c) for c in completions]
    return get_grader().grade_batch(list(zip(texts, map(str, answer))), extraction=extraction)


def think_opened(prompt) -> bool:
    """True when the prompt leaves a ``<think>`` open (a SPARKLE-augmented row, or a thinking template)."""
    text = completion_text(prompt)
    return text.count(FORMAT_TAGS[0]) > text.count(FORMAT_TAGS[1])


def sparkle_format_ok(text: str, opened: bool = False) -> bool:
    """SPARKLE's format: each tag exactly once and in order, with ``\\boxed{`` inside the answer.

    With ``opened`` (the prompt already opened ``<think>``) the response need not open it again.
    """
    if opened and FORMAT_TAGS[0] not in text:
        text = FORMAT_TAGS[0] + text
    if any(text.count(tag) != 1 for tag in FORMAT_TAGS):
        return False
    positions = [text.index(tag) for tag in FORMAT_TAGS]
    answer = text[positions[2] : positions[3]]
    return positions == sorted(positions) and "\\boxed{" in answer


def _opened_flags(prompts, n: int, default: bool) -> list[bool]:
    return [default] * n if prompts is None else [think_opened(p) for p in prompts]


def correctness_reward(completions, answer, extraction: str | None = None, **kwargs) -> list[float | None]:
    """1.0 for a correct final answer, 0.0 otherwise (None if it could not be graded)."""
    return [None if v.correct is None else float(v.correct) for v in _verdicts(completions, answer, extraction)]


def _sparkle(text: str, verdict: Verdict, opened: bool) -> float | None:
    if verdict.correct is None:
        return None
    if verdict.correct:
        return 2.0 if sparkle_format_ok(text, opened) else 1.0
    said = verdict.extracted or answer_block(text)  # an answer block math-verify found no answer in
    if said and UNCERTAIN.search(said):
        return 0.0
    return -1.0


def sparkle_reward(completions, answer, extraction: str | None = None, **kwargs) -> list[float | None]:
    """SPARKLE's ``spk_h``: 2 correct and well formatted, 1 correct, 0 an admitted "don't know", -1 wrong."""
    verdicts = _verdicts(completions, answer, extraction)
    return [_sparkle(completion_text(c), v, False) for c, v in zip(completions, verdicts)]


def sparkle_aug_reward(completions, answer, prompts=None, extraction: str | None = None,
                       **kwargs) -> list[float | None]:
    """SPARKLE's ``spk_h_aug``: ``spk_h`` where a prompt that opened ``<think>`` excuses its absence.

    Without ``prompts`` every row is taken as opened (the augmented rows this variant is for).
    """
    verdicts = _verdicts(completions, answer, extraction)
    opened = _opened_flags(prompts, len(completions), default=True)
    return [_sparkle(completion_text(c), v, o) for c, v, o in zip(completions, verdicts, opened)]


def format_reward(completions, prompts=None, **kwargs) -> list[float]:
    """1.0 when the completion follows SPARKLE's format (honouring a ``<think>`` opened in the prompt)."""
    opened = _opened_flags(prompts, len(completions), default=False)
    return [float(sparkle_format_ok(completion_text(c), o)) for c, o in zip(completions, opened)]


def verl_score(reward_fn: Callable, extraction: str | None = None) -> Callable:
    """A veRL ``compute_score`` for a TRL-style reward function.

    ``extra_info["prompt"]``, when present, reaches the reward as its prompt.
    An ungradeable row scores 0.0 (veRL needs a number). ``extracted`` is ""
    when no answer was found, so that veRL's metrics skip the column. ``extraction``
    (``default`` or ``strict``) overrides the shared grader's.
    """

    def compute_score(data_source, solution_str, ground_truth, extra_info=None) -> dict:
        prompt = (extra_info or {}).get("prompt")
        prompts = None if prompt is None else [prompt]
        keyword = {} if extraction is None else {"extraction": extraction}
        score = reward_fn([solution_str], answer=[ground_truth], prompts=prompts, **keyword)[0]
        verdict = get_grader().grade(solution_str, str(ground_truth), extraction=extraction)  # usually a cache hit
        return {"score": 0.0 if score is None else float(score), "acc": float(verdict.correct is True),
                "extracted": verdict.extracted or ""}

    compute_score.__name__ = f"compute_score_{reward_fn.__name__}"
    compute_score.__doc__ = f"veRL's ``compute_score`` for :func:`{reward_fn.__name__}`: a dict with score, acc, extracted."
    return compute_score


compute_score = verl_score(correctness_reward)
compute_score_sparkle = verl_score(sparkle_reward)
compute_score_sparkle_aug = verl_score(sparkle_aug_reward)
compute_score_format = verl_score(format_reward)
