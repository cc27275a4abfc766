"""Shared fixtures: the real data set, and one real run and bundle trained and exported per session."""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Fast tests first, slow ones (training, export, subprocesses) last."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is not None)


@pytest.fixture(scope="session")
def data_path() -> Path:
    if not DATA.is_file():
        pytest.fail(f"the SMS Spam Collection is expected at {DATA} (see ../shared/data/README.md)")
    return DATA


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
