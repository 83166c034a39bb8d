"""The ``gradcheck`` command, run for real: ``python -m gradcheck ...`` in a subprocess.

Cost: about 1 s per invocation (interpreter start and imports); ~15 invocations,
plus one ``gradcheck run --quick`` (~15 s with its HTML report on an idle machine).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gradcheck.cli import build_parser
from gradcheck.options import OPTIONS, method_choices

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "custom_gradient.py"
SEED = ROOT / "examples" / "seed_update.py"


def gradcheck_cmd(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "gradcheck", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def params_file(tmp_path: Path) -> Path:
    from gradcheck.targets import save_params

    rng = np.random.default_rng(0)
    params = {"weight": rng.normal(scale=0.5, size=(4, 3)), "bias": rng.normal(scale=0.1, size=3)}
    return save_params(tmp_path / "params.npz", params)


def test_help_is_complete(tmp_path: Path) -> None:
    top = gradcheck_cmd("--help", cwd=tmp_path)
    assert top.returncode == 0
    for word in ("check", "update", "run", "exit status", "examples:", "2  usage error"):
        assert word in top.stdout
    for command, required in (
        ("check", ["TARGET_LOSS", "TARGET_GRAD", "--params"]),
        ("update", ["TARGET_STEP", "TARGET_LOSS", "--params", "--lr"]),
        ("run", ["--quick", "--no-html", "--html DIR"]),
    ):
        result = gradcheck_cmd(command, "--help", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        text = result.stdout
        assert "exit status:" in text and "example" in text
        for word in [*required, "--json", "--verbose", "--seed", "--quiet"]:
            assert word in text, (command, word)
        if command != "run":
            for option in OPTIONS.values():
                assert option.cli_flag in text, (command, option.cli_flag)


def test_no_command_is_a_usage_error(tmp_path: Path) -> None:
    result = gradcheck_cmd(cwd=tmp_path)
    assert result.returncode == 2 and "usage:" in result.stderr


def test_the_planted_bug_exits_1_and_the_fix_exits_0(tmp_path: Path, params_file: Path) -> None:
    buggy = gradcheck_cmd(
        "check", f"{EXAMPLE}:loss", f"{EXAMPLE}:grad", "--params", str(params_file), cwd=tmp_path
    )
    assert buggy.returncode == 1, buggy.stderr
    assert buggy.stdout.startswith("gradcheck: FAILED")
    assert "FAIL weight[" in buggy.stdout and "ok   bias[" in buggy.stdout
    assert "tolerance" in buggy.stdout
    fixed = gradcheck_cmd(
        "check",
        f"{EXAMPLE}:loss",
        f"{EXAMPLE}:grad_fixed",
        "--params",
        f"{EXAMPLE}:params",
        "--quiet",
        cwd=tmp_path,
    )
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout.strip().splitlines() == [fixed.stdout.strip()]  # --quiet: one line
    assert fixed.stdout.startswith("gradcheck: PASSED")


def test_json_and_html(tmp_path: Path, params_file: Path) -> None:
    report = tmp_path / "out" / "check.html"
    result = gradcheck_cmd(
        "check",
        f"{EXAMPLE}:loss",
        f"{EXAMPLE}:grad",
        "--params",
        str(params_file),
        "--json",
        "--seed",
        "3",
        "--method",
        "central",
        "--html",
        str(report),
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr
    data = json.loads(result.stdout)  # nothing but JSON on stdout
    assert data["passed"] is False and data["seed"] == 3
    assert [p["name"] for p in data["parameters"]] == ["weight", "bias"]
    assert [p["passed"] for p in data["parameters"]] == [False, True]
    assert report.is_file() and "<html" in report.read_text().lower()
    assert str(report) in result.stderr


def test_user_tolerances_reach_the_check(tmp_path: Path, params_file: Path) -> None:
    result = gradcheck_cmd(
        "check",
        f"{EXAMPLE}:loss",
        f"{EXAMPLE}:grad",
        "--params",
        str(params_file),
        "--atol",
        "1",
        "--rtol",
        "0",
        "--json",
        cwd=tmp_path,
    )
    data = json.loads(result.stdout)
    assert result.returncode == 0 and data["passed"]  # an absurd atol hides the bug: user's call
    assert "user: atol=1" in data["parameters"][0]["tolerance_source"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["check", "no_such_module_xyz:loss", "math:sin", "--params", "p.npz"],
            "no module named 'no_such_module_xyz'",
        ),
        (
            ["check", f"{EXAMPLE}:loss", f"{EXAMPLE}:nope", "--params", f"{EXAMPLE}:params"],
            "has no attribute 'nope'",
        ),
        (
            ["check", f"{EXAMPLE}:loss", f"{EXAMPLE}:grad", "--params", "missing.npz"],
            "does not exist",
        ),
        (
            [
                "check",
                f"{EXAMPLE}:loss",
                f"{EXAMPLE}:grad",
                "--params",
                f"{EXAMPLE}:params",
                "--method",
                "magic",
            ],
            "--method: 'magic' is not one of",
        ),
        (
            [
                "check",
                f"{EXAMPLE}:loss",
                f"{EXAMPLE}:grad",
                "--params",
                f"{EXAMPLE}:params",
                "--atol",
                "-1",
            ],
            "--atol: must be finite and >= 0",
        ),
        (
            [
                "update",
                f"{SEED}:working_step",
                f"{SEED}:loss",
                "--params",
                f"{SEED}:initial_weights",
                "--lr",
                "0",
            ],
            "--lr: must be finite and > 0",
        ),
    ],
)
def test_usage_errors_exit_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = gradcheck_cmd(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(error_lines) == 1


def test_verbose_shows_the_traceback(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("import numpy\nraise ImportError('needs torch')\n")
    quiet = gradcheck_cmd(
        "check", f"{broken}:loss", f"{broken}:grad", "--params", "x.npz", cwd=tmp_path
    )
    assert quiet.returncode == 2 and "Traceback" not in quiet.stderr
    assert "raised ImportError: needs torch" in quiet.stderr
    loud = gradcheck_cmd(
        "check", f"{broken}:loss", f"{broken}:grad", "--params", "x.npz", "--verbose", cwd=tmp_path
    )
    assert loud.returncode == 2 and "Traceback" in loud.stderr


def test_module_targets_resolve_from_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "mymodel.py").write_text(
        "import numpy as np\n"
        "def loss(w):\n    return np.sum(np.sin(w))\n"
        "def grad(w):\n    return np.cos(w)\n"
        "def wrong_shape(w):\n    return np.cos(w)[:2]\n"
    )
    np.save(tmp_path / "w.npy", np.linspace(0.0, 1.0, 3))
    ok = gradcheck_cmd("check", "mymodel:loss", "mymodel:grad", "--params", "w.npy", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    shape = gradcheck_cmd(
        "check", "mymodel:loss", "mymodel:wrong_shape", "--params", "w.npy", cwd=tmp_path
    )
    assert shape.returncode == 1 and "has shape (2,)" in shape.stdout


def test_update_command_answers_the_seed_question(tmp_path: Path) -> None:
    common = ["--params", f"{SEED}:initial_weights", "--lr", "1"]
    working = gradcheck_cmd("update", f"{SEED}:working_step", f"{SEED}:loss", *common, cwd=tmp_path)
    assert working.returncode == 0, working.stderr
    assert "gradient descent" in working.stdout.splitlines()[0]
    textbook = gradcheck_cmd(
        "update", f"{SEED}:textbook_step", f"{SEED}:loss", *common, "--json", cwd=tmp_path
    )
    assert textbook.returncode == 1
    data = json.loads(textbook.stdout)
    assert data["kind"] == "shape" and "weight1" in data["explanation"]


def test_options_are_defined_once() -> None:
    """The CLI's flags come from gradcheck.options, and the method list from gradcheck.check."""
    from gradcheck.references.registry import METHODS

    assert method_choices() == tuple(METHODS)
    parser = build_parser()
    check = parser._subparsers._group_actions[0].choices["check"]  # type: ignore[union-attr]
    flags = {flag for action in check._actions for flag in action.option_strings}
    assert {option.cli_flag for option in OPTIONS.values()} <= flags


def test_run_quick_prints_the_table_and_writes_the_report(tmp_path: Path) -> None:
    result = gradcheck_cmd("run", "--quick", "--html", str(tmp_path / "reports"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "ALL VERIFIED" in result.stdout
    index = tmp_path / "reports" / "index.html"
    assert index.is_file() and (tmp_path / "reports" / "seed.html").is_file()
    assert str(index) in result.stdout
    pages = list((tmp_path / "reports" / "checks").glob("*.html"))
    assert pages and all(page.name in index.read_text() for page in pages)
    # one page per network (all passed) and one per planted bug (all caught)
    assert all("-auto" in page.name or page.name.startswith("bug-") for page in pages)
    assert any(page.name.startswith("bug-") for page in pages)
    assert "caught " in result.stdout and "MISSED" not in result.stdout


def test_mode_and_budget_options_reach_the_check() -> None:
    base = [
        "check",
        f"{EXAMPLE}:loss",
        f"{EXAMPLE}:grad_fixed",
        "--params",
        f"{EXAMPLE}:params",
        "--json",
    ]
    out = gradcheck_cmd(*base, "--mode", "directional", cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["mode"] == "directional"
    out = gradcheck_cmd(*base, "--budget", "2.5", cwd=ROOT)
    assert out.returncode == 0 and json.loads(out.stdout)["mode"] == "full"
    bad = gradcheck_cmd(*base, "--budget", "soon", cwd=ROOT)
    assert bad.returncode == 2 and "--budget" in bad.stderr


def test_workers_option_runs_the_check_in_processes() -> None:
    base = [
        "check",
        f"{EXAMPLE}:loss",
        f"{EXAMPLE}:grad_fixed",
        "--params",
        f"{EXAMPLE}:params",
        "--json",
        "--mode",
        "full",
        "--method",
        "central",
    ]
    serial = gradcheck_cmd(*base, cwd=ROOT)
    pooled = gradcheck_cmd(*base, "--workers", "2", cwd=ROOT)
    assert serial.returncode == 0 and pooled.returncode == 0, pooled.stderr
    assert json.loads(pooled.stdout)["passed"] is True
    wrong = gradcheck_cmd(
        "check",
        f"{EXAMPLE}:loss",
        f"{EXAMPLE}:grad",
        "--params",
        f"{EXAMPLE}:params",
        "--workers",
        "2",
        cwd=ROOT,
    )
    assert wrong.returncode == 1
    bad = gradcheck_cmd(*base, "--workers", "0", cwd=ROOT)
    assert bad.returncode == 2 and "--workers" in bad.stderr


LAYERS = ROOT / "examples" / "layer_targets.py"


def test_vjp_command_passes_a_correct_backward_and_names_the_wrong_input(tmp_path: Path) -> None:
    target = f"{LAYERS}:"
    ok = gradcheck_cmd(
        "vjp", target + "forward", target + "backward", "--inputs", target + "inputs", cwd=tmp_path
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "gradcheck: PASSED" in ok.stdout
    bad = gradcheck_cmd(
        "vjp",
        target + "forward",
        target + "backward_sign_flip",
        "--inputs",
        target + "inputs",
        "--html",
        "vjp.html",
        cwd=tmp_path,
    )
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "FAIL inputs[1][" in bad.stdout  # dw, the second input, is named
    assert (tmp_path / "vjp.html").exists()


@pytest.mark.parametrize(
    ("command", "targets", "point", "status"),
    [
        ("jvp", ("forward", "jvp"), ("--inputs", "inputs"), 0),
        ("jacobian", ("np.tanh", "tanh_jacobian"), ("--inputs", "tanh_inputs"), 0),
        ("hessian", ("grad", "hess"), ("--params", "x0"), 0),
        ("hessian", ("grad", "hess_no_regulariser"), ("--params", "x0"), 1),
        ("hvp", ("grad", "hvp"), ("--params", "x0"), 0),
    ],
)
def test_derivative_commands(
    tmp_path: Path,
    command: str,
    targets: tuple[str, str],
    point: tuple[str, str],
    status: int,
) -> None:
    extra = ["--args", f"{LAYERS}:args"] if point[0] == "--params" else []
    result = gradcheck_cmd(
        command,
        *(f"{LAYERS}:{t}" for t in targets),
        point[0],
        f"{LAYERS}:{point[1]}",
        *extra,
        "--json",
        cwd=tmp_path,
    )
    assert result.returncode == status, result.stdout + result.stderr
    assert json.loads(result.stdout)["passed"] is (status == 0)


def test_derivative_command_with_a_bad_target_is_a_usage_error(tmp_path: Path) -> None:
    result = gradcheck_cmd(
        "vjp", f"{LAYERS}:forward", f"{LAYERS}:nope", "--inputs", f"{LAYERS}:inputs", cwd=tmp_path
    )
    assert result.returncode == 2
    assert "vjp target" in result.stderr and "'nope'" in result.stderr
    missing = gradcheck_cmd("vjp", f"{LAYERS}:forward", f"{LAYERS}:backward", cwd=tmp_path)
    assert missing.returncode == 2 and "--inputs" in missing.stderr


def test_vjp_command_wrt_picks_the_differentiated_inputs(tmp_path: Path) -> None:
    target = f"{LAYERS}:"
    base = ("vjp", target + "forward", target + "backward_sign_flip", "--inputs", target + "inputs")
    # dw is the wrong one: held fixed, the check passes; differentiated alone, it fails.
    without_w = gradcheck_cmd(*base, "--wrt", "0,2", "--json", cwd=tmp_path)
    assert without_w.returncode == 0, without_w.stdout + without_w.stderr
    document = json.loads(without_w.stdout)
    assert document["passed"] is True
    assert [p["name"] for p in document["parameters"]] == ["inputs[0]", "inputs[2]"]
    only_w = gradcheck_cmd(*base, "--wrt", "1", cwd=tmp_path)
    assert only_w.returncode == 1, only_w.stdout + only_w.stderr
    assert "FAIL inputs[1][" in only_w.stdout


@pytest.mark.parametrize(
    ("wrt", "message"),
    [("5", "wrt: inputs[5] does not exist"), ("0,,1", "--wrt: an empty input name")],
)
def test_vjp_command_bad_wrt_is_a_usage_error(
    wrt: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from gradcheck.cli import main

    target = f"{LAYERS}:"
    inputs = ("--inputs", target + "inputs")
    status = main(["vjp", target + "forward", target + "backward", *inputs, "--wrt", wrt])
    assert status == 2
    assert message in capsys.readouterr().err
