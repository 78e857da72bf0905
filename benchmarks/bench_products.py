"""How to write ``f`` so that autograd's Hessian-vector products are fast: the chain's
``f`` with ``np.diff`` against the same ``f`` with slices, at n = 10^6, against the product
written by hand in numpy (``Chain.hessp``).

    python benchmarks/bench_products.py [--n 1000000]
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as onp  # noqa: E402
from autograd import grad, make_vjp  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from problems import Chain  # noqa: E402


def hvp(f, x, y):
    """``v -> f_YY v`` as argminlib forms it: one reverse pass of ``grad f`` per product."""
    vjp, _ = make_vjp(lambda y_: grad(f, 1)(x, y_))(y)
    return vjp


def best(fun, repeat=5):
    out = onp.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fun()
        out = min(out, time.perf_counter() - t0)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10**6)
    args = ap.parse_args(argv)
    p = Chain(args.n)
    y = p.solution(p.x)
    v = onp.random.default_rng(0).standard_normal(args.n)
    rows = []
    for name, f in (("np.diff", p.f), ("slicing y[1:] - y[:-1]", p.f_slicing)):
        prod = hvp(f, p.x, y)
        assert onp.allclose(prod(v), p.hessp(p.x, y, v))
        rows.append((name, best(lambda prod=prod: prod(v))))
        rows.append((f"  gradient with {name}", best(lambda f=f: grad(f, 1)(p.x, y))))
    rows.append(("numpy by hand (Chain.hessp)", best(lambda: p.hessp(p.x, y, v))))
    print(f"Hessian-vector product of the chain's f at n = {args.n}, best of 5:")
    for name, t in rows:
        print(f"  {name:<40} {1e3 * t:8.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
