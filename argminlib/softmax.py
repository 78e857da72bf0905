"""The soft-max exemplar of Gould et al. (2016): maximum-likelihood features.

A soft-max classifier over ``m`` classes with features ``x`` in ``R^n`` and parameters
``theta = (a, b)``, ``a`` an ``m x n`` matrix, ``b`` in ``R^m``:

    P(Y = i | x) = exp(a_i^T x + b_i) / sum_j exp(a_j^T x + b_j).

The maximum-likelihood feature of class ``i`` is ``x*_i(theta) = argmax_x l_i(x)`` with

    l_i(x) = a_i^T x + b_i - log sum_j exp(a_j^T x + b_j) - (lam / 2) ||x||^2,

the concave regulariser making the maximum exist without constraints (our setting, as the
paper's is unknown). Three variants: unconstrained, subject to ``1^T x = 1``, and subject
to ``||x||_2 <= 1`` (log barrier or exact). In the lemma's notation the parameter is
``theta`` (``a`` and ``b`` in one vector: :func:`flatten_parameters`) and the variable is
the feature ``x``; the Jacobian ``d x*_i / d theta`` is the core's, for all ``m (n + 1)``
parameters at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import autograd.numpy as anp
import numpy as onp
from autograd.scipy.special import logsumexp

from .equality import Equality, linear_constraint
from .inequality import Barrier, Inequality
from .unconstrained import Unconstrained

__all__ = [
    "flatten_parameters",
    "unflatten_parameters",
    "probabilities",
    "log_likelihood",
    "likelihood_gradient",
    "likelihood_hessian",
    "VARIANTS",
    "ml_problem",
    "ml_feature",
    "ml_features",
    "ml_features_batch",
    "random_parameters",
    "StepResult",
    "first_order_step",
]

VARIANTS = ("unconstrained", "sum", "ball-barrier", "ball-exact")


def flatten_parameters(a, b):
    """``theta``: the rows of ``a`` followed by ``b``, flat (length ``m (n + 1)``)."""
    return anp.concatenate([anp.reshape(a, (-1,)), anp.reshape(b, (-1,))])


def unflatten_parameters(theta, m, n):
    """``(a, b)`` from the flat ``theta``."""
    return anp.reshape(theta[: m * n], (m, n)), theta[m * n :]


def probabilities(x, a, b):
    """``p_j = P(Y = j | x)`` for every class (the soft-max)."""
    s = anp.dot(a, x) + b
    return anp.exp(s - logsumexp(s))


def log_likelihood(i, x, a, b, lam=0.0):
    """``l_i(x) = a_i^T x + b_i - log sum_j exp(a_j^T x + b_j) - (lam/2) ||x||^2``."""
    s = anp.dot(a, x) + b
    return s[i] - logsumexp(s) - 0.5 * lam * anp.sum(x**2)


def likelihood_gradient(i, x, a, b, lam=0.0):
    """The hand-derived ``grad_x l_i = a_i - sum_j p_j a_j - lam x``."""
    p = probabilities(x, a, b)
    return a[i] - anp.dot(p, a) - lam * x


def likelihood_hessian(x, a, b, lam=0.0):
    """The hand-derived ``grad^2_xx l_i = -(sum_j p_j a_j a_j^T - abar abar^T) - lam I``
    with ``abar = sum_j p_j a_j`` (the same for every class ``i``)."""
    p = probabilities(x, a, b)
    abar = anp.dot(p, a)
    cov = anp.dot(anp.transpose(a) * p, a) - anp.outer(abar, abar)
    return -cov - lam * anp.eye(anp.shape(x)[0])


def random_parameters(m, n, seed=0, scale=1.0):
    """Reproducible parameters ``(a, b)``: standard normal entries times ``scale``."""
    rng = onp.random.default_rng(seed)
    return rng.normal(size=(m, n)) * scale, rng.normal(size=m) * scale


def ml_problem(i, m, n, variant="unconstrained", *, lam=0.1, t=1e3, solver="dense", tol=1e-6):
    """The problem whose solution is ``x*_i(theta)``, as an argminlib problem object
    (call it with ``theta``; ``.jacobian(theta, x)`` / ``.vjp`` at a known solution).

    ``variant``: ``"unconstrained"``, ``"sum"`` (``1^T x = 1``), ``"ball-barrier"``
    (``||x||^2 - 1 <= 0`` by the log barrier with parameter ``t``) or ``"ball-exact"``
    (the same constraint, exact KKT derivative).
    """

    def f(theta, x):
        a, b = unflatten_parameters(theta, m, n)
        return log_likelihood(i, x, a, b, lam)

    def ball(theta, x):
        return anp.reshape(anp.sum(x**2) - 1.0, (1,))

    def hess(theta, x):  # the hand-derived Hessian serves the solves (checked against autograd)
        a, b = unflatten_parameters(theta, m, n)
        return likelihood_hessian(x, a, b, lam)

    common = {"mode": "max", "solver": solver, "tol": tol}
    if variant == "unconstrained":
        return Unconstrained(f, onp.zeros(n), hess=hess, **common)
    if variant == "sum":
        return Equality(
            f, linear_constraint(onp.ones((1, n)), onp.ones(1)), onp.ones(n) / n, **common
        )
    if variant == "ball-barrier":
        return Barrier(f, ball, t, onp.zeros(n), **common)
    if variant == "ball-exact":
        return Inequality(f, ball, onp.zeros(n), **common)
    raise ValueError(f"variant={variant!r}: use one of {VARIANTS}")


def ml_feature(i, theta, m, n, variant="unconstrained", **options):
    """``x*_i(theta)``, differentiable in ``theta`` by autograd (see :func:`ml_problem`)."""
    return ml_problem(i, m, n, variant, **options)(theta)


def ml_features(theta, m, n, variant="unconstrained", **options):
    """All ``m`` maximum-likelihood features, stacked as an ``m x n`` array."""
    return anp.stack([ml_feature(i, theta, m, n, variant, **options) for i in range(m)])


def ml_features_batch(theta, m, n, *, lam=0.1, solver="dense", tol=1e-6):
    """The ``m`` unconstrained maximum-likelihood features in one batched call
    (``argmax(..., batch=True)``): problem ``i`` is ``argmax_x l_i(x)`` with its own copy
    of ``theta`` (the ``m`` copies are one array, so the gradient in ``theta`` sums over
    the classes), and every Hessian is formed and factorised at once. Equals
    :func:`ml_features` with ``variant="unconstrained"``."""
    from .api import argmax  # (api imports the problem classes this module uses)

    k = anp.arange(m)

    def f(X, Y):  # X: the m copies of theta; Y: the m features
        A = anp.reshape(X[:, : m * n], (m, m, n))
        S = anp.einsum("bjk,bk->bj", A, Y) + X[:, m * n :]
        return S[k, k] - logsumexp(S, axis=1) - 0.5 * lam * anp.sum(Y**2, axis=1)

    copies = anp.tile(anp.reshape(theta, (1, -1)), (m, 1))
    return argmax(f, copies, onp.zeros((m, n)), batch=True, solver=solver, tol=tol)


@dataclass
class StepResult:
    """One small step on all parameters against the gradient of an upper-level loss on
    ``x*_i`` (the experiment of the paper's Figures 2, 4 and 5).

    ``before[j]``, ``after[j]``: ``x*_j`` at ``theta`` and ``theta + dtheta`` (re-solved);
    ``predicted[j] = before[j] + J_j dtheta`` (first order, ``J_j = d x*_j / d theta``);
    ``loss_before``, ``loss_after``: ``1/2 ||x*_i - target||^2`` at both points.
    """

    theta: onp.ndarray
    dtheta: onp.ndarray
    before: onp.ndarray
    predicted: onp.ndarray
    after: onp.ndarray
    loss_before: float
    loss_after: float

    @property
    def prediction_error(self):
        """The largest miss of the first-order prediction, ``max_j ||after_j - predicted_j||``
        (second order in the step)."""
        return float(onp.max(onp.linalg.norm(self.after - self.predicted, axis=1)))

    @property
    def movement(self):
        """The largest motion of the features, ``max_j ||after_j - before_j||`` (first order
        in the step)."""
        return float(onp.max(onp.linalg.norm(self.after - self.before, axis=1)))


def first_order_step(theta, m, n, variant, target, *, i=0, eta=None, size=None, **options):
    """Step on all parameters against the gradient ``g`` of ``1/2 ||x*_i(theta) - target||^2``
    and compare the re-solved features with their first-order prediction (see
    :class:`StepResult`). The step is ``dtheta = -eta g`` or, with ``size``, the step of
    length ``size`` along ``-g`` (``dtheta = -size * g / ||g||``): the book's convention, so
    that figures with different constraints take steps of the same length."""
    if (eta is None) == (size is None):
        raise ValueError("give exactly one of eta (a multiple of the gradient) or size")
    problems = [ml_problem(j, m, n, variant, **options) for j in range(m)]
    before = [P(theta) for P in problems]
    xi = before[i]
    g = onp.asarray(problems[i].vjp(theta, xi, xi - target))
    dtheta = -eta * g if size is None else -size * g / onp.linalg.norm(g)
    predicted = [x + problems[j].jacobian(theta, x) @ dtheta for j, x in enumerate(before)]
    after = [P(theta + dtheta) for P in problems]
    return StepResult(
        onp.asarray(theta),
        dtheta,
        onp.array(before),
        onp.array(predicted),
        onp.array(after),
        float(0.5 * onp.sum((xi - target) ** 2)),
        float(0.5 * onp.sum((after[i] - target) ** 2)),
    )
