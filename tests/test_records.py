import json

import pytest

from scaffoldrl.records import Problem, RecordError, Subproblem, read_records, read_rows, stable_id, write_records
from scaffoldrl.sources import SOURCES, VENDOR, load_source


def _problem(i=0):
    return Problem(id=f"p{i}", problem=f"What is {i}+1?", answer=str(i + 1), steps=[f"{i}+1 = {i + 1}"],
                   plan="add one", knowledge="addition", subproblems=[Subproblem("what is it?", str(i + 1))],
                   difficulty=2.0, source="test", meta={"k": [1, 2]})


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet", ""])
def test_round_trip_every_format(tmp_path, suffix):
    records = [_problem(i) for i in range(3)]
    path = write_records(records, tmp_path / f"recs{suffix}")
    assert list(read_records(path)) == records


def _write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("row, field", [
    ({"id": "a", "problem": "x"}, "answer"),
    ({"id": "a", "problem": "", "answer": "1"}, "problem"),
    ({"id": "a", "problem": "x", "answer": "1", "steps": "one string"}, "steps"),
    ({"id": "a", "problem": "x", "answer": "1", "difficulty": "hard"}, "difficulty"),
    ({"id": "a", "problem": "x", "answer": ["1"]}, "answer"),
    ({"id": "a", "problem": "x", "answer": "1", "subproblems": [{"question": "q"}]}, "subproblems[0]"),
])
def test_bad_row_names_file_row_and_field(tmp_path, row, field):
    path = _write_jsonl(tmp_path / "bad.jsonl", [_problem().to_dict(), row])
    with pytest.raises(RecordError) as err:
        read_records(path)
    assert (err.value.file, err.value.row, err.value.field) == (str(path), 2, field)
    assert "bad.jsonl" in str(err.value) and "row 2" in str(err.value)


def test_skip_invalid_counts_what_it_skips(tmp_path):
    rows = [_problem(0).to_dict(), {"id": "x", "problem": "p"}, "{not json", _problem(1).to_dict()]
    got = read_records(_write_jsonl(tmp_path / "mixed.jsonl", rows), skip_invalid=True)
    assert [p.id for p in got] == ["p0", "p1"]
    assert [(e.row, e.field) for e in got.skipped] == [(2, "answer"), (3, "<json>")]


def test_every_vendored_source_loads_without_bad_rows():
    sizes = {"math500": 500, "gsm8k": 1319, "aime24": 30, "amc23": 40, "minerva_math": 272,
             "olympiadbench": 675, "gsm8k_train": 7473, "gsm8k_socratic": 1319, "aime_1983_2023": 975}
    assert set(sizes) == set(SOURCES)
    for name, n in sizes.items():
        records = load_source(name)
        assert len(records) == n and not records.skipped, name
        assert all(p.answer.strip() and p.problem.strip() for p in records), name


def test_olympiadbench_reference_is_its_first_solution_not_all_of_them_joined():
    raw = [json.loads(line) for line in (VENDOR / "benchmarks/olympiadbench.jsonl").open()]
    i = next(i for i, row in enumerate(raw) if len(row["solution"]) == 3)
    p = load_source("olympiadbench")[i]
    assert p.solution.split()[-1] == raw[i]["solution"][0].split()[-1]
    assert p.meta["alternative_solutions"] == raw[i]["solution"][1:]
    assert raw[i]["solution"][1][:40] not in p.solution


def test_gsm8k_socratic_chain_ends_at_the_answer():
    p = load_source("gsm8k_socratic")[0]
    assert [s.answer for s in p.subproblems] == ["9", "18"] and p.answer == "18"
    assert "<<" not in p.solution


def test_stable_ids_for_records_without_one(tmp_path):
    rows = [{"problem": "What is 1+1?", "answer": "2"}, {"problem": "What is 2+2?", "answer": "4"}]
    path = _write_jsonl(tmp_path / "r.jsonl", rows)
    first, second = read_records(path)
    assert first.id == stable_id("What is 1+1?") and first.id.startswith("id-") and len(first.id) == 15
    assert first.id != second.id
    assert read_records(_write_jsonl(tmp_path / "o.jsonl", rows[::-1]))[1].id == first.id  # the same in any order
    write_records([first], tmp_path / "w.jsonl")
    assert read_records(tmp_path / "w.jsonl")[0].id == first.id


def test_raw_rows_need_their_columns(tmp_path):
    path = _write_jsonl(tmp_path / "preds.jsonl", [{"completion": "x", "answer": "1"}, "[1]", {"completion": "y"}])
    with pytest.raises(RecordError, match="row 2: field '<row>'"):
        read_rows(path, required=("completion", "answer"))
    rows = read_rows(path, required=("completion", "answer"), skip_invalid=True)
    assert rows == [{"completion": "x", "answer": "1"}] and [(e.row, e.field) for e in rows.skipped] == [
        (2, "<row>"), (3, "answer")]
