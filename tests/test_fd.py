"""The finite-difference checker itself."""

import numpy as onp
import pytest

import argminlib as al


def test_fd_jacobian_shapes_and_values():
    A = onp.arange(24.0).reshape(2, 3, 4) / 10
    fun = lambda x: onp.tensordot(A, onp.sin(x), 2)  # noqa: E731  x (3, 4) -> (2,)
    x = onp.linspace(0, 1, 12).reshape(3, 4)
    J = al.fd_jacobian(fun, x)
    assert J.shape == (2, 3, 4)
    assert onp.allclose(J, A * onp.cos(x), atol=1e-9)


def test_fd_jvp_and_grad_scalar():
    assert al.fd_jvp(onp.exp, 0.0, 1.0) == pytest.approx(1.0, abs=1e-9)
    g = al.fd_grad(lambda x: onp.sum(x**3), onp.array([1.0, 2.0]))
    assert onp.allclose(g, [3.0, 12.0], atol=1e-8)
    with pytest.raises(ValueError, match="scalar-valued"):
        al.fd_grad(lambda x: x, onp.ones(2))
    with pytest.raises(ValueError, match="shape of x"):
        al.fd_jvp(lambda x: x, onp.ones(2), onp.ones(3))


def test_max_error():
    assert al.max_error([1.0, 2.0], [1.0, 2.5]) == 0.5
    assert al.max_error([10.0], [20.0], relative=True) == 0.5
    with pytest.raises(ValueError, match="shapes differ"):
        al.max_error([1.0], [1.0, 2.0])
