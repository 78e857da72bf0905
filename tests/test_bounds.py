"""Bound constraints (argmin(..., bounds=)): the bound-active coordinates eliminated, the
rest differentiated as the restricted problem (argminlib.bounds)."""

import warnings

import autograd.numpy as anp
import numpy as onp
import pytest
import scipy.optimize
from autograd import grad, jacobian, make_jvp

import argminlib as al


def sparsemax(z):
    zs = onp.sort(z)[::-1]
    k = onp.arange(1, z.size + 1)
    cs = onp.cumsum(zs)
    kk = k[1 + k * zs > cs].max()
    return onp.maximum(z - (cs[kk - 1] - 1) / kk, 0.0)


def _simplex(x, y):
    return 0.5 * anp.sum((y - x) ** 2)


def _sum_to_one(x, y):
    return anp.array([anp.sum(y) - 1.0])


@pytest.mark.parametrize("solver", ["dense", "minres", "gmres"])
@pytest.mark.parametrize("spread", [3.0, 0.3, 0.003])
def test_sparsemax_jacobian_is_the_closed_form(solver, spread):
    """Issue 20: the simplex projection (sparsemax) went through a dense KKT system with an
    n x n identity block of bound rows. With bounds=(0, None) and sum(y) = 1, its Jacobian
    is diag(s) - s s^T / |S| (s: the support's indicator), whatever the support's size
    (spread 0.003: almost every entry positive)."""
    n = 40
    z = onp.random.default_rng(0).standard_normal(n) * spread
    fw = lambda f, x, y0: sparsemax(onp.asarray(x))  # noqa: E731

    def sm(x):
        return al.argmin(
            _simplex,
            x,
            onp.ones(n) / n,
            eq=_sum_to_one,
            bounds=(0.0, None),
            forward=fw,
            solver=solver,
        )

    assert onp.allclose(sm(z), sparsemax(z), atol=1e-15)
    s = (sparsemax(z) > 0).astype(float)
    want = onp.diag(s) - onp.outer(s, s) / s.sum()
    assert al.max_error(jacobian(sm)(z), want) < 1e-10
    v = onp.linspace(-1, 1, n)
    assert al.max_error(make_jvp(sm)(z)(v)[1], want @ v) < 1e-10


@pytest.mark.parametrize("mode", ["min", "max"])
def test_a_box_constrained_quadratic_matches_the_active_set_derivative(mode):
    """0 <= y <= 1 on a quadratic whose minimiser leaves the box in some coordinates: the
    derivative is that of the exact active-set method with the bounds written as ineq rows,
    and of central differences; the default forward (L-BFGS-B) finds the same y."""
    rng = onp.random.default_rng(2)
    M = rng.standard_normal((6, 6))
    s = 1.0 if mode == "min" else -1.0
    Q = M @ M.T + 6 * onp.eye(6)

    def f(x, y):
        return s * (0.5 * anp.dot(y, anp.dot(Q, y)) - anp.dot(x, y))

    def c(x, y):
        return anp.concatenate([-y, y - 1.0])

    x = onp.array([20.0, -5.0, 3.0, 15.0, -9.0, 4.0])
    solve = al.argmin if mode == "min" else al.argmax
    y = solve(f, x, 0.5 * onp.ones(6), bounds=(0.0, 1.0))
    active = (y == 0.0) | (y == 1.0)
    assert 0 < active.sum() < 6
    J = jacobian(lambda x_: solve(f, x_, 0.5 * onp.ones(6), bounds=(0.0, 1.0)))(x)
    J_ineq = jacobian(lambda x_: solve(f, x_, 0.5 * onp.ones(6), ineq=c))(x)
    assert al.max_error(J, J_ineq) < 1e-10
    assert onp.all(J[active] == 0)
    fd = al.fd_jacobian(lambda x_: solve(f, x_, 0.5 * onp.ones(6), bounds=(0.0, 1.0)), x)
    assert al.max_error(J, fd) < 1e-6
    # scipy's Bounds and per-coordinate arrays mean the same
    yb = solve(f, x, 0.5 * onp.ones(6), bounds=scipy.optimize.Bounds(onp.zeros(6), 1.0))
    assert onp.allclose(yb, y, atol=1e-12)


def test_second_derivatives_through_bounds():
    """A loss of the bounded solution, differentiated twice: the free part is the restricted
    problem's primitive, so its Hessian is exact (checked against differences of grad)."""
    rng = onp.random.default_rng(3)
    M = rng.standard_normal((5, 5))
    Q = M @ M.T + 5 * onp.eye(5)

    def f(x, y):
        return 0.5 * anp.dot(y, anp.dot(Q, y)) - anp.dot(anp.sin(x), y) + 0.1 * anp.sum(y**4)

    def loss(x):
        y = al.argmin(f, x, 0.1 * onp.ones(5), bounds=(0.0, None))
        return anp.sum(y**2) + anp.dot(x, y)

    x = onp.array([1.0, -1.0, 0.5, 1.3, -0.2])
    H = jacobian(grad(loss))(x)
    assert al.max_error(H, al.fd_jacobian(grad(loss), x), relative=True) < 1e-6


def test_every_coordinate_on_a_bound():
    """Nothing free: y is the corner, a constant in x (derivative zero, and autograd still
    differentiates through it)."""

    def f(x, y):
        return anp.sum(x * y)  # pushes every y_i to 0 for x_i > 0

    x = onp.array([1.0, 2.0, 3.0])
    y = al.argmin(f, x, 0.5 * onp.ones(3), bounds=(0.0, 1.0))
    assert onp.all(y == 0)
    assert onp.all(jacobian(lambda x_: al.argmin(f, x_, 0.5 * onp.ones(3), bounds=(0, 1)))(x) == 0)


def test_a_weakly_active_bound_warns_and_a_wrong_one_is_released():
    def f(x, y):
        return 0.5 * anp.sum((y - x) ** 2)

    # x_0 = 0: y_0 = 0 is on its bound with multiplier 0 (the map y = max(x, 0) has a kink)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        al.argmin(f, onp.array([0.0, 1.0]), onp.ones(2), bounds=(0.0, None))
    assert any(issubclass(w.category, al.DegenerateConstraintWarning) for w in caught)
    # a forward solver that parks y_1 on its bound although f pulls it to 1: the active-set
    # iteration releases it (and solves the restricted problem), instead of trusting it
    y = al.argmin(
        f, onp.array([-1.0, 1.0]), onp.ones(2), bounds=(0.0, None), forward=lambda *_: onp.zeros(2)
    )
    assert onp.allclose(y, [0.0, 1.0], atol=1e-12)
    with pytest.raises(al.NotStationaryError, match="outside the bounds"):
        al.argmin(
            f,
            onp.array([-1.0, 1.0]),
            onp.ones(2),
            bounds=(0.0, None),
            forward=lambda *_: onp.array([-1.0, 1.0]),
        )


def test_bad_bounds_are_named():
    def f(x, y):
        return anp.sum((y - x) ** 2)

    x, y0 = onp.ones(3), onp.zeros(3)
    with pytest.raises(al.InputError, match="lower bound is above"):
        al.argmin(f, x, y0, bounds=(1.0, 0.0))
    with pytest.raises(al.InputError, match="bounds"):
        al.argmin(f, x, y0, bounds=(onp.zeros(2), None))
    with pytest.raises(al.InputError, match="rows of ineq"):
        al.argmin(f, x, y0, bounds=(0.0, None), ineq=lambda x_, y: y - 2.0)
    with pytest.raises(al.InputError, match="leave them out"):
        al.argmin(f, x, y0, bounds=(0.0, None), hessp=lambda x_, y, v: 2 * v)
    with pytest.raises(al.InputError, match="bounds must be"):
        al.argmin(f, x, y0, bounds=0.0)


# --- hostile review of the first version of bounds= ----------------------------------------


def test_the_result_stays_in_the_box_when_the_forward_stops_short():
    """A badly scaled quadratic: L-BFGS-B stopped with y_1 near 1 inside the box [0, 10];
    the restricted problem's polish then took y_1 to its unconstrained minimum -1, out of
    the box, and J = I came back without a word (truth: y = [1, 0], J = diag(1, 0)). The
    active-set iteration holds a coordinate that leaves the box on its bound."""
    d = onp.array([1e4, 1e-4])

    def f(x, y):
        return 0.5 * anp.sum(d * (y - x) ** 2)

    x = onp.array([1.0, -1.0])
    y = al.argmin(f, x, onp.zeros(2), bounds=(0.0, 10.0))
    assert onp.allclose(y, [1.0, 0.0], atol=1e-10)
    J = jacobian(lambda x_: al.argmin(f, x_, onp.zeros(2), bounds=(0.0, 10.0)))(x)
    assert al.max_error(J, onp.diag([1.0, 0.0])) < 1e-10
    # a user forward a little inside a bound that should be active
    for off in (1e-9, 1e-5, 1e-3):
        y = al.argmin(f, x, onp.zeros(2), bounds=(0.0, 10.0), forward=lambda *_, o=off: [1, o])
        assert onp.allclose(y, [1.0, 0.0], atol=1e-10)


def test_a_free_coordinate_near_its_bound_stays_free():
    """A free coordinate 5e-7 from its bound (inside the snapping tolerance) beside a
    strongly active bound, and one beside a coordinate of 1e8: each was put on its bound
    (dy/dx = 0 instead of 1). A candidate the objective does not hold is released."""

    def f(x, y):
        return 0.5 * (y[0] - x) ** 2 + 0.5 * (y[1] + 1.0) ** 2 + 0.5 * (y[2] - 1e8) ** 2

    for x in (5e-7, 1e-6, 50.0):
        y = al.argmin(f, x, onp.ones(3), bounds=(0.0, None))
        assert y[0] == pytest.approx(x, rel=1e-9) and y[1] == 0.0
        J = jacobian(lambda x_: al.argmin(f, x_, onp.ones(3), bounds=(0.0, None)))(x)
        assert al.max_error(J, onp.array([1.0, 0.0, 0.0])) < 1e-8


def test_bounds_with_inf_nan_pinned_and_ambiguous_forms():
    def f(x, y):
        return 0.5 * anp.sum((y - x) ** 2)

    x = onp.array([1.0, -1.0])
    want = onp.array([1.0, -1.0])
    for bounds in (
        (onp.array([0.0, -onp.inf]), None),
        (onp.array([0.0, onp.nan]), None),
        scipy.optimize.Bounds(onp.array([0.0, -onp.inf]), onp.inf),
        scipy.optimize.Bounds(),
    ):
        assert onp.allclose(al.argmin(f, x, onp.zeros(2), bounds=bounds), want)
    # lo == hi fixes a coordinate whichever way f pushes
    y = al.argmin(f, x, onp.zeros(2), bounds=(onp.array([0.3, -5.0]), onp.array([0.3, 5.0])))
    assert onp.allclose(y, [0.3, -1.0])
    with pytest.raises(al.InputError, match="ambiguous"):
        al.argmin(f, x, onp.zeros(2), bounds=[(0, 1), (0, 3)])


def test_scalar_y_and_a_dict_x_with_every_coordinate_fixed():
    assert al.argmin(lambda x, y: (y - x) ** 2, -2.0, 1.0, bounds=(0.0, 1.0)) == 0.0

    def loss(x):
        y = al.argmin(lambda x_, y_: anp.sum((y_ - x_["a"]) ** 2), x, onp.zeros(3), bounds=(0, 1))
        return anp.sum(y)

    g = grad(loss)({"a": onp.array([-1.0, -0.5, -3.0])})
    assert onp.all(g["a"] == 0)


def test_a_refusal_of_the_restricted_problem_is_said_of_the_whole_y():
    """Hostile review: a kink at y[3], with y[0] and y[1] on their bounds, was reported at
    'flat index 1' (of the free sub-vector). The coordinates now count in y, and the
    message says it is the restricted problem."""

    def f(x, y):
        return anp.sum((y - x) ** 2) + 2.0 * anp.abs(y[3])

    x = onp.array([0.0, 0.0, 0.5, 0.3, -0.7])
    lo = onp.array([1.0, 1.0, -5, -5, -5])
    with pytest.raises(al.NonSmoothError, match="restricted to the 3 coordinates") as err:
        al.argmin(f, x, onp.full(5, 1.5), bounds=(lo, None))
    assert err.value.coordinates == (3,)


def test_return_info_when_every_coordinate_is_fixed():
    """Hostile review: info was None when nothing was free (info.solves raised)."""
    y, info = al.argmin(
        lambda x, y_: anp.sum(x * y_),
        onp.ones(3),
        0.5 * onp.ones(3),
        bounds=(0, 1),
        return_info=True,
    )
    assert onp.all(y == 0) and info.solves.solves == 0 and info.certificate is None
    assert "nothing to solve" in repr(info)
