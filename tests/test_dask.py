"""The distributed path (issue 12, item 7): checks through a dask ``LocalCluster`` of two worker
processes, including workers that die mid-check.

The loss runs in the workers (``processes=True``, one thread each), so what is tested is the
path a real cluster takes: the loss and the parameters pickled to other processes, the
values brought back in order.  The verdict must be the serial verdict.  A worker killed
mid-check (the loss ends its own process with ``os._exit`` when one chosen element is moved)
either costs nothing, when the task runs again on the other worker, or stops the check with
one :class:`~gradcheck.errors.ExecutorError`, when the task kills every worker it is given;
never a wrong verdict.

The losses live in a module written to a temporary directory that is put on ``sys.path``
before the cluster starts, so the workers (spawned processes inherit ``sys.path``) import
them as any user's module.

Cost: ~10-15 s (one cluster started, four worker deaths and restarts).
``examples/dask_cluster.py`` runs in ``test_evaluation.py``.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import gradcheck
from gradcheck.errors import ExecutorError

pytest.importorskip("dask.distributed")

#: The element whose move kills the worker evaluating it.
TRIGGER = 37

LOSSES = """
import os
from pathlib import Path

import numpy as np

W = np.linspace(-1.0, 1.0, 96)


def loss(p):
    return float(np.sum(np.sin(p["w"]) ** 2) + 0.5 * np.sum(p["w"] * p["b"]))


def grad(p):
    return {"w": 2 * np.sin(p["w"]) * np.cos(p["w"]) + 0.5 * p["b"], "b": 0.5 * p["w"]}


def wrong_grad(p):
    g = grad(p)
    g["w"][5] *= 1.5  # a planted bug in one element
    return g


def dying_loss(p, *, trigger, parent, marker, once):
    # In a worker (not the checking process), moving element `trigger` ends the process:
    # once (a marker file remembers it), or every time.
    if os.getpid() != parent and p["w"][trigger] != W[trigger]:
        if not once or not os.path.exists(marker):
            Path(marker).touch()
            os._exit(17)
    return loss(p)
"""


@pytest.fixture(scope="module")
def losses(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    where = tmp_path_factory.mktemp("dask_losses")
    (where / "dask_losses.py").write_text(textwrap.dedent(LOSSES))
    sys.path.insert(0, str(where))
    try:
        yield importlib.import_module("dask_losses")
    finally:
        sys.path.remove(str(where))
        sys.modules.pop("dask_losses", None)


@pytest.fixture(scope="module")
def client(losses: Any) -> Iterator[Any]:
    """Two worker processes, one thread each; a task may run again once after its worker died."""
    import dask
    from dask.distributed import Client, LocalCluster

    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 1}),
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def params(losses: Any) -> dict[str, Any]:
    return {"w": losses.W.copy(), "b": np.linspace(0.5, -0.5, 96)}


def check(losses: Any, loss: Any, grad: Any, executor: Any = None) -> gradcheck.CheckResult:
    return gradcheck.check(
        loss, grad, params(losses), mode="full", rng=0, progress=False, executor=executor
    )


def failing_elements(result: gradcheck.CheckResult) -> dict[str, list[int]]:
    return {p.name: np.flatnonzero(p.failed).tolist() for p in result.parameters}


@pytest.mark.parametrize("right", [True, False], ids=["right gradient", "planted bug"])
def test_a_check_on_two_worker_processes_gives_the_serial_verdict(
    losses: Any, client: Any, right: bool
) -> None:
    grad = losses.grad if right else losses.wrong_grad
    serial = check(losses, losses.loss, grad)
    distributed = check(losses, losses.loss, grad, client.get_executor())
    assert distributed.status == serial.status == ("passed" if right else "failed")
    assert failing_elements(distributed) == failing_elements(serial)
    assert failing_elements(serial) == {"w": [] if right else [5], "b": []}
    for a, b in zip(serial.parameters, distributed.parameters, strict=True):
        np.testing.assert_array_equal(a.reference, b.reference)  # the same evaluations


@pytest.mark.parametrize("right", [True, False], ids=["right gradient", "planted bug"])
def test_a_worker_that_dies_once_costs_nothing_but_time(
    losses: Any, client: Any, right: bool, tmp_path: Path
) -> None:
    client.wait_for_workers(2, timeout=60)  # a worker killed before is back (its nanny)
    grad = losses.grad if right else losses.wrong_grad
    marker = tmp_path / "died"
    dying = functools.partial(
        losses.dying_loss, trigger=TRIGGER, parent=os.getpid(), marker=str(marker), once=True
    )
    serial = check(losses, losses.loss, grad)
    result = check(losses, dying, grad, client.get_executor())
    assert marker.exists()  # a worker did die, mid-check
    assert result.status == serial.status  # its task ran again on the other worker
    assert failing_elements(result) == failing_elements(serial)


def test_a_task_that_kills_every_worker_stops_the_check_with_one_error(
    losses: Any, client: Any, tmp_path: Path
) -> None:
    dying = functools.partial(
        losses.dying_loss,
        trigger=TRIGGER,
        parent=os.getpid(),
        marker=str(tmp_path / "died"),
        once=False,
    )
    client.wait_for_workers(2, timeout=60)
    with pytest.raises(ExecutorError, match=r"^executor: a task was lost \(KilledWorker: "):
        check(losses, dying, losses.grad, client.get_executor())
