"""lm-evaluation-harness: our benchmarks and protocols as task YAMLs, graded by our grader.

:func:`export_lm_eval` writes a folder for ``lm_eval --include_path DIR``:

* ``data/BENCH.jsonl``: each benchmark's problems with the prompt already
  rendered as the protocol's user turn (SPARKLE's instruction and turn), so
  the tasks read local files and never a hub;
* one task per (protocol, benchmark), ``scaffoldrl_{protocol}_{benchmark}``:
  ``repeats`` = the protocol's n samples with its temperature, top-p and
  response limit, all n kept (``take_first_k``) and scored by
  :func:`process_results`: avg@n, unbiased pass@k (k = 2, 4, …, n), maj@n, and
  ``score`` (avg@n, or pass@1 when greedy), the same estimators as ``scaffoldrl eval``;
* one group per protocol, ``scaffoldrl_{protocol}``, averaging ``score`` over
  its benchmarks unweighted (SPARKLE's "average" column);
* ``utils.py``, the two hooks the YAMLs name; it imports scaffoldrl, which
  must therefore be installed where lm_eval runs (the grader is ours:
  math-verify behind killable workers, the one that grades training).

Run with ``--apply_chat_template``: the prompt is one user turn, and the
chat template adds the assistant header as ``scaffoldrl eval`` does. Seeds
are lm_eval's (``--seed``), not our per-sample ones, so samples differ from
a ``scaffoldrl eval`` run while the estimators agree in expectation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml

from ..metrics import avg_at_n, default_ks, maj_at_k, pass_at_k

TASK_PREFIX = "scaffoldrl"
FILTER = "samples"
"""The filter that keeps all n responses of a document for :func:`process_results`."""

UTILS = '''"""Hooks for the scaffoldrl task YAMLs beside this file (written by `scaffoldrl export lm-eval`)."""

from pathlib import Path

from scaffoldrl.integrations import lm_eval as scaffoldrl_lm_eval

HERE = Path(__file__).resolve().parent
EXTRACTION = {extraction!r}  # "default", "strict" (answer tags and boxes only) or None (the shared grader's)


def load_dataset(file, **kwargs):
    """The task's data file, relative to this folder, as a DatasetDict with one "test" split."""
    return scaffoldrl_lm_eval.load_split(HERE / file)


def process_results(doc, results):
    return scaffoldrl_lm_eval.process_results(doc, results, extraction=EXTRACTION)
'''


def metric_names(n: int) -> list[str]:
    """The metrics of a task drawing ``n`` samples per problem (what :func:`process_results` returns)."""
    if n == 1:
        return ["pass@1", "score"]
    return [f"avg@{n}", *(f"pass@{k}" for k in default_ks(n) if k > 1), f"maj@{n}", "score"]


def sample_metrics(correct: Sequence[bool], extracted: Sequence[str | None]) -> dict[str, float]:
    """Per-problem values of :func:`metric_names` from its n graded samples; lm_eval averages them over problems."""
    n = len(correct)
    if n == 1:
        value = float(bool(correct[0]))
        return {"pass@1": value, "score": value}
    c = sum(map(bool, correct))
    out = {f"avg@{n}": avg_at_n(correct)}
    out |= {f"pass@{k}": pass_at_k(n, c, k) for k in default_ks(n) if k > 1}
    out[f"maj@{n}"] = maj_at_k(list(extracted), list(correct), n)
    out["score"] = out[f"avg@{n}"]
    return out


def process_results(doc: dict, results: list, extraction: str | None = None) -> dict[str, float]:
    """lm_eval's hook: grade the document's n responses against its ``answer`` with the shared grader
    (``extraction``: ``default`` or ``strict``; None: the shared grader's)."""
    from ..verify import get_grader

    responses = results[0] if results and isinstance(results[0], (list, tuple)) else results
    verdicts = get_grader().grade_batch([(str(r), str(doc["answer"])) for r in responses], extraction=extraction)
    return sample_metrics([v.correct is True for v in verdicts], [v.extracted for v in verdicts])


def load_split(path: str | Path):
    """A JSONL data file as ``DatasetDict({"test": ...})`` (built in memory: no hub, no cache)."""
    import datasets

    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


def task_name(protocol: str, benchmark: str) -> str:
    """The lm-eval task name of a protocol and benchmark."""
    return f"{TASK_PREFIX}_{protocol}_{benchmark}"


def _data_rows(problems: Iterable, protocol) -> list[dict[str, Any]]:
    return [{"id": p.id, "prompt": protocol.user_turn(p.problem), "answer": p.answer, "problem": p.problem,
             "difficulty": p.difficulty, "subject": (p.meta or {}).get("subject")} for p in problems]


def task_yaml(protocol, benchmark: str, data_file: str) -> str:
    """The YAML of one task: the protocol's sampling for ``benchmark``, all samples scored together."""
    sampling = protocol.sampling(benchmark)
    generation = {"until": [], "do_sample": not sampling.greedy, "temperature": float(sampling.temperature),
                  "max_gen_toks": protocol.max_new_tokens}
    if not sampling.greedy:
        generation["top_p"] = float(sampling.top_p)
    config = {
        "task": task_name(protocol.name, benchmark),
        "dataset_kwargs": {"file": data_file},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": "prompt",
        "doc_to_target": "answer",
        "repeats": sampling.n,
        "generation_kwargs": generation,
        "filter_list": [{"name": FILTER, "filter": [{"function": "take_first_k", "k": sampling.n}]}],
        "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": True} for m in metric_names(sampling.n)],
        "metadata": {"version": 1.0, "protocol": protocol.name, "benchmark": benchmark, "samples": sampling.n},
    }
    header = (f"# scaffoldrl protocol {protocol.name!r} on {benchmark}: {sampling.n} sample(s) per problem, "
              f"temperature {sampling.temperature}, top_p {sampling.top_p}\n")
    hooks = "custom_dataset: !function utils.load_dataset\nprocess_results: !function utils.process_results\n"
    return header + hooks + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


def group_yaml(protocol: str, tasks: Sequence[str]) -> str:
    """The lm-eval group that runs a protocol's tasks together."""
    config = {
        "group": f"{TASK_PREFIX}_{protocol}",
        "task": list(tasks),
        "aggregate_metric_list": [{"metric": "score", "aggregation": "mean", "weight_by_size": False,
                                   "filter_list": [FILTER]}],
        "metadata": {"version": 1.0},
    }
    return (f"# every benchmark of protocol {protocol!r}; score = unweighted mean of the tasks' scores\n"
            + yaml.safe_dump(config, sort_keys=False))


def export_lm_eval(out: str | Path, protocols: Sequence[str] = ("sparkle", "seele", "greedy"),
                   benchmarks: Sequence[str] | None = None, field_map: dict[str, str] | None = None,
                   extraction: str | None = None) -> dict:
    """Write the task folder; returns ``{"tasks": {protocol: [task, ...]}, "data": {file: rows}}``.

    ``extraction`` is the grader's answer extraction the tasks use (``default`` or ``strict``,
    :data:`scaffoldrl.extract.EXTRACTIONS`), written into ``utils.py``; None leaves it to the
    shared grader where lm_eval runs (``SCAFFOLDRL_GRADER_EXTRACTION``, else ``default``).

    ``protocols`` are presets or YAML files (:meth:`~scaffoldrl.evaluate.Protocol.load`);
    ``benchmarks`` are names or ``NAME=PATH`` (default: every built-in benchmark).
    """
    from ..benchmarks import BENCHMARKS, load_benchmark
    from ..evaluate import Protocol
    from ..extract import EXTRACTIONS

    if extraction is not None and extraction not in EXTRACTIONS:
        raise ValueError(f"unknown extraction {extraction!r}; known: {', '.join(EXTRACTIONS)}")
    out = Path(out)
    (out / "data").mkdir(parents=True, exist_ok=True)
    loaded = [load_benchmark(spec, field_map) for spec in (benchmarks or list(BENCHMARKS))]
    written: dict[str, int] = {}
    tasks: dict[str, list[str]] = {}
    for spec in protocols:
        protocol = Protocol.load(spec)
        if protocol.name in tasks:
            raise ValueError(f"two protocols are named {protocol.name!r}")
        tasks[protocol.name] = []
        for name, problems in loaded:
            data_file = f"data/{name}.jsonl" if protocol.prompt == "sparkle" else f"data/{name}.{protocol.name}.jsonl"
            if data_file not in written:
                rows = _data_rows(problems, protocol)
                (out / data_file).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                             encoding="utf-8")
                written[data_file] = len(rows)
            task = task_name(protocol.name, name)
            (out / f"{task}.yaml").write_text(task_yaml(protocol, name, data_file), encoding="utf-8")
            tasks[protocol.name].append(task)
        (out / f"{TASK_PREFIX}_{protocol.name}.yaml").write_text(group_yaml(protocol.name, tasks[protocol.name]),
                                                                  encoding="utf-8")
    (out / "utils.py").write_text(UTILS.format(extraction=extraction), encoding="utf-8")
    return {"tasks": tasks, "data": written}
