"""Text generation behind one interface: local transformers, vLLM offline, or an OpenAI-compatible server.

Prompts are plain texts; :meth:`Backend.render` puts a user turn through the
model's chat template where the backend has the tokenizer (a server known only
by name gets the bare turn as a chat message and applies its own template).
Sampling is reproducible *per prompt*: each prompt carries its own seed, so a
sample does not depend on which other prompts share its batch. That is what
lets an interrupted evaluation resume to exactly the results of an
uninterrupted one.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from .prompts import chat_prompt


@dataclass
class SamplingConfig:
    """How to sample; ``temperature == 0`` means greedy."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    batch_size: int = 64
    """Prompts per forward batch (local); samples generated and saved together (evaluation)."""
    seed: int = 0
    """Seeds the prompts that are given no seed of their own."""


def sample_seed(*parts) -> int:
    """A stable 31-bit seed from printable parts (``hash()`` changes between Python runs)."""
    return int.from_bytes(hashlib.blake2b(repr(parts).encode(), digest_size=4).digest(), "big") >> 1


def _row_sampler(seeds: Sequence[int], temperature: float, top_p: float):
    """A logits processor that makes greedy decoding draw a sample, each row from its own generator.

    Temperature and top-p (transformers' own warpers) shape the scores; adding
    Gumbel noise then makes the argmax an exact draw from that distribution.
    Row i's t-th token always uses the t-th draw of generator i, whatever the
    batch around it.
    """
    import torch
    from transformers import LogitsProcessor, TemperatureLogitsWarper, TopPLogitsWarper

    warpers = [TemperatureLogitsWarper(temperature)] + ([TopPLogitsWarper(top_p)] if top_p < 1.0 else [])
    generators = [torch.Generator().manual_seed(int(s)) for s in seeds]

    class RowSampler(LogitsProcessor):
        def __call__(self, input_ids, scores):
            for warp in warpers:
                scores = warp(input_ids, scores)
            u = torch.stack([torch.rand(scores.shape[-1], generator=g, dtype=torch.float64) for g in generators])
            gumbel = -torch.log(-torch.log(u.clamp_min(1e-300)))
            return scores + gumbel.to(scores.device, scores.dtype)

    return RowSampler()


def _stop_ids(model, tokenizer) -> list[int]:
    """The tokenizer's end token and the model's own (a chat model may end turns with another)."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    own = model.generation_config.eos_token_id
    ids.update(own if isinstance(own, list) else [own] if own is not None else [])
    return sorted(ids)


def generate(model, tokenizer, prompts: Sequence[str], config: SamplingConfig | None = None,
             prefixes: Sequence[str] | None = None, progress: Callable[[int], None] | None = None,
             seeds: Sequence[int] | None = None) -> list[str]:
    """Complete every prompt (after its optional forced prefix); returns decoded new text.

    Only ``config``'s settings shape the output: the model's own generation
    defaults (a repetition penalty, top-k) are not applied. ``seeds`` gives
    each prompt its sampling seed (default: from ``config.seed`` and the
    prompt's position). Prompts are sorted by length inside the call so
    batches pad little; ``progress`` is a callable taking the number of
    prompts just finished.
    """
    import torch
    from transformers import GenerationConfig, LogitsProcessorList

    config = config or SamplingConfig()
    texts = [p + (prefixes[i] if prefixes else "") for i, p in enumerate(prompts)]
    seeds = list(seeds) if seeds is not None else [sample_seed(config.seed, i) for i in range(len(texts))]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: list[str] = [""] * len(texts)
    gen_config = GenerationConfig(max_new_tokens=config.max_new_tokens, do_sample=False, repetition_penalty=1.0,
                                  eos_token_id=_stop_ids(model, tokenizer),
                                  pad_token_id=tokenizer.pad_token_id)
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        model.eval()
        for start in range(0, len(order), config.batch_size):
            idx = order[start:start + config.batch_size]
            enc = tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True,
                            add_special_tokens=False).to(model.device)
            processors = None
            if config.temperature > 0:
                processors = LogitsProcessorList([_row_sampler([seeds[i] for i in idx], config.temperature,
                                                               config.top_p)])
            with torch.inference_mode():
                ids = model.generate(**enc, generation_config=gen_config, logits_processor=processors)
            new = ids[:, enc["input_ids"].shape[1]:]
            for row, i in enumerate(idx):
                out[i] = tokenizer.decode(new[row], skip_special_tokens=True)
            if progress:
                progress(len(idx))
    finally:
        tokenizer.padding_side = side
    return out


class BackendUnavailable(RuntimeError):
    """A backend whose package or server is missing; the message says what to install or start."""


class Backend:
    """What evaluation needs from a generator: render a user turn, complete prompts with per-prompt seeds."""

    name = "backend"
    tokenizer = None

    def render(self, turn: str) -> str:
        """A user turn as the prompt text this backend completes (through the chat template when it has one)."""
        return chat_prompt(turn, self.tokenizer)

    def generate(self, prompts: Sequence[str], config: SamplingConfig, seeds: Sequence[int],
                 progress: Callable[[int], None] | None = None) -> list[str]:
        """One completion per prompt, prompt i sampled with ``seeds[i]``; ``progress(k)`` after k more are done."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the backend holds (a vLLM engine, a client's connections)."""


class TransformersBackend(Backend):
    """A local model through :func:`generate`; ``model`` is a path, a hub name in the local cache, or a model."""

    name = "transformers"

    def __init__(self, model, tokenizer=None):
        if isinstance(model, (str, Path)):
            from .tinymodel import load

            model, tokenizer = load(model, dtype="auto")
            import torch

            if torch.cuda.is_available():
                model = model.to("cuda")
        if tokenizer is None:
            raise ValueError("a loaded model needs its tokenizer")
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.model, self.tokenizer = model, tokenizer

    def generate(self, prompts, config, seeds, progress=None):
        return generate(self.model, self.tokenizer, prompts, config, progress=progress, seeds=seeds)


class VLLMBackend(Backend):
    """vLLM's offline engine; prompts go in as token ids so no extra BOS is added (as locally)."""

    name = "vllm"

    def __init__(self, model, **engine_kwargs):
        try:
            from vllm import LLM
        except ImportError:
            raise BackendUnavailable("vLLM is not installed: pip install vllm (it needs a GPU)") from None
        self.llm = LLM(model=str(model), **engine_kwargs)
        self.tokenizer = self.llm.get_tokenizer()

    def generate(self, prompts, config, seeds, progress=None):
        from vllm import SamplingParams

        greedy = config.temperature <= 0
        params = [SamplingParams(temperature=0.0 if greedy else config.temperature,
                                 top_p=1.0 if greedy else config.top_p, max_tokens=config.max_new_tokens,
                                 seed=None if greedy else int(s)) for s in seeds]
        inputs = [{"prompt_token_ids": self.tokenizer(p, add_special_tokens=False)["input_ids"]} for p in prompts]
        outputs = self.llm.generate(inputs, params, use_tqdm=False)
        if progress:
            progress(len(prompts))
        return [o.outputs[0].text for o in outputs]

    def close(self) -> None:
        del self.llm


class OpenAIBackend(Backend):
    """Any OpenAI-compatible server (vLLM, SGLang, ``transformers serve``), one request per sample.

    With a ``tokenizer`` the prompt is rendered here and sent to the text
    completions endpoint, so server and local runs see the very same text;
    without one the bare user turn goes to the chat endpoint. Each request
    carries the sample's seed; whether a server honours it is up to the server.
    """

    name = "openai"

    def __init__(self, base_url: str, model: str, tokenizer=None, api_key: str | None = None,
                 concurrency: int = 8, timeout: float = 600.0):
        try:
            import openai
        except ImportError:
            raise BackendUnavailable("the OpenAI client is not installed: pip install openai") from None
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key or os.environ.get("OPENAI_API_KEY", "EMPTY"),
                                    timeout=timeout)
        self.model, self.tokenizer, self.concurrency = model, tokenizer, concurrency

    def _one(self, prompt: str, config: SamplingConfig, seed: int) -> str:
        greedy = config.temperature <= 0
        args = dict(model=self.model, max_tokens=config.max_new_tokens, temperature=max(config.temperature, 0.0),
                    top_p=1.0 if greedy else config.top_p, seed=int(seed))
        if self.tokenizer is not None:
            return self.client.completions.create(prompt=prompt, **args).choices[0].text
        reply = self.client.chat.completions.create(messages=[{"role": "user", "content": prompt}], **args)
        return reply.choices[0].message.content or ""

    def generate(self, prompts, config, seeds, progress=None):
        def run(i: int) -> str:
            text = self._one(prompts[i], config, seeds[i])
            if progress:
                progress(1)
            return text

        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(run, range(len(prompts))))

    def close(self) -> None:
        self.client.close()


def load_backend(model: str | Path, backend: str = "auto", base_url: str | None = None,
                 tokenizer: str | Path | None = None, concurrency: int = 8) -> Backend:
    """The backend for ``model``: ``auto``, ``transformers``, ``vllm`` or ``openai``.

    ``auto`` picks the server when a ``base_url`` is given, vLLM when it is
    installed and a GPU is present, else transformers. For a server, the
    tokenizer is loaded from ``tokenizer`` (or from ``model`` when it is a
    local folder) so that prompts are rendered here; ``concurrency`` is the
    number of requests in flight.
    """
    if backend == "auto":
        if base_url:
            backend = "openai"
        else:
            import importlib.util

            import torch

            backend = "vllm" if importlib.util.find_spec("vllm") and torch.cuda.is_available() else "transformers"
    if backend == "openai":
        if not base_url:
            raise ValueError("the openai backend needs a base URL (--base-url)")
        source = tokenizer or (model if Path(model).is_dir() else None)
        tok = None
        if source is not None:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(str(source), local_files_only=True)
        return OpenAIBackend(base_url, str(model), tokenizer=tok, concurrency=concurrency)
    if backend == "vllm":
        return VLLMBackend(model)
    if backend == "transformers":
        return TransformersBackend(model)
    raise ValueError(f"unknown backend {backend!r} (auto, transformers, vllm, openai)")
