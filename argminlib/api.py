"""``argmin`` and ``argmax``: choose the problem class from the constraints given."""

from __future__ import annotations

from .equality import Equality
from .inequality import Inequality
from .unconstrained import Unconstrained

__all__ = ["argmin", "argmax", "problem_for"]


def problem_for(f, y0, *, mode="min", eq=None, ineq=None, **options):
    """The problem object :func:`argmin` would solve: :class:`~argminlib.Unconstrained`,
    :class:`~argminlib.Equality` (``eq`` given) or :class:`~argminlib.Inequality`
    (``ineq`` given)."""
    if ineq is not None:
        return Inequality(f, ineq, y0, eq=eq, mode=mode, **options)
    if eq is not None:
        return Equality(f, eq, y0, mode=mode, **options)
    return Unconstrained(f, y0, mode=mode, **options)


def argmin(f, x, y0, *, eq=None, ineq=None, solver="dense", tol=1e-6, forward=None, certify=True):
    """``argmin_y f(x, y)`` from the start ``y0``, as an autograd primitive.

    ``autograd.grad`` (or ``jacobian``, ``make_jvp``, ``hessian``) of any function of the
    result with respect to ``x`` uses the implicit derivative: one ``solver`` solve per VJP,
    whatever the forward solver did, and exact higher derivatives with every solver.
    ``x`` may be a float, an array or a container (tuple, list, dict) of arrays.

    The answer is certified: the forward solver's ``y`` is polished by at most five Newton
    steps and accepted only if the Newton step is at most ``tol * max(1, |y|)`` and the
    Hessian (with constraints: on their null space) is positive definite, as checked by
    ``certify`` (see :class:`~argminlib.Certify`). Otherwise an
    :class:`~argminlib.ArgminError` says what was found.

    ``eq(x, y)`` (array, ``= 0``) and ``ineq(x, y)`` (array, ``<= 0``) add constraints:
    then the problem is an :class:`~argminlib.Equality` or (exact, active-set)
    :class:`~argminlib.Inequality` problem; for the log-barrier approximation use
    :class:`~argminlib.Barrier`.
    """
    options = {"solver": solver, "tol": tol, "forward": forward, "certify": certify}
    return problem_for(f, y0, mode="min", eq=eq, ineq=ineq, **options)(x)


def argmax(f, x, y0, *, eq=None, ineq=None, solver="dense", tol=1e-6, forward=None, certify=True):
    """``argmax_y f(x, y)``: as :func:`argmin`, with a negative definite Hessian."""
    options = {"solver": solver, "tol": tol, "forward": forward, "certify": certify}
    return problem_for(f, y0, mode="max", eq=eq, ineq=ineq, **options)(x)
