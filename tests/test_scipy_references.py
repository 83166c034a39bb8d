"""The SciPy references against exact derivatives, and the L-BFGS-B training reference.

Each reference must contain the exact derivative within its *own* error
estimate, and that estimate must be small enough to be useful.  The training
reference gets planted bugs: a sign flip and a wrongly scaled term must make it
disagree, a correct gradient must make it agree.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.optimize

from gradcheck.demo.training import TrainingComparison, train_reference
from gradcheck.errors import (
    GradientStructureError,
    InvalidParameterError,
    ParameterTypeError,
)
from gradcheck.problem.objective import Objective
from gradcheck.problem.space import ParameterSpace
from gradcheck.references.scipy_refs import (
    approx_fprime_reference,
    differentiate_reference,
    scipy_check_grad,
)

#: |estimate - exact| may exceed the reference's own error estimate by at most this factor.
SLACK = 2.0

REFERENCES = [approx_fprime_reference, differentiate_reference]

#: Largest acceptable error estimate relative to max(|exact|, 1), per reference and dtype.
USEFUL = {
    ("approx_fprime_reference", "float64"): 1e-5,
    ("differentiate_reference", "float64"): 1e-7,
    ("approx_fprime_reference", "float32"): 1e-1,
    ("differentiate_reference", "float32"): 1e-2,
}

_A = np.array(
    [[4.0, 1.0, 0.5, 0.0], [1.0, 3.0, -0.5, 0.2], [0.5, -0.5, 2.0, 0.1], [0.0, 0.2, 0.1, 1.5]]
)
_B = np.array([0.3, -1.0, 0.5, 2.0])


def positive_terms(p: np.ndarray) -> np.ndarray:
    """Every term is >= 0, so eps * |f| is an honest noise level."""
    return np.sum(p**2 * (2 + np.sin(p)))


def positive_terms_grad(x: np.ndarray) -> np.ndarray:
    return 2 * x * (2 + np.sin(x)) + x**2 * np.cos(x)


def quadratic(p: np.ndarray) -> np.ndarray:
    x = p.reshape(-1)
    return 0.5 * x @ _A.astype(x.dtype) @ x + _B.astype(x.dtype) @ x


def quadratic_grad(x: np.ndarray) -> np.ndarray:
    return _A @ x + _B


def sin_x2(p: np.ndarray) -> np.ndarray:
    return np.sum(np.sin(p) * p**2)


def sin_x2_grad(x: np.ndarray) -> np.ndarray:
    return np.cos(x) * x**2 + 2 * x * np.sin(x)


FUNCTIONS = {
    "positive_terms": (positive_terms, positive_terms_grad, (3, 4)),
    "quadratic": (quadratic, quadratic_grad, (4,)),
}


def objective_for(loss, params):
    return Objective(loss, ParameterSpace(params))


def exact_at(grad, params):
    return grad(np.asarray(params, dtype=np.float64).reshape(-1))


def assert_within_own_error(estimate, exact, *, useful):
    actual = np.abs(estimate.derivative - exact)
    assert np.all(estimate.error >= 0)
    assert np.all(actual <= SLACK * estimate.error), (actual, estimate.error)
    relative = estimate.error / np.maximum(np.abs(exact), 1.0)
    assert np.all(relative < useful), relative


# -- agreement with exact derivatives ---------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@pytest.mark.parametrize("reference", REFERENCES, ids=lambda r: r.__name__)
def test_reference_contains_exact_derivative_within_its_error(reference, name, dtype):
    loss, grad, shape = FUNCTIONS[name]
    rng = np.random.default_rng(3)
    params = rng.uniform(-1.5, 1.5, size=shape).astype(dtype)
    estimate = reference(objective_for(loss, params))
    exact = exact_at(grad, params)
    np.testing.assert_array_equal(estimate.indices, np.arange(params.size))
    useful = USEFUL[(reference.__name__, np.dtype(dtype).name)]
    assert_within_own_error(estimate, exact, useful=useful)


@pytest.mark.parametrize("reference", REFERENCES, ids=lambda r: r.__name__)
def test_measured_sigma_covers_a_loss_with_cancelling_terms(reference):
    # sum(sin(x) x^2) can be far smaller than its terms; eps * |f| would then understate the
    # noise.  With the noise of the terms passed in, the estimate must again be honest.
    rng = np.random.default_rng(57)
    params = rng.uniform(-3, 3, size=6)
    sigma = float(np.finfo(np.float64).eps * np.sum(np.abs(np.sin(params) * params**2)))
    estimate = reference(objective_for(sin_x2, params), sigma=sigma)
    assert_within_own_error(
        estimate, sin_x2_grad(params), useful=USEFUL[(reference.__name__, "float64")]
    )


@pytest.mark.parametrize("reference", REFERENCES, ids=lambda r: r.__name__)
def test_float32_error_estimate_is_larger_and_still_honest(reference):
    rng = np.random.default_rng(11)
    params64 = rng.uniform(-1.5, 1.5, size=(3, 4))
    params32 = params64.astype(np.float32)
    estimate64 = reference(objective_for(positive_terms, params64))
    estimate32 = reference(objective_for(positive_terms, params32))
    assert estimate32.derivative.dtype == np.float64
    assert np.median(estimate32.error) > 100 * np.median(estimate64.error)
    exact32 = exact_at(positive_terms_grad, params32)
    assert np.all(np.abs(estimate32.derivative - exact32) <= SLACK * estimate32.error)


@pytest.mark.parametrize("reference", REFERENCES, ids=lambda r: r.__name__)
def test_mixed_precision_tree(reference):
    params = {
        "weight": np.array([[0.5, -1.2], [0.3, 0.9]], dtype=np.float32),
        "bias": np.array([0.1, -0.7]),
    }

    def loss(p):
        return positive_terms(p["weight"].astype(np.float64)) + quadratic_bias(p["bias"])

    def quadratic_bias(b):
        return np.sum(3.0 * b**2 + b)

    estimate = reference(objective_for(loss, params))
    weight = params["weight"].astype(np.float64).reshape(-1)
    exact = np.concatenate([positive_terms_grad(weight), 6.0 * params["bias"] + 1.0])
    assert np.all(np.abs(estimate.derivative - exact) <= SLACK * estimate.error)
    # The float32 leaf gets float32-sized steps and errors, the float64 leaf float64 ones.
    assert estimate.error[:4].min() > 100 * estimate.error[4:].max()


# -- subsets and evaluation counts ------------------------------------------------------------


@pytest.mark.parametrize("reference", REFERENCES, ids=lambda r: r.__name__)
def test_subset_of_indices(reference):
    rng = np.random.default_rng(5)
    params = rng.uniform(-1.5, 1.5, size=(3, 4))
    subset = np.array([7, 0, 11, 3])
    objective = objective_for(positive_terms, params)
    before = objective.n_evaluations
    estimate = reference(objective, subset)
    np.testing.assert_array_equal(estimate.indices, subset)
    assert estimate.n_evaluations == objective.n_evaluations - before
    exact = exact_at(positive_terms_grad, params)[subset]
    assert_within_own_error(estimate, exact, useful=USEFUL[(reference.__name__, "float64")])
    full = reference(objective_for(positive_terms, params))
    np.testing.assert_allclose(estimate.derivative, full.derivative[subset], rtol=0, atol=1e-12)
    assert estimate.n_evaluations < full.n_evaluations


def test_approx_fprime_evaluation_count():
    params = np.linspace(-1, 1, 5)
    objective = objective_for(positive_terms, params)
    estimate = approx_fprime_reference(objective, [1, 3])
    # Two SciPy calls (steps h and 2h), each f(x0) once plus one evaluation per element.
    assert estimate.n_evaluations == 2 * (2 + 1)
    np.testing.assert_array_equal(estimate.notes["step_2h"], 2 * estimate.step)


def test_differentiate_evaluation_count_matches_scipy():
    params = np.linspace(-1, 1, 5)
    objective = objective_for(positive_terms, params)
    before = objective.n_evaluations
    estimate = differentiate_reference(objective, order=4)
    assert estimate.n_evaluations == objective.n_evaluations - before
    assert estimate.n_evaluations == int(np.sum(estimate.notes["nfev"]))
    # order 4: 4 points in the first iteration, 2 more in each later one.
    np.testing.assert_array_equal(estimate.notes["nfev"], 4 + 2 * (estimate.notes["nit"] - 1))


@pytest.mark.parametrize("reference", REFERENCES, ids=lambda r: r.__name__)
def test_empty_indices(reference):
    estimate = reference(objective_for(positive_terms, np.ones(3)), np.array([], dtype=int))
    assert estimate.indices.shape == (0,)
    assert estimate.n_evaluations == 0


# -- the user's arrays are never touched ------------------------------------------------------


def test_references_never_modify_the_users_arrays():
    params = {
        "w": np.array([[0.5, -1.0], [2.0, 0.25]]),
        "b": np.array([0.1, 0.2], dtype=np.float32),
    }
    snapshot = {key: value.copy() for key, value in params.items()}
    seen_ids = set()

    def loss(p):
        seen_ids.update(id(a) for a in p.values())
        return positive_terms(p["w"]) + positive_terms(p["b"].astype(np.float64))

    objective = objective_for(loss, params)
    approx_fprime_reference(objective)
    differentiate_reference(objective)
    scipy_check_grad(objective, np.zeros(6))
    for key in params:
        np.testing.assert_array_equal(params[key], snapshot[key])
        assert params[key].dtype == snapshot[key].dtype
        assert id(params[key]) not in seen_ids
    assert not objective.space.restore(), "the working copies were left perturbed"
    assert objective(objective.x0) == objective.value0


# -- scipy.differentiate specifics ------------------------------------------------------------


def test_differentiate_converges_where_the_derivative_is_zero():
    # SciPy's default atol (the smallest normal number) is never met at df == 0.
    params = np.array([0.0, 1.0, 0.0])
    estimate = differentiate_reference(objective_for(lambda p: np.sum(p**2) + 1.0, params))
    np.testing.assert_array_equal(estimate.notes["status"], 0)
    assert np.all(np.abs(estimate.derivative - 2 * params) <= SLACK * estimate.error)


def test_differentiate_near_a_kink_flags_or_stays_within_error():
    def relu_loss(p):
        return np.sum(3.0 * np.maximum(p, 0.0) + p**2)

    params = np.array([1e-4, -2e-4, 0.7])
    exact = np.where(params > 0, 3.0, 0.0) + 2 * params
    coarse = differentiate_reference(objective_for(relu_loss, params))
    flagged = coarse.notes["status"] != 0
    honest = np.abs(coarse.derivative - exact) <= SLACK * coarse.error
    assert np.all(flagged | honest)
    np.testing.assert_array_equal(coarse.notes["not_converged"], np.flatnonzero(flagged))
    # A first step below the distance to the kink never crosses it.
    fine = differentiate_reference(objective_for(relu_loss, params), initial_step=1e-5)
    np.testing.assert_array_equal(fine.notes["status"], 0)
    assert_within_own_error(fine, exact, useful=1e-7)


def test_differentiate_large_parameters_get_larger_steps():
    params = np.array([0.3, 300.0])
    estimate = differentiate_reference(objective_for(lambda p: np.sum(p**2 + 0.1 * p**3), params))
    assert estimate.step[1] > 100 * estimate.step[0]
    assert_within_own_error(estimate, 2 * params + 0.3 * params**2, useful=1e-7)


# -- check_grad -------------------------------------------------------------------------------


def test_scipy_check_grad_matches_scipy():
    params = np.array([0.5, -1.0, 1.5])
    objective = objective_for(positive_terms, params)
    exact = positive_terms_grad(params)
    ours = scipy_check_grad(objective, exact)
    theirs = scipy.optimize.check_grad(positive_terms, lambda x: exact, params)
    assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-15)
    assert ours < 1e-6
    wrong = exact.copy()
    wrong[1] *= -1
    assert scipy_check_grad(objective, wrong) == pytest.approx(2 * abs(exact[1]), rel=1e-6)
    assert scipy_check_grad(objective, positive_terms_grad) == pytest.approx(ours)


def test_scipy_check_grad_float32_uses_a_resolvable_step():
    params = np.array([0.5, -1.0, 1.5], dtype=np.float32)
    exact = positive_terms_grad(params.astype(np.float64))
    assert scipy_check_grad(objective_for(positive_terms, params), exact) < 1e-2 * np.linalg.norm(
        exact
    )


# -- argument validation ----------------------------------------------------------------------


@pytest.mark.parametrize("reference", REFERENCES, ids=lambda r: r.__name__)
def test_invalid_arguments(reference):
    objective = objective_for(positive_terms, np.ones(3))
    with pytest.raises(InvalidParameterError, match="index 3"):
        reference(objective, [0, 3])
    with pytest.raises(ValueError):
        reference(objective, [-1])
    with pytest.raises(ParameterTypeError):
        reference(objective, [0.5])
    with pytest.raises(TypeError):
        reference(positive_terms, None)


def test_differentiate_invalid_knobs():
    objective = objective_for(positive_terms, np.ones(3))
    with pytest.raises(InvalidParameterError, match="order"):
        differentiate_reference(objective, order=0)
    with pytest.raises(ParameterTypeError, match="maxiter"):
        differentiate_reference(objective, maxiter=2.5)
    with pytest.raises(InvalidParameterError, match="initial_step"):
        differentiate_reference(objective, initial_step=-1.0)
    with pytest.raises(InvalidParameterError, match="initial_step"):
        differentiate_reference(objective, initial_step=[0.1, 0.2])


# -- training: a 2-3-1 sigmoid network --------------------------------------------------------

_RNG = np.random.default_rng(42)
_X = _RNG.standard_normal((12, 2))
_T = 0.2 + 0.6 / (1 + np.exp(-(_X[:, :1] - _X[:, 1:])))
_WEIGHT_DECAY = 1e-2
_N_PARAMS = 2 * 3 + 3 + 3 * 1 + 1


def _unpack(w):
    return w[:6].reshape(2, 3), w[6:9], w[9:12].reshape(3, 1), w[12:13]


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def net_loss(w):
    W1, b1, W2, b2 = _unpack(w)
    a1 = _sigmoid(_X @ W1 + b1)
    y = _sigmoid(a1 @ W2 + b2)
    return 0.5 * np.mean(np.sum((y - _T) ** 2, axis=1)) + 0.5 * _WEIGHT_DECAY * np.sum(w**2)


def net_grad(w, *, data_scale=1.0):
    """Backpropagation; ``data_scale`` plants a wrongly scaled data term."""
    W1, b1, W2, b2 = _unpack(w)
    a1 = _sigmoid(_X @ W1 + b1)
    y = _sigmoid(a1 @ W2 + b2)
    delta2 = (y - _T) * y * (1 - y) / len(_X)
    delta1 = (delta2 @ W2.T) * a1 * (1 - a1)
    data = np.concatenate(
        [(_X.T @ delta1).ravel(), delta1.sum(0), (a1.T @ delta2).ravel(), delta2.sum(0)]
    )
    return data_scale * data + _WEIGHT_DECAY * w


@pytest.fixture
def w0():
    return np.random.default_rng(0).standard_normal(_N_PARAMS)


def test_net_grad_is_correct(w0):
    # The training tests rely on net_grad being right; check it against the elementwise reference.
    estimate = differentiate_reference(objective_for(net_loss, w0))
    assert np.all(np.abs(estimate.derivative - net_grad(w0)) <= SLACK * estimate.error)


def test_training_agrees_with_the_correct_gradient(w0):
    result = train_reference(net_loss, net_grad, w0)
    assert isinstance(result, TrainingComparison)
    assert result.agree and result.passed
    assert result.likely_bug is None
    assert result.analytic.success and result.finite_difference.success
    assert result.analytic.loss < 0.1 * result.initial_loss
    assert abs(result.difference) <= result.tolerance < 1e-4
    # SciPy's finite differences cost n loss evaluations per gradient.
    assert result.finite_difference.nfev >= _N_PARAMS * result.finite_difference.njev
    assert result.analytic.nfev == result.analytic.njev
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["agree"] is True and payload["analytic"]["gradient"] == "analytic"
    assert "agree" in str(result) and "finite differences" in str(result)


def test_training_disagrees_with_a_sign_flipped_gradient(w0):
    result = train_reference(net_loss, lambda w: -net_grad(w), w0)
    assert not result.agree and not result.passed
    assert not result.analytic.success
    assert result.difference > 0.01
    assert "descent" in result.likely_bug
    assert "DISAGREE" in str(result)


def test_training_disagrees_with_a_wrongly_scaled_term(w0):
    # Half the data term next to a correct weight-decay term: the gradient's zeros move, so the
    # run converges where the loss is not minimal (only slightly higher: second order).
    result = train_reference(net_loss, lambda w: net_grad(w, data_scale=0.5), w0)
    assert not result.agree
    assert result.difference > result.tolerance > 0
    assert result.analytic.success
    assert "wrongly scaled" in result.likely_bug


def test_training_is_blind_to_a_uniformly_scaled_gradient(w0):
    # Documented limitation: 2 * grad has the same zeros, and L-BFGS-B finds the same minimum.
    result = train_reference(net_loss, lambda w: 2.0 * net_grad(w), w0)
    assert result.agree


def test_training_with_an_objective_and_float32(w0):
    space = ParameterSpace(w0.astype(np.float32))
    objective = Objective(net_loss, space)
    result = train_reference(objective, net_grad)
    assert result.agree
    assert objective.n_evaluations >= result.analytic.nfev + result.finite_difference.nfev


def test_training_argument_errors(w0):
    with pytest.raises(InvalidParameterError, match="x0"):
        train_reference(net_loss, net_grad)
    with pytest.raises(ParameterTypeError):
        train_reference(net_loss, net_grad(w0), w0)
    with pytest.raises(GradientStructureError):
        train_reference(net_loss, lambda w: net_grad(w)[:-1], w0)
    with pytest.raises(InvalidParameterError, match="maxiter"):
        train_reference(net_loss, net_grad, w0, maxiter=0)
