"""The packages of deploys/djangoapp/ in layers: a module imports only from its own package or a
lower one, and no modules import each other in a circle, so each package can be read knowing only
those below it."""

from __future__ import annotations

import ast
from pathlib import Path

import deploys.djangoapp

ROOT = Path(deploys.djangoapp.__file__).parent
# Lowest first. The package's own __init__ (the deploy functions) sits on top.
LAYERS = ["settings", "core", "host", "services", "site", "release", "operate"]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported module under deploys.djangoapp, line, only for type checking) of every import in
    the module at `path`, those inside functions too."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    package = [part for part in package if part]
    tree = ast.parse(path.read_text())
    typing_only = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(child) for child in ast.walk(node))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)] if node.level > 1 else package
                target = [*base, *(node.module.split(".") if node.module else [])]
            elif node.module and node.module.startswith("deploys.djangoapp"):
                target = node.module.split(".")[2:]
            else:
                continue
            for alias in node.names:
                # `from . import audit` names a module; `from .settings import Settings` a name.
                candidate = [*target, alias.name]
                is_module = (ROOT.joinpath(*candidate).with_suffix(".py").exists()
                             or ROOT.joinpath(*candidate, "__init__.py").exists())
                found.append((".".join(candidate if is_module else target), node.lineno, id(node) in typing_only))
    return found


def layer(module: str) -> int:
    top = module.split(".")[0]
    return LAYERS.index(top) if top in LAYERS else len(LAYERS)


def graph() -> dict[str, list[tuple[str, int, bool]]]:
    return {module_name(path): imports(path) for path in sorted(ROOT.rglob("*.py"))}


def test_every_module_is_in_a_package_of_a_layer():
    loose = [name for name in graph() if name and name.split(".")[0] not in LAYERS]
    assert loose == []


def test_no_module_imports_from_a_higher_layer():
    upward = [f"{module} (line {line}) imports {target}"
              for module, found in graph().items() for target, line, _ in found
              if module and layer(target) > layer(module)]
    assert upward == []


def test_no_modules_import_each_other_in_a_circle():
    edges = {module: {target for target, _, typing in found if not typing and target != module}
             for module, found in graph().items()}

    def cycle_from(start):
        path, seen = [], set()

        def visit(node):
            if node in path:
                return path[path.index(node):] + [node]
            if node in seen:
                return None
            seen.add(node)
            path.append(node)
            for following in sorted(edges.get(node, ())):
                # A package's __init__ importing its own modules is how a package exports.
                if following.startswith(node + ".") or node.startswith(following + ".") and following in edges \
                        and node.rsplit(".", 1)[0] == following:
                    continue
                found = visit(following)
                if found:
                    return found
            path.pop()
            return None
        return visit(start)

    circles = {tuple(found) for module in edges if (found := cycle_from(module))}
    assert circles == set()
