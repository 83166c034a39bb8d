"""The ``gradcheck`` command: check a gradient, a training step, or run the main job.

``gradcheck check LOSS GRAD --params FILE.npz``, ``gradcheck update STEP LOSS
--params FILE.npz --lr LR`` and ``gradcheck run``.  Exit status 0 when
everything checked is right, 1 when something is wrong (or no verdict was
possible), 2 for usage errors, unreadable files, targets that cannot be
imported and user functions that raise (one line on stderr; ``--verbose``
adds the traceback).  The options shared with the pytest plugin come from
:mod:`gradcheck.options`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from gradcheck.errors import GradcheckError, GradientStructureError
from gradcheck.options import OPTIONS, check_kwargs, parse_option
from gradcheck.results import FAILING_LIMIT

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

_EXIT_TEXT = """exit status:
  0  everything checked is right
  1  something is wrong (the report says what), or no verdict was possible
  2  usage error, unreadable file, a target that cannot be imported, or a
     user function that raised (one line on stderr; --verbose for the traceback)
  130, 143  interrupted by Ctrl-C (SIGINT) or SIGTERM; worker processes are stopped
with --json, stdout holds one JSON object in every case ("error": type, message)"""

_TARGETS_TEXT = """targets:
  A target names a function as package.module:function or path/to/file.py:function
  (the function part may be dotted: module:Model.loss).  Parameters are read from
  a .npz whose keys are parameter names or paths (weight1, layers[1].weight; the
  nesting is rebuilt), a .npy holding one array, or MODULE:FUNCTION / FILE.py:FUNCTION
  called with no arguments to return them."""


def _typed(name: str) -> Callable[[str], Any]:
    """An argparse ``type`` that validates through the shared option definition."""

    def parse(text: str) -> Any:
        try:
            return parse_option(name, text, label="--" + name)
        except GradcheckError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = name
    return parse


def _positive_lr(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--lr: expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"--lr: must be finite and > 0, got {text!r}")
    return value


def _add_shared(parser: argparse.ArgumentParser, names: Sequence[str], *, html_help: str) -> None:
    group = parser.add_argument_group("check options (shared with the pytest plugin)")
    for name in names:
        option = OPTIONS[name]
        help_text = html_help if name == "html" else option.help
        if option.default is not None and not option.is_flag:
            help_text += f" (default: {option.default})"
        if option.is_flag:
            group.add_argument(option.cli_flag, action="store_true", help=help_text)
        else:
            group.add_argument(
                option.cli_flag,
                type=_typed(name),
                metavar=option.metavar,
                default=option.default,
                help=help_text,
            )


def _add_output(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("output")
    group.add_argument(
        "--json",
        action="store_true",
        help="print the result as JSON on stdout (nothing else goes to stdout)",
    )
    group.add_argument(
        "--verbose",
        action="store_true",
        help="print tracebacks of errors, progress, and every failing element of a check "
        f"(up to {FAILING_LIMIT})",
    )


#: ``--params``, the same for every command that checks a user's function
_PARAMS_HELP = "the parameters: FILE.npz, FILE.npy or MODULE:FUNCTION returning them"
_REPORT_HELP = "write a self-contained HTML report to PATH"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``gradcheck`` command: one sub-parser per command."""
    parser = _Parser(
        prog="gradcheck",
        description=(
            "Verify hand-written gradients against independent references (complex step,\n"
            "central differences, Richardson extrapolation, SciPy) with a tolerance derived\n"
            "from floating-point error, and say what is wrong when they differ."
        ),
        epilog=(
            "Run 'gradcheck COMMAND --help' for a command's options.\n\n"
            f"{_EXIT_TEXT}\n\n"
            "examples:\n"
            "  gradcheck run\n"
            "  gradcheck check model.py:loss model.py:grad --params params.npz\n"
            "  gradcheck update train.py:step train.py:loss --params params.npz --lr 0.1\n"
            "  gradcheck vjp layer.py:forward layer.py:backward --inputs layer.py:inputs\n"
            "  gradcheck check --help"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from gradcheck import __version__

    parser.add_argument("--version", action="version", version=f"gradcheck {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_check_command(commands)
    _add_update_command(commands)
    _add_run_command(commands)
    for name in DERIVATIVE_COMMANDS:
        _add_derivative_command(commands, name)
    return parser


def _add_command(
    commands: Any, name: str, *, help: str, description: str, epilog: str
) -> argparse.ArgumentParser:
    """A sub-parser whose description and epilog keep their line breaks."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help=help,
        description=description,
        epilog=epilog,
    )
    return parser


def _add_target(parser: argparse.ArgumentParser, dest: str, metavar: str, role: str) -> None:
    parser.add_argument(dest, metavar=metavar, help=f"{role}: MODULE:FUNCTION or FILE.py:FUNCTION")


def _add_check_command(commands: Any) -> None:
    check = _add_command(
        commands,
        "check",
        help="check a gradient function against its loss",
        description=(
            "Check TARGET_GRAD, a function params -> gradient, against references computed\n"
            "from TARGET_LOSS, a function params -> float, at the parameters in --params.\n"
            "Every element is compared (or --elements per parameter); the report names the\n"
            "parameter, the element, both values, the tolerance and the likely bug."
        ),
        epilog=(
            f"{_TARGETS_TEXT}\n\n{_EXIT_TEXT}\n\n"
            "example:\n"
            "  gradcheck check examples/custom_gradient.py:loss \\\n"
            "      examples/custom_gradient.py:grad --params params.npz --seed 0"
        ),
    )
    _add_target(check, "loss", "TARGET_LOSS", "the loss")
    _add_target(check, "grad", "TARGET_GRAD", "the gradient")
    check.add_argument("--params", required=True, metavar="FILE", help=_PARAMS_HELP)
    _add_shared(check, list(OPTIONS), html_help=_REPORT_HELP)
    _add_output(check)
    check.set_defaults(handler=_run_check)


def _add_update_command(commands: Any) -> None:
    update = _add_command(
        commands,
        "update",
        help="check that a training step is gradient descent",
        description=(
            "Check that TARGET_STEP, a function params -> new params taking one training\n"
            "step with learning rate --lr, is gradient descent on TARGET_LOSS:\n"
            "new = params - lr * dL/dparams.\n"
            "The implied gradient (params - new) / lr is checked like any gradient; when it\n"
            "is wrong the report says how the step differs: ascent (the sign), a constant\n"
            "factor, a parameter left unchanged, the update term of the wrong shape, or\n"
            "another direction altogether."
        ),
        epilog=(
            f"{_TARGETS_TEXT}\n\n{_EXIT_TEXT}\n\n"
            "example:\n"
            "  gradcheck update examples/seed_update.py:working_step \\\n"
            "      examples/seed_update.py:loss \\\n"
            "      --params examples/seed_update.py:initial_weights --lr 1"
        ),
    )
    _add_target(update, "step", "TARGET_STEP", "the step")
    _add_target(update, "loss", "TARGET_LOSS", "the loss")
    update.add_argument("--params", required=True, metavar="FILE", help=_PARAMS_HELP)
    update.add_argument(
        "--lr",
        required=True,
        type=_positive_lr,
        metavar="LR",
        help="the learning rate the step uses",
    )
    _add_shared(update, list(OPTIONS), html_help=_REPORT_HELP)
    _add_output(update)
    update.set_defaults(handler=_run_update)


def _add_run_command(commands: Any) -> None:
    run = _add_command(
        commands,
        "run",
        help="the main job: the seed question and a battery of random networks",
        description=(
            "The main job.  First the seed question (why does W += lr * a_prev.T @ dC_dw\n"
            "train the post's network while the textbook's W -= lr * dC_dw does not?)\n"
            "answered with numbers; then backprop of a battery of random networks (shapes,\n"
            "activations, losses, float32 and float64) checked against every reference.\n"
            "Prints a summary table and writes an HTML report (reports/index.html)."
        ),
        epilog=(
            f"{_EXIT_TEXT}\n\n"
            "examples:\n"
            "  gradcheck run\n"
            "  gradcheck run --quick --no-html\n"
            "  gradcheck run --json > run.json"
        ),
    )
    _add_shared(run, ["seed", "quiet"], html_help="")
    reports = run.add_argument_group("report")
    reports.add_argument(
        "--html",
        metavar="DIR",
        default="reports",
        help="directory of the HTML report (default: reports)",
    )
    reports.add_argument("--no-html", action="store_true", help="write no HTML report")
    reports.add_argument(
        "--every-page",
        action="store_true",
        help="a page for every check, not only for each network's auto check "
        "and the failing ones (slower: about a second per page)",
    )
    run.add_argument(
        "--quick",
        action="store_true",
        help="skip the slowest reference (SciPy differentiate) and the training runs",
    )
    _add_output(run)
    run.set_defaults(handler=_run_battery)


@dataclass(frozen=True)
class _DerivativeCommand:
    """One derivative check on the command line: its targets, where the point comes from."""

    check: str  # the function's name in gradcheck.runner.derivatives.<module>
    module: str
    targets: tuple[tuple[str, str], tuple[str, str]]  # (dest, role) of the two functions
    point: str  # "inputs" (a tuple/dict of f's arguments) or "params" (grad's x)
    help: str
    description: str


_INPUTS_HELP = (
    "the inputs: MODULE:FUNCTION or FILE.py:FUNCTION returning the tuple (or dict) of the "
    "function's arguments, or FILE.npz / FILE.npy"
)
_ARGS_HELP = "extra arguments: MODULE:FUNCTION returning the tuple passed after x (SciPy's args)"
_WRT_HELP = (
    "the differentiated inputs, comma-separated: positions (0,2) or, for a dict of inputs, "
    "keywords (x,w); by default every floating-point array, the others held fixed. Extra "
    "arguments of the function belong in --inputs (held fixed unless named here)"
)


def _wrt(text: str) -> Any:
    """``--wrt 0,2`` -> ``(0, 2)``, ``--wrt x`` -> ``"x"``: what ``wrt=`` takes."""
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise argparse.ArgumentTypeError(f"an empty input name in {text!r}")
    keys = tuple(int(item) if re.fullmatch(r"[+-]?\d+", item) else item for item in items)
    return keys[0] if len(keys) == 1 else keys


#: the derivative checks, one sub-command each (``gradcheck vjp``, ...)
DERIVATIVE_COMMANDS: dict[str, _DerivativeCommand] = {
    "vjp": _DerivativeCommand(
        "check_vjp",
        "vjp",
        (("f", "the function f(*inputs)"), ("derivative", "the VJP vjp(cotangent, *inputs)")),
        "inputs",
        "check a vector-Jacobian product (a layer's backward pass)",
        "Check TARGET_VJP, vjp(cotangent, *inputs) -> one gradient per input, against\n"
        "TARGET_F, f(*inputs) -> array, at the inputs --inputs returns.",
    ),
    "jvp": _DerivativeCommand(
        "check_jvp",
        "jacobian",
        (("f", "the function f(*inputs)"), ("derivative", "the JVP jvp(tangents, *inputs)")),
        "inputs",
        "check a Jacobian-vector product",
        "Check TARGET_JVP, jvp(tangents, *inputs) -> the output tangent, against\n"
        "TARGET_F, f(*inputs) -> array, at the inputs --inputs returns.",
    ),
    "jacobian": _DerivativeCommand(
        "check_jacobian",
        "jacobian",
        (("f", "the function f(*inputs)"), ("derivative", "the Jacobian jacobian(*inputs)")),
        "inputs",
        "check a hand-written Jacobian",
        "Check TARGET_JACOBIAN, jacobian(*inputs) -> one array of shape\n"
        "out.shape + input.shape per input, against TARGET_F at the inputs --inputs returns.",
    ),
    "hessian": _DerivativeCommand(
        "check_hessian",
        "second_order",
        (("f", "the gradient grad(x, *args)"), ("derivative", "the Hessian hess(x, *args)")),
        "params",
        "check a Hessian (SciPy's hess=) against its gradient",
        "Check TARGET_HESS, hess(x, *args) -> (n, n) array, against the derivative of\n"
        "TARGET_GRAD, grad(x, *args), at x from --params (and --args).",
    ),
    "hvp": _DerivativeCommand(
        "check_hvp",
        "second_order",
        (("f", "the gradient grad(x, *args)"), ("derivative", "the HVP hvp(x, v, *args)")),
        "params",
        "check a Hessian-vector product (SciPy's hessp=) against its gradient",
        "Check TARGET_HVP, hvp(x, v, *args) -> H @ v, against the derivative of\n"
        "TARGET_GRAD, grad(x, *args), at x from --params (and --args).",
    ),
}


def _add_derivative_command(commands: Any, name: str) -> None:
    command = DERIVATIVE_COMMANDS[name]
    (f_dest, f_role), (d_dest, d_role) = command.targets
    f_meta = "TARGET_GRAD" if command.point == "params" else "TARGET_F"
    d_meta = "TARGET_" + ("HESS" if name == "hessian" else name.upper())
    point = f"--{command.point} FILE:inputs" if command.point == "inputs" else "--params FILE:x"
    parser = _add_command(
        commands,
        name,
        help=command.help,
        description=command.description,
        epilog=(
            f"{_TARGETS_TEXT}\n\n{_EXIT_TEXT}\n\n"
            f"example:\n  gradcheck {name} FILE.py:{f_dest if f_meta == 'TARGET_F' else 'grad'} "
            f"FILE.py:{name} {point}"
        ),
    )
    _add_target(parser, f_dest, f_meta, f_role)
    _add_target(parser, d_dest, d_meta, d_role)
    if command.point == "inputs":
        parser.add_argument("--inputs", required=True, metavar="FILE", help=_INPUTS_HELP)
        parser.add_argument("--wrt", type=_wrt, metavar="INPUTS", help=_WRT_HELP)
    else:
        parser.add_argument("--params", required=True, metavar="FILE", help=_PARAMS_HELP)
        parser.add_argument("--args", metavar="FILE", help=_ARGS_HELP)
    _add_shared(parser, list(OPTIONS), html_help=_REPORT_HELP)
    _add_output(parser)
    parser.set_defaults(handler=_run_derivative, derivative_command=name)


# -- helpers ----------------------------------------------------------------------------------


def _values(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, OPTIONS[name].dest, None) for name in OPTIONS}


def _load_params(spec: str, role: str = "--params") -> Any:
    from gradcheck.targets import load_params, load_target

    if spec.endswith((".npz", ".npy")) or ":" not in spec:
        return load_params(spec)
    factory = load_target(spec, role=role)
    try:
        return factory()
    except Exception as exc:  # noqa: BLE001 - the user's function; one line, chained
        from gradcheck.errors import UserFunctionError

        raise UserFunctionError(role, f"calling it to get the {role[2:]}", exc) from exc


def _emit(result: Any, args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, allow_nan=False))
    elif args.quiet:
        print(getattr(result, "headline", None) or str(result).splitlines()[0])
    else:
        print(result)


def _note(args: argparse.Namespace, text: str) -> None:
    """A line for the user that must not pollute --json output."""
    print(text, file=sys.stderr if args.json else sys.stdout)


def _structure_failure(args: argparse.Namespace, exc: GradientStructureError) -> int:
    message = f"gradcheck: FAILED: {_one_line(exc)}"
    if args.json:
        error = _error_object(exc, _one_line(exc))
        print(json.dumps({"passed": False, "status": "failed", "error": error}, indent=2))
    else:
        print(message)
    return EXIT_FAILED


def _run_check(args: argparse.Namespace) -> int:
    from gradcheck.runner.check import check
    from gradcheck.targets import load_target

    loss = load_target(args.loss, role="loss")
    grad = load_target(args.grad, role="grad")
    params = _load_params(args.params)
    try:
        result = check(
            loss,
            grad,
            params,
            progress=False if args.quiet else None,
            **check_kwargs(_values(args)),
        )
    except GradientStructureError as exc:
        return _structure_failure(args, exc)
    if args.verbose and not (args.json or args.quiet):
        print(result.text(elements=None))  # every failing element, up to FAILING_LIMIT
    else:
        _emit(result, args)
    if args.html:
        from gradcheck.report import write_check_report
        from gradcheck.runner.evidence import with_evidence

        # The step-size curves and the agreement of every reference: extra loss evaluations.
        result = with_evidence(result, loss, params)
        path = write_check_report(result, args.html)
        _note(args, f"report: {path}")
    return EXIT_OK if result.passed else EXIT_FAILED


def _run_update(args: argparse.Namespace) -> int:
    from gradcheck.runner.update import check_update
    from gradcheck.targets import load_target

    step = load_target(args.step, role="step")
    loss = load_target(args.loss, role="loss")
    params = _load_params(args.params)
    try:
        result = check_update(step, loss, params, args.lr, **check_kwargs(_values(args)))
    except GradientStructureError as exc:
        return _structure_failure(args, exc)
    _emit(result, args)
    if args.html:
        if result.check is None:
            _note(args, "no HTML report: the step could not be evaluated")
        else:
            from gradcheck.report import write_check_report

            path = write_check_report(result.check, args.html, title="update step: " + args.step)
            _note(args, f"report: {path}")
    return EXIT_OK if result.passed else EXIT_FAILED


def _run_derivative(args: argparse.Namespace) -> int:
    import importlib

    from gradcheck.targets import load_target

    command = DERIVATIVE_COMMANDS[args.derivative_command]
    check = getattr(
        importlib.import_module(f"gradcheck.runner.derivatives.{command.module}"), command.check
    )
    (f_dest, _), (d_dest, _) = command.targets
    f = load_target(getattr(args, f_dest), role=f_dest if command.point == "inputs" else "grad")
    derivative = load_target(getattr(args, d_dest), role=args.derivative_command)
    extra: dict[str, Any] = {}
    if command.point == "inputs":
        point = _load_params(args.inputs, role="--inputs")
        if args.wrt is not None:
            extra["wrt"] = args.wrt
    else:
        point = _load_params(args.params)
        if args.args:
            extra["args"] = _load_params(args.args, role="--args")
    try:
        result = check(f, derivative, point, **extra, **check_kwargs(_values(args)))
    except GradientStructureError as exc:
        return _structure_failure(args, exc)
    if args.verbose and not (args.json or args.quiet):
        print(result.text(elements=None))
    else:
        _emit(result, args)
    if args.html:
        from gradcheck.report import write_check_report

        title = f"{args.derivative_command}: {getattr(args, d_dest)}"
        path = write_check_report(result, args.html, title=title)
        _note(args, f"report: {path}")
    return EXIT_OK if result.passed else EXIT_FAILED


def _slug(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z]+", "-", text).strip("-").lower() or "check"


#: Elements each check page of ``gradcheck run`` sweeps and compares with every reference:
#: the worst one only, as a plot panel costs about 0.15 s a page and the run has 14 pages.
RUN_EVIDENCE_SAMPLES = 1


def write_run_report(battery: Any, directory: str | Path, *, every_page: bool = False) -> Path:
    """Write the main job's HTML: the seed page, check pages, and the index linking them.

    Every check is listed in the index; a page of its own (about a second of
    plotting each) is written for each network's first reference (``auto``) and for
    every failing check, or for all checks with ``every_page``.  Each page carries
    evidence on :data:`RUN_EVIDENCE_SAMPLES` elements (step sweep, every reference).
    """
    from gradcheck.report import IndexEntry, write_check_report, write_index, write_seed_report
    from gradcheck.runner.evidence import with_evidence

    def evidenced(result: Any, loss: Any, params: Any) -> Any:
        if loss is None or params is None:  # a battery built without its problems
            return result
        return with_evidence(result, loss, params, samples=RUN_EVIDENCE_SAMPLES)

    root = Path(directory)
    entries = []
    used: set[str] = set()
    first = battery.methods[0] if battery.methods else None
    for case_result in battery.cases:
        case = case_result.case.name
        for method, result in case_result.checks.items():
            href = None
            if every_page or method == first or not result.passed:
                name = _slug(f"{case}-{method}")
                while name in used:
                    name += "-x"
                used.add(name)
                href = f"checks/{name}.html"
                write_check_report(
                    evidenced(result, case_result.loss, case_result.params),
                    root / href,
                    title=f"{case}: backprop against {method}",
                    back_link="../index.html",
                )
            entries.append(
                IndexEntry(
                    label=f"{case} / {method}",
                    result=result,
                    href=href,
                    expect_pass=True,
                    description=f"backprop of {case} against {method}",
                )
            )
    for bug in battery.bugs:
        name = _slug(f"bug-{bug.bug}")
        href = f"checks/{name}.html"
        write_check_report(
            evidenced(bug.result, bug.loss, bug.params),
            root / href,
            title=f"Planted bug: {bug.bug}",
            back_link="../index.html",
        )
        entries.append(
            IndexEntry(
                label=f"planted bug / {bug.bug}",
                result=bug.result,
                href=href,
                expect_pass=False,
                description=f"{bug.case} with a planted bug: {bug.bug}",
            )
        )
    seed_href = None
    if battery.seed is not None:
        write_seed_report(battery.seed, root / "seed.html")
        seed_href = "seed.html"
    return write_index(
        entries,
        root / "index.html",
        seed_href=seed_href,
        seed_demo=battery.seed,
        seconds=battery.seconds,
    )


def _run_battery(args: argparse.Namespace) -> int:
    from gradcheck.demo.battery import run_battery

    chatty = args.verbose and not args.json

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    battery = run_battery(rng=args.seed, quick=args.quick, progress=progress if chatty else None)
    _emit(battery, args)
    if not args.no_html:
        path = write_run_report(battery, args.html, every_page=args.every_page)
        _note(args, f"report: {path}")
    return EXIT_OK if battery.passed else EXIT_FAILED


def _one_line(exc: BaseException) -> str:
    from gradcheck.results import printable  # control characters escaped, as in names

    return printable(" ".join(str(exc).split()) or type(exc).__name__)


#: Exit status of a run stopped by SIGINT (Ctrl-C) or SIGTERM: 128 + the signal's number.
EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_TERMINATED = 128 + signal.SIGTERM


class _UsageError(Exception):
    """A command line argparse rejects, as an exception (argparse would print and exit)."""


class _Terminated(BaseException):
    """SIGTERM, raised where the program is, so that cleanups run (workers, temporary files)."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (and a JSON object with ``--json``)."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{message} (see '{self.prog} --help')")


def _error_object(exc: BaseException, message: str) -> dict[str, Any]:
    name = {"_UsageError": "UsageError", "_Terminated": "Terminated"}.get(
        type(exc).__name__, type(exc).__name__
    )
    return {"type": name, "message": message}


def _exit(status: int, exc: BaseException, message: str, args: _Invocation) -> int:
    """Say why the command stops, on one line of stderr (and as JSON with ``--json``)."""
    stopped = isinstance(exc, (KeyboardInterrupt, _Terminated))
    if args.verbose and not stopped and not isinstance(exc, _UsageError):
        traceback.print_exception(exc)
    print(f"{args.prog}: {message if stopped else 'error: ' + message}", file=sys.stderr)
    if args.json:
        document: dict[str, Any] = {}
        try:  # what the command printed before it stopped (a result) stays, with the error
            document = json.loads(args.output.getvalue() or "{}")
        except ValueError:
            pass
        if not isinstance(document, dict):
            document = {"output": document}
        document["error"] = _error_object(exc, message)
        args.output.seek(0)
        args.output.truncate()
        print(json.dumps(document, indent=2, allow_nan=False), file=args.output)
    return status


class _Invocation:
    """What ``main`` knows of the command line before argparse has read it."""

    def __init__(self, argv: list[str]) -> None:
        options = argv[: argv.index("--")] if "--" in argv else argv
        self.json = "--json" in options
        self.verbose = "--verbose" in options
        command = next((word for word in options if not word.startswith("-")), None)
        self.prog = f"gradcheck {command}" if command in ("check", "update", "run") else "gradcheck"
        #: With --json, stdout is held here and printed at the end: one JSON object, always.
        self.output = io.StringIO()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gradcheck`` command; returns the exit status.

    Every exit is 0, 1 or 2 (130 for Ctrl-C, 143 for SIGTERM) with at most one line on
    stderr (``--verbose`` adds tracebacks); with ``--json`` stdout holds exactly one JSON
    object, whose ``error`` (``type``, ``message``) says why when the command could not
    finish.
    """
    words = list(sys.argv[1:] if argv is None else argv)
    invocation = _Invocation(words)
    with _terminate_raises():
        if not invocation.json:
            return _main(words, invocation)
        try:
            with contextlib.redirect_stdout(invocation.output):
                return _main(words, invocation)
        finally:
            with contextlib.suppress(BrokenPipeError):  # a reader that stopped early
                sys.stdout.write(invocation.output.getvalue())
                sys.stdout.flush()


def _main(words: list[str], invocation: _Invocation) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(words)
        if args.command is None:
            usage = " ".join(parser.format_usage().split())  # "usage: gradcheck ... COMMAND ..."
            raise _UsageError(f"no command given ({usage}; see 'gradcheck --help')")
        return int(args.handler(args))
    except (_UsageError, GradcheckError, OSError) as exc:
        return _exit(EXIT_USAGE, exc, _one_line(exc), invocation)
    except KeyboardInterrupt as exc:
        return _exit(EXIT_INTERRUPTED, exc, "interrupted", invocation)
    except _Terminated as exc:
        return _exit(EXIT_TERMINATED, exc, "terminated", invocation)
    except Exception as exc:  # noqa: BLE001 - a bug in gradcheck or an odd object: one line
        hint = "" if invocation.verbose else "; --verbose shows the traceback"
        message = f"{type(exc).__name__}: {_one_line(exc)} (unexpected{hint})"
        return _exit(EXIT_USAGE, exc, message, invocation)


@contextlib.contextmanager
def _terminate_raises() -> Iterator[None]:
    """SIGTERM raises :class:`_Terminated` during the command (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminated(number: int, frame: Any) -> None:
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
