"""veRL and lm-evaluation-harness bridges: exported files, the reward entry point, the task folder.

Neither veRL nor lm_eval is needed: the tests that use them skip when they are not importable.
"""

import importlib
import importlib.util
import inspect
import json
import pickle
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from scaffoldrl import domain, tinymodel
from scaffoldrl.cli import app
from scaffoldrl.methods.sparkle import PSSConfig, SparklePSS
from scaffoldrl.integrations import lm_eval as lme
from scaffoldrl.integrations import verl
from scaffoldrl.prompts import THINK_OPEN, sparkle_prompt, sparkle_user_turn
from scaffoldrl.records import write_records

GOOD = "<think>\n2 + 2 = 4\n</think>\n<answer>\nThe answer is \\boxed{4}.\n</answer>"

# veRL's row schema spelled out independently of the code under test.
EXPECTED_SCHEMA = pa.schema([
    ("data_source", pa.string()),
    ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
    ("ability", pa.string()),
    ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
    ("extra_info", pa.struct([
        ("split", pa.string()), ("index", pa.int64()), ("id", pa.string()), ("problem_id", pa.string()),
        ("question", pa.string()), ("thinking_level", pa.int64()), ("total_thinking_levels", pa.int64()),
        ("reward", pa.string()), ("source", pa.string())])),
])


@pytest.fixture(scope="module")
def problems():
    return domain.generate(3, levels=(3, 5), seed=7)


@pytest.fixture(scope="module")
def tokenizer(problems):
    texts = [sparkle_user_turn(p.problem, p.solution) for p in problems]
    return tinymodel.train_tokenizer(texts, vocab_size=300)


# ------------------------------------------------------------------ veRL data


def test_plain_export_reads_back_in_verl_schema(tmp_path, problems):
    result = verl.export_verl(problems, tmp_path, method="grpo", data_source="dsr")
    table = pq.read_table(result.path)
    assert table.schema.equals(EXPECTED_SCHEMA, check_metadata=False)
    rows = table.to_pylist()
    assert len(rows) == result.rows == len(problems)
    for i, (row, p) in enumerate(zip(rows, problems)):
        assert row == {
            "data_source": "dsr", "prompt": [{"role": "user", "content": sparkle_user_turn(p.problem)}],
            "ability": "math", "reward_model": {"style": "rule", "ground_truth": p.answer},
            "extra_info": {"split": "train", "index": i, "id": p.id, "problem_id": p.id, "question": p.problem,
                           "thinking_level": 0, "total_thinking_levels": 0, "reward": "sparkle", "source": p.source}}
    manifest = json.loads((tmp_path / "train.json").read_text())
    assert manifest["rows"] == len(problems) and manifest["dropped"] == 0 and not manifest["lengths_checked"]


def test_pss_export_is_the_pss_augmentation_one_row_per_level(tmp_path, problems):
    config = PSSConfig(levels=4, resplit=False)
    result = verl.export_verl(problems, tmp_path, method="pss", pss=config)
    rows = pq.read_table(result.path).to_pylist()
    expected = SparklePSS(config).rows(problems).rows  # the augmentation `scaffoldrl data augment` writes
    assert [r["prompt"][0]["content"] for r in rows] == [e.content for e in expected]
    assert [r["extra_info"]["thinking_level"] for r in rows] == [e.level for e in expected]
    assert [r["extra_info"]["id"] for r in rows] == [e.id for e in expected]
    assert {r["extra_info"]["reward"] for r in rows} == {"sparkle_aug"}
    levels = [r["extra_info"]["thinking_level"] for r in rows]
    assert max(levels) == 4 and result.per_level == {lv: levels.count(lv) for lv in sorted(set(levels))}
    for r in rows:  # a hinted row opens the thinking in the prompt, a plain row does not
        info = r["extra_info"]
        assert ("Assistant: " + THINK_OPEN in r["prompt"][0]["content"]) == (info["thinking_level"] > 0)
        siblings = sum(x["extra_info"]["problem_id"] == info["problem_id"] for x in rows)
        assert info["total_thinking_levels"] == siblings - 1


def _prompt_lengths(problems, tokenizer) -> list[int]:
    """Every PSS row's prompt length in tokens, through the chat template (as veRL measures it)."""
    rowset = SparklePSS(PSSConfig(resplit=False)).rows(problems)
    return sorted(len(tokenizer.encode(sparkle_prompt(r.question, tokenizer, r.hint), add_special_tokens=False))
                  for r in rowset.rows)


def test_rows_over_the_token_limit_are_dropped_and_counted(tmp_path, problems, tokenizer):
    lengths = _prompt_lengths(problems, tokenizer)
    limit = lengths[len(lengths) // 2]
    too_long = sum(n > limit for n in lengths)
    assert 0 < too_long < len(lengths)
    result = verl.export_verl(problems, tmp_path, method="pss", pss=PSSConfig(resplit=False), tokenizer=tokenizer,
                              max_prompt_tokens=limit)
    assert len(result.dropped) == too_long and result.rows == len(lengths) - too_long
    assert pq.read_table(result.path).num_rows == result.rows
    manifest = json.loads((tmp_path / "train.json").read_text())
    assert manifest["dropped"] == too_long and manifest["max_prompt_tokens"] == limit and manifest["lengths_checked"]


def test_cli_export_verl_prints_rows_written_and_dropped(tmp_path, problems, tokenizer):
    records = write_records(problems, tmp_path / "hard.jsonl")
    tokenizer.save_pretrained(tmp_path / "tok")
    out = tmp_path / "verl"
    lengths = _prompt_lengths(problems, tokenizer)
    limit = lengths[len(lengths) // 3]
    result = CliRunner().invoke(app, ["export", "verl", "--records", str(records), "--method", "pss", "--out", str(out),
                                      "--model", str(tmp_path / "tok"), "--max-prompt-tokens", str(limit),
                                      "--no-resplit", "--split", "train"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "train.json").read_text())
    dropped = sum(n > limit for n in lengths)
    assert manifest["dropped"] == dropped > 0 and manifest["rows"] == len(lengths) - dropped
    assert f"wrote {manifest['rows']} rows from {len(problems)} problems" in result.output
    assert f"dropped {dropped} rows over {limit} prompt tokens" in result.output
    assert manifest["data_source"] == "hard" and manifest["method"] == "pss"
    bad = CliRunner().invoke(app, ["export", "verl", "--records", str(records), "--method", "seele", "--out", str(out)])
    assert bad.exit_code != 0


# ------------------------------------------------------------------ veRL reward


def load_like_verl(path: str, name: str):
    """What veRL's get_custom_reward_fn does for a ``pkg://`` path: import the module, take the attribute,
    and merge ``reward_kwargs`` into every call's keyword arguments."""
    prefix = "pkg://"
    assert path.startswith(prefix)
    module = importlib.import_module(path[len(prefix):].replace("/", "."))
    raw_fn = getattr(module, name)

    def call_with_kwargs(extra_kwargs, *args, **kwargs):
        return raw_fn(*args, **{**kwargs, **extra_kwargs})

    return lambda reward_kwargs: partial(call_with_kwargs, dict(reward_kwargs))


def test_entry_point_loaded_as_verl_does_and_called_from_a_thread_pool(tmp_path, problems):
    make = load_like_verl("pkg://scaffoldrl.integrations.verl", "compute_score")
    fn = make({})
    assert not inspect.iscoroutinefunction(verl.compute_score)
    pickle.dumps(verl.compute_score)  # process-pool reward managers pickle it
    rows = pq.read_table(verl.export_verl(problems, tmp_path, method="pss",
                                          pss=PSSConfig(resplit=False)).path).to_pylist()
    answer = rows[0]["reward_model"]["ground_truth"]
    no_think = GOOD.replace("4", answer).removeprefix("<think>\n")
    jobs = []
    for row in rows:  # veRL's call: keywords, extra_info as stored (plus its own keys)
        info = row["extra_info"] | {"num_turns": None, "rollout_reward_scores": {}}
        jobs.append(dict(data_source=row["data_source"], solution_str=no_think,
                         ground_truth=row["reward_model"]["ground_truth"], extra_info=info))
    jobs += [dict(data_source="math500", solution_str="\\boxed{\\frac{1}{2}}", ground_truth="0.5", extra_info={}),
             dict(data_source="math500", solution_str="no answer", ground_truth="3", extra_info=None)]
    with ThreadPoolExecutor(8) as pool:
        scores = list(pool.map(lambda job: fn(**job), jobs))
    for row, score in zip(rows, scores):
        assert set(score) == {"score", "acc", "extracted"}
        if row["reward_model"]["ground_truth"] == answer:
            # spk_h_aug: a hinted row opened <think>, so a response without it is well formatted (2.0);
            # the plain row of the same problem did not (correct, bad format: 1.0)
            assert score == {"score": 2.0 if row["extra_info"]["thinking_level"] else 1.0, "acc": 1.0,
                             "extracted": answer}
        else:
            assert score["acc"] == 0.0 and score["score"] == -1.0
    assert scores[-2] == {"score": 1.0, "acc": 1.0, "extracted": "\\frac{1}{2}"}  # binary for unknown sources
    assert scores[-1] == {"score": 0.0, "acc": 0.0, "extracted": ""}
    # reward_kwargs from the config pick the reward for every row
    binary = make({"reward": "binary"})
    assert binary(data_source="sparkle_dsr40k", solution_str=GOOD, ground_truth="4", extra_info={})["score"] == 1.0


@pytest.mark.parametrize("data_source, extra_info, reward, expected", [
    ("math500", {}, None, "binary"),
    ("scaffoldrl/sparkle", {}, None, "sparkle"),
    ("sparkle_dsr40k", {}, None, "sparkle"),
    ("sparkle_hardmath", {"thinking_level": 2}, None, "sparkle_aug"),
    ("math500", {"reward": "spk_h_aug"}, None, "sparkle_aug"),
    ("sparkle_dsr40k", {"reward": "sparkle"}, "correctness", "binary"),
])
def test_reward_choice(data_source, extra_info, reward, expected):
    assert verl.choose_reward(data_source, extra_info, reward) == expected


def test_sparkle_rewards_and_unknown_names():
    plain, opened = GOOD, GOOD.removeprefix("<think>\n")
    assert verl.compute_score("sparkle_dsr40k", plain, "4")["score"] == 2.0
    assert verl.compute_score("sparkle_dsr40k", opened, "4")["score"] == 1.0
    # SPARKLE's own stage-2 rows: thinking_level 0 is a plain row, > 0 an augmented one
    assert verl.compute_score("sparkle_hardmath", opened, "4", {"thinking_level": 0})["score"] == 1.0
    assert verl.compute_score("sparkle_hardmath", opened, "4", {"thinking_level": 3})["score"] == 2.0
    prompt = sparkle_user_turn("What is 2 + 2?", "2 + 2 = 4")  # a prompt in extra_info decides instead
    assert verl.compute_score("sparkle_hardmath", opened, "4", {"thinking_level": 0, "prompt": prompt})["score"] == 2.0
    assert verl.compute_score("x", "\\boxed{5}", "4", reward="sparkle") == {"score": -1.0, "acc": 0.0, "extracted": "5"}
    assert verl.compute_score("x", "\\boxed{4}", ["4"])["acc"] == 1.0  # a Parquet list of one answer
    with pytest.raises(ValueError, match="unknown reward"):
        verl.compute_score("x", GOOD, "4", reward="spk")


def test_verl_own_loader_when_installed():
    """veRL's get_custom_reward_fn itself (runs where veRL is installed; CI skips it)."""
    reward = pytest.importorskip("verl.trainer.ppo.reward", reason="veRL not installed")
    from omegaconf import OmegaConf

    entry = {"path": "pkg://scaffoldrl.integrations.verl", "name": "compute_score", "reward_kwargs": {}}
    # veRL >= 0.9 reads reward.custom_reward_function, earlier versions the top-level key
    config = OmegaConf.create({"custom_reward_function": entry, "reward": {"custom_reward_function": entry}})
    fn = reward.get_custom_reward_fn(config)
    with ThreadPoolExecutor(4) as pool:
        scores = list(pool.map(lambda i: fn(data_source="sparkle_dsr40k", solution_str=GOOD.replace("4", str(i)),
                                            ground_truth=str(i), extra_info={}), range(8)))
    assert [s["score"] for s in scores] == [2.0] * 8


# ------------------------------------------------------------------ lm-evaluation-harness


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!function", lambda loader, node: ("!function", loader.construct_scalar(node)))


def _load_utils(folder):
    spec = importlib.util.spec_from_file_location("exported_utils", folder / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lm_eval_export_writes_tasks_groups_and_local_data(tmp_path):
    result = lme.export_lm_eval(tmp_path, ["sparkle", "greedy", "seele"], ["synth", "aime24"])
    assert result["tasks"]["sparkle"] == ["scaffoldrl_sparkle_synth", "scaffoldrl_sparkle_aime24"]
    assert result["data"] == {"data/synth.jsonl": 200, "data/aime24.jsonl": 30}
    task = yaml.load((tmp_path / "scaffoldrl_seele_aime24.yaml").read_text(), Loader=_Loader)
    assert task["repeats"] == 32 and task["filter_list"][0]["filter"][0] == {"function": "take_first_k", "k": 32}
    assert task["generation_kwargs"] == {"until": [], "do_sample": True, "temperature": 0.6, "max_gen_toks": 2048,
                                         "top_p": 1.0}
    assert task["custom_dataset"] == ("!function", "utils.load_dataset")
    assert task["process_results"] == ("!function", "utils.process_results")
    assert [m["metric"] for m in task["metric_list"]] == ["avg@32", "pass@2", "pass@4", "pass@8", "pass@16",
                                                          "pass@32", "maj@32", "score"]
    greedy = yaml.load((tmp_path / "scaffoldrl_seele_synth.yaml").read_text(), Loader=_Loader)
    assert greedy["repeats"] == 1 and greedy["generation_kwargs"]["do_sample"] is False
    group = yaml.safe_load((tmp_path / "scaffoldrl_sparkle.yaml").read_text())
    assert group["group"] == "scaffoldrl_sparkle" and group["task"] == result["tasks"]["sparkle"]
    # the hook loads the data file next to it; the prompt is SPARKLE's user turn
    utils = _load_utils(tmp_path)
    ds = utils.load_dataset(file=task["dataset_kwargs"]["file"], version=1.0)
    assert list(ds) == ["test"] and len(ds["test"]) == 30
    doc = ds["test"][0]
    assert doc["prompt"] == sparkle_user_turn(doc["problem"])


def test_lm_eval_process_results_reports_each_tasks_metrics():
    doc = {"answer": "4"}
    responses = ["\\boxed{4}", "\\boxed{5}", "\\boxed{5}", "no answer"]
    out = lme.process_results(doc, [responses])  # take_first_k hands over the list of n responses
    assert list(out) == lme.metric_names(4)
    assert out["avg@4"] == out["score"] == 0.25 and out["pass@4"] == 1.0 and out["maj@4"] == 0.0
    assert out["pass@2"] == pytest.approx(0.5)
    assert lme.process_results(doc, [["\\boxed{4}"]]) == {"pass@1": 1.0, "score": 1.0}


def test_cli_export_lm_eval(tmp_path):
    result = CliRunner().invoke(app, ["export", "lm-eval", "--out", str(tmp_path), "--protocols", "sparkle",
                                      "--benchmarks", "amc23"])
    assert result.exit_code == 0, result.output
    assert "group scaffoldrl_sparkle: 1 tasks (scaffoldrl_sparkle_amc23)" in result.output
    assert (tmp_path / "data" / "amc23.jsonl").exists() and (tmp_path / "utils.py").exists()


def test_lm_eval_lists_the_exported_tasks_when_installed(tmp_path):
    """lm_eval's own task index over the folder (runs where lm_eval is installed; CI skips it)."""
    tasks = pytest.importorskip("lm_eval.tasks", reason="lm_eval not installed")
    lme.export_lm_eval(tmp_path, ["sparkle"], ["amc23"])
    manager = tasks.TaskManager(include_path=str(tmp_path))
    assert {"scaffoldrl_sparkle", "scaffoldrl_sparkle_amc23"} <= set(manager.all_tasks)
