import json

import pyarrow.parquet as pq
import pytest

from scaffoldrl.hints import HINTED, OFF_POLICY, ON_POLICY, Reference, fit_budget, response_prefix
from scaffoldrl.methods import get_method, method_names
from scaffoldrl.methods.grpo import GRPO
from scaffoldrl.methods.sparkle import PSSConfig, SparklePSS
from scaffoldrl.prompts import THINK_OPEN, sparkle_user_turn
from scaffoldrl.records import Problem
from scaffoldrl.tinymodel import train_tokenizer

STEPS = [f"Step {i}: we find x{i} = {i * i}." for i in range(1, 9)]


def problem(steps=STEPS, pid="p1"):
    return Problem(id=pid, problem="Find x8.", answer="64", steps=list(steps), source="test")


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer([" ".join(STEPS), sparkle_user_turn("Find x8."), "Find the value of n."] * 4,
                           vocab_size=300)


def test_step_reference_rounds_rates_half_up():
    ref = Reference(problem(STEPS[:5]))
    assert ref.total == 5
    assert [ref.units_for(p) for p in (0.0, 0.1, 0.3, 0.5, 0.99, 1.0)] == [0, 1, 2, 3, 5, 5]
    assert ref.prefix(2) == STEPS[0] + "\n" + STEPS[1] + "\n"  # a step hint ends with its separator
    assert ref.prefix(0) == ""
    assert ref.response.startswith(response_prefix(ref.prefix(5)))


def test_token_reference_prefixes_the_solution(tokenizer):
    p = problem()
    ref = Reference(p, unit="tokens", tokenizer=tokenizer)
    solution = tokenizer.encode(p.solution + "\n", add_special_tokens=False)
    assert abs(ref.total - len(solution)) <= 1 and ref.total > len(STEPS)
    assert ref.n_steps == len(STEPS)
    assert ref.prefix(ref.total).strip() == p.solution
    half = ref.prefix(ref.units_for(0.5))
    assert p.solution.startswith(half) and 0 < len(half) < len(p.solution)
    with pytest.raises(ValueError):
        Reference(p, unit="tokens")
    with pytest.raises(ValueError):
        Reference(p, unit="words")


@pytest.mark.parametrize("unit", ["steps", "tokens"])
def test_hint_ids_are_a_prefix_of_the_reference_response(tokenizer, unit):
    ref = Reference(problem(), unit=unit, tokenizer=tokenizer)
    assert ref.response_ids == tokenizer.encode(ref.response, add_special_tokens=False)
    lengths = [len(ref.hint_ids(units)) for units in range(ref.total + 1)]
    assert lengths[0] == 0 and lengths == sorted(set(lengths))  # one more unit, more forced tokens
    for units in range(1, ref.total + 1):
        ids = ref.hint_ids(units)
        assert ids == ref.response_ids[: len(ids)]
        assert ref.forced_ids(ref.plan(units)) == ids
    assert ref.forced_ids(ref.plan(0)) == []
    assert ref.forced_ids(ref.off_policy()) == ref.response_ids + [tokenizer.eos_token_id]
    if unit == "steps":  # the hint's own tokenization, forced as it is
        assert ref.hint_ids(3) == tokenizer.encode(response_prefix(ref.prefix(3)), add_special_tokens=False)


def test_step_ids_need_a_tokenizer():
    with pytest.raises(ValueError, match="tokenizer"):
        Reference(problem()).hint_ids(1)


def test_token_hints_never_end_inside_a_character(tokenizer):
    """A byte-level cut inside a multi-byte character moves back to the character's start: never a U+FFFD."""
    p = problem(["Le café coûte 3 €.", "Donc 2 cafés coûtent 6 €."])
    ref = Reference(p, unit="tokens", tokenizer=tokenizer)
    assert "\ufffd" not in tokenizer.decode(ref.response_ids)
    split = 0
    for units in range(ref.total + 1):
        plan = ref.plan(units)
        assert plan.units <= units and "\ufffd" not in tokenizer.decode(ref.forced_ids(plan))
        split += plan.units < units
    assert split > 0  # the tiny vocabulary has no token for é, € or û: their bytes are separate tokens


def test_fit_budget_counts_the_hint_in_the_limit():
    assert fit_budget([1, 2, 3], [4, 5, 6, 7], 5) == ([1, 2, 3], [4, 5], False)
    assert fit_budget([], [4, 5, 6, 7], 3) == ([], [4, 5, 6], False)
    assert fit_budget([1, 2, 3, 4, 5, 6], [7], 4) == ([1, 2, 3, 4], [], True)
    assert fit_budget([1, 2], [3], None) == ([1, 2], [3], False)


def test_plans_and_response_prefix():
    ref = Reference(problem(STEPS[:5]))
    assert ref.plan(0).kind == ON_POLICY and ref.plan(0).rate == 0.0
    hinted = ref.plan(2)
    assert (hinted.kind, hinted.units, hinted.rate) == (HINTED, 2, 0.4)
    assert ref.plan(9).units == 5
    assert ref.off_policy() == ref.off_policy().__class__(OFF_POLICY, 5, 1.0)
    assert response_prefix("") == ""
    assert response_prefix(ref.prefix(2)) == THINK_OPEN + ref.prefix(2)
    assert GRPO().plan(ref, step=0, round=0, n=3) == [ref.plan(0)] * 3


def test_pss_levels_are_cumulative_chunks_after_think():
    rows = SparklePSS(PSSConfig(levels=4)).rows([problem()]).rows
    assert [r.level for r in rows] == [0, 1, 2, 3, 4] and {r.levels for r in rows} == {5}
    assert rows[0].hint is None and rows[0].content == sparkle_user_turn("Find x8.")
    assert rows[0].id == "p1" and rows[2].id == "p1:L2"
    for r in rows[1:]:
        assert r.hint == "\n".join(STEPS[: 2 * r.level])
        assert r.content.endswith(" Assistant: <think>\n" + r.hint)
    assert STEPS[-1] in rows[-1].hint  # the original reveals the whole solution at level K


def test_pss_can_hide_the_final_step():
    rows = SparklePSS(PSSConfig(levels=4, hide_final_step=True)).rows([problem()]).rows
    assert len(rows) == 5
    assert all(STEPS[-1] not in (r.hint or "") for r in rows)
    assert rows[-1].hint == "\n".join(STEPS[:-1])


def test_pss_resplits_real_solutions_but_not_exact_steps():
    one_paragraph = problem(["First do A. Then do B. Next do C. Finally get $\\boxed{64}$."])
    resplit = SparklePSS(PSSConfig(levels=4)).rows([one_paragraph]).rows
    assert [r.hint for r in resplit[1:]] == ["First do A.", "First do A.\nThen do B.",
                                             "First do A.\nThen do B.\nNext do C.",
                                             "First do A.\nThen do B.\nNext do C.\nFinally get $\\boxed{64}$."]
    exact = SparklePSS(PSSConfig(levels=4, resplit=False))
    assert len(exact.rows([one_paragraph]).rows) == 2
    assert [r.level for r in exact.rows([problem(STEPS[:2])]).rows] == [0, 1, 2]
    assert len(exact.rows([problem([])]).rows) == 1
    hidden = SparklePSS(PSSConfig(levels=4, hide_final_step=True, resplit=False))
    assert len(hidden.rows([problem(STEPS[:1])]).rows) == 1  # the only step is the final one


def test_rows_over_the_prompt_limit_are_dropped_and_counted(tokenizer):
    pss = SparklePSS(PSSConfig(levels=4))
    unchecked = pss.rows([problem()])
    assert not unchecked.checked and unchecked.dropped == [] and len(unchecked.rows) == 5
    lengths = [len(tokenizer.encode(tokenizer.apply_chat_template(
        [{"role": "user", "content": r.content}], tokenize=False, add_generation_prompt=True),
        add_special_tokens=False)) for r in unchecked.rows]
    assert lengths[2] < lengths[3]
    limit = lengths[2]
    checked = pss.rows([problem(), problem(pid="p2")], tokenizer=tokenizer, max_prompt_tokens=limit)
    assert checked.checked
    assert checked.dropped == ["p1:L3", "p1:L4", "p2:L3", "p2:L4"]
    assert [r.id for r in checked.rows] == ["p1", "p1:L1", "p1:L2", "p2", "p2:L1", "p2:L2"]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_rows_write_in_trl_conversational_format(tmp_path, suffix):
    rowset = SparklePSS(PSSConfig(levels=2)).rows([problem()])
    path = rowset.write(tmp_path / f"rows{suffix}")
    if suffix == ".jsonl":
        back = [json.loads(line) for line in path.read_text().splitlines()]
    else:
        back = pq.read_table(path).to_pylist()
    assert [b["id"] for b in back] == ["p1", "p1:L1", "p1:L2"]
    assert back[2]["prompt"] == [{"role": "user", "content": rowset.rows[2].content}]
    assert back[0]["hint"] == "" and back[2]["hint"] == rowset.rows[2].hint
    assert back[1]["answer"] == "64" and back[1]["problem_id"] == "p1" and back[1]["level"] == 1


def test_step_stats_for_any_method():
    policy = GRPO()
    assert policy.end_step() is None
    policy.observe("a", 0.0, 0.0)
    policy.observe("a", 0.5, 0.0)            # group a: all wrong -> zero variance
    policy.observe("b", 0.0, 0.5)
    policy.observe("b", 0.5, 1.0)            # group b: mixed
    policy.observe("c", 0.25, 1.0, rewards=[2.0, 1.0])  # correct but rewards differ: not flat
    stats = policy.end_step()
    assert stats.questions == 3
    assert stats.mean_rate == pytest.approx(1.25 / 5)
    assert stats.mean_accuracy == pytest.approx(2.5 / 5)
    assert stats.round_accuracy == pytest.approx([0.5, 0.5])
    assert stats.zero_variance_frac == pytest.approx(1 / 3)
    assert stats.target_gap is None and "hint/target_gap" not in stats.metrics()
    assert stats.metrics()["hint/accuracy_round1"] == pytest.approx(0.5)
    assert policy.observations == {} and policy.end_step() is None


def test_state_files_name_their_method(tmp_path):
    path = GRPO().save_state(tmp_path / "hint_state.json")
    GRPO().load_state(path)
    with pytest.raises(ValueError, match="GRPO"):
        SparklePSS().load_state(path)


def test_methods_are_found_by_name_or_by_import_path():
    assert method_names() == ["grpo", "luffy", "prefix_rft", "pss", "seele", "uft"]
    assert get_method("pss") is SparklePSS
    assert get_method("scaffoldrl.methods.grpo:GRPO") is GRPO
    with pytest.raises(ValueError, match="unknown method 'sele'"):
        get_method("sele")
    with pytest.raises(ValueError, match="not a subclass"):
        get_method("scaffoldrl.hints:Reference")
    with pytest.raises(ValueError, match="cannot import"):
        get_method("scaffoldrl.nowhere:Method")


def test_data_augment_command(tmp_path, tokenizer):
    from typer.testing import CliRunner

    from scaffoldrl.cli import app
    from scaffoldrl.records import write_records

    records = write_records([problem(), problem(STEPS[:2], pid="p2")], tmp_path / "hard.jsonl")
    tok_dir = tmp_path / "tok"
    tokenizer.save_pretrained(tok_dir)
    out = tmp_path / "stage2.jsonl"
    result = CliRunner().invoke(app, ["data", "augment", str(records), str(out), "--levels", "2",
                                      "--hide-final-step", "--tokenizer", str(tok_dir),
                                      "--max-prompt-tokens", "100000"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    # p1: 7 visible steps in 2 chunks; p2: resplit cannot split "Step 1: ... = 1." finer, 1 visible step
    assert [r["id"] for r in rows] == ["p1", "p1:L1", "p1:L2", "p2", "p2:L1"]
    assert all(STEPS[-1] not in r["hint"] for r in rows) and STEPS[1] not in rows[-1]["hint"]
    assert "dropped 0 rows" in result.output and "hidden" in result.output
