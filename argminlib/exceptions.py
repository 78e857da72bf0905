"""Exceptions raised by argminlib.

Every check that stands between a user's problem and a derivative raises one of these
classes, with a message that says what was found and what to do. All of them derive from
:class:`ArgminError`, which is a ``ValueError``, so ``except ValueError`` still works.
"""

__all__ = [
    "ArgminError",
    "InputError",
    "ShapeError",
    "NonFiniteError",
    "NotStationaryError",
    "NonSmoothError",
    "SingularHessianError",
    "IllConditionedError",
    "CurvatureError",
    "UncertifiedError",
    "LinearSolveError",
    "ForwardSolveError",
    "ConstraintError",
    "InfeasibleError",
    "DegenerateConstraintWarning",
]


class ArgminError(ValueError):
    """Base class of every error argminlib raises."""


class InputError(ArgminError):
    """An argument is of the wrong kind: an unknown solver or mode name, a complex array,
    a solver that returns something other than an array, a bad option value."""


class ShapeError(InputError):
    """An argument (or something a user function returned) has the wrong shape."""


class NonFiniteError(ArgminError):
    """An input, objective value or derivative is NaN or infinite (or overflowed)."""


class NotStationaryError(ArgminError):
    """The given ``y`` does not satisfy the optimality conditions to the tolerance.

    Attributes ``residual`` (the length of the Newton step to the solution, relative to
    ``max(1, |y|)``; scale-free in ``f``) and ``tol``.
    """

    def __init__(self, message, residual=None, tol=None):
        super().__init__(message)
        self.residual = residual
        self.tol = tol


class NonSmoothError(ArgminError):
    """``f`` is not differentiable at the ``y`` found: its gradient jumps there (``|y_i|`` at
    ``y_i = 0``, a ``max`` at a tie), so the implicit function theorem does not apply to
    ``f_Y = 0``. Attribute ``coordinates``: the entries of ``f_Y`` that jump."""

    def __init__(self, message, coordinates=()):
        super().__init__(message)
        self.coordinates = tuple(coordinates)


class SingularHessianError(ArgminError):
    """The Hessian (or KKT matrix) at the solution is singular: the derivative is undefined.

    Attribute ``certificate`` (a :class:`argminlib.Certificate`) when one was computed."""

    def __init__(self, message, certificate=None):
        super().__init__(message)
        self.certificate = certificate


class IllConditionedError(SingularHessianError):
    """The Hessian is definite (or nonsingular) but so ill-conditioned that the derivative
    would be mostly rounding error: its smallest eigenvalue is below ``rcond`` times the
    largest in size."""


class UncertifiedError(ArgminError):
    """The curvature could not be certified within the products allowed (a Lanczos estimate
    that has not reached the accuracy needed to exclude an eigenvalue of the wrong sign).
    Attribute ``certificate`` (the estimate so far)."""

    def __init__(self, message, certificate=None):
        super().__init__(message)
        self.certificate = certificate


class CurvatureError(ArgminError):
    """The Hessian has the wrong sign: not positive definite for an argmin, not negative
    definite for an argmax (for constraints: on the null space of the active constraints).

    Attributes ``eigenvalue`` (the offending eigenvalue or its estimate) and
    ``certificate``."""

    def __init__(self, message, eigenvalue=None, certificate=None):
        super().__init__(message)
        self.eigenvalue = eigenvalue
        self.certificate = certificate


class LinearSolveError(ArgminError):
    """A linear solve failed or did not reach its tolerance, or (an iterative solve of a
    certified system) the bound on its error could not be brought within the allowance:
    a residual within ``rtol`` is not an accurate answer at a high condition.

    Attribute ``info`` is the :class:`argminlib.SolveInfo` of the failed solve."""

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
