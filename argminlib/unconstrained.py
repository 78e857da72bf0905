"""Unconstrained argmin and argmax (section 3 of Gould et al., 2016).

For ``g(x) = argmin_y f(x, y)`` the optimality function is the gradient ``f_Y(x, y)``; its
``y``-Jacobian is the Hessian ``f_YY`` and its ``x``-Jacobian is ``f_XY``. The implicit
function theorem then gives Lemmas 3.1-3.4, written out below as closed forms, and the
general, matrix-free versions :func:`implicit_jacobian`, :func:`implicit_jvp` and
:func:`implicit_vjp`, which go through ``argminlib.implicit``.

A Jacobian ``dy/dx`` has shape ``shape(y) + shape(x)``, as ``autograd.jacobian`` returns it.
"""

from __future__ import annotations

import autograd.numpy as anp
import numpy as onp
from autograd import grad
from autograd.tracer import getval

from .exceptions import (
    CurvatureError,
    ForwardSolveError,
    LinearSolveError,
    NonSmoothError,
    NotStationaryError,
    ShapeError,
    SingularHessianError,
)
from .forward import gradient_jumps, newton, quasi_newton, stationary_point
from .hessian import user_hessian
from .implicit import plain
from .partials import check_objective, f_XY, f_YY
from .problem import Conditions, Problem, as_float_array

__all__ = [
    "Unconstrained",
    "lemma_3_1",
    "lemma_3_2",
    "lemma_3_3",
    "lemma_3_4",
    "implicit_jacobian",
    "implicit_jvp",
    "implicit_vjp",
]


#: the refusals of a solution that a kink of f can cause (see Unconstrained.diagnose_refusal)
REFUSALS = (
    CurvatureError,
    ForwardSolveError,
    NotStationaryError,
    SingularHessianError,
    LinearSolveError,
)


class Unconstrained(Problem):
    """``y(x) = argmin_y f(x, y)`` (``mode="min"``), ``argmax`` (``"max"``), or any
    stationary point with invertible Hessian (``"stationary"``).

    Call the instance with ``x`` for the solution, differentiable by autograd.

    Parameters
    ----------
    f : callable
        ``f(x, y) -> float``, written with ``autograd.numpy``.
    y0 : float or array
        Starting point of the forward solver; fixes the shape of ``y``.
    mode : {"min", "max", "stationary"}
        What ``y`` is: a minimiser, a maximiser or any stationary point.
    solver : str or linear solver
        The linear solver of the derivatives (see :func:`argminlib.get_solver`).
    tol : float
        Largest accepted Newton step, relative to ``max(1, |y|)``.
    forward : callable, optional
        ``forward(f, x, y0) -> y``, the lower-level solver; default
        :func:`argminlib.newton` (trust-region Newton-CG that leaves saddles) for min/max,
        :func:`~argminlib.stationary_point` for ``"stationary"``. Its answer is polished by
        at most five Newton steps.
    certify : bool or Certify
        ``True``, ``False`` or a :class:`argminlib.Certify`: the second-order check.
    warm_start : bool
        Start each forward solve from the last accepted solution instead of ``y0`` (see
        :attr:`Problem.start <argminlib.Problem.start>`): in an upper-level loop, where
        ``x`` moves a little per step, the polish alone then often finishes the solve.
    hess : callable, optional
        ``hess(x, y)``: ``f_YY`` as an array, a scipy.sparse matrix or a LinearOperator
        (scipy's name). Used by the linear solves and the certificate and checked against
        autograd at each solution (see :mod:`argminlib.hessian`); with a sparse ``hess``
        use ``solver="sparse"`` (one factorisation per solution) or a Krylov solver (then
        Jacobi-preconditioned by default).
    hessp : callable, optional
        ``hessp(x, y, v)``: the product ``f_YY v`` (scipy's name), used and checked like
        ``hess``.
    hess_sparsity : array or scipy.sparse matrix, optional
        The pattern of nonzeros of ``f_YY``: the sparse Hessian is recovered from one
        product per group of structurally independent columns. Use it with
        ``solver="sparse"`` or a Krylov solver, as a sparse ``hess``.
    """

    matrix_name = "Hessian f_YY"
    conditions = "the stationarity condition f_Y(x, y) = 0"

    def __init__(
        self,
        f,
        y0,
        *,
        mode="min",
        solver="dense",
        tol=1e-6,
        forward=None,
        certify=True,
        hess=None,
        hessp=None,
        hess_sparsity=None,
        warm_start=False,
    ):
        self.f = f
        self.forward_solver = forward
        self.setup(y0, mode, solver, tol, certify, warm_start)
        self.hessian = user_hessian(hess, hessp, hess_sparsity, n=self.ny, yshape=self.yshape)

    def optimality(self, x, z):
        """``F(x, z) = f_Y(x, y)`` flattened, with ``y = reshape(z)``."""
        g = grad(lambda z_: self.f(x, anp.reshape(z_, self.yshape)))(z)
        return anp.reshape(g, (-1,))

    def forward(self, x):
        if self.forward_solver is not None:  # (y0 is the user's solver's business; f is
            return self.forward_solver(self.f, x, self.start)  # checked at its solution)
        check_objective(self.f, x, self.start, "y0")
        if self.mode == "stationary":
            return stationary_point(self.f, x, self.start)
        return quasi_newton(self.f, x, self.start, maximize=self.mode == "max")

    def solve(self, x):
        """Solve at ``x``: the forward solver, then the Newton polish and the certificate.
        By default the forward solver is :func:`~argminlib.quasi_newton` (L-BFGS), which
        can stop at a saddle or fail to converge; when the certificate or the polish
        refuses its answer, the problem is solved again by :func:`~argminlib.newton`
        (trust-region Newton that leaves saddles) from ``y0``, and that answer decides,
        and if that is refused too and the gradient of ``f`` jumps at its answer, the refusal
        is a kink (:meth:`diagnose_refusal`)."""
        xv = plain(x)
        try:
            return super().solve(x)
        except REFUSALS as err:
            default = self.forward_solver is None and self.mode != "stationary"
            if not (
                default and isinstance(err, (CurvatureError, ForwardSolveError, LinearSolveError))
            ):
                self.diagnose_refusal(xv, err)
                raise
            first = err
        try:  # (outside the except clause: the fallback's errors are its own)
            return self.accept(xv, newton(self.f, xv, self.y0, maximize=self.mode == "max"))
        except REFUSALS as err:
            self.diagnose_refusal(xv, err)  # (at the fallback's answer)
            raise err from first

    def at(self, x, y):
        try:
            return super().at(x, y)
        except REFUSALS as err:
            self.diagnose_refusal(plain(x), err)
            raise

    at.__doc__ = Problem.at.__doc__

    def diagnose_refusal(self, x, err):
        """Raise :class:`~argminlib.NonSmoothError` (from ``err``) when the gradient of
        ``f`` jumps at the answer just refused (:func:`~argminlib.gradient_jumps`): a
        refusal there (a 'saddle' of autograd's Hessian of ``|y|``, a polish that cannot
        converge) is not the problem's curvature but a kink, which the implicit function
        theorem on ``f_Y = 0`` cannot handle; the message points to the route that does,
        a fixed point of a proximal step. Otherwise return (``err`` stands)."""
        y = self.candidate
        if y is None:
            return
        jumps = gradient_jumps(self.f, x, y)
        if not jumps.size:
            return
        shown = ", ".join(str(int(i)) for i in jumps[:8]) + (", ..." if jumps.size > 8 else "")
        raise NonSmoothError(
            f"f is not differentiable at the y found: its gradient f_Y jumps there in "
            f"{jumps.size} entr{'y' if jumps.size == 1 else 'ies'} (flat indices {shown}), "
            "as |y_i| does at y_i = 0 or a max at a tie. Smooth stationarity f_Y = 0 and its "
            "implicit derivative do not apply at a kink (what was refused: "
            f"{type(err).__name__}). For an l1 (lasso) or other proximal problem, write the "
            "solution as the fixed point of a proximal-gradient step and differentiate "
            "that: y = al.fixed_point(lambda x, y: prox(x, y - t * grad_smooth(x, y)), x, "
            "y_solved), e.g. with the soft threshold prox = sign(v) * max(|v| - t x, 0) (the "
            "book's chapter 4, 'Non-smooth problems'); or smooth f (e.g. sqrt(y^2 + eps^2) "
            "for |y|, with eps well above 1e-6 times the scale of y: a sharper bend is a kink "
            "at the resolution of this check and of the derivative).",
            coordinates=jumps,
        ) from err

    def complete(self, x, y, multipliers=None, feasible=True):
        check_objective(self.f, x, y)
        return Conditions(onp.reshape(onp.asarray(y, dtype=float), (-1,)), self.optimality)


# --- the general derivatives through the core -------------------------------------------


def _problem(f, y, mode, solver, tol, certify):
    y = as_float_array(y, "y")  # named as the caller knows it (not y0)
    return Unconstrained(f, y, mode=mode, solver=solver, tol=tol, certify=certify)


def implicit_jacobian(
    f, x, y, *, mode="min", solver="dense", tol=1e-6, certify=True, return_info=False
):
    """``dy/dx`` at a solution ``y`` of ``argmin_y f(x, y)`` (or argmax / stationary point).

    Returns an array of shape ``shape(y) + shape(x)`` (a float when both are scalars) and,
    with ``return_info=True``, the :class:`~argminlib.SolveInfo` of the linear solves.
    """
    return _problem(f, y, mode, solver, tol, certify).jacobian(x, y, return_info)


def implicit_jvp(
    f, x, y, v, *, mode="min", solver="dense", tol=1e-6, certify=True, return_info=False
):
    """``(dy/dx) v`` for a tangent ``v`` of the shape of ``x``, without forming ``dy/dx``:
    one linear solve. Returns an array of the shape of ``y``."""
    return _problem(f, y, mode, solver, tol, certify).jvp(x, y, v, return_info)


def implicit_vjp(
    f, x, y, u, *, mode="min", solver="dense", tol=1e-6, certify=True, return_info=False
):
    """``u^T (dy/dx)`` for a cotangent ``u`` of the shape of ``y`` (for instance the
    gradient of an upper-level loss in ``y``), without forming ``dy/dx``: one linear solve
    whatever the size of ``x``. Returns an array of the shape of ``x``."""
    return _problem(f, y, mode, solver, tol, certify).vjp(x, y, u, return_info)


# --- the lemmas as closed forms -------------------------------------------------------------


def _check(f, x, y, mode, tol, x_ndim, y_ndim, lemma):
    """Shared checks of the lemmas: shapes, finiteness, stationarity and the Hessian's
    exact eigenvalues. Returns ``x`` and ``y`` as floats."""
    x, y = as_float_array(x, "x"), as_float_array(y, "y")
    if onp.ndim(getval(x)) != x_ndim or onp.ndim(getval(y)) != y_ndim:
        kinds = {0: "a scalar", 1: "a 1-D array"}
        raise ShapeError(
            f"{lemma} needs x {kinds[x_ndim]} and y {kinds[y_ndim]}; got shapes "
            f"{onp.shape(getval(x))} and {onp.shape(getval(y))}. "
            "Use implicit_jacobian for any shapes."
        )
    _problem(f, y, mode, "dense", tol, True).at(x, y)
    return x, y


def lemma_3_1(f, x, y, *, mode="min", tol=1e-6):
    """Lemma 3.1 (scalar ``x`` and ``y``): ``g'(x) = -f_XY(x, y) / f_YY(x, y)``.

    ``y`` must be a stationary point of ``f(x, .)``; ``mode`` says which kind
    (``"min"``: ``f_YY > 0``, ``"max"``: ``f_YY < 0``, ``"stationary"``: ``f_YY != 0``).
    """
    x, y = _check(f, x, y, mode, tol, 0, 0, "Lemma 3.1")
    return -f_XY(f, x, y) / f_YY(f, x, y)


def lemma_3_2(f, x, y, *, mode="min", tol=1e-6):
    """Lemma 3.2 (scalar ``x``, ``y`` in ``R^n``): ``g'(x) = -f_YY^{-1} f_XY``, an n-vector."""
    x, y = _check(f, x, y, mode, tol, 0, 1, "Lemma 3.2")
    return -anp.linalg.solve(f_YY(f, x, y), f_XY(f, x, y))


def lemma_3_3(f, x, y, *, tol=1e-6):
    """Lemma 3.3 (argmax, scalar ``x``, ``y`` in ``R^n``): the same formula
    ``g'(x) = -f_YY^{-1} f_XY`` with ``f_YY`` negative definite."""
    x, y = _check(f, x, y, "max", tol, 0, 1, "Lemma 3.3")
    return -anp.linalg.solve(f_YY(f, x, y), f_XY(f, x, y))


def lemma_3_4(f, x, y, *, mode="min", tol=1e-6):
    """Lemma 3.4 (``x`` in ``R^m``, ``y`` in ``R^n``): ``Dg(x) = -f_YY^{-1} f_XY`` with
    ``f_XY`` an ``n x m`` matrix: Lemma 3.2 column by column."""
    x, y = _check(f, x, y, mode, tol, 1, 1, "Lemma 3.4")
    return -anp.linalg.solve(f_YY(f, x, y), f_XY(f, x, y))
