"""Every ``python`` block of the README runs, in order, in one namespace (as a reader pastes
them), and the values it claims hold."""

import re
from pathlib import Path

import numpy as onp

README = Path(__file__).resolve().parent.parent / "README.md"


def blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_python_examples():
    assert len(blocks()) >= 3


def test_every_readme_python_block_runs_in_order():
    ns = {}
    for i, code in enumerate(blocks()):
        try:
            exec(compile(code, f"README.md python block {i + 1}", "exec"), ns)
        except Exception as err:  # the block's number and its first line name it
            first = code.splitlines()[0]
            raise AssertionError(f"README python block {i + 1} ({first!r}): {err!r}") from err
    # the hypergradient of the first block against central differences
    al, upper, x = ns["al"], ns["upper"], ns["x"]
    assert al.max_error(ns["g"], al.fd_grad(upper, x), relative=True) < 1e-6
    # the user's forward solver gives the same hypergradient
    assert al.max_error(ns["g_fast"], ns["g"], relative=True) < 1e-10
    # the fixed point's derivative against its closed form
    a = 0.9
    z = float(ns["solve"](a)[0])
    want = -z * onp.sin(a * z) / (1 + a * onp.sin(a * z))
    assert abs(ns["dz_da"] - want) < 1e-10
    # the chain's minimum: y = 1 (where both terms vanish)
    assert onp.allclose(ns["y"], 1.0, rtol=0, atol=1e-10)
