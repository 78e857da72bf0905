"""Bi-level optimisation: minimise an upper-level loss of argmin solutions.

``loss(theta)`` is any function written with ``autograd.numpy`` whose value depends on
solutions of lower-level problems (``argminlib.argmin``, a problem object called with
``theta``, ...). Its gradient is ``autograd.grad(loss)``: one implicit VJP per lower-level
problem per step. These helpers run the upper-level descent and keep its history.

``theta`` may be a number, an array or a container (tuple, list, dict) of arrays, as
``argmin``'s ``x``; ``bounds=(lo, hi)`` (numbers, or arrays or containers shaped like
``theta``; ``None`` or ``inf`` for no bound) or a ``scipy.optimize.Bounds`` keeps it in a
box; ``callback(theta, loss)`` is called after every step and stops the run by returning
``True``. When a lower-level problem raises an :class:`~argminlib.ArgminError` mid-run, the
error is raised with the :class:`History` so far on it (``err.history``): the iterations
already paid for are not lost.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as onp
import scipy.optimize as sopt
from autograd import value_and_grad
from autograd.misc import flatten

from .bounds import as_bounds
from .exceptions import ArgminError, InputError

__all__ = ["History", "gradient_descent", "lbfgs", "minimize_upper"]


@dataclass
class History:
    """The run of an upper-level optimiser.

    ``thetas[k]`` and ``losses[k]`` are the parameters (in the structure of ``theta0``) and
    loss after ``k`` steps (``k = 0`` is the start); ``grad_norms[k]`` is
    ``||grad loss(thetas[k])||`` (of the projected gradient, with bounds); ``message``: why
    the run stopped.
    """

    method: str
    thetas: list = field(default_factory=list)
    losses: list = field(default_factory=list)
    grad_norms: list = field(default_factory=list)
    message: str = ""

    @property
    def theta(self):
        """The final parameters."""
        return self.thetas[-1]

    @property
    def loss(self):
        """The final loss."""
        return self.losses[-1]

    def record(self, theta, loss, g):
        self.thetas.append(theta)
        self.losses.append(float(loss))
        self.grad_norms.append(float(onp.linalg.norm(g)))


def _floats(t):
    """``t`` with integer numbers and lists of numbers read as floats (as ``argmin`` reads
    ``x``), containers kept."""
    if isinstance(t, dict):
        return {k: _floats(v) for k, v in t.items()}
    if isinstance(t, tuple):
        return tuple(_floats(v) for v in t)
    if isinstance(t, list) and not all(isinstance(v, numbers.Number) for v in t):
        return [_floats(v) for v in t]
    if isinstance(t, (numbers.Number, list, onp.ndarray)):
        a = onp.asarray(t)
        return a.astype(float) if a.dtype.kind in "biuf" else a
    return t


class _Flat:
    """``theta0`` (any structure) as a float vector, with the loss and its gradient on
    vectors, the box of ``bounds`` in the same order, and the run's history."""

    def __init__(self, loss, theta0, bounds, callback, method):
        try:
            vec, self.unflatten = flatten(_floats(theta0))
            vec = onp.array(vec, dtype=float)
        except (TypeError, ValueError) as err:
            raise InputError(
                f"theta0 must be a number, an array or a container (tuple, list, dict) of "
                f"arrays ({err})"
            ) from None
        if vec.dtype.kind != "f" or not onp.all(onp.isfinite(vec)):
            raise InputError("theta0 must be finite real numbers")
        self.vec0, self.n = vec, vec.size
        self.lo, self.hi = self._box(bounds, theta0)
        self.vg = value_and_grad(lambda v: loss(self.unflatten(v)))
        self.callback = callback
        self.hist = History(method)

    def _box(self, bounds, theta0):
        """``(lo, hi)`` over the flattened theta: :func:`argminlib.bounds.as_bounds`, each
        side first flattened as theta is when it is a container shaped like theta0."""
        n = self.n
        if bounds is None:
            return onp.full(n, -onp.inf), onp.full(n, onp.inf)

        def flat(b):
            if b is None or (onp.ndim(b) == 0 and not isinstance(b, (dict, list, tuple))):
                return b
            try:
                out = onp.asarray(flatten(_floats(b))[0], dtype=float).reshape(-1)
            except (TypeError, ValueError):
                out = None
            if out is None or out.size != n:
                raise InputError(
                    f"a bound has {None if out is None else out.size} entries; theta has {n}"
                    " (give a number, or an array or container shaped like theta0)"
                )
            return out

        if isinstance(bounds, (tuple, list)) and len(bounds) == 2:
            bounds = (flat(bounds[0]), flat(bounds[1]))
        lo, hi = as_bounds(bounds, (n,))
        if onp.any(self.vec0 < lo) or onp.any(self.vec0 > hi):
            raise InputError("theta0 is outside bounds: start inside the box")
        return lo, hi

    @property
    def bounded(self):
        return bool(onp.any(onp.isfinite(self.lo)) or onp.any(onp.isfinite(self.hi)))

    def evaluate(self, v):
        try:
            value, g = self.vg(onp.array(v, dtype=float))
        except ArgminError as err:
            err.history = self.hist
            steps = len(self.hist.losses) - 1
            when = "at the start" if steps < 0 else f"after {steps} upper-level steps"
            err.args = (
                f"{err.args[0] if err.args else err} ({when}; the History so far is on this "
                "error as err.history)",
            ) + err.args[1:]
            raise
        return float(value), onp.asarray(g, dtype=float).reshape(-1)

    def projected(self, v, g):
        """The gradient with the components that push against an active bound zeroed."""
        at_lo = (v <= self.lo) & (g > 0)
        at_hi = (v >= self.hi) & (g < 0)
        return onp.where(at_lo | at_hi, 0.0, g)

    def record(self, v, value, g):
        """Record a step; ``True`` when the callback asks to stop."""
        theta = self.unflatten(onp.array(v, dtype=float))
        self.hist.record(theta, value, self.projected(v, g))
        try:
            stop = self.callback is not None and self.callback(theta, value)
        except Exception as err:  # (the user's callback failed: keep the history on it)
            err.history = self.hist
            raise
        if stop:
            self.hist.message = "stopped by callback"
            return True
        return False


def _progress(total, enabled, desc):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("progress=True needs tqdm: pip install tqdm") from None
    return tqdm(total=total, desc=desc)


def gradient_descent(
    loss,
    theta0,
    *,
    step=0.1,
    maxiter=100,
    backtracking=False,
    shrink=0.5,
    armijo=1e-4,
    gtol=1e-8,
    bounds=None,
    callback=None,
    progress=False,
):
    """Gradient descent ``theta <- theta - step * grad loss(theta)`` (projected onto the box
    of ``bounds``, if given: each step is clipped to it).

    With ``backtracking=True`` each step starts at ``step`` and is halved (``shrink``)
    until the Armijo condition ``loss(new) <= loss - armijo * (g . (theta - new))`` holds.
    Stops after ``maxiter`` steps, when the (projected) gradient's norm is at most
    ``gtol``, or when ``callback(theta, loss)`` returns ``True``. Returns a
    :class:`History`; see the module docstring for ``theta``, ``bounds`` and errors.
    """
    if not (isinstance(step, numbers.Real) and not isinstance(step, bool) and step > 0):
        raise InputError(f"step must be positive (a number); got {step!r}")
    run = _Flat(loss, theta0, bounds, callback, "backtracking" if backtracking else "gd")
    hist = run.hist
    theta = run.vec0
    value, g = run.evaluate(theta)
    stop = run.record(theta, value, g)
    bar = _progress(maxiter, progress, hist.method)
    for _ in range(maxiter):
        if stop:
            break
        if not onp.all(onp.isfinite(g)):
            err = ArgminError("the upper-level gradient is NaN or inf; lower the step size")
            err.history = hist
            raise err
        if onp.linalg.norm(run.projected(theta, g)) <= gtol:
            hist.message = "gradient norm below gtol"
            break
        s = step
        new = onp.clip(theta - s * g, run.lo, run.hi)
        if backtracking:
            nv = run.evaluate(new)[0]
            while not nv <= value - armijo * float(g @ (theta - new)) and s > 1e-12:
                s *= shrink
                new = onp.clip(theta - s * g, run.lo, run.hi)
                nv = run.evaluate(new)[0]
        theta = new
        value, g = run.evaluate(theta)
        stop = run.record(theta, value, g)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=float(value))
    else:
        if not stop:
            hist.message = "maxiter reached"
    if bar is not None:
        bar.close()
    return hist


def lbfgs(loss, theta0, *, maxiter=100, gtol=1e-8, bounds=None, callback=None, progress=False):
    """scipy's L-BFGS-B on ``loss`` with autograd gradients, within ``bounds`` (passed to
    scipy). Returns a :class:`History` (one entry per L-BFGS iteration; each point is
    evaluated once: the history reuses the value and gradient the line search computed);
    ``callback(theta, loss)`` returning ``True`` stops the run. See the module docstring
    for ``theta``, ``bounds`` and errors."""
    run = _Flat(loss, theta0, bounds, callback, "lbfgs")
    hist = run.hist
    cache = {}

    def evaluate(v):
        key = onp.asarray(v, dtype=float).tobytes()
        if key not in cache:
            out = run.evaluate(v)
            cache.clear()  # keep only the latest point: the one the callback asks for
            cache[key] = out
        return cache[key]

    value, g = evaluate(run.vec0)
    if run.record(run.vec0, value, g):
        return hist
    bar = _progress(maxiter, progress, "lbfgs")

    def step(intermediate_result):
        v = intermediate_result.x
        if run.record(v, *evaluate(v)):
            raise StopIteration
        if bar is not None:
            bar.update(1)

    res = sopt.minimize(
        evaluate,
        run.vec0,
        jac=True,
        method="L-BFGS-B",
        bounds=sopt.Bounds(run.lo, run.hi) if run.bounded else None,
        callback=step,
        options={"maxiter": maxiter, "gtol": gtol},
    )
    if bar is not None:
        bar.close()
    if hist.message != "stopped by callback":
        hist.message = str(res.message)
    return hist


def minimize_upper(loss, theta0, method="gd", **options):
    """Minimise ``loss(theta)``: ``method`` is ``"gd"`` (fixed step), ``"backtracking"``
    or ``"lbfgs"``; ``options`` go to :func:`gradient_descent` or :func:`lbfgs`."""
    if method == "gd":
        return gradient_descent(loss, theta0, **options)
    if method == "backtracking":
        return gradient_descent(loss, theta0, backtracking=True, **options)
    if method == "lbfgs":
        return lbfgs(loss, theta0, **options)
    raise InputError(f"method={method!r}: use 'gd', 'backtracking' or 'lbfgs'")
