"""The import graph of the package: no module imports itself through others (no circle), and no
import runs up a floor (docs/architecture.md): a floor may use the floors listed before it only.
Lazy imports inside functions count as imports."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "randstruct"
FLOORS = [  # foundations first
    {"version", "errors", "memory", "plugins", "store", "theory"},
    {"tasks"},
    {"engine"},
    {"runs"},
    {"analysis", "dynamics"},
    {"executors"},
    {"paper", "tooling"},
    {"cli", "__init__", "__main__"},
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def floor(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    return next(i for i, names in enumerate(FLOORS) if top in names)


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in ROOT.rglob("*.py")}
    graph = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph[name] |= {t for t in targets if t.startswith("randstruct") and t in modules and t != name}
    return graph


def test_no_import_runs_up_a_floor():
    up = sorted(f"{a} -> {b}" for a, targets in import_graph().items() for b in targets if floor(b) > floor(a))
    assert not up, up


def test_no_circles():
    graph = import_graph()
    index, low, stack, on, circles, counter = {}, {}, [], set(), [], [0]

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
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
                circles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert not circles, circles


def test_no_module_is_too_long():
    long = {module_name(p): n for p in ROOT.rglob("*.py") if (n := len(p.read_text().splitlines())) > 420}
    assert not long, long
