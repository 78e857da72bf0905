"""The linear solvers and the curvature certificate: agreement, reported outcome, errors."""

import numpy as onp
import pytest

import argminlib as al
from argminlib.certify import certify


def _system(A, sign=0, kkt_rows=0):
    return al.LinearSystem(
        A.shape[0],
        lambda v: A @ v,
        lambda v: A.T @ v,
        symmetric=bool(onp.allclose(A, A.T)),
        sign=sign,
        kkt_rows=kkt_rows,
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
    # the LU factor is shared by the system and its transpose, whichever is solved first
    assert onp.allclose(al.Dense()(s, b)[0], onp.linalg.solve(A, b), rtol=1e-12)
    assert onp.allclose(al.Dense()(s.T, b)[0], onp.linalg.solve(A.T, b), rtol=1e-12)
    assert sum(1 for k in s.cache if k[0] == "dense") == 1
    t = _system(A)
    assert onp.allclose(al.Dense()(t.T, b)[0], onp.linalg.solve(A.T, b), rtol=1e-12)
    assert onp.allclose(al.Dense()(t, b)[0], onp.linalg.solve(A, b), rtol=1e-12)


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("sign", [1, -1])
def test_dense_cholesky_any_memory_order(spd, order, sign):
    """LAPACK factorises a copy in place: the result does not depend on the memory order of
    the assembled matrix, and the user's array is left alone."""
    A, b = spd
    M = onp.array(sign * A, order=order)
    before = M.copy()
    s = al.LinearSystem(20, lambda v: M @ v, symmetric=True, sign=sign, assembled=lambda: M)
    w, info = al.Dense()(s, b)
    assert info.method == "dense-cholesky"
    assert onp.allclose(w, onp.linalg.solve(sign * A, b), rtol=1e-12)
    assert onp.array_equal(M, before)


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
    _, pre2 = al.CG(rtol=1e-10, preconditioner=onp.diag(1 / d))(_system(A, +1), b)
    assert pre2.iterations == pre.iterations


def test_preconditioner_of_the_wrong_shape():
    A = onp.eye(3)
    with pytest.raises(al.ShapeError, match="preconditioner has shape"):
        al.CG(preconditioner=onp.eye(2))(_system(A, +1), onp.ones(3))
    with pytest.raises(al.ShapeError, match="preconditioner returned 2 values"):
        al.CG(preconditioner=lambda v: v[:2])(_system(A, +1), onp.ones(3))
    with pytest.raises(al.InputError, match="preconditioner must be"):
        al.CG(preconditioner=3.0)(_system(A, +1), onp.ones(3))
    with pytest.raises(al.InputError, match="foo"):
        al.CG(preconditioner="foo")(_system(A, +1), onp.ones(3))


def test_cg_ritz_values_estimate_the_spectrum():
    d = onp.linspace(1.0, 10.0, 30)
    _, info = al.CG()(_system(onp.diag(d), +1), onp.ones(30))
    assert info.ritz is not None
    lowest, highest = info.ritz
    assert abs(lowest - 1.0) < 1e-6 and abs(highest - 10.0) < 1e-6


def test_certificate_names_eigenvalues():
    cfg = al.Certify()
    with pytest.raises(al.SingularHessianError, match="eigenvalue 0.000e\\+00"):
        certify(_system(onp.diag([1.0, 0.0])), +1, cfg)
    with pytest.raises(al.CurvatureError, match="saddle point.*-1.000e\\+00"):
        certify(_system(onp.diag([1.0, -1.0])), +1, cfg)
    with pytest.raises(al.CurvatureError, match="local maximum, not a minimum"):
        certify(_system(onp.diag([-1.0, -2.0])), +1, cfg)
    with pytest.raises(al.CurvatureError, match="local minimum, not a maximum"):
        certify(_system(onp.diag([1.0, 2.0])), -1, cfg)
    with pytest.raises(al.SingularHessianError, match="singular value"):
        certify(_system(onp.array([[1.0, 2.0], [3.0, 6.0]])), 0, cfg)
    with pytest.raises(al.IllConditionedError, match="positive definite but ill-conditioned"):
        certify(_system(onp.diag([1.0, 1e-11])), +1, cfg)
    # the advice is followable: the suggested rcond accepts it
    cert = certify(_system(onp.diag([1.0, 1e-11])), +1, al.Certify(rcond=1e-13))
    assert cert.exact and cert.lowest == pytest.approx(1e-11)
    # lstsq's minimum-norm derivative accepts a semidefinite matrix, never the wrong sign
    certify(_system(onp.diag([1.0, 0.0])), +1, cfg, allow_singular=True)
    with pytest.raises(al.CurvatureError):
        certify(_system(onp.diag([1.0, -1.0])), +1, cfg, allow_singular=True)


def test_lanczos_certificate_on_a_large_operator():
    n = 500
    d = onp.linspace(1.0, 2.0, n)
    d[17] = -0.5  # one negative eigenvalue among 500
    cfg = al.Certify(method="lanczos", steps=40)
    with pytest.raises(al.CurvatureError, match="Lanczos estimate") as e:
        certify(_system(onp.diag(d)), +1, cfg)
    assert e.value.certificate.lowest == pytest.approx(-0.5, abs=1e-6)
    d[17] = 1.5
    cert = certify(_system(onp.diag(d)), +1, cfg)
    assert not cert.exact and 40 <= cert.products <= 300 and cert.lowest >= 1.0 - 1e-8


def test_kkt_inertia_certificate():
    # H = diag(1, -1), constraint y_2 = 0: the reduced Hessian on null(J) is +1 -> minimum
    K = onp.array([[1.0, 0, 0], [0, -1.0, 1], [0, 1, 0]])
    cert = certify(_system(K, +1, kkt_rows=1), +1, al.Certify())
    assert cert.space == 1 and cert.lowest == pytest.approx(1.0)
    with pytest.raises(al.CurvatureError, match="null space of the active constraints"):
        certify(_system(K, -1, kkt_rows=1), -1, al.Certify())
    Kbad = onp.array([[1.0, 0, 1, 1], [0, 1.0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]])
    with pytest.raises(al.SingularHessianError, match="has rank 1 but 2 rows"):
        certify(_system(Kbad, +1, kkt_rows=2), +1, al.Certify())


def test_krylov_failure_carries_info():
    A = onp.diag(onp.logspace(0, 6, 100))
    with pytest.raises(al.LinearSolveError, match="MINRES did not converge") as e:
        al.MINRES(maxiter=3)(_system(A), onp.ones(100))
    assert e.value.info.iterations == 3 and e.value.info.residual > 1e-3


def test_plain_callable_solver():
    A = onp.diag([2.0, 4.0])
    w, info = al.get_solver(lambda mv, b: b / onp.array([2.0, 4.0]))(_system(A, +1), onp.ones(2))
    assert onp.allclose(w, [0.5, 0.25]) and info.converged
    with pytest.raises(al.LinearSolveError, match="relative residual"):
        al.get_solver(lambda mv, b: b)(_system(A, +1), onp.ones(2))
    with pytest.raises(al.ShapeError, match="must return a real array of shape"):
        al.get_solver(lambda mv, b: b[:1])(_system(A, +1), onp.ones(2))
    with pytest.raises(al.InputError, match="returned a tuple"):
        al.get_solver(lambda mv, b: (b, 0))(_system(A, +1), onp.ones(2))
    with pytest.raises(al.NonFiniteError):
        al.get_solver(lambda mv, b: b * onp.nan)(_system(A, +1), onp.ones(2))


def test_bad_solver_arguments():
    with pytest.raises(al.InputError, match="rtol"):
        al.CG(rtol=0)
    with pytest.raises(al.InputError, match="maxiter"):
        al.GMRES(maxiter=0)
    with pytest.raises(al.InputError, match="atol"):
        al.CG(atol=-1.0)
    with pytest.raises(al.InputError, match="method='qr'"):
        al.Dense("qr")
    with pytest.raises(al.InputError, match="Unknown linear solver 'qr'"):
        al.get_solver("qr")
    with pytest.raises(al.InputError):
        al.get_solver(3)
    with pytest.raises(al.InputError, match="indefinite by construction"):
        al.CG()(_system(onp.eye(3), +1, kkt_rows=1), onp.ones(3))
    with pytest.raises(al.InputError, match="cholesky"):
        al.Dense("cholesky")(_system(onp.eye(3), +1, kkt_rows=1), onp.ones(3))


def test_large_atol_does_not_divide_by_zero():
    A = onp.diag([1.0, 2.0, 3.0])
    b = onp.array([1e-8, 0.0, 0.0])
    w, info = al.CG(atol=1.0)(_system(A, +1), b)
    assert onp.allclose(w, [1e-8, 0, 0], rtol=1e-2, atol=0)
    w, info = al.GMRES(atol=1.0)(_system(A), b)
    assert onp.allclose(w, [1e-8, 0, 0], rtol=1e-2, atol=0)


@pytest.mark.parametrize("bad", [onp.ones(2), onp.ones((3, 1, 1)), onp.array([1.0, onp.nan, 0])])
def test_right_hand_side_checked(bad):
    with pytest.raises((al.ShapeError, al.NonFiniteError)):
        al.CG()(_system(onp.eye(3), +1), bad)
