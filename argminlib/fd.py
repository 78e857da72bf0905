"""Central finite differences: the independent check of every derivative in argminlib.

``fun`` is any function of ``x`` (a float or an array of any shape) returning a float or an
array; for a solution map it re-solves the lower-level problem at each perturbed ``x``, so
it costs two solves per direction (``2 * size(x)`` for the full Jacobian): fine for a
check, too slow for training, which is why the implicit derivative exists.
"""

from __future__ import annotations

import numpy as onp

__all__ = ["fd_jvp", "fd_jacobian", "fd_grad", "max_error"]


def fd_jvp(fun, x, v, eps=1e-6):
    """``(fun(x + eps v) - fun(x - eps v)) / (2 eps)``: the directional derivative, with the
    shape of ``fun(x)``. The truncation error is ``O(eps^2)``."""
    x = onp.asarray(x, dtype=float)
    v = onp.asarray(v, dtype=float)
    if v.shape != x.shape:
        raise ValueError(f"v has shape {v.shape}; fd_jvp needs the shape of x, {x.shape}")
    hi = onp.asarray(fun(x + eps * v), dtype=float)
    lo = onp.asarray(fun(x - eps * v), dtype=float)
    return (hi - lo) / (2.0 * eps)


def fd_jacobian(fun, x, eps=1e-6):
    """The Jacobian of ``fun`` at ``x`` by central differences, shape
    ``shape(fun(x)) + shape(x)`` (the convention of ``autograd.jacobian``)."""
    x = onp.asarray(x, dtype=float)
    cols = []
    for i in range(x.size):
        e = onp.zeros(x.size)
        e[i] = 1.0
        cols.append(fd_jvp(fun, x, e.reshape(x.shape), eps))
    out_shape = cols[0].shape if cols else ()
    J = onp.stack(cols, axis=-1) if cols else onp.zeros(out_shape + (0,))
    return J.reshape(out_shape + x.shape)


def fd_grad(fun, x, eps=1e-6):
    """The gradient of a scalar ``fun`` at ``x`` by central differences (shape of ``x``)."""
    g = fd_jacobian(fun, x, eps)
    if g.shape != onp.shape(x):
        raise ValueError("fd_grad needs a scalar-valued fun; use fd_jacobian")
    return g


def max_error(a, b, relative=False):
    """``max |a - b|``, or divided by ``max(1, max |b|)`` with ``relative=True``."""
    a = onp.asarray(a, dtype=float)
    b = onp.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} and {b.shape}")
    err = float(onp.max(onp.abs(a - b))) if a.size else 0.0
    return err / max(1.0, float(onp.max(onp.abs(b)))) if relative and b.size else err
