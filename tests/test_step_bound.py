"""The acceptance test without a solve: a certified curvature bound bounds the Newton step.

``Solution.step_bound`` is ``||F|| / bound`` with the certificate's lower bound on the
smallest eigenvalue; below ``NEGLIGIBLE_STEP * max(1, |y|)`` no Newton step is solved for.
These tests check that the bound is a lower bound of the true smallest eigenvalue (the
claim everything rests on), that a solution that is not exact enough still gets its Newton
steps, and that a non-stationary ``y`` is still refused.
"""

import autograd.numpy as anp
import numpy as onp
import pytest
from autograd import grad
from conftest import FixedQuadratic as Quadratic
from conftest import spd

import argminlib as al
from argminlib.implicit import NEGLIGIBLE_STEP

SPECTRA = {
    "uniform": lambda n: onp.linspace(1.0, 10.0, n),
    "one isolated low": lambda n: onp.r_[1e-3, onp.linspace(1.0, 2.0, n - 1)],
    "clustered low": lambda n: onp.r_[onp.full(5, 1e-2), onp.linspace(1.0, 5.0, n - 5)],
    "geometric": lambda n: onp.geomspace(1e-4, 1.0, n),
    "huge scale": lambda n: 1e20 * onp.linspace(1.0, 3.0, n),
}


@pytest.mark.parametrize("name", sorted(SPECTRA))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lanczos_bound_is_below_the_smallest_eigenvalue(name, seed):
    n = 300
    spectrum = SPECTRA[name](n)
    A = spd(n, spectrum, seed)
    system = al.LinearSystem(n, lambda v: A @ v, symmetric=True, sign=1)
    try:
        cert = al.certify.certify(system, +1, al.Certify(method="lanczos", seed=seed, rcond=1e-12))
    except al.UncertifiedError:
        return  # no bound claimed: nothing to be wrong about
    assert cert.bound is not None
    assert 0 < cert.bound <= spectrum.min() * (1 + 1e-12)


def test_dense_bound_is_the_exact_eigenvalue():
    spectrum = onp.linspace(0.5, 4.0, 30)
    A = spd(30, spectrum)
    cert = al.certify.certify(
        al.LinearSystem(30, lambda v: A @ v, symmetric=True, sign=1), +1, al.Certify("dense")
    )
    assert cert.bound == pytest.approx(0.5, rel=1e-12)
    assert cert.bound <= 0.5


def test_no_bound_for_stationary_points_kkt_or_minimum_norm():
    A = spd(8, onp.linspace(-1.0, 1.0, 8) + 0.05)
    cert = al.certify.certify(al.LinearSystem(8, lambda v: A @ v, symmetric=True), 0, al.Certify())
    assert cert.bound is None  # indefinite: no curvature bound bounds the step


def counting(calls, inner="cg"):
    def solver(matvec, b):
        calls.append(1)
        return al.get_solver(inner)(al.LinearSystem(len(b), matvec, symmetric=True), b)[0]

    return solver


@pytest.mark.parametrize("solver", ["cg", "minres", "gmres"])
def test_exact_forward_needs_no_newton_solve(solver):
    q = Quadratic(400)  # larger than the Lanczos steps: a probabilistic bound
    sol = al.Unconstrained(q.f, onp.zeros(400), solver=solver, forward=lambda f, x, y0: q.y(x))
    s = sol.solve(q.x)
    assert s.certificate.bound is not None and not s.certificate.exact
    assert s.log == []  # accepted by the bound: no solve at all
    assert s.step_bound() <= NEGLIGIBLE_STEP


@pytest.mark.parametrize("error", [1e-9, 1e-7])
def test_inexact_forward_is_polished_by_solved_steps(error):
    """A forward answer off by more than the negligible step is polished: the solves happen
    and the answer is exact afterwards (not accepted as it is)."""
    q = Quadratic(200)
    calls = []
    off = error * onp.random.default_rng(3).standard_normal(200)
    y = al.argmin(
        q.f, q.x, onp.zeros(200), solver=counting(calls), forward=lambda f, x, y0: q.y(x) + off
    )
    assert len(calls) >= 1
    assert onp.max(onp.abs(y - q.y(q.x))) < 1e-12


def test_non_stationary_y_refused_with_krylov_solver():
    q = Quadratic(200)
    y = q.y(q.x) + 1e-3
    with pytest.raises(al.NotStationaryError):
        al.Unconstrained(q.f, onp.zeros(200), solver="cg").at(q.x, y)


def test_tight_tol_below_negligible_step_still_solves():
    """With tol below NEGLIGIBLE_STEP the bound must beat tol, not the fixed level."""
    q = Quadratic(200)
    y = q.y(q.x) + 1e-11
    calls = []
    prob = al.Unconstrained(q.f, onp.zeros(200), solver=counting(calls), tol=1e-13)
    with pytest.raises(al.NotStationaryError):
        prob.at(q.x, y)
    assert len(calls) == 1


def test_derivative_through_bounded_acceptance_is_exact():
    q = Quadratic(300, seed=5)
    J = q.jacobian()
    u = onp.random.default_rng(1).standard_normal(300)
    for solver in ("cg", "minres", "gmres"):
        g = grad(
            lambda x, solver=solver: anp.dot(
                u, al.argmin(q.f, x, onp.zeros(300), solver=solver, forward=lambda f, x, y0: q.y(x))
            )
        )(q.x)
        assert onp.allclose(g, J.T @ u, rtol=1e-7, atol=1e-9)


def test_bound_disproved_by_the_residual_is_not_trusted():
    """Hostile review: a Hessian whose low-curvature eigenvector u is orthogonal to the
    seeded Lanczos start; the certificate misses the eigenvalue 1e-5 and its bound is
    ~1e5 times too high. A y off by 5e-6 (> tol) along u has its residual along u, whose
    Rayleigh quotient disproves the bound: the step is solved for and y is refused."""
    n = 3000
    q0 = onp.random.default_rng(0).standard_normal(n)  # the start of Certify(seed=0)
    q0 /= onp.linalg.norm(q0)
    u = onp.eye(1, n, 0)[0] - q0[0] * q0
    u /= onp.linalg.norm(u)
    D, lam = onp.linspace(1.0, 1000.0, n), 1e-5
    c = onp.random.default_rng(5).standard_normal(n)
    c -= (c @ u) * u

    def f(x, y):
        py = y - anp.dot(u, y) * u
        return 0.5 * anp.sum(D * py**2) + 0.5 * lam * anp.dot(u, y) ** 2 - x * anp.dot(c, y)

    # the minimiser: its u-component is 0; on u's complement the Hessian is P D P
    P = onp.eye(n) - onp.outer(u, u)
    ystar = onp.linalg.lstsq(P * D @ P, c, rcond=1e-12)[0]
    ystar -= (u @ ystar) * u
    prob = al.Unconstrained(f, onp.zeros(n), solver="cg")
    sol = prob.at(1.0, ystar)  # the true solution is accepted
    assert sol.certificate.bound > 1e3 * lam  # the certificate did miss the eigenvalue
    with pytest.raises(al.NotStationaryError):
        prob.at(1.0, ystar + 5e-6 * u)


def _three_term_run(keep):
    import tracemalloc

    dim = 200_000
    d = onp.linspace(1.0, 2.0, dim)
    d[5], d[9] = 0.1, 5.0
    tracemalloc.start()
    vals, vecs, products = al.certify.lanczos(lambda v: d * v, dim, 40, keep_vectors=keep)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert 40 * dim > al.certify.FULL_REORTHOGONALIZATION
    return dim, vals, vecs, products, peak


def test_three_term_lanczos_ritz_vectors_by_a_second_pass(monkeypatch):
    """Above FULL_REORTHOGONALIZATION and KEEP_VECTORS the extreme Ritz vectors come from a
    second, identical pass (no dim x steps array): they are the extreme eigenvectors of a
    diagonal matrix with isolated extreme eigenvalues, at twice the products."""
    monkeypatch.setattr(al.certify, "KEEP_VECTORS", 10 * 200_000)  # 10 vectors fit, 40 do not
    dim, vals, vecs, products, peak = _three_term_run(True)
    assert products == 2 * len(vals)
    assert vals[0] == pytest.approx(0.1, rel=1e-8) and vals[-1] == pytest.approx(5.0, rel=1e-8)
    assert abs(vecs[5, 0]) == pytest.approx(1.0, abs=1e-6)
    assert abs(vecs[9, 1]) == pytest.approx(1.0, abs=1e-6)
    assert peak < 20 * dim * 8  # a few vectors, not the 40 Lanczos vectors
    _, vals2, none, products2, _ = _three_term_run(False)
    assert none is None and products2 == len(vals2) and onp.array_equal(vals, vals2)


def test_three_term_lanczos_keeps_vectors_that_fit(monkeypatch):
    """Below KEEP_VECTORS the same Ritz vectors come from the kept Lanczos vectors, without
    the second pass (a user hessp at n = 1e5 paid 60 products instead of 30; at n = 1e6 the
    30 vectors of double precision did not fit, and they are kept in single precision):
    the same to single precision (test directions), with the same Rayleigh quotients."""
    dim, vals, vecs, products, _ = _three_term_run(True)
    assert products == len(vals)
    monkeypatch.setattr(al.certify, "KEEP_VECTORS", 0)
    _, vals2, vecs2, products2, _ = _three_term_run(True)
    assert products2 == 2 * len(vals2) and onp.array_equal(vals, vals2)
    assert onp.linalg.norm(vecs - vecs2, axis=0).max() <= 1e-6
    d = onp.linspace(1.0, 2.0, dim)
    d[5], d[9] = 0.1, 5.0
    for X in (vecs, vecs2):
        rayleigh = onp.einsum("ik,i,ik->k", X, d, X) / onp.einsum("ik,ik->k", X, X)
        assert rayleigh == pytest.approx([0.1, 5.0], rel=1e-9)


def test_kept_lanczos_vectors_fit_sixty_steps_at_a_million_unknowns():
    """KEEP_VECTORS is counted in single-precision entries: a certificate of up to 67 steps
    at n = 1e6 keeps its vectors (33 in double precision; a longer run paid a second pass
    of as many products), still in 256 MiB."""
    assert 60 * 10**6 <= al.certify.KEEP_VECTORS
    assert al.certify.KEEP_VECTORS * 4 <= 256 * 2**20


def test_complete_three_term_run_is_not_called_exact():
    """Hostile review: Certify(method="lanczos", steps >= dim) above the full
    reorthogonalisation limit ran the three-term recurrence yet reported exact=True, and
    its bound was 7.8 times the true smallest eigenvalue. Now: a bound below it, or no
    certificate."""
    dim = 1500
    d = onp.geomspace(1e-8, 1.0, dim)
    system = al.LinearSystem(dim, lambda v: d * v, symmetric=True, sign=1)
    config = al.Certify(method="lanczos", steps=dim, max_steps=dim, rcond=1e-12)
    assert dim * dim > al.certify.FULL_REORTHOGONALIZATION
    try:
        cert = al.certify.certify(system, +1, config)
    except al.UncertifiedError:
        return
    assert not cert.exact
    assert cert.bound is None or cert.bound <= 1e-8
