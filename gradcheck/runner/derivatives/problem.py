"""One derivative check's problem: ``f``, its inputs and outputs, the cotangent, the options.

:class:`DerivativeProblem` is built once per check (:meth:`DerivativeProblem.build`):
it validates the inputs and options, calls ``f`` once on private copies to learn its
outputs, and draws the cotangent ``u`` from the check's randomness.  :meth:`run` is
the scalar check of ``<u, f>`` against a gradient (:mod:`.projection`), and
:meth:`finish` labels the result with its kind, inputs and outputs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.errors import GradcheckError, InvalidParameterError, UserFunctionError
from gradcheck.options import CheckOptions
from gradcheck.problem.calls import require_callable
from gradcheck.problem.space import ParameterSpace
from gradcheck.results import CheckResult, JacobianEntry, format_index
from gradcheck.runner.check import check
from gradcheck.runner.derivatives.columns import VectorFunction
from gradcheck.runner.derivatives.layout import Inputs, Outputs
from gradcheck.runner.derivatives.projection import Capture, Projection
from gradcheck.runner.phases import as_generator

__all__ = [
    "AUTO_DIRECTIONAL_NOTE",
    "DIRECTIONAL_ABOVE",
    "DerivativeProblem",
    "SCALAR_GRADIENT",
    "derivative_options",
    "directional_by_default",
    "unwrapped",
]

#: What the scalar check's "gradient" is, per kind: its hazards speak of a loss and a
#: gradient, which a reader of a VJP check must map to ``<u, f>`` and this.
SCALAR_GRADIENT = {
    "vjp": "vjp(u)",
    "jacobian": "u . jacobian",
    "jvp": "J^T u from one jvp per input element",
    "hessian": "u . hess",
    "hvp": "H u from one hvp per element",
}


def derivative_options(
    options: Mapping[str, Any], function: str, *, takes_args: bool = False
) -> CheckOptions:
    """The options of a derivative check: those of :func:`gradcheck.check`, validated once.

    Raises
    ------
    InvalidParameterError
        ``vectorized=True`` (``f`` is called one point at a time), or ``args``
        where every argument of ``f`` is already in ``inputs``.
    """
    settings = CheckOptions.from_keywords(options, function=function)
    if settings.vectorized:
        raise InvalidParameterError(
            f"vectorized: {function} calls f one point at a time; vectorized=True is for "
            "scalar losses of gradcheck.check"
        )
    if settings.args and not takes_args:
        raise InvalidParameterError(
            f"args: {function} passes every argument of f in inputs (those that are not "
            "differentiated are held fixed); put the extra arguments there"
        )
    return settings


@contextlib.contextmanager
def unwrapped() -> Iterator[None]:
    """gradcheck's own errors raised inside a wrapped gradient reach the caller as they are.

    The scalar check reports any exception of its gradient as the gradient's; ours
    (a VJP returning the wrong shape, named) are already the right error.
    """
    try:
        yield
    except UserFunctionError as exc:
        if isinstance(exc.original, GradcheckError):
            raise exc.original from None
        raise


#: Above this many differentiated input elements, ``mode="auto"`` checks a VJP or a JVP
#: with directional probes: 10 to 20 evaluations of ``f`` whatever the size (a VJP's: 10,
#: and 2 per group of inputs probed together), with a stated guarantee, where the full
#: check costs ``n`` (complex step) to ``2n`` (central).  Below it the full check costs at
#: most a few times the probes and names every wrong element.
DIRECTIONAL_ABOVE = 64
#: The result's note when that rule chose the mode.
AUTO_DIRECTIONAL_NOTE = (
    "mode directional (auto): a {kind} check of {n:,} input elements by directional probes "
    "(10 to 20 evaluations of f; a full check needs ~{n:,}); mode='full' compares every element"
)


def directional_by_default(settings: CheckOptions, n_elements: int) -> bool:
    """Whether ``mode="auto"`` means directional probes for this VJP or JVP check."""
    return (
        settings.mode == "auto"
        and settings.elements is None
        and not settings.user_tolerance
        and n_elements > DIRECTIONAL_ABOVE
    )


@dataclass
class DerivativeProblem:
    """What a derivative check knows before it checks.

    Attributes
    ----------
    f : callable
        The user's function (``role`` in messages).
    inputs : Inputs
        Names, differentiated and fixed inputs.
    space : ParameterSpace
        The differentiated inputs, copied (never the user's arrays).
    outputs : Outputs
        ``f``'s value at the inputs.
    cotangent : ndarray
        ``u ~ N(0, I)`` over the outputs, drawn from the check's randomness.
    settings : CheckOptions
        The validated options.
    rng : Generator or int
        What the scalar check is given as ``rng`` (the seed, or the caller's Generator).
    seed : int or None
        The seed, to reproduce the check.
    role : str
        ``f``'s name in messages (``f``; ``grad`` for second-order checks).
    first : ndarray or None
        ``f``'s flat value at the inputs, from the call that learned the outputs; the
        scalar check's first evaluation of ``<u, f>`` there reuses it (None when ``f``
        wrote into its inputs: the scalar check then calls it, and reports that).
    """

    f: Callable[..., Any]
    inputs: Inputs
    space: ParameterSpace
    outputs: Outputs
    cotangent: NDArray[np.float64]
    settings: CheckOptions
    rng: Any
    seed: int | None
    role: str = "f"
    first: NDArray[np.float64] | None = None

    @classmethod
    def build(
        cls,
        f: Any,
        inputs: Any,
        wrt: Any,
        settings: CheckOptions,
        *,
        role: str = "f",
        prefix: str = "out",
        signature: str = "f(*inputs)",
        names: tuple[str, ...] = (),
    ) -> DerivativeProblem:
        """Validate, copy the inputs, call ``f`` once, draw the cotangent."""
        require_callable(f, role, signature)
        layout = Inputs(inputs, wrt, names=names)
        space = ParameterSpace(layout.tree)
        with unwrapped():
            value = layout.call(f, role, f"evaluating {role} at the given inputs", space.tree)
        # A function that writes into its inputs is the scalar check's hazard: it is called
        # again there (not reused) to be seen doing it.
        wrote = space.restore()
        outputs = Outputs(value, role=role, prefix=prefix)
        generator, seed = as_generator(settings.rng)
        cotangent = generator.spawn(1)[0].standard_normal(outputs.size)
        rng = generator if seed is None else seed
        first = None if wrote else outputs.value0
        return cls(f, layout, space, outputs, cotangent, settings, rng, seed, role, first)

    def at_point(self) -> tuple[tuple[NDArray[Any], ...], NDArray[Any]] | None:
        """``(point, value)`` for :class:`Projection`: ``f``'s value at the inputs, known."""
        if self.first is None:
            return None
        x0 = self.space.x0
        point = tuple(
            x0[leaf.slice].reshape(leaf.shape).astype(leaf.dtype, copy=False)
            for leaf in self.space.leaves
        )
        return point, self.first

    # -- the scalar check -------------------------------------------------------------
    def run(
        self, gradient: Callable[[Any], Any], *, capture: Capture | None = None, **overrides: Any
    ) -> CheckResult:
        """:func:`gradcheck.check` of ``<u, f>`` against ``gradient`` (``J^T u``)."""
        loss = Projection(
            self.f,
            self.inputs,
            self.outputs,
            self.cotangent,
            role=self.role,
            capture=capture,
            first=self.at_point(),
        )
        keywords = {**self.settings.keywords(), "rng": self.rng, "args": (), **overrides}
        with unwrapped():
            return check(loss, gradient, self.inputs.tree, **keywords)

    def function(self) -> VectorFunction:
        """``f`` over the flat vector of the differentiated inputs, for column references."""
        return VectorFunction(self.f, self.inputs, self.outputs, self.space, self.role)

    def element_name(self, flat_index: int) -> str:
        """``inputs[0][2, 1]``: a differentiated input's element by its flat index."""
        leaf, index = self.space.leaf_index(int(flat_index))
        return leaf.name + format_index(index) if leaf.shape else leaf.name

    def finish(
        self,
        result: CheckResult,
        kind: str,
        *,
        entries: tuple[JacobianEntry, ...] = (),
        notes: tuple[str, ...] = (),
        **fields: Any,
    ) -> CheckResult:
        """``result`` labelled with its kind, inputs, outputs, wrong entries and notes."""
        outputs = tuple(
            f"{name} {shape}"
            for name, shape in zip(self.outputs.names, self.outputs.shapes, strict=True)
        )
        held = self.inputs.fixed_names
        fixed = (f"held fixed: {', '.join(held)}",) if held else ()
        gradient = SCALAR_GRADIENT.get(kind, "J^T u")
        hazards = tuple(
            replace(
                h,
                message=f"{h.message} (in this {kind} check the loss is <u, {self.role}> "
                f"and the gradient {gradient})",
            )
            if ("loss" in h.message or "gradient" in h.message) and h.kind != "asymmetric"
            else h
            for h in result.hazards
        )
        return replace(
            result,
            hazards=hazards,
            kind=kind,
            inputs=self.inputs.differentiated_names,
            outputs=outputs,
            entries=entries,
            notes=tuple(result.notes) + fixed + notes,
            **fields,
        )

    def cotangent_note(self, transpose: str) -> str:
        """How the check reduces to a scalar, and what one random cotangent guarantees."""
        return (
            f"checked as the gradient of <u, {self.role}> with u ~ N(0, I) over "
            f"{self.outputs.describe()} ({transpose} is that gradient): a wrong column e_i of "
            f"the Jacobian {transpose} implies passes only if |<u, e_i>| <= tolerance, which "
            "for Gaussian u has probability <= 0.8 x tolerance / |e_i|"
        )
