"""Argmin problems as autograd primitives.

A :class:`Problem` knows how to solve itself for a parameter ``x`` and declares its
optimality function; :func:`solution` is the autograd primitive that returns the flat
solution ``z(x)``. Its VJP is :func:`argminlib.implicit.root_vjp` (one linear solve per
cotangent, the forward solver is never unrolled) and its JVP is
:func:`argminlib.implicit.root_jvp`. Dense solves are written in ``autograd.numpy``, so the
VJP can itself be differentiated: an objective that contains another argmin works.
"""

from __future__ import annotations

import autograd.numpy as anp
import numpy as onp
from autograd.extend import defjvp, defvjp, primitive
from autograd.tracer import getval

from .exceptions import NonFiniteError
from .implicit import linearize, root_jvp, root_vjp
from .linsolve import get_solver

__all__ = ["Problem", "solution", "as_float_array", "check_finite"]

_MODES = {"min": 1, "max": -1, "stationary": 0}


def as_float_array(a, name):
    """``a`` (a float or array, possibly an autograd box) as floats; raises on NaN/inf."""
    if isinstance(getval(a), (int, onp.integer)) or (
        hasattr(getval(a), "dtype") and onp.issubdtype(getval(a).dtype, onp.integer)
    ):
        a = anp.asarray(getval(a), dtype=float)
    check_finite(a, name)
    return a


def check_finite(a, name):
    v = onp.asarray(getval(a), dtype=float)
    if not onp.all(onp.isfinite(v)):
        raise NonFiniteError(
            f"{name} contains NaN or inf ({int(onp.sum(~onp.isfinite(v)))} of {v.size} "
            "entries); pass finite values."
        )


def mode_sign(mode):
    try:
        return _MODES[mode]
    except KeyError:
        raise ValueError(f"mode={mode!r}: use 'min', 'max' or 'stationary'") from None


class Problem:
    """A parameterised problem whose solutions are the zeros of ``optimality(x, z)``.

    Subclasses set ``n`` (length of the flat ``z``), ``symmetric``, ``definite``,
    ``name`` (of the matrix ``dF/dz``), ``what`` (of the conditions, for messages),
    ``solver`` (linear solver), ``tol`` (stationarity tolerance) and implement
    ``optimality(x, z)``, ``solve(x) -> z`` and ``unpack(z) -> y``.
    """

    symmetric = True
    definite = 0
    name = "Jacobian of the optimality conditions"
    what = "the optimality conditions"
    tol = 1e-6
    solver = None

    def linearize(self, x, z):
        """Check that ``z`` solves the problem at ``x`` and linearise there."""
        lin = linearize(
            self.optimality,
            x,
            z,
            symmetric=self.symmetric,
            definite=self.definite,
            name=self.name,
        )
        lin.check_stationary(self.tol, self.what)
        return lin

    def vjp(self, x, z, u):
        """``u^T dz/dx`` (shape of ``x``) for a cotangent ``u`` of shape (n,)."""
        return root_vjp(self.linearize(x, z), u, get_solver(self.solver))[0]

    def jvp(self, x, z, v):
        """``dz/dx v`` (shape (n,)) for a tangent ``v`` of the shape of ``x``."""
        return root_jvp(self.linearize(x, z), v, get_solver(self.solver))[0]

    def __call__(self, x):
        """The solution at ``x``, differentiable with autograd."""
        return self.unpack(solution(x, self))


@primitive
def solution(x, problem):
    """The flat solution ``z(x)`` of ``problem``: an autograd primitive."""
    return anp.asarray(problem.solve(x), dtype=float)


defvjp(solution, lambda z, x, problem: lambda u: problem.vjp(x, z, u), None)
defjvp(solution, lambda v, z, x, problem: problem.jvp(x, z, v), None)
