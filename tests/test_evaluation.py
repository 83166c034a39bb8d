"""The evaluation engine: every path (serial, vectorized, chunked, executor) gives the same values.

A 20-12-5 network (317 parameters); one test starts a 2-process pool (about a second).
No timing is asserted: speed is measured by ``benchmarks/run.py``.
"""

from __future__ import annotations

import functools
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest

import gradcheck
import gradcheck.options as options
import gradcheck.runner.evaluation as evaluation
from gradcheck.errors import InvalidLossError, InvalidParameterError, UserFunctionError
from gradcheck.model.network import Network, random_data
from gradcheck.options import validate_budget
from gradcheck.problem.objective import Objective
from gradcheck.problem.space import ParameterSpace
from gradcheck.runner.evaluation import BatchedObjective

NET = Network((20, 12, 5), ("tanh", "sigmoid"))
X, Y = random_data(NET, 16, rng=1)


def flat_loss(thetas, x=X, y=Y):
    """A module-level vectorized loss (picklable for process pools)."""
    return NET.vectorized_loss(x, y)(thetas)


def tree_loss(params, x=X, y=Y):
    """A module-level plain loss (picklable)."""
    return NET.loss_value(params, x, y)


def _params(dtype=np.float64):
    return NET.init_params(rng=0, dtype=dtype)


def _batch(space, n=200, seed=0):
    rng = np.random.default_rng(seed)
    indices = rng.choice(space.size, size=n, replace=False)
    steps = rng.uniform(1e-6, 1e-4, size=n) * rng.choice([-1, 1], size=n)
    return indices.astype(np.intp), steps


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_vectorized_and_chunked_paths_equal_the_serial_path(dtype):
    params = _params(dtype)
    serial = Objective(tree_loss, ParameterSpace(params))
    indices, steps = _batch(serial.space)
    expected, expected_taken = serial.perturbed_many(indices, steps)
    for chunk_bytes in (1, 10 * NET.n_params * 16, evaluation.CHUNK_BYTES):
        vectorized = BatchedObjective(
            flat_loss, ParameterSpace(params), vectorized=True, chunk_bytes=chunk_bytes
        )
        values, taken = vectorized.perturbed_many(indices, steps)
        np.testing.assert_array_equal(taken, expected_taken)  # the same rounded steps
        np.testing.assert_allclose(values, expected, rtol=1e-6 if dtype == np.float32 else 1e-13)
        assert vectorized.n_evaluations == 1 + len(indices)  # value at x0, then the batch
    assert serial.n_evaluations == 1 + len(indices)


def test_complex_and_point_batches_agree():
    params = _params()
    serial = Objective(tree_loss, ParameterSpace(params))
    vectorized = BatchedObjective(
        flat_loss, ParameterSpace(params), vectorized=True, chunk_bytes=50_000
    )
    indices, _ = _batch(serial.space, n=40)
    steps = np.full(len(indices), 1e-20)
    np.testing.assert_allclose(
        vectorized.complex_many(indices, steps).imag,
        serial.complex_many(indices, steps).imag,
        rtol=1e-12,
    )
    points = serial.x0 + 1e-3 * np.random.default_rng(1).standard_normal((7, serial.space.size))
    np.testing.assert_allclose(vectorized.values_at(points), serial.values_at(points), rtol=1e-13)


def test_thread_executor_gives_the_serial_values_and_counts():
    params = _params()
    serial = Objective(tree_loss, ParameterSpace(params))
    indices, steps = _batch(serial.space)
    expected, expected_taken = serial.perturbed_many(indices, steps)
    with ThreadPoolExecutor(max_workers=2) as pool:
        parallel = BatchedObjective(tree_loss, ParameterSpace(params), executor=pool)
        values, taken = parallel.perturbed_many(indices, steps)
        assert parallel.parallelism == 2
    np.testing.assert_array_equal(values, expected)
    np.testing.assert_array_equal(taken, expected_taken)
    # Each task rebuilds the parameters and evaluates the loss once there: counted.
    assert parallel.n_evaluations > 1 + len(indices)


def test_process_pool_check_matches_the_serial_check():
    params = _params()
    grad = NET.functions(X, Y)[1]
    plain = gradcheck.check(tree_loss, grad, params, mode="full", method="central", rng=0)
    with ProcessPoolExecutor(max_workers=2) as pool:
        parallel = gradcheck.check(
            functools.partial(tree_loss),
            grad,
            params,
            mode="full",
            method="central",
            rng=0,
            executor=pool,
        )
    assert plain.passed and parallel.passed
    for a, b in zip(plain.parameters, parallel.parameters, strict=True):
        np.testing.assert_array_equal(a.reference, b.reference)


def test_process_pool_with_a_closure_says_the_loss_must_be_picklable():
    params = _params()
    bound, grad = NET.functions(X, Y)

    def loss(params):  # a closure: a process pool cannot pickle it
        return bound(params)

    with ProcessPoolExecutor(max_workers=1) as pool:
        with pytest.raises(InvalidParameterError, match="^executor: .*picklable"):
            gradcheck.check(loss, grad, params, mode="full", executor=pool, rng=0)


def test_worker_exceptions_come_back_with_their_context():
    def failing(params):
        if params["bias2"][0] > 10:
            raise ZeroDivisionError("boom")
        return tree_loss(params)

    space = ParameterSpace(_params())
    with ThreadPoolExecutor(max_workers=2) as pool:
        objective = BatchedObjective(failing, space, executor=pool)
        index = space.leaves[-1].offset
        indices = np.full(100, index, dtype=np.intp)
        with pytest.raises(UserFunctionError, match="executor worker") as info:
            objective.perturbed_many(indices, np.full(100, 100.0))
    assert isinstance(info.value.original, ZeroDivisionError)


@pytest.mark.parametrize("method", ["auto", "central"])
def test_vectorized_check_gives_the_plain_verdicts(method):
    params = _params()
    loss, grad = NET.functions(X, Y)
    vloss = NET.vectorized_loss(X, Y)

    def wrong(p):
        g = grad(p)
        g["weight2"] = g["weight2"] * (1 + 1e-4)
        return g

    for g, passed in ((grad, True), (wrong, False)):
        plain = gradcheck.check(loss, g, params, mode="full", method=method, rng=0)
        fast = gradcheck.check(vloss, g, params, mode="full", method=method, rng=0, vectorized=True)
        assert plain.passed is passed and fast.passed is passed
        # The network's vectorized loss rounds differently (its first layer updates a shared
        # product), so the two references agree within their own error estimates.
        a, b = fast["weight1"], plain["weight1"]
        assert np.all(np.abs(a.reference - b.reference) <= a.error_estimate + b.error_estimate)


def test_vectorized_loss_with_the_wrong_output_shape_is_named():
    params = _params()
    grad = NET.functions(X, Y)[1]
    with pytest.raises(InvalidLossError, match="vectorized=True"):
        gradcheck.check(
            lambda thetas: flat_loss(thetas)[:1].repeat(2), grad, params, vectorized=True
        )


def test_user_params_are_not_modified_by_any_path():
    params = _params()
    before = {k: v.copy() for k, v in params.items()}
    grad = NET.functions(X, Y)[1]
    gradcheck.check(NET.vectorized_loss(X, Y), grad, params, vectorized=True, rng=0)
    gradcheck.check(tree_loss, grad, params, mode="directional", rng=0)
    for key in params:
        np.testing.assert_array_equal(params[key], before[key])


def test_progress_bar_only_when_asked_or_on_a_terminal(capsys, monkeypatch):
    monkeypatch.setattr(evaluation, "PROGRESS_DELAY", 0.0)
    space = ParameterSpace(_params())
    indices, steps = _batch(space, n=50)
    BatchedObjective(tree_loss, space).perturbed_many(indices, steps)  # stderr is not a terminal
    assert capsys.readouterr().err == ""
    BatchedObjective(tree_loss, space, progress=False).perturbed_many(indices, steps)
    assert capsys.readouterr().err == ""
    shown = BatchedObjective(tree_loss, space, progress=True)
    shown.perturbed_many(indices, steps)
    shown.close()
    assert "gradcheck" in capsys.readouterr().err


def test_budget_forms():
    assert validate_budget(None).seconds == options.DEFAULT_BUDGET_SECONDS
    assert validate_budget(2.5).seconds == 2.5
    assert validate_budget(1000).evaluations == 1000
    assert str(validate_budget(1000)) == "1000 loss evaluations"


def test_dask_example_gives_the_serial_verdict():
    """``examples/dask_cluster.py`` on a local cluster (a few seconds; skipped without dask)."""
    pytest.importorskip("dask.distributed")
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "dask_cluster.py"
    spec = importlib.util.spec_from_file_location("dask_cluster", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.run(n_workers=2, processes=True)
    assert result.passed and result.mode == "full"
    assert result["weight1"].checked.all()


def test_vectorized_loss_that_writes_into_its_input_still_gets_the_right_values():
    params = NET.init_params(rng=3)
    x, y = random_data(NET, 5, rng=3)
    vloss = NET.vectorized_loss(x, y)

    def scribbling(thetas):
        thetas *= 1.0  # in place: the stack gradcheck hands over is read-only
        out = vloss(thetas)
        thetas[:, 0] = 1e9  # would corrupt later rows if it reached gradcheck's stack
        return out

    indices = np.arange(NET.n_params)
    steps = np.full(len(indices), 1e-4)
    clean = BatchedObjective(vloss, ParameterSpace(params), vectorized=True, chunk_bytes=2_000)
    messy = BatchedObjective(scribbling, ParameterSpace(params), vectorized=True, chunk_bytes=2_000)
    np.testing.assert_array_equal(
        messy.perturbed_many(indices, steps)[0], clean.perturbed_many(indices, steps)[0]
    )


def test_the_networks_bound_functions_run_in_a_process_pool():
    params = _params()
    loss, grad = NET.functions(X, Y)
    vloss = NET.vectorized_loss(X, Y)
    with ProcessPoolExecutor(max_workers=2) as pool:
        plain = gradcheck.check(
            loss, grad, params, mode="full", method="central", executor=pool, rng=0
        )
        stacked = gradcheck.check(
            vloss,
            grad,
            params,
            mode="full",
            method="central",
            executor=pool,
            vectorized=True,
            rng=0,
        )
    assert plain.passed and stacked.passed


def test_workers_run_the_check_in_processes_and_give_the_serial_verdicts():
    params = _params()
    _, grad = NET.functions(X, Y)

    def wrong(p):
        g = grad(p)
        g["bias1"] = g["bias1"] * (1 + 1e-4)
        return g

    for g, passed in ((grad, True), (wrong, False)):
        serial = gradcheck.check(tree_loss, g, params, mode="full", method="central", rng=0)
        pooled = gradcheck.check(
            tree_loss, g, params, mode="full", method="central", rng=0, workers=2
        )
        assert serial.passed is passed and pooled.passed is passed
        np.testing.assert_array_equal(pooled["bias1"].reference, serial["bias1"].reference)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"workers": 0}, "workers: must be >= 1"),
        ({"workers": 2.0}, "workers: expected a positive int"),
        ({"workers": 2, "executor": ThreadPoolExecutor(1)}, "either workers or executor"),
        ({"workers": 2, "loss": lambda p: tree_loss(p)}, "workers: the loss must be picklable"),
    ],
)
def test_bad_workers_are_named(kwargs, message):
    loss = kwargs.pop("loss", tree_loss)
    _, grad = NET.functions(X, Y)
    with pytest.raises((InvalidParameterError, gradcheck.ParameterTypeError), match=message):
        gradcheck.check(loss, grad, _params(), **kwargs)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.longdouble])
def test_a_probe_point_is_written_in_place_and_put_back_bitwise(dtype):
    # The loss sees x0 + t v on the block (each element rounded to its dtype) and x0 elsewhere;
    # the step reported is the one really taken along v's unit vector, and nothing is left
    # moved afterwards, in the working copies or in the user's arrays.
    rng = np.random.default_rng(0)
    params = {"a": rng.standard_normal(7).astype(dtype), "b": rng.standard_normal(5).astype(dtype)}
    kept = {k: v.copy() for k, v in params.items()}
    objective = Objective(
        lambda p: float(np.sum(p["a"]) + 2 * np.sum(p["b"])), ParameterSpace(params)
    )
    seen_tree = objective.space.tree
    v = rng.standard_normal(8)
    t = 1e-3
    value, along, off = objective.along_block(4, v, t)
    moved = np.concatenate([params["a"], params["b"]]).astype(np.longdouble)
    moved[4:12] = (moved[4:12] + np.longdouble(t) * v).astype(dtype)
    expected = float(np.sum(moved[:7]) + 2 * np.sum(moved[7:]))
    assert value == pytest.approx(expected, rel=0, abs=1e-12 if dtype != np.float32 else 1e-5)
    taken = (moved[4:12] - np.concatenate([params["a"], params["b"]])[4:12]).astype(np.float64)
    unit = v / np.linalg.norm(v)
    assert along == pytest.approx(float(taken @ unit), rel=1e-12)
    assert off == pytest.approx(float(np.linalg.norm(taken - t * v)), rel=1e-6, abs=1e-300)
    assert objective.space.tree is seen_tree  # the same tree, moved in place
    assert not objective.space.restore()  # and put back bitwise
    for key, value_ in params.items():
        assert np.array_equal(value_, kept[key])
