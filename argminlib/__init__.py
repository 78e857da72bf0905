"""argminlib: differentiate parameterised argmin and argmax problems.

A companion library to Gould et al. (2016), "On Differentiating Parameterized Argmin and
Argmax Problems with Application to Bi-level Optimization". Every derivative goes through
one implicit-differentiation core (``argminlib.implicit``); the paper's lemmas are its
closed forms. Modules, each importing only the ones above it: ``exceptions``,
``partials``, ``linsolve``, ``certify``, ``implicit``, ``problem``, ``forward``,
``unconstrained``, ``equality``, ``inequality``, ``api``, then ``softmax``, ``bilevel``,
``fd``.
"""

from . import bilevel, softmax, sparse
from .api import argmax, argmin, problem_for
from .bilevel import History, gradient_descent, lbfgs, minimize_upper
from .certify import Certificate, Certify, lanczos
from .equality import (
    Equality,
    constraint_distance,
    lemma_4_1,
    linear_constraint,
    multipliers,
    nullspace_form,
)
from .exceptions import (
    ArgminError,
    ConstraintError,
    CurvatureError,
    DegenerateConstraintWarning,
    ForwardSolveError,
    IllConditionedError,
    InfeasibleError,
    InputError,
    LinearSolveError,
    NonFiniteError,
    NonSmoothError,
    NotStationaryError,
    ShapeError,
    SingularHessianError,
    UncertifiedError,
)
from .fd import fd_grad, fd_jacobian, fd_jvp, max_error
from .forward import (
    barrier_objective,
    barrier_solve,
    gradient_jumps,
    newton,
    quasi_newton,
    slsqp,
    stationary_point,
)
from .hessian import HessianMismatchError
from .implicit import Linearization, Solution, fixed_point, linear_solve, root, value
from .inequality import Barrier, Inequality, active_set, lemma_4_2
from .linsolve import (
    CG,
    GMRES,
    MINRES,
    Dense,
    LinearSolver,
    LinearSystem,
    NullSpace,
    SolveInfo,
    Sparse,
    get_solver,
)
from .partials import f_XY, f_Y, f_YY
from .problem import ArgminInfo, Problem
from .unconstrained import (
    Unconstrained,
    implicit_jacobian,
    implicit_jvp,
    implicit_vjp,
    lemma_3_1,
    lemma_3_2,
    lemma_3_3,
    lemma_3_4,
)

__version__ = "0.2.0"

__all__ = [
    # exceptions
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
    "HessianMismatchError",
    # the paper's notation
    "f_Y",
    "f_YY",
    "f_XY",
    # linear solvers
    "LinearSystem",
    "LinearSolver",
    "SolveInfo",
    "Dense",
    "CG",
    "MINRES",
    "GMRES",
    "NullSpace",
    "Sparse",
    "sparse",
    "get_solver",
    # certification
    "Certify",
    "Certificate",
    "lanczos",
    # the core
    "Linearization",
    "Solution",
    "linear_solve",
    "root",
    "fixed_point",
    "value",
    "Problem",
    # unconstrained problems (section 3)
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
    "ArgminInfo",
    "problem_for",
    # equality constraints (section 4.1)
    "Equality",
    "linear_constraint",
    "multipliers",
    "constraint_distance",
    "lemma_4_1",
    "nullspace_form",
    # inequality constraints (section 4.2)
    "Barrier",
    "barrier_objective",
    "barrier_solve",
    "lemma_4_2",
    "Inequality",
    "active_set",
    # forward solvers
    "newton",
    "quasi_newton",
    "gradient_jumps",
    "stationary_point",
    "slsqp",
    # soft-max exemplar and bi-level helpers
    "softmax",
    "bilevel",
    "History",
    "gradient_descent",
    "lbfgs",
    "minimize_upper",
    # finite differences
    "fd_jvp",
    "fd_jacobian",
    "fd_grad",
    "max_error",
]
