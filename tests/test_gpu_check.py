"""bench/gpu_check.py on the CPU (--smoke): the seele recipe runs through it, and it prints and records its fields.

The GPU run itself (a Qwen2.5-0.5B-shaped model in bf16) has never happened: no GPU is available here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.slow
def test_smoke_prints_step_time_tokens_per_second_and_peak_memory(tmp_path):
    results = tmp_path / "RESULTS.md"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--smoke", "--out",
                           str(tmp_path / "work"), "--results", str(results)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    steps = re.findall(r"^step (\d+): ([\d.]+) s, (\d+) generated tokens in ([\d.]+) s \((\d+) tokens/s\)$",
                       done.stdout, re.M)
    assert [int(s[0]) for s in steps] == [1, 2]
    assert all(int(s[2]) > 0 for s in steps)  # rollouts generated after their hints (the limit is above them)
    fields = dict(re.findall(r"(\w+)=(\S+)", re.search(r"^RESULT (.*)$", done.stdout, re.M).group(1)))
    assert fields["device"] == "cpu" and fields["steps"] == "2"
    assert float(fields["step_time_s"]) > 0 and float(fields["gen_tokens_per_s"]) > 0
    assert float(fields["peak_mem_gib"]) > 0
    assert "dtype=float32" in done.stdout and "vocab=tiny" in done.stdout
    section = results.read_text()
    assert section.count("## GPU check (`bench/gpu_check.py`, --smoke), ") == 1
    assert "Command: `python bench/gpu_check.py --smoke" in section and "no GPU used" in section
    assert len(re.findall(r"^\| [12] \| [\d.]+ \| \d+ \| [\d.]+ \| \d+ \|$", section, re.M)) == 2
    assert f"Step time {float(fields['step_time_s']):.2f} s" in section
    assert not (tmp_path / "bench").exists()  # nothing written next to the caller
