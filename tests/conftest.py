"""Shared fixtures: the real data set, and one real run and bundle trained and exported per session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "SMSSpamCollection"  # the UCI file, never committed


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
    """A real training run with the default (tuned) preset: what ships; about 20 s here."""
    from smsguard.train import TrainConfig, train

    out = tmp_path_factory.mktemp("run") / "run"
    train(TrainConfig(data=str(data_path)), out)
    return out


@pytest.fixture(scope="session")
def bundle_dir(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real bundle exported from `run_dir`; tests that change files use `bundle_copy`."""
    from smsguard.export import export

    out = tmp_path_factory.mktemp("bundle") / "bundle"
    export(run_dir, out)
    return out


@pytest.fixture
def bundle_copy(bundle_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(bundle_dir, copy)
    return copy
