"""argminlib.implicit: root and fixed_point, the Solution (its polish and acceptance test),
second derivatives through every solver, and argmins nested in argmins.

Each test states a user-visible outcome: a derivative right within a stated tolerance, or
the error that names the cause.
"""

import autograd.numpy as anp
import numpy as onp
import pytest
from autograd import grad, hessian, jacobian, make_jvp
from conftest import (
    LANCZOS_N,
    ROTATION,
    SOLVER_IDS,
    SOLVERS,
    rotated_quadratic,
    spectrum_with,
    user_solve,
)
from conftest import FixedQuadratic as Quadratic

import argminlib as al
from argminlib.implicit import NEGLIGIBLE_STEP

# --- root and fixed_point ---------------------------------------------------------------


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


def test_root_checks_a_symmetric_claim_and_its_inputs():
    """Hostile review: ``symmetric=True`` for a non-symmetric Jacobian, a NaN tol, a map
    returning None and a non-square system are refused; a list-valued F works."""
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


def test_fixed_point_with_lists_and_a_map_returning_none():
    """Hostile review (second round): fixed_point with z a list, and T returning None."""
    z = al.fixed_point(lambda a, z: [anp.cos(a * z[0])], 1.0, [0.7390851332151607])
    assert z[0] == pytest.approx(0.7390851332151607)
    with pytest.raises(al.InputError, match="NoneType"):
        al.fixed_point(lambda a, z: None, 1.0, [0.7])


# --- the acceptance test: a certified bound on the Newton step, or a solved one ------------
#
# ``Solution.step_bound`` is ``||F|| / bound`` with the certificate's lower bound on the
# smallest eigenvalue; below ``NEGLIGIBLE_STEP * max(1, |y|)`` no Newton step is solved for.
# A solution that is not exact enough still gets its Newton steps, and a non-stationary
# ``y`` is still refused.


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


# --- the acceptance test of a minimum-norm solver: the residual no step explains ----------


def test_minimum_norm_solver_refuses_a_point_that_is_not_stationary():
    """Hostile review (fourth round): with lstsq, a residual off the range of a singular
    Hessian (f unbounded below along a flat direction) gave a zero minimum-norm Newton step,
    and a 'derivative'."""
    N = LANCZOS_N
    d = spectrum_with(0.0)
    H = ROTATION @ onp.diag(d) @ ROTATION.T
    b = onp.ones(N)
    y = onp.linalg.lstsq(H, b, rcond=None)[0]  # f_Y = H y - b has a null-space part

    def f(x, y_):
        return 0.5 * y_ @ H @ y_ - x * (b @ y_)

    with pytest.raises(al.ArgminError, match="not a solution|stationar"):
        al.argmin(f, 1.0, onp.zeros(N), solver="lstsq", forward=lambda f_, x_, y0: x_ * y)
    # in the range: a genuine (non-isolated) minimum, accepted, also with a correct hessp
    f2, y2 = rotated_quadratic(d, ROTATION[:, 3] + ROTATION[:, 9])
    for hp in (None, lambda x_, y_, v: H @ v):
        out = al.argmin(
            f2, 1.0, onp.zeros(N), solver="lstsq", hessp=hp, forward=lambda f_, x_, y0: x_ * y2
        )
        assert onp.allclose(out, y2)


def test_minimum_norm_refuses_a_gradient_along_a_flat_direction_of_a_stiff_problem():
    """Hostile review (fourth round): curvatures 1e8 and 0 with gradient 1 along the flat
    direction: the unexplained residual was divided by the largest eigenvalue, so lstsq
    accepted it."""

    def f(x, y):
        return 0.5e8 * (y[0] - x) ** 2 + 1.0 * y[1]

    with pytest.raises(al.ArgminError, match="not a solution|stationar"):
        al.argmin(
            f, 1.0, onp.zeros(2), solver="lstsq", forward=lambda f_, x_, y0: onp.array([x_, 0.0])
        )


# --- second derivatives through every solver -------------------------------------------------


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


@pytest.mark.parametrize("solver", SOLVERS, ids=SOLVER_IDS)
def test_hessian_through_every_solver(solver, dense_hessian):
    H = hessian(_upper(solver))(X0)
    assert onp.allclose(onp.diag(dense_hessian), [0.557811, 0.415344, -0.153951], atol=1e-6)
    assert al.max_error(H, dense_hessian) < 1e-7
    fd = al.fd_jacobian(grad(_upper(solver)), X0, eps=1e-5)
    assert al.max_error(H, fd) < 1e-6


@pytest.mark.parametrize("solver", SOLVERS, ids=SOLVER_IDS)
def test_forward_over_reverse_through_every_solver(solver, dense_hessian):
    v = onp.array([1.0, -2.0, 0.5])
    _, hv = make_jvp(grad(_upper(solver)))(X0)(v)
    assert al.max_error(hv, dense_hessian @ v) < 1e-7


def test_hessian_through_equality_and_inequality_with_minres():
    rng = onp.random.default_rng(5)
    A, b = rng.normal(size=(2, 4)), rng.normal(size=2)
    h = al.linear_constraint(A, b)

    def up(solver, **kw):
        return lambda x: anp.sum(al.argmin(_f, x, onp.zeros(4), solver=solver, **kw) ** 3)

    x = onp.array([0.3, -0.2, 0.5, 0.1])
    for kw in ({"eq": h}, {"ineq": lambda x, y: y - 0.2}):
        Hd = hessian(up("dense", **kw))(x)
        Hm = hessian(up("minres", **kw))(x)
        assert al.max_error(Hm, Hd) < 1e-7
        assert al.max_error(Hd, al.fd_jacobian(grad(up("dense", **kw)), x, eps=1e-5)) < 1e-5


# --- argmins nested in argmins ---------------------------------------------------------------


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


def test_a_traced_z_is_refused_naming_the_function():
    """Hostile review: fixed_point once dropped a traced z's trace, and a hyperparameter
    that only z's trace carried (lam, in T's closure) got a derivative of 0 without a word
    (finite differences: 0.88). A traced z is refused, naming fixed_point and al.value;
    computed on plain values, with lam passed in x, the derivative is right."""
    rng = onp.random.default_rng(0)
    A, b = rng.normal(size=(20, 5)), rng.normal(size=20)
    t = 1.0 / onp.linalg.norm(A, 2) ** 2

    def prox_step(lam, b_, y):
        v = y - t * (A.T @ (A @ y - b_))
        return anp.sign(v) * anp.maximum(anp.abs(v) - t * lam, 0.0)

    def solve(lam):
        y = onp.zeros(5)
        for _ in range(2000):
            y = prox_step(lam, b, y)
        return y

    def hidden(lam):  # lam only in the closure; z traced in lam
        y = al.fixed_point(lambda b_, y_: prox_step(lam, b_, y_), b, solve(lam))
        return anp.sum((A @ y - b) ** 2)

    with pytest.raises(al.InputError, match=r"fixed_point.*al\.value"):
        grad(hidden)(2.0)

    def explicit(lam):  # lam in x; z from plain values
        y = al.fixed_point(lambda lam_, y_: prox_step(lam_, b, y_), lam, solve(al.value(lam)))
        return anp.sum((A @ y - b) ** 2)

    assert grad(explicit)(2.0) == pytest.approx(al.fd_grad(explicit, 2.0), rel=1e-6)
