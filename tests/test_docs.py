"""The examples in docs/api.md run as written (blocks that train say so on their first line and are skipped)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

API = Path(__file__).resolve().parents[1] / "docs" / "api.md"
SKIP = "# not run by the tests"


def blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", API.read_text(), flags=re.S)


def test_the_api_page_has_examples_and_says_which_it_skips():
    found = blocks()
    assert len(found) >= 12 and sum(b.startswith(SKIP) for b in found) <= 5


@pytest.mark.slow
def test_api_examples_run(tmp_path, monkeypatch, capsys):
    """One namespace per block, in page order (a later block may use a file an earlier one wrote)."""
    monkeypatch.chdir(tmp_path)
    for i, code in enumerate(b for b in blocks() if not b.startswith(SKIP)):
        code = code.replace("/tmp/scaffoldrl-api", str(tmp_path))
        try:
            exec(compile(code, f"docs/api.md block {i}", "exec"), {"__name__": f"api_block_{i}"})
        except Exception as e:  # name the block, not only the line
            raise AssertionError(f"docs/api.md python block {i} failed: {e!r}\n{code}") from e
    out = capsys.readouterr().out
    assert "qwen2" in out and "True \\frac{2}{4} ok" in out and "[2.0, 1.0, -1.0]" in out


def test_public_functions_and_classes_have_docstrings():
    """What a user can import says what it is for (an override inherits its base's docstring)."""
    import importlib
    import inspect
    import pkgutil

    import scaffoldrl

    missing = []
    for info in pkgutil.walk_packages(scaffoldrl.__path__, "scaffoldrl."):
        if ".vendor" in info.name or info.name.rsplit(".", 1)[-1].startswith("_"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(obj) or inspect.isclass(obj):
                if not inspect.getdoc(obj):
                    missing.append(f"{info.name}.{name}")
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if attr.startswith("_") or not (inspect.isfunction(member) or isinstance(member, property)):
                        continue
                    if not inspect.getdoc(getattr(obj, attr)):
                        missing.append(f"{info.name}.{name}.{attr}")
    assert not missing, "\n".join(missing)
