"""The benchmark's numbers (never its timings): every method agrees with the analytic
adjoint, and the Woodbury reference agrees with a dense solve."""

import numpy as onp
import pytest

from argminlib.benchmark import METHODS, RidgeProblem, format_table, run


def test_reference_is_exact():
    p = RidgeProblem(30, rows=12, seed=1)
    H = p.X.T @ p.X + onp.diag(onp.exp(p.x))
    y = onp.linalg.solve(H, p.X.T @ p.tau)
    assert onp.allclose(p.solution(p.x), y, atol=1e-12)
    lam = onp.linalg.solve(H, y - p.y_val)
    assert onp.allclose(p.hypergradient(p.x), -lam * onp.exp(p.x) * y, atol=1e-12)


def test_every_method_is_accurate():
    rows = run(sizes=(8, 40), repeat=1)
    assert {r.method for r in rows} == set(METHODS)
    for r in rows:
        assert r.error < (1e-6 if r.method == "fd" else 1e-7), r
        assert r.seconds >= 0


def test_size_limits_and_table():
    rows = run(sizes=(8, 20), fd_max=8, dense_max=8, repeat=1)
    assert {(r.n, r.method) for r in rows if r.method in ("fd", "dense")} == {
        (8, "fd"),
        (8, "dense"),
    }
    table = format_table(rows)
    assert table.splitlines()[3].split()[0] == "8"
    assert "-" in table.splitlines()[-1]


@pytest.mark.parametrize("n", [5, 50])
def test_loss_matches_closed_form(n):
    p = RidgeProblem(n, rows=10, seed=2)
    assert p.loss(p.x) == pytest.approx(0.5 * onp.sum((p.solution(p.x) - p.y_val) ** 2))
