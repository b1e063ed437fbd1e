"""Ship a base model built with the default settings as the package's default base.

``scaffoldrl demo`` with the default settings then copies it instead of
building it (minutes on 2 CPU cores), and measures its hint table on the
same held-out problems, so a fresh clone prints the table shipped here.

Run: scaffoldrl demo --base-only --rebuild-base --out runs/base && python bench/ship_base.py runs/base
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import asdict
from pathlib import Path

from scaffoldrl.base_model import MODEL_FILES, SHIPPED, BaseConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder of `scaffoldrl demo --base-only --rebuild-base`")
    args = parser.parse_args()
    summary = json.loads((args.run / "base.json").read_text())
    if summary["config"] != json.loads(json.dumps(asdict(BaseConfig()))):
        raise SystemExit(f"{args.run} was built with settings other than BaseConfig()'s defaults: not shipped")
    if "shipped_base" in summary["stage_seconds"]:
        raise SystemExit(f"{args.run} copied the shipped base: rebuild it with --rebuild-base")
    SHIPPED.mkdir(parents=True, exist_ok=True)
    for name in MODEL_FILES:
        shutil.copy(args.run / "models" / "base" / name, SHIPPED / name)
    (SHIPPED / "base.json").write_text(json.dumps(summary, indent=1) + "\n")
    size = sum((SHIPPED / name).stat().st_size for name in MODEL_FILES)
    print(f"shipped {args.run / 'models' / 'base'} -> {SHIPPED} ({size / 1e6:.1f} MB); hint table:")
    for level, row in summary["hint_table"].items():
        print(f"  L{level}: " + ", ".join(f"{h} {100 * v:.0f}%" for h, v in row.items()))


if __name__ == "__main__":
    main()
