"""Exceptions raised by argminlib.

Every check that stands between a user's problem and a derivative raises one of these
classes, with a message that says what was found and what to do. All of them derive from
:class:`ArgminError`, which is a ``ValueError``, so ``except ValueError`` still works.
"""

__all__ = [
    "ArgminError",
    "ShapeError",
    "NonFiniteError",
    "NotStationaryError",
    "SingularHessianError",
    "CurvatureError",
    "LinearSolveError",
    "ForwardSolveError",
    "ConstraintError",
    "InfeasibleError",
    "DegenerateConstraintWarning",
]


class ArgminError(ValueError):
    """Base class of every error argminlib raises on bad input."""


class ShapeError(ArgminError):
    """An argument does not have the shape the function needs."""


class NonFiniteError(ArgminError):
    """An input, objective value or derivative is NaN or infinite."""


class NotStationaryError(ArgminError):
    """The given ``y`` does not satisfy the optimality conditions to the tolerance.

    Attributes ``residual`` (norm of the optimality residual) and ``tol``.
    """

    def __init__(self, message, residual=None, tol=None):
        super().__init__(message)
        self.residual = residual
        self.tol = tol


class SingularHessianError(ArgminError):
    """The Hessian (or KKT matrix) at the solution is singular: the derivative is undefined."""


class CurvatureError(ArgminError):
    """The Hessian has the wrong sign: not positive definite for an argmin, not negative
    definite for an argmax. Attribute ``eigenvalue`` holds the offending eigenvalue (or a
    Rayleigh quotient when the Hessian was never formed)."""

    def __init__(self, message, eigenvalue=None):
        super().__init__(message)
        self.eigenvalue = eigenvalue


class LinearSolveError(ArgminError):
    """An iterative linear solve did not reach its tolerance.

    Attribute ``info`` is the :class:`argminlib.SolveInfo` of the failed solve.
    """

    def __init__(self, message, info=None):
        super().__init__(message)
        self.info = info


class ForwardSolveError(ArgminError):
    """The forward (lower-level) solver did not find a solution."""


class ConstraintError(ArgminError):
    """Constraints are malformed: wrong shape, rank deficient, or violated at ``y``."""


class InfeasibleError(ConstraintError):
    """No point satisfies the constraints, or the given start is not strictly feasible."""


class DegenerateConstraintWarning(RuntimeWarning):
    """A constraint is weakly active (active with a zero multiplier): the solution map is
    not differentiable there and a one-sided derivative is returned."""
