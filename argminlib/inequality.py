"""Inequality-constrained argmin (section 4.2 of Gould et al., 2016).

Two routes to the derivative of ``y(x) = argmin_y f(x, y)`` s.t. ``c(x, y) <= 0``:

* **the paper's log-barrier approximation** (Lemma 4.2): replace the problem by
  ``g_t(x) = argmin_y t f(x, y) - sum_i log(-c_i(x, y))``, an unconstrained problem, and
  differentiate it with Lemma 3.2. As ``t -> inf``, ``g_t`` and ``g_t'`` approach the
  constrained solution and its derivative wherever the active set is locally stable.
  :class:`Barrier` is an :class:`~argminlib.Unconstrained` problem with the barrier
  objective and a barrier-method forward solver.
* **the exact derivative** from the KKT conditions: at a solution, the active constraints
  behave as equalities, so :class:`Inequality` differentiates the
  :class:`~argminlib.Equality` problem on the active set. At a degenerate point (an active
  constraint with zero multiplier) the solution map has a kink; a
  :class:`~argminlib.DegenerateConstraintWarning` names the constraint and the one-sided
  derivative that keeps it active is returned.
"""

from __future__ import annotations

import warnings

import autograd.numpy as anp
import numpy as onp
from autograd import grad, hessian
from autograd.tracer import getval

from .equality import Equality, _flat, slsqp
from .exceptions import (
    ArgminError,
    ConstraintError,
    DegenerateConstraintWarning,
    ForwardSolveError,
    InfeasibleError,
    NotStationaryError,
)
from .primitive import as_float_array, mode_sign
from .unconstrained import Unconstrained, f_XY, f_YY

__all__ = [
    "barrier_objective",
    "barrier_solve",
    "Barrier",
    "lemma_4_2",
    "active_set",
    "Inequality",
]


def _check_t(t):
    if not (onp.isscalar(t) and onp.isfinite(t) and t > 0):
        raise ArgminError(f"The barrier parameter t must be a finite positive number; got {t!r}.")


def barrier_objective(f, c, t, *, maximize=False):
    """``phi_t(x, y) = t f(x, y) - sum_i log(-c_i(x, y))`` (for ``maximize``:
    ``t f + sum_i log(-c_i)``, to be maximised). Infinite outside the strict interior."""
    _check_t(t)
    s = -1.0 if maximize else 1.0

    def phi(x, y):
        return t * f(x, y) - s * anp.sum(anp.log(-_flat(c, x, y)))

    return phi


def _strictly_feasible(c, x, y, what):
    cv = onp.asarray(getval(_flat(c, x, y)), dtype=float)
    bad = onp.flatnonzero(~(cv < 0))
    if bad.size:
        raise InfeasibleError(
            f"{what} is not strictly feasible: c_{bad[0]}(x, y) = {cv[bad[0]]:.3e} >= 0 "
            f"({bad.size} of {cv.size} constraints). The barrier needs c(x, y) < 0: start "
            "from a point strictly inside the feasible set."
        )


def barrier_solve(f, c, x, y0, t, *, t0=None, mu=10.0, tol=1e-12, maxiter=100, maximize=False):
    """Minimise ``phi_t`` (see :func:`barrier_objective`) by the barrier method.

    From a strictly feasible ``y0``, follow the central path ``t0, mu t0, ..., t`` with
    damped Newton steps (dense autograd Hessian) that backtrack to stay strictly feasible.
    Returns ``y`` with ``||grad phi_t|| <= tol * max(1, t)`` (relative to the scale ``t``).
    Dense: for small and medium problems.
    """
    _check_t(t)
    x = getval(x)
    y = onp.asarray(getval(y0), dtype=float)
    shape = y.shape
    _strictly_feasible(c, x, y, "The starting point y0")
    s = -1.0 if maximize else 1.0
    ts = []
    tk = min(t, t0 if t0 is not None else 1.0)
    while tk < t:
        ts.append(tk)
        tk *= mu
    ts.append(t)
    z = y.reshape(-1)
    for tk in ts:
        phi = barrier_objective(f, c, tk, maximize=maximize)

        def obj(z_, phi=phi):
            return s * phi(x, anp.reshape(z_, shape))

        g_fun, H_fun = grad(obj), hessian(obj)
        for _ in range(maxiter):
            g = onp.asarray(g_fun(z), dtype=float)
            if onp.linalg.norm(g) <= tol * max(1.0, tk):
                break
            H = onp.asarray(H_fun(z), dtype=float)
            try:
                step = -onp.linalg.solve(H, g)
            except onp.linalg.LinAlgError:
                step = -g
            if g @ step >= 0:  # not a descent direction: fall back to the gradient
                step = -g
            f0, a, gnorm = float(obj(z)), 1.0, onp.linalg.norm(g)
            while a > 1e-12:
                zn = z + a * step
                cv = onp.asarray(_flat(c, x, zn.reshape(shape)), dtype=float)
                if onp.all(cv < 0):
                    fn = float(obj(zn))
                    # Armijo decrease, or (near the solution, where f stalls at rounding
                    # level) a smaller gradient
                    if onp.isfinite(fn) and (
                        fn < f0 + 1e-4 * a * (g @ step) or onp.linalg.norm(g_fun(zn)) < 0.5 * gnorm
                    ):
                        break
                a *= 0.5
            else:
                break  # no progress possible: the gradient is at rounding level
            z = zn
        else:
            raise ForwardSolveError(
                f"The barrier method did not converge at t = {tk:g} in {maxiter} Newton steps."
            )
    return z.reshape(shape) if shape else float(z[0])


class Barrier(Unconstrained):
    """The log-barrier approximation ``g_t(x) = argmin_y t f(x, y) - sum_i log(-c_i(x, y))``
    of ``argmin_y f(x, y) s.t. c(x, y) <= 0`` (``mode="max"``: of the argmax).

    An :class:`~argminlib.Unconstrained` problem in every respect (its derivative is
    Lemma 4.2, i.e. Lemma 3.2 on ``phi_t``), with :func:`barrier_solve` as forward solver
    and the start ``y0`` required strictly feasible. The stationarity tolerance is relative
    to ``t`` (the barrier gradient scales with it).
    """

    def __init__(self, f, c, t, y0, *, mode="min", solver="dense", tol=1e-6, forward=None):
        _check_t(t)
        mode_sign(mode)
        self.f0, self.c, self.t = f, c, t
        phi = barrier_objective(f, c, t, maximize=mode == "max")

        def default_forward(_phi, x, y0):
            return barrier_solve(f, c, x, y0, t, maximize=mode == "max")

        super().__init__(
            phi,
            y0,
            mode=mode,
            solver=solver,
            tol=tol * max(1.0, t),
            forward=forward or default_forward,
        )
        self.name = f"Hessian of the barrier objective (t = {t:g})"
        self.what = f"the barrier stationarity condition grad_y phi_t = 0 (t = {t:g})"

    def pack(self, x, y):
        _strictly_feasible(self.c, getval(x), getval(y), "y")
        return super().pack(x, y)


def lemma_4_2(f, c, t, x, y, *, tol=1e-6):
    """Lemma 4.2: the derivative of the barrier approximation ``g_t`` at its solution ``y``,

    ``g_t'(x) = -phi_YY^{-1} phi_XY``,   ``phi = t f - sum_i log(-c_i)``,

    i.e. Lemma 3.2 applied to the barrier objective (a division for scalar ``y``)."""
    problem = Barrier(f, c, t, y, tol=tol)
    problem.check_at(x, y)
    phi = problem.f
    H, B = f_YY(phi, x, y), f_XY(phi, x, y)
    return -B / H if anp.ndim(H) == 0 else -anp.linalg.solve(H, B)


def active_set(c, x, y, *, active_tol=1e-6, feas_tol=1e-6):
    """Indices ``i`` with ``c_i(x, y) >= -active_tol``. Raises :class:`ConstraintError` if a
    constraint is violated by more than ``feas_tol``."""
    cv = onp.asarray(getval(_flat(c, getval(x), getval(y))), dtype=float)
    worst = int(onp.argmax(cv)) if cv.size else 0
    if cv.size and cv[worst] > feas_tol:
        raise ConstraintError(
            f"y violates inequality constraint {worst}: c_{worst}(x, y) = {cv[worst]:.3e} > "
            f"{feas_tol:.1e}. Pass a feasible solution."
        )
    return onp.flatnonzero(cv >= -active_tol)


class Inequality:
    """``y(x) = argmin_y f(x, y)`` s.t. ``c(x, y) <= 0`` and optionally ``h(x, y) = 0``
    (``mode="max"`` for the argmax), differentiated exactly through the active set.

    Calling the instance with ``x`` solves the problem (default :func:`slsqp`), finds the
    active set ``{i : c_i >= -active_tol}`` and returns ``y`` through the autograd primitive
    of the :class:`~argminlib.Equality` problem on the active constraints. :meth:`jacobian`,
    :meth:`jvp` and :meth:`vjp` do the same at a known solution ``y``.

    The multipliers of active constraints must be non-negative (a KKT point); one below
    ``active_tol`` in size marks a weakly active, degenerate constraint: a
    :class:`~argminlib.DegenerateConstraintWarning` names it, and the derivative returned is
    the one-sided derivative that keeps it active (the solution moves along the constraint).
    """

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
    ):
        self.f, self.c, self.eq = f, c, eq
        self.mode, self.sign = mode, mode_sign(mode)
        self.y0 = as_float_array(getval(y0), "y0")
        self.solver, self.tol, self.active_tol, self.forward = solver, tol, active_tol, forward
        self.last_active = None

    def _active_problem(self, x, y):
        """The Equality problem on the active set at the solution ``y``, and its z."""
        idx = active_set(self.c, x, y, active_tol=self.active_tol, feas_tol=self.tol)
        self.last_active = idx
        c, eq = self.c, self.eq

        def h(x_, y_):
            parts = [_flat(c, x_, y_)[idx]]
            if eq is not None:
                parts.append(_flat(eq, x_, y_))
            return anp.concatenate(parts)

        problem = Equality(self.f, h, y, mode=self.mode, solver=self.solver, tol=self.tol)
        z = problem.pack(getval(x), getval(y))
        lam = (-1.0 if self.mode == "max" else 1.0) * onp.asarray(z[problem.ny :][: idx.size])
        if lam.size and lam.min() < -self.active_tol:
            i = int(idx[onp.argmin(lam)])
            raise NotStationaryError(
                f"y is not a KKT point: active constraint {i} has multiplier {lam.min():.3e} "
                "< 0, so moving off it would improve the objective. Re-solve the problem.",
                residual=float(-lam.min()),
                tol=self.active_tol,
            )
        weak = idx[onp.abs(lam) <= self.active_tol]
        for i in weak:
            warnings.warn(
                f"Constraint {int(i)} is weakly active at y (active with zero multiplier): "
                "the solution map is not differentiable here. Returning the one-sided "
                "derivative that keeps the constraint active.",
                DegenerateConstraintWarning,
                stacklevel=3,
            )
        return problem, z

    def solve_forward(self, x):
        xv = getval(x)
        if self.forward is not None:
            y = self.forward(self.f, xv, self.y0)
        else:
            y = slsqp(self.f, xv, self.y0, eq=self.eq, ineq=self.c, maximize=self.mode == "max")
        return onp.asarray(getval(y), dtype=float).reshape(onp.shape(self.y0))

    def __call__(self, x):
        y = self.solve_forward(x)
        try:
            active_set(self.c, x, y, active_tol=self.active_tol, feas_tol=self.tol)
            if self.eq is not None:
                Equality(self.f, self.eq, y, tol=self.tol).check_feasible(getval(x), y)
        except ConstraintError as err:
            raise InfeasibleError(
                f"The forward solver returned an infeasible point ({err}). The constraints "
                "may have no common solution: check them, or pass a feasible y0."
            ) from None
        problem, z = self._active_problem(x, y)
        problem.forward = lambda f, x_, y0, z=z, p=problem: (
            z[: p.ny].reshape(p.yshape),
            z[p.ny :],
        )
        return problem(x)

    def jacobian(self, x, y, return_info=False):
        """``dy/dx`` at a solution ``y``: shape ``shape(y) + shape(x)``."""
        return self._active_problem(x, y)[0].jacobian(x, y, return_info)

    def jvp(self, x, y, v, return_info=False):
        """``(dy/dx) v`` at a solution ``y``."""
        return self._active_problem(x, y)[0].jvp(x, y, v, return_info)

    def vjp(self, x, y, u, return_info=False):
        """``u^T (dy/dx)`` at a solution ``y``."""
        return self._active_problem(x, y)[0].vjp(x, y, u, return_info)
