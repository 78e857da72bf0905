"""Equality constraints: Lemma 4.1, the null-space form, x-dependent A and b, nonlinear h,
every solver and mode, the primitive, and the bad inputs."""

import autograd.numpy as anp
import numpy as onp
import pytest
from autograd import grad, jacobian, make_jvp
from conftest import SOLVER_IDS, SOLVERS

import argminlib as al


def problem(seed=0, n=5, m=3, p=2):
    rng = onp.random.default_rng(seed)
    G = rng.normal(size=(n, n))
    Q = G @ G.T + onp.eye(n)
    C = rng.normal(size=(n, m))
    A = rng.normal(size=(p, n))
    b = rng.normal(size=p)

    def f(x, y):
        return 0.5 * y @ Q @ y - (C @ x) @ y + 0.1 * anp.sum(y**4)

    return f, A, b, rng.normal(size=m), n


def solve_map(f, h, n, **kw):
    return lambda x: al.Equality(f, h, onp.zeros(n), **kw)(x)


def test_lemma_4_1_equals_nullspace_form_and_fd():
    f, A, b, x, n = problem()
    h = al.linear_constraint(A, b)
    y = solve_map(f, h, n)(x)
    assert onp.allclose(A @ y, b, atol=1e-12)
    J_fd = al.fd_jacobian(solve_map(f, h, n), x)
    J41 = al.lemma_4_1(f, x, y, A, b)
    Jns = al.nullspace_form(f, x, y, A, b)
    assert al.max_error(J41, Jns) < 1e-12
    assert al.max_error(J41, J_fd) < 1e-8
    assert onp.allclose(A @ J41, 0, atol=1e-12)  # the derivative stays on the constraint


def test_lemma_4_1_paper_formula_literally():
    f, A, b, x, n = problem(seed=1)
    y = solve_map(f, al.linear_constraint(A, b), n)(x)
    H, B = al.f_YY(f, x, y), al.f_XY(f, x, y)
    Hi = onp.linalg.inv(H)
    paper = (Hi @ A.T @ onp.linalg.inv(A @ Hi @ A.T) @ A @ Hi - Hi) @ B
    assert al.max_error(al.lemma_4_1(f, x, y, A, b), paper) < 1e-12


def test_x_dependent_A_and_b_extra_terms():
    f, A, b, x, n = problem(seed=2)

    def Ax(x):
        return (
            A
            + 0.2 * x[0] * anp.eye(A.shape[0], n)
            + 0.1 * anp.outer(anp.ones(2), x[1] * anp.ones(n))
        )

    def bx(x):
        return b + 0.3 * x[:2]

    h = al.linear_constraint(Ax, bx)
    y = solve_map(f, h, n)(x)
    J_fd = al.fd_jacobian(solve_map(f, h, n), x)
    assert al.max_error(al.lemma_4_1(f, x, y, Ax, bx), J_fd) < 1e-8
    assert al.max_error(al.nullspace_form(f, x, y, Ax, bx), J_fd) < 1e-8
    # dropping the extra terms gives a different (wrong) answer: the test can fail
    assert al.max_error(al.lemma_4_1(f, x, y, Ax(x), bx(x)), J_fd) > 1e-3


@pytest.mark.parametrize(
    "solver", ["dense", "lu", "minres", "gmres", "nullspace", al.NullSpace("minres")]
)
def test_every_solver_jacobian_jvp_vjp(solver):
    f, A, b, x, n = problem(seed=3)
    h = al.linear_constraint(A, b)
    y = solve_map(f, h, n)(x)
    J = al.lemma_4_1(f, x, y, A, b)
    P = al.Equality(f, h, y, solver=solver)
    assert al.max_error(P.jacobian(x, y), J) < 1e-8
    v, u = onp.arange(3.0), onp.arange(5.0)
    assert al.max_error(P.jvp(x, y, v), J @ v) < 1e-8
    assert al.max_error(P.vjp(x, y, u), u @ J) < 1e-8


def test_cg_refuses_the_indefinite_kkt_matrix():
    f, A, b, x, n = problem(seed=3)
    h = al.linear_constraint(A, b)
    y = solve_map(f, h, n)(x)
    with pytest.raises(
        ValueError, match="indefinite by construction; use solver='dense', 'minres'"
    ):
        al.Equality(f, h, y, solver="cg").jacobian(x, y)


def test_nonlinear_equality_through_primitive():
    f, _, _, x, n = problem(seed=4)

    def h(x, y):
        return anp.array([anp.sum(y**2) - 1.0 - 0.1 * x[0] ** 2, y[0] - y[1] + 0.2 * x[2]])

    sol = lambda x: al.Equality(f, h, onp.full(n, 0.3))(x)  # noqa: E731
    J_fd = al.fd_jacobian(sol, x)
    assert al.max_error(jacobian(sol)(x), J_fd) < 1e-8
    y = sol(x)
    for solver in ["minres", "nullspace"]:
        assert al.max_error(al.Equality(f, h, y, solver=solver).jacobian(x, y), J_fd) < 1e-8
    loss = lambda x: anp.sum(anp.sin(sol(x)))  # noqa: E731
    assert al.max_error(grad(loss)(x), al.fd_grad(loss, x)) < 1e-8
    _, jv = make_jvp(sol)(x)(onp.ones(3))
    assert al.max_error(jv, J_fd @ onp.ones(3)) < 1e-8


def test_multipliers_from_forward_solver_or_least_squares():
    f, A, b, x, n = problem(seed=5)
    h = al.linear_constraint(A, b)
    y = solve_map(f, h, n)(x)
    nu = al.multipliers(f, h, x, y)
    assert onp.allclose(al.f_Y(f, x, y) + A.T @ nu, 0, atol=1e-10)
    given = al.Equality(f, h, onp.zeros(n), forward=lambda f, x, y0: (y, nu))
    assert onp.allclose(jacobian(given)(x), al.lemma_4_1(f, x, y, A, b), atol=1e-8)


def test_argmax_with_equality():
    f, A, b, x, n = problem(seed=6)
    g = lambda x, y: -f(x, y)  # noqa: E731
    h = al.linear_constraint(A, b)
    y = al.Equality(g, h, onp.zeros(n), mode="max")(x)
    assert (
        al.max_error(al.Equality(g, h, y, mode="max").jacobian(x, y), al.lemma_4_1(f, x, y, A, b))
        < 1e-10
    )
    with pytest.raises(
        al.CurvatureError,
        match="local maximum, not a minimum: every eigenvalue of the KKT matrix on the null space",
    ):
        al.Equality(g, h, y).jacobian(x, y)


# --- bad input ------------------------------------------------------------------------------


def test_rank_deficient_A_names_rank():
    f, A, b, x, n = problem(seed=7)
    A2 = onp.vstack([A, A[0]])
    b2 = onp.append(b, b[0])
    y = solve_map(f, al.linear_constraint(A, b), n)(x)
    with pytest.raises(al.ConstraintError, match="rank 2 but 3 rows"):
        al.lemma_4_1(f, x, y, A2, b2)


def test_infeasible_y_reports_residual():
    f, A, b, x, n = problem(seed=8)
    y = solve_map(f, al.linear_constraint(A, b), n)(x)
    with pytest.raises(
        al.ConstraintError,
        match=r"violates the equality constraints: h_0\(x, y\) = -1.000e-02, a distance of 4.0",
    ):
        al.Equality(f, al.linear_constraint(A, b + onp.array([0.01, 0])), y).jacobian(x, y)


def test_not_stationary_on_the_constraint():
    f, A, b, x, n = problem(seed=9)
    h = al.linear_constraint(A, b)
    y = solve_map(f, h, n)(x)
    F = onp.linalg.svd(A)[2][2:].T  # a direction along the constraint
    with pytest.raises(al.NotStationaryError, match="KKT"):
        al.Equality(f, h, y).jacobian(x, y + 1e-3 * F[:, 0])


def test_singular_kkt_matrix():
    f = lambda x, y: (y[0] - x) ** 2  # noqa: E731   flat in y[1] and not fixed by A
    A = onp.array([[1.0, 0.0]])
    h = al.linear_constraint(A, onp.array([2.0]))
    with pytest.raises(
        al.SingularHessianError,
        match="KKT matrix on the null space.* is singular: eigenvalue 0.000e\\+00 \\(it is zero",
    ):
        al.Equality(f, h, onp.array([2.0, 0.0])).jacobian(1.0, onp.array([2.0, 0.0]))


def test_inconsistent_constraints_are_infeasible():
    f, A, b, x, n = problem(seed=10)
    A2, b2 = onp.vstack([A, A[0]]), onp.append(b, b[0] + 1.0)
    with pytest.raises(al.InfeasibleError, match="infeasible|no feasible"):
        solve_map(f, al.linear_constraint(A2, b2), n)(x)


def test_argmin_and_argmax_accept_constraints():
    f, A, b, x, n = problem(seed=11)
    h = al.linear_constraint(A, b)
    y = al.argmin(f, x, onp.zeros(n), eq=h)
    assert onp.allclose(A @ y, b, atol=1e-12)
    J = jacobian(lambda x: al.argmin(f, x, onp.zeros(n), eq=h, solver="minres"))(x)
    assert al.max_error(J, al.lemma_4_1(f, x, y, A, b)) < 1e-8
    c = lambda x, y: y - 0.2  # noqa: E731
    g = lambda x: al.argmax(lambda x, y: -f(x, y), x, onp.zeros(n), eq=h, ineq=c)  # noqa: E731
    assert al.max_error(jacobian(g)(x), al.fd_jacobian(g, x)) < 1e-7


# --- the KKT matrix through every solver: its inertia certified, its derivative agreed ------


def _kkt_problem():
    rng = onp.random.default_rng(3)
    A, b = rng.normal(size=(3, 8)), rng.normal(size=3)

    def f(x, y):
        return 0.5 * anp.sum((y - x) ** 2) + 0.1 * anp.sum(y**4)

    h = al.linear_constraint(A, b)
    x = 0.3 * onp.ones(8)
    return f, h, x, al.Equality(f, h, onp.zeros(8))(x)


@pytest.mark.parametrize("solver", SOLVERS, ids=SOLVER_IDS)
def test_kkt_wrong_inertia_is_refused(solver):
    """``Equality(mode="max")`` at a constrained minimum: refused by every solver (the
    definite-only solvers, cholesky and CG, may refuse the KKT matrix itself first)."""
    f, h, x, y = _kkt_problem()
    if solver in ("cholesky", "cg"):
        with pytest.raises((al.CurvatureError, al.InputError)):
            al.Equality(f, h, y, mode="max", solver=solver).jacobian(x, y)
    else:
        with pytest.raises(al.CurvatureError, match="local minimum, not a maximum"):
            al.Equality(f, h, y, mode="max", solver=solver).jacobian(x, y)


@pytest.mark.parametrize("solver", SOLVERS, ids=SOLVER_IDS)
def test_kkt_right_inertia_agrees_with_dense(solver):
    f, h, x, y = _kkt_problem()
    ref = al.Equality(f, h, y).jacobian(x, y)
    if solver in ("cholesky", "cg"):  # definite-only solvers refuse a KKT matrix up front
        with pytest.raises(al.InputError, match="definite"):
            al.Equality(f, h, y, solver=solver).jacobian(x, y)
    else:
        J = al.Equality(f, h, y, solver=solver).jacobian(x, y)
        assert al.max_error(J, ref) < 1e-8


# --- constraint rows in units far apart: rank tests on normalised rows ----------------------


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


# --- the multipliers: those of least squares at y, whatever a forward solver returns -------


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


@pytest.mark.parametrize("stiff", [1e4, 1e7, 1e10])
@pytest.mark.parametrize("solver", ["dense", "lstsq", "nullspace", "minres", "gmres"])
def test_a_badly_scaled_constrained_minimum_is_right_or_refused_truthfully(solver, stiff):
    """Hostile review of issue 17: an isolated equality-constrained minimum with one variable
    ``stiff`` times stiffer than the rest. The dense solver judges the KKT matrix after
    equilibrating it (a congruence: same reduced inertia) and is right at every scale; the
    minimum-norm solve (a pseudo-inverse, 54% wrong before) and the Krylov solvers, whose
    accuracy depends on the unscaled condition, are right within their guarantee or refuse,
    without calling the isolated minimum 'not a strict minimum', and name solver='dense'."""
    rng = onp.random.default_rng(1)
    n = 6
    M = rng.standard_normal((n, n))
    s = onp.ones(n)
    s[0] = stiff
    A = s[:, None] * (M @ M.T / n + onp.eye(n)) * s
    B = rng.standard_normal((n, 3))
    C = rng.standard_normal((2, n))
    K = onp.block([[A, C.T], [C, onp.zeros((2, 2))]])

    def exact(x):
        return onp.linalg.solve(K, onp.concatenate([B @ x, x[:2]]))[:n]

    def f(x, y):
        return 0.5 * anp.dot(y, anp.dot(A, y)) - anp.dot(y, anp.dot(B, x))

    def eq(x, y):
        return anp.dot(C, y) - x[:2]

    x = onp.array([0.3, -0.7, 1.1])
    true = onp.linalg.solve(K, onp.vstack([B, onp.eye(3)[:2]]))[:n]
    try:
        J = jacobian(
            lambda x_: al.argmin(
                f, x_, onp.zeros(n), eq=eq, solver=solver, forward=lambda *_: exact(x)
            )
        )(x)
    except al.ArgminError as err:
        assert solver != "dense", str(err)
        assert "not a strict" not in str(err) and "solver='dense'" in str(err)
    else:
        # rcond = 1e-10 lets a solve lose up to ten digits of the unscaled condition
        assert al.max_error(J, true, relative=True) < (1e-12 if solver == "dense" else 1e-6)
