"""implicit.polish: the acceptance of a solution, certified once at the accepted point."""

import numpy as onp
import pytest
from conftest import FixedQuadratic

import argminlib as al
import argminlib.certify as certify_module


@pytest.mark.parametrize("solver", ["cg", "minres", "dense"])
def test_a_forward_answer_a_little_off_is_polished_and_certified_twice_at_most(solver, monkeypatch):
    """Issue 17: each Newton iterate of the polish certified a new Solution (one argmin
    from a forward answer 1e-7 off built three certificates, 75 Lanczos products at
    n = 300). Now the first point is certified (for the step bound) and the accepted one;
    the iterates between are linearised only. The answer is exact all the same."""
    runs = []
    original = certify_module.lanczos

    def counted(*args, **kwargs):
        out = original(*args, **kwargs)
        runs.append(out[2])
        return out

    monkeypatch.setattr(certify_module, "lanczos", counted)
    q = FixedQuadratic(300)
    off = 1e-7 * onp.random.default_rng(3).standard_normal(300)
    y = al.argmin(q.f, q.x, onp.zeros(300), solver=solver, forward=lambda f, x, y0: q.y(x) + off)
    assert onp.max(onp.abs(y - q.y(q.x))) < 1e-12
    assert len(runs) <= (2 if solver != "dense" else 0)


def test_the_accepted_iterate_is_judged_with_its_certificate():
    """A Newton iterate's step is solved before it is certified; the accepted one's step is
    judged again with the certificate's checks: with lstsq, a gradient off the range of a
    singular Hessian (f unbounded below along a flat direction) is refused after the
    polish, not accepted on the iterate's uncertified step."""
    H = onp.diag([1.0, 2.0, 0.0])
    b = onp.array([1.0, 1.0, 1.0])

    def f(x, y):
        return 0.5 * y @ H @ y - x * (b @ y)

    y = onp.array([1.0, 0.5, 0.0])
    with pytest.raises(al.ArgminError, match="not a solution|stationar"):
        al.argmin(f, 1.0, onp.zeros(3), solver="lstsq", forward=lambda f_, x_, y0: x_ * y)
