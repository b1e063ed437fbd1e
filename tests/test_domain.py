import re

import pytest

from scaffoldrl import domain, tinymodel
from scaffoldrl.prompts import SPARKLE_INSTRUCTION, reference_response, sparkle_prompt


def test_generation_is_deterministic_and_splits_are_disjoint():
    a = domain.generate(20, seed=3)
    assert a == domain.generate(20, seed=3)
    assert a != domain.generate(20, seed=4)
    test = domain.generate(20, seed=3, split="test", exclude={p.problem for p in a})
    assert not {p.problem for p in a} & {p.problem for p in test}


@pytest.mark.parametrize("values", [10, 30])
def test_annotations_agree_with_the_world(values):
    world = domain.World(values=values)
    for p in domain.generate(30, seed=1, world=world):
        # each subproblem's answer is its step's result, and the final step gives the answer
        results = [re.search(r"= (\d+)$", s).group(1) for s in p.steps]
        assert [s.answer for s in p.subproblems] == results
        assert results[-1] == p.answer
        # the problem text never states an intermediate result; the plan neither
        start = re.findall(r"\d+", p.problem)
        assert len(start) == 1
        assert not re.search(r"\d", re.sub(r"^\d+\. ", "", p.plan, flags=re.M))
        # the steps follow the tables; inverse steps sit where meta says and never last
        value = int(start[0])
        for i, step in enumerate(p.steps):
            inv = re.fullmatch(r"\w such that (\w+)\(\w\) = (?:\w = )?(\d+) so \w = (\d+)", step)
            fwd = re.fullmatch(r"\w = (\w+)\(\w\) = \w+\((\d+)\) = (\d+)|\w = (\w+)\((\d+)\) = (\d+)", step)
            if inv:
                name, target, x = inv.group(1), int(inv.group(2)), int(inv.group(3))
                assert target == value and world.apply(name, x) == target
                value = x
            else:
                name, arg, y = [g for g in fwd.groups() if g is not None]
                arg, y = int(arg), int(y)
                assert arg == value and world.apply(name, arg) == y
                value = y
            assert bool(inv) == (i in p.meta["inverse_steps"])
            # no step undoes the one before it (f after f's inverse would hand over the earlier value)
            assert i == 0 or not (name == prev_name and bool(inv) != prev_inv), p.problem
            prev_name, prev_inv = name, bool(inv)
        assert len(p.steps) - 1 not in p.meta["inverse_steps"]
        # each step restates its line of the problem (a copy), then finds the value
        lines = p.problem.split("\n")
        assert lines[-1] == f"What is {domain.VARS[len(p.steps) - 1]}?"
        assert all(step.startswith(line + " ") for step, line in zip(p.steps, lines))


def test_levels_count_hidden_inverses_not_length():
    problems = domain.generate(50, seed=2)
    hidden = {1: 0, 2: 0, 3: 1, 4: 2, 5: 3}
    for p in problems:
        assert p.meta["hidden_inverses"] == hidden[int(p.difficulty)]
    lengths = {lvl: {len(p.steps) for p in problems if p.difficulty == lvl} for lvl in (2, 3, 4)}
    assert lengths[2] & lengths[3] & lengths[4], "step counts must overlap across levels"
    # the training levels hold as many inverse lines per problem as the hard levels (1-3 at level 2)
    inverse_lines = {lvl: {sum(" such that " in s for s in p.steps) for p in problems if p.difficulty == lvl}
                     for lvl in (1, 2, 5)}
    assert inverse_lines[1] == {0} and inverse_lines[2] == {1, 2, 3} and inverse_lines[5] == {3}


def test_facts_hold_forward_tables_open_inverses_and_half_known_hidden_ones():
    world = domain.World(candidates=3)
    facts = world.facts(repeats=6)
    assert len([f for f in facts if " so " not in f]) == 6 * len(domain.NAMES) * world.values
    stated: dict[tuple[str, int], list[int]] = {}
    for line in facts:
        if m := re.fullmatch(r"(\w) such that (\w+)\(\1\) = (\d+) so \1 = (\d+)", line):
            stated.setdefault((m[2], int(m[3])), []).append(int(m[4]))
    for (name, y), values in stated.items():
        if name in world.open:
            assert values == [world.invert(name, y)] * 6
        else:  # three candidates, the right one among them, each stated once per repeat
            assert sorted(set(values)) == sorted(world.inverse_candidates(name, y)) and len(set(values)) == 3
            assert world.invert(name, y) in values and all(values.count(v) == 6 for v in values)
    assert {name for name, _ in stated} == set(domain.NAMES)
    assert domain.World(candidates=1).inverse_candidates("wub", 3) == (domain.World().invert("wub", 3),)
    with pytest.raises(ValueError, match="candidates"):
        domain.World(candidates=0)
    old = domain.World(candidates=world.values).facts()  # a pure guess: hidden inverses never stated
    assert not {re.search(r"(\w+)\(", f).group(1) for f in old if " so " in f} & set(world.hidden)


def test_tokenizer_round_trip_and_model_loads_by_path(tmp_path):
    import torch
    from transformers import AutoTokenizer, Qwen2Config

    texts = [reference_response(p.steps, p.answer) for p in domain.generate(20)]
    tok = tinymodel.train_tokenizer(texts, vocab_size=300)
    for text in texts[:5] + ["héllo $\\frac{1}{2}$ ∑ 12345 \x00 🙂"]:
        assert tok.decode(tok(text).input_ids) == text
    assert all(len(t) == 1 for t in tok.tokenize("9876543210"))  # one token per digit, as Qwen's
    # the response tags and SPARKLE's instruction are one token each, and still decode to their text
    prompt = sparkle_prompt("a = zap(3)\nWhat is a?", tok)
    assert tok.tokenize(SPARKLE_INSTRUCTION) == [SPARKLE_INSTRUCTION] and len(tok.tokenize("</think>")) == 1
    assert tok.decode(tok(prompt).input_ids) == prompt and len(tok(prompt).input_ids) < 60  # not ~180
    # the domain's values are whole tokens, the same token after "(" and after a space; larger numbers split
    world = domain.World()
    demo_tok = tinymodel.train_tokenizer(texts + world.facts(), vocab_size=512, numbers=world.values)
    assert all(demo_tok.tokenize(f"({x}) = {x}") == ["(", str(x), ")", "Ġ=", "Ġ", str(x)] for x in range(world.values))
    assert demo_tok.tokenize(" 127") == ["Ġ", "1", "2", "7"]
    # a step's key is one token, so its line is found by a one-token lookup; it stands only at a line's start
    inverse = demo_tok.tokenize("b such that kel(b) = a = 9 so b = 16")
    assert demo_tok.tokenize("c = gop(b) = gop(6) = 4")[0] == "c =" and inverse[0] == "b such that"
    assert inverse[-6:] == [" = a =", "Ġ", "9", " so b =", "Ġ", "16"]  # mid-line names are not key tokens
    # reloaded by path (AutoTokenizer rebuilds a Qwen2Tokenizer), it tokenizes exactly as trained
    demo_tok.save_pretrained(tmp_path / "tok")
    Qwen2Config(vocab_size=len(demo_tok)).save_pretrained(tmp_path / "tok")
    reloaded = AutoTokenizer.from_pretrained(tmp_path / "tok", local_files_only=True)
    for text in texts[:5] + world.facts()[:5] + [prompt, "héllo 2019 ∑ x=13; (7)"]:
        assert reloaded(text).input_ids == demo_tok(text).input_ids
    config = tinymodel.TinyModelConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                       num_attention_heads=2, num_key_value_heads=1)
    model = tinymodel.build_tiny_model(tok, config)
    path = tinymodel.save(model, tok, tmp_path / "tiny")
    loaded, tok2 = tinymodel.load(path)
    assert loaded.config.model_type == "qwen2" and tok2.chat_template == tok.chat_template
    ids = torch.tensor([tok("a = zap(3) = 5").input_ids])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, loaded(ids).logits)
    # untied output matrix that starts equal to the embeddings, and stays untied after a reload
    assert loaded.lm_head.weight.data_ptr() != loaded.model.embed_tokens.weight.data_ptr()
    assert torch.equal(loaded.lm_head.weight, loaded.model.embed_tokens.weight)
    prompt = tok2.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert prompt == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
