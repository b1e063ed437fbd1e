"""What does a tiny model need to learn the embedded domain's base skills, and how fast?

A plain PyTorch loop (quicker to vary than the demo's TRL stages) with the
demo's two phases: language modelling on the world's fact lines, then SFT on
level 1-2 problems with a share of fact lines in every batch. Prints the
fact recall (forward / open inverse, teacher-forced) every 100 steps and, every
``--eval`` SFT steps, greedy accuracy on 20 held-out problems of levels 1-3
without a hint and with all but the last step. Measured (this 2-core CPU,
one thread, shared machine, one run)::

    python bench/base_sweep.py --steps 600 --eval 300 --threads 1
    # fact recall 0.30 -> 0.97 between steps 300 and 500; SFT step 300:
    # L1-3 75/35/0% without a hint, 85/65/25% given all but the last step

Worth rerunning with ``--layers 2`` and ``--pretrain 0`` (exploratory runs
outside the repo suggested both fail to learn in 1,000 steps). Fact recall
appears in a sudden phase change after a plateau.
"""

import argparse
import random
import time

import torch

from scaffoldrl import domain, generation, prompts, tinymodel
from scaffoldrl.extract import last_boxed
from scaffoldrl.hints import response_prefix

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--hidden", type=int, default=128)
ap.add_argument("--layers", type=int, default=3)
ap.add_argument("--lr", type=float, default=1e-3)
ap.add_argument("--pretrain", type=int, default=600, help="steps of 64 fact lines before SFT")
ap.add_argument("--steps", type=int, default=1000, help="SFT steps")
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--facts", type=float, default=0.3, help="share of each SFT batch drawn from fact lines")
ap.add_argument("--eval", type=int, default=250, help="greedy accuracy every N SFT steps")
ap.add_argument("--threads", type=int, default=2)
args = ap.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(0)

world = domain.World()
train = domain.generate(2500, (1, 2), seed=0)
test = domain.generate(20, (1, 2, 3), seed=1, split="test")
tok = tinymodel.train_tokenizer(
    [prompts.sparkle_user_turn(p.problem) + domain.completion_text(p.steps, p.answer) for p in train[:300]]
    + world.facts())
model = tinymodel.build_tiny_model(tok, tinymodel.TinyModelConfig(
    hidden_size=args.hidden, intermediate_size=3 * args.hidden, num_hidden_layers=args.layers))
problems = [(tok(prompts.sparkle_prompt(p.problem, tok)).input_ids,
             tok(domain.completion_text(p.steps, p.answer) + tok.eos_token).input_ids) for p in train]
facts = [([], tok(f).input_ids) for f in world.facts(20)]


def step(optimizer, schedule, batch) -> float:
    """One update on (prompt, response) pairs; the loss is on the response tokens."""
    width = max(len(x) + len(y) for x, y in batch)
    ids = torch.full((len(batch), width), tok.pad_token_id)
    labels = torch.full((len(batch), width), -100)
    for i, (x, y) in enumerate(batch):
        ids[i, :len(x) + len(y)] = torch.tensor(x + y)
        labels[i, len(x):len(x) + len(y)] = torch.tensor(y)
    loss = model(input_ids=ids, labels=labels).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step(), schedule.step(), optimizer.zero_grad()
    return loss.item()


@torch.no_grad()
def fact_recall() -> tuple[float, float]:
    """Share of fact lines whose last digit is the argmax given the rest (forward, open inverse)."""
    hits = {True: [], False: []}
    for line in world.facts():
        ids = tok(line).input_ids
        hits[" so " in line].append(model(input_ids=torch.tensor([ids])).logits[0, -2].argmax().item() == ids[-1])
    model.train()
    return round(sum(hits[False]) / len(hits[False]), 2), round(sum(hits[True]) / len(hits[True]), 2)


def accuracy(hint: bool) -> list[float]:
    pre = [response_prefix("\n".join(p.steps[:-1]) + "\n") if hint else "" for p in test]
    outs = generation.generate(model, tok, [prompts.sparkle_prompt(p.problem, tok) for p in test],
                               generation.SamplingConfig(max_new_tokens=90), prefixes=pre)
    model.train()
    return [sum(last_boxed(h + o) == p.answer for h, o, p in zip(pre, outs, test) if p.difficulty == lvl) / 20
            for lvl in (1, 2, 3)]


def phase(steps: int, draw, report) -> None:
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=steps + 1, pct_start=0.05)
    started = time.perf_counter()
    for i in range(1, steps + 1):
        loss = step(optimizer, schedule, draw())
        if i % 100 == 0:
            print(f"step {i} loss {loss:.3f} {time.perf_counter() - started:.0f}s facts fwd/inv {fact_recall()}",
                  flush=True)
        report(i)


rng = random.Random(0)
model.train()
print(f"pretraining on fact lines ({args.pretrain} steps of 64)")
phase(args.pretrain, lambda: [facts[rng.randrange(len(facts))] for _ in range(64)], lambda i: None)
print(f"SFT ({args.steps} steps of {args.batch}, {args.facts:.0%} fact lines)")
phase(args.steps,
      lambda: [facts[rng.randrange(len(facts))] if rng.random() < args.facts else problems[rng.randrange(len(problems))]
               for _ in range(args.batch)],
      lambda i: i % args.eval or print(f"step {i} greedy accuracy L1-3: no hint {accuracy(False)}, "
                                       f"all but the last step {accuracy(True)}", flush=True))
