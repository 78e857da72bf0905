"""The linear solvers: agreement, reported outcome, checks and preconditioning."""

import numpy as onp
import pytest

import argminlib as al


def _system(A, definite=0):
    return al.LinearSystem(
        A.shape[0],
        lambda v: A @ v,
        lambda v: A.T @ v,
        symmetric=bool(onp.allclose(A, A.T)),
        definite=definite,
        name="test matrix",
    )


@pytest.fixture
def spd():
    rng = onp.random.default_rng(0)
    G = rng.normal(size=(20, 20))
    return G @ G.T + 20 * onp.eye(20), rng.normal(size=20)


@pytest.mark.parametrize("name", ["dense", "cholesky", "lu", "lstsq", "cg", "minres", "gmres"])
def test_solvers_agree_on_spd(spd, name):
    A, b = spd
    w, info = al.get_solver(name)(_system(A, +1), b)
    assert onp.allclose(w, onp.linalg.solve(A, b), atol=1e-9)
    assert info.converged and info.residual < 1e-9 and (name in info.method or name == "dense")


def test_negative_definite_with_cg_and_cholesky(spd):
    A, b = spd
    for name in ["cg", "cholesky"]:
        w, _ = al.get_solver(name)(_system(-A, -1), b)
        assert onp.allclose(w, -onp.linalg.solve(A, b), atol=1e-9)


def test_nonsymmetric_gmres_and_transpose():
    rng = onp.random.default_rng(1)
    A = rng.normal(size=(15, 15)) + 8 * onp.eye(15)
    b = rng.normal(size=15)
    s = _system(A)
    assert onp.allclose(al.GMRES()(s, b)[0], onp.linalg.solve(A, b), atol=1e-8)
    assert onp.allclose(al.GMRES()(s.T, b)[0], onp.linalg.solve(A.T, b), atol=1e-8)
    assert onp.allclose(s.matrix(), A) and onp.allclose(s.T.matrix(), A.T)


def test_matrix_from_products_only():
    A = onp.arange(9.0).reshape(3, 3)
    s = al.LinearSystem(3, lambda v: A @ v)
    assert onp.allclose(s.matrix(), A)


def test_multiple_right_hand_sides_merge_info(spd):
    A, _ = spd
    B = onp.eye(20)[:, :3]
    W, info = al.CG()(_system(A, +1), B)
    assert onp.allclose(W, onp.linalg.solve(A, B), atol=1e-9)
    assert info.solves == 3 and info.iterations > 3


def test_preconditioner_reduces_iterations():
    d = onp.logspace(0, 4, 200)
    A = onp.diag(d) + 0.01 * onp.ones((200, 200))
    b = onp.ones(200)
    _, plain = al.CG(rtol=1e-10)(_system(A, +1), b)
    _, pre = al.CG(rtol=1e-10, preconditioner=lambda v: v / d)(_system(A, +1), b)
    assert pre.iterations < plain.iterations / 3


def test_indefinite_detected_by_cg_certificate():
    A = onp.diag([3.0, 2.0, -1.0])
    with pytest.raises(al.CurvatureError, match="not positive definite"):
        al.CG()(_system(A, +1), onp.array([0.0, 0.0, 1.0]))
    w, _ = al.MINRES()(_system(A, 0), onp.array([0.0, 0.0, 1.0]))
    assert onp.allclose(w, [0, 0, -1])


def test_dense_checks_name_eigenvalues():
    with pytest.raises(al.SingularHessianError, match="eigenvalue 0.000e\\+00"):
        al.Dense()(_system(onp.diag([1.0, 0.0])), onp.ones(2))
    with pytest.raises(al.CurvatureError, match="smallest eigenvalue -1.000e\\+00"):
        al.Dense()(_system(onp.diag([1.0, -1.0]), +1), onp.ones(2))
    with pytest.raises(al.SingularHessianError, match="singular value"):
        al.Dense()(_system(onp.array([[1.0, 2.0], [3.0, 6.0]])), onp.ones(2))
    with pytest.raises(al.NonFiniteError):
        al.Dense()(_system(onp.diag([1.0, onp.nan])), onp.ones(2))
    w, _ = al.Dense("lstsq")(_system(onp.diag([2.0, 0.0])), onp.ones(2))
    assert onp.allclose(w, [0.5, 0.0])


def test_krylov_failure_carries_info():
    A = onp.diag(onp.logspace(0, 6, 100))
    with pytest.raises(al.LinearSolveError, match="MINRES did not converge") as e:
        al.MINRES(maxiter=3)(_system(A), onp.ones(100))
    assert e.value.info.iterations == 3 and e.value.info.residual > 1e-3


def test_plain_callable_solver():
    A = onp.diag([2.0, 4.0])
    w, info = al.get_solver(lambda mv, b: b / onp.array([2.0, 4.0]))(_system(A, +1), onp.ones(2))
    assert onp.allclose(w, [0.5, 0.25]) and info.converged
    with pytest.raises(al.LinearSolveError, match="custom solver"):
        al.get_solver(lambda mv, b: b)(_system(A, +1), onp.ones(2))


def test_bad_solver_arguments():
    with pytest.raises(ValueError, match="rtol must be positive"):
        al.CG(rtol=0)
    with pytest.raises(ValueError, match="method='qr'"):
        al.Dense("qr")
    with pytest.raises(TypeError):
        al.get_solver(3)
