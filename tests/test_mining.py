"""Hard-problem mining (`data mine`): pass counts per problem, the hard records, resuming, any backend."""

import csv
import json
import re

import pytest
from typer.testing import CliRunner

from scaffoldrl import domain
from scaffoldrl.cli import app
from scaffoldrl.evaluate import Protocol
from scaffoldrl.generation import Backend
from scaffoldrl.mining import mine_hard, mining_protocol
from scaffoldrl.records import read_records, write_records


class Oracle(Backend):
    """Answers right on the samples a rule picks, wrong on the others; counts what it is asked."""

    def __init__(self, problems, right):
        self.answers = {p.problem: p.answer for p in problems}
        self.right, self.asked = right, 0

    def generate(self, prompts, config, seeds, progress=None):
        self.asked += len(prompts)
        out = []
        for prompt, seed in zip(prompts, seeds):
            question = next(q for q in self.answers if q in prompt)
            out.append(f"\\boxed{{{self.answers[question]}}}" if self.right(question, seed) else "\\boxed{-1}")
        return out


def run(*args):
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "2000"})
    return result.exit_code, " ".join(re.sub("[│╭╮╰╯─]", " ", result.output).split())


def test_mining_keeps_the_never_solved_problems_and_resumes(tmp_path):
    problems = domain.generate(2, (1, 3))
    always = {problems[0].problem}  # solved on every sample; problems[1] on some; the rest never
    some = {problems[1].problem}
    oracle = Oracle(problems, lambda q, seed: q in always or (q in some and seed % 2 == 0))
    protocol = mining_protocol("sparkle", k=4, max_new_tokens=8)
    assert (protocol.default.n, protocol.default.temperature, protocol.prompt) == (4, 0.6, "sparkle")
    mined = mine_hard(oracle, "oracle", problems, tmp_path / "mine", protocol, progress=False)
    counts = {row["id"]: row["correct"] for row in mined.counts}
    assert counts[problems[0].id] == 4 and counts[problems[2].id] == counts[problems[3].id] == 0
    assert [p.id for p in mined.hard] == [p.id for p in problems if counts[p.id] == 0]
    assert [p.id for p in read_records(tmp_path / "mine" / "hard.jsonl")] == [p.id for p in mined.hard]
    assert read_records(tmp_path / "mine" / "hard.jsonl")[0].steps == mined.hard[0].steps  # records kept whole
    saved = [json.loads(line) for line in open(tmp_path / "mine" / "pass_counts.jsonl")]
    assert saved == mined.counts and {r["samples"] for r in saved} == {4}
    assert set(mined.by_level) == {"1", "3"} and oracle.asked == 16 and mined.generated == 16
    summary = json.loads((tmp_path / "mine" / "mine.json").read_text())
    assert summary["hard"] == len(mined.hard) and summary["candidates"] == 4
    again = mine_hard(oracle, "oracle", problems, tmp_path / "mine", protocol, max_correct=1, progress=False,
                      counts=tmp_path / "counts.csv")
    assert (again.generated, again.reused, oracle.asked) == (0, 16, 16)  # nothing drawn twice
    assert [row["id"] for row in csv.DictReader(open(tmp_path / "counts.csv"))] == [p.id for p in problems]
    with pytest.raises(Exception, match="protocol.default.n"):  # a folder holds the samples of one k
        mine_hard(oracle, "oracle", problems, tmp_path / "mine", mining_protocol("sparkle", k=2), progress=False)


def test_mining_protocol_takes_the_preset_unless_told():
    assert mining_protocol().default.n == 8 and mining_protocol().max_new_tokens == 3000
    custom = mining_protocol(Protocol(prompt="Q: {question}"), k=3, temperature=1.0, top_p=0.9)
    assert (custom.default.n, custom.default.temperature, custom.default.top_p, custom.prompt) == (3, 1.0, 0.9,
                                                                                                   "Q: {question}")
    with pytest.raises(ValueError, match="greedy"):
        mining_protocol("greedy", k=4)


@pytest.mark.slow
def test_cli_mine_with_a_local_model_and_through_a_server(tiny_model_path, server, tmp_path):
    records = write_records(domain.generate(1, (1, 2, 3)), tmp_path / "pool.jsonl")
    common = ["--k", 2, "--temperature", 1.0, "--max-new-tokens", 6]
    code, output = run("data", "mine", records, tmp_path / "local", "--model", tiny_model_path,
                       "--backend", "transformers", *common, "--counts", tmp_path / "local" / "counts.csv")
    assert code == 0, output
    assert "generated 6 samples, reused 0" in output and "hard (at most 0 right of 2)" in output
    rows = list(csv.DictReader(open(tmp_path / "local" / "counts.csv")))
    assert len(rows) == 3 and {r["samples"] for r in rows} == {"2"}
    code, output = run("data", "mine", records, tmp_path / "local", "--model", tiny_model_path,
                       "--backend", "transformers", *common)
    assert code == 0 and "generated 0 samples, reused 6" in output, output
    code, output = run("data", "mine", records, tmp_path / "server", "--model", tiny_model_path, "--base-url", server,
                       *common, "--concurrency", 2)
    assert code == 0 and "generated 6 samples" in output, output
    local = [json.loads(line)["completion"] for line in open(tmp_path / "local" / "samples.jsonl")]
    assert len(local) == 6 and all(isinstance(c, str) for c in local)
