"""Bi-level gradient descent: a problem with a closed-form answer, and the soft-max target
problem of chapter 5 for each of the three variants."""

import autograd.numpy as anp
import numpy as onp
import pytest

import argminlib as al
from argminlib import softmax as sm


def closed_form_problem():
    """Lower: y*(x) = argmin ||y - M x||^2 + ||y||^2 = M x / 2. Upper: 1/2 ||y* - t||^2.
    Minimiser x* = 2 M^{-1} t, minimum 0."""
    rng = onp.random.default_rng(0)
    M = rng.normal(size=(3, 3)) + 3 * onp.eye(3)
    target = rng.normal(size=3)

    def f(x, y):
        return anp.sum((y - M @ x) ** 2) + anp.sum(y**2)

    def loss(x):
        return 0.5 * anp.sum((al.argmin(f, x, onp.zeros(3)) - target) ** 2)

    return loss, 2 * onp.linalg.solve(M, target)


@pytest.mark.parametrize(
    "method, options",
    [
        ("gd", {"step": 0.1, "maxiter": 300}),
        ("backtracking", {"step": 1.0, "maxiter": 100}),
        ("lbfgs", {"maxiter": 50}),
    ],
)
def test_closed_form_bilevel(method, options):
    loss, x_star = closed_form_problem()
    hist = al.minimize_upper(loss, onp.zeros(3), method=method, **options)
    assert al.max_error(hist.theta, x_star) < 1e-4
    assert hist.loss < 1e-9
    assert len(hist.losses) == len(hist.thetas) == len(hist.grad_norms)
    assert hist.losses[0] > hist.losses[-1]


def test_history_and_bad_options():
    loss, _ = closed_form_problem()
    with pytest.raises(al.ArgminError, match="step must be positive"):
        al.gradient_descent(loss, onp.zeros(3), step=0.0)
    with pytest.raises(ValueError, match="method='sgd'"):
        al.minimize_upper(loss, onp.zeros(3), method="sgd")
    hist = al.gradient_descent(loss, onp.zeros(3), step=0.1, maxiter=3)
    assert len(hist.losses) == 4 and hist.message == "maxiter reached"


M, N = 3, 2
TARGETS = onp.array([[0.6, 0.4], [-0.4, 0.5], [0.1, -0.7]])
FACTOR = 5.0  # the loss must fall at least this much in ITERS backtracking steps
ITERS = 15


@pytest.mark.parametrize("variant", ["unconstrained", "sum", "ball-exact"])
def test_softmax_targets_loss_falls(variant):
    a, b = sm.random_parameters(M, N, seed=0)

    def loss(theta):
        return 0.5 * anp.sum((sm.ml_features(theta, M, N, variant) - TARGETS) ** 2)

    hist = al.gradient_descent(
        loss, sm.flatten_parameters(a, b), step=1.0, maxiter=ITERS, backtracking=True
    )
    assert hist.losses[0] / hist.losses[-1] > FACTOR, hist.losses
    assert all(b <= a + 1e-12 for a, b in zip(hist.losses, hist.losses[1:], strict=False))


def test_progress_bar_is_optional(capsys):
    pytest.importorskip("tqdm")
    loss, _ = closed_form_problem()
    quiet = al.gradient_descent(loss, onp.zeros(3), step=0.1, maxiter=3)
    assert capsys.readouterr().err == ""  # off by default
    shown = al.gradient_descent(loss, onp.zeros(3), step=0.1, maxiter=3, progress=True)
    assert "gd" in capsys.readouterr().err
    assert shown.losses == quiet.losses
    al.lbfgs(loss, onp.zeros(3), maxiter=3, progress=True)
    assert "lbfgs" in capsys.readouterr().err
