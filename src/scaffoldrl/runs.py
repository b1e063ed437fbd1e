"""Run folders that resume: named stages run once, and a folder refuses settings other than its own.

A resumed stage reuses whatever it finds on disk, so mixing settings would silently
combine, say, samples of two protocols, or a base model of another tokenizer.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from .records import InputError


class SettingsMismatch(InputError):
    """A run folder holds results made with other settings."""


def _flat(settings: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in settings.items():
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def check_settings(out: Path, name: str, settings: dict, ignored: tuple[str, ...] = ()) -> None:
    """Raise :class:`SettingsMismatch` naming each differing (dotted) setting, else record them in ``out/name``.

    Top-level keys in ``ignored`` may differ (e.g. seeds a study may add to).
    """
    settings = json.loads(json.dumps(settings))
    path = out / name
    if path.exists():
        before, now = _flat(json.loads(path.read_text())), _flat(settings)
        changed = sorted(k for k in before.keys() | now.keys()
                         if k.split(".")[0] not in ignored and before.get(k) != now.get(k))
        if changed:
            raise SettingsMismatch(f"{out} holds a run made with other {', '.join(changed)} (see {path}); "
                                   f"use another --out folder")
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=1) + "\n")


class Stages:
    """Runs named stages once: a stage whose marker file exists is skipped on rerun."""

    def __init__(self, out: Path, log=print):
        self.out, self.log = out, log
        self.times: dict[str, float] = {}
        out.mkdir(parents=True, exist_ok=True)

    def run(self, name: str, fn):
        """Run ``fn`` unless an earlier run finished stage ``name``; returns its seconds and result."""
        marker = self.out / "stages" / f"{name}.json"
        if marker.exists():
            self.log(f"[skip] {name} (done in an earlier run)")
            return json.loads(marker.read_text())
        self.log(f"[run] {name}")
        t = time.perf_counter()
        result = fn()
        self.times[name] = time.perf_counter() - t
        marker.parent.mkdir(exist_ok=True)
        marker.write_text(json.dumps({"seconds": self.times[name], "result": result}, indent=1))
        self.log(f"[done] {name} in {self.times[name]:.1f}s")
        return {"seconds": self.times[name], "result": result}
