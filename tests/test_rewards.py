import inspect
from concurrent.futures import ThreadPoolExecutor

import pytest

from scaffoldrl.prompts import THINK_OPEN, sparkle_user_turn
from scaffoldrl.rewards import (compute_score, compute_score_sparkle_aug, correctness_reward, format_reward,
                                sparkle_aug_reward, sparkle_format_ok, sparkle_reward, think_opened)

GOOD = "<think>\n2 + 2 = 4\n</think>\n<answer>\nThe answer is \\boxed{4}.\n</answer>"
PLAIN_PROMPT = sparkle_user_turn("What is 2 + 2?")
OPENED_PROMPT = PLAIN_PROMPT + " " + THINK_OPEN + "First, 2 + 2 = 4."


def test_correctness_reward_takes_text_or_messages_and_trl_kwargs():
    completions = ["\\boxed{\\frac{2}{4}}", [{"role": "assistant", "content": "The answer is 1,000."}], "no idea"]
    rewards = correctness_reward(prompts=["p"] * 3, completions=completions, completion_ids=[[1]] * 3,
                                 answer=["\\frac12", "1000", "3"], trainer_state=None)
    assert rewards == [1.0, 1.0, 0.0]


@pytest.mark.parametrize("completion, reward", [
    (GOOD, 2.0),
    ("2 + 2 is \\boxed{4}", 1.0),  # correct, no tags
    (GOOD.replace("The answer is \\boxed{4}.", "4"), 1.0),  # correct, no box in the answer block
    (GOOD.replace("<think>", "<think><think>"), 1.0),  # a tag twice
    ("<answer>\\boxed{4}</answer><think>x</think>", 1.0),  # out of order
    (GOOD.replace("\\boxed{4}", "\\boxed{5}"), -1.0),
    ("<think>hmm</think><answer>I don't know.</answer>", 0.0),
    ("<think>hmm</think><answer>\\boxed{\\text{cannot be determined}}</answer>", 0.0),
    ("hmm, no answer", -1.0),
])
def test_sparkle_reward(completion, reward):
    assert sparkle_reward([completion], answer=["4"]) == [reward]


def test_sparkle_aug_excuses_a_think_opened_by_the_prompt():
    completion = GOOD.removeprefix("<think>")
    assert think_opened(OPENED_PROMPT) and not think_opened(PLAIN_PROMPT)
    assert sparkle_aug_reward([completion] * 2, answer=["4"] * 2, prompts=[OPENED_PROMPT, PLAIN_PROMPT]) == [2.0, 1.0]
    assert sparkle_aug_reward([completion], answer=["4"]) == [2.0]  # no prompts: augmented rows assumed
    assert sparkle_aug_reward([GOOD], answer=["4"], prompts=[[{"role": "user", "content": OPENED_PROMPT}]]) == [2.0]
    assert sparkle_reward([completion], answer=["4"]) == [1.0]


def test_format_reward():
    assert format_reward([GOOD, "\\boxed{4}", GOOD.removeprefix("<think>")]) == [1.0, 0.0, 0.0]
    assert format_reward([GOOD.removeprefix("<think>")], prompts=[OPENED_PROMPT]) == [1.0]
    assert not sparkle_format_ok("<think></think><answer>4</answer>")


def test_compute_score_from_a_thread_pool_as_verl_calls_it():
    assert list(inspect.signature(compute_score).parameters) == ["data_source", "solution_str", "ground_truth",
                                                                 "extra_info"]
    jobs = [("math", f"\\boxed{{\\frac{{{i}}}{{4}}}}", str(i / 4), {"index": i}) for i in range(16)]
    jobs.append(("math", "no answer", "3", None))
    with ThreadPoolExecutor(8) as pool:
        scores = list(pool.map(lambda job: compute_score(*job), jobs))
    assert scores[:16] == [{"score": 1.0, "acc": 1.0, "extracted": f"\\frac{{{i}}}{{4}}"} for i in range(16)]
    assert scores[16] == {"score": 0.0, "acc": 0.0, "extracted": ""}


def test_compute_score_sparkle_aug_reads_the_prompt_from_extra_info():
    completion = GOOD.removeprefix("<think>")
    assert compute_score_sparkle_aug("math", completion, "4", {"prompt": OPENED_PROMPT})["score"] == 2.0
    assert compute_score_sparkle_aug("math", completion, "4", {"prompt": PLAIN_PROMPT})["score"] == 1.0
