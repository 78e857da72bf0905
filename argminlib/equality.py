"""Equality-constrained argmin (section 4.1 of Gould et al., 2016).

For ``y(x) = argmin_y f(x, y)`` subject to ``h(x, y) = 0`` (``p`` equations) the optimality
function is the KKT residual of the Lagrangian ``L = f + nu^T h``,

    F(x, (y, nu)) = [ grad_y L(x, y, nu) ;  h(x, y) ],

whose Jacobian in ``(y, nu)`` is the symmetric, indefinite KKT matrix
``[[L_YY, h_Y^T], [h_Y, 0]]``. :class:`Equality` hands ``F`` to the same core as every other
problem; solve it densely (LU), with MINRES, or with :class:`~argminlib.NullSpace` (CG on
the reduced Hessian). For linear constraints ``A y = b`` the closed forms of the paper are
:func:`lemma_4_1` and :func:`nullspace_form`.
"""

from __future__ import annotations

import autograd.numpy as anp
import numpy as onp
import scipy.linalg as sla
from autograd import grad, jacobian
from autograd.tracer import getval

from .exceptions import ConstraintError, InfeasibleError, NonFiniteError, ShapeError
from .forward import slsqp
from .linsolve import normalized_rows, numerical_rank
from .partials import (
    check_constraint,
    check_objective,
    constraint_jacobian,
    f_XY,
    f_YY,
    flat_values,
)
from .problem import Conditions, Problem

__all__ = [
    "linear_constraint",
    "Equality",
    "multipliers",
    "lemma_4_1",
    "nullspace_form",
    "constraint_distance",
]


def linear_constraint(A, b=None):
    """``h(x, y) = A y - b`` as a constraint function; ``A`` (``p x n``) and ``b`` (``p``)
    are arrays or functions of ``x``. ``y`` is flattened. ``b=None`` means ``b = 0``."""

    def h(x, y):
        A_ = A(x) if callable(A) else A
        b_ = 0.0 if b is None else (b(x) if callable(b) else b)
        shape_A, shape_b = anp.shape(A_), anp.shape(b_)
        size_y = int(onp.size(getval(y)))
        if len(shape_A) != 2 or shape_A[1] != size_y or shape_b not in ((), (shape_A[0],)):
            raise ShapeError(
                f"linear_constraint: A has shape {shape_A} and b {shape_b}, but y has "
                f"{size_y} entries: A must be p x {size_y} and b a vector of length p."
            )
        return anp.dot(A_, anp.reshape(y, (-1,))) - b_

    h.linear = (A, b)
    return h


def constraint_distance(h, x, y):
    """``(values, distances)``: the constraint values ``h_i(x, y)`` and their first-order
    distances ``h_i / ||grad_y h_i||`` in ``y`` units (the value itself where the gradient
    vanishes). Scale-free: multiplying ``h_i`` by a constant does not change it."""
    hv = onp.asarray(getval(flat_values(h, x, y)), dtype=float)
    if hv.size == 0:
        return hv, hv
    J = onp.asarray(getval(constraint_jacobian(h, x, y)), dtype=float).reshape(hv.size, -1)
    if not (onp.all(onp.isfinite(hv)) and onp.all(onp.isfinite(J))):
        raise NonFiniteError("The constraints (or their Jacobian) are NaN or inf at y.")
    norms = onp.linalg.norm(J, axis=1)
    return hv, onp.where(norms > 0, hv / onp.where(norms > 0, norms, 1.0), hv)


def multipliers(f, h, x, y, *, rcond=1e-10):
    """Lagrange multipliers ``nu`` at ``y``: the least-squares solution of the stationarity
    condition ``f_Y + h_Y^T nu = 0``. Raises :class:`ConstraintError` if ``h_Y`` does not
    have full row rank (the multipliers, and the derivative, are then not unique)."""
    J = onp.asarray(getval(constraint_jacobian(h, x, y)), dtype=float)
    g = onp.reshape(onp.asarray(getval(grad(f, 1)(x, y)), dtype=float), -1)
    p = J.shape[0]
    if p == 0:
        return onp.zeros(0)
    # each row divided by its norm: the rank, and the multipliers' accuracy, do not depend
    # on the units of each constraint (rows of 1e6 and 1e-6 are independent)
    Jn, norms = normalized_rows(J.reshape(p, -1))
    s = onp.linalg.svd(Jn, compute_uv=False)
    rank = numerical_rank(s, rcond)
    if rank < p:
        raise ConstraintError(
            f"The constraint Jacobian h_Y (for linear constraints, A) has rank {rank} but "
            f"{p} rows: the constraints are redundant or degenerate at y, so the multipliers "
            "and the derivative are not unique. Remove the dependent constraints."
        )
    return onp.linalg.lstsq(Jn.T, -g, rcond=None)[0] / norms


class Equality(Problem):
    """``y(x) = argmin_y f(x, y)`` subject to ``h(x, y) = 0`` (or argmax, ``mode="max"``).

    Parameters
    ----------
    f : callable
        ``f(x, y) -> float``, written with ``autograd.numpy``.
    h : callable
        ``h(x, y) -> array`` of ``p`` constraint values (for ``A y = b`` see
        :func:`~argminlib.linear_constraint`).
    y0 : float or array
        The forward solver's start; fixes the shape of ``y``.
    mode : {"min", "max"}
        Minimise or maximise ``f``.
    solver : str or linear solver
        ``"dense"`` (LU), ``"minres"``, ``"gmres"``, or :class:`~argminlib.NullSpace` (CG
        on the reduced Hessian).
    tol : float
        Largest accepted Newton step on the KKT system (its ``y`` part), relative to
        ``max(1, |y|)``; also the largest accepted constraint violation, measured as a
        distance ``|h_i| / ||grad h_i||`` relative to ``max(1, |y|)``.
    forward : callable, optional
        ``forward(f, x, y0) -> y`` or ``-> (y, nu)``; default :func:`~argminlib.slsqp`.
        The multipliers are those of least squares at ``y`` (:func:`~argminlib.multipliers`,
        exact at a stationary ``y``), also when the forward solver returns some (their
        number is checked); the answer is polished by at most five Newton steps.
    certify : bool or Certify
        The second-order check (the Hessian of the Lagrangian definite on the null space
        of ``h_Y``; equivalently the KKT matrix's inertia).
    """

    matrix_name = "KKT matrix"
    conditions = "the KKT conditions grad_y L = 0, h(x, y) = 0"

    def __init__(
        self,
        f,
        h,
        y0,
        *,
        mode="min",
        solver="dense",
        tol=1e-6,
        forward=None,
        certify=True,
        warm_start=False,
    ):
        if not callable(h):
            raise ShapeError("h must be a function h(x, y) returning the constraint values")
        self.f, self.h = f, h
        self.forward_solver = forward
        self.setup(y0, mode, solver, tol, certify, warm_start)

    def optimality(self, x, z):
        """``[grad_y (f + nu^T h) ; h]`` at ``z = (y, nu)``."""
        y = anp.reshape(z[: self.ny], self.yshape)
        nu = z[self.ny :]

        def lagrangian(y_):
            return self.f(x, y_) + anp.dot(nu, flat_values(self.h, x, y_))

        gy = anp.reshape(grad(lagrangian)(y), (-1,))
        return anp.concatenate([gy, flat_values(self.h, x, y)])

    def check_feasible(self, x, y, error=ConstraintError):
        """Raise ``error`` if some ``|h_i| / ||grad h_i||`` exceeds ``tol * max(1, |y|)``."""
        hv, dist = constraint_distance(self.h, x, y)
        limit = self.tol * max(1.0, float(onp.max(onp.abs(y))) if onp.size(y) else 1.0)
        if dist.size and onp.max(onp.abs(dist)) > limit:
            i = int(onp.argmax(onp.abs(dist)))
            raise error(
                f"y violates the equality constraints: h_{i}(x, y) = {hv[i]:.3e}, a distance "
                f"of {abs(dist[i]):.3e} from the constraint > tol * max(1, |y|) = {limit:.1e}. "
                "Pass a feasible solution (or a more accurate one)."
            )

    def check_solution(self, x, y):
        self.check_feasible(x, y)

    def forward(self, x):
        if self.forward_solver is not None:  # (checked at its solution)
            return self.forward_solver(self.f, x, self.start)
        check_objective(self.f, x, self.start, "y0")
        check_constraint(self.h, x, self.start, "h")
        return slsqp(self.f, x, self.start, eq=self.h, maximize=self.mode == "max")

    def complete(self, x, y, multipliers_=None, feasible=True):
        check_objective(self.f, x, y)
        check_constraint(self.h, x, y, "h", "y")
        hv = onp.asarray(getval(flat_values(self.h, x, y)), dtype=float)
        if feasible:
            self.check_feasible(x, y)
        if multipliers_ is not None:
            given = onp.asarray(multipliers_, dtype=float).reshape(-1)
            if given.size != hv.size:
                raise ShapeError(
                    f"The forward solver returned {given.size} multipliers for {hv.size} "
                    "constraints."
                )
        # the least-squares multipliers at y, whatever the forward solver returned: exact at
        # a stationary y, whereas wrong multipliers from a forward solver would enter the
        # derivative (through the constraints' curvature) with a Newton step of zero primal
        # part, which the acceptance test cannot see
        nu = multipliers(self.f, self.h, x, y)
        z = onp.concatenate([onp.reshape(y, (-1,)), nu])
        return Conditions(z, self.optimality, hv.size)

    def solve(self, x):
        try:
            return super().solve(x)
        except ConstraintError as err:
            if isinstance(err, InfeasibleError):
                raise
            raise InfeasibleError(
                f"The forward solver returned an infeasible point ({err}). The constraints "
                "may have no common solution: check them, or pass a feasible y0."
            ) from None


# --- the closed forms for linear constraints ------------------------------------------------


def _linear_terms(f, x, y, A, b, tol):
    """Shared by the closed forms: checks, then ``A``, ``H = f_YY``, ``B`` and ``C``.

    ``B = f_XY + d/dx (A(x)^T nu)`` (just ``f_XY`` when ``A`` is fixed) and
    ``C = d/dx (A(x) y - b(x))`` (zero when ``A`` and ``b`` are fixed)."""
    if anp.ndim(getval(y)) != 1 or anp.ndim(getval(x)) > 1:
        raise ShapeError("Lemma 4.1 needs y a 1-D array and x a scalar or 1-D array.")
    h = linear_constraint(A, b)
    problem = Equality(f, h, y, tol=tol)
    nu = problem.at(x, y).z[problem.ny :]  # feasibility, KKT step, rank and inertia checked
    A_x = A(x) if callable(A) else onp.asarray(A, dtype=float)
    H = f_YY(f, x, y)
    if callable(A):
        B = jacobian(lambda x_: grad(f, 1)(x_, y) + anp.dot(nu, A(x_)))(x)
    else:
        B = f_XY(f, x, y)
    C = jacobian(lambda x_: h(x_, y))(x) if (callable(A) or callable(b)) else 0.0 * (A_x @ B)
    return A_x, H, B, C


def lemma_4_1(f, x, y, A, b=None, *, tol=1e-6):
    """Lemma 4.1 (linear equality ``A y = b``): at a solution ``y``,

    ``g'(x) = (H^{-1} A^T (A H^{-1} A^T)^{-1} A H^{-1} - H^{-1}) f_XY``,  ``H = f_YY``.

    ``A`` and ``b`` may be functions of ``x``; then ``f_XY`` gains ``d/dx (A^T nu)`` (``nu``
    the multipliers, :func:`multipliers`) and the
    right-hand side gains ``K = d/dx (A y - b)``:
    ``g'(x) = H^{-1} A^T (A H^{-1} A^T)^{-1} (A H^{-1} B - K) - H^{-1} B``,
    with ``B`` the ``f_XY`` so extended.
    """
    A, H, B, C = _linear_terms(f, x, y, A, b, tol)
    Hi_At = anp.linalg.solve(H, anp.transpose(A))
    Hi_B = anp.linalg.solve(H, B)
    return anp.dot(Hi_At, anp.linalg.solve(anp.dot(A, Hi_At), anp.dot(A, Hi_B) - C)) - Hi_B


def nullspace_form(f, x, y, A, b=None, *, tol=1e-6):
    """The null-space form of Lemma 4.1: with ``N`` an orthonormal basis of ``null(A)``,

    ``g'(x) = -N (N^T H N)^{-1} N^T f_XY``,

    well defined whenever ``H`` is positive definite on ``null(A)`` (even if indefinite
    elsewhere). With ``A(x)``, ``b(x)``: ``g' = y_p' + N z'``, ``y_p' = -A^+ K``,
    ``z' = -(N^T H N)^{-1} N^T (B + H y_p')``.
    """
    A, H, B, C = _linear_terms(f, x, y, A, b, tol)
    F = sla.null_space(onp.asarray(getval(A), dtype=float))
    yp = -anp.dot(anp.linalg.pinv(A), C)
    Ft = anp.transpose(F)
    return yp - anp.dot(
        F, anp.linalg.solve(anp.dot(Ft, anp.dot(H, F)), anp.dot(Ft, B + anp.dot(H, yp)))
    )
