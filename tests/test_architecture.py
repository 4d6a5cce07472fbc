"""The layering, checked: every core module imports in a fresh interpreter without loading an
SDK; the core imports only the standard library, pydantic and itself; adapters never import
apps; an app module imports another app only through the CLI package or a module it owns
(its own package, or a service the CLI starts)."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "coldchain"
SDKS = ("boto3", "botocore", "paho", "sqlite3", "click", "fastapi", "starlette", "fpdf", "rich")
CORE_MAY_IMPORT = {"pydantic", "pydantic_core", "coldchain"}


def modules(folder: str) -> list[str]:
    root = SRC / folder
    found = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def imports(module: str) -> Iterator[str]:
    """Every module ``module`` imports (absolute names), at any depth of its code."""
    path = SRC.parent.joinpath(*module.split("."))
    source = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    tree = ast.parse(source.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


@pytest.mark.parametrize("module", modules("core"))
def test_a_core_module_loads_no_sdk(module: str) -> None:
    code = f"import sys, {module}; print(','.join(m for m in {SDKS!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "", f"{module} loads {done.stdout.strip()}"


def test_the_core_imports_only_the_standard_library_pydantic_and_itself() -> None:
    allowed = set(sys.stdlib_module_names) | CORE_MAY_IMPORT
    for module in modules("core"):
        for name in imports(module):
            top = name.split(".")[0]
            assert top in allowed, f"{module} imports {name}"
            if top == "coldchain":
                assert name.startswith("coldchain.core"), f"{module} imports {name}"


def test_adapters_never_import_apps() -> None:
    for module in modules("adapters"):
        for name in imports(module):
            assert not name.startswith("coldchain.apps"), f"{module} imports {name}"


def _owner(module: str) -> str:
    """The app a module belongs to: ``coldchain.apps.X`` (its package or its module)."""
    return ".".join(module.split(".")[:3])


def test_apps_import_each_other_only_through_the_cli() -> None:
    """The CLI wires everything, so it may import any app; other apps import only their own
    modules and the shared building blocks listed here (no app imports the CLI)."""
    shared = {
        "coldchain.apps.render",  # the documents the CLI prints and the dashboard serves
        "coldchain.apps.local_ingest",  # the worker's wiring, also run by dlq replay
        "coldchain.apps.aws_ingest",  # the Lambda's wiring, also run by dlq replay
        "coldchain.apps.operator_stores",  # the stores the operator commands read
        "coldchain.apps.reports",  # report rendering (CLI and shipment report)
        "coldchain.apps.shipment_report",
        "coldchain.apps.accounts",  # users and sessions (dashboard and its CLI)
        "coldchain.apps.dispatcher",  # notification delivery (worker and CLI)
    }
    cli = {m for m in modules("apps") if _is_cli(m)}
    for module in modules("apps"):
        if module in cli:
            continue
        for name in imports(module):
            if not name.startswith("coldchain.apps.") or _owner(name) == _owner(module):
                continue
            assert name in shared or _owner(name) in shared, f"{module} imports {name}"
            assert name not in cli, f"{module} imports the CLI module {name}"


def _is_cli(module: str) -> bool:
    return module.startswith("coldchain.apps.cli") or module.rsplit(".", 1)[-1] == "commands"
