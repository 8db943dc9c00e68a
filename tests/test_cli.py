"""The command line: good and bad arguments through a lecture's main(argv) and through invoke."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from invoke.collection import Collection
from invoke.context import Context
from invoke.program import Program

import l29
import l31
import l36
import l37
import shared
import tasks
from shared import ConfigError, Exercise, Log, RunOptions, lectureMain, makeExecutor

ROOT = Path(__file__).resolve().parent.parent


def invoke(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def test_list_prints_the_exercises(capsys: pytest.CaptureFixture[str]) -> None:
    assert l29.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "Lecture 29" in out
    assert l29.EXERCISES[0].title in out


def test_a_lecture_file_prints_its_report_alone(capsys: pytest.CaptureFixture[str]) -> None:
    assert l29.main(["--ex", "1", "--quick", "--executor", "inline", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "Request 0: dispatching" in out
    assert "High-risk requests" in out
    assert "the lecture says" not in out


def test_invoke_run_prints_the_report_then_the_labs_verdicts(capsys: pytest.CaptureFixture[str]) -> None:
    tasks.run(Context(), lecture="29", ex="1", quick=True, executor="inline", seed="3")
    out = capsys.readouterr().out
    assert out.index("High-risk requests") < out.index("the lecture says")
    verdicts = out[out.index("the lecture says") :]
    assert "the pool" in verdicts
    assert max(len(line) for line in verdicts.splitlines()) <= 100


LECTURE_MAINS = [
    pytest.param(l29.main, "l29.py", id="l29"),
    pytest.param(l31.main, "l31.py", id="l31"),
    pytest.param(l36.main, "l36.py", id="l36"),
    pytest.param(l37.main, "l37.py", id="l37"),
]
BAD_ARGUMENTS = [
    ([], "one of the arguments --ex --all --list is required"),
    (["--ex", "9"], "argument --ex: invalid choice: 9"),
    (["--ex", "one"], "argument --ex: invalid int value: 'one'"),
    (["--ex", "1", "--seed", "x"], "seed must be an integer >= 0, got 'x'"),
    (["--ex", "1", "--seed", "-1"], "seed must be an integer >= 0, got -1"),
    (["--ex", "1", "--executor", "gpu"], "argument --executor: invalid choice: 'gpu'"),
    (["--ex", "1", "--address", "tcp://127.0.0.1:1"], "--address tcp://127.0.0.1:1 needs --executor dask"),
    (["--ex", "1", "--start-method", "vfork"], "argument --start-method: invalid choice: 'vfork'"),
    (["--ex", "1", "--all"], "argument --all: not allowed with argument --ex"),
    # Port 1 on loopback refuses at once: the probe answers before Dask is imported or anything runs.
    (
        ["--ex", "1", "--executor", "dask", "--address", "tcp://127.0.0.1:1"],
        "cannot reach the Dask scheduler at 'tcp://127.0.0.1:1'",
    ),
    (
        ["--ex", "1", "--executor", "dask", "--address", "tcp://127.0.0.1:port"],
        "--address must look like tcp://host:port (port 1-65535), got 'tcp://127.0.0.1:port'",
    ),
    (
        ["--ex", "1", "--executor", "dask", "--address", "tls://127.0.0.1:1"],
        "cannot reach the Dask scheduler at 'tls://127.0.0.1:1'",
    ),
]


@pytest.mark.parametrize(("main", "script"), LECTURE_MAINS)
@pytest.mark.parametrize(("argv", "message"), BAD_ARGUMENTS)
def test_bad_arguments_give_one_line_and_status_2(
    main: Callable[[list[str]], int], script: str, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"{script}: error: ")
    assert message in captured.err


def test_a_client_that_cannot_connect_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever Dask raises for a wrong endpoint becomes one line (a non-Dask server made it MemoryError)."""

    def client(*_args: object, **_kwargs: object) -> object:
        raise MemoryError

    fake = SimpleNamespace(
        Client=client, config=SimpleNamespace(get=lambda *_: "tcp://10.0.0.9:8786", set=lambda _: None)
    )
    monkeypatch.setattr(shared, "_importDask", lambda _name: fake)
    with pytest.raises(ConfigError, match=r"^no Dask scheduler answered at 'tcp://10.0.0.9:8786' \(MemoryError\)$"):
        makeExecutor("dask", 1)


def raisesConfigError(options: RunOptions, _log: Log) -> object:
    raise ConfigError(f"duration must be >= 0.1, got {options.seed}")


def raisesInterrupt(_options: RunOptions, _log: Log) -> object:
    raise KeyboardInterrupt


def test_a_config_error_during_a_run_is_one_line_and_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    exercises = [Exercise(1, "bad config", raisesConfigError)]
    assert lectureMain(["--ex", "1", "--seed", "0"], lecture=99, title="t", exercises=exercises) == 2
    assert capsys.readouterr().err == "l99.py: error: duration must be >= 0.1, got 0\n"


def test_ctrl_c_is_status_130_and_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    exercises = [Exercise(1, "interrupted", raisesInterrupt)]
    assert lectureMain(["--ex", "1"], lecture=99, title="t", exercises=exercises) == 130
    assert capsys.readouterr().err == "l99.py: interrupted\n"


def test_the_script_runs_as_a_user_would() -> None:
    done = subprocess.run(
        [sys.executable, "l29.py", "--ex", "1", "--quick", "--executor", "inline"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Speedup:" in done.stdout
    bad = subprocess.run(
        [sys.executable, "l29.py", "--ex", "7"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--lecture", "x", "--ex", "1"), "--lecture must be one of 29, 31, 36, 37, got 'x'"),
        (("--lecture", "30", "--ex", "1"), "--lecture must be one of 29, 31, 36, 37, got 30"),
        (("--lecture", "29", "--ex", "9"), "--ex must be one of"),
        (
            (
                "--lecture",
                "29",
            ),
            "give --lecture N --ex M, --lecture N --all, or --all",
        ),
        (("--lecture", "29", "--ex", "1", "--seed", "-2"), "--seed must be an integer >= 0, got -2"),
        (("--lecture", "29", "--ex", "1", "--seed", "ten"), "--seed must be an integer >= 0, got 'ten'"),
        (("--lecture", "29", "--ex", "1", "--executor", "gpu"), "--executor must be one of process, thread, inline"),
        (("--lecture", "29", "--ex", "1", "--start-method", "x"), "--start-method must be one of fork, spawn"),
        (
            ("--lecture", "31", "--ex", "1", "--executor", "dask", "--address", "tcp://127.0.0.1:1"),
            "cannot reach the Dask scheduler at 'tcp://127.0.0.1:1'",
        ),
        (("--lecture", "36", "--ex", "1", "--address", "tcp://127.0.0.1:1"), "--address tcp://127.0.0.1:1 needs"),
    ],
)
def test_invoke_run_rejects_bad_input_with_one_line(
    args: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # In this process, through invoke's own Program (what `invoke` runs): the parse and
    # the exit status are invoke's; test_invoke_run_rejects_a_bad_lecture_from_a_shell
    # shows one such case from a real command line.
    with pytest.raises(SystemExit) as exited:
        Program(namespace=Collection.from_module(tasks), binary="invoke").run(["invoke", "run", *args])
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert err.count("\n") == 1, err
    assert message in err


def test_invoke_run_rejects_a_bad_lecture_from_a_shell() -> None:
    done = invoke("run", "--lecture", "30", "--ex", "1")
    assert done.returncode == 2
    assert done.stderr == "invoke: error: --lecture must be one of 29, 31, 36, 37, got 30\n"


def test_invoke_run_runs_one_exercise() -> None:
    done = invoke("run", "--lecture", "29", "--ex", "1", "--quick", "--executor", "inline", "--seed", "5")
    assert done.returncode == 0, done.stderr
    assert "Exercise 1" in done.stdout
    assert "High-risk requests" in done.stdout


def test_invoke_list_names_every_lecture(capsys: pytest.CaptureFixture[str]) -> None:
    Program(namespace=Collection.from_module(tasks), binary="invoke").run(["invoke", "list"])
    out = capsys.readouterr().out
    for lecture in ("29", "31", "36", "37"):
        assert f"\n{lecture}.1  " in out
