"""The seed report: why ``a_prev.T @ delta``, and why ``+``.

Built from the :class:`~gradcheck.demo.seed.SeedDemonstration` that
:func:`gradcheck.demo.seed.demonstrate` returns: every number on the page is
measured there, not asserted, and the page only lays them out (it runs nothing,
not even the corrected loop, whose output the demonstration carries).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcheck.errors import ParameterTypeError
from gradcheck.report import plots
from gradcheck.report._render import environment, render

if TYPE_CHECKING:  # pragma: no cover - the type only: the report never runs demo code
    from gradcheck.demo.seed import SeedDemonstration

__all__ = ["POST_URL", "SEED_CODE", "headline_facts", "render_seed_report"]

#: The post's code, as its author wrote it (after iamtrask's "A neural network in 11 lines").
SEED_CODE = """\
import numpy as np

def sigmoid(x):
    return 1 / (1 + np.exp(-x))

def derv_sigmoid(x):          # x is already sigmoid(z)
    return x * (1 - x)

x = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]])
y = np.array([[0, 1, 1, 0]]).T
np.random.seed(1)
weight1 = np.random.random((3, 4))
weight2 = np.random.random((4, 1))
lr = 1

for i in range(1000):
    z1 = np.dot(x, weight1)
    a1 = sigmoid(z1)
    z2 = np.dot(a1, weight2)
    a2 = sigmoid(z2)

    delta2 = y - a2
    dC_dw2 = delta2 * derv_sigmoid(a2)                          # "dC/dw2"
    dC_dw1 = np.multiply(dC_dw2, weight2.T) * derv_sigmoid(a1)  # "dC/dw1"

    weight2 = weight2 + lr * np.dot(a1.T, dC_dw2)   # "this is what works"
    weight1 = weight1 + lr * np.dot(x.T, dC_dw1)

print(a2)
"""


def _vector(values: Any) -> str:
    return "[" + " ".join(f"{float(v):.3f}" for v in np.asarray(values).ravel()) + "]"


def _worst(mapping: dict[str, Any]) -> float:
    return max((float(np.nanmax(v)) for v in mapping.values()), default=float("nan"))


def headline_facts(demo: SeedDemonstration) -> list[tuple[str, str]]:
    """A few numbers for the index: the output, the two step comparisons, the claims."""
    claims = demo.claims
    return [
        (_vector(demo.seed_run.final_a2), f"a2 after {demo.iterations} iterations"),
        (f"{_worst(demo.seed_vs_gradient_descent):.1e}", "max |seed step − (−lr·dL/dW)|"),
        (f"{_worst(demo.textbook_vs_gradient_descent):.2f}", "max |textbook step − (−lr·dL/dW2)|"),
        (f"{sum(claims.values())} / {len(claims)}", "claims of the answer hold"),
    ]


def _step_plot(demo: SeedDemonstration) -> str:
    """The seed's step and the textbook's step against ``-lr * dL/dW`` over the iterations."""
    floor = 1e-19
    iterations = np.arange(1, demo.iterations + 1)
    series = []
    styles = {"weight1": "#0969da", "weight2": "#54aeff"}
    for name, values in demo.seed_vs_gradient_descent.items():
        series.append(
            (
                f"seed step, {name}:  + lr · a_prev.T @ dC_dw",
                iterations,
                np.maximum(values, floor),
                {"color": styles.get(name, "#0969da"), "linewidth": 0.7},
            )
        )
    for name, values in demo.textbook_vs_gradient_descent.items():
        series.append(
            (
                f"textbook step, {name}:  − lr · dC_dw",
                iterations,
                values,
                {"color": "#cf222e", "linewidth": 1.8},
            )
        )
        relative = demo.textbook_vs_gradient_descent_relative[name]
        with np.errstate(divide="ignore", invalid="ignore"):
            size = values / relative
        series.append(
            (
                f"size of the step itself, max |lr · dL/d{name}|",
                iterations,
                size,
                {"color": "#6e7781", "linewidth": 1.2, "linestyle": "--"},
            )
        )

    def decorate(ax: Any) -> None:
        ax.axhline(np.finfo(np.float64).eps, color="#bf8700", linewidth=1, linestyle=":")
        ax.text(
            demo.iterations,
            np.finfo(np.float64).eps * 1.6,
            "machine epsilon 2.2e−16 ",
            ha="right",
            va="bottom",
            fontsize=9,
            color="#9a6700",
        )
        ax.set_ylim(floor / 3, 3.0)
        ticks = [floor, 1e-16, 1e-13, 1e-10, 1e-7, 1e-4, 1e-1]
        ax.set_yticks(ticks, ["0"] + [f"1e{int(np.log10(t))}" for t in ticks[1:]])
        ax.set_xlim(0, demo.iterations)

    return plots.line_plot(
        series,
        xlabel="iteration",
        ylabel="max |step − (−lr · dL/dW)|",
        log_y=True,
        height=2.9,
        label="difference between each update and gradient descent",
        ax_callback=decorate,
        legend_above=True,
    )


def _training_plot(demo: SeedDemonstration) -> str:
    runs = [
        (
            f"post's update (+ lr · a_prev.T @ dC_dw), {demo.seed_run.hidden} hidden",
            demo.seed_run,
            {"color": "#1a7f37", "linewidth": 2.2},
        ),
        (
            "same with the textbook's minus sign",
            demo.sign_flipped_run,
            {"color": "#cf222e", "linewidth": 1.8},
        ),
        (
            "textbook − lr · dC_dw2 for weight2 (runs by coincidence)",
            demo.textbook_weight2_run,
            {"color": "#bf8700", "linewidth": 1.6, "linestyle": "--"},
        ),
        (
            f"post's update, {demo.alt_seed_run.hidden} hidden units",
            demo.alt_seed_run,
            {"color": "#8250df", "linewidth": 1.2, "linestyle": ":"},
        ),
    ]
    series = [(name, np.arange(len(run.losses)), run.losses, style) for name, run, style in runs]
    return plots.line_plot(
        series,
        xlabel="iteration",
        ylabel="loss  L = ½ Σ (a2 − y)²",
        log_y=True,
        height=2.9,
        label="training curves of the update rules",
        legend_above=True,
    )


def _is_demonstration(demo: Any) -> bool:
    """Whether ``demo`` is a :class:`~gradcheck.demo.seed.SeedDemonstration`, importing nothing.

    A SeedDemonstration can only exist once its module is loaded, so the class is looked
    up where it already is instead of importing the demonstration code into the report.
    """
    module = sys.modules.get("gradcheck.demo.seed")
    return module is not None and isinstance(demo, module.SeedDemonstration)


#: The post the seed page answers, cited by its address (a link to follow, nothing loaded).
POST_URL = "https://ai.stackexchange.com/questions/26920"


def render_seed_report(
    demo: SeedDemonstration, *, title: str | None = None, back_link: str | None = "index.html"
) -> str:
    """The HTML text of :func:`gradcheck.report.write_seed_report`.

    ``back_link`` defaults to the index ``gradcheck run`` writes beside the page; None
    leaves the link out (a seed page written on its own).
    """
    if not _is_demonstration(demo):
        raise ParameterTypeError(
            f"demo: expected the SeedDemonstration of gradcheck.demo.seed.demonstrate(), not "
            f"{type(demo).__name__}"
        )
    shapes = {name: "×".join(str(s) for s in shape) for name, shape in demo.shapes.items()}
    seed_rel = _worst(demo.seed_vs_gradient_descent_relative)
    textbook_rel = demo.textbook_vs_gradient_descent_relative.get("weight2")
    gradient = {name: np.asarray(value) for name, value in demo.analytic_gradient.items()}
    return render(
        "seed.html.j2",
        title=title or "Why a_prev.T @ delta, and why +?",
        post_url=POST_URL,
        demo=demo,
        claims=list(demo.claims.items()),
        passed=demo.passed,
        seed_code=SEED_CODE,
        seed_output=_vector(demo.seed_run.final_a2),
        learned=demo.seed_run.learned_xor,
        shapes=shapes,
        step_plot=_step_plot(demo),
        training_plot=_training_plot(demo),
        seed_abs=_worst(demo.seed_vs_gradient_descent),
        seed_rel=seed_rel,
        textbook_abs=_worst(demo.textbook_vs_gradient_descent),
        textbook_min_rel=float(np.nanmin(textbook_rel)) if textbook_rel is not None else None,
        central_error=demo.central_difference_error,
        gradient=gradient,
        central=demo.central_difference,
        corrected=demo.corrected_loop.source,
        corrected_output=demo.corrected_loop.output,
        runs={
            "seed": demo.seed_run,
            "flipped": demo.sign_flipped_run,
            "hybrid": demo.textbook_weight2_run,
            "alt": demo.alt_seed_run,
        },
        vector=_vector,
        back_link=back_link,
        env=environment(
            **{
                "seed": "np.random.seed(1) (RandomState(1))",
                "dtype": "float64",
                "iterations": demo.iterations,
            }
        ),
    )
