"""The scaffolded GRPO trainer on a tiny model: masks, rounds, loss terms, checkpoints, recipes, and the TRL hooks."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
import torch
import trl
from transformers import AutoTokenizer
from trl import GRPOConfig, GRPOTrainer
from typer.testing import CliRunner

from scaffoldrl import domain
from scaffoldrl.cli import app
from scaffoldrl.hints import HINTED, KINDS, OFF_POLICY, ON_POLICY, Reference
from scaffoldrl.methods.seele import cold_start_rate, fit_three_pl, next_rate
from scaffoldrl.prompts import reference_response
from scaffoldrl.recipes import ACCELERATE_DIR, RECIPE_DIR as RECIPES, launch_command, load_recipe, parse_overrides, \
    resolve_accelerate
from scaffoldrl.trainer import METHOD_STATE, ScaffoldConfig, ScaffoldTrainer
from scaffoldrl.verify import get_grader
PROBLEMS = domain.generate(2, (3, 4), seed=0)  # 4 hard problems of 3-6 steps


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run fastest on one thread, and far faster than on two when other processes share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny(tiny_model_path) -> str:
    return str(tiny_model_path)


def make_trainer(path: str, out: Path, problems=PROBLEMS, reward_funcs=None, **config) -> ScaffoldTrainer:
    args = dict(output_dir=str(out), num_generations=4, per_device_train_batch_size=8, max_completion_length=12,
                max_steps=2, learning_rate=1e-3, beta=0.0, bf16=False, use_cpu=True, activation_checkpointing=False,
                report_to="none", logging_steps=1, save_strategy="no", dataloader_num_workers=0, seed=0)
    return ScaffoldTrainer(path, ScaffoldConfig(**{**args, **config}), problems,
                           AutoTokenizer.from_pretrained(path), reward_funcs=reward_funcs)


def generation_batch(trainer: ScaffoldTrainer):
    """One generation batch as training sees it: the dataset rows and what TRL hands to the loss."""
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1  # set by the training loop, which these tests bypass
    rows = next(iter(trainer.get_train_dataloader()))
    return rows, trainer._generate_and_score_completions(rows)


def test_trl_hooks_have_not_moved():
    """Fails loudly when a TRL upgrade moves a private hook the trainer relies on."""
    assert trl.__version__.startswith("1.16."), "hooks verified on TRL 1.16 only: re-check trainer.py"
    params = lambda f: list(inspect.signature(f).parameters)  # noqa: E731
    assert "rollout_func" in params(GRPOTrainer.__init__)
    assert params(GRPOTrainer._generate_and_score_completions) == ["self", "inputs"]
    assert params(GRPOTrainer._generate_single_turn)[:5] == [
        "self", "prompt_ids", "images", "multimodal_fields", "num_generations"]
    assert params(GRPOTrainer._tokenize_prompts) == ["self", "prompts"]
    assert params(GRPOTrainer._compute_loss) == ["self", "model", "inputs"]
    assert params(GRPOTrainer._log_metric) == ["self", "name", "value"]
    assert params(GRPOTrainer._save_checkpoint) == ["self", "model", "trial"]
    assert params(GRPOTrainer._load_optimizer_and_scheduler) == ["self", "checkpoint"]
    generate = inspect.getsource(GRPOTrainer._generate)
    assert "self.rollout_func(prompts, self)" in generate
    assert 'extra_fields.pop("env_mask", None)' in generate  # env_mask becomes the tool mask
    score = inspect.getsource(GRPOTrainer._generate_and_score_completions)
    assert 'output["tool_mask"] = tool_mask' in score and "inp[key] = values[i]" in score
    assert 'self.scale_rewards != "none"' in score  # Dr.GRPO: no std division
    loss = inspect.getsource(GRPOTrainer._compute_loss)
    assert loss.count("self._get_per_token_logps_and_entropies(") == 1  # the one forward the imitation term reuses
    assert 'completion_mask * inputs["tool_mask"]' in loss
    assert "if advantages.dim() == 1:" in loss  # (B, T) advantages pass through: the token-weight hook
    # Prefix-RFT's entropy selection changes the advantages between the forward pass and the objective
    assert loss.index("self._get_per_token_logps_and_entropies(") < loss.index('advantages = inputs["advantages"]')
    assert params(GRPOTrainer.get_high_entropy_mask) == ["self", "entropies", "mask", "threshold"]
    assert '"num_items_in_batch": num_items_in_batch' in score  # LUFFY adds its off-policy tokens to the count
    assert "return logps, entropies, aux_loss" in inspect.getsource(GRPOTrainer._get_per_token_logps_and_entropies)
    assert {"scale_rewards", "loss_type", "num_generations", "steps_per_generation"} <= set(
        GRPOConfig.__dataclass_fields__)


@pytest.mark.parametrize("unit", ["steps", "tokens"])
def test_masks_cover_exactly_the_hint_tokens(tiny, tmp_path, unit):
    """Forced hint tokens get hint_mask 1 and env_mask 0; every generated token the reverse."""
    trainer = make_trainer(tiny, tmp_path, method="seele", rounds=2, hint_unit=unit)
    rows, out = generation_batch(trainer)
    tok = trainer.processing_class
    hinted = 0
    for b, row in enumerate(rows):
        ref = Reference(trainer.problems[row["problem_id"]], unit, tok)
        forced = ref.hint_ids(round(row["hint_rate"] * ref.total))[:12]  # the limit (12) counts the hint
        real = out["completion_mask"][b].bool()
        hint, env = out["hint_mask"][b][real].tolist(), out["tool_mask"][b][real].tolist()
        assert hint == [1] * len(forced) + [0] * (len(hint) - len(forced)) and len(hint) <= 12
        assert env == [1 - h for h in hint]
        assert out["completion_ids"][b][: len(forced)].tolist() == forced == ref.response_ids[: len(forced)]
        assert KINDS[out["kinds"][b]] == row["kind"] == (HINTED if forced else ON_POLICY)
        hinted += bool(forced)
    assert hinted >= len(rows) // 2  # the first round is all cold-start hints
    assert out["completion_mask"].sum(1).max() <= 12  # hinted or not, one budget
    assert "rollout/forced_cut_frac" in trainer._metrics["train"]


def test_grpo_trains_every_completion_token(tiny, tmp_path):
    trainer = make_trainer(tiny, tmp_path, method="grpo")
    rows, out = generation_batch(trainer)
    assert out["hint_mask"].sum() == 0 and torch.equal(out["tool_mask"] * out["completion_mask"],
                                                        out["completion_mask"])
    assert {r["kind"] for r in rows} == {ON_POLICY} and {r["hint_rate"] for r in rows} == {0.0}


def test_rounds_refit_between_rounds_and_form_one_dr_grpo_group(tiny, tmp_path):
    """Round 1's rate is the 3PL refit on round 0's graded accuracy; the advantage is r − mean over all m·n."""
    length = lambda completions, **kw: [float(len(c[0]["content"])) for c in completions]  # noqa: E731
    trainer = make_trainer(tiny, tmp_path, reward_funcs=[length], method="seele", rounds=2, scale_rewards="none")
    rows, out = generation_batch(trainer)
    tok = trainer.processing_class
    for g in range(0, len(rows), 4):
        group, ref = rows[g:g + 4], Reference(trainer.problems[rows[g]["problem_id"]])
        first, second = group[:2], group[2:]
        assert first[0]["hint_rate"] == ref.plan(ref.units_for(cold_start_rate(ref.n_steps))).rate
        assert len({r["hint_rate"] for r in first}) == 1 and len({r["hint_rate"] for r in second}) == 1
        texts = tok.batch_decode(out["completion_ids"][g:g + 2], skip_special_tokens=True)
        accuracy = sum(v.correct is True for v in get_grader().grade_batch([(t, group[0]["answer"]) for t in texts])) / 2
        refit = next_rate(fit_three_pl([first[0]["hint_rate"]], [accuracy]), 0.5)
        assert second[0]["hint_rate"] == ref.plan(ref.units_for(refit)).rate
        rewards = torch.tensor(length([[{"content": t}] for t in tok.batch_decode(
            out["completion_ids"][g:g + 4] * out["completion_mask"][g:g + 4], skip_special_tokens=True)]))
        assert out["advantages"][g:g + 4] == pytest.approx((rewards - rewards.mean()).tolist(), abs=1e-4)


def test_imitation_term_reuses_the_loss_forward_pass(tiny, tmp_path):
    """With zero advantages the loss is exactly γ · mean NLL of the hint tokens, from one forward pass."""
    trainer = make_trainer(tiny, tmp_path, method="seele", imitation_coef=0.5, temperature=1.0)
    _, out = generation_batch(trainer)
    out["advantages"] = torch.zeros_like(out["advantages"])
    calls = []
    handle = trainer.model.register_forward_hook(lambda *a: calls.append(1))
    try:
        loss = trainer.compute_loss(trainer.model, out)
    finally:
        handle.remove()
    assert len(calls) == 1
    with torch.no_grad():
        ids = torch.cat([out["prompt_ids"], out["completion_ids"]], dim=1)
        logits = trainer.model(input_ids=ids, attention_mask=torch.cat(
            [out["prompt_mask"], out["completion_mask"]], dim=1)).logits
        width = out["completion_ids"].size(1)
        logps = torch.log_softmax(logits[:, -width - 1:-1], dim=-1).gather(
            -1, out["completion_ids"][..., None])[..., 0]
    hint = out["hint_mask"]
    assert hint.sum() > 0
    assert loss.item() == pytest.approx(0.5 * (-(logps * hint).sum() / hint.sum()).item(), rel=1e-4)


def test_per_token_advantages_pass_through_trls_objective(tiny, tmp_path):
    """(B, T) advantages, what a method's shape_advantages writes, weigh each token as TRL's (B,) ones do."""
    trainer = make_trainer(tiny, tmp_path, method="grpo", imitation_coef=0.0)
    _, out = generation_batch(trainer)
    out["advantages"] = torch.linspace(-1.0, 1.0, len(out["advantages"]))
    loss = lambda **change: trainer.compute_loss(trainer.model, {**out, **change}).item()  # noqa: E731
    per_token = out["advantages"][:, None].expand_as(out["completion_mask"]).float()
    base = loss()
    assert base != 0.0 and loss(advantages=per_token) == pytest.approx(base, rel=1e-5)
    assert loss(advantages=2 * per_token) == pytest.approx(2 * base, rel=1e-5)
    keep = (torch.arange(len(out["advantages"])) % 2).float()
    assert loss(advantages=per_token * keep[:, None]) == pytest.approx(
        loss(advantages=out["advantages"] * keep), rel=1e-5)


def test_resume_restores_the_controller_state(tiny, tmp_path):
    """A resumed SEELE run starts its next step from the rates saved in the checkpoint, as the original did."""

    def run(resume=None):
        trainer = make_trainer(tiny, tmp_path / "run", PROBLEMS[:2], method="seele", rounds=2,  # both questions each step
                               save_strategy="steps", save_steps=1)
        plans, plan = [], trainer.method.plan

        def record(ref, step, round, n):
            out = plan(ref, step, round, n)
            plans.append((step, round, ref.id, out[0].rate))
            return out

        trainer.method.plan = record
        trainer.train(resume_from_checkpoint=resume)
        return trainer, sorted(p for p in plans if p[0] == 1 and p[1] == 0)

    _, original = run()
    checkpoint = tmp_path / "run" / "checkpoint-1"
    saved = json.loads((checkpoint / METHOD_STATE).read_text())["state"]["rates"]
    assert saved and (tmp_path / "run" / "checkpoint-2" / METHOD_STATE).exists()
    resumed_trainer, resumed = run(resume=str(checkpoint))
    assert len(resumed) == 2 and resumed == original
    for _, _, question, rate in resumed:
        ref = Reference(resumed_trainer.problems[question])
        assert rate == ref.plan(ref.units_for(saved[question])).rate


def test_luffy_groups_end_with_the_reference_trace_and_share_one_advantage_baseline(tiny, tmp_path):
    """The last rollout of each group is the reference (env_mask 0, no hint); r − mean runs over all four."""
    # a limit above the longest trace (the limit counts forced tokens: a longer trace would be cut)
    trainer = make_trainer(tiny, tmp_path, method="luffy", scale_rewards="none", imitation_coef=0.0,
                           max_completion_length=160)
    rows, out = generation_batch(trainer)
    tok = trainer.processing_class
    real = out["completion_mask"].bool()
    for b, row in enumerate(rows):
        assert row["kind"] == (OFF_POLICY if b % 4 == 3 else ON_POLICY) == KINDS[out["kinds"][b]]
        if row["kind"] == OFF_POLICY:
            problem = trainer.problems[row["problem_id"]]
            trace = tok.encode(reference_response(problem.steps, problem.answer), add_special_tokens=False)
            assert len(trace) < 160
            assert out["completion_ids"][b][real[b]].tolist() == trace + [tok.eos_token_id]
            assert out["tool_mask"][b][real[b]].sum() == 0
        else:
            assert bool(out["tool_mask"][b][real[b]].all())
    assert out["hint_mask"].sum() == 0
    texts = tok.batch_decode(out["completion_ids"] * out["completion_mask"], skip_special_tokens=True)
    rewards = torch.tensor([float(v.correct is True) for v in get_grader().grade_batch(
        [(t, r["answer"]) for t, r in zip(texts, rows)])]).view(-1, 4)
    assert rewards[:, 3].tolist() == [1.0] * len(rewards)  # the reference is right
    assert out["advantages"].tolist() == pytest.approx((rewards - rewards.mean(1, keepdim=True)).flatten().tolist(),
                                                       abs=1e-4)
    assert out["num_items_in_batch"] == out["completion_mask"].sum()  # one token count over on- and off-policy


@pytest.mark.parametrize("loss_type,normalizer", [("dr_grpo", 12.0), ("dapo", 4.0), ("grpo", 2.0)])
def test_off_policy_term_on_two_tokens(tiny, tmp_path, loss_type, normalizer):
    """One off-policy completion of 2 tokens with π = (0.3, 0.9) and A = 2: loss −A·(f(0.3) + f(0.9))/N, where
    N is TRL's reduction (B·max_completion_length = 12, the 4 tokens counted, or the sequence's 2 tokens)."""
    trainer = make_trainer(tiny, tmp_path, method="luffy", loss_type=loss_type, imitation_coef=0.0)
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1
    inputs = {"completion_mask": torch.ones(1, 2, dtype=torch.long), "hint_mask": torch.zeros(1, 2, dtype=torch.long),
              "kinds": torch.tensor([KINDS.index(OFF_POLICY)]), "advantages": torch.tensor([2.0]),
              "num_items_in_batch": torch.tensor(4.0)}
    logps = torch.log(torch.tensor([[0.3, 0.9]])).requires_grad_()
    loss = trainer.method.extra_loss(trainer.loss_context(inputs, logps, torch.zeros(1, 2)))
    assert loss.item() == pytest.approx(-2 * (0.75 + 0.9) / normalizer)
    loss.backward()
    assert logps.grad[0].tolist() == pytest.approx([-2 * 0.1875 / normalizer, -2 * 0.09 / normalizer])


def test_prefix_rft_keeps_the_top_20_percent_entropy_prefix_tokens(tiny, tmp_path):
    trainer = make_trainer(tiny, tmp_path, method="prefix_rft", prefix_entropy_quantile=0.2, imitation_coef=0.0)
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1
    # two prefix tokens (entropy 0.4, 1.2) and a generated one (0.1): the quantile ranks prefix tokens only
    def shape(inputs, entropies):
        trainer.method.shape_advantages(trainer.loss_context(inputs, torch.zeros_like(entropies), entropies))

    inputs = {"hint_mask": torch.tensor([[1, 1, 0]]), "tool_mask": torch.ones(1, 3, dtype=torch.long),
              "advantages": torch.tensor([2.0])}
    shape(inputs, torch.tensor([[0.4, 1.2, 0.1]]))
    assert inputs["advantages"].tolist() == [[0.0, 2.0, 2.0]]
    inputs = {"hint_mask": torch.ones(1, 10), "tool_mask": torch.ones(1, 10), "advantages": torch.tensor([1.0])}
    shape(inputs, torch.tensor([[0.5, 2.0, 0.1, 0.3, 1.9, 0.7, 0.2, 0.9, 0.4, 0.6]]))
    assert inputs["advantages"][0].nonzero().flatten().tolist() == [1, 4]  # 2 of 10: entropies 2.0 and 1.9


def test_prefix_rft_prefixes_are_trained_through_trls_objective(tiny, tmp_path):
    """Prefixed rollouts keep their prefix under the policy gradient; the loss equals TRL's with the
    low-entropy prefix tokens weighted 0."""
    trainer = make_trainer(tiny, tmp_path, method="prefix_rft", hint_unit="tokens", prefix_entropy_quantile=0.2,
                           imitation_coef=0.0)
    rows, out = generation_batch(trainer)
    tok = trainer.processing_class
    real = out["completion_mask"].bool()
    for b, row in enumerate(rows):
        ref = Reference(trainer.problems[row["problem_id"]], "tokens", tok)
        forced = ref.hint_ids(ref.units_for(0.95))[:12]
        assert row["kind"] == (HINTED if b % 4 == 3 else ON_POLICY)
        assert out["hint_mask"][b].sum() == (len(forced) if row["kind"] == HINTED else 0)
        assert bool(out["tool_mask"][b][real[b]].all())  # prefix and continuation both under the policy gradient
    out["advantages"] = torch.linspace(-1.0, 1.0, len(rows))
    with torch.no_grad():
        _, entropies, _ = trainer._get_per_token_logps_and_entropies(
            trainer.model, torch.cat([out["prompt_ids"], out["completion_ids"]], 1),
            torch.cat([out["prompt_mask"], out["completion_mask"]], 1), out["completion_ids"].size(1),
            compute_entropy=True)
    prefix = out["hint_mask"]
    dropped = prefix.bool() & ~trainer.get_high_entropy_mask(entropies, prefix, 0.8)
    assert 0 < dropped.sum() < prefix.sum()
    selected = trainer.compute_loss(trainer.model, out).item()
    trainer.method.entropy_quantile = 1.0
    kept = out["advantages"][:, None] * ~dropped
    assert selected == pytest.approx(trainer.compute_loss(trainer.model, {**out, "advantages": kept}).item(), rel=1e-5)
    assert selected != pytest.approx(trainer.compute_loss(trainer.model, out).item(), rel=1e-3)


@pytest.mark.parametrize("name,overrides", [
    ("grpo", ["num_generations=4", "per_device_train_batch_size=8"]),
    ("sparkle_stage1", ["num_generations=4", "per_device_train_batch_size=8"]),
    ("sparkle_stage2_aug", ["num_generations=4", "per_device_train_batch_size=8"]),
    ("seele", ["num_generations=8", "per_device_train_batch_size=8"]),
    ("sft", ["per_device_train_batch_size=8"]),
    ("uft", ["num_generations=4", "per_device_train_batch_size=8"]),
    ("luffy", ["num_generations=4", "per_device_train_batch_size=8"]),
    ("prefix_rft", ["num_generations=4", "per_device_train_batch_size=8"]),
])
def test_every_recipe_trains_two_steps_through_the_cli(tiny, tmp_path, name, overrides):
    sets = [a for o in overrides + (["max_completion_length=12"] if name != "sft" else []) for a in ("--set", o)]
    result = CliRunner().invoke(app, ["train", "--recipe", str(RECIPES / f"{name}.yaml"), "--model", tiny,
                                      "--max-steps", "2", "--output-dir", str(tmp_path), *sets])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "tokenizer.json").exists()
    state = json.loads((tmp_path / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    if name != "sft":  # every step logs the hint statistics
        assert all("hint/zero_variance_frac" in log for log in state["log_history"][:2])


@pytest.mark.parametrize("name", ["grpo", "sparkle_stage1", "sparkle_stage2_aug", "seele", "sft", "uft", "luffy",
                                  "prefix_rft"])
def test_paper_variants_are_valid_configs_with_the_seeds_settings(name):
    recipe = load_recipe(RECIPES / f"{name}.yaml", "paper", {"bf16": False, "use_cpu": True})
    config = recipe.trainer_config()  # every field known, group sizes consistent
    assert recipe.accelerate and resolve_accelerate(recipe.accelerate).is_file()
    if name == "seele":
        assert (config.rounds, config.num_generations, config.target, config.imitation_coef) == (4, 32, 0.5, 0.001)
        assert (config.scale_rewards, config.loss_type, config.beta, config.temperature) == ("none", "dr_grpo", 0.001, 1.0)
        assert config.max_completion_length == 2048 and config.use_vllm
    if name.startswith("sparkle"):
        assert (config.temperature, config.epsilon, config.entropy_coef, config.learning_rate) == (0.6, 0.2, 0.001, 1e-6)
        assert (config.num_generations, config.max_completion_length, config.max_prompt_tokens) == (32, 3000, 1024)
        assert config.beta == (0.01 if name == "sparkle_stage2_aug" else 0.001)
        assert config.scale_rewards == "group"
    if name in ("uft", "luffy", "prefix_rft"):  # SEELE's data and budget, as the grpo baseline
        grpo = load_recipe(RECIPES / "grpo.yaml", "paper", {"bf16": False, "use_cpu": True})
        assert (recipe.model, recipe.data) == (grpo.model, grpo.data)
        budget = ("num_generations", "per_device_train_batch_size", "gradient_accumulation_steps", "steps_per_generation",
                  "max_completion_length", "learning_rate", "max_steps", "temperature", "beta", "epsilon")
        assert {k: getattr(config, k) for k in budget} == {k: getattr(grpo.trainer_config(), k) for k in budget}
    if name == "uft":
        assert (config.hint_unit, config.hint_high, config.hint_low, config.schedule_steps) == ("steps", 0.95, 0.05, 1600)
        assert config.imitation_coef == 0.001
    if name == "luffy":
        assert (config.off_policy_gamma, config.guided_rollouts, config.imitation_coef) == (0.1, 4, 0.0)
        assert (config.scale_rewards, config.loss_type) == ("group", "dapo")
    if name == "prefix_rft":
        assert (config.hint_high, config.hint_low, config.prefix_entropy_quantile) == (0.95, 0.05, 0.2)
        assert (config.scale_rewards, config.loss_type, config.guided_rollouts) == ("none", "dr_grpo", 4)


def test_config_rejects_rounds_that_cannot_form_groups():
    base = dict(output_dir="unused", bf16=False, use_cpu=True, per_device_train_batch_size=8)
    with pytest.raises(ValueError, match="must divide"):
        ScaffoldConfig(**base, method="seele", num_generations=8, rounds=3)
    with pytest.raises(ValueError, match="adaptive"):
        ScaffoldConfig(**base, method="pss", num_generations=8, rounds=2)
    with pytest.raises(ValueError, match="unguided rollout"):
        ScaffoldConfig(**base, method="luffy", num_generations=8, guided_rollouts=8)
    with pytest.raises(ValueError, match="loss_type"):
        ScaffoldConfig(**base, method="luffy", num_generations=8, loss_type="bnpo")
    with pytest.raises(ValueError, match="hint schedule"):
        ScaffoldConfig(**base, method="uft", num_generations=8)  # max_steps -1: no horizon


def test_launch_reruns_the_command_under_accelerate_with_the_recipes_config():
    paper = load_recipe(RECIPES / "seele.yaml", "paper")
    argv = ["train", "--recipe", "seele", "--variant", "paper"]
    command = launch_command(paper, argv)
    assert command[1:6] == ["-m", "accelerate.commands.launch", "--config_file", str(ACCELERATE_DIR / "zero2.yaml"), "-m"]
    assert command[6:] == ["scaffoldrl", *argv]
    with pytest.raises(ValueError, match="no accelerate config"):
        launch_command(load_recipe(RECIPES / "seele.yaml", "tiny"), argv)


def test_overrides_replace_model_and_data_and_reach_the_config():
    data = {"domain": {"n": 4, "levels": [3], "seed": 1}}
    recipe = load_recipe(RECIPES / "seele.yaml", "tiny", {"model": "m", "data": data, "max_steps": 3})
    assert recipe.model == "m" and recipe.data == data and recipe.config["max_steps"] == 3
    assert "data" not in recipe.config and "model" not in recipe.config


def test_overrides_read_numbers_as_yaml_would_and_exponents_as_floats():
    assert parse_overrides(["learning_rate=3e-3", "beta=1.0e-3", "max_steps=5", "run_name=1e5-run",
                            "levels=[3, 4]", "bf16=false"]) == {
        "learning_rate": 0.003, "beta": 0.001, "max_steps": 5, "run_name": "1e5-run", "levels": [3, 4],
        "bf16": False}
    assert parse_overrides(["save_strategy=no", "report_to=off", "use_cpu=true"]) == {
        "save_strategy": "no", "report_to": "off", "use_cpu": True}  # YAML 1.2 booleans: only true/false


def test_cpu_sft_trainer_has_trls_loss_and_gradients(tiny, tmp_path):
    from trl import SFTTrainer

    from scaffoldrl.sft import _cpu_config, sft_dataset, sft_trainer_class, SFTSettings

    tok = AutoTokenizer.from_pretrained(tiny)
    config = _cpu_config(tmp_path, SFTSettings(batch_size=4), progress=False)
    assert sft_trainer_class(config) is not SFTTrainer
    losses, grads = [], []
    for cls in (SFTTrainer, sft_trainer_class(config)):
        trainer = cls(model=tiny, args=config, train_dataset=sft_dataset(PROBLEMS, tok), processing_class=tok)
        batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
        assert (batch["labels"] == -100).any() and (batch["labels"] != -100).any()  # the prompt is not trained
        loss = trainer.compute_loss(trainer.model, batch, num_items_in_batch=(batch["labels"] != -100).sum())
        loss.backward()
        losses.append(loss.item())
        grads.append(torch.cat([p.grad.flatten() for p in trainer.model.parameters()]))
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    assert torch.allclose(grads[0], grads[1], rtol=1e-4, atol=1e-6)


def test_a_missing_model_path_is_an_error_that_says_how_to_build_it(tmp_path):
    result = CliRunner().invoke(app, ["train", "--recipe", "seele", "--model", str(tmp_path / "models" / "base")])
    assert result.exit_code != 0 and not (tmp_path / "models").exists()  # nothing was built on the way
    flat = " ".join(result.output.replace("│", " ").split())
    assert "does not exist" in flat and "scaffoldrl demo --base-only" in flat


def test_shipped_recipes_are_listed_and_found_by_name_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["recipes"])
    assert result.exit_code == 0
    listed = [line.split()[:2] for line in result.output.splitlines()]
    assert ["seele", "seele"] in listed and ["sparkle_stage2_aug", "pss"] in listed and len(listed) == 8
    assert load_recipe("uft", "paper", {"bf16": False, "use_cpu": True}).trainer_config().method == "uft"
