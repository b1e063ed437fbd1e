import json
import random
import re

import pytest
from typer.testing import CliRunner

from scaffoldrl.analysis import analyze, chain_question, condition_question, load_annotated
from scaffoldrl.benchmarks import subset
from scaffoldrl.cli import app
from scaffoldrl.evaluate import Protocol, Sampling
from scaffoldrl.generation import Backend
from scaffoldrl.prompts import KNOWLEDGE_HINT, PLAN_HINT, with_knowledge, with_plan
from scaffoldrl.records import Problem, Subproblem

PROTOCOL = Protocol(name="test", default=Sampling(n=2, temperature=0.6), max_new_tokens=8, bootstrap=200)


class Scripted(Backend):
    """A stand-in model with known skills: ``rule(problem, condition, link)`` says whether it answers right."""

    def __init__(self, problems, rule):
        self.problems, self.rule, self.prompts = problems, rule, []

    def generate(self, prompts, config, seeds, progress=None):
        out = []
        for prompt in prompts:
            self.prompts.append(prompt)
            p = next(p for p in self.problems if p.problem in prompt)
            links = re.findall(r"^Q(\d+): ", prompt, flags=re.M)
            link = int(links[-1]) if links else None
            condition = "chain" if link else "plan" if PLAN_HINT in prompt else \
                "knowledge" if KNOWLEDGE_HINT in prompt else "plain"
            gold = p.subproblems[link - 1].answer if link else p.answer
            answer = gold if self.rule(p, condition, link) else "-12345"
            out.append(f"<think>\nwork\n</think>\n<answer>\nThe answer is \\boxed{{{answer}}}.\n</answer>")
        return out


def skills(p, condition, link):
    level = p.difficulty
    return {"plain": level <= 2, "plan": True, "knowledge": False,
            "chain": not (level >= 4 and link == 2)}[condition]


def test_conditions_use_sparkles_sentences_and_chains_carry_earlier_answers():
    p = Problem(id="x", problem="Find d.", answer="4", plan="1. Do it.", knowledge="zap(1) = 2.",
                subproblems=[Subproblem("What is a?", "2"), Subproblem("Let a be the answer to Q1. What is b?", "4")])
    assert condition_question(p, "plan") == with_plan("Find d.", "1. Do it.") == f"Find d.\n\n{PLAN_HINT}\n1. Do it."
    assert condition_question(p, "knowledge") == with_knowledge("Find d.", "zap(1) = 2.")
    assert condition_question(Problem(id="y", problem="?", answer="1"), "plan") is None
    assert chain_question(p, 0, []) == "Find d.\n\nQ1: What is a?"
    assert chain_question(p, 1, ["2"]) == "Find d.\n\nQ1: What is a?\nA1: 2\nQ2: Let a be the answer to Q1. What is b?"
    with pytest.raises(ValueError):
        condition_question(p, "hints")
    with pytest.raises(ValueError, match="unknown condition"):
        analyze(Scripted([p], lambda *a: True), "scripted", "synth", PROTOCOL, "unused", conditions=["plain", "hints"])


def test_analysis_scores_deltas_and_chains_on_the_embedded_domain(tmp_path):
    _, problems = load_annotated("synth")
    problems = subset(problems, 10)
    backend = Scripted(problems, skills)
    result = analyze(backend, "scripted", "synth", PROTOCOL, tmp_path, limit=10, progress=False)
    c, d = result["conditions"], result["deltas"]
    assert list(c) == ["plain", "plan", "knowledge", "chain"]
    assert c["plain"]["score"] == pytest.approx(0.4) and c["plan"]["score"] == 1.0 and c["knowledge"]["score"] == 0.0
    assert c["chain"]["score"] == pytest.approx(0.6)  # levels 4 and 5 break at link 2
    assert d["plan"]["delta"] == pytest.approx(0.6) and d["knowledge"]["delta"] == pytest.approx(-0.4)
    assert {lvl: v["delta"] for lvl, v in d["plan"]["by_difficulty"].items()} == \
           {"1": 0.0, "2": 0.0, "3": 1.0, "4": 1.0, "5": 1.0}
    assert c["chain"]["by_difficulty"]["3"]["score"] == 1.0 and c["chain"]["by_difficulty"]["4"]["score"] == 0.0
    # every chain starts; link 3 is reached only by the chains that got link 2 right
    n = PROTOCOL.default.n
    assert result["links"]["1"] == {"reached": 10 * n, "correct": 10 * n}
    assert result["links"]["2"] == {"reached": 10 * n, "correct": 6 * n}
    chained = [p for p in problems if p.difficulty <= 3 and len(p.subproblems) >= 3]
    assert result["links"]["3"]["reached"] == len(chained) * n
    second = [q for q in backend.prompts if "\nQ2: " in q]
    assert second and all(f"A1: {p.subproblems[0].answer}\n" in q for q in second
                          for p in problems if p.problem in q)
    saved = json.loads((tmp_path / "analysis.json").read_text())
    assert saved["conditions"]["chain"]["score"] == c["chain"]["score"]
    report = (tmp_path / "report.md").read_text()
    assert "By difficulty level" in report and "| 3 | 0.0 | 100.0 (+100.0)" in report
    assert (tmp_path / "accuracy_by_difficulty.png").exists() and (tmp_path / "pass_at_k.png").exists()
    # a rerun draws nothing new, the chains included
    again = analyze(Scripted(problems, skills), "scripted", "synth", PROTOCOL, tmp_path, limit=10, progress=False)
    assert again["_run"]["generated"] == 0 and again["conditions"] == saved["conditions"]


def preview_rows():
    """Two problems in the sparkle_preview schema, one row per subproblem, shuffled."""
    rows = []
    for pid, level, subs in (("p1", "3", [("What is 2+3?", "5"), ("Double Q1's answer.", "10")]),
                             ("p2", "7", [("What is 1+1?", "2"), ("Add 1 to it.", "3"), ("Square it.", "9")])):
        for seq, (q, a) in enumerate(subs, start=1):
            rows.append({"problem ID": pid, "problem": f"Problem {pid}: compute it.", "reasoning": "Step one.\n\nStep two.",
                         "answer": [subs[-1][1]], "difficulty_level": level, "domains": ["Algebra", "Arithmetic"],
                         "planning": "1. Add.\n2. Multiply.", "knowledge": "Addition is commutative.",
                         "subproblem_id": f"{pid}-{seq}", "subproblem_question": q, "subproblem_answer": a,
                         "augmented_problem": "", "subproblem_sequence": seq, "total_subproblems": len(subs)})
    random.Random(0).shuffle(rows)
    return rows


def test_any_sparkle_preview_file(tmp_path):
    path = tmp_path / "preview.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in preview_rows()))
    name, problems = load_annotated(str(path))
    assert name == "preview" and sorted(p.id for p in problems) == ["p1", "p2"]
    p2 = next(p for p in problems if p.id == "p2")
    assert [s.answer for s in p2.subproblems] == ["2", "3", "9"] and p2.answer == "9" and p2.difficulty == 7.0
    assert p2.plan.startswith("1. Add.") and p2.meta["subject"] == "Algebra"
    result = analyze(Scripted(problems, lambda p, c, link: c != "knowledge"), "scripted", str(path), PROTOCOL,
                     tmp_path / "run", progress=False)
    c = result["conditions"]
    assert c["plain"]["score"] == c["plan"]["score"] == c["chain"]["score"] == 1.0 and c["knowledge"]["score"] == 0
    assert set(c["plain"]["by_difficulty"]) == {"3", "7"} and result["links"]["3"]["reached"] == 2


def test_gsm8k_socratic_chains_are_real_subquestions(tmp_path):
    _, problems = load_annotated("gsm8k_socratic")
    problems = subset(problems, 3)
    backend = Scripted(problems, lambda p, c, link: c == "chain")
    result = analyze(backend, "scripted", "gsm8k_socratic", PROTOCOL, tmp_path, limit=3, progress=False)
    assert list(result["conditions"]) == ["plain", "chain"]  # no plans or knowledge in GSM8K
    assert result["conditions"]["chain"]["score"] == 1.0 and result["deltas"]["chain"]["delta"] == 1.0
    longest = max(len(p.subproblems) for p in problems)
    assert len(result["links"]) == longest
    p = problems[0]
    assert any(f"Q1: {p.subproblems[0].question}\nA1: {p.subproblems[0].answer}\nQ2: " in q for q in backend.prompts)


def test_cli_analyze_with_the_tiny_model(tiny_model_path, tmp_path):
    protocol = tmp_path / "p.yaml"
    protocol.write_text("name: quick\ndefault: {n: 2, temperature: 0.6}\nbootstrap: 100\n")
    result = CliRunner().invoke(app, ["analyze", "--model", str(tiny_model_path), "--data", "synth", "--limit", "5",
                                      "--protocol", str(protocol), "--max-new-tokens", "8", "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    assert "knowledge" in result.output and "delta vs plain" in result.output
    rows = [json.loads(line) for line in open(tmp_path / "a" / "samples.jsonl")]
    plan_rows = [r for r in rows if r["condition"] == "plan"]
    assert len(plan_rows) == 10 and all(PLAN_HINT in r["prompt"] for r in plan_rows)
    assert len([r for r in rows if r["condition"] == "chain" and r["link"] == 1]) == 10
    analysis = json.loads((tmp_path / "a" / "analysis.json").read_text())
    assert set(analysis["conditions"]["plain"]["by_difficulty"]) == {"1", "2", "3", "4", "5"}
