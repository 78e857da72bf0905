"""Figures shared by several chapters of the book (matplotlib is imported on first use).

Only drawing lives here; every number drawn is computed by the caller with argminlib.
"""

from __future__ import annotations

import numpy as onp

from .softmax import log_likelihood, unpack

__all__ = ["likelihood_surfaces"]


def likelihood_surfaces(step, m, n, *, lam=0.1, lim=2.0, constraint=None, grid=121):
    """The figure of the paper's Figures 2, 4 and 5: contours of ``l_j(x)`` for every class
    before (top row) and after (bottom row) the step of a :class:`~argminlib.softmax.StepResult`,
    with the maxima marked (dot: solved; cross: first-order prediction from the top row).

    ``constraint``: ``None``, ``"sum"`` (draws the line ``x_1 + x_2 = 1``) or ``"ball"``
    (draws the unit circle). Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt

    if n != 2:
        raise ValueError("likelihood_surfaces draws 2-D feature spaces (n = 2)")
    u = onp.linspace(-lim, lim, grid)
    X1, X2 = onp.meshgrid(u, u)
    pts = onp.stack([X1.ravel(), X2.ravel()], axis=1)
    fig, axes = plt.subplots(2, m, figsize=(3.2 * m, 6.2), sharex=True, sharey=True)
    for row, (theta, feats, label) in enumerate(
        [(step.theta, step.before, "before"), (step.theta + step.dtheta, step.after, "after")]
    ):
        a, b = unpack(theta, m, n)
        for j in range(m):
            ax = axes[row, j]
            L = onp.array([log_likelihood(j, p, a, b, lam) for p in pts]).reshape(X1.shape)
            ax.contourf(X1, X2, L, levels=20, cmap="viridis")
            ax.contour(X1, X2, L, levels=20, colors="k", linewidths=0.3)
            if constraint == "sum":
                ax.plot(u, 1 - u, "w--", lw=1)
            elif constraint == "ball":
                s = onp.linspace(0, 2 * onp.pi, 200)
                ax.plot(onp.cos(s), onp.sin(s), "w--", lw=1)
            ax.plot(*feats[j], "o", color="white", mec="k", ms=7, label="solved maximum")
            if row == 1:
                ax.plot(
                    *step.predicted[j],
                    "x",
                    color="red",
                    ms=9,
                    mew=2,
                    label="first-order prediction",
                )
            ax.set_title(f"$\\ell_{j + 1}(x)$, {label}")
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.set_aspect("equal")
    axes[1, 0].legend(loc="lower left", fontsize=7)
    fig.tight_layout()
    return fig
