import dataclasses
import json
from dataclasses import asdict

import pytest

from scaffoldrl import domain
from scaffoldrl.base_model import HINTS, BaseConfig, build_base, fact_rows, hint_prefix, hint_table
from scaffoldrl.runs import Stages
from scaffoldrl.tinymodel import TinyModelConfig


def test_hint_prefixes_reveal_none_half_and_all_but_last_step():
    p = next(q for q in domain.generate(5, (5,)) if len(q.steps) == 6)
    assert hint_prefix(p, "none") == ""
    assert hint_prefix(p, "half") == "<think>\n" + "\n".join(p.steps[:3]) + "\n"
    assert hint_prefix(p, "all_but_last").count("\n") == 6 and p.steps[-1] not in hint_prefix(p, "all_but_last")


def test_fact_rows_keep_every_line_once_in_order():
    lines = domain.World(candidates=3).facts()  # 160 forward, 80 open and 3 x 80 half-known hidden inverse lines
    rows = fact_rows(lines, 10)
    assert len(lines) == 480 and len(rows) == 48 and all(row.count("\n") == 9 for row in rows)
    assert "\n".join(rows).split("\n") == lines
    assert fact_rows(lines[:3], 10) == ["\n".join(lines[:3])] and fact_rows(lines, 1) == lines


def test_stages_run_once_and_resume(tmp_path):
    calls = []
    first = Stages(tmp_path, log=lambda *_: None).run("a", lambda: calls.append(1) or {"x": 1})
    again = Stages(tmp_path, log=lambda *_: None).run("a", lambda: calls.append(2) or {"x": 2})
    assert calls == [1] and first["result"] == again["result"] == {"x": 1}


def test_hint_table_has_every_level_and_hint(tiny_model_path):
    problems = domain.generate(2, seed=5, split="test")
    table = hint_table(tiny_model_path, problems, max_new_tokens=8)
    assert list(table) == ["1", "2", "3", "4", "5"]
    assert all(list(row) == list(HINTS) and all(0 <= v <= 1 for v in row.values()) for row in table.values())


@pytest.mark.slow
def test_demo_pipeline_end_to_end_on_the_smoke_preset(tmp_path):
    """Base, stage 1, mining, five stage-2 arms, evaluation, analysis and report on a tiny preset; then resume."""
    from scaffoldrl.demo import preset, run_demo

    logs = []
    # stage 2 and the evaluations in two worker processes; the rerun below reads the markers they left
    result = run_demo(tmp_path, dataclasses.replace(preset("smoke"), jobs=2), log=logs.append, progress=False)
    assert any("2 at a time" in line for line in logs)
    methods = ("grpo", "pss", "seele", "uft", "sft")
    assert set(result["models"]) == {"base", "stage1", *methods}
    for m in result["models"].values():
        assert set(m["greedy"]["by_level"]) == {"1", "2", "3", "4", "5"} and m["greedy"]["hard_levels"] == ["3", "4", "5"]
        assert set(m["avg2"]["by_level"]) == {"1", "2", "3", "4", "5"}
        assert set(m["greedy"]["exact"]) == {"1", "2", "3", "4", "5", "hard"}
    rollouts = {method: result["stage2"][method]["0"]["rollouts"] for method in methods}
    assert len(set(rollouts.values())) == 1 and rollouts["grpo"] == 2 * 1 * 4  # equal budgets: steps x groups x group
    assert result["stage2"]["sft"]["0"]["steps"] == 2 and result["stage2"]["sft"]["0"]["mean_accuracy"] is None
    assert result["stage2"]["seele"]["0"]["curves"]["accuracy_round3"][0] == [1, 2]
    assert len(result["analysis"]) == 3 and "chain" in result["analysis"]["base"]["conditions"]
    versus = result["versus_grpo"]  # paired by problem (one seed): the mean difference is the difference of means
    assert set(versus) == {"pss", "seele", "uft", "sft"} and versus["pss"]["greedy"]["over"] == "problems"
    for method in versus:
        hard = {m: result["models"][m]["greedy"]["hard"] for m in (method, "grpo")}
        assert versus[method]["greedy"]["delta"] == pytest.approx(hard[method] - hard["grpo"])
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["models"]["stage1"]["greedy"]["by_level"] == result["models"]["stage1"]["greedy"]["by_level"]
    report = (tmp_path / "report.md").read_text()
    assert "What this run found" in report and "against GRPO, in points: pss" in report
    for plot in ("accuracy_by_level_greedy.png", "training_accuracy.png", "hint_rate.png", "round_accuracy_seele.png"):
        assert plot in report and (tmp_path / plot).exists()
    assert (tmp_path / "report.html").exists()

    logs.clear()
    again = run_demo(tmp_path, "smoke", log=logs.append, progress=False)  # every stage resumes from its marker
    assert not [line for line in logs if line.startswith("[run]")]
    assert again["models"]["grpo"]["greedy"] == result["models"]["grpo"]["greedy"]
    with pytest.raises(ValueError, match="stage2_steps"):  # another preset must not reuse these stages
        run_demo(tmp_path, dataclasses.replace(preset("smoke"), stage2_steps=3), log=logs.append, progress=False)


def test_a_run_folder_refuses_a_base_model_with_other_settings(tmp_path):
    # a folder holding a base built for 10-value tables must not hand it on as the 20-value one
    (tmp_path / "base_config.json").write_text(json.dumps(asdict(BaseConfig(world_values=10))))
    with pytest.raises(ValueError, match="world_values"):
        build_base(tmp_path, BaseConfig(world_values=20))
    assert not (tmp_path / "stages").exists()


def test_cli_names_each_changed_nested_setting_of_a_run_folder(tmp_path):
    from typer.testing import CliRunner

    from scaffoldrl.cli import app

    old = asdict(BaseConfig(model=TinyModelConfig(hidden_size=64)))
    old["model"]["split_digits"] = True  # a setting this version no longer has
    (tmp_path / "base_config.json").write_text(json.dumps(old))
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--base-only"])
    assert result.exit_code == 1 and not isinstance(result.exception, ValueError) and "Traceback" not in result.output
    flat = " ".join(result.output.split()).replace("│", "")
    assert "model.hidden_size" in flat and "model.split_digits" in flat and "world_values" not in flat
    assert not (tmp_path / "data").exists()


def test_sft_sees_sparkles_plan_knowledge_and_chain_forms():
    from scaffoldrl.base_model import condition_pairs
    from scaffoldrl.prompts import KNOWLEDGE_HINT, PLAN_HINT

    problems = domain.generate(10, (1, 2), seed=3)
    pairs = condition_pairs(problems, 0.2, seed=0)  # 4 problems per form
    plan = [q for q, _ in pairs if PLAN_HINT in q]
    knowledge = [q for q, _ in pairs if KNOWLEDGE_HINT in q]
    chains = [(q, r) for q, r in pairs if "\nQ1: " in q]
    assert len(plan) == len(knowledge) == 4
    assert len(chains) == sum(len(p.subproblems) for p in problems if any(p.problem + "\n\nQ1" in q for q, _ in chains))
    for question, response in chains:  # each link answered by its own reference step, boxed
        p = next(p for p in problems if question.startswith(p.problem + "\n"))
        link = question.count("\nQ") - 1
        assert response.startswith("<think>\n" + p.steps[link] + "\n</think>")
        assert f"\\boxed{{{p.subproblems[link].answer}}}" in response


@pytest.mark.slow
def test_a_run_with_the_shipped_settings_starts_from_the_shipped_base(tmp_path, monkeypatch):
    """The shipped checkpoint replaces stages 2-4; the data and the hint table are made again and agree."""
    import shutil

    from scaffoldrl import base_model
    from scaffoldrl.demo import preset

    config = preset("smoke").base
    built = build_base(tmp_path / "built", config, log=lambda *_: None)
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    for name in base_model.MODEL_FILES:
        shutil.copy(tmp_path / "built" / "models" / "base" / name, shipped / name)
    (shipped / "base.json").write_text(json.dumps(built))
    monkeypatch.setattr(base_model, "SHIPPED", shipped)
    logs = []
    again = build_base(tmp_path / "copied", config, log=logs.append)
    assert "[run] shipped_base" in logs and not any(s in " ".join(logs) for s in ("[run] sft", "[run] pretrain"))
    assert again["hint_table"] == built["hint_table"]
    other = dataclasses.replace(config, seed=1)  # other settings: no shipped base for them
    assert base_model.shipped_base(other) is None
    rebuilt = []
    build_base(tmp_path / "rebuilt", config, log=rebuilt.append, rebuild=True)
    assert "[run] sft" in rebuilt and "[run] shipped_base" not in rebuilt


def test_the_shipped_base_matches_the_default_settings():
    """A change of BaseConfig's defaults must ship a new base (bench/ship_base.py), or runs rebuild it."""
    from scaffoldrl import base_model

    if not (base_model.SHIPPED / "base.json").exists():
        pytest.skip("no base model shipped")
    assert base_model.shipped_base(BaseConfig()) is not None, "rebuild and ship: see bench/ship_base.py"
    assert all((base_model.SHIPPED / name).exists() for name in base_model.MODEL_FILES)


@pytest.mark.slow
def test_the_shipped_base_gives_its_hint_table_on_a_fresh_run(tmp_path):
    """What a fresh clone's `make demo` prints for the base, number for number."""
    from scaffoldrl import base_model

    import torch

    shipped = base_model.shipped_base(BaseConfig())
    if shipped is None:
        pytest.skip("no base model shipped for the default settings")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the shipped table was measured: greedy argmaxes depend on summation order
    try:
        result = build_base(tmp_path, log=lambda *_: None)
    finally:
        torch.set_num_threads(threads)
    assert "shipped_base" in result["stage_seconds"] and result["hint_table"] == shipped["hint_table"]
