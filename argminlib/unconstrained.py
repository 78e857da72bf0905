"""Unconstrained argmin and argmax (section 3 of Gould et al., 2016).

For ``g(x) = argmin_y f(x, y)`` the optimality function is the gradient ``f_Y(x, y)``; its
``y``-Jacobian is the Hessian ``f_YY`` and its ``x``-Jacobian is ``f_XY``. The implicit
function theorem then gives Lemmas 3.1-3.4, which are written out below as closed forms,
and the general, matrix-free versions :func:`implicit_jacobian`, :func:`implicit_jvp` and
:func:`implicit_vjp`, which go through ``argminlib.implicit``.

Conventions: ``f(x, y)`` is written with ``autograd.numpy`` and returns a scalar; ``x`` and
``y`` are floats or arrays of any shape. A Jacobian ``dy/dx`` has shape
``shape(y) + shape(x)``, as ``autograd.jacobian`` returns it.
"""

from __future__ import annotations

import autograd.numpy as anp
import numpy as onp
from autograd import grad, hessian, jacobian
from autograd.tracer import getval

from .exceptions import NonFiniteError, ShapeError
from .forward import newton, stationary_point
from .linsolve import get_solver
from .primitive import Problem, as_float_array, mode_sign

__all__ = [
    "f_Y",
    "f_YY",
    "f_XY",
    "lemma_3_1",
    "lemma_3_2",
    "lemma_3_3",
    "lemma_3_4",
    "implicit_jacobian",
    "implicit_jvp",
    "implicit_vjp",
    "Unconstrained",
    "argmin",
    "argmax",
]


# --- the partial derivatives of the paper's notation --------------------------------------


def f_Y(f, x, y):
    """``f_Y = grad_y f(x, y)``, with the shape of ``y``."""
    return grad(f, 1)(x, y)


def f_YY(f, x, y):
    """``f_YY = d^2 f / dy^2``: a float for scalar ``y``, else an ``n x n`` matrix over
    the flattened ``y`` (``n = size(y)``)."""
    if anp.ndim(getval(y)) == 0:
        return grad(grad(f, 1), 1)(x, y)
    shape = anp.shape(getval(y))
    H = hessian(lambda z: f(x, anp.reshape(z, shape)))(anp.reshape(y, (-1,)))
    return H


def f_XY(f, x, y):
    """``f_XY = d/dx grad_y f(x, y)``: shape ``(n,) + shape(x)`` over the flattened ``y``
    (a float when both are scalars, an n-vector for scalar ``x``, ``n x m`` for ``x`` in
    ``R^m``)."""
    if anp.ndim(getval(y)) == 0:
        return jacobian(lambda x_: grad(f, 1)(x_, y))(x)
    return jacobian(lambda x_: anp.reshape(grad(f, 1)(x_, y), (-1,)))(x)


# --- the problem class: the gradient is the optimality function ---------------------------


class Unconstrained(Problem):
    """``y(x) = argmin_y f(x, y)`` (``mode="min"``), ``argmax`` (``"max"``), or any
    stationary point with invertible Hessian (``"stationary"``).

    Call the instance with ``x`` for the solution, differentiable by autograd.

    Parameters
    ----------
    f : callable ``f(x, y) -> float``
    y0 : float or array
        Starting point of the forward solver; fixes the shape of ``y``.
    mode : {"min", "max", "stationary"}
    solver : linear solver for the derivatives (see :func:`argminlib.get_solver`).
    tol : float
        Largest accepted ``||f_Y(x, y)||``.
    forward : callable ``forward(f, x, y0) -> y``, optional
        Lower-level solver; default :func:`argminlib.newton` (trust-region Newton-CG
        with Hessian-vector products) for min/max, :func:`~argminlib.stationary_point`
        for ``"stationary"``.
    """

    def __init__(self, f, y0, *, mode="min", solver="dense", tol=1e-6, forward=None):
        self.f = f
        self.definite = mode_sign(mode)
        self.mode = mode
        self.y0 = as_float_array(getval(y0), "y0")
        self.yshape = anp.shape(self.y0)
        self.n = int(onp.prod(self.yshape)) if self.yshape else 1
        self.solver = get_solver(solver)
        self.tol = tol
        self.forward = forward
        self.name = "Hessian f_YY"
        self.what = "the stationarity condition f_Y(x, y) = 0"

    def optimality(self, x, z):
        """``F(x, z) = f_Y(x, y)`` flattened, with ``y = reshape(z)``."""
        g = grad(lambda z_: self.f(x, anp.reshape(z_, self.yshape)))(z)
        return anp.reshape(g, (-1,))

    def solve(self, x):
        if self.forward is not None:
            y = self.forward(self.f, x, self.y0)
        elif self.mode == "stationary":
            y = stationary_point(self.f, x, self.y0)
        else:
            y = newton(self.f, x, self.y0, maximize=self.mode == "max")
        z = onp.reshape(onp.asarray(getval(y), dtype=float), (-1,))
        if z.size != self.n:
            raise ShapeError(f"The forward solver returned {z.size} values; y0 has {self.n}.")
        self.linearize(x, z)  # raises if the forward solver stopped short of a solution
        return z

    def pack(self, x, y):
        return anp.reshape(y, (-1,))


def argmin(f, x, y0, *, eq=None, ineq=None, solver="dense", tol=1e-6, forward=None):
    """``argmin_y f(x, y)`` from the start ``y0``, as an autograd primitive.

    ``autograd.grad`` (or ``jacobian``, ``make_jvp``) of any function of the result with
    respect to ``x`` uses the implicit derivative: one ``solver`` solve per VJP, whatever
    the forward solver did. Raises if the forward solver does not reach the optimality
    conditions to ``tol`` or the Hessian there has the wrong curvature.

    ``eq(x, y)`` (array, ``= 0``) and ``ineq(x, y)`` (array, ``<= 0``) add constraints:
    then the problem is an :class:`~argminlib.Equality` or (exact, active-set)
    :class:`~argminlib.Inequality` problem; for the log-barrier approximation use
    :class:`~argminlib.Barrier`.
    """
    return _problem_for(f, y0, "min", eq, ineq, solver, tol, forward)(x)


def argmax(f, x, y0, *, eq=None, ineq=None, solver="dense", tol=1e-6, forward=None):
    """``argmax_y f(x, y)``: as :func:`argmin`, with a negative definite Hessian."""
    return _problem_for(f, y0, "max", eq, ineq, solver, tol, forward)(x)


def _problem_for(f, y0, mode, eq, ineq, solver, tol, forward):
    common = {"mode": mode, "solver": solver, "tol": tol, "forward": forward}
    if ineq is not None:
        from .inequality import Inequality

        return Inequality(f, ineq, y0, eq=eq, **common)
    if eq is not None:
        from .equality import Equality

        return Equality(f, eq, y0, **common)
    return Unconstrained(f, y0, **common)


# --- the general derivatives through the core -------------------------------------------


def _problem(f, x, y, mode, solver, tol):
    """The problem with solution ``y``, after checking that ``f(x, y)`` is a finite scalar."""
    value = f(as_float_array(x, "x"), as_float_array(y, "y"))
    if anp.ndim(getval(value)) != 0:
        raise ShapeError(
            f"f(x, y) must return a scalar; it returned shape {anp.shape(getval(value))}."
        )
    if not onp.isfinite(getval(value)):
        raise NonFiniteError(
            f"f(x, y) = {getval(value)}: the objective is not finite at this (x, y); "
            "check that y lies in the domain of f."
        )
    return Unconstrained(f, y, mode=mode, solver=solver, tol=tol)


def implicit_jacobian(f, x, y, *, mode="min", solver="dense", tol=1e-6, return_info=False):
    """``dy/dx`` at a solution ``y`` of ``argmin_y f(x, y)`` (or argmax / stationary point).

    Returns an array of shape ``shape(y) + shape(x)`` (a float when both are scalars) and,
    with ``return_info=True``, the :class:`~argminlib.SolveInfo` of the linear solves.
    """
    return _problem(f, x, y, mode, solver, tol).jacobian(x, y, return_info)


def implicit_jvp(f, x, y, v, *, mode="min", solver="dense", tol=1e-6, return_info=False):
    """``(dy/dx) v`` for a tangent ``v`` of the shape of ``x``, without forming ``dy/dx``:
    one linear solve. Returns an array of the shape of ``y``."""
    return _problem(f, x, y, mode, solver, tol).jvp(x, y, v, return_info)


def implicit_vjp(f, x, y, u, *, mode="min", solver="dense", tol=1e-6, return_info=False):
    """``u^T (dy/dx)`` for a cotangent ``u`` of the shape of ``y`` (for instance the
    gradient of an upper-level loss in ``y``), without forming ``dy/dx``: one linear solve
    whatever the size of ``x``. Returns an array of the shape of ``x``."""
    return _problem(f, x, y, mode, solver, tol).vjp(x, y, u, return_info)


# --- the lemmas as closed forms -------------------------------------------------------------


def _check(f, x, y, mode, tol, x_ndim, y_ndim, lemma):
    """Shared checks of the lemmas: shapes, finiteness, stationarity and the Hessian."""
    if anp.ndim(getval(x)) != x_ndim or anp.ndim(getval(y)) != y_ndim:
        kinds = {0: "a scalar", 1: "a 1-D array"}
        raise ShapeError(
            f"{lemma} needs x {kinds[x_ndim]} and y {kinds[y_ndim]}; got shapes "
            f"{anp.shape(getval(x))} and {anp.shape(getval(y))}. "
            "Use implicit_jacobian for any shapes."
        )
    _problem(f, x, y, mode, None, tol).check_at(x, y)


def lemma_3_1(f, x, y, *, mode="min", tol=1e-6):
    """Lemma 3.1 (scalar ``x`` and ``y``): ``g'(x) = -f_XY(x, y) / f_YY(x, y)``.

    ``y`` must be a stationary point of ``f(x, .)``; ``mode`` says which kind
    (``"min"``: ``f_YY > 0``, ``"max"``: ``f_YY < 0``, ``"stationary"``: ``f_YY != 0``).
    """
    _check(f, x, y, mode, tol, 0, 0, "Lemma 3.1")
    return -f_XY(f, x, y) / f_YY(f, x, y)


def lemma_3_2(f, x, y, *, mode="min", tol=1e-6):
    """Lemma 3.2 (scalar ``x``, ``y`` in ``R^n``): ``g'(x) = -f_YY^{-1} f_XY``, an n-vector."""
    _check(f, x, y, mode, tol, 0, 1, "Lemma 3.2")
    return -anp.linalg.solve(f_YY(f, x, y), f_XY(f, x, y))


def lemma_3_3(f, x, y, *, tol=1e-6):
    """Lemma 3.3 (argmax, scalar ``x``, ``y`` in ``R^n``): the same formula
    ``g'(x) = -f_YY^{-1} f_XY`` with ``f_YY`` negative definite."""
    _check(f, x, y, "max", tol, 0, 1, "Lemma 3.3")
    return -anp.linalg.solve(f_YY(f, x, y), f_XY(f, x, y))


def lemma_3_4(f, x, y, *, mode="min", tol=1e-6):
    """Lemma 3.4 (``x`` in ``R^m``, ``y`` in ``R^n``): ``Dg(x) = -f_YY^{-1} f_XY`` with
    ``f_XY`` an ``n x m`` matrix: Lemma 3.2 column by column."""
    _check(f, x, y, mode, tol, 1, 1, "Lemma 3.4")
    return -anp.linalg.solve(f_YY(f, x, y), f_XY(f, x, y))
