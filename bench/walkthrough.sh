#!/usr/bin/env bash
# The README's "From your dataset to a stage-2 run", from a directory outside the repository with the package
# installed from a wheel: 20 MATH500 rows -> data prepare -> sparkle_stage1 (2 steps) -> data mine -> data augment
# -> sparkle_stage2_aug (2 steps). The model is the shipped tiny base (it knows nothing of MATH: the point is the
# plumbing, not the scores). Prints each command's output; exits non-zero at the first failure.
#
#   bash bench/walkthrough.sh [WORKDIR]        (WORKDIR must not exist; default: a new temporary folder)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d)/walk}
python=${PYTHON:-$repo/.venv/bin/python}
"$python" "$repo/bench/wheel_check.py" --keep "$work/env" > "$work.wheel.log" 2>&1 || { cat "$work.wheel.log"; exit 1; }
bin="$work/env/venv/bin"
mkdir -p "$work/run" && cd "$work/run"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
base=$("$bin/python" -c "from scaffoldrl.base_model import SHIPPED; print(SHIPPED)")
echo "scaffoldrl from: $("$bin/python" -c 'import scaffoldrl; print(scaffoldrl.__file__)'); model: $base"
head -n 20 "$repo/src/scaffoldrl/vendor/benchmarks/math500.jsonl" > math20.jsonl
small=(--set num_generations=4 --set per_device_train_batch_size=8 --set max_completion_length=16 --set save_strategy=no)
set -x
"$bin/scaffoldrl" data prepare math20.jsonl records.jsonl --field id=unique_id --field difficulty=level
"$bin/scaffoldrl" train --recipe sparkle_stage1 --model "$base" --max-steps 2 --output-dir stage1 \
  --set 'data={records: records.jsonl}' "${small[@]}"
"$bin/scaffoldrl" data mine records.jsonl mine --model stage1 --k 4 --max-new-tokens 16
"$bin/scaffoldrl" data augment mine/hard.jsonl stage2_rows.jsonl --tokenizer stage1
"$bin/scaffoldrl" train --recipe sparkle_stage2_aug --model stage1 --max-steps 2 --output-dir stage2 \
  --set 'data={records: mine/hard.jsonl}' "${small[@]}"
set +x
echo "walk-through done in $work/run: $(ls)"
