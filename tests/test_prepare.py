"""A user's dataset to records (`data prepare`), and methods that refuse records without reference steps."""

import json
import re

import pytest
from typer.testing import CliRunner

from scaffoldrl.cli import app
from scaffoldrl.methods import MissingReference, check_references, get_method, method_names
from scaffoldrl.prepare import prepare, steps_histogram
from scaffoldrl.records import Problem, RecordError, read_records
from scaffoldrl.sources import VENDOR

MATH500 = VENDOR / "benchmarks" / "math500.jsonl"


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run(*args):
    """The CLI's exit code and output, rich's error box taken apart so that messages read as one line."""
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "2000"})
    return result.exit_code, " ".join(re.sub("[│╭╮╰╯─]", " ", result.output).split())


def math_rows(n=20):
    return [json.loads(line) for line in MATH500.read_text().splitlines()[:n]]


def test_math500_rows_become_records_with_steps(tmp_path):
    src = write_jsonl(tmp_path / "math.jsonl", math_rows())
    result = prepare(src, tmp_path / "records.parquet", {"id": "unique_id", "difficulty": "level"})
    records = read_records(tmp_path / "records.parquet")
    assert len(records) == 20 and not result.skipped and result.answers_from_solution == 0
    assert [r.answer for r in records] == [row["answer"] for row in math_rows()]
    assert records[0].id == "test/precalculus/807.json" and records[0].difficulty == 2.0
    assert all(r.steps for r in records) and sum(result.histogram.values()) == 20
    assert result.histogram == steps_histogram(records) and result.without_steps == 0
    assert any("steps |" in line for line in result.report())


def test_answers_come_from_the_box_and_bad_rows_name_file_row_and_column(tmp_path):
    rows = [{"q": "1+1?", "sol": "So $1+1=\\boxed{2}$."},                       # answer from the box
            {"q": "2+2?", "sol": "It is 4.", "ans": ""},                         # empty answer
            {"q": "3+3?", "sol": "It is 6."},                                    # no answer, no box
            {"q": "4+4?", "sol": "So \\boxed{8}.", "ans": 8, "key": "a"},
            {"q": "5+5?", "sol": "So \\boxed{10}.", "ans": 10, "key": "a"}]      # repeated id
    src = write_jsonl(tmp_path / "mine.jsonl", rows)
    fields = {"problem": "q", "solution": "sol", "answer": "ans", "id": "key"}
    with pytest.raises(RecordError) as err:
        prepare(src, None, fields)
    assert (err.value.file, err.value.row, err.value.field) == (str(src), 2, "ans") and "empty" in str(err.value)
    result = prepare(src, tmp_path / "out.jsonl", fields, skip_invalid=True)
    assert [r.answer for r in result.records] == ["2", "8"] and result.answers_from_solution == 1
    assert [(e.row, e.field) for e in result.skipped] == [(2, "ans"), (3, "ans"), (5, "key")]
    assert "\\boxed{}" in str(result.skipped[1]) and "repeats the id 'a' of row 4" in str(result.skipped[2])
    no_solution = write_jsonl(tmp_path / "bare.jsonl", [{"problem": "1+1?", "answer": "2"}])
    assert prepare(no_solution).without_steps == 1


def test_cli_prepare_prints_the_histogram_and_stops_on_a_bad_row(tmp_path):
    src = write_jsonl(tmp_path / "math.jsonl", math_rows(5))
    code, output = run("data", "prepare", src, tmp_path / "r.jsonl", "--field", "id=unique_id")
    assert code == 0 and "5 records" in output and "reference steps per record" in output, output
    write_jsonl(src, [{"problem": "x?", "solution": "no box"}])
    code, output = run("data", "prepare", src, tmp_path / "r.jsonl")
    assert code != 0 and "row 1: field 'answer': is missing" in output, output


def test_methods_that_hint_with_steps_refuse_records_without_them(tmp_path):
    needs = {name for name in method_names() if get_method(name).needs_reference}
    assert needs == {"seele", "uft", "prefix_rft", "luffy", "pss"}
    problems = [Problem("a", "1+1?", "2", steps=["1+1=2"]), Problem("b", "2+2?", "4"), Problem("c", "3+3?", "6")]
    check_references(get_method("grpo"), problems, "x.jsonl")  # plain GRPO needs no reference
    with pytest.raises(MissingReference) as err:
        check_references(get_method("seele")(), problems, "data/hard.jsonl")
    assert err.value.ids == ["b", "c"] and "data/hard.jsonl: 2 of 3 records" in str(err.value)
    assert "'seele'" in str(err.value) and "data prepare" in str(err.value)


@pytest.mark.slow
def test_augment_export_recipe_and_trainer_stop_on_records_without_steps(tmp_path):
    from scaffoldrl.integrations.verl import export_verl
    from scaffoldrl.recipes import load_recipe
    from scaffoldrl.trainer import ScaffoldConfig, ScaffoldTrainer

    rows = [{"id": f"p{i}", "problem": f"{i}+1?", "answer": str(i + 1), "solution": f"So \\boxed{{{i + 1}}}."}
            for i in range(3)]
    plain = write_jsonl(tmp_path / "plain.jsonl", rows)  # our schema ignores `solution`: no steps
    code, output = run("data", "augment", plain, tmp_path / "aug.jsonl")
    assert code != 0 and "plain.jsonl: 3 of 3 records" in output and "'p0', 'p1', 'p2'" in output, output
    assert not (tmp_path / "aug.jsonl").exists()
    problems = list(read_records(plain))
    with pytest.raises(MissingReference, match="plain.jsonl"):
        export_verl(problems, tmp_path / "verl", method="pss", where=str(plain))
    export_verl(problems, tmp_path / "verl", method="grpo")  # plain rows need no steps
    recipe = load_recipe("seele", "tiny", {"data": {"records": str(plain)}})
    with pytest.raises(MissingReference, match="plain.jsonl"):
        recipe.check_problems(recipe.problems())
    sft = load_recipe("sft", "tiny", {"data": {"records": str(plain)}})
    with pytest.raises(MissingReference, match="'sft'"):
        sft.check_problems(sft.problems())
    load_recipe("grpo", "tiny", {"data": {"records": str(plain)}}).check_problems(problems)
    config = ScaffoldConfig(output_dir=str(tmp_path / "run"), method="uft", bf16=False, use_cpu=True,
                            per_device_train_batch_size=2, num_generations=2, max_steps=1, report_to="none")
    with pytest.raises(MissingReference, match="'uft'"):
        ScaffoldTrainer("unused", config, problems, None)
    # prepared from the same file, the solutions become steps and PSS gets its levels
    prepare(plain, tmp_path / "prepared.jsonl")
    code, output = run("data", "augment", tmp_path / "prepared.jsonl", tmp_path / "aug.jsonl", "--levels", "1")
    assert code == 0 and "6 rows from 3 problems" in output, output
