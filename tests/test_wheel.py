"""A wheel built from this checkout installs into a fresh environment and works outside the repository."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

CHECK = Path(__file__).resolve().parents[1] / "bench" / "wheel_check.py"


@pytest.mark.slow
def test_the_wheel_works_outside_the_repository(tmp_path):
    """bench/wheel_check.py: every package file in the wheel; recipes, synth, benchmarks, protocols from the install."""
    if shutil.which("git") is None:
        pytest.skip("needs git to list the package's files")
    spec = importlib.util.spec_from_file_location("wheel_check", CHECK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.check(tmp_path, log=print)
    assert result["package"].startswith(str(tmp_path / "venv"))
    assert len(result["listed"]) == 8 and len(result["recipes"]) == 16 and result["synth_rows"] == 4
    assert result["benchmarks"]["math500"] == 500 and result["sources"]["gsm8k_train"] == 7473
    assert sorted(result["protocols"]) == ["greedy", "seele", "sparkle"]
    assert result["bad_exit"] == 1 and result["bad_output"].startswith("Error: ") and "\n" not in result["bad_output"]
    assert result["worker_script"]
