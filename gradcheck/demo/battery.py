"""The main job: the seed demonstration, then backprop checked on a battery of random networks.

Every case is a :class:`~gradcheck.model.network.Network` with random parameters and
data; its hand-written backward pass (``a_prev.T @ delta`` layer by layer) is
checked against every reference gradcheck has, each reference judged by the
same derived tolerance from its own error estimate.  A few cases are also
trained with SciPy's L-BFGS-B with and without the analytic gradient.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradcheck.model.network import Network, random_data
from gradcheck.references.registry import METHODS
from gradcheck.results import CheckResult
from gradcheck.runner.check import check

__all__ = [
    "BatteryCase",
    "CaseResult",
    "BatteryResult",
    "DEFAULT_CASES",
    "BATTERY_METHODS",
    "run_battery",
    "run_case",
    "run_planted_bugs",
    "PLANTED_BUGS",
    "BugResult",
    "scaled_error",
]

#: References every case is checked against: every registered method (``auto`` is the default
#: pipeline).
BATTERY_METHODS = METHODS


@dataclass(frozen=True)
class BatteryCase:
    """One random network of the battery.

    Attributes
    ----------
    name : str
        Short label for the summary table.
    network : Network
        Architecture, activations, loss, biases.
    n_samples : int
        Batch size of the random data.
    dtype : str
        Parameter and data dtype.
    weight_scale : float
        Multiplies the default initialisation (large values saturate sigmoids).
    train : bool
        Also compare L-BFGS-B training with the analytic and a finite-difference gradient.
    """

    name: str
    network: Network
    n_samples: int = 8
    dtype: str = "float64"
    weight_scale: float = 1.0
    train: bool = False

    def problem(
        self, rng: np.random.Generator
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """Random parameters and data for this case."""
        dtype = np.dtype(self.dtype)
        params = self.network.init_params(rng, dtype=dtype)
        params = {k: (v * self.weight_scale).astype(dtype) for k, v in params.items()}
        x, y = random_data(self.network, self.n_samples, rng=rng, dtype=dtype)
        return params, x, y


DEFAULT_CASES: tuple[BatteryCase, ...] = (
    BatteryCase(
        "seed-like 3-4-1 sigmoid",
        Network((3, 4, 1), ("sigmoid", "sigmoid"), "half_sse", bias=False),
        n_samples=4,
        train=True,
    ),
    BatteryCase("4-8-3 tanh/identity mse", Network((4, 8, 3), ("tanh", "identity"), "mse")),
    BatteryCase(
        "5-6-6-4 relu softmax-CE",
        Network((5, 6, 6, 4), ("relu", "relu", "softmax"), "cross_entropy"),
        n_samples=10,
        train=True,
    ),
    BatteryCase(
        "3-5-5-5-2 deep mixed",
        Network((3, 5, 5, 5, 2), ("tanh", "sigmoid", "tanh", "identity"), "half_sse"),
    ),
    BatteryCase(
        "8-10-10-3 no bias",
        Network((8, 10, 10, 3), ("relu", "tanh", "softmax"), "cross_entropy", bias=False),
    ),
    BatteryCase("5-3 linear regression", Network((5, 3), ("identity",), "mse"), n_samples=12),
    BatteryCase(
        "4-6-1 saturated sigmoid",
        Network((4, 6, 1), ("sigmoid", "sigmoid"), "half_sse"),
        weight_scale=80.0,
    ),
    BatteryCase(
        "4-6-2 float32 tanh", Network((4, 6, 2), ("tanh", "identity"), "mse"), dtype="float32"
    ),
)


Params = dict[str, np.ndarray]


def _output_delta(network: Network, params: Params, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The output layer's delta = dL/dz, one row per sample (what the seed calls -dC_dw2)."""
    from gradcheck.model.activations import ACTIVATIONS
    from gradcheck.model.losses import LOSSES

    forward = network.forward(params, x)
    activation = ACTIVATIONS[network.activations[-1]]
    return LOSSES[network.loss].delta(forward.z[-1], forward.a[-1], y, activation)


def _delta_as_dw(network: Network, params: Params, x: np.ndarray, y: np.ndarray) -> Params:
    grads = network.backward(params, x, y)
    last = f"weight{len(network.sizes) - 1}"
    return {**grads, last: _output_delta(network, params, x, y)}


def _one_element(network: Network, params: Params, x: np.ndarray, y: np.ndarray) -> Params:
    grads = network.backward(params, x, y)
    worst = float(max(np.max(np.abs(g)) for g in grads.values()))
    weight = grads["weight1"].copy()
    weight.flat[0] += 1e-3 * worst
    return {**grads, "weight1": weight}


def _float32(network: Network, params: Params, x: np.ndarray, y: np.ndarray) -> Params:
    narrow = {k: v.astype(np.float32) for k, v in params.items()}
    grads = network.backward(narrow, x.astype(np.float32), y.astype(np.float32))
    return {k: v.astype(np.float64) for k, v in grads.items()}


#: Bugs people write by hand, planted into the battery's first case (the seed's shape: 4
#: samples, 4 hidden units): the main job shows each is caught and named, not only that
#: correct gradients pass.
PLANTED_BUGS: dict[str, Callable[[Network, Params, np.ndarray, np.ndarray], Params]] = {
    "sign flipped (y - a2 for a2 - y)": lambda n, p, x, y: {
        k: -v for k, v in n.backward(p, x, y).items()
    },
    "per-sample delta returned as dW (the textbook update)": _delta_as_dw,
    "mean over samples where the loss sums": lambda n, p, x, y: {
        k: v / len(x) for k, v in n.backward(p, x, y).items()
    },
    "every element off by 1e-4": lambda n, p, x, y: {
        k: v * (1 + 1e-4) for k, v in n.backward(p, x, y).items()
    },
    "one element off by 1e-3 of the largest gradient": _one_element,
    "backprop silently in float32": _float32,
}


@dataclass(frozen=True, eq=False)
class BugResult:
    """One planted bug: the check of the buggy gradient, which must fail.

    ``loss`` and ``params`` are the checked problem, kept so that a report can gather
    evidence on it (:func:`gradcheck.runner.evidence.with_evidence`).
    """

    case: str
    bug: str
    result: CheckResult
    loss: Callable[[Params], Any] | None = None
    params: Params | None = None

    @property
    def caught(self) -> bool:
        return not self.result.passed

    def to_dict(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "bug": self.bug,
            "caught": self.caught,
            "check": self.result.to_dict(),
        }


def _seed(rng: np.random.Generator) -> int:
    """A seed for one check, drawn from the run's generator: the check records it, so its
    page can say how to repeat it (a Generator handed on would leave no seed to record)."""
    return int(rng.integers(2**31))


def run_planted_bugs(case: BatteryCase, *, rng: np.random.Generator) -> tuple[BugResult, ...]:
    """Check every :data:`PLANTED_BUGS` gradient on ``case``; each must fail."""
    params, x, y = case.problem(rng)
    loss_fn, _ = case.network.functions(x, y)
    # What each layer saw, so the diagnosis can prove a per-sample delta (the network has no
    # bias, whose column sums would otherwise give it away).
    forward = case.network.forward(params, x)
    inputs = {f"weight{k + 1}": a_prev for k, a_prev in enumerate(forward.a_prev)}
    found = []
    for name, plant in PLANTED_BUGS.items():

        def buggy(p: Params, plant: Any = plant) -> Params:
            return plant(case.network, p, x, y)

        result = check(loss_fn, buggy, params, rng=_seed(rng), layer_inputs=inputs)
        found.append(BugResult(case.name, name, result, loss_fn, params))
    return tuple(found)


@dataclass(frozen=True, eq=False)
class CaseResult:
    """The checks of one battery case: one :class:`CheckResult` per reference method.

    ``skipped`` maps a method to why it did not apply (e.g. the complex step
    for a float32 case whose loss cannot be made complex at that precision).
    ``loss`` and ``params`` are the checked problem, kept so that a report can
    gather evidence on it (:func:`gradcheck.runner.evidence.with_evidence`).
    """

    case: BatteryCase
    checks: dict[str, CheckResult]
    skipped: dict[str, str] = field(default_factory=dict)
    training: Any = None
    seconds: float = 0.0
    loss: Callable[[Params], Any] | None = None
    params: Params | None = None

    @property
    def n_params(self) -> int:
        return self.case.network.n_params

    @property
    def passed(self) -> bool:
        trained = self.training is None or bool(self.training.passed)
        return all(r.passed for r in self.checks.values()) and trained

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.case.name,
            "network": {
                "sizes": list(self.case.network.sizes),
                "activations": list(self.case.network.activations),
                "loss": self.case.network.loss,
                "bias": self.case.network.bias,
            },
            "dtype": self.case.dtype,
            "n_params": self.n_params,
            "passed": self.passed,
            "checks": {m: r.to_dict() for m, r in self.checks.items()},
            "skipped": dict(self.skipped),
            "training": self.training.to_dict() if self.training is not None else None,
            "seconds": self.seconds,
        }


def scaled_error(result: CheckResult) -> float:
    """Largest ``max |analytic - reference| / max |reference|`` over the parameters.

    Relative to each parameter's gradient scale rather than elementwise, so an
    element that is zero up to rounding does not read as a 100% error.
    """
    worst = 0.0
    for p in result.parameters:
        if not p.checked.any():
            continue
        scale = float(np.max(np.abs(p.reference[p.checked])))
        if scale > 0:
            worst = max(worst, p.max_abs_error / scale)
        elif p.max_abs_error > 0:
            worst = float("inf")
    return worst


def _cell(result: CheckResult | None) -> str:
    if result is None:
        return "n/a"
    return f"{'ok' if result.passed else 'FAIL'} {scaled_error(result):.0e}"


@dataclass(frozen=True, eq=False)
class BatteryResult:
    """The main job's outcome: the seed demonstration and every battery case.

    Attributes
    ----------
    seed : SeedDemonstration or None
        The seed question answered with numbers.
    cases : tuple of CaseResult
        One per random network.
    methods : tuple of str
        The reference methods each case was checked with.
    seconds : float
        Wall time of the whole job.
    rng_seed : int or None
        Seed of the random networks.
    """

    seed: Any
    cases: tuple[CaseResult, ...]
    methods: tuple[str, ...]
    seconds: float
    rng_seed: int | None
    bugs: tuple[BugResult, ...] = ()

    @property
    def passed(self) -> bool:
        """The seed's claims hold, correct backprop passes, and every planted bug is caught."""
        seed_ok = self.seed is None or bool(self.seed.passed)
        caught = all(b.caught for b in self.bugs)
        return seed_ok and caught and all(c.passed for c in self.cases)

    @property
    def headline(self) -> str:
        """The one-line verdict (what ``--quiet`` prints)."""
        verdict = "ALL VERIFIED" if self.passed else "NOT VERIFIED"
        return f"{verdict} in {self.seconds:.1f} s (seed {self.rng_seed})"

    def bug_table(self) -> str:
        """One line per planted bug: caught or not, and the diagnosis."""
        lines = []
        for b in self.bugs:
            verdict = "caught " if b.caught else "MISSED "
            why = b.result.diagnosis.summary if b.result.diagnosis else ""
            lines.append(f"{verdict} {b.bug}: {why}" if why else f"{verdict} {b.bug}")
        return "\n".join(lines)

    @property
    def checks(self) -> list[tuple[str, str, CheckResult]]:
        """Every check made: ``(case name, method, result)``."""
        return [(c.case.name, m, r) for c in self.cases for m, r in c.checks.items()]

    def table(self) -> str:
        """The summary table: one row per case, one column per reference (max relative error)."""
        header = ["network", "params", "dtype", *self.methods, "L-BFGS-B"]
        rows = [header]
        for case in self.cases:
            training = (
                "-" if case.training is None else ("agree" if case.training.passed else "DIFFER")
            )
            rows.append(
                [
                    case.case.name,
                    str(case.n_params),
                    case.case.dtype,
                    *(_cell(case.checks.get(m)) for m in self.methods),
                    training,
                ]
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines = [
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in rows
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def __str__(self) -> str:
        parts = []
        if self.seed is not None:
            parts += [
                "== The seed network: why W += lr * a_prev.T @ dC_dw works ==",
                str(self.seed),
                "",
            ]
        parts += [
            f"== Backprop on {len(self.cases)} random networks, against every reference ==",
            "(cell: verdict, and the largest |backprop - reference| / max|reference| "
            "of any parameter)",
            self.table(),
            "",
        ]
        if self.bugs:
            parts += [
                f"== Planted bugs in {self.bugs[0].case}: each must fail, and is named ==",
                self.bug_table(),
                "",
            ]
        failed = [c for c in self.cases if not c.passed]
        for case in failed:
            for method, result in case.checks.items():
                if not result.passed:
                    parts.append(f"{case.case.name} / {method}:\n{result}")
            if case.training is not None and not case.training.passed:
                parts.append(f"{case.case.name} / L-BFGS-B:\n{case.training}")
        parts.append(self.headline)
        return "\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "seconds": self.seconds,
            "rng_seed": self.rng_seed,
            "methods": list(self.methods),
            "seed": self.seed.to_dict() if self.seed is not None else None,
            "cases": [c.to_dict() for c in self.cases],
            "bugs": [b.to_dict() for b in self.bugs],
        }


def _train(case: BatteryCase, params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> Any:
    from gradcheck.demo.training import train_reference

    network = case.network

    def loss_flat(theta: np.ndarray) -> float:
        return float(network.loss_value(network.unflatten(theta), x, y))

    def grad_flat(theta: np.ndarray) -> np.ndarray:
        return network.flatten(network.backward(network.unflatten(theta), x, y))

    return train_reference(loss_flat, grad_flat, network.flatten(params))


def run_case(
    case: BatteryCase,
    *,
    rng: np.random.Generator,
    methods: Sequence[str] = BATTERY_METHODS,
    train: bool = True,
) -> CaseResult:
    """Check one case's backprop against each reference in ``methods``."""
    from gradcheck.errors import InvalidParameterError

    started = time.perf_counter()
    params, x, y = case.problem(rng)
    loss_fn, grad_fn = case.network.functions(x, y)
    checks: dict[str, CheckResult] = {}
    skipped: dict[str, str] = {}
    for method in methods:
        try:
            checks[method] = check(loss_fn, grad_fn, params, method=method, rng=_seed(rng))
        except InvalidParameterError as exc:  # e.g. complex step not usable for this loss
            skipped[method] = str(exc)
    training = _train(case, params, x, y) if (train and case.train) else None
    seconds = time.perf_counter() - started
    return CaseResult(case, checks, skipped, training, seconds, loss_fn, params)


def run_battery(
    *,
    rng: int | None = 0,
    quick: bool = False,
    cases: Sequence[BatteryCase] = DEFAULT_CASES,
    methods: Sequence[str] = BATTERY_METHODS,
    seed_demo: bool = True,
    planted_bugs: bool = True,
    progress: Callable[[str], None] | None = None,
) -> BatteryResult:
    """Run the main job: the seed demonstration and every battery case.

    Parameters
    ----------
    rng : int or None, keyword-only
        Seed of the random networks (the job is reproducible by default).
    quick : bool
        Skip the slowest reference (``differentiate``) and the training runs.
    cases : sequence of BatteryCase
        The networks; :data:`DEFAULT_CASES` by default.
    methods : sequence of str
        Reference methods; :data:`BATTERY_METHODS` by default.
    seed_demo : bool
        Include the seed demonstration.
    planted_bugs : bool
        Also check the :data:`PLANTED_BUGS` gradients on the first case; each must fail.
    progress : callable, optional
        Called with a line of text as each part starts.

    Returns
    -------
    BatteryResult
    """
    started = time.perf_counter()
    generator = np.random.default_rng(rng)
    if quick:
        methods = tuple(m for m in methods if m != "differentiate")
    seed = None
    if seed_demo:
        from gradcheck.demo.seed import demonstrate

        if progress:
            progress("seed network: 1000 iterations of the seed's update and the textbook's")
        seed = demonstrate()
    results = []
    for case in cases:
        if progress:
            progress(f"checking {case.name}")
        results.append(run_case(case, rng=generator, methods=methods, train=not quick))
    bugs: tuple[BugResult, ...] = ()
    if planted_bugs and cases:
        if progress:
            progress(f"planting bugs in {cases[0].name}")
        bugs = run_planted_bugs(cases[0], rng=generator)
    return BatteryResult(
        seed, tuple(results), tuple(methods), time.perf_counter() - started, rng, bugs
    )
