"""The package's layers, read from its imports (docs/architecture.md, "Layers").

    loot/cli, loot/__main__, the facade loot/__init__   the command line and local cluster
    loot/node                                            a shard serving the public API: router and shard composed
    loot/router        loot/shard                        the two servers, each on the base alone
    loot/sdk, loot/dbapi, loot/sqlalchemy                what an application imports
    the base: ids, tokens, values, errors, ring, membership, settings, TLS, serving, observability, stubs

Imports only point down; no module imports itself back through others; the SDK
loads no server code. Imports under `if TYPE_CHECKING:` are annotations, not arrows.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "loot"
ALLOWED = {
    "base": {"base"},
    "sdk": {"base", "sdk"},
    "router": {"base", "router"},
    "shard": {"base", "shard"},
    "node": {"base", "router", "shard", "node"},
    "cli": {"base", "sdk", "router", "shard", "node", "cli"},
}
# What an application that imports the SDK must not load.
SERVER_ONLY = ("apsw", "prometheus_client", "loot.serving", "loot.observability")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def layer(module: str) -> str:
    if module in ("loot", "loot.__main__") or module.startswith("loot.cli"):
        return "cli"
    if module in ("loot.dbapi", "loot.sqlalchemy"):  # drivers over the SDK, under the names their users look for
        return "sdk"
    for name in ("sdk", "router", "shard", "node"):
        if module == f"loot.{name}" or module.startswith(f"loot.{name}."):
            return name
    return "base"


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node but those under `if TYPE_CHECKING:`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def imports(module: str) -> set[str]:
    """The modules `module` imports at run time (anywhere in it, lazily or not), with the packages
    Python runs first to import them: importing a.b.c from outside package a.b runs a/b/__init__.py."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return found | {parent for target in found for parent in _packages_entered(module, target)}


def _packages_entered(importer: str, target: str) -> Iterator[str]:
    parts = target.split(".")
    for end in range(2, len(parts)):
        package = ".".join(parts[:end])
        if package in MODULES and not importer.startswith(package + ".") and importer != package:
            yield package


GRAPH = {module: imports(module) for module in MODULES}


def test_imports_only_point_down() -> None:
    upward = [f"{module} ({layer(module)}) imports {target} ({layer(target)})"
              for module, targets in GRAPH.items() for target in targets
              if target in MODULES and layer(target) not in ALLOWED[layer(module)]]
    assert not upward, "\n".join(sorted(upward))


def test_no_import_cycles() -> None:
    cycles = [component for component in _strongly_connected() if len(component) > 1]
    cycles += [[module] for module, targets in GRAPH.items() if module in targets]
    assert not cycles, cycles


def test_the_sdk_loads_no_server_code() -> None:
    seen: set[str] = set()
    todo = [module for module in MODULES if layer(module) == "sdk"]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(target for target in GRAPH.get(module, ()) if target in MODULES)
    loaded = {target for module in seen for target in GRAPH[module]}
    assert not [name for name in loaded if name.startswith(SERVER_ONLY)], sorted(loaded)


def test_only_loot_is_installed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert config["tool"]["setuptools"]["packages"]["find"]["include"] == ["loot*"]
    stray = [path.parent.name for path in ROOT.glob("*/__init__.py") if path.parent.name not in ("loot", "tests", "bench")]
    assert not stray, stray


def test_the_check_sees_arrows() -> None:
    """The walker itself: a known downward arrow and a lazy one are found."""
    assert "loot.router.server" in GRAPH["loot.cli.main"]
    assert "loot.tokens.mint" in GRAPH["loot.tokens.keys"]  # imported inside Key.token
    assert layer("loot.shard.engine") == "shard" and layer("loot.tokens.keys") == "base"


def _strongly_connected() -> list[list[str]]:
    """Tarjan's algorithm over GRAPH (iterative: the graph is a few hundred modules deep at most)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in GRAPH:
        if root in index:
            continue
        work = [(root, iter(sorted(t for t in GRAPH[root] if t in GRAPH)))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(t for t in GRAPH[child] if t in GRAPH))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    return components
