"""Lemmas 3.1-3.4, the general implicit derivatives and the argmin/argmax primitives."""

import autograd.numpy as anp
import numpy as onp
import pytest
from autograd import grad, jacobian
from conftest import Quadratic, cubic_f

import argminlib as al

SOLVERS = ["dense", "cholesky", "lu", "cg", "minres", "gmres"]

# --- Lemma 3.1 on the paper's Figure 1 function -----------------------------------------

BRANCHES_AT_1 = [  # (start, y, f(1, y), g'(1)) from the digest
    (-3.0, -3.31174, -83.9666, 0.201503),
    (0.2, 0.0, 0.0, 0.0),
    (2.0, 1.81174, -16.7209, -1.701503),
]


def cubic_branch(x, sign):
    """Closed-form stationary points of f(x, .) for x > 0 (sign = -1, +1)."""
    return (-3 * x**2 + sign * onp.sqrt(9 * x**4 + 96 * x)) / (4 * x)


def cubic_derivative(x, y):
    return -(y**3 + 3 * x * y**2) / (3 * x * y**2 + 3 * x**2 * y - 6)


@pytest.mark.parametrize("start, y_ref, f_ref, dg_ref", BRANCHES_AT_1)
def test_lemma_3_1_check_values(start, y_ref, f_ref, dg_ref):
    y = al.stationary_point(cubic_f, 1.0, start)
    assert y == pytest.approx(y_ref, abs=1e-5)
    assert cubic_f(1.0, y) == pytest.approx(f_ref, abs=1e-4)
    assert al.lemma_3_1(cubic_f, 1.0, y, mode="stationary") == pytest.approx(dg_ref, abs=1e-6)


@pytest.mark.parametrize("x", [0.3, 0.8, 1.5, 2.2])
@pytest.mark.parametrize("sign", [-1, 1])
def test_lemma_3_1_closed_form_branches(x, sign):
    y = cubic_branch(x, sign)
    mode = "min"  # both outer branches are local minima for x > 0
    assert al.lemma_3_1(cubic_f, x, y, mode=mode) == pytest.approx(
        cubic_derivative(x, y), rel=1e-10
    )
    # and the middle branch y = 0 (a local maximum) has g' = 0
    assert al.lemma_3_1(cubic_f, x, 0.0, mode="max") == 0.0


def test_lemma_3_1_global_minimum_through_argmin():
    g = lambda x: al.argmin(cubic_f, x, -3.0)  # noqa: E731
    assert grad(g)(1.0) == pytest.approx(0.201503, abs=1e-6)
    assert grad(g)(1.0) == pytest.approx(al.fd_jvp(g, 1.0, 1.0), abs=1e-6)


def test_scalar_mean_example():
    """f = sum_i (h_i(x) - y)^2 gives g = mean h_i and g' = mean h_i'."""

    def h(x):
        return anp.array([anp.sin(x), x**2, anp.exp(0.3 * x), 3.0 * x])

    f = lambda x, y: anp.sum((h(x) - y) ** 2)  # noqa: E731
    x = 0.7
    y = float(onp.mean(h(x)))
    assert al.f_YY(f, x, y) == pytest.approx(2 * 4)
    assert al.f_XY(f, x, y) == pytest.approx(-2 * onp.sum(jacobian(h)(x)))
    assert al.lemma_3_1(f, x, y) == pytest.approx(onp.mean(jacobian(h)(x)), rel=1e-12)
    assert grad(lambda x: al.argmin(f, x, 0.0))(x) == pytest.approx(onp.mean(jacobian(h)(x)))


# --- Lemmas 3.2-3.4 against closed forms ------------------------------------------------


def test_lemma_3_2_vector_y():
    q = Quadratic((), (4,), seed=1)
    y = q.solution(q.x)
    assert onp.allclose(al.lemma_3_2(q.f, q.x, y), q.jacobian(q.x), atol=1e-10)


def test_lemma_3_3_argmax():
    q = Quadratic((), (4,), seed=2, sign=-1.0)
    y = q.solution(q.x)
    assert onp.allclose(al.lemma_3_3(q.f, q.x, y), q.jacobian(q.x), atol=1e-10)
    with pytest.raises(al.CurvatureError, match="local minimum, not a maximum"):
        al.lemma_3_3(Quadratic((), (4,), seed=2).f, q.x, y)


def test_lemma_3_4_vector_x():
    q = Quadratic((3,), (4,), seed=3)
    y = q.solution(q.x)
    assert onp.allclose(al.lemma_3_4(q.f, q.x, y), q.jacobian(q.x), atol=1e-10)


def test_lemmas_refuse_other_shapes():
    q = Quadratic((3,), (4,), seed=3)
    with pytest.raises(al.ShapeError, match="implicit_jacobian"):
        al.lemma_3_2(q.f, q.x, q.solution(q.x))


def test_lemmas_equal_core_mechanism():
    q = Quadratic((3,), (4,), seed=4)
    y = q.solution(q.x)
    J_core = al.implicit_jacobian(q.f, q.x, y)
    assert onp.allclose(al.lemma_3_4(q.f, q.x, y), J_core, atol=1e-12)


# --- the general derivatives, every shape, solver and mode -------------------------------


@pytest.mark.parametrize("solver", SOLVERS)
def test_jacobian_every_solver(quadratic, solver):
    q = quadratic
    y = q.solution(q.x)
    J, info = al.implicit_jacobian(q.f, q.x, y, solver=solver, return_info=True)
    assert onp.shape(J) == tuple(q.yshape) + tuple(q.xshape)
    assert onp.allclose(J, q.jacobian(q.x), atol=1e-8)
    assert info.converged and info.residual < 1e-8


@pytest.mark.parametrize("solver", SOLVERS)
def test_jvp_vjp_consistent_with_jacobian(quadratic, solver):
    q = quadratic
    rng = onp.random.default_rng(7)
    y = q.solution(q.x)
    J = q.jacobian(q.x).reshape(q.n, q.m)
    v = rng.normal(size=q.xshape) if q.xshape else float(rng.normal())
    u = rng.normal(size=q.yshape) if q.yshape else float(rng.normal())
    jv = al.implicit_jvp(q.f, q.x, y, v, solver=solver)
    uj = al.implicit_vjp(q.f, q.x, y, u, solver=solver)
    assert onp.allclose(onp.reshape(jv, -1), J @ onp.reshape(v, -1), atol=1e-8)
    assert onp.allclose(onp.reshape(uj, -1), onp.reshape(u, -1) @ J, atol=1e-8)
    assert onp.shape(uj) == onp.shape(q.x)
    assert onp.shape(jv) == onp.shape(y)


def test_jacobian_against_finite_differences(quadratic):
    q = quadratic
    J = al.implicit_jacobian(q.f, q.x, q.solution(q.x), solver="cg")
    J_fd = al.fd_jacobian(q.solution, q.x)
    assert al.max_error(J, J_fd) < 1e-7


@pytest.mark.parametrize("solver", ["dense", "cg", "minres", "gmres"])
def test_argmax_every_solver(solver):
    q = Quadratic((2, 2), (3,), seed=5, sign=-1.0)
    y = q.solution(q.x)
    J = al.implicit_jacobian(q.f, q.x, y, mode="max", solver=solver)
    assert onp.allclose(J, q.jacobian(q.x), atol=1e-8)
    g = grad(lambda x: anp.sum(al.argmax(q.f, x, onp.zeros(3), solver=solver) ** 2))
    assert al.max_error(g(q.x), al.fd_grad(lambda x: onp.sum(q.solution(x) ** 2), q.x)) < 1e-6


def test_saddle_point_with_stationary_mode():
    """An indefinite Hessian is fine in mode='stationary' (MINRES, LU), refused for argmin."""
    f = lambda x, y: 0.5 * y[0] ** 2 - 0.5 * y[1] ** 2 - x * y[0] - 2 * x * y[1]  # noqa: E731
    x, y = 0.5, onp.array([0.5, -1.0])
    for solver in ["lu", "minres", "gmres"]:
        assert onp.allclose(
            al.implicit_jacobian(f, x, y, mode="stationary", solver=solver), [1, -2]
        )
    with pytest.raises(al.CurvatureError, match="saddle point, not a strict local minimum"):
        al.implicit_jacobian(f, x, y)
    with pytest.raises(al.CurvatureError):
        al.implicit_jvp(f, x, y, 1.0, solver="cg")


# --- the primitive: autograd.grad goes through argmin ------------------------------------


@pytest.mark.parametrize("solver", ["dense", "cg", "minres", "gmres"])
def test_grad_through_argmin(solver):
    q = Quadratic((2, 3), (3, 2), seed=6)

    def loss(x):
        y = al.argmin(q.f, x, onp.zeros((3, 2)), solver=solver)
        return anp.sum(anp.sin(y)) + anp.sum(x**2)

    def loss_ref(x):
        return onp.sum(onp.sin(q.solution(x))) + onp.sum(x**2)

    assert al.max_error(grad(loss)(q.x), al.fd_grad(loss_ref, q.x)) < 1e-7
    assert al.max_error(grad(loss)(q.x), al.fd_grad(loss, q.x)) < 1e-5


def test_forward_mode_through_argmin():
    from autograd import make_jvp

    q = Quadratic((4,), (3,), seed=8)
    v = onp.arange(4.0)
    _, jv = make_jvp(lambda x: al.argmin(q.f, x, onp.zeros(3)))(q.x)(v)
    assert onp.allclose(jv, q.jacobian(q.x) @ v, atol=1e-8)


def test_jacobian_through_argmin_matches_closed_form():
    q = Quadratic((3,), (4,), seed=9)
    J = jacobian(lambda x: al.argmin(q.f, x, onp.zeros(4), solver="minres"))(q.x)
    assert onp.allclose(J, q.jacobian(q.x), atol=1e-8)


def test_one_linear_solve_per_vjp():
    """The VJP never unrolls the forward solver: exactly one solve per cotangent. (The
    Newton step of the acceptance test needs no solve here: the certificate's exact
    eigenvalues bound it below round-off; see test_newton_step_solved_when_not_negligible.)"""
    q = Quadratic((50,), (6,), seed=10)
    calls = []

    def counting_solver(matvec, b):
        calls.append(1)
        return al.get_solver("cg")(al.LinearSystem(len(b), matvec, symmetric=True), b)[0]

    def solution(x):
        y = al.argmin(q.f, x, onp.zeros(6), solver=counting_solver)
        calls.clear()  # (the forward's Newton polish may solve too: count the backward only)
        return y

    grad(lambda x: anp.sum(solution(x)))(q.x)
    assert len(calls) == 1
    jacobian(solution)(q.x)
    assert len(calls) == 6


def _inner_problem():
    rng = onp.random.default_rng(11)
    Q = rng.normal(size=(3, 3))
    Q = Q @ Q.T + 3 * onp.eye(3)
    return lambda y, z: 0.5 * z @ Q @ z - y @ z + 0.25 * anp.sum(z**4)


def test_nested_argmin_inner_depends_on_outer_variable():
    """The outer objective contains an argmin over its own variable y: second derivatives
    of the inner argmin are needed, and the dense VJP is differentiable."""
    h = _inner_problem()

    def f(x, y):
        z = al.argmin(h, y, onp.zeros(3))
        return 0.5 * anp.sum((y - x) ** 2) + 0.5 * anp.sum(z**2) + 0.1 * anp.sum(y**4)

    def loss(x):
        return anp.sum(anp.sin(al.argmin(f, x, onp.zeros(3))))

    x = onp.array([0.3, -0.5, 1.0])
    assert al.max_error(grad(loss)(x), al.fd_grad(loss, x)) < 1e-6


def test_nested_argmin_inner_depends_on_parameter():
    h = _inner_problem()

    def f(x, y):
        z = al.argmin(h, x, onp.zeros(3))
        return 0.5 * anp.sum((y - z) ** 2) + 0.1 * anp.sum(y**4)

    def loss(x):
        return anp.sum(anp.sin(al.argmin(f, x, onp.zeros(3), solver="cg")))

    x = onp.array([0.3, -0.5, 1.0])
    assert al.max_error(grad(loss)(x), al.fd_grad(loss, x)) < 1e-6


def test_custom_forward_solver_is_used():
    seen = []

    def forward(f, x, y0):
        seen.append(x)
        return 2.0 * x  # the exact minimiser of (y - 2x)^2

    g = grad(lambda x: al.argmin(lambda x, y: (y - 2 * x) ** 2, x, 0.0, forward=forward))
    assert g(1.5) == pytest.approx(2.0)
    assert seen == [1.5]


# --- bad input: every error the issue lists ------------------------------------------------


def test_not_stationary_reports_norm_and_tol():
    q = Quadratic((), (3,), seed=12)
    y = q.solution(q.x) + 1e-3
    with pytest.raises(
        al.NotStationaryError, match=r"Newton step .* has length 1.000e-03 > tol"
    ) as e:
        al.implicit_jacobian(q.f, q.x, y)
    assert e.value.residual > 1e-6 and e.value.tol == 1e-6
    assert al.implicit_jacobian(q.f, q.x, y, tol=1.0) is not None  # the caller can relax it


def test_singular_hessian():
    f = lambda x, y: (y[0] - x) ** 2 + 0.0 * y[1] ** 2  # noqa: E731
    with pytest.raises(al.SingularHessianError, match="singular.*solver='lstsq'"):
        al.implicit_jacobian(f, 1.0, onp.array([1.0, 0.0]))
    # the advice is followable: lstsq gives the minimum-norm derivative, in every mode
    for mode in ["min", "stationary"]:
        J = al.implicit_jacobian(f, 1.0, onp.array([1.0, 0.0]), mode=mode, solver="lstsq")
        assert onp.allclose(J, [1.0, 0.0])
    with pytest.raises(al.SingularHessianError, match="eigenvalue of size 0.000e\\+00"):
        al.implicit_jacobian(f, 1.0, onp.array([1.0, 0.0]), mode="stationary")


def test_wrong_curvature_names_smallest_eigenvalue():
    with pytest.raises(al.CurvatureError, match=r"local maximum, not a minimum.*-2.400e\+01") as e:
        al.lemma_3_1(cubic_f, 1.0, 0.0, mode="min")
    assert e.value.eigenvalue == pytest.approx(-24.0)
    with pytest.raises(al.CurvatureError, match="local minimum, not a maximum"):
        grad(lambda x: al.argmax(lambda x, y: (y - x) ** 2, x, 0.0, forward=lambda f, x, y0: x))(
            1.0
        )


def test_shape_errors():
    q = Quadratic((4,), (3,), seed=13)
    y = q.solution(q.x)
    with pytest.raises(al.ShapeError, match=r"structure of x \(4 entries\)"):
        al.implicit_jvp(q.f, q.x, y, onp.ones(3))
    with pytest.raises(al.ShapeError, match=r"u has shape \(4,\); the VJP needs \(3,\)"):
        al.implicit_vjp(q.f, q.x, y, onp.ones(4))
    with pytest.raises(al.ShapeError, match="must return a scalar"):
        al.implicit_jacobian(lambda x, y: y * x[:3], q.x, y)
    with pytest.raises(al.ShapeError, match="returned 2 values"):
        al.argmin(q.f, q.x, onp.zeros(3), forward=lambda f, x, y0: onp.zeros(2))


@pytest.mark.parametrize("where", ["x", "y", "v"])
def test_non_finite_inputs(where):
    q = Quadratic((4,), (3,), seed=14)
    x, y, v = q.x.copy(), q.solution(q.x), onp.ones(4)
    {"x": x, "y": y, "v": v}[where][0] = onp.nan
    with pytest.raises(al.NonFiniteError, match=f"{where} contains NaN"):
        al.implicit_jvp(q.f, x, y, v)


@pytest.mark.filterwarnings("ignore:invalid value encountered in log:RuntimeWarning")
def test_non_finite_objective():
    f = lambda x, y: anp.log(y - x) + y**2  # noqa: E731
    with pytest.raises(al.NonFiniteError, match="not finite"):
        al.implicit_jacobian(f, 1.0, 0.0)
    with pytest.raises(al.NonFiniteError, match="starting point y0 is outside the domain"):
        al.argmin(f, 1.0, 0.0)


def test_iterative_solve_not_converged_reports_outcome():
    q = Quadratic((), (30,), seed=15)
    y = q.solution(q.x)
    with pytest.raises(al.LinearSolveError, match=r"CG did not converge .* 2 iterations") as e:
        al.implicit_vjp(q.f, q.x, y, onp.ones(30), solver=al.CG(maxiter=2))
    assert e.value.info.iterations == 2 and not e.value.info.converged


def test_forward_solver_answer_polished_or_refused():
    """A user forward solver's inexact answer is polished by a few Newton steps (as in the
    constrained case); an answer Newton cannot repair is refused, never differentiated."""
    f = lambda x, y: anp.sum(anp.log(anp.cosh(y - x)))  # noqa: E731
    x = onp.ones(3)
    y = al.argmin(f, x, onp.zeros(3), forward=lambda f, x, y0: x + 1e-4)
    assert onp.allclose(y, x, atol=1e-14)
    with pytest.raises(al.ForwardSolveError, match="not a solution, even after 5 Newton"):
        al.argmin(f, x, onp.zeros(3), forward=lambda f, x, y0: x + 3.0)


def test_unknown_solver_and_mode():
    f = lambda x, y: (y - x) ** 2  # noqa: E731
    with pytest.raises(ValueError, match="Unknown linear solver 'qr'"):
        al.implicit_jacobian(f, 1.0, 1.0, solver="qr")
    with pytest.raises(ValueError, match="use 'min', 'max' or 'stationary'"):
        al.implicit_jacobian(f, 1.0, 1.0, mode="minimum")


def test_the_default_forward_leaves_a_stationary_start():
    """The default forward solver is L-BFGS (quasi_newton), which does not move from a start
    where the gradient vanishes: y0 = 0 is the maximum of the double well (y^2 - 1)^2 and a
    saddle of its 2-D form. The certificate refuses that answer and the problem is solved
    again by trust-region Newton, which leaves it: a minimum (+-1) comes back, and its
    derivative is right."""

    def well(x, y):
        return anp.sum((y**2 - x) ** 2)

    y = al.argmin(well, 1.0, 0.0)
    assert abs(abs(y) - 1.0) < 1e-12
    y2 = al.argmin(well, 1.0, onp.array([0.0, 1.0]))
    assert onp.allclose(onp.abs(y2), 1.0, atol=1e-12)
    # y = sqrt(x): dy/dx = 1 / (2 sqrt(x)) on the branch found
    g = grad(lambda x: al.argmin(well, x, onp.array([0.0, 1.0]))[1])(4.0)
    assert g == pytest.approx(0.25, rel=1e-10)


def test_quasi_newton_then_polish_matches_trust_region_newton():
    """The cheap default (L-BFGS, then the problem's Newton polish) gives the same solution
    and derivative as newton on a smooth convex problem (a logistic regression with
    per-coefficient L2 weights exp(x), the bi-level task of issue 20)."""
    rng = onp.random.default_rng(0)
    X = rng.standard_normal((120, 8))
    t = (X @ rng.standard_normal(8) > 0).astype(float)

    def f(x, y):
        z = X @ y
        return anp.sum(anp.logaddexp(0, z) - t * z) + 0.5 * anp.sum(anp.exp(x) * y**2)

    x = onp.linspace(-2.0, 1.0, 8)
    y = al.argmin(f, x, onp.zeros(8))
    y_tr = al.argmin(f, x, onp.zeros(8), forward=al.newton)
    assert al.max_error(y, y_tr, relative=True) < 1e-12
    J = jacobian(lambda x_: al.argmin(f, x_, onp.zeros(8)))(x)
    J_tr = jacobian(lambda x_: al.argmin(f, x_, onp.zeros(8), forward=al.newton))(x)
    assert al.max_error(J, J_tr, relative=True) < 1e-10
    assert J.shape == (8, 8)


def _lasso():
    rng = onp.random.default_rng(0)
    A = rng.standard_normal((20, 10))
    b = rng.standard_normal(20)
    t = 1 / onp.linalg.norm(A, 2) ** 2

    def f(x, y):
        return 0.5 * anp.sum((A @ y - b) ** 2) + x * anp.sum(anp.abs(y))

    def prox_step(x, y):  # one proximal-gradient (ISTA) step: soft threshold at t x
        v = y - t * (A.T @ (A @ y - b))
        return anp.sign(v) * anp.maximum(anp.abs(v) - t * x, 0.0)

    def solve(x, iterations=5000):
        y = onp.zeros(10)
        for _ in range(iterations):
            y = prox_step(x, y)
        return y

    return A, f, prox_step, solve


@pytest.mark.parametrize("solver", ["dense", "cg"])
def test_a_non_smooth_objective_is_named_and_the_proximal_route_given(solver):
    """Issue 20: the lasso through argmin raised 'y is a saddle point ... re-solve from
    another start', and at the true lasso solution 'not stationary'. Both are a kink of
    |y| (autograd's Hessian of |y| means nothing there): NonSmoothError now says so and
    points to fixed_point of the proximal step, which gives the right derivative."""
    A, f, prox_step, solve = _lasso()
    x = 2.0
    with pytest.raises(al.NonSmoothError, match="fixed_point") as err:
        al.argmin(f, x, onp.zeros(10), solver=solver)
    assert err.value.coordinates
    y = solve(x)
    with pytest.raises(al.NonSmoothError, match="jumps"):
        al.Unconstrained(f, onp.zeros(10), solver=solver).at(x, y)
    # the route the message gives: dy/dx on the support is -(A_S^T A_S)^{-1} sign(y_S)
    J = jacobian(lambda x_: al.fixed_point(prox_step, x_, solve(x)))(x)
    S = onp.abs(y) > 0
    want = onp.zeros(10)
    want[S] = -onp.linalg.solve(A[:, S].T @ A[:, S], onp.sign(y[S]))
    assert 0 < S.sum() < 10 and al.max_error(J, want) < 1e-10


def test_gradient_jumps_finds_kinks_only():
    """No false alarm on smooth objectives at any scale, a kink found where it is."""
    rng = onp.random.default_rng(1)
    A = rng.standard_normal((15, 6))

    def smooth(x, y):
        return x * (anp.sum(anp.logaddexp(0, A @ y)) + 0.5 * anp.sum(y**2))

    for scale in (1e-20, 1.0, 1e20):
        for y in (onp.zeros(6), rng.standard_normal(6), 1e6 * onp.ones(6)):
            assert al.gradient_jumps(smooth, scale, y).size == 0

    def kinked(x, y):
        return smooth(x, y) + anp.maximum(y[2], 0.0)

    assert list(al.gradient_jumps(kinked, 1.0, onp.zeros(6))) == [2]
