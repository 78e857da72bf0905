"""argminlib.unrolling and the group ridge of chapter 6: the references are exact, the
unrolled gradient tends to the implicit one, and the API page's formula converter."""

import sys
from pathlib import Path

import autograd.numpy as anp
import numpy as onp
import pytest
from autograd import grad

import argminlib as al
from argminlib.benchmark import GroupRidge, sweep
from argminlib.unrolling import gradient_step, peak_memory, timed, unroll

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_ext"))
from docmath import to_latex  # noqa: E402


def test_group_ridge_reference_is_exact():
    p = GroupRidge(30, 4, rows=10, seed=1)
    H = p.X.T @ p.X + onp.diag(onp.exp(p.x)[p.groups])
    y = onp.linalg.solve(H, p.X.T @ p.tau)
    assert onp.allclose(p.forward(None, p.x, None), y, atol=1e-12)
    g = al.fd_grad(p.loss, p.x, 1e-6)
    assert al.max_error(p.hypergradient(p.x), g) < 1e-7


def test_sweep_every_method_is_accurate():
    rows = sweep([(40, 1), (40, 8)], repeat=1)
    assert {r["method"] for r in rows} == {"forward", "fd", "dense", "cg", "minres", "gmres"}
    for r in rows:
        assert r["error"] < 1e-7, r


def test_unrolled_gradient_tends_to_the_implicit_one():
    p = GroupRidge(20, 20, rows=10, seed=2)
    H = p.X.T @ p.X + onp.diag(onp.exp(p.x)[p.groups])
    T = gradient_step(p.f, 1 / onp.linalg.eigvalsh(H)[-1])
    errors = []
    for K in (5, 50, 400):
        y_K = unroll(T, K)
        g = grad(lambda x, y_K=y_K: p.upper(y_K(x, p.y0)))(p.x)
        errors.append(al.max_error(g, p.hypergradient(p.x), relative=True))
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-10


def test_timed_and_peak_memory():
    t, out = timed(lambda: anp.ones(3), repeat=2)
    assert t >= 0 and out.shape == (3,)
    mem, out = peak_memory(lambda: onp.ones(10**5))
    assert mem >= 8 * 10**5 and out.size == 10**5


def test_docmath_converts_formulas_only():
    assert to_latex("g'(x) = -f_YY^{-1} f_XY") == "g'(x) = -f_{YY}^{-1} f_{XY}"
    assert to_latex("L(x) = 1/2 ||y*(x) - y_val||^2") == (
        r"L(x) = \tfrac12 \|y^\star(x) - y_{\mathrm{val}}\|^2"
    )
    assert to_latex("argmin_y f(x, y)") == r"\operatorname{argmin}_y f(x, y)"
    assert to_latex("u^T dz/dx = -(A^{-T} u)^T B") == (
        r"u^\top \tfrac{\mathrm{d}z}{\mathrm{d}x} = -(A^{-\top} u)^\top B"
    )
    for code in ("hess_sparsity", "solver", "T(x, y) = y - step_size * f_Y(x, y)", "[[H, J^T]]"):
        assert to_latex(code) is None, code


def test_loglog_slope_of_a_power_law():
    from argminlib.plotting import loglog_slope

    x = onp.array([1.0, 10.0, 100.0, 1000.0])
    assert loglog_slope(x, 3.0 * x**-1.5) == pytest.approx(-1.5)
