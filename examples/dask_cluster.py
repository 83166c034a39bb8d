"""Check a gradient elementwise on a dask cluster: perturbations are evaluated on the workers.

``gradcheck.check`` accepts any :class:`concurrent.futures.Executor`.  A
``dask.distributed`` client offers one (``client.get_executor()``), so the same call that
runs on one machine with a ``ProcessPoolExecutor`` runs on a cluster: gradcheck cuts each
batch of perturbed evaluations into a few tasks per worker, each task rebuilds the
parameters once on its worker and evaluates its share in place, and the results come back
in order.  The verdict is the same as without the executor: only where the loss is
evaluated changes.

Needs the optional extra: ``pip install 'gradcheck[dask]'``.  Run::

    python examples/dask_cluster.py

Here the cluster is local (two worker processes on this machine); for a real cluster pass
``Client("scheduler-address:8786")`` instead.  The loss must be serialisable by dask
(cloudpickle handles closures and lambdas as well as module-level functions).

A worker that dies mid-check (killed, out of memory, a loss that ends its process) costs
only time: dask runs its task again on another worker, and the values, hence the verdict,
are the same.  When a task loses every worker it is given (dask's
``distributed.scheduler.allowed-failures``), :func:`gradcheck.check` raises
:class:`gradcheck.errors.ExecutorError` instead of a verdict: missing values are never
guessed.  ``tests/test_dask.py`` runs both cases on a ``LocalCluster``.
"""

from __future__ import annotations

import functools

import numpy as np

import gradcheck
from gradcheck.model.network import Network, random_data


def run(*, n_workers: int = 2, processes: bool = True) -> gradcheck.CheckResult:
    """Check backprop of a 64-32-10 network elementwise on a local dask cluster."""
    from dask.distributed import Client, LocalCluster

    net = Network((64, 32, 10), ("tanh", "sigmoid"))
    params = net.init_params(rng=0)
    x, y = random_data(net, 16, rng=1)
    loss = functools.partial(net.loss_value, x=x, y=y)
    grad = functools.partial(net.backward, x=x, y=y)
    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=processes,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        return gradcheck.check(
            loss,
            grad,
            params,
            mode="full",
            executor=client.get_executor(),
            rng=0,
            progress=False,
        )


def main() -> None:
    result = run()
    print(result)
    weight1 = result["weight1"]
    print(
        f"{weight1.n_checked} of {np.size(weight1.analytic)} weight1 elements compared, "
        f"{result.n_evaluations} loss evaluations in {result.seconds:.2f} s"
    )


if __name__ == "__main__":
    main()
