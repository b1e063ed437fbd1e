"""Bad input ends every command with one line naming the file, row and field, a non-zero exit code and no traceback."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from scaffoldrl.cli import app
from scaffoldrl.records import Problem, stable_id

GOOD = Problem(id="p1", problem="What is 2 + 3?", answer="5", steps=["2 + 3 = 5"]).to_dict()


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_line_error(result, *expected: str) -> str:
    """The output ends with one ``Error:`` line holding ``expected``; exit code 1; no traceback."""
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1, result.output + repr(result.exception)
    assert "Traceback" not in result.output and "╭" not in result.output, result.output
    assert lines and lines[-1].startswith("Error: ") and sum(line.startswith("Error") for line in lines) == 1
    for text in expected:
        assert text in lines[-1], lines[-1]
    return lines[-1]


def jsonl(path, *rows) -> str:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return str(path)


def test_grade_names_the_broken_line_and_skips_it_when_asked(tmp_path):
    src = jsonl(tmp_path / "preds.jsonl", {"completion": "\\boxed{5}", "answer": "5"}, "{broken",
                {"completion": "\\boxed{4}", "answer": "5"})
    one_line_error(invoke("grade", "-i", src, "-o", tmp_path / "g.jsonl", "--workers", "1"),
                   "preds.jsonl: row 2: field '<json>': not valid JSON")
    result = invoke("grade", "-i", src, "-o", tmp_path / "g.jsonl", "--workers", "1", "--skip-invalid")
    assert result.exit_code == 0, result.output
    assert "skipped 1 bad rows; first: " in result.output and "graded 2 rows" in result.output
    missing = jsonl(tmp_path / "nogold.jsonl", {"completion": "x"})
    one_line_error(invoke("grade", "-i", missing, "-o", tmp_path / "g.jsonl"), "row 1: field 'answer': is missing")


def test_data_commands(tmp_path):
    no_id = {k: v for k, v in GOOD.items() if k != "id"}
    records = jsonl(tmp_path / "r.jsonl", GOOD, no_id)
    result = invoke("data", "augment", records, tmp_path / "rows.jsonl", "--levels", "1")
    assert result.exit_code == 0, result.output  # a record without an id gets a stable one
    ids = [json.loads(line)["problem_id"] for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert ids == ["p1", "p1", stable_id(GOOD["problem"]), stable_id(GOOD["problem"])]
    bad = jsonl(tmp_path / "bad.jsonl", GOOD, {"problem": "?"}, GOOD)
    one_line_error(invoke("data", "augment", bad, tmp_path / "rows.jsonl"), "bad.jsonl: row 2: field 'answer'")
    result = invoke("data", "augment", bad, tmp_path / "rows.jsonl", "--skip-invalid")
    assert result.exit_code == 0 and "skipped 1 bad rows" in result.output
    one_line_error(invoke("data", "augment", tmp_path / "nowhere.jsonl", tmp_path / "rows.jsonl"),
                   "nowhere.jsonl: No such file or directory")
    one_line_error(invoke("data", "augment", records, tmp_path / "rows.csv"), "rows.csv: unknown format")
    one_line_error(invoke("data", "synth", tmp_path / "s.jsonl", "--n", "1", "--exclude", bad),
                   "bad.jsonl: row 2: field 'answer'")


def test_export_and_sft_name_the_bad_row(tmp_path):
    bad = jsonl(tmp_path / "bad.jsonl", GOOD, {"problem": "?", "answer": "1", "steps": "not a list"})
    one_line_error(invoke("export", "verl", "--records", bad, "--out", tmp_path / "v"), "row 2: field 'steps'")
    result = invoke("export", "verl", "--records", bad, "--out", tmp_path / "v", "--skip-invalid")
    assert result.exit_code == 0 and "skipped 1 bad rows" in result.output
    one_line_error(invoke("export", "verl", "--records", tmp_path / "none.jsonl", "--out", tmp_path / "v"),
                   "--records: no file")
    (tmp_path / "model").mkdir()
    one_line_error(invoke("sft", "--model", tmp_path / "model", "--data", bad, "--out", tmp_path / "sft"),
                   "bad.jsonl: row 2: field 'steps'")


def test_train_names_bad_settings_and_files(tmp_path, tiny_model_path):
    one_line_error(invoke("train", "--recipe", "seele", "--model", tiny_model_path, "--set", "rounds=3"),
                   "recipe seele/tiny:", "rounds (3) must divide")
    one_line_error(invoke("train", "--recipe", "seele", "--set", "rounds"), "--set: expected KEY=VALUE")
    one_line_error(invoke("train", "--recipe", "nosuch"), "no recipe nosuch")
    broken = tmp_path / "r.yaml"
    broken.write_text("model: [unclosed\n")
    one_line_error(invoke("train", "--recipe", broken), "r.yaml: not valid YAML")
    bad = jsonl(tmp_path / "bad.jsonl", GOOD, "[1, 2]")
    one_line_error(invoke("train", "--recipe", "grpo", "--model", tiny_model_path, "--set", f"data={{records: {bad}}}",
                          "--output-dir", tmp_path / "run"),
                   "bad.jsonl: row 2: field '<row>': expected an object")


@pytest.mark.parametrize("command", ["eval", "analyze"])
def test_eval_and_analyze_name_the_bad_row(tmp_path, tiny_model_path, command):
    bad = jsonl(tmp_path / "mine.jsonl", {"id": "a", "problem": "1+1?", "answer": "2"}, {"id": "b", "problem": "?"})
    data = ["--benchmarks", f"mine={bad}"] if command == "eval" else ["--data", bad]
    base = [command, "--model", tiny_model_path, *data, "--protocol", "greedy", "--out", tmp_path / "out",
            "--backend", "transformers", "--max-new-tokens", "2"]
    one_line_error(invoke(*base), "mine.jsonl: row 2: field 'answer'")
    if command == "eval":
        one_line_error(invoke(*base[:-4], "--protocol", "nosuch"), "no protocol 'nosuch'")
    result = invoke(*base, "--skip-invalid", "--limit", "1")
    assert result.exit_code == 0, result.output
    assert "skipped 1 bad rows" in result.output
