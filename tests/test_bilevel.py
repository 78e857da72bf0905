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


# --- issue 20: containers, bounds, callback, the history kept on an error ------------------


def _split_loss():
    """The closed-form problem with its parameter split into a dict {"h": 2, "v": 1}."""
    loss, x_star = closed_form_problem()

    def dict_loss(theta):
        return loss(anp.concatenate([theta["h"], theta["v"]]))

    return dict_loss, {"h": x_star[:2], "v": x_star[2:]}


@pytest.mark.parametrize("method", ["gd", "backtracking", "lbfgs"])
def test_parameters_may_be_a_container(method):
    """``gradient_descent(up, {"h": ..., "v": ...})`` was a bare TypeError (float() of a
    dict) although argmin accepts dicts; the history keeps the structure."""
    loss, star = _split_loss()
    options = {"lbfgs": {"maxiter": 50}, "gd": {"step": 0.1, "maxiter": 300}}
    options = options.get(method, {"step": 1.0, "maxiter": 100})
    theta0 = {"h": onp.zeros(2), "v": onp.zeros(1)}
    hist = al.minimize_upper(loss, theta0, method=method, **options)
    assert set(hist.theta) == {"h", "v"} and hist.theta["h"].shape == (2,)
    for k in star:
        assert al.max_error(hist.theta[k], star[k]) < 1e-4
    assert isinstance(hist.thetas[0], dict) and onp.all(hist.thetas[0]["h"] == 0)


@pytest.mark.parametrize("method", ["gd", "backtracking", "lbfgs"])
def test_bounds_keep_the_parameters_in_the_box_and_bind(method):
    """With bounds, every iterate is inside the box. One bound cuts off the unconstrained
    minimiser x* of the convex loss, so it binds at the answer (were it inactive, the
    answer would be x*), and there the projected gradient is zero (KKT of the box)."""
    loss, x_star = closed_form_problem()
    k = int(onp.argmax(onp.abs(x_star)))
    lo, hi = onp.full(3, -onp.inf), onp.full(3, onp.inf)
    if x_star[k] > 0:
        hi[k] = 0.5 * x_star[k]
    else:
        lo[k] = 0.5 * x_star[k]
    start = onp.zeros(3)
    options = {"lbfgs": {"maxiter": 100}, "gd": {"step": 0.1, "maxiter": 2000}}
    options = options.get(method, {"step": 1.0, "maxiter": 500})
    hist = al.minimize_upper(loss, start, method=method, bounds=(lo, hi), **options)
    for th in hist.thetas:
        assert onp.all(th >= lo - 1e-12) and onp.all(th <= hi + 1e-12)
    assert hist.theta[k] == pytest.approx(0.5 * x_star[k], abs=1e-6)
    assert hist.grad_norms[-1] < 1e-4
    # scipy's Bounds work the same way
    same = al.minimize_upper(
        loss, start, method=method, bounds=__import__("scipy").optimize.Bounds(lo, hi), **options
    )
    assert onp.allclose(same.theta, hist.theta, atol=1e-6)


@pytest.mark.parametrize("method", ["gd", "lbfgs"])
def test_callback_sees_each_step_and_can_stop_the_run(method):
    loss, _ = closed_form_problem()
    seen = []

    def callback(theta, value):
        seen.append(value)
        return len(seen) == 4

    hist = al.minimize_upper(loss, onp.zeros(3), method=method, callback=callback)
    assert hist.message == "stopped by callback"
    assert seen == hist.losses and len(seen) == 4


@pytest.mark.parametrize("method", ["gd", "lbfgs"])
def test_an_argmin_error_mid_run_keeps_the_history(method):
    """``al.lbfgs`` dropped its whole History on any error (30 s of iterations gone); the
    error now carries it, and says so."""
    loss, _ = closed_form_problem()
    calls = []

    def failing(x):
        calls.append(1)
        if len(calls) > 5:
            raise al.ForwardSolveError("the lower level failed")
        return loss(x)

    with pytest.raises(al.ForwardSolveError, match="err.history") as err:
        al.minimize_upper(failing, onp.zeros(3), method=method, step=0.1) if method == "gd" else (
            al.lbfgs(failing, onp.zeros(3))
        )
    hist = err.value.history
    assert len(hist.losses) >= 2 and hist.losses[-1] < hist.losses[0]


def test_bad_bounds_and_starts_are_named():
    loss, _ = closed_form_problem()
    with pytest.raises(al.InputError, match="outside bounds"):
        al.lbfgs(loss, onp.zeros(3), bounds=(1.0, 2.0))
    with pytest.raises(al.InputError, match="entries; theta has 3"):
        al.lbfgs(loss, onp.zeros(3), bounds=(onp.zeros(2), None))
    with pytest.raises(al.InputError, match="lower bound is above"):
        al.gradient_descent(loss, onp.zeros(3), bounds=(1.0, -1.0))
    with pytest.raises(al.InputError, match="theta0"):
        al.gradient_descent(loss, "abc")


def test_integer_and_list_starts_numpy_steps_and_a_failing_callback():
    """Hostile review: theta0 = 0 or [0, 1] was refused ('must be a number') although argmin
    reads ints as floats; step=np.float32(0.1) was refused; an exception in the callback
    lost the history."""
    loss, x_star = closed_form_problem()
    hist = al.lbfgs(loss, [0, 0, 0])  # (a list of numbers: an array, as argmin reads it)
    assert al.max_error(hist.theta, x_star) < 1e-4
    hist = al.lbfgs(lambda t: loss(anp.append(t["a"], t["b"])), {"a": [0, 0], "b": 0})
    assert al.max_error(onp.append(hist.theta["a"], hist.theta["b"]), x_star) < 1e-4
    hist = al.gradient_descent(loss, onp.zeros(3), step=onp.float32(0.1), maxiter=3)
    assert len(hist.losses) == 4

    def bad(theta, value):
        raise ZeroDivisionError("in the user's callback")

    with pytest.raises(ZeroDivisionError) as err:
        al.gradient_descent(loss, onp.zeros(3), callback=bad)
    assert len(err.value.history.losses) == 1
