"""The paper's notation in one place: ``f_Y``, ``f_YY``, ``f_XY`` and constraint Jacobians.

Conventions: ``f(x, y)`` is written with ``autograd.numpy`` and returns a scalar; ``x`` and
``y`` are floats or arrays of any shape. Matrices are over the flattened ``y`` (``n``
entries) and keep the shape of ``x``: ``f_XY`` has shape ``(n,) + shape(x)``.
"""

from __future__ import annotations

import autograd.numpy as anp
import numpy as onp
from autograd import grad, hessian, jacobian
from autograd.tracer import getval

from .exceptions import ArgminError, InputError, NonFiniteError, ShapeError

__all__ = [
    "f_Y",
    "f_YY",
    "f_XY",
    "flat_values",
    "constraint_jacobian",
    "call_user",
    "check_objective",
    "check_constraint",
]


def call_user(fun, x, y, name, where="y"):
    """``fun(x, y)`` as a plain real array; an exception raised inside the user's function
    by mismatched shapes or types becomes an :class:`~argminlib.InputError` that says so."""
    try:
        value = getval(fun(x, y))
    except ArgminError:
        raise
    except (ValueError, TypeError, IndexError) as err:
        raise InputError(
            f"{name}(x, {where}) raised {type(err).__name__}: {err}. Here x is "
            f"{_describe(x)} and {where} has shape {onp.shape(getval(y))}; check that "
            f"{name} accepts arguments of these shapes (y0 fixes the shape of y)."
        ) from None
    arr = onp.asarray(value)
    if onp.iscomplexobj(arr):
        raise InputError(f"{name}(x, {where}) returned a complex value; it must be real.")
    if arr.dtype == object or arr.dtype.kind not in "fiub":
        raise InputError(
            f"{name}(x, {where}) returned {type(value).__name__}; it must return real numbers."
        )
    return arr.astype(float)


def _describe(x):
    v = getval(x)
    if isinstance(v, dict):
        return f"a dict with keys {sorted(map(str, v))}"
    if isinstance(v, (list, tuple)):
        try:
            return f"of shape {onp.shape(onp.asarray(v, dtype=float))}"
        except (ValueError, TypeError):
            return f"a {type(v).__name__} of {len(v)} items"
    return f"of shape {onp.shape(v)}"


def check_objective(f, x, y, where="y"):
    """``f(x, y)`` must be a finite real scalar (``where`` names ``y`` in messages)."""
    value = call_user(f, x, y, "f", where)
    if value.ndim != 0:
        raise ShapeError(
            f"f(x, {where}) must return a scalar; it returned shape {value.shape}. "
            "Sum or reduce it (argminlib minimises one real number)."
        )
    if not onp.isfinite(value):
        raise NonFiniteError(
            f"f(x, {where}) = {value}: the objective is not finite at this (x, {where}); "
            + (
                "start the forward solver where f is finite (the starting point y0 is "
                "outside the domain of f)."
                if where == "y0"
                else "check that y lies in the domain of f."
            )
        )


def check_constraint(h, x, y, name, where="y0"):
    """``h(x, y)`` must return real numbers (any shape); a wrong shape inside ``h`` is
    reported as an :class:`~argminlib.InputError`."""
    call_user(h, x, y, name, where)


def f_Y(f, x, y):
    """``f_Y = grad_y f(x, y)``, with the shape of ``y``."""
    return grad(f, 1)(x, y)


def f_YY(f, x, y):
    """``f_YY = d^2 f / dy^2``: a float for scalar ``y``, else an ``n x n`` matrix over
    the flattened ``y`` (``n = size(y)``)."""
    if anp.ndim(getval(y)) == 0:
        return grad(grad(f, 1), 1)(x, y)
    shape = anp.shape(getval(y))
    return hessian(lambda z: f(x, anp.reshape(z, shape)))(anp.reshape(y, (-1,)))


def f_XY(f, x, y):
    """``f_XY = d/dx grad_y f(x, y)``: shape ``(n,) + shape(x)`` over the flattened ``y``
    (a float when both are scalars, an n-vector for scalar ``x``, ``n x m`` for ``x`` in
    ``R^m``)."""
    if anp.ndim(getval(y)) == 0:
        return jacobian(lambda x_: grad(f, 1)(x_, y))(x)
    return jacobian(lambda x_: anp.reshape(grad(f, 1)(x_, y), (-1,)))(x)


def flat_values(h, x, y):
    """``h(x, y)`` as a flat 1-D array (a constraint function may return any shape)."""
    return anp.reshape(h(x, y), (-1,))


def constraint_jacobian(h, x, y):
    """``h_Y`` as a ``p x n`` matrix over the flattened ``y`` (``p`` constraint values)."""
    shape = anp.shape(getval(y))
    p = int(onp.size(getval(flat_values(h, x, y))))
    if p == 0:
        return onp.zeros((0, int(onp.size(getval(y)))))
    return jacobian(lambda z: flat_values(h, x, anp.reshape(z, shape)))(anp.reshape(y, (-1,)))
