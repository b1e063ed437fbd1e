"""Run folders that resume: a folder remembers the settings it was made with and refuses others.

A resumed stage reuses whatever it finds on disk, so mixing settings would silently
combine, say, samples of two protocols, or a base model of another tokenizer.
"""

from __future__ import annotations

import json
from pathlib import Path


class SettingsMismatch(ValueError):
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
