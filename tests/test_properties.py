"""Property-based tests (hypothesis, fixed profile in conftest.py): random well-conditioned
problems of every class agree with finite differences; random bad inputs always raise the
documented exception and never return a number."""

import autograd.numpy as anp
import numpy as onp
import pytest
from hypothesis import given
from hypothesis import strategies as st

import argminlib as al

seeds = st.integers(0, 2**31 - 1)


def spd(rng, n):
    G = rng.normal(size=(n, n))
    return G @ G.T / n + onp.eye(n)


@given(
    seed=seeds,
    n=st.integers(1, 6),
    m=st.integers(1, 4),
    solver=st.sampled_from(["dense", "cg", "minres", "gmres"]),
)
def test_unconstrained_random(seed, n, m, solver):
    rng = onp.random.default_rng(seed)
    Q, C = spd(rng, n), rng.normal(size=(n, m))

    def f(x, y):
        return (
            0.5 * y @ Q @ y
            - (C @ x) @ y
            + 0.05 * anp.sum(y**4)
            + 0.05 * anp.sum(anp.sin(x)) * anp.sum(y**2)
        )

    x = rng.normal(size=m) * 0.5
    sol = lambda x: al.argmin(f, x, onp.zeros(n))  # noqa: E731
    y = sol(x)
    J = al.implicit_jacobian(f, x, y, solver=solver)
    assert al.max_error(J, al.fd_jacobian(sol, x), relative=True) < 1e-6


@given(seed=seeds, n=st.integers(2, 6), data=st.data())
def test_linear_equality_random(seed, n, data):
    p = data.draw(st.integers(1, n - 1))
    rng = onp.random.default_rng(seed)
    Q, C = spd(rng, n), rng.normal(size=(n, 2))
    A, b = rng.normal(size=(p, n)), rng.normal(size=p)

    def f(x, y):
        return 0.5 * y @ Q @ y - (C @ x) @ y + 0.05 * anp.sum(y**4)

    h = al.linear_constraint(A, b)
    x = rng.normal(size=2)
    sol = lambda x: al.Equality(f, h, onp.zeros(n))(x)  # noqa: E731
    y = sol(x)
    J_fd = al.fd_jacobian(sol, x)
    assert al.max_error(al.lemma_4_1(f, x, y, A, b), J_fd, relative=True) < 1e-6
    assert al.max_error(al.nullspace_form(f, x, y, A, b), J_fd, relative=True) < 1e-6
    assert (
        al.max_error(al.Equality(f, h, y, solver="minres").jacobian(x, y), J_fd, relative=True)
        < 1e-6
    )


def constructed_inequality(rng, n, k_active, k_inactive):
    """A problem whose solution at x0 is a chosen y* with a chosen active set: the active
    constraints hold with equality and multipliers >= 0.5, the inactive ones have slack
    >= 0.5, so the active set is stable near x0 (no degeneracy)."""
    Q, C = spd(rng, n), rng.normal(size=(n, 2))
    G = rng.normal(size=(k_active + k_inactive, n))
    y_star, x0 = rng.normal(size=n), rng.normal(size=2)
    lam = onp.concatenate([rng.uniform(0.5, 2.0, k_active), onp.zeros(k_inactive)])
    slack = onp.concatenate([onp.zeros(k_active), rng.uniform(0.5, 2.0, k_inactive)])
    hvec = G @ y_star + slack
    q0 = Q @ y_star + G.T @ lam - C @ x0  # stationarity: Q y* - (q0 + C x0) + G^T lam = 0

    def f(x, y):
        return 0.5 * y @ Q @ y - (q0 + C @ x) @ y

    def c(x, y):
        return G @ y - hvec

    return f, c, x0, y_star


@given(seed=seeds, n=st.integers(2, 5), data=st.data())
def test_inequality_exact_random_active_sets(seed, n, data):
    k_active = data.draw(st.integers(0, n - 1))
    k_inactive = data.draw(st.integers(0, 3))
    rng = onp.random.default_rng(seed)
    f, c, x0, y_star = constructed_inequality(rng, n, k_active, k_inactive)
    sol = lambda x: al.Inequality(f, c, y_star)(x)  # noqa: E731
    assert al.max_error(sol(x0), y_star) < 1e-7
    assert set(al.active_set(c, x0, y_star)) == set(range(k_active))
    J = al.Inequality(f, c, y_star).jacobian(x0, y_star)
    assert al.max_error(J, al.fd_jacobian(sol, x0, eps=1e-6), relative=True) < 1e-5


@given(seed=seeds, n=st.integers(1, 4), t=st.sampled_from([1.0, 10.0, 100.0]))
def test_barrier_random(seed, n, t):
    rng = onp.random.default_rng(seed)
    f, c, x0, y_star = constructed_inequality(rng, n, 0, 2)  # box-like, interior start
    start = y_star  # strictly feasible: both constraints have slack
    sol = lambda x: al.Barrier(f, c, t, start)(x)  # noqa: E731
    y = sol(x0)
    J = al.Barrier(f, c, t, y).jacobian(x0, y)
    assert al.max_error(J, al.fd_jacobian(sol, x0), relative=True) < 1e-6


# --- bad inputs always raise -------------------------------------------------------------


def quad(x, y):
    return anp.sum((y - x) ** 2)


@given(
    n=st.integers(1, 5),
    where=st.sampled_from(["x", "y", "u"]),
    seed=seeds,
    bad=st.sampled_from([onp.nan, onp.inf, -onp.inf]),
)
def test_non_finite_always_raises(n, where, seed, bad):
    rng = onp.random.default_rng(seed)
    x, y, u = rng.normal(size=n), None, rng.normal(size=n)
    y = x.copy()
    {"x": x, "y": y, "u": u}[where][rng.integers(n)] = bad
    with pytest.raises(al.NonFiniteError):
        al.implicit_vjp(quad, x, y, u)


@given(n=st.integers(1, 5), k=st.integers(1, 5))
def test_shape_mismatch_always_raises(n, k):
    x = onp.ones(n)
    if k == n:
        k += 1
    with pytest.raises(al.ShapeError):
        al.implicit_vjp(quad, x, x, onp.ones(k))
    with pytest.raises(al.ShapeError):
        al.implicit_jvp(quad, x, x, onp.ones(k))


@given(n=st.integers(1, 5), offset=st.floats(1e-4, 10.0), seed=seeds)
def test_non_stationary_always_raises(n, offset, seed):
    rng = onp.random.default_rng(seed)
    x = rng.normal(size=n)
    with pytest.raises(al.NotStationaryError):
        al.implicit_jacobian(quad, x, x + offset, solver=rng.choice(["dense", "cg"]))


@given(n=st.integers(2, 5), violation=st.floats(1e-3, 5.0), seed=seeds)
def test_infeasible_y_always_raises(n, violation, seed):
    rng = onp.random.default_rng(seed)
    A = rng.normal(size=(1, n))
    x = rng.normal(size=n)
    y = x + violation * A[0] / (A[0] @ A[0])  # A y - A x = violation
    with pytest.raises(al.ConstraintError):
        al.Equality(quad, al.linear_constraint(A, A @ x), y).jacobian(x, y)
    with pytest.raises(al.ConstraintError):
        al.Inequality(quad, al.linear_constraint(A, A @ x), y).jacobian(x, y)


@given(t=st.one_of(st.floats(max_value=0.0), st.just(onp.nan), st.just(onp.inf)))
def test_bad_barrier_parameter_always_raises(t):
    with pytest.raises(al.ArgminError):
        al.Barrier(quad, lambda x, y: -y, t, onp.ones(1))


@given(n=st.integers(2, 5), seed=seeds)
def test_indefinite_hessian_always_raises_for_argmin(n, seed):
    rng = onp.random.default_rng(seed)
    d = onp.abs(rng.normal(size=n)) + 0.5
    d[rng.integers(n)] *= -1

    def f(x, y):
        return 0.5 * anp.sum(d * y**2) - x @ y

    x = rng.normal(size=n)
    y = x / d
    for solver in ["dense", "cg"]:
        with pytest.raises(al.CurvatureError):
            al.implicit_jacobian(f, x, y, solver=solver)
