"""Hints in a real BPE vocabulary: Qwen2.5's tokenizer, rebuilt offline (tests/conftest.py), on MATH500 solutions.

In Qwen's BPE punctuation merges with the newline after it (``$.`` + ``\\n`` is
``$``, ``.\\n``), so a hint is a prefix of the reference's own tokens only if it
ends where the reference's tokens do. These tests measure that on 50 real
solutions, for step hints and token hints, and the response budget that
counts the hint. Run with ``-s`` to see the counts.
"""

from __future__ import annotations

import pytest
import torch

from scaffoldrl.hints import Reference, fit_budget, response_prefix
from scaffoldrl.sources import load_source

PROBLEMS = load_source("math500")[:50]


def encode(tok, text: str) -> list[int]:
    return tok.encode(text, add_special_tokens=False)


def test_the_rebuilt_tokenizer_is_qwen25s(qwen_tokenizer):
    tok = qwen_tokenizer
    assert encode(tok, "Hello world") == [9707, 1879]
    assert tok.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|file_sep|>"]) == [
        151643, 151644, 151645, 151664]
    assert len(tok) == 151665 and (tok.eos_token_id, tok.pad_token_id) == (151645, 151643)
    assert [tok.decode([i]) for i in encode(tok, "$r = 3$.\nAlso")][-3:] == ["$", ".\n", "Also"]
    assert tok.decode(encode(tok, "$r = 3$."))[-2:] == "$." and encode(tok, "$r = 3$.")[-1] != encode(tok, "$")[0]
    prompt = tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
    assert prompt == ("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
                      "<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    assert encode(tok, "<|im_start|>user\nHi<|im_end|>") == [151644, 872, 198, 13048, 151645]


def test_every_step_hint_is_a_prefix_of_the_solution_ids(qwen_tokenizer):
    """For every step of 50 MATH500 solutions, the forced ids are the hint text's own tokenization and a prefix of
    the whole response's; the old hint (no separator, re-encoded) is counted for comparison."""
    tok = qwen_tokenizer
    hints = own = old_prefix = 0
    for p in PROBLEMS:
        ref = Reference(p, "steps", tok)
        full = ref.response_ids
        for units in range(1, ref.total + 1):
            ids = ref.hint_ids(units)
            assert ids == full[: len(ids)], (p.id, units)
            hints += 1
            own += ids == encode(tok, response_prefix(ref.prefix(units)))
            old = encode(tok, response_prefix("\n".join(p.steps[:units])))
            old_prefix += old == full[: len(old)]
    print(f"\nstep hints: {hints} over {len(PROBLEMS)} solutions; forced ids a prefix of the response: {hints}; "
          f"equal to the hint text's own tokens: {own}; the old hint without separator a prefix: {old_prefix}")
    assert own == hints
    assert old_prefix < hints  # the pitfall is real on this data


def test_token_hints_are_cut_in_token_space_and_never_hold_a_replacement_character(qwen_tokenizer):
    """Every token cut of the 50 solutions: forced ids are a prefix of the response and decode without U+FFFD."""
    tok = qwen_tokenizer
    cuts = moved = old_fffd = old_not_prefix = 0
    for p in PROBLEMS:
        ref = Reference(p, "tokens", tok)
        full = ref.response_ids
        solution = encode(tok, p.solution)
        for units in range(1, ref.total + 1):
            plan = ref.plan(units)
            ids = ref.forced_ids(plan)
            assert ids == full[: len(ids)]
            assert "\ufffd" not in tok.decode(ids), (p.id, units)
            cuts += 1
            moved += plan.units != units
            if units % 5 == 0:  # the old hint, decoded then re-encoded, on every 5th cut
                old = encode(tok, response_prefix(tok.decode(solution[:units])))
                old_fffd += "\ufffd" in tok.decode(old)
                old_not_prefix += old != full[: len(old)]
    print(f"\ntoken hints: {cuts} cuts; forced ids a prefix: {cuts}; with U+FFFD: 0; moved back to a character "
          f"start: {moved}; the old decode-and-re-encode hint (every 5th cut): {old_fffd} with U+FFFD, "
          f"{old_not_prefix} not a prefix")
    assert cuts > 5000


def test_a_token_cut_inside_a_character_moves_to_its_start(qwen_tokenizer):
    """Characters Qwen's vocabulary spells in several byte tokens: no cut forces a partial character."""
    tok = qwen_tokenizer
    p = PROBLEMS[0].__class__(id="cjk", problem="?", answer="6", steps=["设 𝑥 = 3，则 2𝑥 = 6。", "答案是 6 🎉."])
    ref = Reference(p, "tokens", tok)
    moved = 0
    for units in range(1, ref.total + 1):
        plan = ref.plan(units)
        assert "\ufffd" not in tok.decode(ref.forced_ids(plan)) and plan.units <= units
        moved += plan.units < units
    print(f"\n{ref.total} token cuts of a CJK/emoji solution; {moved} moved back to a character start")
    assert moved > 0


@pytest.mark.parametrize("limit", [64, 256])
def test_hinted_rollouts_keep_to_the_response_limit(qwen_tokenizer, limit):
    """Hint plus continuation never exceed the limit; a hint under it is forced whole, a longer one is cut."""
    tok = qwen_tokenizer
    hints = cut = 0
    for p in PROBLEMS:
        for unit in ("steps", "tokens"):
            ref = Reference(p, unit, tok)
            for units in range(1, ref.total + 1, 1 if unit == "steps" else 17):
                hint = ref.hint_ids(units)
                forced, generated, was_cut = fit_budget(hint, list(range(limit)), limit)  # a generation of `limit`
                assert len(forced) + len(generated) <= limit
                assert forced == hint[:limit] and was_cut == (len(hint) > limit)
                assert len(generated) == limit - len(forced)
                hints, cut = hints + 1, cut + was_cut
    print(f"\nlimit {limit}: {hints} hints, {cut} cut to the limit, every rollout within {limit} tokens")


@pytest.mark.slow
def test_seele_trains_a_qwen_vocabulary_model_on_the_cpu(qwen_tokenizer, tmp_path):
    """A random 1-layer Qwen2 with the 151k vocabulary: one SEELE step through ScaffoldTrainer; forced hints are
    prefixes of the reference response's ids and every completion keeps to the limit, hint included."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from scaffoldrl.trainer import ScaffoldConfig, ScaffoldTrainer

    tok = qwen_tokenizer
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(
        vocab_size=151936, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, tie_word_embeddings=True, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id, max_position_embeddings=2048))
    model.generation_config.eos_token_id, model.generation_config.pad_token_id = tok.eos_token_id, tok.pad_token_id
    model_dir = tmp_path / "model"
    model.save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    limit = 32
    problems = sorted((p for p in PROBLEMS if len(p.steps) >= 2), key=lambda p: len(p.problem))[:2]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        args = ScaffoldConfig(output_dir=str(tmp_path / "run"), method="seele", rounds=2, num_generations=2,
                              per_device_train_batch_size=2, max_completion_length=limit, max_steps=1,
                              learning_rate=1e-3, beta=0.0, bf16=False, use_cpu=True, activation_checkpointing=False,
                              report_to="none", logging_steps=1, save_strategy="no", dataloader_num_workers=0,
                              scale_rewards="none", loss_type="dr_grpo", seed=0)
        trainer = ScaffoldTrainer(str(model_dir), args, problems, tok)
        batches, generate = [], trainer._generate_and_score_completions

        def keep(rows):
            batches.append((rows, generate(rows)))
            return batches[-1][1]

        trainer._generate_and_score_completions = keep
        trainer.train()
    finally:
        torch.set_num_threads(threads)
    (rows, out), = batches
    for b, row in enumerate(rows):
        ids = out["completion_ids"][b][out["completion_mask"][b].bool()].tolist()
        forced = int(out["hint_mask"][b].sum())
        assert len(ids) <= limit and ids[:forced] == trainer._reference(row["problem_id"]).response_ids[:forced]
        assert (forced > 0) == (row["kind"] == "hinted")
    assert trainer.state.global_step == 1
    assert all("hint/mean_rate" in log for log in trainer.state.log_history[:1])
