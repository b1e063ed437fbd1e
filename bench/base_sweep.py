"""How many optimizer steps does a tiny model need before it solves the embedded domain?

A plain PyTorch loop (same data and prompt as the demo's SFT, a fraction of
each batch drawn from the world's fact lines, AdamW at a constant rate) that
prints the loss every 50 steps and greedy accuracy on 25 held-out problems of
levels 1-3 every 250 steps. Runs on a GPU when there is one; start several
configurations side by side to compare them:

    PYTHONPATH=src python bench/base_sweep.py --hidden 256 --layers 3 --lr 1e-3 --steps 3000
"""

import argparse
import random
import time

import torch

from scaffoldrl import domain, generation, prompts, tinymodel
from scaffoldrl.extract import last_boxed

ap = argparse.ArgumentParser()
ap.add_argument("--hidden", type=int, default=256)
ap.add_argument("--layers", type=int, default=3)
ap.add_argument("--lr", type=float, default=1e-3)
ap.add_argument("--steps", type=int, default=3000)
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--facts", type=float, default=0.3, help="fraction of each batch drawn from fact lines")
ap.add_argument("--instruction", choices=["sparkle", "none"], default="sparkle",
                help="none: the user turn is only 'User: {question} Assistant:' (does prompt length slow learning?)")
args = ap.parse_args()
if args.instruction == "none":
    prompts.SPARKLE_INSTRUCTION = ""

device = "cuda" if torch.cuda.is_available() else "cpu"
torch.manual_seed(0)
world = domain.World()
train = domain.generate(1500, (1, 2), seed=0)
test = domain.generate(25, (1, 2, 3), seed=1, split="test")
corpus = [prompts.sparkle_user_turn(p.problem) + domain.completion_text(p.steps, p.answer) for p in train[:300]]
tok = tinymodel.train_tokenizer(corpus + world.facts(), 512)
size = tinymodel.TinyModelConfig(hidden_size=args.hidden, intermediate_size=3 * args.hidden,
                                 num_hidden_layers=args.layers, num_attention_heads=4, num_key_value_heads=2)
model = tinymodel.build_tiny_model(tok, size).to(device)
opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
problems = [(tok(prompts.sparkle_prompt(p.problem, tok)).input_ids,
             tok(domain.completion_text(p.steps, p.answer) + tok.eos_token).input_ids) for p in train]
facts = [([], tok(f).input_ids) for f in world.facts(20)]


def accuracy() -> list[float]:
    outs = generation.generate(model, tok, [prompts.sparkle_prompt(p.problem, tok) for p in test],
                               generation.SamplingConfig(max_new_tokens=90))
    model.train()
    return [round(sum(last_boxed(o) == p.answer for o, p in zip(outs, test) if p.difficulty == lvl) / 25, 2)
            for lvl in (1, 2, 3)]


rng, start = random.Random(0), time.time()
for step in range(args.steps + 1):
    batch = [facts[rng.randrange(len(facts))] if rng.random() < args.facts else problems[rng.randrange(len(problems))]
             for _ in range(args.batch)]
    width = max(len(x) + len(y) for x, y in batch)
    ids = torch.full((args.batch, width), tok.pad_token_id)
    labels = torch.full((args.batch, width), -100)
    for i, (x, y) in enumerate(batch):
        ids[i, :len(x) + len(y)] = torch.tensor(x + y)
        labels[i, len(x):len(x) + len(y)] = torch.tensor(y)  # loss on the response (all of a fact line)
    loss = model(input_ids=ids.to(device), labels=labels.to(device)).loss
    loss.backward()
    opt.step()
    opt.zero_grad()
    if step % 50 == 0:
        print(f"step {step} loss {loss.item():.3f} {time.time() - start:.0f}s", flush=True)
    if step % 250 == 0 and step:
        print(f"step {step} greedy accuracy at levels 1-3: {accuracy()}", flush=True)
