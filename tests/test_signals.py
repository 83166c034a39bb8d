"""Files and processes under interruption and scale (issue 12, item 2), tested for real.

* Report files: SIGTERM and SIGINT sent to a process that writes big reports in a loop leave
  no temporary file and no half-written report; new files honour the umask and a replaced
  file keeps its mode; pytest report pages get unique names (a readable slug and a hash of
  the whole id), so no check overwrites another's page.
* Worker processes: Ctrl-C (SIGINT to the whole process group, as a terminal sends it) during
  ``gradcheck check --workers 2`` exits 130 with one line and leaves no worker behind; SIGTERM
  exits 143 the same way; ``workers`` above the CPUs available is capped with a warning and a
  note in the result.

Cost: ~10 s (a dozen interpreters started, each interrupted within a second or two).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import gradcheck
import gradcheck.plugin
from gradcheck.errors import GradcheckWarning
from gradcheck.plugin import page_name
from gradcheck.report._render import atomic_write
from gradcheck.runner.evaluation import available_cpus

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="signals and /proc: Linux")


def python_env(*extra: Path) -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(ROOT), *map(str, extra), env.get("PYTHONPATH")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env


def default_sigint() -> None:
    """Ctrl-C's default disposition in a child: a shell that starts a job in the background
    (``pytest &``, some CI runners) has it ignored, and children inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(autouse=True)
def _sigint_raises_keyboard_interrupt():  # type: ignore[no-untyped-def]
    """Python turns SIGINT into KeyboardInterrupt unless it started with SIGINT ignored
    (a background job): these tests need the usual behaviour, whoever started them."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def wait_for(condition: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


# -- atomic writes under SIGTERM and SIGINT --------------------------------------------------

WRITER = """
import sys
from pathlib import Path
from gradcheck.report._render import atomic_write

target = Path(sys.argv[1])
body = "x" * (8 * 2**20)  # 8 MB: each write (and its fsync) takes a while
n = 0
while True:
    n += 1
    atomic_write(target, f"<html>{n}\\n{body}\\n</html>\\n")
    if n == 1:
        (target.parent / "started").write_text("")
"""


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.2])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_no_temporary_file_survives_a_signal_during_atomic_writes(
    signum: int, delay: float, tmp_path: Path
) -> None:
    report = tmp_path / "report.html"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(report)],
        env=python_env(),
        preexec_fn=default_sigint,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: (tmp_path / "started").exists() or writer.poll() is not None)
        time.sleep(delay)
        writer.send_signal(signum)
        _, stderr = writer.communicate(timeout=60)
    finally:
        writer.kill()
    # The signal reached its own disposition once the write was done: death by SIGTERM,
    # KeyboardInterrupt (which Python turns into death by SIGINT).
    assert writer.returncode == -signum, stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "started"]
    text = report.read_text()
    assert text.startswith("<html>") and text.endswith("\n</html>\n")  # one whole version


def test_a_signal_is_delivered_after_the_write(tmp_path: Path) -> None:
    """In process: SIGINT raised during the write arrives as KeyboardInterrupt after it."""

    target = tmp_path / "page.html"
    original = os.fsync

    def fsync_then_interrupt(fd: int) -> None:
        original(fd)
        signal.raise_signal(signal.SIGINT)  # arrives mid-write: held until the rename

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "fsync", fsync_then_interrupt)
        with pytest.raises(KeyboardInterrupt):
            atomic_write(target, "complete")
    assert target.read_text() == "complete"
    assert [p.name for p in tmp_path.iterdir()] == ["page.html"]


# -- file modes --------------------------------------------------------------------------------


def test_new_reports_honour_the_umask_and_replaced_ones_keep_their_mode(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    old = os.umask(0o077)
    try:
        atomic_write(page, "private")
        assert page.stat().st_mode & 0o777 == 0o600
        os.umask(0o022)
        atomic_write(page, "still private")  # replacing keeps the file's own mode
        assert page.stat().st_mode & 0o777 == 0o600
        page.chmod(0o640)
        atomic_write(page, "group-readable")
        assert page.stat().st_mode & 0o777 == 0o640
        fresh = tmp_path / "fresh.html"
        atomic_write(fresh, "new")
        assert fresh.stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(old)


def test_the_command_line_report_honours_umask_077(tmp_path: Path) -> None:
    (tmp_path / "user.py").write_text(
        textwrap.dedent("""
        import numpy as np
        def loss(p):
            return float(np.sum(p["w"] ** 2))
        def grad(p):
            return {"w": 2 * p["w"]}
        """)
    )
    np.savez(tmp_path / "p.npz", w=np.array([1.0, 2.0]))
    out = subprocess.run(
        [sys.executable, "-c", "import os, sys; os.umask(0o077); "
         "from gradcheck.cli import main; sys.exit(main(sys.argv[1:]))",
         "check", "user.py:loss", "user.py:grad", "--params", "p.npz", "--html", "r.html"],
        cwd=tmp_path, env=python_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "r.html").stat().st_mode & 0o777 == 0o600


# -- pytest report pages: one per check --------------------------------------------------------


def test_page_names_are_readable_and_unique() -> None:
    long = "test_model[" + "x" * 140
    names = {
        page_name(check_id)
        for check_id in ["t::a b", "t::a-b", "t::a_b", long + "1]::check 1", long + "2]::check 1"]
    }
    assert len(names) == 5
    assert all(re.fullmatch(r"[0-9A-Za-z-]{1,80}-[0-9a-f]{12}", name) for name in names)
    assert page_name("tests/test_x.py::test_y::check 1").startswith("tests-test-x-py-test-y-")
    assert page_name("::") != page_name("**")  # nothing readable: still two names


PAGES_TEST = """
import numpy as np
import pytest

W = {"w": np.array([0.3, -1.2])}

def loss(p):
    return float(np.sum(p["w"] ** 2))

def right(p):
    return {"w": 2 * p["w"]}

def wrong(p):
    return {"w": 3 * p["w"]}

LONG = "x" * 140

@pytest.mark.parametrize(
    "case", [LONG + "-right", LONG + "-wrong"], ids=[LONG + "-right", LONG + "-wrong"]
)
def test_long_ids(gradcheck, case):
    gradcheck.check(loss, right if case.endswith("right") else wrong, W)

def test_labels(gradcheck):
    gradcheck.check(loss, right, W, label="a b")
    gradcheck.check(loss, wrong, W, label="a-b")
    gradcheck.check(loss, wrong, W, label="twice")
    gradcheck.check(loss, right, W, label="twice")
"""


def test_every_check_gets_its_own_report_page(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_pages=PAGES_TEST)
    result = pytester.runpytest("-p", "no:cacheprovider", "--gradcheck-html=report")
    result.assert_outcomes(passed=3)
    pages = sorted((pytester.path / "report" / "checks").glob("*.html"))
    assert len(pages) == 6, [p.name for p in pages]
    index = (pytester.path / "report" / "index.html").read_text()
    hrefs = re.findall(r'href="(checks/[^"]+)"', index)
    assert sorted(set(hrefs)) == sorted(f"checks/{p.name}" for p in pages)
    # Each page is its own check's: the title names it, and the wrong gradient (3w: 0.9 at
    # w[0]) appears on the pages of the checks that used it and no other.
    found = []
    for page in pages:
        text = page.read_text()
        title = re.search(r"<title>test_pages\.py::(.*?)</title>", text)
        assert title is not None
        found.append((title.group(1).replace("x" * 140, "X"), "analytic 0.9" in text))
    assert sorted(found) == [
        ("test_labels: a b", False),
        ("test_labels: a-b", True),
        ("test_labels: twice", False),
        ("test_labels: twice", True),
        ("test_long_ids[X-right]: check 1", False),
        ("test_long_ids[X-wrong]: check 1", True),
    ]


# -- worker processes: Ctrl-C and SIGTERM, no orphans; workers capped --------------------------

SLOW_LOSS = """
import os
import time
from pathlib import Path

import numpy as np

CALLS = Path(__file__).parent / "calls"

def loss(p):
    (CALLS / str(os.getpid())).touch()  # who evaluates: the parent or a worker
    time.sleep(0.002)
    return float(np.sum(np.sin(p["w"]) ** 2))

def grad(p):
    return {"w": 2 * np.sin(p["w"]) * np.cos(p["w"])}

def params():
    return {"w": np.linspace(-1.0, 1.0, 20_000)}
"""


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def interrupt_a_check_with_workers(tmp_path: Path, signum: int, *, json_output: bool) -> tuple:
    (tmp_path / "slow.py").write_text(SLOW_LOSS)
    (tmp_path / "calls").mkdir()
    args = ["check", "slow.py:loss", "slow.py:grad", "--params", "slow.py:params"]
    args += ["--workers", "2", "--mode", "full", "--quiet", *(["--json"] if json_output else [])]
    check = subprocess.Popen(
        [sys.executable, "-m", "gradcheck", *args],
        cwd=tmp_path,
        env=python_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        preexec_fn=default_sigint,
    )
    try:
        # Interrupt once a worker is evaluating the loss (a pid other than the parent's).
        wait_for(
            lambda: (
                any(int(p.name) != check.pid for p in (tmp_path / "calls").iterdir())
                or check.poll() is not None
            )
        )
        workers = children_of(check.pid)
        os.killpg(check.pid, signum)  # every process of the group, as Ctrl-C does
        stdout, stderr = check.communicate(timeout=120)
    finally:
        if check.poll() is None:
            os.killpg(check.pid, signal.SIGKILL)
    wait_for(lambda: not any(alive(pid) for pid in workers), timeout=30)
    return check.returncode, stdout, stderr, workers


@pytest.mark.parametrize("json_output", [False, True], ids=["text", "json"])
def test_ctrl_c_with_workers_exits_130_with_one_line_and_no_orphan(
    json_output: bool, tmp_path: Path
) -> None:
    code, stdout, stderr, workers = interrupt_a_check_with_workers(
        tmp_path, signal.SIGINT, json_output=json_output
    )
    assert len(workers) >= 2  # the two workers were there, and are gone (checked above)
    assert code == 130, stderr
    assert stderr.splitlines() == ["gradcheck check: interrupted"], stderr
    if json_output:
        assert json.loads(stdout) == {
            "error": {"type": "KeyboardInterrupt", "message": "interrupted"}
        }
    else:
        assert stdout == ""


def test_sigterm_with_workers_exits_143_with_one_line_and_no_orphan(tmp_path: Path) -> None:
    code, stdout, stderr, _ = interrupt_a_check_with_workers(
        tmp_path, signal.SIGTERM, json_output=False
    )
    assert code == 143 and stderr.splitlines() == ["gradcheck check: terminated"], stderr


def test_workers_above_the_cpu_count_are_capped_with_a_warning_and_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "capped_problem.py").write_text(
        textwrap.dedent("""
        import numpy as np
        def loss(p):
            return float(np.sum(np.sin(p["w"]) ** 2))
        def grad(p):
            return {"w": 2 * np.sin(p["w"]) * np.cos(p["w"])}
        """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import capped_problem  # type: ignore[import-not-found]

    cpus = available_cpus()
    with pytest.warns(GradcheckWarning, match=rf"workers: {cpus + 98} requested, {cpus} used"):
        result = gradcheck.check(
            capped_problem.loss,
            capped_problem.grad,
            {"w": np.linspace(-1.0, 1.0, 200)},
            workers=cpus + 98,
            mode="full",
        )
    assert result.passed
    assert result.notes[-1] == (
        f"workers: {cpus + 98} requested, {cpus} used (the CPUs this process may run on)"
    )


POOL_FEEDER_BLOCKED = """
import time

import numpy as np

from gradcheck.runner.evaluation import worker_pool


def slow(x):
    time.sleep(5)
    return float(x.sum())


if __name__ == "__main__":
    try:
        with worker_pool(2) as pool:
            big = np.zeros(2_000_000)  # 16 MB a task: the feeder blocks on the full pipe
            futures = [pool.submit(slow, big) for _ in range(12)]
            time.sleep(1.0)
            for future in futures:  # as Executor.map does when its caller stops
                future.cancel()
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        print("interrupted")
"""


def test_an_interrupted_pool_with_a_blocked_feeder_and_cancelled_tasks_exits_quietly(
    tmp_path: Path,
) -> None:
    # The scene of a rare hang: the pool's feeder thread writing a 16 MB task to workers that
    # are then terminated, cancelled tasks pending.  Under SIGTERM at random moments 1 run in
    # 31 hung at exit (Python joined the blocked feeder) and 5 in 100 printed a traceback of
    # the pool's own thread (Python 3.11: InvalidStateError on a cancelled task, before it
    # unblocks the feeder); after the fix none in 100.  The timing is not reproducible in one
    # run, so the two causes are also tested directly below.
    (tmp_path / "feeder.py").write_text(POOL_FEEDER_BLOCKED)
    done = subprocess.run(
        [sys.executable, "feeder.py"],
        cwd=tmp_path,
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout == "interrupted\n", done.stderr
    assert done.stderr == ""


def test_a_terminated_pool_never_joins_its_feeder_thread() -> None:
    from gradcheck.runner.evaluation import _terminate, worker_pool

    with worker_pool(1) as pool:
        pool.submit(int).result()
        call_queue = pool._call_queue  # type: ignore[attr-defined]
        _terminate(pool)
        assert call_queue._joincancelled


def test_only_the_pool_threads_invalid_state_error_is_silenced() -> None:
    import threading
    from concurrent.futures import InvalidStateError
    from concurrent.futures.process import _ExecutorManagerThread

    from gradcheck.runner.evaluation import _silencing

    seen: list[type] = []
    hook = _silencing(lambda args: seen.append(args.exc_type))
    manager = object.__new__(_ExecutorManagerThread)  # (never started)
    other = threading.Thread()

    def args(exc: BaseException, thread: threading.Thread) -> object:
        return threading.ExceptHookArgs([type(exc), exc, None, thread])  # type: ignore[call-arg]

    hook(args(InvalidStateError("CANCELLED"), manager))
    assert seen == []
    hook(args(ValueError("a real error"), manager))
    hook(args(InvalidStateError("elsewhere"), other))
    assert seen == [ValueError, InvalidStateError]
