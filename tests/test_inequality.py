"""Inequality constraints: the barrier approximation (Lemma 4.2) and the exact active-set
derivative, on the paper's positivity example and on problems with several constraints."""

import warnings

import autograd.numpy as anp
import numpy as onp
import pytest
from autograd import grad, jacobian
from conftest import sq

import argminlib as al

# --- the positivity example: argmin_{y >= 0} (x - y)^2 = max(x, 0) --------------------------


def f_pos(x, y):
    return (x - y) ** 2


def c_pos(x, y):
    return anp.array([-y])


def g_t(x, t):
    return (x + onp.sqrt(x**2 + 2 / t)) / 2


def dg_t(x, t):
    return (1 + x / onp.sqrt(x**2 + 2 / t)) / 2


@pytest.mark.parametrize(
    "t, x, g_ref, dg_ref", [(1, 1.0, 1.36603, 0.788675), (10, -1.0, 0.0477, 0.0436)]
)
def test_barrier_check_values(t, x, g_ref, dg_ref):
    y = al.Barrier(f_pos, c_pos, t, 1.0)(x)
    assert y == pytest.approx(g_ref, abs=5e-5)
    assert al.lemma_4_2(f_pos, c_pos, t, x, y) == pytest.approx(dg_ref, abs=5e-5)


@pytest.mark.parametrize("t", [0.5, 1, 10, 100])
@pytest.mark.parametrize("x", [-2.0, -0.3, 0.0, 0.4, 1.5])
def test_barrier_closed_forms(t, x):
    y = al.Barrier(f_pos, c_pos, t, 1.0)(x)
    assert y == pytest.approx(g_t(x, t), rel=1e-10)
    d = al.lemma_4_2(f_pos, c_pos, t, x, y)
    assert d == pytest.approx(dg_t(x, t), rel=1e-9)
    assert d == pytest.approx(2 * t / (2 * t + 1 / y**2), rel=1e-9)  # the Lemma 3.1 form
    assert grad(lambda x: al.Barrier(f_pos, c_pos, t, 1.0)(x))(x) == pytest.approx(d, rel=1e-9)


@pytest.mark.parametrize("x, d", [(1.0, 1.0), (-1.0, 0.0), (2.5, 1.0)])
def test_exact_positivity(x, d):
    P = al.Inequality(f_pos, c_pos, 1.0)
    assert P(x) == pytest.approx(max(x, 0.0), abs=1e-12)
    assert grad(lambda x: al.Inequality(f_pos, c_pos, 1.0)(x))(x) == pytest.approx(d, abs=1e-12)


def test_barrier_derivative_converges_to_exact_as_t_grows():
    x = 0.3
    errors = [abs(dg_t(x, t) - 1.0) for t in (1, 10, 100, 1000)]
    lemma = [
        abs(al.lemma_4_2(f_pos, c_pos, t, x, al.Barrier(f_pos, c_pos, t, 1.0)(x)) - 1.0)
        for t in (1, 10, 100, 1000)
    ]
    assert onp.allclose(errors, lemma, atol=1e-9)
    assert all(b < a for a, b in zip(lemma, lemma[1:], strict=False))


def test_degenerate_point_warns_and_keeps_constraint_active():
    with pytest.warns(al.DegenerateConstraintWarning, match="Constraint 0 is weakly active"):
        d = al.Inequality(f_pos, c_pos, 0.0).jacobian(0.0, 0.0)
    assert d == 0.0  # the one-sided derivative that keeps y = 0


# --- several constraints, some active -------------------------------------------------------


def several(seed=1, n=4, m=3):
    rng = onp.random.default_rng(seed)
    G = rng.normal(size=(n, n))
    Q = G @ G.T + onp.eye(n)
    C = rng.normal(size=(n, m))

    def f(x, y):
        return 0.5 * y @ Q @ y - (C @ x + 2.0) @ y

    def c(x, y):
        return anp.concatenate([y - 0.3, anp.array([anp.sum(y**2) - 1.0 - 0.1 * x[0]])])

    return f, c, rng.normal(size=m), n


def test_several_constraints_exact_against_fd():
    f, c, x, n = several()
    sol = lambda x: al.Inequality(f, c, onp.zeros(n))(x)  # noqa: E731
    y = sol(x)
    active = al.active_set(c, x, y)
    assert 0 < active.size < 5  # some, not all, constraints active
    J_fd = al.fd_jacobian(sol, x)
    P = al.Inequality(f, c, y)
    for solver in ["dense", "minres", "nullspace"]:
        assert al.max_error(al.Inequality(f, c, y, solver=solver).jacobian(x, y), J_fd) < 1e-7
    assert al.max_error(jacobian(sol)(x), J_fd) < 1e-7
    v, u = onp.ones(3), onp.arange(4.0)
    assert al.max_error(P.jvp(x, y, v), J_fd @ v) < 1e-7
    assert al.max_error(P.vjp(x, y, u), u @ J_fd) < 1e-7


def test_barrier_error_decreases_with_t_on_several_constraints():
    f, c, x, n = several()
    y = al.Inequality(f, c, onp.zeros(n))(x)
    J = al.Inequality(f, c, y).jacobian(x, y)
    errs = []
    for t in (10, 100, 1000, 10000):
        B = al.Barrier(f, c, t, onp.zeros(n))
        yt = B(x)
        errs.append((al.max_error(yt, y), al.max_error(B.jacobian(x, yt), J)))
    assert all(b[0] < a[0] and b[1] < a[1] for a, b in zip(errs, errs[1:], strict=False))
    assert errs[-1][1] < 1e-2


def test_inequality_with_equality_and_argmax():
    f, c, x, n = several(seed=2)
    eq = al.linear_constraint(onp.ones((1, n)), onp.array([0.5]))
    sol = lambda x: al.Inequality(f, c, onp.zeros(n), eq=eq)(x)  # noqa: E731
    y = sol(x)
    assert abs(onp.sum(y) - 0.5) < 1e-10
    assert al.max_error(jacobian(sol)(x), al.fd_jacobian(sol, x)) < 1e-7
    g = lambda x, y: -f(x, y)  # noqa: E731
    solmax = lambda x: al.Inequality(g, c, onp.zeros(n), mode="max")(x)  # noqa: E731
    assert al.max_error(solmax(x), al.Inequality(f, c, onp.zeros(n))(x)) < 1e-8
    assert al.max_error(jacobian(solmax)(x), al.fd_jacobian(solmax, x)) < 1e-7


# --- bad input ------------------------------------------------------------------------------


def test_barrier_needs_strictly_feasible_start():
    with pytest.raises(al.InfeasibleError, match="not strictly feasible: c_0"):
        al.Barrier(f_pos, c_pos, 10, 0.0)(1.0)
    with pytest.raises(al.InfeasibleError, match="starting point"):
        al.barrier_solve(f_pos, c_pos, 1.0, -1.0, 10)
    with pytest.raises(al.InfeasibleError):
        al.lemma_4_2(f_pos, c_pos, 10, 1.0, -0.5)


@pytest.mark.parametrize("t", [0, -1.0, onp.inf, onp.nan])
def test_barrier_parameter_must_be_positive(t):
    with pytest.raises(al.ArgminError, match="finite positive"):
        al.Barrier(f_pos, c_pos, t, 1.0)


def test_infeasible_constraints():
    c_bad = lambda x, y: anp.array([1.0 - y, y - 0.0])  # noqa: E731   y >= 1 and y <= 0
    with pytest.raises(al.InfeasibleError):
        al.Inequality(f_pos, c_bad, 0.5)(1.0)


def test_violated_constraint_reported():
    with pytest.raises(al.ConstraintError, match=r"c_0\(x, y\) = 5.000e-01"):
        al.Inequality(f_pos, c_pos, 0.0).jacobian(1.0, -0.5)


def test_wrong_sign_multiplier_is_not_a_kkt_point():
    # y = 0 is on the constraint but the minimiser (x = 1) is interior: lambda < 0
    with pytest.raises(al.NotStationaryError, match="multiplier"):
        al.Inequality(f_pos, c_pos, 0.0).jacobian(1.0, 0.0)


def test_no_warning_away_from_degenerate_points():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        al.Inequality(f_pos, c_pos, 1.0).jacobian(-1.0, 0.0)


@pytest.mark.parametrize("solver", ["dense", "cg", "minres"])
def test_barrier_every_mode_and_solver(solver):
    f, c, x, n = several()
    B = al.Barrier(f, c, 100.0, onp.zeros(n), solver=solver)
    y = B(x)
    J_fd = al.fd_jacobian(lambda x: al.Barrier(f, c, 100.0, onp.zeros(n))(x), x)
    v, u = onp.arange(3.0), onp.ones(n)
    assert al.max_error(B.jacobian(x, y), J_fd) < 1e-6
    assert al.max_error(B.jvp(x, y, v), J_fd @ v) < 1e-6
    assert al.max_error(B.vjp(x, y, u), u @ J_fd) < 1e-6
    g = grad(lambda x: anp.sum(al.Barrier(f, c, 100.0, onp.zeros(n), solver=solver)(x)))(x)
    assert al.max_error(g, onp.ones(n) @ J_fd) < 1e-6


# --- activity judged per constraint; the barrier's parameter -------------------------------


def test_activity_is_judged_per_constraint():
    """Hostile review: a large entry of y that a constraint does not involve does not make
    it active."""
    y = al.argmin(
        lambda x, y: 0.5 * (y[0] - x) ** 2 + 0.5 * y[1] ** 2,
        1e6,
        onp.zeros(2),
        ineq=lambda x, y: anp.array([y[1] - 0.5]),
    )
    assert onp.allclose(y, [1e6, 0.0])
    with pytest.raises(al.InputError, match="active_tol"):
        al.Inequality(lambda x, y: anp.sum(y**2), lambda x, y: y, onp.zeros(2), active_tol=-1.0)


def test_barrier_with_huge_t_refuses_an_infeasible_answer():
    """Hostile review: with t = 1e100 the barrier term (weight 1/t) vanishes below the
    objective's rounding, and the barrier problem's minimiser is the unconstrained one,
    y_0 = 0.8 > 0.5, outside the constraint: refused as not strictly feasible (naming the
    violated constraint), never returned."""
    f = lambda x, y: 0.5 * anp.sum((y - x) ** 2) + 0.1 * anp.sum(y**4)  # noqa: E731
    c = lambda x, y: anp.array([y[0] - 0.5])  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(al.InfeasibleError, match="not strictly feasible: c_0"):
            al.Barrier(f, c, 1e100, onp.zeros(2))(onp.array([1.0, 2.0]))


def test_barrier_parameter_cannot_be_differentiated():
    """Hostile review (second round): a traced t is refused, with the reason."""
    with pytest.raises(al.InputError, match="t is being differentiated"):
        grad(lambda t: al.Barrier(sq, lambda x, y: y - 5.0, t, 0.0)(1.0))(10.0)
