"""The shape of the code's imports: plugins use only the documented plugin API, frameworks
also the framework API, and no distribution has an import cycle (type-only and
function-level imports included)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import marathon_core

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = sorted(p for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").is_file())
#: Programs that speak only HTTP to the API (marathon-ctl).
CLIENTS = sorted(p for p in (ROOT / "clients").glob("*") if (p / "pyproject.toml").is_file())
FRAMEWORKS = sorted(p for p in (ROOT / "frameworks").glob("*") if (p / "pyproject.toml").is_file())
#: What frameworks (other Mesos frameworks built on the core) may import besides.
FRAMEWORK_API = ("marathon_core.framework",)


def python_files(directory: Path) -> Iterator[Path]:
    for path in sorted(directory.rglob("*.py")):
        if not any(part.startswith(".") or part.endswith(".egg-info") for part in path.parts):
            yield path


def module_name(path: Path, base: Path) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(path: Path, module: str) -> Iterator[str]:
    """Every module ``path`` imports, anywhere in it (``from a import b`` gives ``a.b``
    as well as ``a``: the caller keeps the names that are modules)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def within(name: str, api: tuple[str, ...]) -> bool:
    """Whether ``name`` is one of the ``api`` modules or a submodule of one; the root
    package ``marathon_core`` stands for itself only."""
    return any(name == p or (p != "marathon_core" and name.startswith(p + ".")) for p in api)


def core_modules() -> set[str]:
    return {module_name(p, ROOT) for p in python_files(ROOT / "marathon_core")}


@pytest.mark.parametrize("plugin", PLUGINS + FRAMEWORKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_plugins_import_only_the_plugin_api(plugin: Path) -> None:
    modules = core_modules()
    offending = []
    framework = plugin in FRAMEWORKS
    for path in python_files(plugin):
        in_tests = "tests" in path.relative_to(plugin).parts
        allowed = marathon_core.PLUGIN_API + (marathon_core.TESTING_API if in_tests else ())
        allowed += FRAMEWORK_API if framework else ()
        for name in imported(path, module_name(path, plugin)):
            if name in modules and not within(name, allowed):
                offending.append(f"{path.relative_to(ROOT)}: {name}")
    assert offending == [], "private core modules imported by a plugin or framework"


@pytest.mark.parametrize("client", CLIENTS, ids=lambda p: p.name)
def test_clients_import_no_server_code(client: Path) -> None:
    """A client works against a real Marathon 1.x too: HTTP only, no core module."""
    offending = []
    for path in python_files(client):
        if "tests" in path.relative_to(client).parts:
            continue
        for name in imported(path, module_name(path, client)):
            if name.split(".")[0] in ("marathon_core", "marathon_rest"):
                offending.append(f"{path.relative_to(ROOT)}: {name}")
    assert offending == [], "server code imported by a client"


def distributions() -> list[tuple[str, Path, Path]]:
    """(name, directory whose modules are named from, package directory) of each."""
    found = [("marathon-core", ROOT, ROOT / "marathon_core")]
    for plugin in [*PLUGINS, *CLIENTS, *FRAMEWORKS]:
        for package in sorted(plugin.glob("marathon_*/__init__.py")):
            found.append((plugin.name, plugin, package.parent))
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph[node]:
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize(
    ("base", "package"),
    [(base, package) for _, base, package in distributions()],
    ids=[f"{name}:{package.name}" for name, _, package in distributions()],
)
def test_no_import_cycles(base: Path, package: Path) -> None:
    files = {module_name(p, base): p for p in python_files(package)}
    graph = {
        module: {
            needed
            for name in imported(path, module)
            if name in files
            for needed in with_parents(name, importer=module)
            if needed in files and needed != module
        }
        for module, path in files.items()
    }
    assert cycles(graph) == []


def with_parents(name: str, *, importer: str) -> list[str]:
    """``name`` and the packages Python initialises before it (``a.b.c`` needs ``a`` and
    ``a.b``), except the importer's own packages, which are initialising already."""
    parts = name.split(".")
    own = importer.split(".")
    needed = [name]
    for n in range(1, len(parts)):
        if parts[:n] != own[:n]:
            needed.append(".".join(parts[:n]))
    return needed


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_importing_a_module_initialises_its_packages_first() -> None:
    assert with_parents("p.model.app", importer="p.contracts.health") == [
        "p.model.app",
        "p.model",
    ]
    assert with_parents("p.model.ids", importer="p.model.app") == ["p.model.ids"]


def test_no_module_is_over_800_lines() -> None:
    too_long = [
        f"{path.relative_to(ROOT)}: {n}"
        for _, _, package in distributions()
        for path in python_files(package)
        if (n := len(path.read_text().splitlines())) > 800
    ]
    assert too_long == []
