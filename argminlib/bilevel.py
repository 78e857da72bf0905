"""Bi-level optimisation: minimise an upper-level loss of argmin solutions.

``loss(theta)`` is any function written with ``autograd.numpy`` whose value depends on
solutions of lower-level problems (``argminlib.argmin``, a problem object called with
``theta``, ...). Its gradient is ``autograd.grad(loss)``: one implicit VJP per lower-level
problem per step. These helpers run the upper-level descent and keep its history.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as onp
import scipy.optimize as sopt
from autograd import value_and_grad

from .exceptions import ArgminError

__all__ = ["History", "gradient_descent", "lbfgs", "minimize_upper"]


@dataclass
class History:
    """The run of an upper-level optimiser.

    ``thetas[k]`` and ``losses[k]`` are the parameters and loss after ``k`` steps
    (``k = 0`` is the start); ``grad_norms[k]`` is ``||grad loss(thetas[k])||``.
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
        self.thetas.append(onp.array(theta, dtype=float))
        self.losses.append(float(loss))
        self.grad_norms.append(float(onp.linalg.norm(g)))


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
    progress=False,
):
    """Gradient descent ``theta <- theta - step * grad loss(theta)``.

    With ``backtracking=True`` each step starts at ``step`` and is halved (``shrink``)
    until the Armijo condition ``loss(new) <= loss - armijo * s * ||g||^2`` holds. Stops
    after ``maxiter`` steps or when ``||g|| <= gtol``. Returns a :class:`History`.
    """
    if not step > 0:
        raise ArgminError(f"step must be positive; got {step}")
    vg = value_and_grad(loss)
    theta = onp.array(theta0, dtype=float)
    hist = History("backtracking" if backtracking else "gd")
    value, g = vg(theta)
    hist.record(theta, value, g)
    bar = _progress(maxiter, progress, hist.method)
    for _ in range(maxiter):
        if not onp.all(onp.isfinite(g)):
            raise ArgminError("the upper-level gradient is NaN or inf; lower the step size")
        if onp.linalg.norm(g) <= gtol:
            hist.message = "gradient norm below gtol"
            break
        s = step
        new = theta - s * g
        if backtracking:
            nv = loss(new)
            while not nv <= value - armijo * s * float(g @ g) and s > 1e-12:
                s *= shrink
                new = theta - s * g
                nv = loss(new)
        theta = new
        value, g = vg(theta)
        hist.record(theta, value, g)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=float(value))
    else:
        hist.message = "maxiter reached"
    if bar is not None:
        bar.close()
    return hist


def lbfgs(loss, theta0, *, maxiter=100, gtol=1e-8, progress=False):
    """scipy's L-BFGS-B on ``loss`` with autograd gradients. Returns a :class:`History`
    (one entry per L-BFGS iteration). Each point is evaluated once: the history reuses the
    value and gradient the line search computed."""
    vg = value_and_grad(loss)
    hist = History("lbfgs")
    theta0 = onp.array(theta0, dtype=float)
    cache = {}

    def evaluate(theta):
        key = onp.asarray(theta, dtype=float).tobytes()
        if key not in cache:
            v, gr = vg(onp.array(theta, dtype=float))
            cache.clear()  # keep only the latest point: the one the callback asks for
            cache[key] = (float(v), onp.asarray(gr, dtype=float))
        return cache[key]

    value, g = evaluate(theta0)
    hist.record(theta0, value, g)
    bar = _progress(maxiter, progress, "lbfgs")

    def callback(intermediate_result):
        th = intermediate_result.x
        v, gr = evaluate(th)
        hist.record(th, v, gr)
        if bar is not None:
            bar.update(1)

    res = sopt.minimize(
        evaluate,
        theta0,
        jac=True,
        method="L-BFGS-B",
        callback=callback,
        options={"maxiter": maxiter, "gtol": gtol},
    )
    if bar is not None:
        bar.close()
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
    raise ValueError(f"method={method!r}: use 'gd', 'backtracking' or 'lbfgs'")
