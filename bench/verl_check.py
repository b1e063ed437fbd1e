"""Checks of the veRL bridge against an installed veRL, on a CPU (no GPU, no Ray cluster, no download).

Run it in an environment that has veRL and scaffoldrl (veRL's pins conflict with ours, so not .venv)::

    python3 -m venv /tmp/verl-venv
    /tmp/verl-venv/bin/pip install -c constraints.txt torch==2.13.0
    /tmp/verl-venv/bin/pip install -c constraints.txt verl==0.9.1 "math-verify[antlr4_13_2]==0.9.0" rich pyyaml typer
    /tmp/verl-venv/bin/pip install --no-deps -e .
    HF_HUB_OFFLINE=1 /tmp/verl-venv/bin/python bench/verl_check.py --tokenizer MODEL_FOLDER

1. the stage-1 and stage-2 commands of docs/integrations.md compose against veRL's own ``ppo_trainer`` config (Hydra
   rejects an unknown key), and the reward entry they name loads through veRL's ``get_custom_reward_fn``;
2. veRL's ``RLHFDataset`` reads the exported Parquet, and its ``filter_overlong_prompts`` keeps exactly the rows
   our export keeps when given the same tokenizer and limit;
3. veRL's naive reward-loop manager scores exported rows, responses decoded from token ids, with our
   ``compute_score`` called through ``run_in_executor`` (its thread pool), all rows at once.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shlex
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def documented_overrides() -> tuple[list[str], list[str]]:
    """The Hydra overrides of the stage-1 command in docs/integrations.md and of its stage-2 changes."""
    text = (ROOT / "docs" / "integrations.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    stage1 = next(b for b in blocks if "verl.trainer.main_ppo" in b)
    stage2 = blocks[blocks.index(stage1) + 1]

    def args(block: str) -> list[str]:
        return [a for a in shlex.split(block.replace("\\\n", " ")) if "=" in a]

    return args(stage1), args(stage2)


def compose(overrides: list[str]):
    import verl
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(str(Path(verl.__file__).parent / "trainer" / "config"), version_base=None):
        return hydra_compose("ppo_trainer", overrides=overrides)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", required=True, help="A local model or tokenizer folder.")
    parser.add_argument("--problems", type=int, default=8, help="Embedded-domain problems per level (levels 3-5).")
    args = parser.parse_args()

    import numpy as np
    import torch
    import verl
    from omegaconf import OmegaConf
    from transformers import AutoTokenizer
    from verl import DataProto
    from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.utils.dataset.rl_dataset import RLHFDataset
    from verl.utils.tokenizer import normalize_token_ids

    from scaffoldrl import domain
    from scaffoldrl.methods.sparkle import PSSConfig
    from scaffoldrl.integrations.verl import export_verl

    print(f"veRL {verl.__version__}")
    stage1, stage2 = documented_overrides()
    config = compose(stage1)
    config2 = compose(stage1 + stage2)
    print(f"1. docs/integrations.md stage 1 ({len(stage1)} overrides) and stage 2 (+{len(stage2)}) compose; stage 2: "
          f"kl_loss_coef {config2.actor_rollout_ref.actor.kl_loss_coef}, train_files {config2.data.train_files}")
    reward_fn = get_custom_reward_fn(config)
    assert reward_fn is not None, "the reward entry of docs/integrations.md was not picked up"
    print(f"   get_custom_reward_fn -> {reward_fn.func.__name__}({reward_fn.args[0].__module__}.{reward_fn.args[0].__name__}, "
          f"reward_kwargs={reward_fn.args[1]})")

    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    problems = domain.generate(args.problems, levels=(3, 4, 5), seed=3)
    with tempfile.TemporaryDirectory() as tmp:
        unchecked = export_verl(problems, Path(tmp) / "all", method="pss", pss=PSSConfig(resplit=False))
        data_config = config.data.copy()
        OmegaConf.set_struct(data_config, False)
        data_config.max_prompt_length = 10**6
        assert data_config.filter_overlong_prompts, "docs/integrations.md should turn veRL's length filter on"
        data_config.filter_overlong_prompts_workers = 1
        data_config.cache_dir = str(Path(tmp) / "cache")
        dataset = RLHFDataset(str(unchecked.path), tokenizer, data_config)
        rows = [dataset.dataframe[i] for i in range(len(dataset))]
        lengths = sorted(len(normalize_token_ids(tokenizer.apply_chat_template(
            row["prompt"], add_generation_prompt=True, tokenize=True))) for row in rows)
        limit = lengths[len(lengths) // 2]
        data_config.max_prompt_length = limit
        kept_by_verl = len(RLHFDataset(str(unchecked.path), tokenizer, data_config))
        ours = export_verl(problems, Path(tmp) / "checked", method="pss", pss=PSSConfig(resplit=False),
                           tokenizer=tokenizer, max_prompt_tokens=limit)
        print(f"2. {unchecked.rows} rows; at {limit} prompt tokens veRL's filter keeps {kept_by_verl}, "
              f"our export keeps {ours.rows} (dropped {len(ours.dropped)})")
        assert kept_by_verl == ours.rows

    async def score_all() -> list[dict]:
        manager = NaiveRewardManager(config, tokenizer, reward_fn)
        jobs = []
        for row in rows:
            answer = row["reward_model"]["ground_truth"]
            # a well-formed response that leaves <think> to the prompt: spk_h_aug 2.0 on hinted rows, 1.0 on plain ones
            text = f"the steps\n</think>\n<answer>\nThe answer is \\boxed{{{answer}}}.\n</answer>"
            ids = torch.tensor([tokenizer.encode(text, add_special_tokens=False)])
            prompt_len = 4  # only the response part of the mask is read
            data = DataProto.from_dict(
                tensors={"responses": ids, "attention_mask": torch.ones(1, prompt_len + ids.shape[1], dtype=torch.long)},
                non_tensors={"data_source": np.array([row["data_source"]], dtype=object),
                             "reward_model": np.array([row["reward_model"]], dtype=object),
                             "extra_info": np.array([dict(row["extra_info"])], dtype=object)})
            jobs.append(manager.run_single(data))
        return await asyncio.gather(*jobs)

    results = asyncio.run(score_all())
    expected = [2.0 if row["extra_info"]["thinking_level"] else 1.0 for row in rows]
    got = [r["reward_score"] for r in results]
    accs = [r["reward_extra_info"]["acc"] for r in results]
    print(f"3. veRL's naive reward manager, {len(rows)} rows at once: scores {sorted(set(got))}, "
          f"{sum(g == e for g, e in zip(got, expected))}/{len(rows)} as expected, acc {sum(accs):.0f}/{len(rows)}; "
          f"extra keys {sorted(results[0]['reward_extra_info'])}")
    assert got == expected and all(a == 1.0 for a in accs)
    print("all veRL checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
