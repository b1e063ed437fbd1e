"""Milliseconds per training step of the embedded model (forward, backward, AdamW) on random token ids.

What bounds the base model's build time: SFT steps are compute-bound, so this prints the raw step
time for a batch shape, thread count and (optionally) ``torch.compile``, without TRL around it.
Run two processes side by side with ``--threads 1`` to see what data parallelism over the two cores
would give. ``--trl`` instead times whole training steps of the demo's SFT (its data, its settings)
through TRL's ``SFTTrainer`` and through the library's CPU trainer (the model's own LM head), and
prints their losses, which must agree.

    python bench/sft_step.py --model runs/demo/models/base --threads 2
    python bench/sft_step.py --model runs/demo/models/base --threads 2 --compile
    python bench/sft_step.py --model runs/demo/models/base --length 139 --profile
    python bench/sft_step.py --model runs/demo/models/pretrained --trl runs/demo/data/train.jsonl
"""

from __future__ import annotations

import argparse
import time

import torch
from transformers import AutoModelForCausalLM


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a saved model folder, e.g. runs/demo/models/base")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=130,
                        help="tokens per row (an SFT batch is padded to its longest)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the model (inductor, needs a C++ compiler)")
    parser.add_argument("--profile", action="store_true", help="also print the ops that take the step's time")
    parser.add_argument("--trl", metavar="TRAIN_JSONL",
                        help="time TRL training steps on these SFT problems (a demo run's data/train.jsonl)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.trl:
        return trl_steps(args)
    model = AutoModelForCausalLM.from_pretrained(args.model, local_files_only=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    forward = torch.compile(model) if args.compile else model
    ids = torch.randint(0, model.config.vocab_size, (args.batch, args.length),
                        generator=torch.Generator().manual_seed(0))

    def step():
        forward(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    started = time.perf_counter()
    for _ in range(3):
        step()
    warmup = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(args.steps):
        step()
    ms = 1000 * (time.perf_counter() - started) / args.steps
    print(f"batch {args.batch} x {args.length} tokens, {args.threads} thread(s), "
          f"{'compiled' if args.compile else 'eager'}: {ms:.1f} ms/step (warm-up {warmup:.1f} s, {args.steps} steps)")
    if args.profile:
        from torch.profiler import profile

        with profile() as prof:
            for _ in range(5):
                step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


def trl_steps(args) -> None:
    """ms per TRL step, TRL's SFTTrainer (fused LM head) against ``sft_trainer_class`` (CPU), twice each."""
    import tempfile

    from transformers import AutoTokenizer
    from trl import SFTTrainer

    from scaffoldrl.base_model import BaseConfig
    from scaffoldrl.records import read_records
    from scaffoldrl.sft import _cpu_config, sft_dataset, sft_trainer_class

    demo = BaseConfig()
    tok = AutoTokenizer.from_pretrained(args.model)
    data = sft_dataset(read_records(args.trl), tok, demo.sft_facts())
    with tempfile.TemporaryDirectory() as out:
        config = _cpu_config(out, demo.sft, progress=False)
        config.max_steps, config.logging_steps = args.steps, args.steps
        for name, cls in [("TRL SFTTrainer", SFTTrainer), ("CPU trainer", sft_trainer_class(config))] * 2:
            torch.manual_seed(0)
            model = AutoModelForCausalLM.from_pretrained(args.model, local_files_only=True)
            trainer = cls(model=model, args=config, train_dataset=data, processing_class=tok)
            started = time.perf_counter()
            trainer.train()
            ms = 1000 * (time.perf_counter() - started) / args.steps
            loss = next(h["loss"] for h in trainer.state.log_history if "loss" in h)
            print(f"{name}: {ms:.1f} ms/step over {args.steps} steps (batch {demo.sft.batch_size}, "
                  f"{args.threads} thread(s)), mean loss {loss:.5f}")


if __name__ == "__main__":
    main()
