"""``argmin`` and ``argmax``: choose the problem class from the constraints given."""

from __future__ import annotations

import weakref

from .batch import argmin_batch
from .bounds import argmin_bounded
from .equality import Equality
from .exceptions import InputError
from .inequality import Inequality
from .unconstrained import Unconstrained

__all__ = ["argmin", "argmax", "problem_for"]


def problem_for(f, y0, *, mode="min", eq=None, ineq=None, **options):
    """The problem object :func:`argmin` would solve: :class:`~argminlib.Unconstrained`,
    :class:`~argminlib.Equality` (``eq`` given) or :class:`~argminlib.Inequality`
    (``ineq`` given)."""
    user = {k: options.pop(k) for k in ("hess", "hessp", "hess_sparsity") if k in options}
    if any(v is not None for v in user.values()) and (eq is not None or ineq is not None):
        raise InputError(
            "hess, hessp and hess_sparsity are supported for unconstrained problems only (with "
            "constraints the linear systems are KKT matrices); leave them out."
        )
    if ineq is not None:
        return Inequality(f, ineq, y0, eq=eq, mode=mode, **options)
    if eq is not None:
        return Equality(f, eq, y0, mode=mode, **options)
    return Unconstrained(f, y0, mode=mode, **options, **user)


def argmin(
    f,
    x,
    y0,
    *,
    eq=None,
    ineq=None,
    solver="dense",
    tol=1e-6,
    forward=None,
    certify=True,
    hess=None,
    hessp=None,
    hess_sparsity=None,
    return_info=False,
    warm_start=False,
    bounds=None,
    batch=False,
):
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

    ``hess(x, y)``, ``hessp(x, y, v)`` and ``hess_sparsity`` (scipy's names) give ``f_YY``
    for the linear solves and the certificate (unconstrained problems; see
    :class:`~argminlib.Unconstrained`): e.g. ``hess_sparsity=pattern, solver="sparse"``
    recovers the sparse Hessian from a few products and factorises it once.

    ``batch=True`` solves B independent problems at once (:mod:`argminlib.batch`): ``x``
    with a leading axis of length B (or a container of such arrays), ``y0`` of shape
    ``(B, n)``, ``f(x, y)`` returning the B objectives, problem b depending on ``x[b]`` and
    ``y[b]`` only (checked); the result is ``(B, n)``, each problem certified on its own and
    an error naming the problem that fails (solvers ``"dense"`` and ``"cg"``).

    ``bounds=(lo, hi)`` (numbers, arrays of ``y``'s shape, ``None``; or a
    ``scipy.optimize.Bounds``) keeps ``lo <= y <= hi``: the coordinates on a bound get
    derivative zero and the others that of the problem restricted to them (no KKT rows for
    the bounds; see :mod:`argminlib.bounds`); it combines with ``eq``.

    ``warm_start=True`` starts the forward solver from the last solution of the same ``f``
    (the function object; same mode, constraints and shape of ``y0``) instead of ``y0``:
    in an upper-level loop the polish then often finishes the solve. The answer is
    certified as from any start, but on a problem with several minima it follows the
    last branch.

    ``return_info=True`` returns ``(y, info)``: an :class:`~argminlib.ArgminInfo`
    (the certificate now; the derivative solves' iterations, residual and error bound once
    ``grad`` has run through ``y``), e.g. kept from inside a loss::

        infos = []
        def loss(x):
            y, info = al.argmin(f, x, y0, solver="cg", return_info=True)
            infos.append(info)
            return np.sum(y ** 2)
        grad(loss)(x); infos[-1].solves.error   # the adjoint CG solve's error bound
    """
    options = {"solver": solver, "tol": tol, "forward": forward, "certify": certify}
    options.update(hess=hess, hessp=hessp, hess_sparsity=hess_sparsity)
    if batch:
        return _batch(f, x, y0, "min", options, eq, ineq, return_info, warm_start, bounds)
    return _solve(f, x, y0, "min", eq, ineq, options, return_info, warm_start, bounds)


def argmax(
    f,
    x,
    y0,
    *,
    eq=None,
    ineq=None,
    solver="dense",
    tol=1e-6,
    forward=None,
    certify=True,
    hess=None,
    hessp=None,
    hess_sparsity=None,
    return_info=False,
    warm_start=False,
    bounds=None,
    batch=False,
):
    """``argmax_y f(x, y)``: as :func:`argmin`, with a negative definite Hessian."""
    options = {"solver": solver, "tol": tol, "forward": forward, "certify": certify}
    options.update(hess=hess, hessp=hessp, hess_sparsity=hess_sparsity)
    if batch:
        return _batch(f, x, y0, "max", options, eq, ineq, return_info, warm_start, bounds)
    return _solve(f, x, y0, "max", eq, ineq, options, return_info, warm_start, bounds)


#: the last solution of each objective solved with ``warm_start=True``, by the function
#: object ``f`` (weakly: dropped with ``f``), then by (mode, constraints, shape of y0)
_LAST = weakref.WeakKeyDictionary()


def _batch(f, x, y0, mode, options, eq, ineq, return_info, warm_start, bounds):
    """``batch=True``: :func:`~argminlib.batch.argmin_batch`, for the options it supports."""
    unsupported = {
        "eq": eq,
        "ineq": ineq,
        "hess": options.get("hess"),
        "hessp": options.get("hessp"),
        "hess_sparsity": options.get("hess_sparsity"),
        "bounds": bounds,
    }
    named = [k for k, v in unsupported.items() if v is not None]
    named += [k for k, v in (("return_info", return_info), ("warm_start", warm_start)) if v]
    if named:
        raise InputError(
            f"batch=True does not support {', '.join(named)} yet: solve those problems one "
            "by one (argmin without batch), or leave the option out."
        )
    return argmin_batch(
        f,
        x,
        y0,
        mode=mode,
        solver=options["solver"],
        tol=options["tol"],
        certify=options["certify"],
        forward=options["forward"],
    )


def _solve(f, x, y0, mode, eq, ineq, options, return_info, warm_start, bounds=None):
    """:func:`argmin` / :func:`argmax`: the problem of :func:`problem_for` called at
    ``x``; with ``warm_start``, started from the last solution of the same ``f`` (same
    mode, constraint functions and shape of ``y0``), kept by ``f``'s identity; with
    ``bounds``, :func:`~argminlib.bounds.argmin_bounded`."""
    if bounds is not None:
        given = [k for k in ("hess", "hessp", "hess_sparsity") if options.get(k) is not None]
        if ineq is not None or warm_start or given:
            raise InputError(
                "bounds= works with eq= and the solver options; with "
                + ("ineq=, write the bounds as rows of ineq" if ineq is not None else "")
                + ("warm_start, pass y0 yourself" if warm_start else "")
                + (f"{', '.join(given)}, leave them out" if given else "")
                + "."
            )
        rest = {k: v for k, v in options.items() if k not in ("hess", "hessp", "hess_sparsity")}
        return argmin_bounded(f, x, y0, bounds, mode=mode, eq=eq, return_info=return_info, **rest)
    prob = problem_for(f, y0, mode=mode, eq=eq, ineq=ineq, warm_start=warm_start, **options)
    if not warm_start:
        return prob(x, return_info)
    try:
        memory = _LAST.setdefault(f, {})
    except TypeError:  # (an f that cannot be weakly referenced: no memory)
        memory = {}
    key = (mode, id(eq), id(ineq), prob.yshape)
    prob.last = memory.get(key)
    out = prob(x, return_info)
    memory[key] = prob.last
    return out
