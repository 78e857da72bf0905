"""Inequality-constrained argmin (section 4.2 of Gould et al., 2016).

Two routes to the derivative of ``y(x) = argmin_y f(x, y)`` s.t. ``c(x, y) <= 0``:

* **the paper's log-barrier approximation** (Lemma 4.2): replace the problem by
  ``g_t(x) = argmin_y t f(x, y) - sum_i log(-c_i(x, y))``, an unconstrained problem, and
  differentiate it with Lemma 3.2. As ``t -> inf``, ``g_t`` and ``g_t'`` approach the
  constrained solution and its derivative wherever the active set is locally stable.
  :class:`Barrier` is an :class:`~argminlib.Unconstrained` problem with the barrier
  objective and a barrier-method forward solver.
* **the exact derivative** from the KKT conditions: at a solution, the active constraints
  behave as equalities, so :class:`Inequality` differentiates the KKT conditions of the
  active set. At a degenerate point (an active constraint with zero multiplier) the
  solution map has a kink; a :class:`~argminlib.DegenerateConstraintWarning` names the
  constraint and the one-sided derivative that keeps it active is returned.

Activity and feasibility are judged by the first-order distance ``-c_i / ||grad_y c_i||``
to each constraint (in ``y`` units), and degeneracy by the multiplier's share
``lambda_i ||grad_y c_i|| / ||grad_y f||`` of the objective's gradient: neither changes
when ``f`` or a ``c_i`` is multiplied by a positive constant.
"""

from __future__ import annotations

import numbers
import warnings

import autograd.numpy as anp
import numpy as onp
from autograd import grad
from autograd.tracer import getval, isbox

from .equality import constraint_distance, multipliers
from .exceptions import (
    ConstraintError,
    DegenerateConstraintWarning,
    InfeasibleError,
    InputError,
    NotStationaryError,
    ShapeError,
)
from .forward import barrier_objective, barrier_solve, check_strictly_feasible, slsqp
from .partials import (
    check_constraint,
    check_objective,
    constraint_jacobian,
    f_XY,
    f_YY,
    flat_values,
)
from .problem import Conditions, Problem, check_tol
from .unconstrained import Unconstrained

__all__ = ["Barrier", "lemma_4_2", "active_set", "Inequality"]


def _check_t(t):
    if isbox(t):
        raise InputError(
            "The barrier parameter t is being differentiated: Barrier treats t as a fixed "
            "setting. To differentiate with respect to t, write the barrier objective "
            "t f - sum(log(-c)) yourself with t inside x and use argmin."
        )
    if not (isinstance(t, numbers.Real) and not isinstance(t, bool) and onp.isfinite(t) and t > 0):
        raise InputError(f"The barrier parameter t must be a finite positive number; got {t!r}.")
    return float(t)


class Barrier(Unconstrained):
    """The log-barrier approximation ``g_t(x) = argmin_y t f(x, y) - sum_i log(-c_i(x, y))``
    of ``argmin_y f(x, y) s.t. c(x, y) <= 0`` (``mode="max"``: of the argmax).

    An :class:`~argminlib.Unconstrained` problem in every respect (its derivative is
    Lemma 4.2, i.e. Lemma 3.2 on ``phi_t``), with :func:`~argminlib.barrier_solve` as
    forward solver and the start ``y0`` required strictly feasible.
    """

    def __init__(
        self, f, c, t, y0, *, mode="min", solver="dense", tol=1e-6, forward=None, certify=True
    ):
        t = _check_t(t)
        self.f0, self.c, self.t = f, c, t
        phi = barrier_objective(f, c, t, maximize=mode == "max")

        def default_forward(_phi, x, y0):
            check_strictly_feasible(c, x, y0, "The starting point y0")
            return barrier_solve(f, c, x, y0, t, maximize=mode == "max")

        super().__init__(
            phi,
            y0,
            mode=mode,
            solver=solver,
            tol=tol,
            forward=forward or default_forward,
            certify=certify,
        )
        self.matrix_name = f"Hessian of the barrier objective (t = {t:g})"
        self.conditions = f"the barrier stationarity condition grad_y phi_t = 0 (t = {t:g})"

    def forward(self, x):
        check_strictly_feasible(self.c, x, self.y0, "The starting point y0")
        return super().forward(x)

    def complete(self, x, y, multipliers_=None, feasible=True):
        check_strictly_feasible(self.c, x, y, "y")
        return super().complete(x, y)

    def check_solution(self, x, y):
        """The accepted (polished) ``y`` must still be strictly feasible: with a very large
        ``t`` the barrier term vanishes in floating point and Newton steps can leave the
        feasible set."""
        try:
            check_strictly_feasible(self.c, x, y, "The barrier solution y")
        except InfeasibleError as err:
            raise InfeasibleError(
                f"{err} With t = {self.t:g} the barrier term is negligible against t f in "
                "floating point: use a smaller t (the barrier error falls as 1/t), or the "
                "exact Inequality problem."
            ) from None


def lemma_4_2(f, c, t, x, y, *, tol=1e-6):
    """Lemma 4.2: the derivative of the barrier approximation ``g_t`` at its solution ``y``,

    ``g_t'(x) = -phi_YY^{-1} phi_XY``,   ``phi = t f - sum_i log(-c_i)``,

    i.e. Lemma 3.2 applied to the barrier objective (a division for scalar ``y``)."""
    problem = Barrier(f, c, t, y, tol=tol)
    problem.at(x, y)
    phi = problem.f
    H, B = f_YY(phi, x, y), f_XY(phi, x, y)
    return -B / H if anp.ndim(H) == 0 else -anp.linalg.solve(H, B)


def active_set(c, x, y, *, active_tol=1e-6, feas_tol=1e-6):
    """Indices ``i`` of the active constraints: those whose first-order distance
    ``-c_i / ||grad_y c_i||`` is at most ``active_tol * s_i``, with the scale
    ``s_i = max(1, |n_i . y|)`` of ``y`` along the constraint's unit normal ``n_i`` (so a
    large entry of ``y`` that the constraint does not involve does not widen its band).
    Raises :class:`ConstraintError` if a constraint is violated by a distance above
    ``feas_tol * s_i``. Scale-free: multiplying ``c_i`` by a constant changes nothing."""
    active_tol = check_tol(active_tol, "active_tol")
    feas_tol = check_tol(feas_tol, "feas_tol")
    xv, yv = getval(x), getval(y)
    cv, dist = constraint_distance(c, xv, yv)
    if not dist.size:
        return onp.zeros(0, dtype=int)
    J = onp.asarray(getval(constraint_jacobian(c, xv, yv)), dtype=float).reshape(dist.size, -1)
    norms = onp.linalg.norm(J, axis=1)
    along = onp.abs(J @ onp.reshape(yv, -1)) / onp.where(norms > 0, norms, 1.0)
    scale = onp.maximum(1.0, along)
    excess = dist / scale
    if onp.max(excess) > feas_tol:
        i = int(onp.argmax(excess))
        raise ConstraintError(
            f"y violates inequality constraint {i}: c_{i}(x, y) = {cv[i]:.3e}, a distance of "
            f"{dist[i]:.3e} outside > {feas_tol * scale[i]:.1e}. Pass a feasible solution."
        )
    return onp.flatnonzero(excess >= -active_tol)


class Inequality(Problem):
    """``y(x) = argmin_y f(x, y)`` s.t. ``c(x, y) <= 0`` and optionally ``h(x, y) = 0``
    (``mode="max"`` for the argmax), differentiated exactly through the active set.

    The forward solver (default :func:`~argminlib.slsqp`) finds ``y``; the active set is
    read off ``y`` (see :func:`active_set`), and the KKT conditions of the active
    constraints (and ``h``) are the optimality function: an equality-constrained problem
    at this solution. The multipliers of active constraints must be non-negative (a KKT
    point); one whose share ``lambda_i ||grad c_i|| / ||grad f||`` is below
    ``active_tol`` marks a weakly active, degenerate constraint: a
    :class:`~argminlib.DegenerateConstraintWarning` names it, and the derivative returned
    is the one-sided derivative that keeps it active.
    """

    matrix_name = "KKT matrix of the active constraints"
    conditions = "the KKT conditions of the active constraints"

    def __init__(
        self,
        f,
        c,
        y0,
        *,
        eq=None,
        mode="min",
        solver="dense",
        tol=1e-6,
        active_tol=1e-6,
        forward=None,
        certify=True,
        warm_start=False,
    ):
        if not callable(c) or (eq is not None and not callable(eq)):
            raise ShapeError("c (and eq) must be functions of (x, y) returning arrays")
        self.f, self.c, self.eq = f, c, eq
        self.forward_solver = forward
        self.active_tol = check_tol(active_tol, "active_tol")
        self.setup(y0, mode, solver, tol, certify, warm_start)

    def forward(self, x):
        if self.forward_solver is not None:  # (checked at its solution)
            return self.forward_solver(self.f, x, self.start)
        check_objective(self.f, x, self.start, "y0")
        check_constraint(self.c, x, self.start, "c")
        if self.eq is not None:
            check_constraint(self.eq, x, self.start, "eq")
        return slsqp(self.f, x, self.start, eq=self.eq, ineq=self.c, maximize=self.mode == "max")

    def _constraints(self, idx):
        c, eq = self.c, self.eq

        def h(x_, y_):
            parts = [flat_values(c, x_, y_)[idx]]
            if eq is not None:
                parts.append(flat_values(eq, x_, y_))
            return anp.concatenate(parts)

        return h

    def complete(self, x, y, multipliers_=None, feasible=True):
        check_objective(self.f, x, y)
        check_constraint(self.c, x, y, "c", "y")
        if self.eq is not None:
            check_constraint(self.eq, x, y, "eq", "y")
        try:
            idx = active_set(self.c, x, y, active_tol=self.active_tol, feas_tol=self.tol)
            if self.eq is not None:
                from .equality import Equality

                Equality(self.f, self.eq, y, tol=self.tol).check_feasible(x, y)
        except ConstraintError as err:
            if feasible:
                raise
            raise InfeasibleError(
                f"The forward solver returned an infeasible point ({err}). The constraints "
                "may have no common solution: check them, or pass a feasible y0."
            ) from None
        h = self._constraints(idx)
        nu = multipliers(self.f, h, x, y)
        lam = self.sign * nu[: idx.size] if self.sign else nu[: idx.size]
        if lam.size:
            Jc = onp.asarray(getval(constraint_jacobian(h, x, y)), dtype=float)[: idx.size]
            gf = float(onp.linalg.norm(onp.asarray(getval(grad(self.f, 1)(x, y)))))
            share = lam * onp.linalg.norm(Jc.reshape(idx.size, -1), axis=1) / max(gf, 1e-300)
            if self.sign and share.min() < -self.active_tol:
                i = int(idx[onp.argmin(share)])
                raise NotStationaryError(
                    f"y is not a KKT point: active constraint {i} has a multiplier of the "
                    f"wrong sign ({lam.min():.3e}), so moving off it would improve the "
                    "objective. Re-solve the problem.",
                    residual=float(-share.min()),
                    tol=self.active_tol,
                )
            for i in idx[onp.abs(share) <= self.active_tol]:
                warnings.warn(
                    f"Constraint {int(i)} is weakly active at y: it is within active_tol of "
                    "its bound and its multiplier is (relatively) below active_tol, so either "
                    "it is active with a zero multiplier (the solution map is not "
                    "differentiable here) or it is inactive by less than the solution's "
                    "accuracy. Returning the one-sided derivative that keeps it active; if y "
                    "is known to be strictly inside, pass a smaller active_tol.",
                    DegenerateConstraintWarning,
                    stacklevel=4,
                )
        z = onp.concatenate([onp.reshape(y, (-1,)), nu])

        def F(x_, z_):
            yy = anp.reshape(z_[: self.ny], self.yshape)
            mult = z_[self.ny :]

            def lagrangian(y_):
                return self.f(x_, y_) + anp.dot(mult, h(x_, y_))

            gy = anp.reshape(grad(lagrangian)(yy), (-1,))
            return anp.concatenate([gy, h(x_, yy)])

        return Conditions(z, F, nu.size)
