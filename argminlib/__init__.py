"""argminlib: differentiate parameterised argmin and argmax problems.

A companion library to Gould et al. (2016), "On Differentiating Parameterized Argmin and
Argmax Problems with Application to Bi-level Optimization". Every derivative goes through
one implicit-differentiation core (``argminlib.implicit``); the paper's lemmas are its
closed forms.
"""

from . import bilevel, softmax
from .bilevel import History, gradient_descent, lbfgs, minimize_upper
from .equality import Equality, lemma_4_1, linear_constraint, multipliers, nullspace_form, slsqp
from .exceptions import (
    ArgminError,
    ConstraintError,
    CurvatureError,
    DegenerateConstraintWarning,
    ForwardSolveError,
    InfeasibleError,
    LinearSolveError,
    NonFiniteError,
    NotStationaryError,
    ShapeError,
    SingularHessianError,
)
from .fd import fd_grad, fd_jacobian, fd_jvp, max_error
from .forward import newton, stationary_point
from .implicit import Linearization, linearize, root_jacobian, root_jvp, root_vjp
from .inequality import (
    Barrier,
    Inequality,
    active_set,
    barrier_objective,
    barrier_solve,
    lemma_4_2,
)
from .linsolve import CG, GMRES, MINRES, Dense, LinearSystem, NullSpace, SolveInfo, get_solver
from .primitive import Problem, solution
from .unconstrained import (
    Unconstrained,
    argmax,
    argmin,
    f_XY,
    f_Y,
    f_YY,
    implicit_jacobian,
    implicit_jvp,
    implicit_vjp,
    lemma_3_1,
    lemma_3_2,
    lemma_3_3,
    lemma_3_4,
)

__version__ = "0.1.0"

__all__ = [
    # exceptions
    "ArgminError",
    "ConstraintError",
    "CurvatureError",
    "DegenerateConstraintWarning",
    "ForwardSolveError",
    "InfeasibleError",
    "LinearSolveError",
    "NonFiniteError",
    "NotStationaryError",
    "ShapeError",
    "SingularHessianError",
    # the core and its linear solvers
    "Linearization",
    "linearize",
    "root_jvp",
    "root_vjp",
    "root_jacobian",
    "LinearSystem",
    "SolveInfo",
    "Dense",
    "CG",
    "MINRES",
    "GMRES",
    "NullSpace",
    "get_solver",
    "Problem",
    "solution",
    # unconstrained problems (section 3)
    "f_Y",
    "f_YY",
    "f_XY",
    "lemma_3_1",
    "lemma_3_2",
    "lemma_3_3",
    "lemma_3_4",
    "implicit_jacobian",
    "implicit_jvp",
    "implicit_vjp",
    "Unconstrained",
    "argmin",
    "argmax",
    # equality constraints (section 4.1)
    "Equality",
    "linear_constraint",
    "multipliers",
    "lemma_4_1",
    "nullspace_form",
    # inequality constraints (section 4.2)
    "Barrier",
    "barrier_objective",
    "barrier_solve",
    "lemma_4_2",
    "Inequality",
    "active_set",
    # soft-max exemplar and bi-level helpers (modules)
    "softmax",
    "bilevel",
    "History",
    "gradient_descent",
    "lbfgs",
    "minimize_upper",
    # forward solvers and checks
    "slsqp",
    "newton",
    "stationary_point",
    "fd_jvp",
    "fd_jacobian",
    "fd_grad",
    "max_error",
]
