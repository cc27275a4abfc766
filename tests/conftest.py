"""Shared fixtures: the real data set, one real run and bundle trained and exported per session, and the fast
tier's tiny bundle (NumPy alone, `tiny.py`).

Tiers: a test is slow when it is marked so, or when it uses a fixture that trains, exports, starts an engine
or imports TensorFlow (`SLOW_FIXTURES`, followed through every fixture it depends on): its tier follows from
what it uses, not from remembering a marker. `make check` runs the rest (`-m "not slow"`), and a fast test
that imports TensorFlow fails, naming itself.

A test that needs a real component this machine lacks (a lane, Java, Chromium, the C kernel, the data set)
calls `cannot_run(reason)` or carries `needs(problem)`: outside CI it is skipped, saying why; under CI
(`CI=true`) it fails. The run ends with one line per skip reason, and under CI any skip fails the run."""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, NoReturn

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "SMSSpamCollection"  # the UCI file, never committed


class OutsideRequest(OSError):
    """A test (or a library it calls) tried to reach a host that is not this machine."""


def _is_loopback(host: Any) -> bool:
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name other than localhost: resolving it would already leave the machine


def _guard(original: Any, address_of: Any) -> Any:
    def guarded(*args: Any, **kwargs: Any) -> Any:
        sock_or_host = address_of(*args, **kwargs)
        if sock_or_host is not None and not _is_loopback(sock_or_host):
            msg = f"tests talk to this machine only; refused a request to {sock_or_host!r}"
            raise OutsideRequest(msg)
        return original(*args, **kwargs)

    return guarded


def _inet_host(sock: socket.socket, address: Any, *rest: Any) -> Any:
    return address[0] if sock.family in (socket.AF_INET, socket.AF_INET6) else None


def pytest_configure(config: pytest.Config) -> None:
    """Block every connection from the test process to an address that is not loopback, and every name
    look-up but localhost: what smsguard does must work offline, and no client library's telemetry may
    leave the machine. (Subprocesses, such as an engine or a browser a test starts, are bound or
    blocked by that test.)"""
    socket.socket.connect = _guard(socket.socket.connect, _inet_host)  # type: ignore[method-assign]
    socket.socket.connect_ex = _guard(socket.socket.connect_ex, _inet_host)  # type: ignore[method-assign]
    socket.getaddrinfo = _guard(socket.getaddrinfo, lambda host, *a, **k: host)


# Fixtures that make a test slow: what each costs.
SLOW_FIXTURES = {
    "run_dir": "trains a model",
    "bundle_dir": "exports a bundle",
    "demo_dir": "runs smsguard demo (trains and exports)",
    "mediapipe_run": "trains a model",
    "keras": "imports TensorFlow (tf_keras)",
    "spark": "starts a Spark session",
    "dask_client": "starts a Dask cluster",
}
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def assert_same_bits(got: Any, expected: Any, what: object = "") -> None:
    """A bit-identical claim, held in bytes: same dtype, same shape, same bytes. (np.testing.assert_array_equal
    takes -0.0 for 0.0, and a tolerance is no claim of identity at all.)"""
    import numpy as np

    got, expected = np.ascontiguousarray(got), np.ascontiguousarray(expected)
    assert (got.dtype, got.shape) == (expected.dtype, expected.shape), (what, got.dtype, got.shape, expected.dtype, expected.shape)
    if got.tobytes() != expected.tobytes():
        rows = (got.reshape(got.size, -1).view(np.uint8) != expected.reshape(expected.size, -1).view(np.uint8)).any(axis=1)
        diff = float(np.abs(got.astype(np.float64) - expected.astype(np.float64)).max()) if got.dtype.kind == "f" else None
        raise AssertionError(f"{what}: not the same bits: {int(rows.sum())} of {got.size} values differ" + (f" (max {diff:.3g})" if diff is not None else ""))


def cannot_run(reason: str) -> NoReturn:
    """What a test does when a real component it needs cannot run here: skip, saying why; under CI, fail."""
    if IN_CI:
        pytest.fail(f"cannot run under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def needs(problem: str) -> pytest.MarkDecorator:
    """Mark a test (or a module, as `pytestmark`) that needs a real component: `problem` says what is
    missing, or is empty when nothing is. Checked at the test's setup, through `cannot_run`."""
    return pytest.mark.needs(problem)


def missing_module(name: str, install: str) -> str:
    """'' when `name` can be imported, else why not and how to install it."""
    import importlib.util

    return "" if importlib.util.find_spec(name) else f"{name} is not installed: {install}"


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("needs"):
        if mark.args[0]:
            cannot_run(mark.args[0])


_SKIPPED: dict[str, list[str]] = {}  # reason -> the tests skipped for it


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _SKIPPED.setdefault(reason.removeprefix("Skipped: "), []).append(report.nodeid)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Under CI a skipped test fails the run: every real lane and component must have run."""
    if IN_CI and _SKIPPED and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line per reason a test was skipped, with how many; under CI, that the list must be empty."""
    count = sum(len(tests) for tests in _SKIPPED.values())
    terminalreporter.section(f"skipped: {count}" + (" (CI=true: the run fails)" if IN_CI and count else ""), sep="-")
    for reason, tests in sorted(_SKIPPED.items(), key=lambda kv: -len(kv[1])):
        terminalreporter.write_line(f"{len(tests):4d} x {reason} (first: {tests[0]})")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test slow that uses a slow fixture; then fast tests first, slow ones last."""
    for item in items:
        if set(getattr(item, "fixturenames", ())) & SLOW_FIXTURES.keys() and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: item.get_closest_marker("slow") is not None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """A fast test must not import TensorFlow (it costs seconds and belongs to the slow tier)."""
    before = "tensorflow" in sys.modules
    yield
    if not before and "tensorflow" in sys.modules and item.get_closest_marker("slow") is None:
        pytest.fail(f"{item.nodeid} imported TensorFlow: mark it slow, or give it the tiny bundle instead of a trained one", pytrace=False)


@pytest.fixture(scope="session")
def data_path() -> Path:
    if not DATA.is_file():
        cannot_run(f"the SMS Spam Collection is expected at {DATA} (see ../shared/data/README.md)")
    return DATA


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fast tier's bundle: a fused model of seeded weights, made with NumPy alone (`tiny.py`); read-only."""
    from tiny import make_bundle

    return make_bundle(tmp_path_factory.mktemp("tiny") / "bundle")


@pytest.fixture
def tiny_copy(tiny_bundle: Path, tmp_path: Path) -> Path:
    """A copy of the tiny bundle that a test may change."""
    copy = tmp_path / "tiny"
    shutil.copytree(tiny_bundle, copy)
    return copy


@pytest.fixture(scope="session")
def uci_texts(data_path: Path) -> list[str]:
    from smsguard.train import load_messages

    return list(load_messages(data_path).texts)


@pytest.fixture(scope="session")
def run_dir(data_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real training run of the word LSTM alone (the tuned preset; about 20 s here): what the tuned, tutorial and
    mediapipe presets ship, and the word branch of the default. The default (fused) is `demo_dir`'s, below."""
    from smsguard.train import TrainConfig, train

    out = tmp_path_factory.mktemp("run") / "run"
    train(TrainConfig.from_preset("tuned", data=str(data_path)), out)
    return out


@pytest.fixture(scope="session")
def demo_dir(data_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """`smsguard demo` as a user runs it, once: the default (fused) preset trained in full, exported, verified,
    benchmarked, with two predictions; (its folder, with run/ and bundle/, and the finished process)."""
    out = tmp_path_factory.mktemp("demo") / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "smsguard", "demo", "--data", str(data_path), "--out", str(out)], capture_output=True, text=True, timeout=1800, check=False
    )
    return out, done


@pytest.fixture(scope="session")
def bundle_dir(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real bundle exported from `run_dir`; tests that change files use `bundle_copy`."""
    from smsguard.export import export

    out = tmp_path_factory.mktemp("bundle") / "bundle"
    export(run_dir, out)
    return out


@pytest.fixture(scope="session")
def fused_run(demo_dir: tuple[Path, subprocess.CompletedProcess]) -> Path:
    """The default (fused) preset's run, from `demo_dir`."""
    out, done = demo_dir
    assert done.returncode == 0, done.stderr[-3000:]
    return out / "run"


@pytest.fixture(scope="session")
def fused_bundle(fused_run: Path) -> Path:
    """The default (fused) preset's bundle, from `demo_dir`."""
    return fused_run.parent / "bundle"


@pytest.fixture
def bundle_copy(bundle_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(bundle_dir, copy)
    return copy
