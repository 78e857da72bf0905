"""The soft-max exemplar: hand-derived derivatives against autograd, and the Jacobian of
every maximum-likelihood feature with respect to every parameter against finite differences."""

import autograd.numpy as anp
import numpy as onp
import pytest
from autograd import grad, hessian, jacobian

import argminlib as al
from argminlib import softmax as sm

M, N = 3, 2


@pytest.fixture(scope="module")
def theta():
    a, b = sm.random_parameters(M, N, seed=0)
    return sm.flatten_parameters(a, b)


def test_pack_roundtrip():
    a, b = sm.random_parameters(4, 3, seed=1)
    a2, b2 = sm.unflatten_parameters(sm.flatten_parameters(a, b), 4, 3)
    assert onp.array_equal(a, a2) and onp.array_equal(b, b2)


@pytest.mark.parametrize("i", range(M))
@pytest.mark.parametrize("lam", [0.0, 0.1])
def test_hand_gradient_and_hessian_match_autograd(theta, i, lam):
    a, b = sm.unflatten_parameters(theta, M, N)
    x = onp.array([0.3, -0.7])
    ll = lambda x: sm.log_likelihood(i, x, a, b, lam)  # noqa: E731
    assert onp.allclose(sm.likelihood_gradient(i, x, a, b, lam), grad(ll)(x), atol=1e-12)
    assert onp.allclose(sm.likelihood_hessian(x, a, b, lam), hessian(ll)(x), atol=1e-12)
    assert sm.probabilities(x, a, b).sum() == pytest.approx(1.0)


@pytest.mark.parametrize("variant", sm.VARIANTS)
@pytest.mark.parametrize("i", [0, 2])
def test_jacobian_wrt_every_parameter(theta, variant, i):
    P = sm.ml_problem(i, M, N, variant)
    x = P(theta)
    J = P.jacobian(theta, x)
    assert J.shape == (N, M * (N + 1))
    J_fd = al.fd_jacobian(lambda th: sm.ml_problem(i, M, N, variant)(th), theta)
    assert al.max_error(J, J_fd) < 1e-6
    # the feature is a maximum of the likelihood on its feasible set
    a, b = sm.unflatten_parameters(theta, M, N)
    if variant == "sum":
        assert abs(x.sum() - 1) < 1e-12
    if variant.startswith("ball"):
        assert x @ x <= 1 + 1e-9


@pytest.mark.parametrize("variant", sm.VARIANTS)
def test_vjp_of_upper_loss(theta, variant):
    target = onp.array([0.2, -0.1])

    def loss(th):
        return 0.5 * anp.sum((sm.ml_feature(0, th, M, N, variant) - target) ** 2)

    g = grad(loss)(theta)
    assert al.max_error(g, al.fd_grad(loss, theta)) < 1e-6
    P = sm.ml_problem(0, M, N, variant)
    x = P(theta)
    assert al.max_error(P.vjp(theta, x, x - target), g) < 1e-10


def test_barrier_feature_approaches_exact(theta):
    exact = sm.ml_feature(1, theta, M, N, "ball-exact")
    errs = [
        al.max_error(sm.ml_feature(1, theta, M, N, "ball-barrier", t=t), exact)
        for t in (10, 100, 1000)
    ]
    assert errs[0] > errs[1] > errs[2]


def test_ml_features_stack_and_unknown_variant(theta):
    X = sm.ml_features(theta, M, N)
    assert X.shape == (M, N)
    assert jacobian(lambda th: sm.ml_features(th, M, N))(theta).shape == (M, N, M * (N + 1))
    with pytest.raises(ValueError, match="variant='box'"):
        sm.ml_problem(0, M, N, "box")


@pytest.mark.parametrize("variant", ["unconstrained", "sum", "ball-barrier"])
def test_first_order_step_prediction_is_second_order(theta, variant):
    target = onp.array([1.0, 1.0])
    small = sm.first_order_step(theta, M, N, variant, target, eta=0.01, lam=0.5)
    smaller = sm.first_order_step(theta, M, N, variant, target, eta=0.005, lam=0.5)
    assert small.loss_after < small.loss_before
    # halving the step halves the movement but quarters the prediction error
    assert smaller.movement == pytest.approx(small.movement / 2, rel=0.1)
    assert smaller.prediction_error < 0.35 * small.prediction_error


def test_likelihood_surfaces_figure(theta):
    import matplotlib

    matplotlib.use("Agg")
    from argminlib.plotting import likelihood_surfaces

    step = sm.first_order_step(theta, M, N, "sum", onp.array([1.0, 1.0]), eta=0.1, lam=0.5)
    fig = likelihood_surfaces(step, M, N, lam=0.5, constraint="sum", grid=11, target=[1, 0])
    assert len(fig.axes) == 2 * M + 1  # the panels and one colour bar
    assert fig.axes[0].get_title() == "$\\ell_1(x)$"  # one column per class
    assert fig.axes[M].get_ylabel().startswith("after the step")  # the second row: after
    with pytest.raises(ValueError, match="n = 2"):
        likelihood_surfaces(step, M, 3)


def test_step_of_given_length(theta):
    """``size=`` takes a step of that length along the negative gradient; the prediction
    error is second order in it."""
    target = onp.array([1.0, 1.0])
    big = sm.first_order_step(theta, M, N, "unconstrained", target, size=0.02, lam=0.5)
    small = sm.first_order_step(theta, M, N, "unconstrained", target, size=0.01, lam=0.5)
    assert onp.linalg.norm(big.dtheta) == pytest.approx(0.02)
    assert small.prediction_error < 0.35 * big.prediction_error
    with pytest.raises(ValueError, match="exactly one"):
        sm.first_order_step(theta, M, N, "unconstrained", target, eta=0.1, size=0.1)


@pytest.mark.parametrize("solver", ["dense", "cg"])
def test_the_m_features_in_one_batched_call(solver):
    """Issue 18: the exemplar's m maximum-likelihood features (one argmax per class) in one
    batch=True call: the same features and the same gradient of an upper-level loss in
    theta as the loop of single problems."""
    m, n = 3, 2
    a, b = sm.random_parameters(m, n, seed=0)
    theta = sm.flatten_parameters(a, b)
    loop = sm.ml_features(theta, m, n)
    batch = sm.ml_features_batch(theta, m, n, solver=solver)
    assert al.max_error(batch, loop, relative=True) < 1e-10
    target = onp.array([[0.6, 0.4], [-0.4, 0.5], [0.1, -0.7]])

    def loss(features):
        return lambda th: 0.5 * anp.sum((features(th) - target) ** 2)

    g_loop = grad(loss(lambda th: sm.ml_features(th, m, n)))(theta)
    g_batch = grad(loss(lambda th: sm.ml_features_batch(th, m, n, solver=solver)))(theta)
    assert al.max_error(g_batch, g_loop, relative=True) < 1e-7
