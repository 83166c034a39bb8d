"""The network model: shapes, dtypes, complex safety, and backprop against independent references.

The references here are deliberately simple and written out in the test (a central
difference and a complex step over the flat vector), so that a bug in gradcheck's own
reference machinery cannot hide a bug in the network, or the other way round.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

from gradcheck.errors import InvalidParameterError, ParameterTypeError
from gradcheck.model.activations import ACTIVATIONS, log_softmax
from gradcheck.model.losses import LOSSES
from gradcheck.model.network import Forward, Network, random_data

ELEMENTWISE = [name for name, act in ACTIVATIONS.items() if act.elementwise]
OUTPUTS = [(act, loss) for act in ELEMENTWISE for loss in ("half_sse", "mse")] + [
    ("softmax", "cross_entropy")
]
CASES = [
    (hidden, output, loss, bias)
    for hidden, (output, loss), bias in itertools.product(ELEMENTWISE, OUTPUTS, (True, False))
]


def _case_id(case: tuple[str, str, str, bool]) -> str:
    hidden, output, loss, bias = case
    return f"{hidden}-{output}-{loss}-{'bias' if bias else 'nobias'}"


def make(hidden: str, output: str, loss: str, bias: bool, *, dtype=np.float64, seed=0):
    net = Network((3, 4, 3, 2), (hidden, hidden, output), loss=loss, bias=bias)
    params = net.init_params(rng=seed, dtype=dtype)
    x, y = random_data(net, 6, rng=seed + 1, dtype=dtype)
    return net, params, x, y


def central_difference(net: Network, params, x, y, h: float = 1e-6) -> np.ndarray:
    theta = net.flatten(params)
    grad = np.empty_like(theta)
    for k in range(theta.size):
        step = np.zeros_like(theta)
        step[k] = h
        plus = net.loss_value(net.unflatten(theta + step), x, y)
        minus = net.loss_value(net.unflatten(theta - step), x, y)
        grad[k] = (plus - minus) / (2 * h)
    return grad


def complex_step(net: Network, params, x, y, h: float = 1e-20) -> np.ndarray:
    theta = net.flatten(params).astype(complex)
    grad = np.empty(theta.size)
    for k in range(theta.size):
        step = np.zeros_like(theta)
        step[k] = 1j * h
        grad[k] = net.loss_value(net.unflatten(theta + step), x, y).imag / h
    return grad


# -- construction and validation ------------------------------------------------------------
def test_param_shapes_follow_the_seed_naming_in_layer_order():
    net = Network((3, 4, 2), ("tanh", "sigmoid"))
    assert net.param_shapes() == {
        "weight1": (3, 4),
        "bias1": (4,),
        "weight2": (4, 2),
        "bias2": (2,),
    }
    assert net.n_params == 12 + 4 + 8 + 2
    assert list(Network((3, 4, 2), ("tanh", "sigmoid"), bias=False).param_shapes()) == [
        "weight1",
        "weight2",
    ]


def test_lists_are_stored_as_tuples_and_the_network_is_hashable():
    net = Network([3, 4, 1], ["sigmoid", "sigmoid"])
    assert net.sizes == (3, 4, 1) and net.activations == ("sigmoid", "sigmoid")
    assert hash(net) == hash(Network((3, 4, 1), ("sigmoid", "sigmoid")))


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"sizes": (3,), "activations": ()}, "sizes"),
        ({"sizes": (3, 0, 1), "activations": ("tanh", "tanh")}, "sizes"),
        ({"sizes": (3, 4, 1), "activations": ("tanh",)}, "activations"),
        ({"sizes": (3, 4, 1), "activations": ("tanh", "swish")}, "activations"),
        ({"sizes": (3, 4, 1), "activations": ("tanh", "tanh"), "loss": "hinge"}, "loss"),
        # softmax anywhere but the output
        (
            {"sizes": (3, 4, 2), "activations": ("softmax", "softmax"), "loss": "cross_entropy"},
            "activations",
        ),
        # softmax output with a loss other than cross-entropy
        ({"sizes": (3, 4, 2), "activations": ("tanh", "softmax"), "loss": "mse"}, "loss"),
        # cross-entropy without a softmax output
        (
            {"sizes": (3, 4, 2), "activations": ("tanh", "sigmoid"), "loss": "cross_entropy"},
            "activations",
        ),
    ],
)
def test_invalid_networks_raise_naming_the_argument(kwargs, argument):
    with pytest.raises(InvalidParameterError, match=f"^{argument}:") as info:
        Network(**kwargs)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"sizes": (3, 4.0, 1), "activations": ("tanh", "tanh")}, "sizes"),
        ({"sizes": (3, 1), "activations": "tanh"}, "activations"),
        ({"sizes": (3, 1), "activations": ("tanh",), "bias": "yes"}, "bias"),
    ],
)
def test_wrongly_typed_arguments_raise_type_errors(kwargs, argument):
    with pytest.raises(ParameterTypeError, match=f"^{argument}:"):
        Network(**kwargs)


def test_bad_params_and_data_name_the_argument():
    net, params, x, y = make("tanh", "identity", "half_sse", True)
    with pytest.raises(InvalidParameterError, match="^params: parameter 'bias2' is missing"):
        net.loss_value({k: v for k, v in params.items() if k != "bias2"}, x, y)
    with pytest.raises(InvalidParameterError, match="^params: 'weight1' has shape"):
        net.backward({**params, "weight1": params["weight1"].T}, x, y)
    with pytest.raises(InvalidParameterError, match="^params: 'bias9' is not a parameter"):
        net.loss_value({**params, "bias9": np.zeros(1)}, x, y)
    with pytest.raises(InvalidParameterError, match="^x:"):
        net.loss_value(params, x[:, :2], y)
    with pytest.raises(InvalidParameterError, match="^y:"):
        net.loss_value(params, x, y[:-1])
    with pytest.raises(InvalidParameterError, match="^vector:"):
        net.unflatten(np.zeros(net.n_params + 1))
    with pytest.raises(InvalidParameterError, match="^scale:"):
        net.init_params(scale=-1.0)
    with pytest.raises(ParameterTypeError, match="^dtype:"):
        net.init_params(dtype=np.int64)
    with pytest.raises(InvalidParameterError, match="^n_samples:"):
        random_data(net, 0)


# -- forward pass ---------------------------------------------------------------------------
def test_forward_caches_every_layers_input_pre_activation_and_output():
    net, params, x, y = make("relu", "identity", "half_sse", True)
    forward = net.forward(params, x)
    assert isinstance(forward, Forward)
    assert [a.shape for a in forward.a_prev] == [(6, 3), (6, 4), (6, 3)]
    assert [z.shape for z in forward.z] == [(6, 4), (6, 3), (6, 2)]
    assert forward.a_prev[0] is x
    for layer in range(1, 3):
        assert forward.a_prev[layer] is forward.a[layer - 1]
    assert forward.output is forward.a[-1]
    np.testing.assert_allclose(forward.z[0], x @ params["weight1"] + params["bias1"])


def test_init_params_draw_from_rng_with_fan_in_scaling():
    net = Network((400, 300, 1), ("tanh", "identity"))
    params = net.init_params(rng=np.random.default_rng(3))
    assert params["weight1"].std() == pytest.approx(1 / np.sqrt(400), rel=0.05)
    assert params["bias1"].std() == pytest.approx(0.1, rel=0.2)
    again = net.init_params(rng=3)
    assert all(np.array_equal(params[k], again[k]) for k in params)
    assert net.init_params(rng=0, scale=2.0)["weight1"].std() == pytest.approx(
        2 / np.sqrt(400), rel=0.05
    )


def test_random_data_suits_the_output():
    ce = Network((3, 4), ("softmax",), loss="cross_entropy")
    _, y = random_data(ce, 50, rng=0)
    assert set(np.unique(y)) == {0.0, 1.0} and np.all(y.sum(axis=1) == 1)
    _, y = random_data(Network((3, 2), ("sigmoid",)), 50, rng=0)
    assert np.all((y > 0) & (y < 1))
    x, y = random_data(Network((3, 2), ("identity",)), 50, rng=0, dtype=np.float32)
    assert x.shape == (50, 3) and y.shape == (50, 2) and x.dtype == y.dtype == np.float32


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_float32_stays_float32(case):
    net, params, x, y = make(*case, dtype=np.float32)
    loss, grads = net.loss_and_grad(params, x, y)
    assert loss.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())
    assert all(a.dtype == np.float32 for a in net.forward(params, x).a)


def test_activations_accept_complex_input_and_keep_dtype():
    z = np.array([[-800.0, -1.5, 0.0, 0.7, 800.0]])
    for name, activation in ACTIVATIONS.items():
        for dtype, complex_dtype in ((np.float32, np.complex64), (np.float64, np.complex128)):
            real = activation.forward(z.astype(dtype))
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                perturbed = activation.forward(z.astype(complex_dtype) + 1e-20j)
            assert real.dtype == dtype, name
            assert perturbed.dtype == complex_dtype, name
            assert np.all(np.isfinite(perturbed)), name
            np.testing.assert_allclose(perturbed.real, real, rtol=1e-6, err_msg=name)


def test_activation_derivatives_match_the_complex_step():
    # Out to saturation, where a (1 - a) and 1 - a**2 would round to 0: the derivative must
    # stay accurate relative to itself, since that is what a gradient check compares.
    z = np.concatenate([np.linspace(-4.0, 4.0, 17), [-300.0, -40.0, -20.0, 20.0, 40.0, 300.0]])
    z = z + 0.05  # away from relu's kink at 0
    h = 1e-20
    for name, activation in ACTIVATIONS.items():
        if activation.derivative is None:
            continue
        reference = activation.forward(z + 1j * h).imag / h
        analytic = activation.derivative(z, activation.forward(z))
        np.testing.assert_allclose(analytic, reference, rtol=1e-12, atol=1e-300, err_msg=name)


def test_sigmoid_is_quiet_and_exact_at_extremes():
    sigmoid = ACTIVATIONS["sigmoid"].forward
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = sigmoid(np.array([-1000.0, -30.0, 30.0, 1000.0]))
    tiny = np.exp(-30.0) / (1 + np.exp(-30.0))
    np.testing.assert_allclose(a, [0.0, tiny, 1 / (1 + np.exp(-30.0)), 1.0], rtol=1e-15)


def test_softmax_rows_sum_to_one_and_log_softmax_stays_finite():
    z = np.array([[0.0, 1000.0, -1000.0], [1.0, 2.0, 3.0]])
    p = ACTIVATIONS["softmax"].forward(z)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    logp = log_softmax(z)
    assert np.all(np.isfinite(logp))
    np.testing.assert_allclose(np.exp(logp), p, atol=1e-300)


def test_saturated_softmax_keeps_the_loss_and_gradient_accurate():
    # The most likely class has p = 1 - 1e-26, which rounds to 1: log p and p - y must not.
    net = Network((1, 2), ("softmax",), loss="cross_entropy", bias=False)
    params = {"weight1": np.array([[345.58419206, 821.6181435]])}
    x, y = np.array([[0.12573022]]), np.array([[0.0, 1.0]])
    d = x[0, 0] * (params["weight1"][0, 0] - params["weight1"][0, 1])  # z0 - z1 = -59.85
    p0 = np.exp(d) / (1 + np.exp(d))
    assert net.loss_value(params, x, y) == pytest.approx(np.log1p(np.exp(d)), rel=1e-14)
    expected = np.array([[x[0, 0] * p0, -x[0, 0] * p0]])  # dL/dW = x^T (p - y)
    np.testing.assert_allclose(net.backward(params, x, y)["weight1"], expected, rtol=1e-13)
    np.testing.assert_allclose(
        complex_step(net, params, x, y), expected.ravel(), rtol=1e-13, atol=0
    )


def test_saturated_hidden_units_keep_their_gradient():
    net = Network((2, 3, 1), ("sigmoid", "tanh"), bias=True)
    params = net.init_params(rng=0, scale=60.0)
    x, y = random_data(net, 4, rng=1)
    analytic = net.flatten(net.backward(params, x, y))
    np.testing.assert_allclose(analytic, complex_step(net, params, x, y), rtol=1e-11, atol=0)


def test_cross_entropy_is_finite_where_softmax_underflows():
    net = Network((1, 2), ("softmax",), loss="cross_entropy", bias=False)
    params = {"weight1": np.array([[0.0, 2000.0]])}
    x, y = np.array([[1.0]]), np.array([[1.0, 0.0]])
    assert net.loss_value(params, x, y) == pytest.approx(2000.0)


# -- backward pass against independent references -------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_backward_matches_central_difference(case):
    net, params, x, y = make(*case)
    analytic = net.flatten(net.backward(params, x, y))
    reference = central_difference(net, params, x, y)
    np.testing.assert_allclose(analytic, reference, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_backward_matches_complex_step(case):
    net, params, x, y = make(*case, seed=7)
    analytic = net.flatten(net.backward(params, x, y))
    reference = complex_step(net, params, x, y)
    np.testing.assert_allclose(analytic, reference, rtol=1e-11, atol=1e-14)


def test_a_planted_sign_flip_is_caught_by_the_reference():
    net, params, x, y = make("tanh", "identity", "half_sse", True)
    wrong = net.backward(params, x, y)
    wrong["weight2"] = -wrong["weight2"]
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(
            net.flatten(wrong), central_difference(net, params, x, y), rtol=1e-6, atol=1e-8
        )


def test_cross_entropy_delta_is_exact_for_unnormalised_targets():
    net, params, x, _ = make("tanh", "softmax", "cross_entropy", True)
    y = np.random.default_rng(5).uniform(0.0, 2.0, size=(6, 2))
    np.testing.assert_allclose(
        net.flatten(net.backward(params, x, y)),
        complex_step(net, params, x, y),
        rtol=1e-11,
        atol=1e-14,
    )


def test_losses_are_what_their_names_say():
    a, y = np.array([[0.5, 2.0], [1.0, -1.0]]), np.array([[0.0, 1.0], [1.0, 1.0]])
    assert LOSSES["half_sse"].value(a, a, y) == pytest.approx(0.5 * (0.25 + 1 + 0 + 4))
    assert LOSSES["mse"].value(a, a, y) == pytest.approx((0.25 + 1 + 0 + 4) / 4)
    p = np.exp(a) / np.exp(a).sum(axis=1, keepdims=True)
    onehot = np.array([[0.0, 1.0], [1.0, 0.0]])
    expected = -(np.log(p[0, 1]) + np.log(p[1, 0])) / 2
    assert LOSSES["cross_entropy"].value(a, p, onehot) == pytest.approx(expected)


def test_loss_and_grad_equals_loss_value_and_backward():
    net, params, x, y = make("sigmoid", "sigmoid", "mse", True)
    loss, grads = net.loss_and_grad(params, x, y)
    assert loss == net.loss_value(params, x, y)
    expected = net.backward(params, x, y)
    assert list(grads) == list(net.param_shapes())
    for name in grads:
        np.testing.assert_array_equal(grads[name], expected[name])
    loss_fn, grad_fn = net.functions(x, y)
    assert loss_fn(params) == loss
    np.testing.assert_array_equal(net.flatten(grad_fn(params)), net.flatten(grads))


def test_backward_leaves_params_and_data_untouched():
    net, params, x, y = make("relu", "softmax", "cross_entropy", True)
    before = {k: v.copy() for k, v in params.items()}
    x0, y0 = x.copy(), y.copy()
    net.loss_and_grad(params, x, y)
    assert all(np.array_equal(params[k], before[k]) for k in params)
    assert np.array_equal(x, x0) and np.array_equal(y, y0)


# -- flat vectors and the vectorized loss ---------------------------------------------------
@pytest.mark.parametrize("bias", [True, False])
def test_flatten_unflatten_round_trip(bias):
    net = Network((3, 4, 2), ("tanh", "identity"), bias=bias)
    params = net.init_params(rng=0)
    theta = net.flatten(params)
    assert theta.shape == (net.n_params,)
    np.testing.assert_array_equal(
        theta, np.concatenate([params[name].ravel() for name in net.param_shapes()])
    )
    back = net.unflatten(theta)
    assert list(back) == list(params)
    for name in params:
        np.testing.assert_array_equal(back[name], params[name])
    back["weight1"][0, 0] = 99.0
    assert theta[0] != 99.0  # unflatten copies
    stacked = net.unflatten(np.stack([theta, 2 * theta]))
    np.testing.assert_array_equal(stacked["weight2"][1], 2 * params["weight2"])


@pytest.mark.parametrize("case", CASES[::3], ids=_case_id)
def test_vectorized_loss_equals_loss_on_each_row(case):
    net, params, x, y = make(*case)
    theta = net.flatten(params)
    thetas = theta + 0.3 * np.random.default_rng(1).standard_normal((7, theta.size))
    losses = net.vectorized_loss(x, y)(thetas)
    assert losses.shape == (7,)
    expected = [net.loss_value(net.unflatten(row), x, y) for row in thetas]
    np.testing.assert_allclose(losses, expected, rtol=1e-13, atol=0)


def test_vectorized_loss_accepts_complex_stacks():
    net, params, x, y = make("tanh", "softmax", "cross_entropy", True)
    theta = net.flatten(params)
    thetas = np.tile(theta.astype(complex), (3, 1))
    thetas[np.arange(3), np.arange(3)] += 1e-20j
    losses = net.vectorized_loss(x, y)(thetas)
    np.testing.assert_allclose(
        losses.imag / 1e-20, net.flatten(net.backward(params, x, y))[:3], rtol=1e-11
    )


@pytest.mark.parametrize("dtype", [np.float64, np.complex128, np.float32])
def test_stacked_products_update_rows_that_differ_in_few_entries(dtype, monkeypatch):
    import gradcheck.model.network as network
    from gradcheck.model.network import _matmul

    monkeypatch.setattr(network, "_UPDATE_WORTH", 0)  # small layers take the update path too

    rng = np.random.default_rng(7)
    x = rng.standard_normal((5, 30))
    base = rng.standard_normal((30, 20)).astype(dtype)
    stack = np.repeat(base[np.newaxis], 6, axis=0)
    stack[1, 3, 4] += 1e-3  # one entry
    stack[2, 0, 0] -= 2.0
    stack[2, 29, 19] += 0.5  # two entries
    stack[3] += rng.standard_normal((30, 20)).astype(dtype)  # dense: a full product
    stack[0, 7, 7] += 1.0  # the reference row itself moved: the others differ from it at two
    if np.iscomplexobj(stack):
        stack[4, 10, 2] += 1e-20j  # a complex step
    expected = np.stack([x @ w for w in stack])
    got = _matmul(x, stack)
    assert got.dtype == expected.dtype
    scale = np.abs(x) @ np.abs(stack).max(axis=0)  # size of the terms summed per output
    eps = np.finfo(np.result_type(dtype, np.float32)).eps
    assert np.all(np.abs(got - expected) <= 8 * 30 * eps * scale)
    if np.iscomplexobj(stack):  # the complex step's imaginary part, exactly as a product gives
        np.testing.assert_allclose(got[4].imag, expected[4].imag, rtol=1e-12, atol=1e-40)
