"""Batched local generation with transformers: the CPU default for evaluation and rollouts.

Prompts are plain texts (already through the chat template); a response
prefix (a SEELE-style hint) is simply appended to its prompt, and the
returned completion is the text *after* the prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


@dataclass
class SamplingConfig:
    """How to sample; ``temperature == 0`` means greedy."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    batch_size: int = 64
    seed: int = 0


def generate(model, tokenizer, prompts: Sequence[str], config: SamplingConfig | None = None,
             prefixes: Sequence[str] | None = None, progress=None) -> list[str]:
    """Complete every prompt (after its optional forced prefix); returns decoded new text.

    Prompts are sorted by length inside the call so batches pad little;
    ``progress`` is a callable taking the number of prompts just finished.
    """
    import torch

    config = config or SamplingConfig()
    texts = [p + (prefixes[i] if prefixes else "") for i, p in enumerate(prompts)]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: list[str] = [""] * len(texts)
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    gen = torch.Generator().manual_seed(config.seed)
    try:
        model.eval()
        for start in range(0, len(order), config.batch_size):
            idx = order[start:start + config.batch_size]
            enc = tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
            kwargs = dict(max_new_tokens=config.max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                          eos_token_id=tokenizer.eos_token_id)
            if config.temperature > 0:
                torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
                kwargs.update(do_sample=True, temperature=config.temperature, top_p=config.top_p)
            else:
                kwargs.update(do_sample=False)
            with torch.inference_mode():
                ids = model.generate(**enc, **kwargs)
            new = ids[:, enc["input_ids"].shape[1]:]
            for row, i in enumerate(idx):
                out[i] = tokenizer.decode(new[row], skip_special_tokens=True)
            if progress:
                progress(len(idx))
    finally:
        tokenizer.padding_side = side
    return out
