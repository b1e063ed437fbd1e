"""Annotation through an OpenAI-compatible server (`data annotate`): parsing, checking, retries, failures, resuming."""

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from typer.testing import CliRunner

from scaffoldrl.annotate import (PROMPTS, AnnotationError, annotate, check_output, load_prompt, parse_sparkle,
                                 parse_steps, render_prompt)
from scaffoldrl.cli import app
from scaffoldrl.methods import MissingReference
from scaffoldrl.records import Problem, read_records, write_records
from scaffoldrl.verify import get_grader

GOOD_STEPS = "Here you go.\nStep 1: Halve it: $x = 2/4$.\nStep 2: Reduce.\nSo $x = \\boxed{\\frac{1}{2}}$."
GOOD_SPARKLE = """PLAN:
1. Write the fraction.
2. Reduce it.

KNOWLEDGE:
A fraction is reduced by dividing both parts by their gcd.

SUBPROBLEMS:
Q1: What is the gcd of 2 and 4?
A1: \\boxed{2}
Q2: Using the answer to Q1, what is 2/4 reduced?
A2: $\\boxed{\\frac12}$
"""


def run(*args):
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "2000"})
    return result.exit_code, " ".join(re.sub("[│╭╮╰╯─]", " ", result.output).split())


def test_steps_are_parsed_and_checked_against_the_records_answer():
    assert parse_steps(GOOD_STEPS) == ["Step 1: Halve it: $x = 2/4$.", "Step 2: Reduce.\nSo $x = \\boxed{\\frac{1}{2}}$."]
    assert parse_steps("1. a\n2) b \\boxed{3}") == ["1. a", "2) b \\boxed{3}"]
    for text, kind in (("no steps at all", "no numbered steps"),
                       ("Step 1: a\nStep 3: b", "steps not numbered 1..n"),
                       ("\n".join(f"Step {i}: s" for i in range(1, 7)), "more than 5 steps")):
        with pytest.raises(AnnotationError) as err:
            parse_steps(text)
        assert err.value.kind == kind
    assert len(parse_steps("\n".join(f"Step {i}: s" for i in range(1, 7)), max_steps=6)) == 6
    problem = Problem("q", "What is 2/4?", "0.5", steps=["2/4 = 1/2"])
    grader = get_grader()
    assert check_output("steps", GOOD_STEPS, problem, grader)["steps"][-1].endswith("}$.")  # 1/2 == 0.5
    with pytest.raises(AnnotationError, match="not the record's"):
        check_output("steps", GOOD_STEPS.replace("\\frac{1}{2}", "3"), problem, grader)
    with pytest.raises(AnnotationError, match="no \\\\boxed"):
        check_output("steps", "Step 1: it is 1/2", problem, grader)


def test_plans_knowledge_and_chains_are_parsed_and_the_last_answer_checked():
    parsed = parse_sparkle(GOOD_SPARKLE)
    assert parsed["plan"].startswith("1. Write") and parsed["knowledge"].startswith("A fraction")
    assert [(s.question[:6], s.answer) for s in parsed["subproblems"]] == [("What i", "2"), ("Using ", "\\frac12")]
    problem = Problem("q", "What is 2/4?", "1/2")
    assert check_output("sparkle", GOOD_SPARKLE, problem, get_grader())["subproblems"][1].answer == "\\frac12"
    for text, kind in ((GOOD_SPARKLE.replace("KNOWLEDGE:", "FACTS:"), "no KNOWLEDGE section"),
                       (GOOD_SPARKLE.replace("A1:", "Q3:"), "subproblems not Q1, A1, Q2, A2, ..."),
                       (GOOD_SPARKLE.replace("A2: $\\boxed{\\frac12}$", ""), "subproblem without an answer"),
                       (GOOD_SPARKLE.replace("A2: $\\boxed{\\frac12}$", "A2: $\\boxed{}$"),
                        "subproblem without an answer")):
        with pytest.raises(AnnotationError) as err:
            check_output("sparkle", text, problem, get_grader())
        assert err.value.kind == kind
    with pytest.raises(AnnotationError, match="last subproblem's answer"):
        check_output("sparkle", GOOD_SPARKLE, Problem("q", "?", "3"), get_grader())


def test_prompts_ship_with_the_package_and_keep_latex_braces(tmp_path):
    assert set(PROMPTS) == {"steps", "sparkle"} and all(p.is_file() for p in PROMPTS.values())
    problem = Problem("q", "Find $\\frac{a}{b}$.", "\\{1, 2\\}", steps=["a", "b"])
    text = render_prompt(load_prompt("steps"), problem, max_steps=4)
    assert "Find $\\frac{a}{b}$." in text and "at most 4 numbered steps" in text and "a\nb" in text
    assert "final answer is: \\{1, 2\\}" in text
    (tmp_path / "bad.txt").write_text("no field here")
    with pytest.raises(ValueError, match="problem"):
        load_prompt("steps", tmp_path / "bad.txt")


class FakeServer:
    """A tiny OpenAI-compatible chat server on 127.0.0.1 that answers at most ``budget`` requests, then stops.

    Each problem's first request of a task gets an unusable reply; later ones a well-formed annotation of the answer the
    prompt states, except for problems whose text contains ``never``.
    """

    def __init__(self, budget: int):
        self.seen: dict[tuple, int] = {}
        self.requests = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body["messages"][0]["content"]
                fake.requests += 1
                problem = re.search(r"Problem:\n(.*?)\n\n", prompt, re.S).group(1)
                answer = re.search(r"final answer(?: is)?: (.*)$", prompt, re.M).group(1).strip()
                key = (problem, "SUBPROBLEMS" in prompt)
                fake.seen[key] = fake.seen.get(key, 0) + 1
                if fake.seen[key] == 1 or "never" in problem:
                    text = "I would rather not."
                elif "SUBPROBLEMS" in prompt:
                    text = (f"PLAN:\n1. Think.\n2. Compute.\nKNOWLEDGE:\nArithmetic.\nSUBPROBLEMS:\n"
                            f"Q1: What is asked?\nA1: \\boxed{{{answer}}}")
                else:
                    text = f"Step 1: Think.\nStep 2: So the answer is \\boxed{{{answer}}}."
                reply = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                                    "choices": [{"index": 0, "finish_reason": "stop",
                                                 "message": {"role": "assistant", "content": text}}],
                                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.timeout = 0.5
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._stop = threading.Event()

        def serve():  # bounded: `budget` requests or 120 s, then the socket closes (clients get refused, not hung)
            deadline = time.monotonic() + 120
            while fake.requests < budget and not self._stop.is_set() and time.monotonic() < deadline:
                self.httpd.handle_request()
            self.httpd.server_close()

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()

    def close(self):
        self._stop.set()
        self.thread.join(timeout=5)


@pytest.fixture
def fake_server():
    server = FakeServer(budget=40)
    yield server
    server.close()


def test_annotate_retries_counts_failures_and_resumes(fake_server, tmp_path):
    problems = [Problem(f"p{i}", f"What is {i} + {i}?" if i < 2 else "This one never works.", str(2 * i),
                        steps=["some reasoning", f"so {2 * i}"]) for i in range(3)]
    records = write_records(problems, tmp_path / "in.jsonl")
    args = ["data", "annotate", records, tmp_path / "run", "--base-url", fake_server.url, "--model", "fake",
            "--task", "steps,sparkle", "--retries", 1, "--concurrency", 2]
    code, output = run(*args)
    assert code == 0, output
    assert "steps: ok 2, failed 1 of 3 records (6 requests now, 0 records reused)" in output
    assert "sparkle: ok 2, failed 1 of 3 records" in output and "no numbered steps 4" in output
    assert "2 records written, 1 left out" in output
    assert fake_server.requests == 12
    written = read_records(tmp_path / "run" / "records.jsonl")
    assert [p.id for p in written] == ["p0", "p1"]
    assert written[1].steps == ["Step 1: Think.", "Step 2: So the answer is \\boxed{2}."]
    assert written[1].plan.startswith("1. Think") and written[1].subproblems[-1].answer == "2"
    assert written[1].meta["annotated"] == {"steps": "fake", "sparkle": "fake"}
    failures = [json.loads(line) for line in open(tmp_path / "run" / "failures.jsonl")]
    assert [(f["task"], f["id"], f["attempts"], len(f["reasons"])) for f in failures] == [("steps", "p2", 2, 2),
                                                                                       ("sparkle", "p2", 2, 2)]
    code, output = run(*args)  # a rerun asks for nothing
    assert code == 0 and "(0 requests now, 3 records reused)" in output and fake_server.requests == 12, output
    code, output = run(*args, "--retry-failed", "--keep-failed")  # ask again for p2, keep it unannotated
    assert code == 0 and "(2 requests now, 2 records reused)" in output and fake_server.requests == 16, output
    assert [p.id for p in read_records(tmp_path / "run" / "records.jsonl")] == ["p0", "p1", "p2"]


def test_annotate_refuses_steps_without_a_reference_and_changed_settings(fake_server, tmp_path):
    from scaffoldrl.generation import OpenAIBackend

    backend = OpenAIBackend(fake_server.url, "fake")
    with pytest.raises(MissingReference, match="x.jsonl: 1 of 1"):
        annotate(backend, [Problem("a", "1+1?", "2")], tmp_path / "run", ["steps"], where="x.jsonl", progress=False)
    annotate(backend, [Problem("a", "What is 1+1?", "2")], tmp_path / "run", ["sparkle"], model="fake", progress=False)
    with pytest.raises(Exception, match="max_steps"):
        annotate(backend, [Problem("a", "What is 1+1?", "2")], tmp_path / "run", ["sparkle"], model="fake",
                 max_steps=3, progress=False)
    backend.close()


@pytest.mark.slow
def test_annotate_against_a_real_server_counts_what_fails(server, tiny_model_path, tmp_path):
    """`transformers serve` with the tiny model: the text is noise, so outputs fail their checks and are counted."""
    from scaffoldrl.prepare import prepare
    from scaffoldrl.sources import VENDOR

    rows = (VENDOR / "benchmarks" / "math500.jsonl").read_text().splitlines()[:3]
    (tmp_path / "math.jsonl").write_text("\n".join(rows) + "\n")
    prepare(tmp_path / "math.jsonl", tmp_path / "records.jsonl", {"id": "unique_id"})
    code, output = run("data", "annotate", tmp_path / "records.jsonl", tmp_path / "run", "--base-url", server,
                       "--model", tiny_model_path, "--task", "steps,sparkle", "--retries", 1, "--max-new-tokens", 12,
                       "--concurrency", 2)
    assert code == 0, output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    for task in ("steps", "sparkle"):
        c = summary["counts"][task]
        assert c["ok"] + c["failed"] == 3 and c["requests"] == c["ok"] + 2 * c["failed"]
        assert sum(summary["reasons"][task].values()) == c["requests"] - c["ok"]
    failures = [json.loads(line) for line in open(tmp_path / "run" / "failures.jsonl")]
    assert len(failures) == sum(summary["counts"][t]["failed"] for t in ("steps", "sparkle"))
    assert all(f["output"] is not None and len(f["reasons"]) == 2 for f in failures)
    assert "steps: ok" in output and "sparkle: ok" in output
