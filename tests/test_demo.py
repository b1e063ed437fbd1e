from scaffoldrl import domain
from scaffoldrl.demo import HINTS, Stages, hint_prefix, hint_table


def test_hint_prefixes_reveal_none_half_and_all_but_last_step():
    p = next(q for q in domain.generate(5, (5,)) if len(q.steps) == 6)
    assert hint_prefix(p, "none") == ""
    assert hint_prefix(p, "half") == "<think>\n" + "\n".join(p.steps[:3]) + "\n"
    assert hint_prefix(p, "all_but_last").count("\n") == 6 and p.steps[-1] not in hint_prefix(p, "all_but_last")


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
