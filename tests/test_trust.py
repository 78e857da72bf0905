"""Trust: every solver either returns the right derivative or raises the documented error.

Table-driven: {every linear solver} x {saddle, maximum passed to argmin, singular Hessian,
ill-conditioned definite Hessian, KKT matrix of the wrong inertia}; second derivatives
through every solver; scale invariance; the adversarial inputs of the trust issue.
"""

import warnings

import autograd.numpy as anp
import numpy as onp
import pytest
import scipy.sparse.linalg as spla
from autograd import grad, hessian, jacobian, make_jvp
from hypothesis import given
from hypothesis import strategies as st

import argminlib as al


def user_solve(matvec, b):
    """A user's plain ``solve(matvec, b)``: scipy's GMRES on the products."""
    A = spla.LinearOperator((b.size, b.size), matvec=matvec)
    w, _ = spla.gmres(A, b, rtol=1e-13, atol=0.0, restart=b.size, maxiter=10)
    return w


SOLVERS = ["dense", "cholesky", "lu", "lstsq", "cg", "minres", "gmres", "nullspace", user_solve]
IDS = [s if isinstance(s, str) else "user" for s in SOLVERS]
MATRIX_FREE = ["cg", "minres", "gmres", "nullspace", user_solve]

# --- pathological Hessians (n = 30 > Certify.steps, so matrix-free solvers use Lanczos) ---

N = 30
_Q = onp.linalg.qr(onp.random.default_rng(0).normal(size=(N, N)))[0]


def _spectrum(special):
    d = onp.linspace(1.0, 2.0, N)
    d[7] = special
    return d


def quadratic(d, b=None):
    """``f = 1/2 y^T H y - x b^T y`` with ``H = Q diag(d) Q^T``; at ``x = 1`` the stationary
    point is ``H^+ b`` and ``dy/dx = H^+ b``."""
    H = _Q @ onp.diag(d) @ _Q.T
    b = onp.ones(N) if b is None else b
    inv = onp.where(onp.abs(d) > 0, 1.0 / onp.where(d == 0, 1.0, d), 0.0)
    y = _Q @ (inv * (_Q.T @ b))
    return (lambda x, y_: 0.5 * y_ @ H @ y_ - x * (b @ y_)), y


CASES = {
    "saddle": (quadratic(_spectrum(-0.5)), al.CurvatureError, "saddle point"),
    "maximum": (quadratic(-onp.linspace(1.0, 2.0, N)), al.CurvatureError, "local maximum"),
    # f_XY = 0, so the right-hand side is zero: no early return before the certificate
    "maximum, zero right-hand side": (
        quadratic(-onp.linspace(1.0, 2.0, N), onp.zeros(N)),
        al.CurvatureError,
        "local maximum",
    ),
    "singular": (
        quadratic(_spectrum(0.0), _Q[:, 3] + _Q[:, 9]),
        al.SingularHessianError,
        "singular",
    ),
    "ill-conditioned": (quadratic(_spectrum(1e-11)), al.IllConditionedError, "ill-conditioned"),
}


@pytest.mark.parametrize("solver", SOLVERS, ids=IDS)
@pytest.mark.parametrize("case", list(CASES))
def test_every_solver_refuses_every_pathology(solver, case):
    (f, y), error, message = CASES[case]
    if case == "singular" and solver == "lstsq":  # the documented minimum-norm derivative
        J = al.implicit_jacobian(f, 1.0, y, solver=solver)
        assert al.max_error(J, y) < 1e-10
        return
    with pytest.raises(error, match=message) as e:
        al.implicit_jacobian(f, 1.0, y, solver=solver)
    if error is not al.SingularHessianError or solver != "lstsq":
        assert e.value.certificate is not None or isinstance(e.value, al.IllConditionedError)


@pytest.mark.parametrize("solver", SOLVERS, ids=IDS)
def test_ill_conditioned_accepted_knowingly_is_right_or_raises(solver):
    """With ``Certify(rcond=...)`` as the message advises: the right derivative, or (for an
    iterative solve that cannot reach the accuracy) a LinearSolveError, never a wrong one."""
    d = _spectrum(1e-9)
    b = _Q @ onp.where(onp.arange(N) == 7, 0.0, 1.0)  # y stays moderate; J does not
    f, y = quadratic(d, b)
    try:
        J = al.implicit_jacobian(f, 1.0, y, solver=solver, certify=al.Certify(rcond=1e-12))
    except al.LinearSolveError:
        assert solver in MATRIX_FREE
        return
    assert al.max_error(J, y, relative=True) < 1e-5


def _kkt_problem():
    rng = onp.random.default_rng(3)
    A, b = rng.normal(size=(3, 8)), rng.normal(size=3)

    def f(x, y):
        return 0.5 * anp.sum((y - x) ** 2) + 0.1 * anp.sum(y**4)

    h = al.linear_constraint(A, b)
    x = 0.3 * onp.ones(8)
    return f, h, x, al.Equality(f, h, onp.zeros(8))(x)


@pytest.mark.parametrize("solver", SOLVERS, ids=IDS)
def test_kkt_wrong_inertia_is_refused(solver):
    """``Equality(mode="max")`` at a constrained minimum: refused by every solver."""
    f, h, x, y = _kkt_problem()
    if solver in ("cholesky", "cg"):  # definite-only solvers may refuse a KKT matrix first
        with pytest.raises((al.CurvatureError, al.InputError)):
            al.Equality(f, h, y, mode="max", solver=solver).jacobian(x, y)
        return
    with pytest.raises(al.CurvatureError, match="local minimum, not a maximum"):
        al.Equality(f, h, y, mode="max", solver=solver).jacobian(x, y)


@pytest.mark.parametrize("solver", SOLVERS, ids=IDS)
def test_kkt_right_inertia_agrees_with_dense(solver):
    f, h, x, y = _kkt_problem()
    ref = al.Equality(f, h, y).jacobian(x, y)
    if solver in ("cholesky", "cg"):  # definite-only solvers refuse a KKT matrix up front
        with pytest.raises(al.InputError, match="definite"):
            al.Equality(f, h, y, solver=solver).jacobian(x, y)
        return
    assert al.max_error(al.Equality(f, h, y, solver=solver).jacobian(x, y), ref) < 1e-8


def test_lanczos_certificate_is_reported_in_info():
    f, y = quadratic(_spectrum(1.5))
    _, info = al.implicit_jacobian(f, 1.0, y, solver="cg", return_info=True)
    cert = info.certificate
    assert cert.method == "lanczos" and not cert.exact and cert.products > 0
    assert 0.99 < cert.lowest and cert.highest < 2.01
    _, info = al.implicit_jacobian(f, 1.0, y, solver="cg", certify=False, return_info=True)
    assert info.certificate is None


# --- the forward solve: argmin never returns a maximum or a saddle ------------------------


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


# --- second derivatives through every solver -----------------------------------------------


def _f(x, y):
    return 0.5 * anp.sum(anp.exp(x) * y**2) - anp.sum(y * anp.sin(x)) + 0.25 * anp.sum(y**4)


def _upper(solver):
    def up(x):
        y = al.argmin(_f, x, onp.zeros(3), solver=solver)
        return anp.sum(y**3) + anp.sum(y * x)

    return up


X0 = onp.array([0.3, -0.2, 0.5])


@pytest.fixture(scope="module")
def dense_hessian():
    return hessian(_upper("dense"))(X0)


@pytest.mark.parametrize("solver", SOLVERS, ids=IDS)
def test_hessian_through_every_solver(solver, dense_hessian):
    H = hessian(_upper(solver))(X0)
    assert onp.allclose(onp.diag(dense_hessian), [0.557811, 0.415344, -0.153951], atol=1e-6)
    assert al.max_error(H, dense_hessian) < 1e-7
    fd = al.fd_jacobian(grad(_upper(solver)), X0, eps=1e-5)
    assert al.max_error(H, fd) < 1e-6


@pytest.mark.parametrize("solver", SOLVERS, ids=IDS)
def test_forward_over_reverse_through_every_solver(solver, dense_hessian):
    v = onp.array([1.0, -2.0, 0.5])
    _, hv = make_jvp(grad(_upper(solver)))(X0)(v)
    assert al.max_error(hv, dense_hessian @ v) < 1e-7


def _inner(y, z):
    Q = onp.array([[3.0, 0.5, 0.0], [0.5, 2.0, 0.3], [0.0, 0.3, 4.0]])
    return 0.5 * z @ Q @ z - y @ z + 0.25 * anp.sum(z**4)


@pytest.mark.parametrize("solver", ["cg", "minres", user_solve], ids=["cg", "minres", "user"])
def test_nested_argmin_with_matrix_free_inner_solver(solver):
    """The outer objective holds an argmin over the outer variable: the outer solve needs
    the inner argmin's second derivatives, through the matrix-free inner solver."""

    def f(x, y):
        z = al.argmin(_inner, y, onp.zeros(3), solver=solver)
        return 0.5 * anp.sum((y - x) ** 2) + 0.5 * anp.sum(z**2) + 0.1 * anp.sum(y**4)

    def loss(x):
        return anp.sum(anp.sin(al.argmin(f, x, onp.zeros(3), solver=solver)))

    x = onp.array([0.3, -0.5, 1.0])
    g = grad(loss)(x)
    assert al.max_error(g, al.fd_grad(loss, x, eps=1e-6)) < 1e-6


def test_hessian_through_equality_and_inequality_with_minres():
    rng = onp.random.default_rng(5)
    A, b = rng.normal(size=(2, 4)), rng.normal(size=2)
    h = al.linear_constraint(A, b)

    def up(solver, **kw):
        return lambda x: anp.sum(al.argmin(_f4, x, onp.zeros(4), solver=solver, **kw) ** 3)

    x = onp.array([0.3, -0.2, 0.5, 0.1])
    for kw in ({"eq": h}, {"ineq": lambda x, y: y - 0.2}):
        Hd = hessian(up("dense", **kw))(x)
        Hm = hessian(up("minres", **kw))(x)
        assert al.max_error(Hm, Hd) < 1e-7
        assert al.max_error(Hd, al.fd_jacobian(grad(up("dense", **kw)), x, eps=1e-5)) < 1e-5


def _f4(x, y):
    return 0.5 * anp.sum(anp.exp(x) * y**2) - anp.sum(y * anp.sin(x)) + 0.25 * anp.sum(y**4)


# --- scale invariance ------------------------------------------------------------------------


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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            y = al.argmin(lambda x, y: scale * 0.5 * (y - x) ** 2, 3.0, 0.0)
        except al.ArgminError:
            return  # overflow reported: acceptable
    assert y == pytest.approx(3.0)


# --- bad input: an ArgminError that says what to do -----------------------------------------


def _sq(x, y):
    return anp.sum((y - x) ** 2)


def test_integer_list_tuple_inputs_are_floats():
    assert onp.allclose(al.argmin(_sq, [1, 2], (0, 0)), [1.0, 2.0])
    assert al.argmin(lambda x, y: (y - x) ** 2, 2, 0) == pytest.approx(2.0)
    J = al.implicit_jacobian(_sq, [1, 2], [1, 2])
    assert onp.allclose(J, onp.eye(2))


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: al.argmin(_sq, onp.array([1 + 1j]), onp.zeros(1)), al.InputError, "complex"),
        (lambda: al.argmin(_sq, None, onp.zeros(1)), al.InputError, "real number"),
        (lambda: al.argmin(_sq, 1.0, [[1.0], [1.0, 2.0]]), al.ShapeError, "ragged"),
        (lambda: al.argmin(_sq, [[1.0], [1.0, 2.0]], 0.0), al.InputError, "list of 2 items"),
        (lambda: al.argmin(_sq, onp.ones(2), [onp.nan, 0]), al.NonFiniteError, "y0 contains"),
        (lambda: al.argmin(_sq, 1.0, 0.0, tol=float("nan")), al.InputError, "tol=nan"),
        (lambda: al.argmin(_sq, 1.0, 0.0, tol=-1), al.InputError, "tol=-1"),
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
            lambda: al.argmin(_sq, onp.ones(2), onp.zeros(2), eq=lambda x, y: onp.ones(3) @ y),
            al.InputError,
            "h\\(x, y0\\) raised",
        ),
        (
            lambda: al.argmin(_sq, onp.ones(2), onp.zeros(2), ineq=lambda x, y: onp.ones(3) @ y),
            al.InputError,
            "c\\(x, y0\\) raised",
        ),
        (
            lambda: al.argmin(
                _sq, onp.ones(2), onp.zeros(2), eq=al.linear_constraint(onp.ones((1, 3)), [1.0])
            ),
            al.ShapeError,
            "A must be p x 2",
        ),
        (
            lambda: al.argmin(_sq, onp.ones(2), onp.zeros(2), forward=lambda f, x, y0: "a"),
            al.ShapeError,
            "forward solver returned str",
        ),
        (
            lambda: al.argmin(_sq, onp.ones(2), onp.zeros(2), forward=lambda f, x, y0: x[:1]),
            al.ShapeError,
            "returned 1 values",
        ),
        (
            lambda: grad(
                lambda x: anp.sum(al.argmin(_sq, x, onp.zeros(2), solver=lambda mv, b: b[:1]))
            )(onp.ones(2)),
            al.ShapeError,
            "custom solver",
        ),
        (lambda: al.argmin(_sq, 1.0, 0.0, solver="qr"), al.InputError, "Unknown linear solver"),
        (lambda: al.argmin(_sq, 1.0, 0.0, solver=3.0), al.InputError, "solver must be"),
        (lambda: al.Unconstrained(_sq, 0.0, mode="mx"), al.InputError, "mode='mx'"),
        (lambda: al.argmin(_sq, 1.0, 0.0, certify="yes"), al.InputError, "Certify"),
        (lambda: al.CG(atol=-1.0), al.InputError, "atol"),
        (lambda: al.GMRES(maxiter=0), al.InputError, "maxiter"),
        (lambda: al.GMRES(restart=0), al.InputError, "restart"),
        (lambda: al.Dense(rcond=2.0), al.InputError, "rcond"),
        (
            lambda: grad(
                lambda x: anp.sum(
                    al.argmin(_sq, x, onp.zeros(3), solver=al.CG(preconditioner=onp.eye(2)))
                )
            )(onp.ones(3)),
            al.ShapeError,
            "preconditioner",
        ),
        (
            lambda: al.argmin(
                _sq,
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


def test_nan_objective_at_the_result_is_refused():
    def f(x, y):  # finite at the start, NaN at the minimiser
        return (y - x) ** 2 + anp.where(anp.abs(y - x) < 1e-3, onp.nan, 0.0)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(al.NonFiniteError):
            al.argmin(f, 1.0, 0.0)
        with pytest.raises(al.NonFiniteError):
            al.implicit_jacobian(f, 1.0, 1.0)


def test_large_atol_and_cg_through_argmin():
    y = al.argmin(_sq, onp.ones(3), onp.zeros(3), solver=al.CG(atol=1e6))
    g = grad(lambda x: anp.sum(al.argmin(_sq, x, onp.zeros(3), solver=al.CG(atol=1e6))))
    assert onp.allclose(y, 1.0) and onp.allclose(g(onp.ones(3)), 1.0, atol=1e-3)


def test_slsqp_line_search_failure_is_a_forward_failure_not_infeasible():
    """SLSQP's status 8 on a feasible problem is not reported as infeasibility."""
    f = lambda x, y: anp.sum(anp.abs(y - x) ** 1.1)  # noqa: E731   non-smooth at the optimum
    eq = al.linear_constraint(onp.ones((1, 3)), onp.array([1.0]))
    try:
        y = al.argmin(f, onp.array([0.2, 0.3, 0.5]), onp.zeros(3), eq=eq)
    except al.InfeasibleError:  # pragma: no cover - the failure this test guards against
        pytest.fail("a feasible problem was reported infeasible")
    except al.ArgminError:
        return
    assert abs(onp.sum(y) - 1.0) < 1e-9


# --- containers, root and fixed_point ---------------------------------------------------------


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


def test_root_and_fixed_point():
    # the README's example: the cube-root-like z^3 + z = a, and cos fixed point
    g = grad(lambda a: al.root(lambda a, z: z**3 + z - a, a, onp.array([1.0]))[0])(2.0)
    assert g == pytest.approx(0.25)
    z = onp.array([0.7])
    for _ in range(200):
        z = onp.cos(1.0 * z)
    dz = grad(lambda a: al.fixed_point(lambda a, z: anp.cos(a * z), a, z)[0])(1.0)
    zs = float(z[0])
    assert dz == pytest.approx(-zs * onp.sin(zs) / (1 + onp.sin(zs)), rel=1e-9)
    with pytest.raises(al.NotStationaryError, match="z does not satisfy"):
        al.root(lambda a, z: z**3 + z - a, 2.0, onp.array([30.0]))
    with pytest.raises(al.SingularHessianError):
        al.root(lambda a, z: anp.array([z[0] - a, z[0] - a]), 1.0, onp.array([1.0, 1.0]))


# --- regressions from the hostile review ------------------------------------------------------


@pytest.mark.parametrize("solver", ["cg", "minres", "gmres"])
def test_negative_eigenvalue_hidden_in_a_wide_spectrum(solver):
    """One eigenvalue -1e-2 below 400 spread over [1, 1000]: 20 Lanczos steps do not see
    it; the certificate follows the lowest Ritz value until it settles."""
    n = 400
    rng = onp.random.default_rng(1)
    Q = onp.linalg.qr(rng.normal(size=(n, n)))[0]
    ev = onp.linspace(1.0, 1000.0, n)
    ev[0] = -1e-2
    A = Q @ onp.diag(ev) @ Q.T
    x = rng.normal(size=n)
    ys = onp.linalg.solve(A, x)

    def f(x, y):
        return 0.5 * y @ (A @ y) - x @ y

    with pytest.raises(al.CurvatureError, match="saddle point"):
        al.Unconstrained(f, ys, solver=solver).vjp(x, ys, onp.ones(n))
    with pytest.raises(al.CurvatureError, match="saddle point"):
        al.argmin(f, x, onp.zeros(n), solver=solver, forward=lambda f, x, y0: ys)


def test_tuple_of_traced_scalars_keeps_the_trace():
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


def test_activity_is_judged_per_constraint():
    """A large entry of y that a constraint does not involve does not make it active."""
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
    f = lambda x, y: 0.5 * anp.sum((y - x) ** 2) + 0.1 * anp.sum(y**4)  # noqa: E731
    c = lambda x, y: anp.array([y[0] - 0.5])  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            y = al.Barrier(f, c, 1e100, onp.zeros(2))(onp.array([1.0, 2.0]))
        except al.ArgminError:
            return
    assert y[0] < 0.5


def test_root_checks_a_symmetric_claim_and_its_inputs():
    A = onp.array([[2.0, 1, 0], [0, 3, 1], [1, 0, 4]])
    x = onp.ones(3)
    z = onp.linalg.solve(A, x)
    with pytest.raises(al.InputError, match="not symmetric"):
        al.root(lambda x, z: A @ z - x, x, z, symmetric=True, solver="dense")
    J = jacobian(lambda x: al.root(lambda x, z: A @ z - x, x, z, solver="dense"))(x)
    assert onp.allclose(J, onp.linalg.inv(A))
    with pytest.raises(al.InputError, match="tol"):
        al.root(lambda x, z: z**2 - x, 4.0, 2.0, tol=float("nan"))
    with pytest.raises(al.InputError, match="T\\(x, z\\) returned NoneType"):
        al.fixed_point(lambda a, z: None, 1.0, onp.array([0.7]))
    with pytest.raises(al.ShapeError, match="square system"):
        al.root(lambda x, z: anp.array([z[0] - x, z[0] + x]), 1.0, onp.array([1.0]))
    assert al.root(lambda x, z: [z[0] ** 2 - x], 4.0, onp.array([2.0]))[0] == pytest.approx(2.0)


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda: al.Certify(seed="a"), al.InputError),
        (lambda: al.Certify(seed=-1), al.InputError),
        (lambda: al.GMRES(restart=True), al.InputError),
        (lambda: al.NullSpace(rcond="a"), al.InputError),
        (lambda: al.argmin(_sq, 1.0, 0.0, forward="newton"), al.InputError),
        (lambda: al.argmin(lambda x, y: y.foo, 1.0, 0.0), al.InputError),
        (
            lambda: grad(
                lambda x: al.argmin(
                    _sq, x, 0.0, solver=lambda mv, b: onp.linalg.solve(onp.zeros((1, 1)), b)
                )
            )(1.0),
            al.LinearSolveError,
        ),
        (lambda: grad(lambda x: al.argmin(_sq, x, 0.0, solver=lambda b: b))(1.0), al.InputError),
        (
            lambda: grad(
                lambda x: anp.sum(
                    al.argmin(
                        _sq, x, onp.zeros(2), solver=al.MINRES(preconditioner=onp.diag([1.0, -1.0]))
                    )
                )
            )(onp.ones(2)),
            al.LinearSolveError,
        ),
        (
            lambda: al.argmin(
                _sq, onp.ones(2), onp.zeros(2), eq=lambda x, y: anp.array([onp.nan + y[0]])
            ),
            al.NonFiniteError,
        ),
    ],
)
def test_hostile_inputs_raise_argmin_errors(call, error):
    with pytest.raises(error):
        call()


# --- regressions from the second hostile review -----------------------------------------------


def _hidden(ev):
    def f(x, y):
        return 0.5 * anp.sum(ev * y * y) - anp.dot(x, y)

    return f


@pytest.mark.parametrize("solver", ["minres", user_solve])
def test_negative_eigenvalue_below_a_cluster(solver):
    """-0.5 below 120 eigenvalues at 1 and a spread to 1e4: the lowest Ritz value rests at
    the cluster for a while; the certificate runs as long as the Kuczynski-Wozniakowski
    bound asks, so it finds -0.5 (or says it could not certify): never the saddle."""
    rng = onp.random.default_rng(5)
    ev = onp.r_[-0.5, onp.ones(120), onp.linspace(2, 1e4, 279)][rng.permutation(400)]
    f = _hidden(ev)
    with pytest.raises((al.CurvatureError, al.UncertifiedError)):
        al.argmin(f, onp.ones(400), onp.zeros(400), solver=solver, forward=lambda f, x, y0: x / ev)


def test_unsettled_certificate_is_not_accepted():
    ev = onp.logspace(0, 4, 1000)  # definite, condition 1e4: 500 products are not enough
    f = _hidden(ev)
    with pytest.raises(al.UncertifiedError, match="could not be certified") as e:
        al.argmin(
            f, onp.ones(1000), onp.zeros(1000), solver="minres", forward=lambda f, x, y0: x / ev
        )
    need = int(str(e.value).split("about ")[1].split()[0])
    cfg = al.Certify(max_steps=need + 20)
    y = al.argmin(
        f,
        onp.ones(1000),
        onp.zeros(1000),
        solver="minres",
        certify=cfg,
        forward=lambda f, x, y0: x / ev,
    )
    assert onp.allclose(y, 1 / ev)
    ev[0] = -1e-3
    with pytest.raises((al.CurvatureError, al.UncertifiedError)):
        al.argmin(
            f, onp.ones(1000), onp.zeros(1000), solver="minres", forward=lambda f, x, y0: x / ev
        )


@pytest.mark.parametrize("solver", ["dense", "cg", "minres"])
def test_user_hessian_wrong_in_low_curvature_directions(solver):
    rng = onp.random.default_rng(0)
    U = onp.linalg.qr(rng.normal(size=(50, 50)))[0]
    X = U @ onp.diag(onp.r_[1.0, onp.full(49, 3e3)]) @ U.T
    t = rng.normal(size=50)

    def f(lam, y):
        return 0.5 * anp.sum((X @ y - t) ** 2) + 0.5 * lam * anp.sum(y**2)

    def loss(lam, hess):
        return anp.sum(al.argmin(f, lam, onp.zeros(50), hess=hess, solver=solver))

    with pytest.raises(al.HessianMismatchError):  # forgot the + lam I
        grad(lambda lam: loss(lam, lambda lam, y: X.T @ X))(1.0)
    g = grad(lambda lam: loss(lam, lambda lam, y: X.T @ X + lam * onp.eye(50)))(1.0)
    assert g == pytest.approx(grad(lambda lam: loss(lam, None))(1.0), rel=1e-7)


def test_second_review_small_findings():
    def g(p, y):
        return 0.5 * anp.sum((y - p[0]) ** 2) * p[1] + 0.1 * anp.sum(y**4)

    # an int leaf next to a traced one is read as a float
    ga = grad(lambda a: anp.sum(al.argmin(g, [a, 2], onp.zeros(2))))(onp.ones(2))
    gb = grad(lambda a: anp.sum(al.argmin(g, [a, 2.0], onp.zeros(2))))(onp.ones(2))
    assert onp.allclose(ga, gb)
    # fixed_point with lists; T returning None
    z = al.fixed_point(lambda a, z: [anp.cos(a * z[0])], 1.0, [0.7390851332151607])
    assert z[0] == pytest.approx(0.7390851332151607)
    with pytest.raises(al.InputError, match="NoneType"):
        al.fixed_point(lambda a, z: None, 1.0, [0.7])
    # a tangent of the wrong structure
    p = al.Unconstrained(g, onp.zeros(2))
    ys = p((onp.ones(2), 2.0))
    with pytest.raises(al.ShapeError, match="structure"):
        p.jvp([onp.ones(2), 2.0], ys, [onp.ones(3)])
    # the barrier parameter cannot be differentiated
    with pytest.raises(al.InputError, match="t is being differentiated"):
        grad(lambda t: al.Barrier(_sq, lambda x, y: y - 5.0, t, 0.0)(1.0))(10.0)


# --- third hostile review ----------------------------------------------------------------------


@pytest.mark.parametrize("solver", SOLVERS, ids=IDS)
@pytest.mark.parametrize("scale", [1e300, 1e-300, 1e-310])
def test_extreme_cotangents_scale_through_every_solver(solver, scale):
    """A cotangent of 1e300 overflowed the norms inside the solves and the adjoint check
    ("differs by nan"); one of 1e-300 had norm 0, so CG returned 0. The derivative is linear
    in the cotangent: each must come out scaled, exactly as for 1."""
    d = onp.linspace(1.0, 3.0, N)

    def f(x, y):
        return 0.5 * anp.sum(d * y**2) - anp.dot(x, y)

    x = onp.linspace(1.0, 2.0, N)
    for hp in (None, lambda x_, y_, v: d * v):
        g = grad(
            lambda x_: scale * anp.sum(al.argmin(f, x_, onp.zeros(N), solver=solver, hessp=hp))  # noqa: B023
        )(x)
        assert onp.all(onp.isfinite(g))
        assert g / scale == pytest.approx(1.0 / d, rel=1e-8)


@pytest.mark.parametrize("solver", ["cg", "minres", "gmres"])
def test_nan_second_derivative_is_a_nonfinite_error_with_krylov(solver):
    """|y - 2|^1.5 has an infinite second derivative at its kink: the Lanczos certificate
    passed NaN to scipy (a bare ValueError)."""

    def f(x, y):
        return 0.5 * anp.sum(y**2) - x * anp.sum(y) + anp.sum(anp.abs(y - 2.0) ** 1.5)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(al.NonFiniteError, match="NaN or inf products"):
            al.argmin(
                f, 2.0, onp.zeros(N), solver=solver, forward=lambda f_, x_, y0: onp.full(N, 2.0)
            )


def test_solver_options_are_validated_at_the_solution():
    """A callable preconditioner of the wrong size, and NullSpace's inner solver, were only
    checked at the first derivative (the plain value returned silently)."""
    with pytest.raises(al.ShapeError, match="preconditioner returned 3 values"):
        al.argmin(_sq, onp.ones(4), onp.zeros(4), solver=al.CG(preconditioner=lambda v: v[:3]))

    def eq(x, y):
        return anp.array([anp.sum(y) - 1.0])

    with pytest.raises(al.InputError, match="ilu"):
        al.argmin(
            _sq, onp.ones(4), onp.zeros(4), eq=eq, solver=al.NullSpace(al.CG(preconditioner="ilu"))
        )
    with pytest.raises(al.ShapeError, match="shape"):  # the reduced system is 3 x 3
        al.argmin(
            _sq,
            onp.ones(4),
            onp.zeros(4),
            eq=eq,
            solver=al.NullSpace(al.CG(preconditioner=onp.eye(4))),
        )
    y = al.argmin(
        _sq, onp.ones(4), onp.zeros(4), eq=eq, solver=al.NullSpace(al.CG(preconditioner=onp.eye(3)))
    )
    assert onp.sum(y) == pytest.approx(1.0)


# --- fourth hostile review ---------------------------------------------------------------------


def test_absolute_tolerance_keeps_its_meaning_under_scaling():
    """The right-hand side is scaled by a power of two before the solve; an absolute atol
    must be scaled with it, or a large cotangent is accepted with a residual far above
    atol (silently 1e-3 wrong)."""
    n = 200
    rng = onp.random.default_rng(1)
    Q = onp.linalg.qr(rng.standard_normal((n, n)))[0]
    H = Q @ onp.diag(onp.logspace(0, 3, n)) @ Q.T
    x = rng.standard_normal(n)
    u = 1e6 * rng.standard_normal(n)
    for cls, maxiter in ((al.CG, 95), (al.MINRES, 80)):
        sol = al.implicit.Solution(
            lambda x_, y: anp.dot(H, y) - x_,
            x,
            onp.linalg.solve(H, x),
            symmetric=True,
            sign=1,
            solver=cls(atol=1e-3, maxiter=maxiter),
            certify=False,
        )
        try:
            g = onp.asarray(sol.vjp(u))
        except al.LinearSolveError:
            continue  # refused: fine
        assert onp.linalg.norm(H @ g - u) <= 10 * max(1e-10 * onp.linalg.norm(u), 1e-3)


@pytest.mark.parametrize(
    "solver", ["dense", "cg", "lstsq", user_solve], ids=["dense", "cg", "lstsq", "user"]
)
def test_cotangent_above_two_to_the_1023(solver):
    """A cotangent >= 2^1023 made the scale itself inf (every solver raised)."""
    d = onp.linspace(2.0, 3.0, 10)

    def f(x, y):
        return 0.5 * anp.sum(d * y**2) - anp.dot(x, y)

    g = grad(lambda x: 1.7e308 * al.argmin(f, x, onp.zeros(10), solver=solver)[0])(onp.ones(10))
    assert g[0] == pytest.approx(1.7e308 / 2.0, rel=1e-8)


def test_lanczos_certifies_products_beyond_1e154():
    """Lanczos's norms overflowed for products above ~1e154 (finite products, infinite sum
    of squares): f x 1e200 raised NonFiniteError, not the derivative."""
    d = onp.linspace(1.0, 2.0, N)

    def f(x, y):
        return 1e200 * (0.5 * anp.sum(d * y**2) - anp.dot(x, y))

    g = grad(lambda x: anp.sum(al.argmin(f, x, onp.zeros(N), solver="cg")))(onp.ones(N))
    assert onp.allclose(g, 1.0 / d, rtol=1e-8)


def test_preconditioner_is_validated_on_a_residual_like_vector():
    """Validation called a user's preconditioner on a constant vector, which a valid
    preconditioner may refuse (its own assertion); and on a reduced system of size 0."""
    H = 2.1 * onp.eye(20) - onp.eye(20, k=1) - onp.eye(20, k=-1)

    def f(x, y):
        return 0.5 * anp.dot(y, anp.dot(H, y)) - anp.dot(x, y)

    def checked(v):
        assert not onp.allclose(v, v[0]), "a constant vector is not a residual"
        return onp.linalg.solve(H, v)

    x = onp.linspace(1.0, 2.0, 20)
    y = al.argmin(f, x, onp.zeros(20), solver=al.CG(preconditioner=checked))
    assert onp.allclose(H @ y, x)


def test_minimum_norm_solver_refuses_a_point_that_is_not_stationary():
    """With lstsq, a residual off the range of a singular Hessian (f unbounded below along
    a flat direction) gave a zero minimum-norm Newton step, and a 'derivative'."""
    d = _spectrum(0.0)
    H = _Q @ onp.diag(d) @ _Q.T
    b = onp.ones(N)
    y = onp.linalg.lstsq(H, b, rcond=None)[0]  # f_Y = H y - b has a null-space part

    def f(x, y_):
        return 0.5 * y_ @ H @ y_ - x * (b @ y_)

    with pytest.raises(al.ArgminError, match="not a solution|stationar"):
        al.argmin(f, 1.0, onp.zeros(N), solver="lstsq", forward=lambda f_, x_, y0: x_ * y)
    # in the range: a genuine (non-isolated) minimum, accepted, also with a correct hessp
    f2, y2 = quadratic(d, _Q[:, 3] + _Q[:, 9])
    for hp in (None, lambda x_, y_, v: H @ v):
        out = al.argmin(
            f2, 1.0, onp.zeros(N), solver="lstsq", hessp=hp, forward=lambda f_, x_, y0: x_ * y2
        )
        assert onp.allclose(out, y2)


@pytest.mark.parametrize("c", [1e-20, 1e300])
@pytest.mark.parametrize("solver", ["cg", "minres", "gmres", "sparse"])
def test_extreme_scales_of_f_through_krylov_and_sparse(c, solver):
    """scipy's MINRES/GMRES stopped early ("converged", or code 12) on an operator of scale
    1e-20 or 1e300 (now rerun on A / a); the sparse certificate's Rayleigh quotient
    underflowed (ZeroDivisionError) at f x 1e300."""
    d = onp.linspace(1.0, 3.0, N)
    x = onp.linspace(1.0, 2.0, N)

    def f(x_, y):
        return c * (0.5 * anp.sum(d * y**2) - anp.dot(x_, y))

    for hp in (None, lambda x_, y, v: c * d * v):
        kw = dict(hessp=hp, forward=lambda f_, xx, y0: xx / d)
        if solver == "sparse":
            kw["hess_sparsity"] = onp.eye(N)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            g = grad(
                lambda x_: anp.sum(anp.sin(al.argmin(f, x_, onp.zeros(N), solver=solver, **kw)))  # noqa: B023
            )(x)
        assert onp.allclose(g, onp.cos(x / d) / d, rtol=1e-7, atol=0)


@pytest.mark.parametrize("c", [1e4, 1e8, 1e300, 1e-20])
@pytest.mark.parametrize("solver", ["minres", "gmres"])
def test_kkt_systems_of_unbalanced_blocks_through_krylov(c, solver):
    """f x c against a constraint of scale 1: the KKT residual was dominated by the Hessian
    block, so MINRES/GMRES accepted unsolved constraint rows (derivatives wrong by 1e-4 at
    c = 1e4, by 1e3 at c = 1e10; hostile review). Both modes, eq= and ineq=."""
    d = onp.linspace(1.0, 3.0, N)
    x = onp.linspace(1.0, 2.0, N)

    def y_of(xx):
        lam = (onp.sum(xx / d) - 1) / onp.sum(1 / d)
        return (xx - lam) / d

    def f(x_, y):
        return c * (0.5 * anp.sum(d * y**2) - anp.dot(x_, y))

    D = onp.diag(1 / d) - onp.outer(1 / d, 1 / d) / onp.sum(1 / d)  # dy/dx
    y0 = y_of(x)
    for kw in (dict(eq=lambda x_, y: anp.array([anp.sum(y) - 1.0])),):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            prob = al.problem_for(
                f, onp.zeros(N), solver=solver, forward=lambda f_, xx, yy: y_of(xx), **kw
            )
            g = prob.vjp(x, y0, onp.cos(y0))
            t = prob.jvp(x, y0, onp.sin(x))
        assert onp.allclose(g, D.T @ onp.cos(y0), rtol=1e-6, atol=0)
        assert onp.allclose(t, D @ onp.sin(x), rtol=1e-6, atol=1e-12 * onp.max(abs(D @ onp.sin(x))))


def test_minimum_norm_refuses_a_gradient_along_a_flat_direction_of_a_stiff_problem():
    """Curvatures 1e8 and 0 with gradient 1 along the flat direction: the unexplained
    residual was divided by the largest eigenvalue, so lstsq accepted it (hostile review)."""

    def f(x, y):
        return 0.5e8 * (y[0] - x) ** 2 + 1.0 * y[1]

    with pytest.raises(al.ArgminError, match="not a solution|stationar"):
        al.argmin(
            f, 1.0, onp.zeros(2), solver="lstsq", forward=lambda f_, x_, y0: onp.array([x_, 0.0])
        )


def test_nullspace_inner_atol_is_absolute():
    """NullSpace's inner solver kept its atol for the right-hand side divided by the
    outer scale (hostile review): the KKT residual then exceeded atol by 1e6."""
    n, p = 200, 3
    rng = onp.random.default_rng(1)
    Q = onp.linalg.qr(rng.standard_normal((n, n)))[0]
    H = Q @ onp.diag(onp.logspace(0, 3, n)) @ Q.T
    b = onp.concatenate([1e6 * rng.standard_normal(n), onp.zeros(p)])
    J = rng.standard_normal((p, n))
    K = onp.block([[H, J.T], [J, onp.zeros((p, p))]])
    system = al.LinearSystem(n + p, lambda v: K @ v, symmetric=True, sign=1, kkt_rows=p, name="KKT")
    solver = al.NullSpace(inner=al.CG(rtol=1e-12, atol=1e-5, maxiter=150, preconditioner=None))
    try:
        w, _ = solver(system, b)
    except al.LinearSolveError:
        return  # refused: fine
    assert onp.linalg.norm(K @ w - b) <= 10 * max(1e-12 * onp.linalg.norm(b), 1e-5)


@pytest.mark.parametrize("c", [1e-12, 1e-16, 1e-20])
def test_lstsq_with_constraints_and_a_tiny_objective(c):
    """lstsq's pseudo-inverse cut the Hessian block of a KKT matrix off relative to the
    constraint block: f x 1e-16 gave a zero derivative (hostile review); balanced now."""

    def f(x_, y):
        return c * ((y[0] + y[1] - x_) ** 2 + y[2] ** 2)

    J = jacobian(
        lambda x_: al.argmin(
            f,
            x_,
            onp.zeros(3),
            eq=lambda a, b: anp.array([b[0] - b[1]]),
            solver="lstsq",
            forward=lambda f_, xx, y0: onp.array([xx / 2, xx / 2, 0.0]),
        )
    )(1.3)
    assert onp.allclose(J, [0.5, 0.5, 0.0], atol=1e-10)


@pytest.mark.parametrize("c", [1e-200, 1e155])
@pytest.mark.parametrize("solver", ["minres", "gmres"])
def test_balanced_kkt_right_hand_side_is_normalised(c, solver):
    """Balancing formed D b after b's normalisation: with b only in the constraint rows its
    norm underflowed (a zero derivative, 'converged') or overflowed (hostile review)."""

    def f(x_, y):
        return c * 0.5 * anp.sum(y**2)

    def F(x_):
        return al.argmin(
            f,
            x_,
            onp.zeros(4),
            eq=lambda a, y: anp.array([anp.sum(y) - a]),
            solver=solver,
            forward=lambda f_, a, y0: onp.full(4, a / 4),
        )

    assert onp.allclose(make_jvp(F)(1.0)(1.0)[1], 0.25, rtol=1e-8)


@pytest.mark.parametrize("solver", ["minres", "gmres"])
def test_constraints_in_different_units(solver):
    """Two constraints scaled by 1e-3 and 1e3: one balancing factor for both shrank the small
    one further (MINRES 2.5e-4 wrong; hostile review); one factor per row now."""
    n = 8
    rng = onp.random.default_rng(0)
    d = onp.linspace(1.0, 3.0, n)
    A1, A2 = rng.standard_normal(n), rng.standard_normal(n)
    x = onp.concatenate([onp.linspace(1.0, 2.0, n), [0.3, 0.6]])
    A = onp.stack([A1, A2])
    K = onp.block([[onp.diag(d), A.T], [A, onp.zeros((2, 2))]])
    ys, J = onp.linalg.solve(K, x)[:n], onp.linalg.inv(K)[:n, :]

    def f(x_, y):
        return 0.5 * anp.sum(d * y**2) - anp.dot(x_[:n], y)

    def eq(x_, y):
        return anp.array([1e-3 * (anp.dot(A1, y) - x_[n]), 1e3 * (anp.dot(A2, y) - x_[n + 1])])

    prob = al.problem_for(f, onp.zeros(n), eq=eq, solver=solver, forward=lambda f_, xx, yy: ys)
    assert onp.allclose(prob.jacobian(x, ys), J, rtol=1e-8, atol=1e-10)


def test_solve_check_allows_the_rounding_of_an_ill_conditioned_product():
    """lstsq, a correct hessp, condition 3e10 accepted by Certify(rcond=1e-12): the check
    of each solve raised HessianMismatchError (1.5e-6) on rounding alone (hostile review)."""
    n = 10
    for seed in range(3):
        rng = onp.random.default_rng(seed)
        Q = onp.linalg.qr(rng.standard_normal((n, n)))[0]
        dd = onp.logspace(0, -onp.log10(3e10), n)
        H = 0.5 * ((Q * dd) @ Q.T + ((Q * dd) @ Q.T).T)

        def f(x_, y, H=H):
            return 0.5 * anp.dot(y, anp.dot(H, y)) - anp.dot(x_, y)

        x = H @ rng.standard_normal(n)
        ys = onp.linalg.pinv(H, rcond=1e-14) @ x
        sol = al.Unconstrained(
            f,
            onp.zeros(n),
            solver="lstsq",
            certify=al.Certify(rcond=1e-12),
            hessp=lambda a, b, v, dd=dd, Q=Q: Q @ (dd * (Q.T @ v)),
        ).at(x, ys)
        g = sol.vjp(Q[:, -1])
        assert onp.allclose(g, onp.linalg.pinv(H, rcond=1e-14) @ Q[:, -1], rtol=1e-5)


# --- a small residual is not an accurate derivative (session 4) --------------------------------


def _stiff(cond, n=20):
    """``f = 1/2 y^T H y - x^T y`` with eigenvalues from 1 down to ``1/cond``; returns
    ``(f, hess, Q, H^-1)`` (``Q``: the eigenvectors, highest curvature first)."""
    Q = onp.linalg.qr(onp.random.default_rng(1).standard_normal((n, n)))[0]
    H = (Q * onp.logspace(0, -onp.log10(cond), n)) @ Q.T
    H = 0.5 * (H + H.T)
    return (lambda x, y: 0.5 * anp.dot(y, anp.dot(H, y)) - anp.dot(x, y)), (lambda x, y: H), Q, H


@pytest.mark.parametrize(
    "solver, cond, kw",
    [
        (al.CG(rtol=1e-4), 1e8, "hess"),  # Jacobi-preconditioned (the exact diagonal)
        (al.CG(rtol=1e-4), 1e4, "hess"),
        (al.MINRES(rtol=1e-4), 1e6, "hess"),
        (al.MINRES(rtol=1e-4), 1e4, None),
    ],
)
def test_krylov_residual_within_rtol_is_not_enough_at_a_high_condition(solver, cond, kw):
    """A residual of 1e-4 ||b|| leaves ``w`` wrong by up to ``1e-4 * condition``: a cotangent
    along the stiffest direction gave a VJP 80% wrong (CG, condition 1e8) or 40% (MINRES,
    condition 1e4), with the residual within rtol. The certified smallest curvature bounds
    the error (``SolveInfo.error``); the solve is tightened until the bound is within
    ``10 rtol`` (or ``1e-6``)."""
    f, hess, Q, H = _stiff(cond)
    x = onp.random.default_rng(2).standard_normal(20)
    opts = dict(hess=hess) if kw else {}
    sol = al.Unconstrained(f, onp.zeros(20), solver=solver, certify=al.Certify(rcond=1e-12), **opts)
    sol = sol.at(x, onp.linalg.solve(H, x))
    u = Q[:, 0]
    g = sol.vjp(u)
    want = onp.linalg.solve(H, u)
    assert onp.linalg.norm(g - want) <= 1e-3 * onp.linalg.norm(want)
    info = sol.info()
    assert info.error is not None and info.error <= 10 * solver.rtol
    assert onp.linalg.norm(sol.jvp(u) - want) <= 1e-3 * onp.linalg.norm(want)


def test_krylov_accepts_a_stalled_residual_when_the_error_is_certified():
    """Default CG at condition 1e8 stalled at a residual of 7e-9 > 1e-9 and raised
    LinearSolveError, though the solution was accurate to 1e-9 (the cotangent along the
    flattest direction): the error bound certifies it; the answer is right."""
    f, hess, Q, H = _stiff(1e8)
    x = onp.random.default_rng(2).standard_normal(20)
    for opts in ({"hess": hess}, {}):
        cert = al.Certify(rcond=1e-12)
        sol = al.Unconstrained(f, onp.zeros(20), solver="cg", certify=cert, **opts)
        sol = sol.at(x, onp.linalg.solve(H, x))
        for u in (Q[:, -1], onp.random.default_rng(3).standard_normal(20)):
            want = onp.linalg.solve(H, u)
            assert onp.linalg.norm(sol.vjp(u) - want) <= 1e-5 * onp.linalg.norm(want)
        assert sol.info().error <= 1e-6


def test_krylov_error_that_cannot_be_certified_raises():
    """With maxiter too small for the tightened residual, the solve raises and says why,
    instead of returning the derivative its rtol-level residual allowed (40% wrong)."""
    f, hess, Q, H = _stiff(1e4)
    x = onp.random.default_rng(2).standard_normal(20)
    solver = al.CG(rtol=1e-4, maxiter=12)
    sol = al.Unconstrained(f, onp.zeros(20), solver=solver, hess=hess).at(x, onp.linalg.solve(H, x))
    with pytest.raises(al.LinearSolveError, match="cannot be certified"):
        sol.vjp(Q[:, 0])


@pytest.mark.parametrize("solver", ["dense", "lu", "lstsq", "minres", "gmres", "nullspace"])
@pytest.mark.parametrize("units", [1e6, 1e100])
@pytest.mark.parametrize("kind", ["eq", "ineq"])
def test_constraints_in_units_far_apart_are_independent(solver, units, kind):
    """Constraints scaled by 1e6 and 1e-6 in one problem were refused as rank-deficient
    (ConstraintError from the forward solve's multipliers, SingularHessianError from the
    certificate): the rank tests compared singular values across rows. They now normalise
    each row first (the rank and the null space do not depend on each row's units): the
    Jacobian is that of the same problem in balanced units, equality and inequality
    (``A y >= b``, both active)."""
    n = 5
    x = onp.linspace(0.1, 0.5, n)
    A = onp.array([[1.0, 1.0, 0, 0, 0], [0, 0, 1.0, -1.0, 0.0]])
    b = onp.array([1.0, 0.0])

    def f(x_, y):
        return 0.5 * anp.sum((y - x_) ** 2) + 0.1 * anp.sum(y**4)

    def jac(scale):
        def c(x_, y):
            return scale * (b - anp.dot(A, y))

        opts = {kind: c}
        return jacobian(lambda x_: al.argmin(f, x_, onp.zeros(n), solver=solver, **opts))(x)

    J = jac(onp.array([units, 1.0 / units]))
    assert onp.allclose(J, jac(onp.ones(2)), rtol=1e-8, atol=1e-10)
    assert onp.all(onp.isfinite(J)) and onp.abs(J).max() > 0.1


# --- fifth hostile review -----------------------------------------------------------------------


@pytest.mark.parametrize("solver", ["minres", "gmres", "cg"])
def test_krylov_rounding_allowance_is_that_of_a_dense_solve(solver):
    """At condition 9.9e9 (accepted by the default certificate) a Krylov solve was accepted
    with an error bound up to 1e3 eps cond = 2e-3: MINRES's gradient was 7.7e-4 wrong,
    against 4e-8 for a dense solve. The allowance is now 10 eps cond: right, or raises."""
    n = 20
    Q = onp.linalg.qr(onp.random.default_rng(1).standard_normal((n, n)))[0]
    d = onp.logspace(0, onp.log10(9.9e9), n)
    H = (Q * d) @ Q.T
    H = 0.5 * (H + H.T)
    u = Q[:, -1] + 1e-8 * Q[:, 0]  # stiff, with a whisker of the flattest direction

    def f(x, y):
        return 0.5 * anp.dot(y, anp.dot(H, y)) - anp.dot(x, y)

    x = onp.linspace(1.0, 2.0, n)
    want = onp.linalg.solve(H, u)
    try:
        g = grad(lambda x_: anp.dot(u, al.argmin(f, x_, onp.zeros(n), solver=solver)))(x)
    except al.LinearSolveError:
        return
    assert onp.linalg.norm(g - want) <= 1e-5 * onp.linalg.norm(want)


@pytest.mark.parametrize("solver", ["dense", "lstsq", "minres", "gmres", "nullspace"])
@pytest.mark.parametrize("s, t", [(1e-6, 1e-9), (1e-100, 1e-8), (1.0, 1e-7), (1.0, 1e-4)])
def test_nearly_dependent_constraints_raise_or_are_right(solver, s, t):
    """Constraints ``y0 = x0`` and ``s (y0 + t y1 - x1) = 0`` (rows at angle ``t``): the KKT
    matrix's condition grows as 1/t^2, and dense, lstsq and MINRES returned Jacobians 11% to
    100% wrong without a word once the rank test accepted the rows. Now the whole-KKT
    solvers raise IllConditionedError below sqrt(rcond); NullSpace, which works on the null
    space, is right; at t = 1e-4 every solver is right."""
    n = 4

    def f(x, y):
        return 0.5 * anp.sum(y**2)

    def eq(x, y):
        return anp.array([y[0] - x[0], s * (y[0] + t * y[1] - x[1])])

    x = onp.array([0.3, 0.3 + 0.7 * t])
    want = onp.zeros((n, 2))
    want[0, 0], want[1] = 1.0, [-1 / t, 1 / t]
    call = lambda: jacobian(lambda x_: al.argmin(f, x_, onp.zeros(n), eq=eq, solver=solver))(x)  # noqa: E731
    if t < 1e-5 and solver != "nullspace":
        with pytest.raises(al.IllConditionedError, match="nearly dependent"):
            call()
        return
    J = call()
    assert onp.abs(J - want).max() <= 1e-6 * onp.abs(want).max()


@pytest.mark.parametrize(
    "solver",
    [al.MINRES(rtol=1e-4), al.GMRES(rtol=1e-4), al.MINRES(), al.NullSpace(al.CG(rtol=1e-4))],
    ids=["minres-1e-4", "gmres-1e-4", "minres", "nullspace-cg-1e-4"],
)
def test_krylov_with_constraints_bounds_its_error(solver):
    """Krylov solves with rtol=1e-4 on a constrained problem whose reduced Hessian has
    condition 1e7 gave VJPs 90% wrong with the residual within rtol: NullSpace's inner CG
    now gets the certificate's bound on the reduced Hessian and is tightened like a plain
    CG; MINRES/GMRES on the whole KKT matrix (no certificate of its smallest singular
    value) bound the error through the null-space decomposition (the reduced Hessian's
    certified curvature, the constraints' SVD and ``||P H V||``)."""
    n = 20
    rng = onp.random.default_rng(1)
    Q = onp.linalg.qr(rng.standard_normal((n, n)))[0]
    H = (Q * onp.logspace(0, -7, n)) @ Q.T
    H = (H + H.T) / 2
    A = rng.standard_normal((2, n))

    def f(x, y):
        return 0.5 * anp.dot(y, anp.dot(H, y)) - anp.dot(x, y)

    x = rng.standard_normal(n)
    K = onp.block([[H, A.T], [A, onp.zeros((2, 2))]])
    ys = onp.linalg.solve(K, onp.concatenate([x, onp.zeros(2)]))[:n]
    J = onp.linalg.inv(K)[:n, :n]
    prob = al.problem_for(
        f, onp.zeros(n), eq=al.linear_constraint(A), solver=solver, forward=lambda *a: ys
    )
    for u in (Q[:, 0], Q[:, 1], Q[:, 2], rng.standard_normal(n)):
        want = J.T @ u
        assert onp.linalg.norm(prob.vjp(x, ys, u) - want) <= 1e-3 * onp.linalg.norm(want)
    info = prob.at(x, ys).info()
    assert info.error is None or info.error <= 1e-3


# --- sixth hostile review: the KKT error bound ------------------------------------------------


def _kkt_qp(H, A, s=1.0, fixed=False):
    """``f = s (1/2 y^T H y - x_y^T y)`` subject to ``A y = x_c`` (``fixed``: ``A y = 0``,
    the constraint independent of ``x``, so that the VJP is ``f_YX^T`` times the primal part
    of the adjoint alone); returns ``(problem factory, x, y*, dy/dx)``, ``x = (x_y, x_c)``."""
    n, p = H.shape[0], A.shape[0]
    K = onp.block([[H, A.T], [A, onp.zeros((p, p))]])
    x = onp.random.default_rng(5).standard_normal(n + p)
    if fixed:
        x[n:] = 0.0
    ys = onp.linalg.solve(K, x)[:n]
    dydx = onp.linalg.inv(K)[:n]
    if fixed:
        dydx[:, n:] = 0.0

    def f(x_, y):
        return s * (0.5 * anp.dot(y, anp.dot(H, y)) - anp.dot(x_[:n], y))

    def eq(x_, y):
        return anp.dot(A, y) - (0.0 if fixed else x_[n:])

    def problem(solver):
        return al.problem_for(f, onp.zeros(n), eq=eq, solver=solver, forward=lambda *a: ys)

    return problem, x, ys, dydx


@pytest.mark.parametrize("s", [1.0, 1e-200])
@pytest.mark.parametrize(
    "solver", [al.MINRES(rtol=1e-4), al.GMRES(rtol=1e-4)], ids=["minres", "gmres"]
)
def test_kkt_error_bound_survives_extreme_scales(solver, s):
    """f x 1e-200: the bound's norms squared entries below 1e-154 to zero, the bound was
    not finite and the solve was accepted as if there were none (100% wrong VJPs). Norms
    are now taken without underflow, and a bound that cannot be computed never accepts."""
    n, p = 12, 2
    A = onp.zeros((p, n))
    A[0, 0] = A[1, 1] = 1.0
    H = onp.diag(onp.concatenate([[3.0, 5.0], onp.logspace(0, 8, n - p)]))
    H[0, 5] = H[5, 0] = 0.3
    problem, x, ys, dydx = _kkt_qp(H, A, s)
    u = onp.zeros(n)
    u[-1], u[2] = 1.0, 1e-6
    want = dydx.T @ u
    try:
        g = problem(solver).vjp(x, ys, u)
    except al.LinearSolveError:
        return
    assert onp.linalg.norm(g - want) <= 1e-3 * onp.linalg.norm(want)


@pytest.mark.parametrize("c", [1.0, 1e-3, 1e-6])
def test_kkt_error_bound_judges_each_part_of_the_solution(c):
    """f without curvature along the constraint's row (H V = 0) and the constraint in small
    units: the multipliers dominated the norm the bound was relative to, and MINRES(1e-4)
    returned VJPs 10-100% wrong in the primal part with a bound of 1e-7. Each part is now
    judged against its own norm."""
    n = 200
    Qn = onp.linalg.qr(onp.random.default_rng(0).standard_normal((n - 1, n - 1)))[0]
    H = onp.zeros((n, n))
    H[1:, 1:] = (Qn * onp.logspace(-4, 0, n - 1)) @ Qn.T
    H = 0.5 * (H + H.T)
    A = c * onp.eye(n)[:1]
    problem, x, ys, dydx = _kkt_qp(H, A, fixed=True)
    u = onp.zeros(n)
    u[0], u[1:] = 1.0, Qn[:, -1] + 1e-5 * Qn[:, 0]
    want = dydx.T @ u
    try:
        g = problem(al.MINRES(rtol=1e-4)).vjp(x, ys, u)
    except al.LinearSolveError:
        return
    assert onp.linalg.norm(g - want) <= 1e-3 * onp.linalg.norm(want)


@pytest.mark.parametrize("solver", ["lstsq", "minres", "gmres", "nullspace", "dense"])
@pytest.mark.parametrize("s, units", [(1e-150, 1e150), (1e-150, 1e175), (1e-30, 1e300)])
def test_constraint_rows_in_units_beyond_the_objective_raise_or_are_right(solver, s, units):
    """f x 1e-150 against a constraint row in units of 1e175: the row balancing's h / |J_i|
    underflowed and raised OverflowError (not an ArgminError); at 1e150 the Newton step's
    multiplier part (about 1e-450) underflowed and the balanced error bound refused the
    acceptance test. Now: right, or an ArgminError."""
    rng = onp.random.default_rng(7)
    n, p = 10, 2
    Q = onp.linalg.qr(rng.standard_normal((n, n)))[0]
    H = (Q * onp.logspace(0, 1, n)) @ Q.T
    A, C, B = rng.standard_normal((p, n)), rng.standard_normal((n, 2)), rng.standard_normal((p, 2))
    D = onp.array([units, 1.0])
    K = onp.block([[H, A.T], [A, onp.zeros((p, p))]])
    dydx = onp.linalg.solve(K, onp.vstack([C, B]))[:n]
    x, u = rng.standard_normal(2), rng.standard_normal(n)
    ys = onp.linalg.solve(K, onp.concatenate([C @ x, B @ x]))[:n]

    def f(x_, y):
        return s * (0.5 * anp.dot(y, anp.dot(H, y)) - anp.dot(anp.dot(C, x_), y))

    def eq(x_, y):
        return D * (anp.dot(A, y) - anp.dot(B, x_))

    prob = al.problem_for(f, onp.zeros(n), eq=eq, solver=solver, forward=lambda *a: ys)
    try:
        g = prob.vjp(x, ys, u)
    except al.ArgminError:
        assert units > 1e150  # 1e-150 against 1e150 is within the range: no excuse
        return
    want = dydx.T @ u
    assert onp.linalg.norm(g - want) <= 1e-8 * onp.linalg.norm(want)


def test_kkt_error_bound_of_a_zero_iterate():
    """A Krylov run that never moved (w = 0) on a certified KKT system: the bound divided by
    a zero norm and raised ZeroDivisionError; it is infinite unless the residual is zero."""
    from argminlib.linsolve import _kkt_error_bound

    n, p = 6, 2
    rng = onp.random.default_rng(0)
    A = rng.standard_normal((p, n))
    K = onp.block([[onp.eye(n), A.T], [A, onp.zeros((p, p))]])
    system = al.LinearSystem(n + p, lambda v: K @ v, symmetric=True, sign=1, kkt_rows=p)
    al.certify.certify(system, +1, al.Certify())  # the constraints' SVD
    system.certify_curvature(1.0, 1.0)
    b = rng.standard_normal(n + p)
    assert _kkt_error_bound(system, onp.zeros(n + p), b) == onp.inf
    assert _kkt_error_bound(system, onp.zeros(n + p), onp.zeros(n + p)) == 0.0
    w = onp.linalg.solve(K, b)
    assert _kkt_error_bound(system, w, b) < 1e-12


@pytest.mark.parametrize("solver", ["dense", "minres", "gmres"])
@pytest.mark.parametrize("delta", [1e-4, 0.1, 1.0])
def test_wrong_multipliers_from_a_forward_solver_do_not_enter_the_derivative(solver, delta):
    """A forward solver returning (y, nu + delta) with y exact on a sphere constraint: the
    Newton step of the KKT system was (0, -delta), of zero primal size, so the acceptance
    test stopped at once and the derivative used the wrong multiplier in the Hessian of the
    Lagrangian (dense 40% wrong at delta = 1, silently); MINRES/GMRES refused the step
    (their error bound on a primal part of rounding size). The multipliers are now those of
    least squares at y."""
    n = 30
    c = onp.linspace(1.0, 2.0, n)

    def f(x, y):
        return 0.5 * anp.sum(c * (y - x[1:]) ** 2)

    def eq(x, y):
        return anp.array([anp.sum(y**2) - 1.0 - x[0] ** 2])

    x = onp.concatenate([[0.5], onp.linspace(0.1, 0.4, n)])
    y_true = al.argmin(f, x, onp.ones(n) / onp.sqrt(n), eq=eq, solver="dense")
    g = onp.asarray(grad(lambda y_: f(x, y_))(y_true))
    nu_true = -(g @ y_true) / (2 * y_true @ y_true)  # f_Y + nu * 2 y = 0

    def forward(f_, x_, y0):
        return onp.asarray(y_true), onp.array([nu_true + delta])

    y0 = onp.ones(n) / onp.sqrt(n)
    want = jacobian(lambda x_: al.argmin(f, x_, y0, eq=eq, solver="dense"))(x)
    J = jacobian(lambda x_: al.argmin(f, x_, y_true, eq=eq, solver=solver, forward=forward))(x)
    assert onp.abs(J - want).max() <= 1e-7 * onp.abs(want).max()
