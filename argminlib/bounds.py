"""Bound constraints ``lo <= y <= hi``, eliminated instead of differentiated.

A bound is the simplest inequality constraint, and at a solution its active set says
everything: a coordinate held at its bound does not move under a small change of ``x``
(strict complementarity: its multiplier is nonzero), so its derivative is zero, and the
other coordinates solve the problem restricted to them,

    y_F(x) = argmin_{y_F} f(x, (y_F, y_A = bound_A))   [s.t. h(x, y) = 0],

an unconstrained (or equality-constrained) problem in fewer unknowns, whose derivative is
that of :class:`~argminlib.Unconstrained` (:class:`~argminlib.Equality`). This is the
exact KKT derivative of the active-set method (Lemma 4.1 with ``h = y_A - bound_A``), with
the rows ``y_A = bound_A`` eliminated rather than put in a KKT matrix: no Jacobian of the
bounds is ever formed.
"""

from __future__ import annotations

import contextlib
import warnings

import autograd.numpy as anp
import numpy as onp
import scipy.optimize as sopt
from autograd import grad, jacobian
from autograd.misc import flatten

from .exceptions import ArgminError, DegenerateConstraintWarning, InputError, NotStationaryError
from .forward import quasi_newton, slsqp
from .implicit import plain
from .partials import flat_values
from .problem import as_float_array, check_x

__all__ = ["as_bounds", "argmin_bounded"]


def as_bounds(bounds, shape):
    """``(lo, hi)`` float arrays over the flattened ``y`` (``-inf`` / ``inf`` for no bound)
    from ``bounds``: a ``scipy.optimize.Bounds`` or a pair ``(lo, hi)`` of numbers, arrays of
    the shape of ``y`` or ``None``."""
    n = int(onp.prod(shape)) if shape else 1
    if isinstance(bounds, sopt.Bounds):
        lo, hi = bounds.lb, bounds.ub
    elif isinstance(bounds, (tuple, list)) and len(bounds) == 2:
        lo, hi = bounds
    else:
        raise InputError("bounds must be (lo, hi) or a scipy.optimize.Bounds")

    if (
        isinstance(bounds, (list, tuple))
        and n == 2
        and all(isinstance(b, (list, tuple)) and len(b) == 2 for b in bounds)
    ):
        raise InputError(
            "bounds=[(lo_0, hi_0), (lo_1, hi_1)] is ambiguous for two unknowns (scipy reads "
            "it per coordinate, argminlib as (lo, hi)): pass scipy.optimize.Bounds(lo, hi) "
            "or a pair of arrays (lo, hi)."
        )

    def side(b, default, name):
        if b is None:
            return onp.full(n, default)
        try:
            a = onp.asarray(b, dtype=float)
        except (TypeError, ValueError):
            raise InputError(f"bounds' {name} side must be numbers or an array") from None
        a = onp.broadcast_to(a, shape).reshape(-1).copy()
        a[onp.isnan(a)] = default  # (NaN: no bound, as +-inf)
        return a

    try:
        lo, hi = side(lo, -onp.inf, "lower"), side(hi, onp.inf, "upper")
    except ValueError as err:
        raise InputError(f"bounds: {err}; give numbers or arrays of y's shape {shape}") from None
    if onp.any(lo == onp.inf) or onp.any(hi == -onp.inf):
        raise InputError("bounds: a lower bound of +inf or an upper bound of -inf is empty")
    if onp.any(lo > hi):
        raise InputError("bounds: a lower bound is above its upper bound")
    return lo, hi


def _active(y, lo, hi, tol):
    """Coordinates at their bound, to ``tol * max(1, |y_i|)`` each (the acceptance test's
    scale, per coordinate): ``(at_lo, at_hi)`` boolean masks, the candidates of the
    active-set iteration (a candidate the objective pulls off its bound is released)."""
    near = tol * onp.maximum(1.0, onp.abs(y))
    return onp.isfinite(lo) & (y - lo <= near), onp.isfinite(hi) & (hi - y <= near)


def argmin_bounded(
    f, x, y0, bounds, *, mode="min", eq=None, tol=1e-6, forward=None, return_info=False, **options
):
    """``argmin_y f(x, y)`` (``mode="max"``: argmax) subject to ``lo <= y <= hi`` (and
    ``eq(x, y) = 0``), as an autograd primitive: the bound-active coordinates are constants,
    the others the solution of the restricted problem (see the module docstring).

    The forward solve is L-BFGS-B (SLSQP with ``eq``), or ``forward(f, x, y0)``; its answer
    must lie in the box. Then an active-set iteration settles which bounds hold: a
    coordinate within ``tol * max(1, |y_i|)`` of a bound is put on it while the objective
    holds it there (the multiplier ``s * df/dy_i``, with the equality constraints'
    least-squares multipliers, ``>= 0`` at a lower bound and ``<= 0`` at an upper one;
    ``s = +1`` for min, ``-1`` for max), and released otherwise; the restricted problem is
    solved (polished, certified), and a free coordinate that leaves the box is held on its
    bound; until the restricted solution is in the box with every multiplier of the right
    sign (else :class:`~argminlib.NotStationaryError`). A multiplier at round-off (weakly
    active: the solution map has a kink) raises a
    :class:`~argminlib.DegenerateConstraintWarning`, and the derivative that keeps the
    coordinate fixed is returned; a coordinate with ``lo == hi`` is fixed. ``options`` (``solver``,
    ``certify``, ...) go to the restricted problem; ``return_info=True`` returns its
    :class:`~argminlib.ArgminInfo` too.
    """
    from .api import problem_for  # (api imports this module)

    y0 = onp.asarray(as_float_array(y0, "y0"), dtype=float)
    shape = onp.shape(y0)
    lo, hi = as_bounds(bounds, shape)
    x = check_x(x)
    xv = plain(x)
    z0 = onp.clip(y0.reshape(-1), lo, hi)
    sign = -1.0 if mode == "max" else 1.0
    if forward is not None:
        y = as_float_array(forward(f, xv, z0.reshape(shape)), "the forward solver's y")
    elif eq is None:
        y = quasi_newton(f, xv, z0.reshape(shape), maximize=mode == "max", bounds=(lo, hi))
    else:
        y = slsqp(f, xv, z0.reshape(shape), eq=eq, maximize=mode == "max", bounds=(lo, hi))
    y = onp.asarray(y, dtype=float).reshape(-1)
    if y.size != z0.size:
        raise InputError(f"the forward solver returned {y.size} values; y0 has {z0.size}")
    near = tol * onp.maximum(1.0, onp.abs(y))
    if onp.any(y < lo - near) or onp.any(y > hi + near):
        raise NotStationaryError(
            "the forward solver's y is outside the bounds: return a point of the box."
        )
    pinned = lo == hi  # (fixed whatever the multiplier's sign)
    at_lo, at_hi = _active(y, lo, hi, tol)
    at_hi &= ~at_lo
    y = onp.where(at_lo, lo, onp.where(at_hi, hi, y))

    def restricted(fixed, y):
        free = onp.flatnonzero(~fixed)
        order = onp.argsort(onp.concatenate([free, onp.flatnonzero(fixed)]))
        held = y[fixed]

        def embed(u):
            return anp.reshape(anp.concatenate([u, held])[order], shape)

        f_red = lambda x_, u: f(x_, embed(u))  # noqa: E731
        eq_red = None if eq is None else (lambda x_, u: eq(x_, embed(u)))
        prob = problem_for(f_red, y[free], mode=mode, eq=eq_red, tol=tol, **options)
        prob.forward_solver = lambda *_: y[free]
        return prob, embed, free

    # the active-set iteration (on plain values): release a bound the objective pulls y
    # away from, re-solve the restricted problem, hold a free coordinate that leaves the
    # box on its bound; it stops when the restricted solution is in the box and every
    # held bound has a multiplier of the right sign (the KKT conditions of the box)
    n = y.size
    for _ in range(2 * n + 2):
        fixed = at_lo | at_hi
        mu, weak, scale = _multipliers(f, eq, xv, y, shape, fixed, at_lo, sign)
        release = fixed & ~pinned & (mu < -1e-8 * scale)
        if release.any():
            at_lo, at_hi = at_lo & ~release, at_hi & ~release
            continue
        if fixed.all():
            break
        prob, embed, free = restricted(fixed, y)
        with _restricted_errors(free):
            u = onp.asarray(prob.solve(xv).z[: free.size], dtype=float)
        y_new = onp.array(y)
        y_new[free] = u
        out_lo, out_hi = ~fixed & (y_new < lo), ~fixed & (y_new > hi)
        if out_lo.any() or out_hi.any():  # the box binds where the forward solver stopped short
            at_lo, at_hi = at_lo | out_lo, at_hi | out_hi
            y = onp.clip(y_new, lo, hi)
            continue
        y = y_new
        mu, weak, scale = _multipliers(f, eq, xv, y, shape, fixed, at_lo, sign)
        if not (fixed & ~pinned & (mu < -1e-8 * scale)).any():
            break
    else:
        raise NotStationaryError(
            "the active set of the bounds did not settle: y keeps leaving the box or being "
            "pulled off its bounds. Pass a better forward solver or start."
        )
    weak &= fixed & ~pinned
    if weak.any():
        warnings.warn(
            f"bounds on coordinates {[int(i) for i in onp.flatnonzero(weak)[:8]]} are weakly "
            "active (multiplier ~ 0): the solution map has a kink there; the derivative "
            "returned keeps them on their bounds.",
            DegenerateConstraintWarning,
            stacklevel=3,
        )
    if fixed.all():  # every coordinate on a bound: constant in x
        out = anp.reshape(anp.array(y) + 0.0 * _zero_of(x), shape)
        return (out, _NothingSolved()) if return_info else out
    prob, embed, free = restricted(fixed, y)
    with _restricted_errors(free):
        if return_info:
            u, info = prob(x, return_info=True)
            return embed(u), info
        return embed(prob(x))


class _NothingSolved:
    """The ``info`` of a bounded solution with every coordinate on a bound: no curvature to
    certify and no solve (an :class:`~argminlib.ArgminInfo` with nothing in it)."""

    certificate = None

    @property
    def solves(self):
        from .linsolve import SolveInfo

        return SolveInfo("none: every coordinate on a bound", 0, 0.0, True, 0)

    def __repr__(self):
        return "ArgminInfo(solves=0: every coordinate on a bound, nothing to solve)"


@contextlib.contextmanager
def _restricted_errors(free):
    """An :class:`~argminlib.ArgminError` of the restricted problem, said of the whole
    ``y``: its coordinates (``NonSmoothError.coordinates``) mapped back through ``free``,
    and its message told that its matrices and indices are those of the restricted one."""
    try:
        yield
    except ArgminError as err:
        if getattr(err, "coordinates", None):
            err.coordinates = tuple(int(free[i]) for i in err.coordinates)
        shown = ", ".join(str(int(i)) for i in free[:8]) + (", ..." if free.size > 8 else "")
        note = (
            f" (bounds=: this is the problem restricted to the {free.size} coordinates off "
            f"their bounds, flat indices {shown} of y; indices in this message count among "
            "them.)"
        )
        err.args = ((str(err.args[0]) if err.args else "") + note,) + tuple(err.args[1:])
        raise


def _zero_of(x):
    """``0`` that depends on ``x`` (so a constant answer is still a function of ``x``)."""
    return 0.0 * anp.sum(flatten(x)[0])


def _multipliers(f, eq, x, y, shape, fixed, at_lo, sign):
    """``(mu, weak, scale)`` at ``y``: the bound multipliers ``mu = +-s (f_Y + J_h^T nu)``
    (``+`` at a lower bound, ``-`` at an upper one; ``nu`` the equality multipliers by least
    squares on the free coordinates), ``>= 0`` where the objective holds a coordinate on its
    bound; ``weak`` where ``|mu|`` is at round-off of ``scale``, the largest entry of the
    gradient of the Lagrangian."""
    g = sign * onp.asarray(grad(lambda z: f(x, anp.reshape(z, shape)))(y), dtype=float)
    g = g.reshape(-1)
    if eq is not None and (~fixed).any():
        J = onp.asarray(
            jacobian(lambda z: flat_values(eq, x, anp.reshape(z, shape)))(y), dtype=float
        ).reshape(-1, y.size)
        if J.size:
            nu = onp.linalg.lstsq(J[:, ~fixed].T, -g[~fixed], rcond=None)[0]
            g = g + J.T @ nu
    mu = onp.where(at_lo, g, -g)
    scale = max(float(onp.max(onp.abs(g), initial=0.0)), onp.finfo(float).tiny)
    return mu, onp.abs(mu) <= 1e-8 * scale, scale
