"""The three descriptions of the environment agree: pyproject.toml (what argminlib and its
extras need), constraints.txt (the exact versions `make` installs) and environment.yml
(the same for conda users)."""

import pathlib
import re
import tomllib

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _name(req):
    return re.split(r"[<>=!~;\[ ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject_names():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(meta["dependencies"])
    for extra in meta["optional-dependencies"].values():
        reqs += extra
    return {_name(r) for r in reqs}


def _pins(lines):
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            pins[_name(name)] = version.strip()
    return pins


def _environment_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip, "environment.yml must install argminlib itself (-e .)"
    return _pins(pip)


def test_environment_yml_lists_the_pyproject_packages():
    assert set(_environment_pins()) == _pyproject_names()


def test_constraints_pin_every_pyproject_package():
    pins = _pins((ROOT / "constraints.txt").read_text().splitlines())
    assert set(pins) == _pyproject_names()
    assert all(pins.values()), "every package in constraints.txt needs an exact == version"


def test_environment_yml_versions_match_constraints():
    pins = _pins((ROOT / "constraints.txt").read_text().splitlines())
    assert _environment_pins() == pins


def test_python_version_agrees():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    py = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    major_minor = tuple(int(p) for p in py.split("=")[1].split(".")[:2])
    assert requires.startswith(">=")
    assert major_minor >= tuple(int(p) for p in requires[2:].split(".")[:2])


def test_the_version_lives_in_one_place():
    """``pip show argminlib`` said 0.1.0 while ``argminlib.__version__`` said 0.2.0: the
    version is now read by setuptools from ``__version__`` (pyproject's ``dynamic``)."""
    import importlib.metadata

    import argminlib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in meta["project"] and "version" in meta["project"]["dynamic"]
    attr = meta["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "argminlib.__version__"
    assert importlib.metadata.version("argminlib") == argminlib.__version__
