"""Build a wheel of this checkout, install it into a fresh environment and use it from outside the repository.

What it checks, and prints as it goes:

1. the wheel holds every package file of the checkout, data included (recipes, accelerate configs,
   protocols, vendored benchmarks, the grader's worker script);
2. installed into a new venv, ``import scaffoldrl`` comes from that venv, not from the checkout;
3. from an empty directory outside the repository: ``scaffoldrl recipes`` lists the shipped recipes,
   ``scaffoldrl data synth`` writes records, every vendored benchmark and protocol preset loads, every recipe
   loads by name with its accelerate config, and a bad records file ends in a one-line error.

The new venv is made with ``--system-site-packages`` from this Python, and a ``.pth`` file adds this
environment's site-packages behind its own (a venv made from a venv sees the base interpreter's packages,
not the parent venv's): torch, TRL and the rest need no download, while the wheel's scaffoldrl, installed
into the new venv, shadows any editable install here. Nothing is downloaded: the wheel is built without
build isolation (setuptools from this environment) and installed with ``--no-deps --no-index``.

    python bench/wheel_check.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "scaffoldrl"

INSIDE = r"""
import json, sys
from pathlib import Path
import scaffoldrl
from scaffoldrl.benchmarks import BENCHMARKS, load_benchmark
from scaffoldrl.evaluate import Protocol
from scaffoldrl.recipes import load_recipe, recipe_names, resolve_accelerate
from scaffoldrl.sources import SOURCES, load_source
from scaffoldrl.verify import WORKER_SCRIPT

out = {"package": scaffoldrl.__file__, "benchmarks": {}, "sources": {}, "protocols": {}, "recipes": {}}
for name in sorted(BENCHMARKS):
    if name != "synth":
        out["benchmarks"][name] = len(load_benchmark(name)[1])
for name in sorted(SOURCES):
    out["sources"][name] = len(load_source(name))
for name in ("sparkle", "seele", "greedy"):
    out["protocols"][name] = type(Protocol.load(name)).__name__
for name in recipe_names():
    for variant in ("tiny", "paper"):
        recipe = load_recipe(name, variant)
        accelerate = resolve_accelerate(recipe.accelerate).name if recipe.accelerate else None
        out["recipes"][f"{name}/{variant}"] = accelerate
out["worker_script"] = WORKER_SCRIPT.is_file()
print(json.dumps(out))
"""


def package_files() -> set[str]:
    """The package's files as a wheel names them (``scaffoldrl/...``), from git when this is a checkout."""
    try:
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "src/scaffoldrl"],
                                cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        listed = [str(p.relative_to(REPO)) for p in PACKAGE.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return {str(Path(f).relative_to("src")) for f in listed if (REPO / f).is_file()}


def copy_source(dest: Path) -> Path:
    """The files a build needs, copied so that the build leaves nothing in the checkout."""
    dest.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md"):
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, dest / name)
    for rel in package_files():
        target = dest / "src" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PACKAGE.parent / rel, target)
    return dest


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run a command and fail with its output when it fails."""
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"FAILED ({result.returncode}): {' '.join(map(str, cmd))}\n{result.stdout}\n{result.stderr}")
    return result


def check(work: Path, log=print) -> dict:
    """Build, install and use the wheel under ``work``; returns what was measured."""
    import json

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["HF_HUB_OFFLINE"] = "1"
    started = time.perf_counter()
    source = copy_source(work / "src-copy")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", str(work / "dist"), str(source)], cwd=work, env=env)
    wheel = next((work / "dist").glob("scaffoldrl-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(package_files() - names)
    data = sorted(n for n in names if n.startswith("scaffoldrl/") and not n.endswith(".py"))
    log(f"wheel {wheel.name}: {len(names)} files, {len(data)} data files, {wheel.stat().st_size / 1e6:.1f} MB "
        f"({time.perf_counter() - started:.1f} s)")
    if missing:
        raise SystemExit(f"FAILED: the wheel lacks {len(missing)} package files: {missing}")
    log("  every package file of the checkout is in the wheel (recipes, accelerate configs, protocols, vendor)")

    venv = work / "venv"
    run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], cwd=work, env=env)
    python = venv / "bin" / "python"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                    cwd=work, env=env).stdout.strip())
    parent = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "_parent_environment.pth").write_text("".join(f"{p}\n" for p in sorted(parent)))
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
         str(wheel)], cwd=work, env=env)
    log(f"  installed into a fresh venv ({venv}) without downloads")

    outside = work / "elsewhere"
    outside.mkdir()
    cli = venv / "bin" / "scaffoldrl"
    listed = run([str(cli), "recipes"], cwd=outside, env=env).stdout.splitlines()
    log(f"  `scaffoldrl recipes` from {outside}: {len(listed)} recipes ({', '.join(l.split()[0] for l in listed)})")
    synth = run([str(cli), "data", "synth", "synth.jsonl", "--n", "2", "--levels", "1,3"], cwd=outside, env=env)
    rows = (outside / "synth.jsonl").read_text().splitlines()
    log(f"  `scaffoldrl data synth`: {synth.stdout.strip()} ({len(rows)} lines)")
    (outside / "bad.jsonl").write_text('{"problem": "1+1?", "answer": "2"}\n{not json\n')
    bad = subprocess.run([str(cli), "data", "augment", "bad.jsonl", "rows.jsonl"], cwd=outside, env=env,
                         capture_output=True, text=True)
    error = (bad.stdout + bad.stderr).strip()
    log(f"  a broken records file: exit {bad.returncode}, {len(error.splitlines())} line: {error}")
    inside = json.loads(run([str(python), "-c", INSIDE], cwd=outside, env=env).stdout)
    if not inside["package"].startswith(str(venv)):
        raise SystemExit(f"FAILED: scaffoldrl imported from {inside['package']}, not from the wheel in {venv}")
    log(f"  scaffoldrl imported from {inside['package']}")
    log(f"  benchmarks: {inside['benchmarks']}")
    log(f"  sources: {inside['sources']}")
    log(f"  protocols: {sorted(inside['protocols'])}; recipes by name, both variants: {len(inside['recipes'])} "
        f"(accelerate configs: {sorted({a for a in inside['recipes'].values() if a})})")
    log(f"  grader worker script installed: {inside['worker_script']}")
    log(f"done in {time.perf_counter() - started:.1f} s")
    return {"wheel": wheel, "listed": listed, "synth_rows": len(rows), "bad_exit": bad.returncode,
            "bad_output": error, **inside}


def main(argv: list[str] | None = None) -> None:
    """Command line: run :func:`check` in a temporary folder (``--keep DIR`` keeps it)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="Work in DIR (must not exist) and keep it.")
    args = parser.parse_args(argv)
    if args.keep:
        args.keep.mkdir(parents=True)
        check(args.keep)
        return
    with tempfile.TemporaryDirectory(prefix="scaffoldrl-wheel-") as tmp:
        check(Path(tmp))


if __name__ == "__main__":
    main()
