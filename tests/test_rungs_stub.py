"""The type stub ``fastasha/_rungs.pyi`` describes the compiled module.

The stub is parsed with ``ast`` (not imported), and its public names are
compared with what ``fastasha._rungs`` really exports: module-level names,
``RungTable``'s methods and properties, and their parameter names.
"""

from __future__ import annotations

import ast
import inspect
import re
import types
from pathlib import Path

import pytest

import fastasha
from fastasha import _rungs

STUB = Path(fastasha.__file__).parent / "_rungs.pyi"


def _is_property(node: ast.FunctionDef) -> bool:
    return any(isinstance(d, ast.Name) and d.id == "property" for d in node.decorator_list)


def _parse_stub() -> tuple[dict, dict]:
    """Module-level public names -> node, and RungTable member name -> node."""
    tree = ast.parse(STUB.read_text(encoding="utf-8"))
    names: dict[str, ast.AST] = {}
    members: dict[str, ast.FunctionDef] = {}
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    names[target.id] = node
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names[node.name] = node
    for node in names["RungTable"].body:
        if isinstance(node, ast.FunctionDef):
            members[node.name] = node
    return ({k: v for k, v in names.items() if not k.startswith("_")}, members)


STUB_NAMES, STUB_MEMBERS = _parse_stub()
PUBLIC_MEMBERS = sorted(name for name in STUB_MEMBERS if not name.startswith("_"))


def test_stub_and_module_export_the_same_names():
    runtime = {
        name for name, value in vars(_rungs).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(STUB_NAMES) == runtime


def test_stub_and_rungtable_have_the_same_methods_and_properties():
    runtime = {name for name in dir(_rungs.RungTable) if not name.startswith("_")}
    assert set(PUBLIC_MEMBERS) == runtime


@pytest.mark.parametrize("name", PUBLIC_MEMBERS)
def test_stub_member_kinds_and_parameters_match(name):
    node = STUB_MEMBERS[name]
    attr = inspect.getattr_static(_rungs.RungTable, name)
    if _is_property(node):
        assert inspect.isdatadescriptor(attr) and not callable(attr), f"{name} is not a property"
        return
    assert callable(getattr(_rungs.RungTable, name)), f"{name} is not a method"
    stub_params = [a.arg for a in node.args.posonlyargs + node.args.args]
    runtime_params = list(inspect.signature(getattr(_rungs.RungTable, name)).parameters)
    assert stub_params == runtime_params


def test_stub_constructor_parameters_match():
    # embedsignature puts the constructor's signature on the class docstring
    first_line = _rungs.RungTable.__doc__.strip().splitlines()[0]
    match = re.fullmatch(r"RungTable\((.*)\)", first_line)
    assert match, first_line
    runtime = [p.split()[-1].split("=")[0] for p in match.group(1).split(",")]
    stub = [a.arg for a in STUB_MEMBERS["__init__"].args.args][1:]
    assert stub == runtime


def test_stub_is_shipped_as_typed():
    assert (STUB.parent / "py.typed").exists()
