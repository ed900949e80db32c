"""Each process reads its environment in its settings module only: everywhere else in the code, what the environment
says arrives as settings. In a settings module, ``os.environ`` is only the default of a loader's ``env`` parameter,
so that every loader can be called with another mapping (the compose contract test records what each one reads)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from stack.local import ROOT

PACKAGES = ("gateway", "orders", "payments", "messaging", "servicekit", "streamlit_app")
SETTINGS_MODULES = frozenset(
    {
        "gateway/settings.py",
        "orders/settings.py",
        "payments/settings.py",
        "servicekit/service/settings.py",
        "streamlit_app/settings.py",
    }
)
ENVIRONMENT = frozenset({"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"})


def environment_reads(source: str, settings_module: bool) -> list[str]:
    """Where ``source`` touches the process environment (``os.environ``, ``os.getenv``, ``from os import
    environ``...), as ``line: code``; in a settings module, the default of an ``env`` parameter is no read."""
    tree = ast.parse(source)
    allowed = {id(default) for default in _env_defaults(tree)} if settings_module else set()
    reads = []
    for node in ast.walk(tree):
        if id(node) in allowed:
            continue
        if isinstance(node, ast.Attribute) and node.attr in ENVIRONMENT and ast.unparse(node.value) == "os":
            reads.append(f"{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            reads.extend(f"{node.lineno}: from os import {a.name}" for a in node.names if a.name in ENVIRONMENT)
    return reads


def _env_defaults(tree: ast.AST) -> list[ast.expr]:
    """The defaults of the parameters named ``env`` of every function in ``tree``."""
    defaults = []
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        arguments = function.args
        positional = arguments.posonlyargs + arguments.args
        pairs = list(zip(positional[len(positional) - len(arguments.defaults) :], arguments.defaults, strict=True))
        pairs += [(arg, default) for arg, default in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True)]
        defaults += [default for arg, default in pairs if arg.arg == "env" and default is not None]
    return defaults


def code_modules() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def test_only_the_settings_modules_read_the_environment() -> None:
    reads = {
        str(relative): found
        for path in code_modules()
        if (found := environment_reads(path.read_text(), str(relative := path.relative_to(ROOT)) in SETTINGS_MODULES))
    }

    assert reads == {}


def test_every_settings_module_exists() -> None:
    assert {str(path.relative_to(ROOT)) for path in code_modules()} >= SETTINGS_MODULES


@pytest.mark.parametrize(
    "source",
    [
        "import os\nLEVEL = os.environ.get('LOG_LEVEL', 'INFO')",
        "import os\nURL = os.environ['GATEWAY_URL']",
        "import os\nURL = os.getenv('GATEWAY_URL')",
        "import os\nvariables = dict(os.environ)",
        "from os import environ\nURL = environ.get('GATEWAY_URL')",
        "from os import getenv as read\nURL = read('GATEWAY_URL')",
        "import os\ndef load(env=os.environ):\n    return env.get('X')",
    ],
)
def test_the_scan_sees_a_read_outside_a_settings_module(source: str) -> None:
    assert environment_reads(source, settings_module=False)


@pytest.mark.parametrize(
    ("source", "reads"),
    [
        ("import os\ndef load(env: dict = os.environ):\n    return env.get('X')", 0),
        ("import os\nclass S:\n    @classmethod\n    def load(cls, name, *, env=os.environ):\n        return 1", 0),
        ("import os\ndef load(env=os.environ):\n    return os.environ.get('X')", 1),
        ("import os\ndef load(other=os.environ):\n    return other.get('X')", 1),
        ("import os\nPORT = os.environ.get('PORT')", 1),
    ],
)
def test_a_settings_module_may_read_it_only_as_a_loaders_env_default(source: str, reads: int) -> None:
    assert len(environment_reads(source, settings_module=True)) == reads
