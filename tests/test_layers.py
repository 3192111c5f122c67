"""The apps form one order, each importing only the ones below it (README: code layout):
audit, billing, approvals, refunds, desk, then the API and the project's configuration. No
import hides inside a function to get round that order."""

import ast
from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parent.parent
APPS = ["audit", "billing", "approvals", "refunds", "desk", "api"]


def test_each_app_imports_only_the_apps_below_it():
    # the contract in pyproject.toml ([tool.importlinter]); function-level imports count too
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True,
                        no_logo=True) == 0


def imports_inside_functions(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                yield node.lineno, node.module
            elif isinstance(node, ast.Import):
                yield from ((node.lineno, alias.name) for alias in node.names)


def test_no_app_imports_another_inside_a_function():
    hidden = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for app in APPS
        for path in sorted((ROOT / app).rglob("*.py")) if "migrations" not in path.parts
        for line, module in imports_inside_functions(path)
        if module.split(".")[0] in APPS and module.split(".")[0] != app
    ]
    assert hidden == []
