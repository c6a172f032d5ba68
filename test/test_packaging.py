# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""setup.py says what the code needs: the Python version, install vs extra requirements."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from test.conftest import REPO


def _setup_kwargs() -> dict:
    tree = ast.parse((REPO / "setup.py").read_text())
    call = next(
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "setup"
    )
    out = {}
    for k in call.keywords:
        try:
            out[k.arg] = ast.literal_eval(k.value)
        except ValueError:  # e.g. packages=find_packages(...)
            continue
    return out


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _package_imports() -> set[str]:
    return set().union(*(_imports(p) for p in (REPO / "openvla_ros").rglob("*.py")))


def test_python_requires_matches_the_code() -> None:
    # enum.StrEnum (openvla_ros/paramspec.py) is new in Python 3.11.
    uses_strenum = any("StrEnum" in p.read_text() for p in (REPO / "openvla_ros").rglob("*.py"))
    assert uses_strenum
    assert _setup_kwargs()["python_requires"] == ">=3.11"


def test_install_requirements_are_what_the_package_imports() -> None:
    kwargs = _setup_kwargs()
    assert "json_numpy" not in _package_imports(), "json-numpy would be an install requirement"
    assert "json-numpy" not in kwargs["install_requires"]
    assert "json-numpy" in kwargs["extras_require"]["test"]  # the reference encoder in tests
    assert {"fastapi", "hypercorn"} <= set(kwargs["extras_require"]["serve"])
    assert "hypercorn" in _imports(REPO / "openvla_ros" / "serving" / "server.py")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _setup_names() -> set[str]:
    kwargs = _setup_kwargs()
    names = set(kwargs["install_requires"]).union(*kwargs["extras_require"].values())
    return {_norm(n) for n in names}


def test_every_setup_name_is_pinned_in_requirements_txt() -> None:
    pinned = {
        _norm(line.split("==")[0].split("[")[0])
        for line in (REPO / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.lstrip().startswith("#")
    }
    assert _setup_names() - pinned == set()


def test_every_third_party_import_is_declared() -> None:
    # Module -> distribution from the installed metadata (not from our own lists); ROS packages
    # come from package.xml, the optional robot adapters are documented there in a comment.
    ros = {
        e.text.strip()
        for e in ET.parse(REPO / "package.xml").getroot()
        if e.tag in ("depend", "exec_depend") and e.text
    }
    optional_ros = {"franka_msgs", "interbotix_xs_msgs"}
    assert all(name in (REPO / "package.xml").read_text() for name in optional_ros)
    dists = importlib.metadata.packages_distributions()
    declared = _setup_names()
    missing = []
    for module in sorted(_package_imports() - set(sys.stdlib_module_names) - {"openvla_ros"}):
        if module in ros or module in optional_ros:
            continue
        if not {_norm(d) for d in dists.get(module, [module])} & declared:
            missing.append(module)
    assert missing == [], f"imported but in no setup.py requirement or extra: {missing}"
