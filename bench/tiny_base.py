"""The tiny base model the RL benches start from, and its accuracy as a function of the hint.

A 192-wide, 3-layer Qwen2 trained from scratch on the easy levels (1-2) of the
embedded domain: SPARKLE's prompt, loss on the response only, 3000 steps of 64
problems, label smoothing 0.1. The smoothing keeps the model uncertain where it
has to guess (a hidden function's inverse), so that a question's accuracy grows
gradually with the hint as a real model's does; trained to zero loss instead,
every sample of a question gives the same answer and accuracy is 0 or 1. A
plain PyTorch loop, so that it runs where only torch and transformers are
installed: about 1.5 minutes on one GPU, hours on a 2-core CPU.

Prints the accuracy of sampled answers (T = 1, top-k 50: the smoothing leaves 10% of the
mass spread over the whole vocabulary, which top-k sampling drops) per level with the whole
reference solution, all but its last 1 or 2 steps, and no hint.

Run: python bench/tiny_base.py --out runs/tiny-base-192x3s [--steps 3000] [--smoothing 0.1]
"""

from __future__ import annotations

import argparse
import random
import re
import time

import torch

from scaffoldrl import domain, tinymodel
from scaffoldrl.hints import response_prefix
from scaffoldrl.prompts import sparkle_prompt


def batch_tensors(pairs, pad_id):
    """Right-padded input ids, labels on the response tokens only, and the attention mask."""
    width = max(len(p) + len(c) for p, c in pairs)
    ids = torch.full((len(pairs), width), pad_id)
    labels = torch.full((len(pairs), width), -100)
    mask = torch.zeros((len(pairs), width), dtype=torch.long)
    for i, (p, c) in enumerate(pairs):
        ids[i, : len(p) + len(c)] = torch.tensor(p + c)
        labels[i, len(p): len(p) + len(c)] = torch.tensor(c)
        mask[i, : len(p) + len(c)] = 1
    return ids, labels, mask


@torch.no_grad()
def hint_accuracy(model, tok, problems, cut: int | None, device) -> float:
    """Sampled accuracy with all but the last ``cut`` steps forced as the response prefix (None: no hint)."""
    prefixes = [response_prefix("\n".join(p.steps[: len(p.steps) - cut])) if cut is not None else ""
                for p in problems]
    prompts = [tok.encode(sparkle_prompt(p.problem, tok) + h, add_special_tokens=False)
               for p, h in zip(problems, prefixes)]
    width = max(map(len, prompts))
    ids = torch.full((len(prompts), width), tok.pad_token_id)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):], mask[i, width - len(p):] = torch.tensor(p), 1
    out = model.generate(ids.to(device), attention_mask=mask.to(device), max_new_tokens=80, do_sample=True,
                         temperature=1.0, top_k=50, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    texts = [h + tok.decode(o[width:], skip_special_tokens=True) for h, o in zip(prefixes, out)]
    answers = [(re.findall(r"\\boxed\{([^}]*)\}", t) or [None])[-1] for t in texts]
    return sum(a == p.answer for a, p in zip(answers, problems)) / len(problems)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/tiny-base-192x3s")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--smoothing", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    corpus = domain.generate(50, seed=1, split="tokenizer")
    tok = tinymodel.train_tokenizer([sparkle_prompt(p.problem) + domain.completion_text(p.steps, p.answer)
                                     for p in corpus])
    data = [(tok.encode(sparkle_prompt(p.problem, tok), add_special_tokens=False),
             tok.encode(domain.completion_text(p.steps, p.answer), add_special_tokens=False) + [tok.eos_token_id])
            for p in domain.generate(4000, (1, 2), seed=args.seed)]
    model = tinymodel.build_tiny_model(tok, tinymodel.TinyModelConfig(
        hidden_size=192, intermediate_size=576, num_hidden_layers=3, seed=args.seed)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-3, total_steps=args.steps, pct_start=0.05)
    rng, started = random.Random(args.seed), time.perf_counter()
    for step in range(args.steps):
        ids, labels, mask = batch_tensors([data[rng.randrange(len(data))] for _ in range(64)], tok.pad_token_id)
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits[:, :-1]
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), labels[:, 1:].reshape(-1).to(device),
                                                 ignore_index=-100, label_smoothing=args.smoothing)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step(), schedule.step(), optimizer.zero_grad()
        if step % 500 == 0:
            print(f"step {step} loss {loss.item():.3f} ({time.perf_counter() - started:.0f} s)", flush=True)
    model.eval()
    print("level: accuracy with the whole solution / all but 1 step / all but 2 / no hint (40 problems, T = 1, top-k 50)")
    for level in (1, 2, 3, 4):
        test = domain.generate(40, (level,), seed=5, split="test")
        print(level, " / ".join(f"{hint_accuracy(model, tok, test, c, device):.3f}" for c in (0, 1, 2, None)))
    tinymodel.save(model.to("cpu"), tok, args.out)
    print(f"saved to {args.out}")


if __name__ == "__main__":
    main()
