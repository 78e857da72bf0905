"""argminlib.problem and the argmin/argmax API: what the forward solve returns or refuses,
scale invariance, input validation, and parameters in containers.

Each test states a user-visible outcome: a solution or derivative right within a stated
tolerance, or an ArgminError that says what to do.
"""

import warnings

import autograd.numpy as anp
import numpy as onp
import pytest
import scipy.optimize
from autograd import grad
from conftest import sq
from hypothesis import given
from hypothesis import strategies as st

import argminlib as al

# --- argmin never returns a maximum or a saddle, argmax never a minimum ---------------------


def test_argmin_leaves_the_maximum_it_starts_on():
    y = al.argmin(lambda x, y: (y**2 - x) ** 2, 1.0, 0.0)
    assert abs(abs(y) - 1.0) < 1e-12


def test_argmin_leaves_a_saddle_start():
    f = lambda x, y: y[0] ** 2 - y[1] ** 2 + 0.25 * y[1] ** 4 - x * y[0]  # noqa: E731
    y = al.argmin(f, 1.0, onp.zeros(2))
    assert onp.allclose(y, [0.5, onp.sqrt(2.0) * onp.sign(y[1])], atol=1e-12)


def test_argmax_of_a_convex_function_raises():
    with pytest.raises(al.ForwardSolveError, match="unbounded"):
        al.argmax(lambda x, y: anp.sum((y - x) ** 2), onp.array([1.0, 2.0]), onp.zeros(2))


def test_argmax_never_returns_the_minimum_given_as_start():
    f = lambda x, y: anp.sum((y - x) ** 2)  # noqa: E731
    with pytest.raises(al.ArgminError):
        al.argmax(f, onp.ones(2), onp.zeros(2), forward=lambda f, x, y0: x)


# --- the forward solve: what it refuses, and what it hands to the polish ------------------


def test_nan_objective_at_the_result_is_refused():
    def f(x, y):  # finite at the start, NaN at the minimiser
        return (y - x) ** 2 + anp.where(anp.abs(y - x) < 1e-3, onp.nan, 0.0)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(al.NonFiniteError):
            al.argmin(f, 1.0, 0.0)
        with pytest.raises(al.NonFiniteError):
            al.implicit_jacobian(f, 1.0, 1.0)


def test_slsqp_line_search_failure_is_a_forward_failure_not_infeasible(monkeypatch):
    """SLSQP's status 8 on a feasible problem is not reported as infeasibility (hostile
    review; the problem it used, non-smooth at its optimum, is now solved outright).

    The status is forced, so that this does not depend on where SLSQP's line search happens
    to fail: scipy's answer comes back with status 8 ("Positive directional derivative for
    linesearch"), first 1e-7 off the optimum along the constraint (feasible), where the
    problem's Newton polish returns the exact solution; then 1e-3 off the constraint, where
    it is an InfeasibleError that names the violation."""
    f = lambda x, y: anp.sum(anp.abs(y - x) ** 1.1)  # noqa: E731   non-smooth at the optimum
    eq = al.linear_constraint(onp.ones((1, 3)), onp.array([1.0]))
    x = onp.array([0.2, 0.3, 0.5])  # feasible: y = x
    y = al.argmin(f, x, onp.zeros(3), eq=eq)
    assert onp.allclose(y, x, rtol=0, atol=1e-9) and abs(onp.sum(y) - 1.0) < 1e-9

    def g(x, y):
        return 0.5 * anp.sum((y - x) ** 2) + 0.1 * anp.sum(y**4)

    x = onp.array([0.2, 0.3, 0.9])
    want = al.argmin(g, x, onp.zeros(3), eq=eq)
    real, calls = scipy.optimize.minimize, []

    def line_search_failure(shift):
        def minimize(*args, **kwargs):
            res = real(*args, **kwargs)
            calls.append(res.status)
            res.x = res.x + shift
            res.success, res.status = False, 8
            res.message = "Positive directional derivative for linesearch"
            return res

        return minimize

    monkeypatch.setattr(scipy.optimize, "minimize", line_search_failure(1e-7 * onp.r_[1, -1, 0]))
    y = al.argmin(g, x, onp.zeros(3), eq=eq)
    assert calls, "the forced SLSQP result was not used"
    assert onp.allclose(y, want, rtol=0, atol=1e-12)
    monkeypatch.setattr(scipy.optimize, "minimize", line_search_failure(1e-3 * onp.ones(3)))
    with pytest.raises(al.InfeasibleError, match="status 8.*violates the constraints"):
        al.argmin(g, x, onp.zeros(3), eq=eq)


# --- scale invariance --------------------------------------------------------------------


def _unit(x, y):
    return 0.5 * anp.sum((y - x) ** 2) + 0.05 * anp.sum(y**4)


def _solve_scaled(kf, kc, x, kind):
    sf, sc = 10.0**kf, 10.0**kc
    f = lambda x, y: sf * _unit(x, y)  # noqa: E731
    if kind == "unconstrained":
        return al.argmin(f, x, onp.zeros(3))
    if kind == "equality":
        return al.argmin(f, x, onp.zeros(3), eq=lambda x, y: sc * (anp.sum(y) - 1.0))
    return al.argmin(f, x, onp.zeros(3), ineq=lambda x, y: sc * (y - 0.4))


X1 = onp.array([0.9, -0.3, 0.2])


@pytest.mark.parametrize("kind", ["unconstrained", "equality", "inequality"])
@given(kf=st.integers(-20, 20), kc=st.integers(-20, 20))
def test_scale_invariance(kind, kf, kc):
    """Multiplying f or the constraints by 10^k changes neither the solution nor its
    derivative."""
    ref = _solve_scaled(0, 0, X1, kind)
    gref = grad(lambda x: anp.sum(_solve_scaled(0, 0, x, kind) ** 2))(X1)
    y = _solve_scaled(kf, kc, X1, kind)
    g = grad(lambda x: anp.sum(_solve_scaled(kf, kc, x, kind) ** 2))(X1)
    assert al.max_error(y, ref) < 1e-9
    assert al.max_error(g, gref) < 1e-7


def test_issue_examples_of_scale():
    assert al.argmin(lambda x, y: 1e-20 * 0.5 * (y - x) ** 2, 3.0, 0.0) == pytest.approx(3.0)
    g = grad(lambda x: al.argmin(lambda x, y: 1e-20 * 0.5 * (y - x) ** 2, x, 0.0) ** 2)(2.0)
    assert g == pytest.approx(4.0)
    # an inequality far from binding, scaled small, stays inactive
    y = al.argmin(lambda x, y: 0.5 * (y - x) ** 2, 3.0, 0.0, ineq=lambda x, y: 1e-4 * (y - 5.0))
    assert y == pytest.approx(3.0, abs=1e-12)
    assert al.active_set(lambda x, y: 1e-4 * (y - 5.0), 3.0, 3.0).size == 0


@pytest.mark.parametrize("scale", [1e150, 1e300])
def test_huge_objective_is_bounded(scale):
    """f x 1e150 and f x 1e300 (its gradient and curvature near the overflow threshold):
    the minimiser and its derivative, as for f itself."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        y = al.argmin(lambda x, y: scale * 0.5 * (y - x) ** 2, 3.0, 0.0)
        g = grad(lambda x: al.argmin(lambda x, y: scale * 0.5 * (y - x) ** 2, x, 0.0) ** 2)(3.0)
    assert y == pytest.approx(3.0, rel=1e-12)
    assert g == pytest.approx(6.0, rel=1e-9)


# --- bad input: an ArgminError that says what to do -----------------------------------------


def test_integer_list_tuple_inputs_are_floats():
    assert onp.allclose(al.argmin(sq, [1, 2], (0, 0)), [1.0, 2.0])
    assert al.argmin(lambda x, y: (y - x) ** 2, 2, 0) == pytest.approx(2.0)
    J = al.implicit_jacobian(sq, [1, 2], [1, 2])
    assert onp.allclose(J, onp.eye(2))


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: al.argmin(sq, onp.array([1 + 1j]), onp.zeros(1)), al.InputError, "complex"),
        (lambda: al.argmin(sq, None, onp.zeros(1)), al.InputError, "real number"),
        (lambda: al.argmin(sq, 1.0, [[1.0], [1.0, 2.0]]), al.ShapeError, "ragged"),
        (lambda: al.argmin(sq, [[1.0], [1.0, 2.0]], 0.0), al.InputError, "list of 2 items"),
        (lambda: al.argmin(sq, onp.ones(2), [onp.nan, 0]), al.NonFiniteError, "y0 contains"),
        (lambda: al.argmin(sq, 1.0, 0.0, tol=float("nan")), al.InputError, "tol=nan"),
        (lambda: al.argmin(sq, 1.0, 0.0, tol=-1), al.InputError, "tol=-1"),
        (
            lambda: al.argmin(lambda x, y: (y - x) ** 2, onp.ones(2), onp.zeros(2)),
            al.ShapeError,
            "must return a scalar",
        ),
        (lambda: al.argmin(lambda x, y: "a", 1.0, 0.0), al.InputError, "returned str"),
        (
            lambda: al.argmin(lambda x, y: y @ onp.ones(3), onp.ones(2), onp.zeros(2)),
            al.InputError,
            "raised ValueError.*y0 has shape \\(2,\\)",
        ),
        (
            lambda: al.argmin(sq, onp.ones(2), onp.zeros(2), eq=lambda x, y: onp.ones(3) @ y),
            al.InputError,
            "h\\(x, y0\\) raised",
        ),
        (
            lambda: al.argmin(sq, onp.ones(2), onp.zeros(2), ineq=lambda x, y: onp.ones(3) @ y),
            al.InputError,
            "c\\(x, y0\\) raised",
        ),
        (
            lambda: al.argmin(
                sq, onp.ones(2), onp.zeros(2), eq=al.linear_constraint(onp.ones((1, 3)), [1.0])
            ),
            al.ShapeError,
            "A must be p x 2",
        ),
        (
            lambda: al.argmin(sq, onp.ones(2), onp.zeros(2), forward=lambda f, x, y0: "a"),
            al.ShapeError,
            "forward solver returned str",
        ),
        (
            lambda: al.argmin(sq, onp.ones(2), onp.zeros(2), forward=lambda f, x, y0: x[:1]),
            al.ShapeError,
            "returned 1 values",
        ),
        (
            lambda: grad(
                lambda x: anp.sum(al.argmin(sq, x, onp.zeros(2), solver=lambda mv, b: b[:1]))
            )(onp.ones(2)),
            al.ShapeError,
            "custom solver",
        ),
        (lambda: al.argmin(sq, 1.0, 0.0, solver="qr"), al.InputError, "Unknown linear solver"),
        (lambda: al.argmin(sq, 1.0, 0.0, solver=3.0), al.InputError, "solver must be"),
        (lambda: al.Unconstrained(sq, 0.0, mode="mx"), al.InputError, "mode='mx'"),
        (lambda: al.argmin(sq, 1.0, 0.0, certify="yes"), al.InputError, "Certify"),
        (lambda: al.CG(atol=-1.0), al.InputError, "atol"),
        (lambda: al.GMRES(maxiter=0), al.InputError, "maxiter"),
        (lambda: al.GMRES(restart=0), al.InputError, "restart"),
        (lambda: al.Dense(rcond=2.0), al.InputError, "rcond"),
        (
            lambda: grad(
                lambda x: anp.sum(
                    al.argmin(sq, x, onp.zeros(3), solver=al.CG(preconditioner=onp.eye(2)))
                )
            )(onp.ones(3)),
            al.ShapeError,
            "preconditioner",
        ),
        (
            lambda: al.argmin(
                sq,
                onp.ones(2),
                onp.zeros(2),
                eq=al.linear_constraint(onp.ones((1, 2)), [1.0]),
                solver="cholesky",
            ),
            al.InputError,
            "cholesky",
        ),
    ],
)
def test_bad_input_raises_argmin_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda: al.Certify(seed="a"), al.InputError),
        (lambda: al.Certify(seed=-1), al.InputError),
        (lambda: al.GMRES(restart=True), al.InputError),
        (lambda: al.NullSpace(rcond="a"), al.InputError),
        (lambda: al.argmin(sq, 1.0, 0.0, forward="newton"), al.InputError),
        (lambda: al.argmin(lambda x, y: y.foo, 1.0, 0.0), al.InputError),
        (
            lambda: grad(
                lambda x: al.argmin(
                    sq, x, 0.0, solver=lambda mv, b: onp.linalg.solve(onp.zeros((1, 1)), b)
                )
            )(1.0),
            al.LinearSolveError,
        ),
        (lambda: grad(lambda x: al.argmin(sq, x, 0.0, solver=lambda b: b))(1.0), al.InputError),
        (
            lambda: grad(
                lambda x: anp.sum(
                    al.argmin(
                        sq, x, onp.zeros(2), solver=al.MINRES(preconditioner=onp.diag([1.0, -1.0]))
                    )
                )
            )(onp.ones(2)),
            al.LinearSolveError,
        ),
        (
            lambda: al.argmin(
                sq, onp.ones(2), onp.zeros(2), eq=lambda x, y: anp.array([onp.nan + y[0]])
            ),
            al.NonFiniteError,
        ),
    ],
)
def test_hostile_inputs_raise_argmin_errors(call, error):
    """Hostile review: wrong option types, a solver of the wrong signature or one that
    raises, an indefinite preconditioner, a NaN constraint: an ArgminError each."""
    with pytest.raises(error):
        call()


def test_tangent_of_the_wrong_structure_is_refused():
    """Hostile review (second round): a JVP tangent whose structure is not that of x."""

    def g(p, y):
        return 0.5 * anp.sum((y - p[0]) ** 2) * p[1] + 0.1 * anp.sum(y**4)

    p = al.Unconstrained(g, onp.zeros(2))
    ys = p((onp.ones(2), 2.0))
    with pytest.raises(al.ShapeError, match="structure"):
        p.jvp([onp.ones(2), 2.0], ys, [onp.ones(3)])


# --- parameters in containers ------------------------------------------------------------


def test_container_parameters():
    def f(p, y):
        return 0.5 * anp.sum((p["X"] @ y - p["t"]) ** 2) + 0.5 * p["lam"] * anp.sum(y**2)

    rng = onp.random.default_rng(7)
    p = {"X": rng.normal(size=(6, 3)), "t": rng.normal(size=6), "lam": 0.7}

    def loss(p):
        return anp.sum(al.argmin(f, p, onp.zeros(3)) ** 2)

    g = grad(loss)(p)
    assert set(g) == {"X", "t", "lam"} and g["X"].shape == (6, 3)

    def closed(X, t, lam):
        return onp.sum(onp.linalg.solve(X.T @ X + lam * onp.eye(3), X.T @ t) ** 2)

    assert g["lam"] == pytest.approx(al.fd_grad(lambda a: closed(p["X"], p["t"], a), 0.7), rel=1e-6)
    assert al.max_error(g["t"], al.fd_grad(lambda t: closed(p["X"], t, 0.7), p["t"])) < 1e-7
    gt = grad(
        lambda q: anp.sum(
            al.argmin(lambda q, y: f({"X": q[0], "t": q[1], "lam": q[2]}, y), q, onp.zeros(3)) ** 2
        )
    )((p["X"], p["t"], 0.7))
    assert isinstance(gt, tuple) and al.max_error(gt[1], g["t"]) < 1e-12


def test_tuple_of_traced_scalars_keeps_the_trace():
    """Hostile review: a tuple or list of scalars, one traced, is differentiated through."""

    def g(p):
        return al.argmin(lambda p, y: 0.5 * (y - p[0]) ** 2 * anp.exp(p[1]) + 0.1 * y**4, p, 0.0)

    ref = al.fd_grad(lambda a: g((a, 2.0)) + a**2, 1.0)
    assert grad(lambda a: g((a, 2.0)) + a**2)(1.0) == pytest.approx(ref, rel=1e-6)
    fd = al.fd_grad(lambda v: g((v[0], v[1])), onp.array([1.0, 2.0]))
    for p in [(1.0, 2.0), [1.0, 2.0]]:
        assert al.max_error(onp.array(grad(g)(p)), fd) < 1e-6


def test_nested_container_parameters():
    rng = onp.random.default_rng(2)
    p = {"m": (rng.normal(size=(4, 2)), rng.normal(size=4)), "l": 0.1}

    def f(p, y):
        return 0.5 * anp.sum((p["m"][0] @ y - p["m"][1]) ** 2) + p["l"] * anp.sum(y**2)

    g = grad(lambda p: anp.sum(al.argmin(f, p, onp.zeros(2))))(p)

    def closed(l):
        X, t = p["m"]
        return onp.sum(onp.linalg.solve(X.T @ X + 2 * l * onp.eye(2), X.T @ t))

    assert g["l"] == pytest.approx(al.fd_grad(closed, 0.1), rel=1e-6)


def test_int_leaf_next_to_a_traced_one_is_a_float():
    """Hostile review (second round): an int leaf of a list next to a traced one is read as
    a float (not truncated, not refused)."""

    def g(p, y):
        return 0.5 * anp.sum((y - p[0]) ** 2) * p[1] + 0.1 * anp.sum(y**4)

    ga = grad(lambda a: anp.sum(al.argmin(g, [a, 2], onp.zeros(2))))(onp.ones(2))
    gb = grad(lambda a: anp.sum(al.argmin(g, [a, 2.0], onp.zeros(2))))(onp.ones(2))
    assert onp.allclose(ga, gb)


@pytest.mark.parametrize("solver", ["dense", "cg", "minres", "gmres"])
@pytest.mark.parametrize("mode", ["min", "max"])
def test_return_info_is_filled_in_by_the_derivative_passes(solver, mode):
    """Issue 20: ``argmin(..., return_info=True)`` was a TypeError; the solve's accuracy was
    in reach only through ``Unconstrained(...).vjp(..., return_info=True)``, which
    re-certifies. Now ``(y, info)``: the certificate at once, the derivative solves once
    ``grad`` has run through ``y`` (the same certificate: nothing is certified again)."""
    rng = onp.random.default_rng(0)
    n = 8
    M = rng.standard_normal((n, n))
    sign = 1.0 if mode == "min" else -1.0
    A = sign * (M @ M.T + n * onp.eye(n))

    def f(x, y):
        return 0.5 * anp.dot(y, anp.dot(A, y)) - anp.dot(x, y)

    solve = al.argmin if mode == "min" else al.argmax
    infos = []

    def loss(x):
        y, info = solve(f, x, onp.zeros(n), solver=solver, return_info=True)
        infos.append(info)
        return anp.sum(y**2)

    x = onp.linspace(-1.0, 1.0, n)
    y, info = solve(f, x, onp.zeros(n), solver=solver, return_info=True)
    assert onp.allclose(y, onp.linalg.solve(A, x))
    assert info.solves.solves == 0 and info.certificate is not None
    g = grad(loss)(x)
    Ai = onp.linalg.inv(A)
    assert al.max_error(g, 2 * Ai.T @ (Ai @ x), relative=True) < 1e-8
    (info,) = infos
    assert info.solves.solves == 1 and info.solves.converged
    if solver != "dense":
        assert info.solves.iterations > 0 and info.solves.error < 1e-8
    assert "ArgminInfo(solves=1" in repr(info)
    # without it, the answer alone (the default is unchanged)
    assert isinstance(solve(f, x, onp.zeros(n), solver=solver), onp.ndarray)


@pytest.mark.parametrize("kind", ["problem", "argmin", "equality"])
def test_warm_start_begins_at_the_last_solution(kind):
    """Issue 20: nothing warm-started from the last solution. With ``warm_start=True`` the
    forward solver starts there (seen by a user forward solver, which receives the start);
    the answer and its derivative are those of a cold start."""
    rng = onp.random.default_rng(3)
    M = rng.standard_normal((4, 4))
    A = M @ M.T + 4 * onp.eye(4)

    def f(x, y):
        return 0.5 * anp.dot(y, anp.dot(A, y)) - anp.dot(x, y) + 0.1 * anp.sum(y**4)

    def h(x, y):
        return anp.array([anp.sum(y) - 1.0])

    starts = []

    def spy(f_, x_, y0_):
        starts.append(onp.array(y0_, dtype=float))
        return al.newton(f_, x_, y0_) if kind != "equality" else al.slsqp(f_, x_, y0_, eq=h)

    y0 = onp.zeros(4)
    eq = {"eq": h} if kind == "equality" else {}
    if kind == "argmin" or kind == "equality":

        def solve(x, warm):
            return al.argmin(f, x, y0, forward=spy, warm_start=warm, **eq)
    else:
        prob = al.Unconstrained(f, y0, forward=spy, warm_start=True)
        cold = al.Unconstrained(f, y0, forward=spy)

        def solve(x, warm):
            return (prob if warm else cold)(x)

    x1, x2 = onp.linspace(-1, 1, 4), onp.linspace(-0.9, 1.1, 4)
    y1 = solve(x1, True)
    assert onp.all(starts[-1] == 0)  # the first solve starts at y0
    y2 = solve(x2, True)
    assert onp.allclose(starts[-1], y1, rtol=0, atol=1e-12)  # the second at the last answer
    assert al.max_error(y2, solve(x2, False), relative=True) < 1e-10
    assert onp.all(starts[-1] == 0)  # (a cold start is still y0)
    g_warm = grad(lambda x: anp.sum(solve(x, True) ** 2))(x2)
    g_cold = grad(lambda x: anp.sum(solve(x, False) ** 2))(x2)
    assert al.max_error(g_warm, g_cold, relative=True) < 1e-8
    with pytest.raises(al.InputError, match="warm_start"):
        al.Unconstrained(f, y0, warm_start="yes")
