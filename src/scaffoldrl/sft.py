"""Supervised warm start with TRL's SFTTrainer: loss on the response only.

Used twice: to turn the randomly initialised tiny model into the demo's
*base model* (easy and medium problems), and as the SFT baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .prompts import reference_response, sparkle_prompt
from .records import Problem


@dataclass
class SFTSettings:
    """What a user tunes for the warm start; everything else is TRL's SFTConfig default."""

    epochs: float = 3.0
    learning_rate: float = 1e-3
    batch_size: int = 32
    max_length: int = 512
    warmup_steps: float = 0.05
    lr_scheduler: str = "cosine"
    """Any transformers scheduler name; ``constant_with_warmup`` keeps the rate up for a phase change."""
    seed: int = 0


def sft_dataset(problems: Sequence[Problem], tokenizer, texts: Sequence[str] = (),
                pairs: Sequence[tuple[str, str]] = ()):
    """Prompt/completion rows: SPARKLE's prompt, the reference steps in the response format.

    ``pairs`` are further (question, response) examples in the same prompt
    (e.g. a question with its plan); ``texts`` become rows with an empty
    prompt (plain language modelling mixed into the batches), which keeps
    pretrained knowledge from being forgotten.
    """
    from datasets import Dataset

    examples = [(p.problem, reference_response(p.steps, p.answer)) for p in problems] + list(pairs)
    rows = [{"prompt": sparkle_prompt(question, tokenizer), "completion": response} for question, response in examples]
    return Dataset.from_list(rows + [{"prompt": "", "completion": text} for text in texts])


def run_sft(model_path: str | Path, problems: Sequence[Problem], out: str | Path,
            settings: SFTSettings | None = None, progress: bool = True, texts: Sequence[str] = (),
            pairs: Sequence[tuple[str, str]] = ()) -> Path:
    """Fine-tune the model at ``model_path`` on ``problems`` (and ``pairs``, ``texts``) on the CPU; save to ``out``."""
    return train_sft(model_path, problems, _cpu_config(out, settings or SFTSettings(), progress), texts, pairs)


def _cpu_config(out, settings: SFTSettings, progress: bool, completion_only_loss: bool = True):
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(out), num_train_epochs=settings.epochs, learning_rate=settings.learning_rate,
        per_device_train_batch_size=settings.batch_size, max_length=settings.max_length,
        warmup_steps=settings.warmup_steps, lr_scheduler_type=settings.lr_scheduler, seed=settings.seed,
        completion_only_loss=completion_only_loss, bf16=False, use_cpu=True, activation_checkpointing=False,
        save_strategy="no", report_to="none", logging_steps=20, disable_tqdm=not progress,
        dataloader_num_workers=0,
    )


def pretrain_text(model_path: str | Path, texts: Sequence[str], out: str | Path,
                  settings: SFTSettings | None = None, progress: bool = True) -> Path:
    """Plain language modelling on ``texts`` (loss on every token): the embedded base model's "pretraining"."""
    from datasets import Dataset

    config = _cpu_config(out, settings or SFTSettings(), progress, completion_only_loss=False)
    return _train(model_path, config, lambda tokenizer: Dataset.from_dict({"text": list(texts)}))


def train_sft(model_path: str | Path, problems: Sequence[Problem], config, texts: Sequence[str] = (),
              pairs: Sequence[tuple[str, str]] = (), callbacks: list | None = None) -> Path:
    """Fine-tune with any TRL ``SFTConfig`` (e.g. a recipe's, on many GPUs); saves to ``config.output_dir``."""
    return _train(model_path, config, lambda tokenizer: sft_dataset(problems, tokenizer, texts, pairs), callbacks)


def replace_progress(trainer, callbacks: list | None) -> None:
    """Put ``callbacks`` (e.g. a rich progress bar) in place of the trainer's own printed logs and tqdm bar."""
    if not callbacks:
        return
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    for default in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(default)
    for callback in callbacks:
        trainer.add_callback(callback)


def sft_trainer_class(config):
    """TRL's SFTTrainer; on the CPU, one that takes the loss from the model's own LM head.

    TRL computes the loss (and entropy and token-accuracy metrics) with a tiled fused LM head, which
    saves memory on large vocabularies on GPUs; on a CPU with the tiny model's ~400-token vocabulary
    it made a demo SFT step 14-23% slower than the plain head, for the same loss (``bench/sft_step.py --trl``).
    """
    from transformers import Trainer
    from trl import SFTTrainer

    if not config.use_cpu:
        return SFTTrainer

    class CPUSFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            return Trainer.compute_loss(self, model, {**inputs, "use_cache": False}, return_outputs,
                                        num_items_in_batch)

    return CPUSFTTrainer


def _train(model_path: str | Path, config, make_dataset, callbacks: list | None = None) -> Path:
    """Load by path, train with TRL's SFTTrainer on ``make_dataset(tokenizer)``, save model, tokenizer and state."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    model = AutoModelForCausalLM.from_pretrained(str(model_path))
    trainer = sft_trainer_class(config)(model=model, args=config, train_dataset=make_dataset(tokenizer),
                                        processing_class=tokenizer)
    replace_progress(trainer, callbacks)
    trainer.train()
    trainer.save_model(config.output_dir)
    tokenizer.save_pretrained(config.output_dir)
    trainer.save_state()
    return Path(config.output_dir)
