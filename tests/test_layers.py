"""The package's layers only point down, and no modules import each other in a circle.

Every import counts, at the top of a file or inside a function: a deferred
import that climbs a layer is still a dependency a reader has to follow.
Print the picture with ``python tests/test_layers.py [PACKAGE_DIR]`` (another checkout's
``src/scaffoldrl`` to compare with).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "scaffoldrl"

LAYERS = [
    # extract finds an answer in text (boxes, tags, final-answer sentences): the data loaders need it to take a
    # reference solution's answer, and the grader builds on it, so it sits with the data
    ("data", {"records", "extract", "sources", "benchmarks", "prompts", "steps", "domain", "tinymodel", "runs",
              "progress", "prepare"}),
    ("grading", {"verify", "_grade_worker", "rewards"}),
    ("methods", {"hints", "methods"}),
    ("training", {"trainer", "recipes", "sft"}),
    ("evaluation", {"generation", "metrics", "report", "evaluate", "analysis", "mining", "annotate"}),
    ("top", {"base_model", "demo", "cli", "integrations", "__main__", "__init__"}),
]
"""Bottom to top. A module may import its own layer and the ones below."""


def module_name(path: Path, package: Path = PACKAGE) -> str:
    """``methods/seele.py`` → ``methods.seele``; a package's ``__init__`` is the package itself."""
    parts = list(path.relative_to(package).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: Path, package_dir: Path = PACKAGE) -> set[str]:
    """The package modules a file imports (``from . import x``, ``from .a.b import c``, ``import scaffoldrl.x``)."""
    here = module_name(path, package_dir).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1] + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "scaffoldrl":
                base = node.module.split(".")[1:]
            else:
                continue
            names = [".".join([*base, alias.name]) for alias in node.names] if not node.module else []
            found.update(names or [".".join(base)])
        elif isinstance(node, ast.Import):
            found.update(".".join(a.name.split(".")[1:]) for a in node.names if a.name.startswith("scaffoldrl."))
    return {name for name in found if name}


def graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module → the package modules it imports (names resolved to existing modules)."""
    paths = {module_name(p, package): p for p in package.rglob("*.py") if "vendor" not in p.parts}
    known = set(paths)

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    return {m: {r for r in map(resolve, imports(p, package)) if r and r != m} for m, p in paths.items()}


def layer_of(module: str) -> int:
    top = module.split(".")[0]
    for i, (_, members) in enumerate(LAYERS):
        if top in members:
            return i
    raise AssertionError(f"module {module} is in no layer: add it to LAYERS")


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_every_module_is_in_a_layer():
    for module in graph():
        layer_of(module)


def test_imports_only_point_down():
    upward = [f"{m} ({LAYERS[layer_of(m)][0]}) imports {d} ({LAYERS[layer_of(d)][0]})"
              for m, deps in sorted(graph().items()) for d in sorted(deps)
              if layer_of(d) > layer_of(m)]
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    assert not cycles(graph())


def test_the_checker_sees_relative_and_deferred_imports(tmp_path):
    """The parser finds ``from . import x``, ``from ..a import b`` and imports inside functions."""
    assert {"verify", "progress"} <= imports(PACKAGE / "rewards.py") | imports(PACKAGE / "verify.py")
    assert "hints" in imports(PACKAGE / "methods" / "seele.py")
    assert "recipes" in imports(PACKAGE / "demo.py")  # only a deferred import, inside a function
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


if __name__ == "__main__":
    edges = graph(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else PACKAGE)

    def layer(m: str) -> int | None:
        try:
            return layer_of(m)
        except AssertionError:
            return None

    for i, (name, _) in reversed(list(enumerate([*LAYERS, ("in no layer", set())]))):
        mods = sorted(m for m in edges if (layer(m) if layer(m) is not None else len(LAYERS)) == i)
        if mods:
            print(f"{name}:")
        for m in mods:
            print(f"  {m:<22} -> {', '.join(sorted(edges[m])) or '-'}")
    upward = [(m, d) for m, deps in edges.items() for d in deps
              if None not in (layer(m), layer(d)) and layer(d) > layer(m)]
    print(f"upward imports: {len(upward)}", *(f"  {m} -> {d}" for m, d in sorted(upward)), sep="\n")
    print("cycles:", cycles(edges) or "none")
