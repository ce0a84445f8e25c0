"""The module dependency graph of snnp is acyclic (docs/architecture.md, "Layers").

Every ``import`` and ``from ... import`` in every module under snnp/ counts, at module level or
inside a function (found by walking the AST, so a lazy import is an edge too).  Relative
imports are resolved; ``from snnp.a import b`` is an edge to the module ``snnp.a.b`` when that
is a module, else to ``snnp.a``; importing ``snnp.a.b`` also counts as importing the package
``snnp.a`` (its ``__init__`` runs first), except for the packages that contain the importing
module itself (those are already being imported) and the root package ``snnp``, the public
facade, which every submodule lives in.  The facade ``snnp/__init__.py``, ``snnp.cli`` and
``snnp.ladder`` are the top: nothing else may import them.
"""
import ast
import importlib.util
import os

import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "snnp")

#: the top: the public facade and the two front ends; nothing below may import them
TOP = {"snnp", "snnp.cli", "snnp.ladder"}

#: the bottom layer: building blocks that know nothing of models, training or files of models
BOTTOM = ["snnp._version", "snnp.splines", "snnp.filters", "snnp.embedding", "snnp.neighbors",
          "snnp.core", "snnp.probes", "snnp.coverage", "snnp.data", "snnp.io.atomic", "snnp.io.schema"]
#: ... and what they must not reach, directly or through other modules
ABOVE_BOTTOM = ["snnp.models", "snnp.training", "snnp.io.modelfile", "snnp.ladder", "snnp.cli"]


def modules(root=ROOT):
    """Dotted module name -> (file path, is_package) for every .py file under snnp/."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__")))
        rel = os.path.relpath(dirpath, os.path.dirname(root))
        package = rel.replace(os.sep, ".")
        for f in sorted(filenames):
            if not f.endswith(".py"):
                continue
            if f == "__init__.py":
                out[package] = (os.path.join(dirpath, f), True)
            else:
                out[f"{package}.{f[:-3]}"] = (os.path.join(dirpath, f), False)
    return out


def _is_module(name):
    """Whether ``name`` is an importable module outside snnp/ (the data package
    ``snnp.models_zoo`` is installed from models_zoo/)."""
    if not name.startswith("snnp."):
        return False
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _ancestors(name):
    parts = name.split(".")
    return [".".join(parts[:k]) for k in range(1, len(parts))]


def imports_of(name, path, is_package, known):
    """The snnp modules ``name`` imports (every Import/ImportFrom node, parents counted)."""
    with open(path) as fh:
        tree = ast.parse(fh.read(), path)
    here = name if is_package else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for alias in node.names:
                sub = f"{mod}.{alias.name}"
                targets.add(sub if sub in known or _is_module(sub) else mod)
    out = set()
    own = set(_ancestors(name)) | {name}
    for t in targets:
        if t != "snnp" and not t.startswith("snnp."):
            continue
        while t not in known and not _is_module(t) and "." in t:          # an attribute path: its module
            t = t.rpartition(".")[0]
        for m in _ancestors(t) + [t]:
            if m == t or (m != "snnp" and m not in own):
                out.add(m)
    out.discard(name)
    return out


def import_graph():
    known = modules()
    return {name: imports_of(name, path, pkg, known) for name, (path, pkg) in known.items()}


def find_cycle(graph):
    """One cycle as a list of modules [a, b, ..., a], or None (depth-first search)."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = {n: WHITE for n in graph}
    stack = []

    def visit(n):
        colour[n] = GREY
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if colour.get(m, BLACK) == GREY:
                return stack[stack.index(m):] + [m]
            if colour.get(m) == WHITE:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        colour[n] = BLACK
        return None

    for n in sorted(graph):
        if colour[n] == WHITE:
            found = visit(n)
            if found:
                return found
    return None


def all_cycles(graph):
    """Every strongly connected component with more than one module (Tarjan), sorted."""
    index, low, on, stack, comps, counter = {}, {}, set(), [], [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
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
                comps.append(sorted(comp))
    for v in sorted(graph):
        if v not in index:
            strong(v)
    return sorted(comps)


def reachable(graph, start):
    seen, todo = set(), [start]
    while todo:
        n = todo.pop()
        for m in graph.get(n, ()):
            if m not in seen:
                seen.add(m)
                todo.append(m)
    return seen


def test_graph_sees_lazy_and_relative_imports():
    """The walker itself: function-level and relative imports, parent packages counted."""
    graph = import_graph()
    assert "snnp.neighbors" in graph["snnp.backends"]          # from ..neighbors import ...
    assert "snnp.backends.gpu" in graph["snnp.backends"]       # inside a function
    assert "snnp.io" not in graph["snnp.io.modelfile"]         # its own package: not an edge
    assert {"snnp.io", "snnp.io.atomic"} <= graph["snnp.ladder"]  # from .io.atomic import


def test_no_import_cycles():
    graph = import_graph()
    if find_cycle(graph):
        lines = []
        for comp in all_cycles(graph):      # one cycle path per tangle of modules
            sub = {n: graph[n] & set(comp) for n in comp}
            lines.append(" -> ".join(find_cycle(sub))
                         + (f"   (tangle of {len(comp)}: {' '.join(comp)})" if len(comp) > 2 else ""))
        mutual = sorted(f"{a} <-> {b}" for a in graph for b in graph[a]
                        if a < b and a in graph.get(b, ()))
        pytest.fail("import cycles:\n  " + "\n  ".join(lines)
                    + ("\nmodules importing each other: " + ", ".join(mutual) if mutual else ""))


def test_nothing_imports_the_top():
    graph = import_graph()
    bad = sorted(f"{a} -> {b}" for a, deps in graph.items() if a not in TOP
                 for b in deps if b in TOP)
    assert not bad, "modules below the facade and front ends import them: " + ", ".join(bad)


@pytest.mark.parametrize("module", BOTTOM)
def test_bottom_modules_stay_at_the_bottom(module):
    graph = import_graph()
    assert module in graph, module
    direct = sorted(graph[module] & set(ABOVE_BOTTOM))
    assert not direct, f"{module} imports {direct}"
    through = sorted(reachable(graph, module) & set(ABOVE_BOTTOM))
    assert not through, f"{module} reaches {through} through its imports"


def test_every_package_is_installed():
    """Every package directory under snnp/ is in pyproject.toml's package list (a wheel
    leaves out the others: after the split of snnp/models.py into a package, say)."""
    import tomllib
    with open(os.path.join(ROOT, "..", "pyproject.toml"), "rb") as fh:
        listed = set(tomllib.load(fh)["tool"]["setuptools"]["packages"])
    packages = {name for name, (_, is_package) in modules().items() if is_package}
    assert packages <= listed, f"not in pyproject.toml's packages: {sorted(packages - listed)}"
