"""Two processes on the CPU (gloo): the seele recipe's rates agree across ranks, checkpoints hold one method-state
file written by the main process, a resume continues exactly, and the sampler pads unequal rounds.

One ``accelerate launch`` of ``tests/multiproc_seele.py`` (its docstring says what it runs and records).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("multiproc_seele.py")
STEPS, RESUME_FROM = 3, 1
# 8 problems, 2 questions per rank per step (4 rollouts each, 2 rounds of 2); a 24-token limit, so that a round
# whose hints all fill it samples nothing on one rank while the other samples (the case that hung before)
SETTINGS = ["num_generations=4", "rounds=2", "per_device_train_batch_size=8", "max_completion_length=24",
            "data={domain: {n: 4, levels: [3, 4], seed: 0}}"]


@pytest.fixture(scope="module")
def launched(tiny_model_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("multiproc")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "src"), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
               str(WORKER), "--model", str(tiny_model_path), "--out", str(out), "--steps", str(STEPS),
               "--resume-from", str(RESUME_FROM), *(a for s in SETTINGS for a in ("--set", s))]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired as e:  # a collective that only one rank entered
        pytest.fail(f"the 2-process run hung (a collective mismatch?):\n{(e.stderr or b'')[-3000:]}")
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def rates(folder: Path, rank: int) -> dict[tuple[str, int], dict]:
    lines = [json.loads(line) for line in (folder / "rates" / f"rank{rank}.jsonl").read_text().splitlines()]
    return {(d["event"], d["step"]): d for d in lines}


@pytest.mark.slow
def test_both_ranks_hold_the_same_rates_after_every_step(launched):
    ranks = [rates(launched / "run", r) for r in (0, 1)]
    assert {d["processes"] for r in ranks for d in r.values()} == {2}
    for step in range(1, STEPS + 1):
        end0, end1 = ranks[0][("end", step)], ranks[1][("end", step)]
        assert end0["rates"] == end1["rates"]
        # each rank refitted its own questions: they differ, and both ranks hold both sets
        assert end0["own"] and end1["own"] and not set(end0["own"]) & set(end1["own"])
        assert set(end0["own"]) | set(end1["own"]) <= set(end0["rates"])
        assert ranks[0][("begin", step - 1)]["rates"] != end0["rates"]  # the step refitted something


@pytest.mark.slow
def test_one_method_state_file_per_checkpoint_written_by_the_main_process(launched):
    from scaffoldrl.trainer import METHOD_STATE

    run = launched / "run"
    saves = [json.loads(line) for line in (run / "rates" / "saves-rank0.jsonl").read_text().splitlines()]
    assert not (run / "rates" / "saves-rank1.jsonl").exists()
    assert [Path(s["path"]) for s in saves] == [run / f"checkpoint-{s}" / METHOD_STATE for s in range(1, STEPS + 1)]
    for step in range(1, STEPS + 1):
        checkpoint = run / f"checkpoint-{step}"
        assert [p.name for p in checkpoint.glob("hint_method*")] == [METHOD_STATE]
        saved = json.loads((checkpoint / METHOD_STATE).read_text())["state"]["rates"]
        assert saved == rates(run, 0)[("end", step)]["rates"]


@pytest.mark.slow
def test_a_resumed_run_continues_exactly(launched):
    """The resumed run starts step RESUME_FROM + 1 from the uninterrupted run's rates, on both ranks, and every
    later step ends with the same rates."""
    for rank in (0, 1):
        run, resumed = rates(launched / "run", rank), rates(launched / "resumed", rank)
        assert min(step for event, step in resumed if event == "begin") == RESUME_FROM
        assert resumed[("begin", RESUME_FROM)]["rates"] == run[("end", RESUME_FROM)]["rates"] != {}
        for key, line in resumed.items():
            assert line["rates"] == run[key]["rates"], key


@pytest.mark.slow
def test_sampling_pads_unequal_rounds_across_processes(launched):
    """Through TRL's vLLM server mode (fake client) each rank gets the completions of its own prompts, whatever the
    other rank's count and run length; with HF generate a rank with nothing to sample does not hang the other."""
    got = [json.loads((launched / f"sample-rank{r}.json").read_text()) for r in (0, 1)]
    for rank in (0, 1):
        for name, case in got[rank].items():
            prompts, completions = case["prompts"], case["completions"]
            assert len(completions) == len(prompts), name
            if name.startswith("server/"):
                assert [c[:2] for c in completions] == [p[-2:] for p in prompts], name
                assert case["logprobs"] is None or len(case["logprobs"]) == len(prompts)
    calls = {name: got[0][name]["calls"] for name in got[0] if name.startswith("server/")}
    assert got[1]["server/runs_4_and_2"]["calls"] == []  # the main process calls the server
    # runs of 4 and of 2: n = 2; rank 1 (6 prompts) padded to 8: 2 x 8 prompts as 8 distinct-prompt requests
    assert calls["server/runs_4_and_2"] == [{"prompts": 8, "n": 2}]
    assert [c[2] for c in got[0]["server/runs_4_and_2"]["completions"]] == [0, 1, 0, 1, 0, 1, 0, 1]
    assert calls["server/one_rank_empty"] == [{"prompts": 2, "n": 4}]  # the empty rank sets no run length
    assert calls["server/all_empty"] == []
    assert calls["server/distinct_and_runs"] == [{"prompts": 8, "n": 1}]
