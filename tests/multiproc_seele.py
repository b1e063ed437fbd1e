"""The ``seele`` recipe in several processes: per-rank SEELE rates, checkpoints, a resume, and the sampler's padding.

``tests/test_multiproc.py`` launches it on the CPU (gloo) as::

    accelerate launch --multi_gpu --num_processes 2 tests/multiproc_seele.py --model M --out DIR \\
        --steps 3 --resume-from 1 --set KEY=VALUE ...

(``--multi_gpu`` is what makes accelerate 1.15 start the processes (torchrun); the recipe's ``use_cpu: true``
then gives a MULTI_CPU run on gloo. ``--cpu`` or a ``distributed_type: MULTI_CPU`` config start a single process
unless an MPI hostfile is given.)

It runs, in the launched processes:

1. ``run_recipe`` of the seele recipe's tiny variant for ``--steps`` steps, a checkpoint every step, into ``DIR/run``
   (what ``scaffoldrl train --recipe seele`` runs), with a test-only callback: each rank appends to
   ``DIR/run/rates/rank{R}.jsonl`` one line per step boundary,
   ``{"event": "begin"|"end", "step": global_step, "rank": R, "processes": P, "rates": {...}, "own": [...]}``
   (``own``: the questions this rank trained in the step), and every ``save_state`` of the method (a
   checkpoint's method-state file) appends ``{"rank": R, "path": ...}`` to ``DIR/run/rates/saves-rank{R}.jsonl``;
2. the same recipe resumed from ``DIR/run/checkpoint-{--resume-from}`` into ``DIR/resumed``, recorded the same way
   (a new trainer and method in the same processes: the rates come from the checkpoint's file);
3. ``ScaffoldTrainer._sample`` with prompt lists of different sizes and run lengths on the two ranks, through HF
   generate and through TRL's own vLLM server-mode code (``VLLMGeneration.generate``) with a fake server client
   that echoes each prompt's last two tokens and the sample index; each rank writes
   ``DIR/sample-rank{R}.json``: per case its prompts, the completions it got back and the server's calls.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch
from transformers import TrainerCallback

from scaffoldrl.methods.seele import Seele
from scaffoldrl.recipes import load_recipe, parse_overrides, run_recipe
from scaffoldrl.trainer import ScaffoldTrainer

TRAINERS: list[ScaffoldTrainer] = []


class RateDump(TrainerCallback):
    """Appends this rank's ``method.rates`` at the start and end of every step."""

    def __init__(self, folder: Path):
        self.folder = folder

    def on_step_begin(self, args, state, control, **kwargs):
        self._dump("begin", state)

    def on_step_end(self, args, state, control, **kwargs):
        self._dump("end", state)

    def _dump(self, event: str, state) -> None:
        trainer = TRAINERS[-1]
        rank = trainer.accelerator.process_index
        line = {"event": event, "step": state.global_step, "rank": rank, "processes": trainer.accelerator.num_processes,
                "rates": dict(sorted(trainer.method.rates.items())), "own": getattr(trainer.method, "_own", [])}
        with open(self.folder / f"rank{rank}.jsonl", "a") as f:
            f.write(json.dumps(line) + "\n")


def instrument(folder: Path) -> None:
    """Register every trainer, and record each rank's synced questions and method-state writes."""
    init, save_state, sync = ScaffoldTrainer.__init__, Seele.save_state, Seele.sync

    def register(self, *a, **k):
        init(self, *a, **k)
        TRAINERS.append(self)

    def record_save(self, path):
        rank = TRAINERS[-1].accelerator.process_index
        with open(folder() / f"saves-rank{rank}.jsonl", "a") as f:
            f.write(json.dumps({"rank": rank, "path": str(path)}) + "\n")
        return save_state(self, path)

    def record_sync(self, question_ids, gather_object):
        self._own = sorted(question_ids)
        return sync(self, question_ids, gather_object)

    ScaffoldTrainer.__init__, Seele.save_state, Seele.sync = register, record_save, record_sync


class FakeServer:
    """``VLLMClient.generate`` as TRL's server mode calls it: ``n`` samples of each prompt it is given."""

    def __init__(self):
        self.calls: list[dict] = []

    def generate(self, prompts, features=None, n=1, **kwargs):
        self.calls.append({"prompts": len(prompts), "n": n})
        completions = [list(p[-2:]) + [k] for p in prompts for k in range(n)]
        return {"prompt_ids": prompts, "completion_ids": completions,
                "logprobs": [[[-0.5]] * len(c) for c in completions]}


def server_mode(trainer: ScaffoldTrainer) -> FakeServer:
    """Point the trainer at TRL's own server-mode generation with a fake client (no vLLM needed)."""
    from trl.generation.vllm_generation import VLLMGeneration

    generation = VLLMGeneration.__new__(VLLMGeneration)  # TRL's generate() code, without its vLLM set-up
    server = FakeServer()
    generation.__dict__.update(
        accelerator=trainer.accelerator, mode="server", vllm_client=server, temperature=1.0, top_p=1.0, top_k=0,
        min_p=None, repetition_penalty=1.0, max_completion_length=8, logprobs=0, structured_outputs_regex=None,
        generation_kwargs={}, enable_sleep_mode=False, _llm_weights_sleeping=False)
    trainer.use_vllm, trainer.vllm_generation = True, generation
    trainer._last_loaded_step = trainer.state.global_step  # no weight sync
    return server


def sample_checks(trainer: ScaffoldTrainer, out: Path) -> None:
    """Both ranks sample prompt lists of different sizes; each records what it got back."""
    rank = trainer.accelerator.process_index
    p = lambda i: [5, 6, 7, 10 + i]  # noqa: E731  (prompt i: its last two tokens are 7, 10 + i)
    cases = {  # name: (rank 0's prompts, rank 1's prompts)
        "runs_4_and_2": ([p(0)] * 4 + [p(1)] * 4, [p(2)] * 2 + [p(3)] * 2 + [p(4)] * 2),
        "one_rank_empty": ([p(0)] * 4, []),
        "all_empty": ([], []),
        "distinct_and_runs": ([p(0), p(1), p(2)], [p(3)] * 4),
    }
    record: dict[str, dict] = {}
    trainer.model.eval()
    with torch.no_grad():
        for name in ("runs_4_and_2", "one_rank_empty"):  # HF generate: a rank with nothing to sample must not hang
            prompts = cases[name][rank]
            completions, _ = trainer._sample(prompts, filler=p(9))
            record[f"hf/{name}"] = {"prompts": prompts, "completions": [list(c) for c in completions]}
        server = server_mode(trainer)
        for name, by_rank in cases.items():
            server.calls.clear()
            completions, logprobs = trainer._sample(by_rank[rank], filler=p(9))
            record[f"server/{name}"] = {"prompts": by_rank[rank], "completions": [list(c) for c in completions],
                                        "logprobs": logprobs, "calls": list(server.calls)}
    trainer.use_vllm = False
    (out / f"sample-rank{rank}.json").write_text(json.dumps(record, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--resume-from", type=int, default=1)
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    current = {}
    instrument(lambda: current["folder"])

    def train(name: str, resume: str | None = None) -> None:
        folder = current["folder"] = out / name / "rates"
        folder.mkdir(parents=True, exist_ok=True)
        overrides = {"model": args.model, "output_dir": str(out / name), "max_steps": args.steps, "save_steps": 1,
                     **parse_overrides(args.set)}
        if resume:
            overrides["resume_from_checkpoint"] = resume
        run_recipe(load_recipe("seele", "tiny", overrides), callbacks=[RateDump(folder)])

    train("run")
    train("resumed", resume=str(out / "run" / f"checkpoint-{args.resume_from}"))
    sample_checks(TRAINERS[-1], out)
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # everything is written: skip the interpreter's teardown (5-9 s on a busy 2-core machine)
