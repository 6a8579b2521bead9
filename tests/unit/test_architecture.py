"""The shape of server/spanlens_lsp, read from its source with ``ast``: imports point down the
layer order, no module imports another's ``_private`` name, and no modules import each other.

ARCHITECTURE.md: ``lsp, cli → workspace → scheduling → docgen, enrichment → indexing →
store``, and inside enrichment ``engine → call → planning → reply → backends → prompt``;
vocabulary every layer shares sits at the bottom. Every import counts, the lazy ones inside
functions and those under ``TYPE_CHECKING`` too: each is a dependency a reader must follow.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "server" / "spanlens_lsp"

#: Layers, lowest first: a module may import its own layer or a lower one. The first entry
#: is the vocabulary every layer shares (each module there imports only the others).
#: A module's layer is that of the longest name here that is it or its package.
LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "spanlens_lsp",  # the package itself: only ``__version__``
        "spanlens_lsp.states",
        "spanlens_lsp.settings",
        "spanlens_lsp.config",
        "spanlens_lsp.presentation.text",  # the one sanitiser: imports nothing
    ),
    ("spanlens_lsp.store",),
    ("spanlens_lsp.indexing", "spanlens_lsp.telemetry", "spanlens_lsp.localmodel"),
    ("spanlens_lsp.presentation",),
    # enrichment/, one folder a concept (issue 17 §2): what the model is shown, the
    # providers, what a reply is judged against, which spans go in which job, the one call
    # path; the engine and the runner on top of them.
    ("spanlens_lsp.enrichment.prompt",),
    ("spanlens_lsp.enrichment.backends",),
    ("spanlens_lsp.enrichment.reply",),
    ("spanlens_lsp.enrichment.planning",),
    ("spanlens_lsp.enrichment.call",),
    ("spanlens_lsp.enrichment", "spanlens_lsp.docgen", "spanlens_lsp.embedding"),
    # search by meaning (issue 19): keyword and vector results ranked together.
    ("spanlens_lsp.search",),
    ("spanlens_lsp.scheduling",),
    ("spanlens_lsp.workspace",),
    ("spanlens_lsp.app",),
    ("spanlens_lsp.lsp", "spanlens_lsp.cli"),
)


@dataclass(slots=True)
class Module:
    """One module of the package: its dotted name, file and what it imports."""

    name: str
    path: Path
    is_package: bool
    #: Modules of the package it imports (a name imported from a package is the package's
    #: ``__init__`` unless it is a submodule).
    imports: set[str] = field(default_factory=set)
    #: ``module._name`` for every private name it takes from another module.
    private: set[str] = field(default_factory=set)


def _modules() -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        modules[name] = Module(name, path, is_package)
    for module in modules.values():
        _read_imports(module, modules)
    return modules


def _owner(name: str, modules: dict[str, Module]) -> str:
    """The module that ``name`` (a module, or a name inside one) lives in."""
    while name not in modules:
        name = name.rpartition(".")[0]
    return name


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _read_imports(module: Module, modules: dict[str, Module]) -> None:
    tree = ast.parse(module.path.read_text(encoding="utf-8"), str(module.path))
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    aliases: dict[str, str] = {}  # local name -> spanlens module bound to it
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "spanlens_lsp":
                    module.imports.add(_owner(alias.name, modules))
                    bound = alias.name if alias.asname else alias.name.split(".")[0]
                    aliases[alias.asname or bound] = bound
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            if base.split(".")[0] != "spanlens_lsp":
                continue
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if full in modules:
                    module.imports.add(full)
                    aliases[alias.asname or alias.name] = full
                    continue
                owner = _owner(base, modules)
                module.imports.add(owner)
                if _is_private(alias.name) and owner != module.name:
                    module.private.add(f"{owner}.{alias.name}")
    for node in ast.walk(tree):  # module._name, through a module imported whole
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and _is_private(node.attr)
            and aliases[node.value.id] in modules
            and aliases[node.value.id] != module.name
        ):
            module.private.add(f"{aliases[node.value.id]}.{node.attr}")
    module.imports.discard(module.name)


@pytest.fixture(scope="module")
def modules() -> dict[str, Module]:
    found = _modules()
    assert len(found) > 50 and "spanlens_lsp.store.db" in found  # the right tree was read
    return found


def _layer(name: str) -> int | None:
    best: tuple[int, int] | None = None  # (length of the matching entry, layer)
    for level, entries in enumerate(LAYERS):
        for entry in entries:
            matches = name == entry or (entry != "spanlens_lsp" and name.startswith(entry + "."))
            if matches and (best is None or len(entry) > best[0]):
                best = (len(entry), level)
    return None if best is None else best[1]


def _short(name: str) -> str:
    return name.removeprefix("spanlens.")


def _edges(modules: dict[str, Module]) -> Iterator[tuple[str, str]]:
    for module in modules.values():
        for imported in sorted(module.imports):
            yield module.name, imported


def _reaches(modules: dict[str, Module], start: str, goal: str) -> bool:
    seen = {start}
    queue = deque([start])
    while queue:
        current = queue.popleft()
        if current == goal:
            return True
        for nxt in modules[current].imports - seen:
            seen.add(nxt)
            queue.append(nxt)
    return False


def test_every_module_has_a_layer(modules: dict[str, Module]) -> None:
    unplaced = [name for name in modules if _layer(name) is None]
    assert unplaced == [], f"place these in LAYERS (and in ARCHITECTURE.md's map): {unplaced}"


def test_imports_point_down_the_layers(modules: dict[str, Module]) -> None:
    upward = [
        f"{importer} (layer {_layer(importer)}) imports {imported} (layer {_layer(imported)})"
        for importer, imported in _edges(modules)
        if (_layer(imported) or 0) > (_layer(importer) or 0)
    ]
    assert upward == [], "imports that point up the layer order:\n" + "\n".join(upward)


def test_no_import_cycle_between_modules(modules: dict[str, Module]) -> None:
    on_cycles = {
        f"{_short(importer)} -> {_short(imported)}"
        for importer, imported in _edges(modules)
        if _reaches(modules, imported, importer)
    }
    assert sorted(on_cycles) == [], "imports that close a cycle between modules:\n" + "\n".join(
        sorted(on_cycles)
    )


def test_no_private_name_is_imported_from_another_module(modules: dict[str, Module]) -> None:
    found = {f"{_short(m.name)}: {_short(name)}" for m in modules.values() for name in m.private}
    assert sorted(found) == [], (
        "private names imported from another module (give them a public name where they "
        "belong):\n" + "\n".join(sorted(found))
    )


def _imported_only(path: Path) -> set[str]:
    """Names a module binds only by importing them at its top level (``if``/``try`` too)."""
    imported: set[str] = set()
    body = list(ast.parse(path.read_text(encoding="utf-8")).body)
    while body:
        node = body.pop()
        if isinstance(node, ast.ImportFrom):
            imported.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, (ast.If, ast.Try)):
            body.extend([*node.body, *node.orelse, *getattr(node, "finalbody", [])])
            body.extend(stmt for handler in getattr(node, "handlers", []) for stmt in handler.body)
    return imported


def test_no_name_is_imported_through_a_module_that_only_imports_it(
    modules: dict[str, Module],
) -> None:
    """No re-export shims (issue 17 §2): a name is imported from the module that defines it,
    by the server, the tests and the benchmarks alike."""
    imported_only = {name: _imported_only(m.path) for name, m in modules.items()}
    root = PACKAGE.parents[1]
    found = set()
    for folder in ("server", "tests", "bench"):
        for path in sorted((root / folder).rglob("*.py")):
            if "node_modules" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.ImportFrom) or node.module not in modules:
                    continue
                for alias in node.names:
                    through = f"{node.module}.{alias.name}"
                    if through not in modules and alias.name in imported_only[node.module]:
                        found.add(f"{path.relative_to(root)}: {through}")
    assert sorted(found) == [], (
        "names imported through a module that only imports them (import them from the "
        "module that defines them):\n" + "\n".join(sorted(found))
    )
