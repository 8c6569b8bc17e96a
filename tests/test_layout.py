"""The shape of the code base: layers without import cycles, small modules and functions, one home per
task kind, and a README Layout that lists every module. Read from the source (ast), nothing imported."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "harness"
LAYERS = ("harness.core", "harness.model", "harness.data", "harness.decide", "harness.strategy", "harness.run",
          "harness.report", "harness.api", "harness.cli")
"""Bottom to top: a module imports only from its own layer or the ones below (README, Layout)."""


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """Every harness module `path` imports, at any depth (lazy imports and TYPE_CHECKING blocks too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("harness"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in known else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("harness")}
    return {m for m in found if m in known}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, known) - {name} for name, path in known.items()}


def layer(module: str) -> int | None:
    return next((i for i, prefix in enumerate(LAYERS) if module == prefix or module.startswith(prefix + ".")), None)


def reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(edges.get(start, ()))
    while todo:
        v = todo.pop()
        if v not in seen:
            seen.add(v)
            todo.extend(edges.get(v, ()))
    return seen


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other, directly or through others (strongly connected)."""
    reach = {v: reachable(edges, v) for v in edges}
    groups = {frozenset(u for u in edges if u in reach[v] and v in reach[u]) | {v} for v in edges if v in reach[v]}
    return sorted(sorted(g) for g in groups)


def test_the_import_graph_has_no_cycle():
    assert cycles(graph()) == []


def test_every_module_imports_only_its_layer_and_the_ones_below():
    upward = [f"{a} -> {b}" for a, targets in graph().items() for b in targets
              if layer(a) is not None and layer(b) is not None and layer(b) > layer(a)]  # type: ignore[operator]
    assert upward == []
    unplaced = [m for m in modules() if m != "harness" and not m.startswith("harness.__") and layer(m) is None]
    assert unplaced == []


def test_the_cycle_finder_finds_a_planted_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_modules_and_functions_stay_small():
    big_modules, big_functions = [], []
    for name, path in modules().items():
        source = path.read_text()
        if len(source.splitlines()) > 400:
            big_modules.append(name)
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 60:
                    big_functions.append(f"{name}.{node.name}: {length} lines")
    assert big_modules == [] and big_functions == []


def test_no_module_names_a_task_kind_but_the_kind_itself():
    """Kind names as string literals live only in their TaskKind (harness/data/kinds/)."""
    from harness.data import kinds

    pattern = re.compile("|".join(re.escape(repr(k)[1:-1]) for k in kinds.names()))
    offenders = []
    for name, path in modules().items():
        if name.startswith("harness.data.kinds"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and pattern.fullmatch(node.value):
                offenders.append(f"{name}:{node.lineno}: {node.value!r}")
    assert offenders == []


def test_the_readme_layout_lists_every_module():
    """Every module under harness/ appears in the README's Layout section (by its path), and every
    path listed there exists."""
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout"):]
    layout = layout[: layout.index("\n## ", 1)] if "\n## " in layout[1:] else layout
    listed = set(re.findall(r"(harness/[\w/]+\.py|harness/[\w/]+/)", layout))
    missing = [str(p.relative_to(ROOT)) for p in modules().values() if str(p.relative_to(ROOT)) not in listed
               and not (p.name == "__init__.py" and f"{p.parent.relative_to(ROOT)}/" in listed)]
    assert missing == []
    stale = sorted(p for p in listed if not (ROOT / p).exists())
    assert stale == []
