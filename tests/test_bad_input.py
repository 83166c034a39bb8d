"""Bad input, all in one place (issue 12): every one is refused by one of gradcheck's own errors.

Each case names what is wrong and where: a gradient of strings, options of the wrong type,
parameter trees nested too deep or containing themselves, checks of zero elements, parameter
files with a bad member (an object array, a corrupted CRC, a truncated header, a header that
declares more data than the file holds), parameter paths nested too deep.  Functions that
change their input are named a mutation (not randomness, not "the grad function raised
KeyError"), and names with control characters are printed escaped.  The ``gradcheck``
command is run for real on the same files: one line and exit 2, or with ``--json`` one JSON
object holding the error.

Cost: ~2 s in process; the command-line cases ~1 s each (interpreter start and imports).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import gradcheck
from gradcheck.errors import (
    GradcheckError,
    GradientStructureError,
    InvalidParameterError,
    ParameterTypeError,
)
from gradcheck.problem.space import MAX_DEPTH, ParameterSpace
from gradcheck.results import printable
from gradcheck.targets import TargetError, load_params

W = {"w": np.array([0.3, -1.2, 2.0]), "b": np.array([0.5])}


def loss(p: Any) -> float:
    return float(np.sum(np.sin(p["w"]) ** 2) + 3.0 * p["b"][0])


def grad(p: Any) -> Any:
    return {"w": 2 * np.sin(p["w"]) * np.cos(p["w"]), "b": np.array([3.0])}


def nested(depth: int, *, kind: type = dict) -> Any:
    """An array ``depth`` containers deep."""
    node: Any = np.ones(2)
    for _ in range(depth):
        node = {"a": node} if kind is dict else [node]
    return node


def self_containing_dict() -> Any:
    params: dict[str, Any] = {"w": np.ones(2)}
    params["again"] = params
    return params


def self_containing_list() -> Any:
    params: list[Any] = [1.0, 2.0]
    params.append(params)
    return params


# -- the Python API -------------------------------------------------------------------------

#: name -> (a call of gradcheck.check with one bad input, the error class, what the message says)
API_CASES: dict[str, tuple[Callable[[], Any], type[GradcheckError], str]] = {
    "gradient of strings": (
        lambda: gradcheck.check(loss, lambda p: {"w": np.array(["a"] * 3), "b": 1.0}, W),
        ParameterTypeError,
        r"gradient 'w': has dtype <U1; expected numbers",
    ),
    "gradient of Python objects": (
        lambda: gradcheck.check(
            loss, lambda p: {"w": np.array([object()] * 3, dtype=object), "b": 1.0}, W
        ),
        ParameterTypeError,
        r"gradient 'w': has dtype object",
    ),
    "method as an array": (
        lambda: gradcheck.check(loss, grad, W, method=np.array(["auto", "central"])),
        ParameterTypeError,
        r"method: expected one of .* got ndarray",
    ),
    "negative seed": (
        lambda: gradcheck.check(loss, grad, W, rng=-1),
        InvalidParameterError,
        r"rng: a seed must be >= 0, got -1",
    ),
    "params nested 2000 dicts deep": (
        lambda: gradcheck.check(loss, grad, nested(2000)),
        InvalidParameterError,
        rf"'a\.a\.a.*….*a\.a' is nested more than {MAX_DEPTH} levels deep",
    ),
    "params nested 2000 lists deep": (
        lambda: gradcheck.check(loss, grad, nested(2000, kind=list)),
        InvalidParameterError,
        rf"nested more than {MAX_DEPTH} levels deep",
    ),
    "params containing themselves": (
        lambda: gradcheck.check(loss, grad, self_containing_dict()),
        InvalidParameterError,
        r"'again' contains itself \(a reference cycle\)",
    ),
    "a list of numbers containing itself": (
        lambda: gradcheck.check(loss, grad, self_containing_list()),
        InvalidParameterError,
        r"'\[2\]' contains itself",
    ),
    "gradient nested 2000 deep": (
        lambda: gradcheck.check(loss, lambda p: nested(2000), W),
        GradientStructureError,
        rf"gradient: .*nested more than {MAX_DEPTH} levels deep",
    ),
    "gradient containing itself": (
        lambda: gradcheck.check(loss, lambda p: self_containing_dict(), W),
        GradientStructureError,
        r"gradient: .*contains itself",
    ),
    "an empty array": (
        lambda: gradcheck.check(loss, grad, np.array([])),
        InvalidParameterError,
        r"no elements to check .*'params' \(0,\)",
    ),
    "an empty list": (
        lambda: gradcheck.check(loss, grad, []),
        InvalidParameterError,
        r"no elements to check",
    ),
    "a parameter of zero elements": (
        lambda: gradcheck.check(loss, grad, {"w": np.zeros(0)}),
        InvalidParameterError,
        r"no elements to check .*'w' \(0,\)",
    ),
    "parameters of zero elements each": (
        lambda: gradcheck.check(loss, grad, {"w": np.zeros((0, 3)), "b": np.zeros(0)}),
        InvalidParameterError,
        r"no elements to check .*'w' \(0, 3\), 'b' \(0,\)",
    ),
    "an empty mapping": (
        lambda: gradcheck.check(loss, grad, {}),
        InvalidParameterError,
        r"parameters: the mapping is empty",
    ),
    "update of zero elements": (
        lambda: gradcheck.check_update(lambda p: p, loss, {"w": np.zeros(0)}, 0.1),
        InvalidParameterError,
        r"no elements to check",
    ),
}


@pytest.mark.parametrize("case", list(API_CASES))
def test_bad_input_raises_gradchecks_own_error_naming_the_problem(case: str) -> None:
    call, error, message = API_CASES[case]
    with pytest.raises(error, match=message) as caught:
        call()
    assert isinstance(caught.value, GradcheckError)
    assert isinstance(caught.value, (ValueError, TypeError))  # and the matching built-in


def test_trees_up_to_the_depth_limit_are_accepted() -> None:
    space = ParameterSpace(nested(MAX_DEPTH))
    assert space.size == 2 and space.names == ("a." * (MAX_DEPTH - 1) + "a",)
    assert ParameterSpace(nested(MAX_DEPTH, kind=list)).size == 2
    with pytest.raises(InvalidParameterError, match="nested more than"):
        ParameterSpace(nested(MAX_DEPTH + 1))


def test_the_same_array_twice_is_not_a_cycle() -> None:
    shared = np.ones(2)
    space = ParameterSpace({"a": shared, "b": [shared, shared]})
    assert space.names == ("a", "b[0]", "b[1]") and space.size == 6


# -- parameter files ------------------------------------------------------------------------


def _zip_member(path: Path, name: str, raw: bytes) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, raw)
    path.write_bytes(buffer.getvalue())
    return path


def _npy_header(shape: tuple[int, ...], length: int = 118) -> bytes:
    header = f"{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}"
    header = header.ljust(length - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode()


def object_npz(tmp: Path) -> Path:
    path = tmp / "objects.npz"
    np.savez(path, w=np.array([1.0, "a"], dtype=object))
    return path


def corrupted_crc_npz(tmp: Path) -> Path:
    path = tmp / "crc.npz"
    np.savez(path, w=np.arange(100.0))
    raw = bytearray(path.read_bytes())
    raw[raw.find(np.float64(50.0).tobytes())] ^= 0xFF  # a data byte: the CRC no longer matches
    path.write_bytes(bytes(raw))
    return path


def truncated_header_npz(tmp: Path) -> Path:
    return _zip_member(tmp / "truncated.npz", "w.npy", _npy_header((3,))[:40])


def huge_shape_npz(tmp: Path) -> Path:
    # Declares 8 TB; numpy would try to allocate it before finding the data missing.
    return _zip_member(tmp / "huge.npz", "w.npy", _npy_header((100_000, 100_000, 100)) + bytes(64))


def huge_shape_npy(tmp: Path) -> Path:
    path = tmp / "huge.npy"
    path.write_bytes(_npy_header((100_000, 100_000, 100)) + bytes(64))
    return path


def not_an_array_npz(tmp: Path) -> Path:
    return _zip_member(tmp / "text.npz", "notes.txt", b"hello")


def deep_keys_npz(tmp: Path) -> Path:
    path = tmp / "deep.npz"
    np.savez(path, **{"a" + ".a" * 3000: np.ones(2)})
    return path


def not_a_zip(tmp: Path) -> Path:
    path = tmp / "garbage.npz"
    path.write_bytes(b"PK\x03\x04" + bytes(100))
    return path


#: name -> (a function writing the bad file into a directory, what the message says)
BAD_FILES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "object array": (object_npz, r"cannot read member 'w': it holds Python objects"),
    "corrupted CRC": (corrupted_crc_npz, r"cannot read member 'w': BadZipFile: Bad CRC-32"),
    "truncated header": (truncated_header_npz, r"cannot read member 'w': ValueError: EOF"),
    "header declaring (1e5, 1e5, 100)": (
        huge_shape_npz,
        r"cannot read member 'w': its header declares shape \(100000, 100000, 100\) of "
        r"float64 \(8,000,000,000,000 bytes\) but only 64 bytes of data follow",
    ),
    "bare .npy declaring (1e5, 1e5, 100)": (huge_shape_npy, r"cannot read it: its header declares"),
    "a member that is not an array": (not_an_array_npz, r"member 'notes.txt': it is not a .npy"),
    "keys nested 3000 deep": (
        deep_keys_npz,
        rf"parameter path 'a\.a\..*….*' nests more than {MAX_DEPTH} levels deep",
    ),
    "a broken zip": (not_a_zip, r"cannot read it as .npz/.npy: BadZipFile"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_parameter_file_is_one_target_error(case: str, tmp_path: Path) -> None:
    write, message = BAD_FILES[case]
    path = write(tmp_path)
    with pytest.raises(TargetError, match=message) as caught:
        load_params(path)
    text = str(caught.value)
    assert "\n" not in text and len(text) < 400, text
    assert str(path.name) in text


def test_a_good_file_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "good.npz"
    np.savez(path, **{"layers[0].weight": np.ones((2, 2)), "layers[1].weight": np.zeros(3)})
    params = load_params(path)
    assert [w["weight"].shape for w in params["layers"]] == [(2, 2), (3,)]


# -- functions that change their input: a mutation, named as such ---------------------------


def replacing_w(p: Any) -> float:
    value = loss(p)
    p["w"] = p["w"] * 1.0  # rebinds the key: gradcheck's array is no longer in the tree
    return value


def replacing_w_with_other_values(p: Any) -> float:
    value = loss(p)
    p["w"] = p["w"] + 1.0  # the next call would see other parameters
    return value


def deleting_b(p: Any) -> float:
    value = loss(p)
    del p["b"]  # the gradient, called next on the same tree, would raise KeyError
    return value


def adding_a_key(p: Any) -> float:
    value = loss(p)
    p["extra"] = np.zeros(1)
    return value


@pytest.mark.parametrize(
    "mutating", [replacing_w, replacing_w_with_other_values, deleting_b, adding_a_key]
)
def test_a_loss_that_changes_the_tree_is_a_mutation_not_randomness(mutating: Any) -> None:
    result = gradcheck.check(mutating, grad, W)
    assert result.status == "hazard" and not result.passed, str(result)
    assert [h.kind for h in result.hazards] == ["mutation"], str(result)
    assert all(p.passed for p in result.parameters)  # the gradient itself is right
    assert "KeyError" not in str(result)


def test_a_gradient_that_deletes_a_key_is_a_mutation() -> None:
    def deleting_grad(p: Any) -> Any:
        g = grad(p)
        del p["w"]
        return g

    result = gradcheck.check(loss, deleting_grad, W)
    assert result.status == "hazard", str(result)
    assert any(h.kind == "mutation" and "gradient" in h.message for h in result.hazards)


def starts_deleting(after: int) -> Callable[[Any], float]:
    calls = {"n": 0}

    def late(p: Any) -> float:
        calls["n"] += 1
        value = loss(p)
        if calls["n"] > after:
            del p["b"]
        return value

    return late


@pytest.mark.parametrize("after", [1, 3, 10])
def test_a_loss_that_starts_deleting_during_the_check_is_inconclusive(after: int) -> None:
    # Every call gets a whole tree (the structure is checked before each), so nothing raises
    # KeyError; the change is found and named, and no verdict is given.
    result = gradcheck.check(starts_deleting(after), grad, W)
    assert result.status == "inconclusive", str(result)
    assert any(h.kind == "mutation" and h.blocking for h in result.hazards)
    assert not any(h.kind == "nondeterministic" for h in result.hazards)


def test_the_space_renews_a_changed_tree_and_says_what_changed() -> None:
    space = ParameterSpace({"w": np.ones(2), "layers": [{"b": np.zeros(1)}]})
    tree = space.tree
    assert space.tree is tree and not space.restore()  # unchanged: the same tree, no change
    tree["w"] = tree["w"].copy()
    del tree["layers"][0]["b"]
    renewed = space.tree
    assert renewed is not tree and renewed["w"] is space.arrays[0]
    assert renewed["layers"][0]["b"] is space.arrays[1]
    assert space.restore() and not space.restore()  # reported once
    assert space.last_change is not None and "in its parameter tree" in space.last_change
    tree = space.tree
    tree["layers"].append(np.ones(1))
    assert space.restore() and "length of a list" in str(space.last_change)
    space.tree["w"][0] = 5.0
    assert space.restore() and space.last_change == "wrote into its input arrays"
    assert space.arrays[0][0] == 1.0


def test_a_pure_loss_on_longdouble_parameters_has_no_mutation_hazard() -> None:
    # longdouble has padding bytes that arithmetic leaves undefined: values are compared.
    params = {"w": np.array([0.3, -1.2, 2.0], dtype=np.longdouble)}
    result = gradcheck.check(
        lambda p: np.sum(np.sin(p["w"]) ** 2),
        lambda p: {"w": 2 * np.sin(p["w"]) * np.cos(p["w"])},
        params,
    )
    assert not any(h.kind == "mutation" for h in result.hazards), str(result)
    assert result.status not in ("hazard", "inconclusive"), str(result)


# -- names with control characters are printed escaped --------------------------------------

TRICKY = "w\r  ok   w"  # on a terminal, "\r" would move back and print "  ok" over "FAIL"


def _only_printable(text: str) -> bool:
    return all(line.isprintable() for line in text.split("\n"))


def test_printable_escapes_control_characters_as_repr_does() -> None:
    assert printable(TRICKY) == repr(TRICKY)[1:-1] == "w\\r  ok   w"
    assert printable("a\x1b[2Kb\tc\u2028") == "a\\x1b[2Kb\\tc\\u2028"
    assert printable("layers[1].weight µ") == "layers[1].weight µ"  # printable text as is


def test_a_control_character_cannot_overwrite_the_fail_marker() -> None:
    params = {TRICKY: np.array([0.3, -1.2]), "b\x1b[2K": np.array([1.0])}

    def tricky_loss(p: Any) -> float:
        return float(np.sum(p[TRICKY] ** 2) + p["b\x1b[2K"][0])

    def wrong_grad(p: Any) -> Any:
        return {TRICKY: 3 * p[TRICKY], "b\x1b[2K": np.array([1.0])}

    result = gradcheck.check(tricky_loss, wrong_grad, params)
    text = str(result)
    assert result.status == "failed" and _only_printable(text), repr(text)
    assert "FAIL w\\r  ok   w[" in text
    assert result.parameters[0].name == "w\\r  ok   w"
    assert result.parameters[1].name == "b\\x1b[2K"


def test_hazard_messages_name_parameters_escaped() -> None:
    calls = {"n": 0}

    def drifting_grad(p: Any) -> Any:
        calls["n"] += 1
        return {TRICKY: 2 * p[TRICKY] + 1e-3 * calls["n"]}

    result = gradcheck.check(
        lambda p: float(np.sum(p[TRICKY] ** 2)), drifting_grad, {TRICKY: np.ones(2)}
    )
    assert result.status == "inconclusive"
    messages = " ".join(h.message for h in result.hazards)
    assert "w\\r  ok   w" in messages and _only_printable(messages)
    assert _only_printable(str(result))


# -- the command line: one line and exit 2, or one JSON object holding the error --------------

ROOT = Path(__file__).resolve().parent.parent

USER_CODE = """
import numpy as np

def loss(p):
    return float(np.sum(np.sin(p["w"]) ** 2))

def grad(p):
    return {"w": 2 * np.sin(p["w"]) * np.cos(p["w"])}

def grad_raises(p):
    raise RuntimeError("boom")

def grad_of_strings(p):
    return {"w": np.array(["a"] * p["w"].size)}

def grad_missing_w(p):
    return {"v": p["w"]}

def nan_loss(p):
    return float("nan")

def array_loss(p):
    return p["w"]

def params():
    return {"w": np.array([0.3, -1.2, 2.0])}

def params_none():
    return None

def params_raise():
    raise ValueError("no parameters today")
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the user's code, a good parameter file and every bad one."""
    where = tmp_path_factory.mktemp("cli")
    (where / "user.py").write_text(textwrap.dedent(USER_CODE))
    np.savez(where / "good.npz", w=np.array([0.3, -1.2, 2.0]))
    for write, _ in BAD_FILES.values():
        write(where)
    return where


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
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


CHECK = ("check", "user.py:loss", "user.py:grad", "--params")

#: name -> (the command line, the error's type, what its message says)
CLI_CASES: dict[str, tuple[tuple[str, ...], str, str]] = {
    "the gradient raises": (
        ("check", "user.py:loss", "user.py:grad_raises", "--params", "good.npz"),
        "UserFunctionError",
        "the grad function raised RuntimeError: boom",
    ),
    "a gradient of strings": (
        ("check", "user.py:loss", "user.py:grad_of_strings", "--params", "good.npz"),
        "ParameterTypeError",
        "gradient 'w': has dtype <U1",
    ),
    "the loss returns NaN": (
        ("check", "user.py:nan_loss", "user.py:grad", "--params", "good.npz"),
        "InvalidLossError",
        "loss: returned nan",
    ),
    "the loss returns an array": (
        ("check", "user.py:array_loss", "user.py:grad", "--params", "good.npz"),
        "InvalidLossError",
        "the loss must be one scalar",
    ),
    "a missing file": ((*CHECK, "missing.npz"), "TargetError", "'missing.npz' does not exist"),
    "a missing target": (
        ("check", "user.py:nothing", "user.py:grad", "--params", "good.npz"),
        "TargetError",
        "has no attribute 'nothing'",
    ),
    "a bad option": (
        (*CHECK, "good.npz", "--method", "nope"),
        "UsageError",
        "'nope' is not one of auto",
    ),
    "a missing argument": (("check", "user.py:loss"), "UsageError", "arguments are required"),
    "a bad learning rate": (
        ("update", "user.py:grad", "user.py:loss", "--params", "good.npz", "--lr", "-1"),
        "UsageError",
        "--lr: must be finite and > 0",
    ),
    "a --params function that raises": (
        (*CHECK, "user.py:params_raise"),
        "UserFunctionError",
        "the --params function raised ValueError: no parameters today",
    ),
    "a --params function that returns None": (
        (*CHECK, "user.py:params_none"),
        "ParameterTypeError",
        "parameter 'params': has dtype object",
    ),
    **{
        f"a file with {case}": ((*CHECK, file), "TargetError", message)
        for case, file, message in [
            ("an object array", "objects.npz", "it holds Python objects"),
            ("a corrupted CRC", "crc.npz", "Bad CRC-32"),
            ("a truncated header", "truncated.npz", "EOF: reading array header"),
            ("a (1e5, 1e5, 100) header", "huge.npz", "8,000,000,000,000 bytes"),
            ("keys nested 3000 deep", "deep.npz", "nests more than 100 levels"),
        ]
    },
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_the_command_exits_2_with_one_line_and_one_json_object(case: str, workdir: Path) -> None:
    args, error_type, message = CLI_CASES[case]
    out = run_cli(*args, "--json", cwd=workdir)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert len(out.stderr.splitlines()) == 1 and "Traceback" not in out.stderr, out.stderr
    assert message in out.stderr
    document = json.loads(out.stdout)  # exactly one JSON object, nothing else on stdout
    assert document == {"error": {"type": error_type, "message": document["error"]["message"]}}
    assert message in document["error"]["message"]


def test_without_json_the_error_is_one_line_and_verbose_adds_the_traceback(workdir: Path) -> None:
    plain = run_cli(*CHECK, "huge.npz", cwd=workdir)
    assert plain.returncode == 2 and plain.stdout == ""
    assert plain.stderr.splitlines() == [
        "gradcheck check: error: --params: 'huge.npz': cannot read member 'w': its header "
        "declares shape (100000, 100000, 100) of float64 (8,000,000,000,000 bytes) but only 64 "
        "bytes of data follow"
    ]
    verbose = run_cli(*CHECK, "huge.npz", "--verbose", cwd=workdir)
    assert verbose.returncode == 2 and "Traceback" in verbose.stderr
    bare = run_cli(cwd=workdir)
    assert bare.returncode == 2 and len(bare.stderr.splitlines()) == 1, bare.stderr


def test_a_gradient_of_the_wrong_structure_is_exit_1_with_the_error_in_the_json(
    workdir: Path,
) -> None:
    out = run_cli(
        "check", "user.py:loss", "user.py:grad_missing_w", "--params", "good.npz", "--json",
        cwd=workdir,
    )  # fmt: skip
    assert out.returncode == 1, out.stderr
    document = json.loads(out.stdout)
    assert document["passed"] is False and document["status"] == "failed"
    assert document["error"]["type"] == "GradientStructureError"
    assert "parameter 'w' is missing from the gradient" in document["error"]["message"]


def test_a_report_that_cannot_be_written_keeps_the_result_in_the_one_json_object(
    workdir: Path,
) -> None:
    blocked = workdir / "not-a-directory"
    blocked.write_text("a file where the report's directory should be")
    out = run_cli(*CHECK, "good.npz", "--json", "--html", str(blocked / "r.html"), cwd=workdir)
    assert out.returncode == 2 and len(out.stderr.splitlines()) == 1, out.stderr
    document = json.loads(out.stdout)
    assert document["passed"] is True  # the check ran; the report could not be written
    assert document["error"]["type"] in ("FileExistsError", "NotADirectoryError")


def test_a_budget_too_large_for_a_float_is_one_clear_error() -> None:
    with pytest.raises(gradcheck.InvalidParameterError, match="^budget: must be positive"):
        gradcheck.check(lambda w: float(np.sum(w**2)), lambda w: 2 * w, np.ones(3), budget=10**400)


def test_a_loss_that_replaces_a_key_is_named_for_it() -> None:
    def loss(p):
        value = float(np.sum(p["w"] ** 2))
        p["w"] = p["w"] * 1.0  # rebinds the key: a mutation of the tree, not randomness
        return value

    result = gradcheck.check(loss, lambda p: {"w": 2 * p["w"]}, {"w": np.ones(3)})
    assert result.status == "hazard"
    assert "replaced 'w'" in result.hazards[0].message
