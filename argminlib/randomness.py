"""Random test vectors that no problem can be built to be orthogonal to.

Every probabilistic check of argminlib (the Lanczos start of a certificate, the vectors a
user's Hessian is compared at, the probe of a factorisation) holds with its stated
probability only if its random vector is independent of the problem. A fixed seed is not:
anyone can build a Hessian whose low-curvature eigenvector is orthogonal to
``default_rng(0).standard_normal(n)``, and the check then misses it every time. So the
streams are seeded by :data:`SESSION`, entropy drawn from the operating system once per
process: reproducible within a run (the same vector for the same ``(n, stream)``, which
lets small test vectors be cached), unknown to anyone who writes a problem beforehand.
An explicit integer seed (``Certify(seed=...)``) makes a run reproducible across processes,
at the price of that independence.
"""

from __future__ import annotations

import functools

import numpy as onp

__all__ = ["SESSION", "generator", "random_vector"]

#: entropy from the operating system, drawn once per process
SESSION = int(onp.random.SeedSequence().entropy)

#: random test vectors up to this size are cached (16 of them: at most 13 MB)
RANDOM_CACHE_N = 10**5


def generator(seed=None, stream=0):
    """A numpy ``Generator``: from ``seed`` when it is an integer (reproducible, known),
    else from this process's :data:`SESSION` entropy and ``stream`` (one stream per use)."""
    if seed is not None:
        return onp.random.default_rng(seed)
    return onp.random.default_rng([SESSION, int(stream)])


def random_vector(n, stream):
    """A random vector of the session's stream ``stream``, entries uniform in ``[-1, 1)``:
    a test vector for checks and probes (five times cheaper than Gaussian entries, which
    only Lanczos's probability bound needs). Read-only; up to ``RANDOM_CACHE_N`` entries it
    is drawn once per ``(n, stream)`` (a generator costs 15 us, most of a check at small
    ``n``)."""
    if n <= RANDOM_CACHE_N:
        return _cached(n, stream)
    return _draw(n, stream)


@functools.lru_cache(maxsize=16)
def _cached(n, stream):
    return _draw(n, stream)


def _draw(n, stream):
    v = generator(None, stream).random(n)
    v *= 2.0
    v -= 1.0
    v.flags.writeable = False
    return v
