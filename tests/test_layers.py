"""The house stays walkable: every import points down the declared layer list, no module
imports itself back through a circle, and every module imports on its own.

Run alone with ``pytest tests/test_layers.py``; the layer list is the one in DESIGN.md.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "hqexp"

# Top to bottom: a module may import its own layer's package or any layer below it.
LAYERS = [
    ("hqexp.cli", "hqexp.api", "hqexp.flower_app"),
    ("hqexp.entrypoints",),
    ("hqexp.train",),
    ("hqexp.federated",),
    ("hqexp.privacy",),
    ("hqexp.bench", "hqexp.diagnostics", "hqexp.runs"),
    ("hqexp.callbacks",),
    ("hqexp.models",),
    ("hqexp.data",),
    ("hqexp.quantum",),
    ("hqexp.tracking",),
    (
        "hqexp.energy",
        "hqexp.errors",
        "hqexp.config",
        "hqexp.interrupts",
        "hqexp.allocator",
        "hqexp.optim",
        "hqexp.safeload",
    ),
]


def modules() -> dict[str, Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        parts = path.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def layer_of(module: str) -> int:
    for i, names in enumerate(LAYERS):
        if any(module == n or module.startswith(n + ".") for n in names):
            return i
    if module == "hqexp":
        return len(LAYERS) - 1
    raise AssertionError(f"{module} is in no declared layer: add it to LAYERS (and DESIGN.md)")


def _type_checking_only(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """hqexp modules imported anywhere in ``path`` (function-level imports included,
    ``if TYPE_CHECKING:`` blocks excluded)."""
    tree = ast.parse(path.read_text())
    skip = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and _type_checking_only(node)
        for n in ast.walk(node)
        if n is not node
    }
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("hqexp")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            if not base.startswith("hqexp"):
                continue
            for a in node.names:
                out.add(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base)
    return out - {name}


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: {m for m in imports_of(name, path, known) if m in known} for name, path in mods.items()}


def test_every_import_points_down():
    bad = []
    for mod, deps in graph().items():
        for dep in deps:
            if layer_of(dep) < layer_of(mod):
                bad.append(f"{mod} (layer {layer_of(mod)}) imports {dep} (layer {layer_of(dep)})")
    assert not bad, "upward imports:\n" + "\n".join(sorted(bad))


def test_no_import_circle():
    g = graph()
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in g:
        if v not in index:
            visit(v)
    assert not cycles, f"import circles: {cycles}"


def test_every_module_imports_on_its_own():
    """Each module imported first in a fresh set of hqexp modules (third-party packages stay
    loaded, so this is quick): an import-order dependency or a module-level circle fails here."""
    names = sorted(modules())
    script = (
        "import importlib, sys\n"
        f"names = {names!r}\n"
        "bad = []\n"
        "for n in names:\n"
        "    for m in [m for m in sys.modules if m == 'hqexp' or m.startswith('hqexp.')]:\n"
        "        del sys.modules[m]\n"
        "    try:\n"
        "        importlib.import_module(n)\n"
        "    except Exception as exc:\n"
        "        bad.append(f'{n}: {type(exc).__name__}: {exc}')\n"
        "print('\\n'.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "", out.stdout
