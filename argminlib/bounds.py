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

import warnings

import autograd.numpy as anp
import numpy as onp
import scipy.optimize as sopt
from autograd import grad, jacobian

from .exceptions import DegenerateConstraintWarning, InputError, NotStationaryError
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

    def side(b, default, name):
        if b is None:
            return onp.full(n, default)
        a = as_float_array(b, f"bounds' {name}") if not onp.isscalar(b) else float(b)
        a = onp.broadcast_to(onp.asarray(a, dtype=float), shape).reshape(-1).copy()
        a[onp.isnan(a)] = default
        return a

    try:
        lo, hi = side(lo, -onp.inf, "lower"), side(hi, onp.inf, "upper")
    except ValueError as err:
        raise InputError(f"bounds: {err}; give numbers or arrays of y's shape {shape}") from None
    if onp.any(lo > hi):
        raise InputError("bounds: a lower bound is above its upper bound")
    return lo, hi


def _active(y, lo, hi, tol):
    """Coordinates at their bound, to ``tol * max(1, |y|)`` (the acceptance test's scale):
    ``(at_lo, at_hi)`` boolean masks."""
    near = tol * max(1.0, float(onp.max(onp.abs(y[onp.isfinite(y)]), initial=0.0)))
    return onp.isfinite(lo) & (y - lo <= near), onp.isfinite(hi) & (hi - y <= near)


def argmin_bounded(
    f, x, y0, bounds, *, mode="min", eq=None, tol=1e-6, forward=None, return_info=False, **options
):
    """``argmin_y f(x, y)`` (``mode="max"``: argmax) subject to ``lo <= y <= hi`` (and
    ``eq(x, y) = 0``), as an autograd primitive: the bound-active coordinates are constants,
    the others the solution of the restricted problem (see the module docstring).

    The forward solve is L-BFGS-B (SLSQP with ``eq``), or ``forward(f, x, y0)``; its answer
    must lie in the box. A coordinate within ``tol * max(1, |y|)`` of a bound is put on
    it, and must be held there by the objective: the multiplier ``s * df/dy_i`` (with the
    equality constraints' least-squares multipliers) must be ``>= 0`` at a lower bound and
    ``<= 0`` at an upper one (``s = +1`` for min, ``-1`` for max), else
    :class:`~argminlib.NotStationaryError`; a multiplier at round-off (weakly active: the
    solution map has a kink) raises a :class:`~argminlib.DegenerateConstraintWarning` and
    the derivative that keeps the coordinate fixed is returned. ``options`` (``solver``,
    ``certify``, ...) go to the restricted problem; ``return_info=True`` returns its
    :class:`~argminlib.ArgminInfo` too.
    """
    from .api import problem_for  # (api imports this module)

    y0 = as_float_array(y0, "y0")
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
    if onp.any(y < lo - tol * max(1.0, onp.abs(y).max())) or onp.any(
        y > hi + tol * max(1.0, onp.abs(y).max())
    ):
        raise NotStationaryError(
            "the forward solver's y is outside the bounds: return a point of the box."
        )
    at_lo, at_hi = _active(y, lo, hi, tol)
    fixed = at_lo | at_hi
    y = onp.where(at_lo, lo, onp.where(at_hi, hi, y))
    _check_multipliers(f, eq, xv, y, shape, fixed, at_lo, sign, tol)
    free = onp.flatnonzero(~fixed)
    if free.size == 0:  # every coordinate on a bound: constant in x
        out = anp.reshape(anp.array(y) + 0.0 * _zero_of(x), shape)
        return (out, None) if return_info else out
    order = onp.argsort(onp.concatenate([free, onp.flatnonzero(fixed)]))
    held = y[fixed]

    def embed(u):
        return anp.reshape(anp.concatenate([u, held])[order], shape)

    f_red = lambda x_, u: f(x_, embed(u))  # noqa: E731
    eq_red = None if eq is None else (lambda x_, u: eq(x_, embed(u)))
    prob = problem_for(f_red, y[free], mode=mode, eq=eq_red, tol=tol, **options)
    prob.forward_solver = lambda *_: y[free]  # (the bounded solve's answer, then polished)
    if return_info:
        u, info = prob(x, return_info=True)
        return embed(u), info
    return embed(prob(x))


def _zero_of(x):
    """``0`` that depends on ``x`` (so a constant answer is still a function of ``x``)."""
    leaves = x.values() if isinstance(x, dict) else x if isinstance(x, (list, tuple)) else [x]
    return sum(anp.sum(leaf) * 0.0 for leaf in leaves)


def _check_multipliers(f, eq, x, y, shape, fixed, at_lo, sign, tol):
    """The bound multipliers at ``y``: ``mu = s (f_Y + J_h^T nu)`` on the fixed coordinates,
    ``nu`` the equality multipliers by least squares on the free ones; see
    :func:`argmin_bounded` for what is required of them."""
    if not fixed.any():
        return
    g = sign * onp.asarray(grad(lambda z: f(x, anp.reshape(z, shape)))(y), dtype=float)
    if eq is not None:
        J = onp.asarray(
            jacobian(lambda z: flat_values(eq, x, anp.reshape(z, shape)))(y), dtype=float
        ).reshape(-1, y.size)
        if J.size:
            nu = onp.linalg.lstsq(J[:, ~fixed].T, -g[~fixed], rcond=None)[0]
            g = g + J.T @ nu
    mu = onp.where(at_lo, g, -g)[fixed]  # >= 0 when the objective holds the bound
    scale = max(float(onp.max(onp.abs(g), initial=0.0)), onp.finfo(float).tiny)
    idx = onp.flatnonzero(fixed)
    wrong = mu < -onp.sqrt(tol) * scale
    if wrong.any():
        raise NotStationaryError(
            f"y is not a {'minimum' if sign > 0 else 'maximum'} on the box: at coordinates "
            f"{list(idx[wrong][:8])} it sits on a bound that f pulls it away from "
            f"(multiplier {mu[wrong].min():.3e} < 0). Pass a better forward solver or start.",
        )
    weak = onp.abs(mu) <= 1e-8 * scale
    if weak.any():
        warnings.warn(
            f"bounds on coordinates {list(idx[weak][:8])} are weakly active (multiplier "
            "~ 0): the solution map has a kink there; the derivative returned keeps them "
            "on their bounds.",
            DegenerateConstraintWarning,
            stacklevel=3,
        )
