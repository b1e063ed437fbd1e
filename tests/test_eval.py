import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from scaffoldrl.benchmarks import BENCHMARKS, load_benchmark, subset
from scaffoldrl.cli import app
from scaffoldrl.evaluate import Protocol, Sampling, SampleStore, evaluate
from scaffoldrl.generation import Backend, BackendUnavailable, OpenAIBackend, SamplingConfig, TransformersBackend, \
    VLLMBackend, sample_seed
from scaffoldrl.prompts import sparkle_user_turn


@pytest.fixture(scope="module")
def local(tiny_model_path):
    return TransformersBackend(tiny_model_path)


def sampled(n=2, temperature=0.7, max_new_tokens=12):
    return Protocol(name="test", default=Sampling(n=n, temperature=temperature), max_new_tokens=max_new_tokens,
                    bootstrap=200)


def test_samples_do_not_depend_on_the_batch_around_them(local):
    prompts = [local.render(sparkle_user_turn(f"Let a = zap({i}). What is a?")) for i in range(4)]
    seeds = [sample_seed("t", i) for i in range(4)]
    for temperature in (0.0, 0.8):
        alone, batched = (local.generate(prompts, SamplingConfig(10, temperature, batch_size=b), seeds) for b in (1, 4))
        assert alone == batched
        # other neighbours, other order: still the same text for each (prompt, seed)
        assert local.generate(prompts[::-1], SamplingConfig(10, temperature, batch_size=3), seeds[::-1]) == alone[::-1]
    assert local.generate(prompts, SamplingConfig(10, 0.8), [s + 1 for s in seeds]) != alone  # other seeds


def test_protocol_presets_and_custom_yaml(tmp_path):
    sparkle = Protocol.load("sparkle")
    assert sparkle.sampling("math500") == Sampling(n=8, temperature=0.6, top_p=1.0)
    assert sparkle.user_turn("What is 2+2?") == sparkle_user_turn("What is 2+2?")
    seele = Protocol.load("seele")
    assert seele.sampling("aime24") == seele.sampling("amc23") == Sampling(n=32, temperature=0.6, top_p=1.0)
    assert all(seele.sampling(b).greedy for b in ("gsm8k", "math500", "minerva_math", "olympiadbench"))
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\nprompt: \"Solve: {question}\\nBox the answer.\"\ndefault: {n: 4, temperature: 1.0}\n"
                    "benchmarks: {gsm8k: {n: 1, temperature: 0}}\npass_k: [1, 2]\n")
    mine = Protocol.load(path)
    assert mine.user_turn("1+1?") == "Solve: 1+1?\nBox the answer."
    assert mine.sampling("math500").n == 4 and mine.sampling("gsm8k").greedy and mine.pass_k == [1, 2]
    path.write_text("default: {n: 4, temperature: 0}\n")
    with pytest.raises(ValueError, match="greedy"):
        Protocol.load(path)
    path.write_text("samples: 3\n")
    with pytest.raises(ValueError, match="unknown protocol field"):
        Protocol.load(path)
    with pytest.raises(FileNotFoundError, match="sparkle"):
        Protocol.load("nonesuch")


def test_benchmarks_by_name_and_the_even_subset():
    sizes = {"math500": 500, "gsm8k": 1319, "aime24": 30, "amc23": 40, "minerva_math": 272, "olympiadbench": 675}
    for name, size in sizes.items():
        _, problems = load_benchmark(name)
        assert len(problems) == size and all(p.answer for p in problems)
    _, synth = load_benchmark("synth")
    assert len(synth) == 200 and {p.difficulty for p in synth} == {1, 2, 3, 4, 5}
    assert all(p.plan and p.knowledge and p.subproblems for p in synth)
    quick = subset(synth, 10)
    assert [p.id for p in quick] == [p.id for p in subset(synth, 10)] and len(quick) == 10
    assert sorted(p.difficulty for p in quick) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    with pytest.raises(KeyError, match="NAME=PATH"):
        load_benchmark("nonesuch")
    assert "synth" in BENCHMARKS


def test_user_benchmark_files_with_a_field_mapping(tmp_path):
    rows = [{"q": "What is 1+1?", "final": 2, "lvl": "Level 3", "topic": "arith"},
            {"q": "Name both roots of x^2=1.", "final": ["1", "-1"], "lvl": "1", "topic": "algebra"}]
    (tmp_path / "mine.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pq.write_table(pa.Table.from_pylist(rows[:1]), tmp_path / "mine.parquet")
    fields = {"problem": "q", "answer": "final", "difficulty": "lvl", "subject": "topic"}
    name, problems = load_benchmark(f"mine={tmp_path / 'mine.jsonl'}", fields)
    assert name == "mine" and [p.answer for p in problems] == ["2", "1, -1"]
    assert [p.difficulty for p in problems] == [3.0, 1.0] and problems[1].meta["subject"] == "algebra"
    assert problems[0].id == "mine-1"  # no id column: named by row
    _, from_parquet = load_benchmark(f"pq={tmp_path / 'mine.parquet'}", fields)
    assert from_parquet[0].problem == "What is 1+1?" and from_parquet[0].id == "pq-0"
    with pytest.raises(ValueError, match="unknown field"):
        load_benchmark(f"mine={tmp_path / 'mine.jsonl'}", {"question": "q"})
    with pytest.raises(Exception, match="problem"):
        load_benchmark(f"mine={tmp_path / 'mine.jsonl'}")  # without the mapping there is no problem column


class Recording(Backend):
    """The real backend, recording every sample it is asked for; optionally dies after some chunks."""

    def __init__(self, inner, die_after=None):
        self.inner, self.tokenizer, self.die_after, self.seen = inner, inner.tokenizer, die_after, []

    def generate(self, prompts, config, seeds, progress=None):
        if self.die_after is not None and len(self.seen) >= self.die_after:
            raise KeyboardInterrupt
        self.seen += list(seeds)
        return self.inner.generate(prompts, config, seeds, progress)


def by_key(path):
    return {(r["benchmark"], r["problem_id"], r["sample"]): r for r in map(json.loads, open(path))}


def test_interrupted_run_resumes_to_the_uninterrupted_result(local, tmp_path):
    protocol, benchmarks = sampled(), ["synth", "gsm8k"]
    full = Recording(local)
    evaluate(full, "tiny", benchmarks, protocol, tmp_path / "full", limit=3, batch_size=5, progress=False)
    assert len(full.seen) == len(set(full.seen)) == 2 * 3 * 2

    cut = Recording(local, die_after=4)
    with pytest.raises(KeyboardInterrupt):
        evaluate(cut, "tiny", benchmarks, protocol, tmp_path / "cut", limit=3, batch_size=2, progress=False)
    samples = tmp_path / "cut" / "samples.jsonl"
    assert len(by_key(samples)) == 4  # each finished chunk was saved
    with open(samples, "a") as f:
        f.write('{"benchmark": "synth", "problem_id": "torn')  # killed in the middle of a write
    resumed = Recording(local)
    summary = evaluate(resumed, "tiny", benchmarks, protocol, tmp_path / "cut", limit=3, batch_size=3, progress=False)
    assert summary["_run"] == {"generated": 8, "reused": 4, "skipped": {"gsm8k": 0, "synth": 0}}
    assert not set(cut.seen) & set(resumed.seen)  # no finished sample drawn twice
    assert len(cut.seen) + len(resumed.seen) == 12

    done, want = by_key(samples), by_key(tmp_path / "full" / "samples.jsonl")
    assert done.keys() == want.keys()
    for key in want:
        assert {k: done[key][k] for k in ("completion", "extracted", "correct", "seed", "prompt")} == \
               {k: want[key][k] for k in ("completion", "extracted", "correct", "seed", "prompt")}
    assert json.loads((tmp_path / "cut" / "summary.json").read_text()) == \
           json.loads((tmp_path / "full" / "summary.json").read_text())

    again = evaluate(Recording(local), "tiny", benchmarks, protocol, tmp_path / "cut", limit=3, progress=False)
    assert again["_run"] == {"generated": 0, "reused": 12, "skipped": {"gsm8k": 0, "synth": 0}}
    with pytest.raises(ValueError, match="protocol"):
        evaluate(local, "tiny", benchmarks, sampled(n=3), tmp_path / "cut", limit=3, progress=False)
    with SampleStore(samples), pytest.raises(RuntimeError, match="another run"):
        SampleStore(samples)


def test_cli_eval_writes_samples_summary_and_report(tiny_model_path, tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["eval", "--model", str(tiny_model_path), "--benchmarks", "math500,synth",
                                      "--protocol", "greedy", "--limit", "5", "--max-new-tokens", "8", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "generated 10 samples, reused 0" in result.output
    rows = [json.loads(line) for line in open(out / "samples.jsonl")]
    assert len(rows) == 10
    assert {"benchmark", "problem_id", "sample", "prompt", "completion", "extracted", "correct"} <= rows[0].keys()
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"math500", "synth"}
    s = summary["synth"]
    assert s["problems"] == 5 and s["samples"] == 1 and s["score"] == s["pass@1"]
    assert s["score"] == sum(r["correct"] for r in rows if r["benchmark"] == "synth") / 5
    assert set(s["by_difficulty"]) == {"1", "2", "3", "4", "5"}
    assert "by_subject" in summary["math500"]
    report = (out / "report.md").read_text()
    assert "| synth | 5 | greedy |" in report and "accuracy_by_difficulty.png" in report
    assert (out / "accuracy_by_difficulty.png").stat().st_size > 0 and (out / "report.html").exists()


def test_server_backend_gives_the_local_greedy_results(local, tiny_model_path, server, tmp_path):
    protocol = Protocol(name="greedy", max_new_tokens=16, bootstrap=200)
    args = dict(benchmarks=["synth", "math500"], protocol=protocol, limit=4, progress=False)
    want = evaluate(local, str(tiny_model_path), out=tmp_path / "local", **args)
    from transformers import AutoTokenizer

    completions = OpenAIBackend(server, str(tiny_model_path),
                                tokenizer=AutoTokenizer.from_pretrained(str(tiny_model_path)), concurrency=2)
    got = evaluate(completions, str(tiny_model_path), out=tmp_path / "server", **args)
    local_rows, server_rows = by_key(tmp_path / "local" / "samples.jsonl"), by_key(tmp_path / "server" / "samples.jsonl")
    assert local_rows.keys() == server_rows.keys() and len(local_rows) == 8
    assert [r["completion"] for r in local_rows.values()] == [server_rows[k]["completion"] for k in local_rows]
    assert all(r["completion"] for r in local_rows.values())
    assert got["synth"]["score"] == want["synth"]["score"] and got["math500"]["score"] == want["math500"]["score"]
    # without a tokenizer the bare turn goes to the chat endpoint and the server applies the same template
    # (its response parser trims the reply)
    chat = OpenAIBackend(server, str(tiny_model_path))
    turns = [sparkle_user_turn(p.problem) for p in load_benchmark("math500")[1][:2]]
    assert [chat.render(t) for t in turns] == turns
    config = SamplingConfig(max_new_tokens=16)
    want = [text.strip() for text in local.generate([local.render(t) for t in turns], config, [0, 1])]
    assert chat.generate(turns, config, [0, 1]) == want and all(want)


def test_vllm_backend_is_skipped_cleanly_when_missing(tiny_model_path):
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(BackendUnavailable, match="pip install vllm"):
            VLLMBackend(tiny_model_path)
        result = CliRunner().invoke(app, ["eval", "--model", str(tiny_model_path), "--backend", "vllm", "--out", "x"])
        assert result.exit_code != 0 and "vLLM is not installed" in result.output
        pytest.skip("vLLM is not installed")
    import torch

    if not torch.cuda.is_available():
        pytest.skip("vLLM needs a GPU")
    backend = VLLMBackend(tiny_model_path)
    prompts = [backend.render(sparkle_user_turn(f"Let a = zap({i}). What is a?")) for i in range(3)]
    config = SamplingConfig(max_new_tokens=8, temperature=0.8)
    assert backend.generate(prompts, config, [1, 2, 3]) == backend.generate(prompts, config, [1, 2, 3])
