"""Training settings: the presets, the flags that override them, and the checks on each value."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from smsguard.cli import main
from smsguard.train import TrainConfig
from smsguard.train._config import DEFAULT_PRESET, PRESETS

# TrainConfig() before presets existed: the Keras tutorial. `--preset tutorial` must stay exactly this.
TUTORIAL_BEFORE_PRESETS = {
    "data": None,
    "text_column": None,
    "label_column": None,
    "seed": 42,
    "epochs": 5,
    "batch_size": 32,
    "learning_rate": 1e-3,
    "num_words": 10000,
    "maxlen": 40,
    "oov_token": None,
    "padding": "pre",
    "truncating": "post",
    "embedding_dim": 128,
    "lstm_units": 32,
    "activation": "tanh",
    "test_size": 0.30,
    "validation_size": 0.10,
    "target_ham_fpr": None,
}
# What the tutorial did before these settings existed: no dropout, no class weight, no early stopping.
ADDED_SINCE = {"dropout": 0.0, "recurrent_dropout": 0.0, "spam_weight": 1.0, "early_stopping_patience": 0, "lower": True, "threshold_folds": 0}
ADDED_SINCE |= {"ngram_buckets": 0, "ngram_min_n": 2, "ngram_max_n": 5, "ngram_length": 512, "ngram_lower": True, "ngram_dim": 32, "ngram_scale": 30.0}
ADDED_SINCE |= {"augment_copies": 0, "augment_rate": 0.33, "augment_families": "all"}
ADDED_SINCE |= {"normalise": False}


def test_a_run_recorded_before_the_normaliser_reads_back_without_one() -> None:
    recorded = dataclasses.asdict(TrainConfig())
    del recorded["normalise"]
    assert TrainConfig.from_dict(recorded).normalise is False
    assert TrainConfig().normalise is True


def test_the_tutorial_preset_is_the_old_default() -> None:
    config = TrainConfig.from_preset("tutorial")
    assert dataclasses.asdict(config) == TUTORIAL_BEFORE_PRESETS | ADDED_SINCE | {"preset": "tutorial"}


def test_the_defaults_are_the_default_preset() -> None:
    assert DEFAULT_PRESET == "fused"
    assert TrainConfig() == TrainConfig.from_preset() == TrainConfig.from_preset("fused")
    assert TrainConfig().preset == "fused"


def test_every_preset_but_fused_is_a_word_model_alone_and_records_what_it_changes() -> None:
    """A run records its preset and every field; read back, a preset must give the values it trained with,
    whatever the defaults have become since (the defaults were the tuned preset before fused)."""
    for name in ("tuned", "tutorial", "mediapipe"):
        config = TrainConfig.from_preset(name)
        assert (config.ngram_buckets, config.ngrams, config.threshold_folds) == (0, None, 0), name
    tuned = TrainConfig.from_preset("tuned")
    assert (tuned.lower, tuned.oov_token, tuned.target_ham_fpr, tuned.lstm_units, tuned.num_words) == (True, "<OOV>", None, 64, 7000)


def test_the_tutorial_preset_names_every_setting_a_preset_may_change() -> None:
    """So that a later change of the defaults cannot leak into `--preset tutorial`."""
    not_model_settings = {"preset", "data", "text_column", "label_column", "seed", "test_size", "validation_size"}
    assert set(PRESETS["tutorial"]) == {f.name for f in dataclasses.fields(TrainConfig)} - not_model_settings


def test_explicit_values_override_the_preset() -> None:
    config = TrainConfig.from_preset("tutorial", epochs=2, oov_token="<OOV>")
    assert (config.preset, config.epochs, config.oov_token, config.embedding_dim) == ("tutorial", 2, "<OOV>", 128)


def test_an_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"^unknown preset 'best': expected one of fused, tuned, tutorial, mediapipe$"):
        TrainConfig.from_preset("best")
    with pytest.raises(ValueError, match=r"^unknown preset 'best': expected one of fused, tuned, tutorial, mediapipe$"):
        TrainConfig(preset="best")


def test_a_run_recorded_before_presets_reads_back_as_the_tutorial() -> None:
    recorded = TUTORIAL_BEFORE_PRESETS | {"epochs": 3, "data": "/data/SMSSpamCollection"}
    config = TrainConfig.from_dict(recorded)
    assert config == TrainConfig.from_preset("tutorial", epochs=3, data="/data/SMSSpamCollection")


def test_a_recorded_run_reads_back_as_written() -> None:
    config = TrainConfig.from_preset("tutorial", spam_weight=2.0, seed=7)
    assert TrainConfig.from_dict(dataclasses.asdict(config) | {"a_field_from_the_future": 1}) == config


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("spam_weight", 0.0, "spam_weight must be positive, found 0.0"),
        ("spam_weight", -1.0, "spam_weight must be positive, found -1.0"),
        ("early_stopping_patience", -1, "early_stopping_patience must be 0 (off) or more epochs, found -1"),
        ("dropout", 1.0, "dropout must be in [0, 1), found 1.0"),
        ("recurrent_dropout", -0.1, "recurrent_dropout must be in [0, 1), found -0.1"),
        ("epochs", 0, "epochs must be at least 1, found 0"),
    ],
)
def test_out_of_range_values_are_refused_with_the_value(field: str, value, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        TrainConfig.from_preset("tutorial", **{field: value})


# ---- the command line -------------------------------------------------------------------------------


@pytest.fixture
def trained_with(monkeypatch: pytest.MonkeyPatch) -> list[TrainConfig]:
    """`smsguard train` with training replaced: collects the config it would train with."""
    import smsguard.train._trainer as trainer

    configs: list[TrainConfig] = []
    monkeypatch.setattr(trainer, "train", lambda config, out, force=False: configs.append(config))
    return configs


def test_train_flags_override_the_preset(trained_with: list[TrainConfig], tmp_path: Path) -> None:
    assert main(["train", "--out", str(tmp_path / "run"), "--preset", "tutorial", "--epochs", "7", "--spam-weight", "2"]) == 0
    assert trained_with == [TrainConfig.from_preset("tutorial", epochs=7, spam_weight=2.0)]


def test_train_without_a_preset_uses_the_default_one(trained_with: list[TrainConfig], tmp_path: Path) -> None:
    assert main(["train", "--out", str(tmp_path / "run"), "--seed", "3"]) == 0
    assert trained_with == [TrainConfig.from_preset(DEFAULT_PRESET, seed=3)]


def test_train_flag_given_with_the_preset_value_still_wins(trained_with: list[TrainConfig], tmp_path: Path) -> None:
    """A flag given explicitly counts even when it equals the default: `--epochs 5` is five epochs."""
    assert main(["train", "--out", str(tmp_path / "run"), "--epochs", str(TrainConfig().epochs)]) == 0
    assert trained_with[0].epochs == TrainConfig().epochs
    assert main(["train", "--out", str(tmp_path / "run"), "--preset", "tutorial", "--embedding-dim", str(TrainConfig().embedding_dim)]) == 0
    assert trained_with[1].embedding_dim == TrainConfig().embedding_dim


def test_none_undoes_a_preset_value(trained_with: list[TrainConfig], tmp_path: Path) -> None:
    assert main(["train", "--out", str(tmp_path / "run"), "--target-ham-fpr", "none", "--oov-token", "None"]) == 0
    assert (trained_with[0].target_ham_fpr, trained_with[0].oov_token) == (None, None)


def test_train_with_an_unknown_preset_is_an_invalid_argument(capsys, tmp_path: Path) -> None:
    status = main(["train", "--out", str(tmp_path / "run"), "--preset", "best"])
    assert status == 2
    assert capsys.readouterr().err == "ERROR invalid argument: unknown preset 'best': expected one of fused, tuned, tutorial, mediapipe\n"
    assert not (tmp_path / "run").exists()


def test_train_help_shows_the_tutorial_value_where_it_differs(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--preset PRESET" in out
    for name, value in PRESETS["tutorial"].items():
        default = getattr(TrainConfig(), name)
        if value != default and default is not None:
            assert re.search(rf"\(default: {re.escape(str(default))};[^()]*tutorial: {re.escape(str(value))}", out), name


def test_the_mediapipe_preset_is_tuned_with_a_cased_tokenizer_and_unknown_token() -> None:
    config = TrainConfig.from_preset("mediapipe")
    assert dataclasses.asdict(config) == dataclasses.asdict(TrainConfig.from_preset("tuned")) | {"preset": "mediapipe", "lower": False, "oov_token": "<UNKNOWN>"}
    assert (config.tokenizer.lower, config.tokenizer.oov_token) == (False, "<UNKNOWN>")


def test_lower_is_a_flag_both_ways(trained_with: list[TrainConfig], tmp_path: Path) -> None:
    assert main(["train", "--out", str(tmp_path / "run"), "--no-lower"]) == 0
    assert main(["train", "--out", str(tmp_path / "run"), "--preset", "mediapipe", "--lower"]) == 0
    assert [c.tokenizer.lower for c in trained_with] == [False, True]
    assert trained_with[1].oov_token == "<UNKNOWN>"


def test_a_run_recorded_before_lower_existed_lowercases() -> None:
    recorded = dataclasses.asdict(TrainConfig.from_preset("tuned"))
    del recorded["lower"]
    assert TrainConfig.from_dict(recorded).lower is True
