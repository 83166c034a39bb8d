"""L2-regularised logistic regression: hand-written grad, hess and hessp, verified, then used.

SciPy's Newton-type methods take derivatives written by hand (``jac``, ``hess``,
``hessp``), all with SciPy's signature ``(w, *args)``.  Each is checked here with
gradcheck in that same convention before ``scipy.optimize.minimize(...,
method="trust-ncg", hessp=hessp)`` runs with them; ``hessp_without_penalty``, the
bug of forgetting the regulariser's ``lam * p``, fails and is named.

``python examples/logistic_regression.py`` prints each check and the optimisation.
"""

from __future__ import annotations

import numpy as np

import gradcheck


def data(n: int = 40, d: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Features ``X`` (n x d) and labels ``y`` in {0, 1} from a noisy linear rule."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = (X @ rng.standard_normal(d) + 0.5 * rng.standard_normal(n) > 0).astype(float)
    return X, y


def sigmoid(z):
    return 0.5 * (1 + np.tanh(0.5 * z))  # no overflow, and complex-step friendly


def loss(w, X, y, lam):
    """Mean negative log-likelihood plus ``lam / 2 |w|^2``."""
    z = X @ w
    return np.mean(np.logaddexp(0, z) - y * z) + 0.5 * lam * w @ w


def grad(w, X, y, lam):
    return X.T @ (sigmoid(X @ w) - y) / len(y) + lam * w


def hess(w, X, y, lam):
    p = sigmoid(X @ w)
    return (X.T * (p * (1 - p))) @ X / len(y) + lam * np.eye(len(w))


def hessp(w, v, X, y, lam):
    p = sigmoid(X @ w)
    return X.T @ (p * (1 - p) * (X @ v)) / len(y) + lam * v


def hessp_without_penalty(w, v, X, y, lam):
    """Bug: the regulariser's Hessian ``lam * v`` left out."""
    p = sigmoid(X @ w)
    return X.T @ (p * (1 - p) * (X @ v)) / len(y)


def main() -> int:
    from scipy.optimize import minimize

    X, y = data()
    lam = 0.1
    args = (X, y, lam)
    w0 = np.full(X.shape[1], 0.1)
    checks = {
        "grad": gradcheck.check(loss, grad, w0, args=args),
        "hess": gradcheck.check_hessian(grad, hess, w0, args=args),
        "hessp": gradcheck.check_hvp(grad, hessp, w0, args=args),
    }
    for name, result in checks.items():
        print(f"{name:6s} {'verified' if result.passed else 'WRONG'}")
    bug = gradcheck.check_hvp(grad, hessp_without_penalty, w0, args=args)
    print(f"hessp without the penalty: {'WRONG' if not bug.passed else 'passed?!'}")
    print(f"  likely cause: {bug.diagnosis.summary if bug.diagnosis else '-'}")
    if not all(result.passed for result in checks.values()) or bug.passed:
        return 1
    found = minimize(loss, w0, args=args, method="trust-ncg", jac=grad, hessp=hessp)
    print(f"trust-ncg with the verified hessp: {found.message} ({found.nit} iterations)")
    print(f"  |grad| at the minimum: {np.linalg.norm(grad(found.x, *args)):.2e}")
    return 0 if found.success else 1


if __name__ == "__main__":
    raise SystemExit(main())
