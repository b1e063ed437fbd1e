"""The prompt strings of the seeds, verbatim, and how a prompt is put together.

SPARKLE's prompt is one user turn: the instruction, then
``"\\n\\nUser: {question} Assistant:"``; the model's chat template wraps it.
A prompt-side hint (SPARKLE PSS) is appended after ``" Assistant: <think>\\n"``.
"""

from __future__ import annotations

SPARKLE_INSTRUCTION = (
    "A conversation between User and Assistant. The user asks a math question, and the Assistant "
    "solves it step by step. The Assistant first thinks about the complete reasoning process in the "
    "mind enclosed within <think> </think> tags. Then the Assistant provides a clear, concise answer "
    "to the user within <answer> </answer> tags, with the final result enclosed in \\boxed{} notation."
    "\n\nFor example:\n<think>\nreasoning process here\n</think>\n<answer>\nThe answer is \\boxed{...}.\n</answer>"
)

PLAN_HINT = (
    "Consider the following planning skeleton to guide your reasoning. You may adapt or extend this "
    "outline as needed based on your analysis of the problem:"
)

KNOWLEDGE_HINT = (
    "The following is a reference knowledge base for concepts you might not be familiar with. If you "
    "already understand these concepts, you don't need to rely on this information. Otherwise, you can "
    "refer to this as needed:"
)

THINK_OPEN = "<think>\n"


def sparkle_user_turn(question: str, hint: str | None = None) -> str:
    """SPARKLE's single user message for ``question``; a prompt-side ``hint`` opens the thinking after it."""
    turn = f"{SPARKLE_INSTRUCTION}\n\nUser: {question} Assistant:"
    return turn if hint is None else f"{turn} {THINK_OPEN}{hint}"


def chat_prompt(turn: str, tokenizer=None) -> str:
    """One user turn through the tokenizer's chat template (with the generation prompt), if it has one."""
    if tokenizer is None or getattr(tokenizer, "chat_template", None) is None:
        return turn
    return tokenizer.apply_chat_template([{"role": "user", "content": turn}], tokenize=False,
                                         add_generation_prompt=True)


def sparkle_prompt(question: str, tokenizer=None, hint: str | None = None) -> str:
    """The full prompt text: the user turn, through the chat template when a tokenizer has one."""
    return chat_prompt(sparkle_user_turn(question, hint), tokenizer)


def reference_response(steps: list[str], answer: str) -> str:
    """A reference solution as the response every reward expects: steps in <think>, the boxed answer in <answer>.

    SFT trains on it and LUFFY forces it as an off-policy trace.
    """
    body = "\n".join(steps)
    return f"{THINK_OPEN}{body}\n</think>\n<answer>\nThe answer is \\boxed{{{answer}}}.\n</answer>"


def with_plan(question: str, plan: str) -> str:
    """SPARKLE's plan condition: the question, its sentence, then the plan."""
    return f"{question}\n\n{PLAN_HINT}\n{plan}"


def with_knowledge(question: str, knowledge: str) -> str:
    """SPARKLE's knowledge condition: the question, its sentence, then the knowledge."""
    return f"{question}\n\n{KNOWLEDGE_HINT}\n{knowledge}"
