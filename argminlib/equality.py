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

import warnings

import autograd.numpy as anp
import numpy as onp
import scipy.linalg as sla
import scipy.optimize as sopt
from autograd import grad, jacobian
from autograd.tracer import getval

from .exceptions import (
    ConstraintError,
    ForwardSolveError,
    InfeasibleError,
    NonFiniteError,
    ShapeError,
)
from .linsolve import get_solver
from .primitive import Problem, as_float_array, mode_sign
from .unconstrained import f_XY, f_YY

__all__ = [
    "linear_constraint",
    "Equality",
    "multipliers",
    "lemma_4_1",
    "nullspace_form",
    "slsqp",
]


def linear_constraint(A, b=None):
    """``h(x, y) = A y - b`` as a constraint function; ``A`` (``p x n``) and ``b`` (``p``)
    are arrays or functions of ``x``. ``y`` is flattened. ``b=None`` means ``b = 0``."""

    def h(x, y):
        A_ = A(x) if callable(A) else A
        b_ = 0.0 if b is None else (b(x) if callable(b) else b)
        return anp.dot(A_, anp.reshape(y, (-1,))) - b_

    h.linear = (A, b)
    return h


def _flat(h, x, y):
    return anp.reshape(h(x, y), (-1,))


def _constraint_jacobian(h, x, y):
    """``h_Y`` as a ``p x n`` matrix over the flattened ``y``."""
    shape = anp.shape(getval(y))
    p = int(onp.size(getval(_flat(h, x, y))))
    if p == 0:
        return onp.zeros((0, int(onp.size(getval(y)))))
    return jacobian(lambda z: _flat(h, x, anp.reshape(z, shape)))(anp.reshape(y, (-1,)))


def multipliers(f, h, x, y, *, rcond=1e-10):
    """Lagrange multipliers ``nu`` at ``y``: the least-squares solution of the stationarity
    condition ``f_Y + h_Y^T nu = 0``. Raises :class:`ConstraintError` if ``h_Y`` does not
    have full row rank (the multipliers, and the derivative, are then not unique)."""
    J = onp.asarray(getval(_constraint_jacobian(h, x, y)), dtype=float)
    g = onp.reshape(onp.asarray(getval(grad(f, 1)(x, y)), dtype=float), -1)
    p = J.shape[0]
    if p == 0:
        return onp.zeros(0)
    s = onp.linalg.svd(J, compute_uv=False)
    rank = int(onp.sum(s > rcond * max(s[0], onp.finfo(float).tiny)))
    if rank < p:
        raise ConstraintError(
            f"The constraint Jacobian h_Y (for linear constraints, A) has rank {rank} but "
            f"{p} rows: the constraints are redundant or degenerate at y, so the multipliers "
            "and the derivative are not unique. Remove the dependent constraints."
        )
    return onp.linalg.lstsq(J.T, -g, rcond=None)[0]


def slsqp(f, x, y0, *, eq=None, ineq=None, maximize=False, ftol=1e-15, maxiter=1000):
    """Solve ``min_y f(x, y)`` s.t. ``eq(x, y) = 0``, ``ineq(x, y) <= 0`` with scipy's SLSQP
    and autograd derivatives. Returns ``y`` with the shape of ``y0``.

    Raises :class:`InfeasibleError` when SLSQP reports incompatible constraints and
    :class:`ForwardSolveError` for any other failure. Dense: for small and medium problems.
    """
    x = getval(x)
    y0 = onp.asarray(getval(y0), dtype=float)
    shape = y0.shape
    sign = -1.0 if maximize else 1.0

    def obj(z):
        return sign * f(x, anp.reshape(z, shape))

    cons = []
    for kind, fun, s in (("eq", eq, 1.0), ("ineq", ineq, -1.0)):
        if fun is not None:

            def cf(z, fun=fun, s=s):
                return s * _flat(fun, x, anp.reshape(z, shape))

            cons.append(
                {
                    "type": kind,
                    "fun": lambda z, cf=cf: onp.asarray(cf(z), dtype=float),
                    "jac": lambda z, cf=cf: onp.asarray(jacobian(cf)(z), dtype=float),
                }
            )
    g = grad(obj)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = sopt.minimize(
            lambda z: float(obj(z)),
            y0.reshape(-1),
            jac=lambda z: onp.asarray(g(z), dtype=float),
            method="SLSQP",
            constraints=cons,
            options={"ftol": ftol, "maxiter": maxiter},
        )
    if not res.success:
        msg = str(res.message)
        if "incompatible" in msg.lower() or "infeasible" in msg.lower() or res.status == 4:
            raise InfeasibleError(
                f"SLSQP found no feasible point ({msg}): the constraints may be inconsistent. "
                "Check them, or start from a feasible y0."
            )
        if res.status not in (8, 9):  # 8: line search failed near optimum; checked below
            raise ForwardSolveError(f"SLSQP failed: {msg}")
    if not onp.all(onp.isfinite(res.x)):
        raise ForwardSolveError(f"SLSQP diverged to NaN/inf: {res.message}")
    return res.x.reshape(shape) if shape else float(res.x[0])


class Equality(Problem):
    """``y(x) = argmin_y f(x, y)`` subject to ``h(x, y) = 0`` (or argmax, ``mode="max"``).

    Parameters
    ----------
    f : callable ``f(x, y) -> float``
    h : callable ``h(x, y) -> array`` of ``p`` constraint values (see
        :func:`linear_constraint` for ``A y = b``).
    y0 : float or array, the forward solver's start; fixes the shape of ``y``.
    solver : linear solver: ``"dense"`` (LU with an inertia check), ``"minres"``,
        ``"gmres"``, or :class:`~argminlib.NullSpace` (CG on the reduced Hessian).
    tol : float, largest accepted KKT residual and constraint violation.
    forward : callable ``forward(f, x, y0) -> y`` or ``-> (y, nu)``, optional; default
        :func:`slsqp` followed by Newton steps on the KKT system. Multipliers not returned
        are recovered by :func:`multipliers`.
    """

    def __init__(self, f, h, y0, *, mode="min", solver="dense", tol=1e-6, forward=None):
        self.f, self.h = f, h
        self.mode = mode
        self.definite = mode_sign(mode)
        self.y0 = as_float_array(getval(y0), "y0")
        self.yshape = anp.shape(self.y0)
        self._ny = int(onp.prod(self.yshape)) if self.yshape else 1
        self.constraints = None  # known once h has been evaluated
        self.solver = get_solver(solver)
        self.tol = tol
        self.forward = forward
        self.name = "KKT matrix"
        self.what = "the KKT conditions grad_y L = 0, h(x, y) = 0"

    @property
    def ny(self):
        return self._ny

    def _count(self, x, y):
        hv = onp.asarray(getval(_flat(self.h, getval(x), getval(y))), dtype=float)
        if self.constraints is None:
            self.constraints = hv.size
            self.n = self._ny + hv.size
        elif hv.size != self.constraints:
            raise ShapeError(f"h returned {hv.size} values; it returned {self.constraints} before.")
        return hv

    def optimality(self, x, z):
        """``[grad_y (f + nu^T h) ; h]`` at ``z = (y, nu)``."""
        y = anp.reshape(z[: self._ny], self.yshape)
        nu = z[self._ny :]

        def lagrangian(y_):
            return self.f(x, y_) + anp.dot(nu, _flat(self.h, x, y_))

        gy = anp.reshape(grad(lagrangian)(y), (-1,))
        return anp.concatenate([gy, _flat(self.h, x, y)])

    def check_feasible(self, x, y):
        hv = self._count(x, y)
        if not onp.all(onp.isfinite(hv)):
            raise NonFiniteError("h(x, y) contains NaN or inf.")
        viol = float(onp.linalg.norm(hv))
        if viol > self.tol:
            raise ConstraintError(
                f"y violates the equality constraints: ||h(x, y)|| = {viol:.3e} > tol "
                f"{self.tol:.1e}. Pass a feasible solution (or a more accurate one)."
            )

    def pack(self, x, y):
        self.check_feasible(x, y)
        sign = -1.0 if self.mode == "max" else 1.0
        f = self.f if sign > 0 else (lambda x_, y_: -self.f(x_, y_))
        nu = sign * multipliers(f, self.h, getval(x), getval(y))
        return anp.concatenate([anp.reshape(y, (-1,)), nu])

    def solve(self, x):
        xv = getval(x)
        out = (
            self.forward(self.f, xv, self.y0)
            if self.forward is not None
            else slsqp(self.f, xv, self.y0, eq=self.h, maximize=self.mode == "max")
        )
        y, nu = out if isinstance(out, tuple) else (out, None)
        y = onp.asarray(getval(y), dtype=float)
        if y.size != self._ny:
            raise ShapeError(f"The forward solver returned {y.size} values; y0 has {self._ny}.")
        y = y.reshape(self.yshape)
        try:
            self.check_feasible(xv, y)
        except ConstraintError as err:
            raise InfeasibleError(
                f"The forward solver returned an infeasible point ({err}). The constraints "
                "may have no common solution: check them, or pass a feasible y0."
            ) from None
        z = self.pack(xv, y) if nu is None else onp.concatenate([y.reshape(-1), nu])
        z = _newton_polish(self.optimality, xv, onp.asarray(z, dtype=float))
        self.check_feasible(xv, z[: self._ny].reshape(self.yshape))
        self.linearize(xv, z)
        return z


def _newton_polish(F, x, z, steps=5, tol=1e-13):
    """Newton steps on ``F(x, z) = 0`` with the dense Jacobian while the residual falls:
    turns a solver's 1e-8 answer into a 1e-14 one (small and medium problems)."""
    r = onp.asarray(F(x, z), dtype=float)
    for _ in range(steps):
        nr = onp.linalg.norm(r)
        if nr <= tol:
            break
        J = onp.asarray(jacobian(lambda z_: F(x, z_))(z), dtype=float)
        try:
            dz = onp.linalg.lstsq(J, -r, rcond=None)[0]
        except onp.linalg.LinAlgError:
            break
        r_new = onp.asarray(F(x, z + dz), dtype=float)
        if not onp.linalg.norm(r_new) < nr:
            break
        z, r = z + dz, r_new
    return z


# --- the closed forms for linear constraints ------------------------------------------------


def _linear_terms(f, x, y, A, b, tol):
    """Shared by the closed forms: checks, then ``A``, ``H = f_YY``, ``B`` and ``C``.

    ``B = f_XY + d/dx (A(x)^T nu)`` (just ``f_XY`` when ``A`` is fixed) and
    ``C = d/dx (A(x) y - b(x))`` (zero when ``A`` and ``b`` are fixed)."""
    if anp.ndim(getval(y)) != 1 or anp.ndim(getval(x)) > 1:
        raise ShapeError("Lemma 4.1 needs y a 1-D array and x a scalar or 1-D array.")
    h = linear_constraint(A, b)
    problem = Equality(f, h, y, tol=tol)
    problem.check_at(x, y)  # feasibility, KKT residual, rank and inertia
    nu = problem.pack(x, y)[problem.ny :]
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

    ``A`` and ``b`` may be functions of ``x``; then ``f_XY`` gains ``d/dx (A^T nu)`` and the
    right-hand side gains ``C = d/dx (A y - b)``:
    ``g'(x) = H^{-1} A^T (A H^{-1} A^T)^{-1} (A H^{-1} B - C) - H^{-1} B``.
    """
    A, H, B, C = _linear_terms(f, x, y, A, b, tol)
    Hi_At = anp.linalg.solve(H, anp.transpose(A))
    Hi_B = anp.linalg.solve(H, B)
    return anp.dot(Hi_At, anp.linalg.solve(anp.dot(A, Hi_At), anp.dot(A, Hi_B) - C)) - Hi_B


def nullspace_form(f, x, y, A, b=None, *, tol=1e-6):
    """The null-space form of Lemma 4.1: with ``F`` an orthonormal basis of ``null(A)``,

    ``g'(x) = -F (F^T H F)^{-1} F^T f_XY``,

    well defined whenever ``H`` is positive definite on ``null(A)`` (even if indefinite
    elsewhere). With ``A(x)``, ``b(x)``: ``g' = y_p' + F z'``, ``y_p' = -A^+ C``,
    ``z' = -(F^T H F)^{-1} F^T (B + H y_p')``.
    """
    A, H, B, C = _linear_terms(f, x, y, A, b, tol)
    F = sla.null_space(onp.asarray(getval(A), dtype=float))
    yp = -anp.dot(anp.linalg.pinv(A), C)
    Ft = anp.transpose(F)
    return yp - anp.dot(
        F, anp.linalg.solve(anp.dot(Ft, anp.dot(H, F)), anp.dot(Ft, B + anp.dot(H, yp)))
    )
