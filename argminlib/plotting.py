"""Figures shared by several chapters of the book (matplotlib is imported on first use).

Only drawing lives here; every number drawn is computed by the caller with argminlib.
"""

from __future__ import annotations

import numpy as onp

from .softmax import log_likelihood, unflatten_parameters

__all__ = ["BOOK_STYLE", "likelihood_surfaces", "loglog_slope"]

#: matplotlib settings of the book's figures (``plt.rcParams.update(BOOK_STYLE)``). The
#: figures are at most 6.8 inches wide, within the book's text column at 100 dpi, so
#: that they are shown at full size and no text is smaller than 10 points.
BOOK_STYLE = {
    "font.size": 10.5,
    "axes.titlesize": 10.5,
    "axes.labelsize": 10.5,
    "legend.fontsize": 10,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "figure.dpi": 100,
}


def loglog_slope(x, y):
    """The least-squares slope of ``log y`` against ``log x`` (a convergence order)."""
    return float(onp.polyfit(onp.log(x), onp.log(y), 1)[0])


def _constraint(ax, constraint, lim):
    u = onp.linspace(-lim, lim, 2)
    if constraint == "sum":
        ax.plot(u, 1 - u, "w--", lw=1.2)
    elif constraint == "ball":
        s = onp.linspace(0, 2 * onp.pi, 200)
        ax.plot(onp.cos(s), onp.sin(s), "w--", lw=1.2)


def likelihood_surfaces(
    step, m, n, *, lam=0.1, lim=2.0, constraint=None, grid=121, target=None, i=0
):
    """The figure of the paper's Figures 2, 4 and 5: contours of ``l_j(x)`` for every class
    before (top row) and after (bottom row) the step of a :class:`~argminlib.softmax.StepResult`,
    on one colour scale (the colour bar).

    Marks: white dots, the solved maxima; in the bottom row an arrow from each maximum
    before the step to the one after, and a red cross at the first-order prediction; a
    star at ``target`` (the upper-level loss's target for ``x*_{i+1}``) in column ``i``.
    ``constraint``: ``None``, ``"sum"`` (the line ``x_1 + x_2 = 1``) or ``"ball"`` (the
    unit circle), drawn dashed. Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if n != 2:
        raise ValueError("likelihood_surfaces draws 2-D feature spaces (n = 2)")
    u = onp.linspace(-lim, lim, grid)
    X1, X2 = onp.meshgrid(u, u)
    pts = onp.stack([X1.ravel(), X2.ravel()], axis=1)
    rows = [(step.theta, step.before, "before"), (step.theta + step.dtheta, step.after, "after")]
    surfaces = []
    for theta, _, _ in rows:
        a, b = unflatten_parameters(theta, m, n)
        surfaces.append(
            [
                onp.array([log_likelihood(j, p, a, b, lam) for p in pts]).reshape(X1.shape)
                for j in range(m)
            ]
        )
    lo = min(float(L.min()) for row in surfaces for L in row)
    hi = max(float(L.max()) for row in surfaces for L in row)
    levels = MaxNLocator(nbins=20).tick_values(lo, hi)  # round values: round colour-bar ticks
    fig, axes = plt.subplots(2, m, figsize=(6.8, 4.9), sharex=True, sharey=True,
                             layout="constrained")  # fmt: skip
    for r, (_, feats, label) in enumerate(rows):
        for j in range(m):
            ax = axes[r, j]
            cs = ax.contourf(X1, X2, surfaces[r][j], levels=levels, cmap="viridis")
            ax.contour(X1, X2, surfaces[r][j], levels=levels, colors="k", linewidths=0.3)
            _constraint(ax, constraint, lim)
            if r == 1:
                start, end = step.before[j], step.after[j]
                ax.annotate(
                    "",
                    xy=end,
                    xytext=start,
                    arrowprops={"arrowstyle": "->", "color": "white", "lw": 1.5},
                )
                ax.plot(*start, "o", mfc="none", mec="white", ms=7, label="maximum before")
            ax.plot(*feats[j], "o", color="white", mec="k", ms=7, label=f"maximum {label}")
            if r == 1:
                ax.plot(*step.predicted[j], "x", color="red", ms=9, mew=2,
                        label="first-order prediction")  # fmt: skip
            if target is not None and j == i:
                ax.plot(*target, "*", color="orange", mec="k", ms=14, label="target")
            if r == 0:
                ax.set_title(f"$\\ell_{j + 1}(x)$")
            ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal")
            if r == 1:
                ax.set_xlabel("$x_1$")
            if j == 0:
                ax.set_ylabel(f"{label} the step\n$x_2$")
    handles, labels = axes[1, i].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2, facecolor="0.7")
    bar = fig.colorbar(cs, ax=axes, shrink=0.8, label="log-likelihood $\\ell_j(x)$")
    bar.locator = MaxNLocator(nbins=6, steps=[1, 2, 5, 10])
    return fig
