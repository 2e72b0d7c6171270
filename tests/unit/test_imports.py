"""The import graph of drills/ and components/: no circles, and components never imports drills.

Imports are read from the source (ast), at module level and inside functions alike (a
lazy import is still a dependency); only `if TYPE_CHECKING:` blocks are left out, since
they never run. Data flows one way: spec -> target -> workload -> history -> checker ->
run record -> evidence, report, cost.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("drills", "components")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _runtime_imports(
    tree: ast.AST, module: str, is_package: bool, modules: frozenset[str] = frozenset()
) -> set[str]:
    """Modules imported by `tree`, skipping `if TYPE_CHECKING:` bodies; `modules` are the
    known module names (to tell `from pkg import submodule` from `from pkg import name`)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = module.split(".") if is_package else module.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join([*pkg, base] if base else pkg)
            subs = {f"{base}.{a.name}" for a in node.names}
            found.update(subs)
            if not subs <= modules:  # `from pkg import submodule` depends on the submodule
                found.add(base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    files = [p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")]
    modules = {_module_name(p): p for p in files}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        raw = _runtime_imports(
            ast.parse(path.read_text()), name, path.name == "__init__.py", frozenset(modules)
        )
        graph[name] = {m for m in raw if m in modules and m != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle, as the list of modules around it, or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    stack: list[str] = []

    def dfs(n: str) -> list[str] | None:
        colour[n] = GREY
        stack.append(n)
        for m in sorted(graph[n]):
            if colour[m] == GREY:
                return stack[stack.index(m) :] + [m]
            if colour[m] == WHITE and (found := dfs(m)):
                return found
        stack.pop()
        colour[n] = BLACK
        return None

    for n in sorted(graph):
        if colour[n] == WHITE and (found := dfs(n)):
            return found
    return None


def test_no_import_circles():
    graph = import_graph()
    assert graph, "no modules found"
    cyc = _cycle(graph)
    assert cyc is None, "import circle: " + " -> ".join(cyc or [])


def test_components_never_import_drills():
    bad = {
        name: sorted(m for m in deps if m.split(".")[0] == "drills")
        for name, deps in import_graph().items()
        if name.split(".")[0] == "components"
    }
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"components importing drills: {bad}"


def test_the_checker_finds_a_circle():
    """The walk itself can fail: a hand-made circle is found."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
    tree = ast.parse(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import x.y\n"
        "def f():\n    from . import z\n"
    )
    assert _runtime_imports(tree, "p.q", False) == {"typing", "typing.TYPE_CHECKING", "p", "p.z"}
    assert _runtime_imports(tree, "p.q", False, frozenset({"p.z"})) == {
        "typing",
        "typing.TYPE_CHECKING",
        "p.z",
    }


# Detection sees only what clients see: no module of it may reach a target, the local pair,
# the stack or the fault registry, even through another module.
DETECTION_MODULES = ("drills.detection",)
DETECTION_FORBIDDEN = (
    "drills.targets",
    "drills.engine",
    "drills.spec",  # it imports the fault registry
    "components.local",
    "components.faults",
    "components.aws",
    "components.kubernetes",
)


def _reachable(graph: dict[str, set[str]], start: str) -> dict[str, list[str]]:
    """Every module `start` imports, directly or not, with one chain of imports to it."""
    seen: dict[str, list[str]] = {start: [start]}
    todo = [start]
    while todo:
        n = todo.pop()
        for m in sorted(graph.get(n, ())):
            if m not in seen:
                seen[m] = [*seen[n], m]
                todo.append(m)
    return seen


def _forbidden_imports(graph: dict[str, set[str]], modules, forbidden) -> list[str]:
    bad = []
    for mod in modules:
        for m, chain in _reachable(graph, mod).items():
            if any(m == f or m.startswith(f + ".") for f in forbidden):
                bad.append(" -> ".join(chain))
    return bad


def test_detection_imports_no_target_stack_or_fault_module():
    graph = import_graph()
    mods = [m for m in DETECTION_MODULES if m in graph]
    assert mods == list(DETECTION_MODULES), "a detection module is missing"
    bad = _forbidden_imports(graph, mods, DETECTION_FORBIDDEN)
    assert not bad, f"detection reaches what clients cannot see: {bad}"


def test_the_detection_boundary_check_can_fail():
    graph = {"drills.detection": {"drills.util"}, "drills.util": {"components.local.env"},
             "components.local.env": set()}  # fmt: skip
    assert _forbidden_imports(graph, ["drills.detection"], DETECTION_FORBIDDEN) == [
        "drills.detection -> drills.util -> components.local.env"
    ]
