"""Unrolled differentiation, and the measurements chapter 6 compares it with.

*Unrolling* differentiates the forward solver itself: run ``K`` iterations of a solver
written in ``autograd.numpy`` and let autograd go back through all of them. It needs no
optimality conditions and gives the exact derivative of the ``K``-th iterate, which tends
to the derivative of the solution map as the iterate tends to the solution; autograd keeps
every iterate for the reverse pass, so memory grows like ``K n``. Implicit differentiation
(the rest of argminlib) needs a converged, certified solution and ``O(n)`` memory whatever
the forward solver did.

:func:`unroll` builds the ``K``-step map from any step ``T(x, y) -> y``;
:func:`gradient_step` is plain gradient descent on ``f``. :func:`timed` and
:func:`peak_memory` measure a call's time and its peak of allocated memory (``tracemalloc``,
which also counts numpy's arrays).
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as onp
from autograd import grad

__all__ = ["unroll", "gradient_step", "timed", "peak_memory"]


def gradient_step(f, step_size):
    """``T(x, y) = y - step_size * f_Y(x, y)``: one step of gradient descent on ``f``,
    differentiable in ``x`` and ``y`` (autograd differentiates ``f_Y`` again in reverse)."""
    f_y = grad(f, 1)

    def T(x, y):
        return y - step_size * f_y(x, y)

    return T


def unroll(T, steps):
    """``y_K(x, y0)``: ``steps`` iterations ``y <- T(x, y)`` from ``y0``. With ``T`` written
    in ``autograd.numpy``, ``autograd.grad`` of any function of ``y_K`` differentiates all
    ``steps`` iterations (reverse mode stores each iterate: memory grows with ``steps``)."""

    def y_K(x, y0):
        y = y0
        for _ in range(steps):
            y = T(x, y)
        return y

    return y_K


def timed(fun, repeat=1):
    """``(seconds, result)``: the best wall-clock time of ``repeat`` calls of ``fun()``."""
    best, out = onp.inf, None
    for _ in range(max(1, int(repeat))):
        t0 = time.perf_counter()
        out = fun()
        best = min(best, time.perf_counter() - t0)
    return best, out


def peak_memory(fun):
    """``(bytes, result)``: the peak of memory allocated during ``fun()`` above what was
    allocated before it (Python objects and numpy arrays, by ``tracemalloc``)."""
    running = tracemalloc.is_tracing()
    if not running:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        out = fun()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        if not running:
            tracemalloc.stop()
    return peak - base, out
