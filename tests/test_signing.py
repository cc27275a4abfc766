"""Signed bundles and safe model updates: every refusal with its exact message, keys and their rotation,
serials, and `Classifier.reload` under threads calling the model while reloads succeed, fail and race."""

from __future__ import annotations

import json
import shutil
import stat
import threading
from pathlib import Path

import numpy as np
import pytest
from bundle_edits import edit_manifest
from conftest import missing_module, needs

from smsguard.cli import main
from smsguard.runtime import Bundle, BundleError, Classifier, ReloadError, verify_bundle
from smsguard.runtime.signing import (
    SIGNATURE_NAME,
    TRUSTED_KEYS_ENV,
    KeyFileError,
    SignatureError,
    generate_keys,
    read_public_key,
    sign_manifest,
)

pytestmark = needs(missing_module("cryptography", "signing needs smsguard[sign]"))
slow = pytest.mark.slow
TEXTS = ["WINNER!! You have won a £1000 prize, call 09061701461 now", "see you at 6", "ok", "Free entry in 2 a wkly comp"] * 8


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Two key pairs: the one in use, and another (a rotation, or an attacker's)."""
    root = tmp_path_factory.mktemp("keys")
    return {name: generate_keys(root / name) for name in ("current", "other")}


def copy_bundle(bundle_dir: Path, target: Path, serial: int | None = None, recommend_npz: str | None = None) -> Path:
    """A copy of the bundle, optionally with another serial and another recommended .npz model."""
    shutil.copytree(bundle_dir, target)

    def change(manifest: dict) -> None:
        if serial is not None:
            manifest["serial"] = serial
        if recommend_npz is not None:
            manifest["recommended"]["npz"] = recommend_npz

    edit_manifest(target, change)
    return target


# ---- keys -------------------------------------------------------------------------------------------------


def test_keygen_writes_a_private_key_only_its_owner_reads(tmp_path: Path) -> None:
    private, public = generate_keys(tmp_path / "k")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert len(read_public_key(public).key_id) == 16
    with pytest.raises(KeyFileError, match=rf"^key file '{private}' already exists; move it away or choose another --out \(a key is never overwritten\)$"):
        generate_keys(tmp_path / "k")


def test_a_file_that_is_not_a_public_key_is_refused(tmp_path: Path, keys) -> None:
    private, _ = keys["current"]
    with pytest.raises(KeyFileError, match=rf"^public key '{private}' is not a PEM public key; give the \.pub file that `smsguard keygen` wrote$"):
        read_public_key(private)
    with pytest.raises(KeyFileError, match=rf"^public key '{tmp_path / 'none.pub'}' is missing$"):
        read_public_key(tmp_path / "none.pub")


# ---- refusals ---------------------------------------------------------------------------------------------


@slow
def test_a_signed_bundle_loads_with_its_key_and_says_by_which(bundle_copy: Path, keys) -> None:
    private, public = keys["current"]
    sign_manifest(bundle_copy, private)
    bundle = Bundle.load(bundle_copy, [read_public_key(public)])
    assert bundle.signed_by == read_public_key(public).key_id
    assert Bundle.load(bundle_copy).signed_by is None  # no keys given: as before signing existed


@slow
def test_an_unsigned_bundle_is_refused_when_keys_are_trusted(bundle_copy: Path, keys) -> None:
    _, public = keys["current"]
    expected = f"bundle '{bundle_copy}' is not signed (no manifest.sig), and trusted keys were given; sign it with `smsguard sign {bundle_copy} --key KEY`"
    with pytest.raises(SignatureError) as error:
        Classifier.load(bundle_copy, trusted_keys=[public])
    assert str(error.value) == expected


@slow
def test_a_signature_by_another_key_is_refused(bundle_copy: Path, keys) -> None:
    sign_manifest(bundle_copy, keys["other"][0])
    current, other = read_public_key(keys["current"][1]), read_public_key(keys["other"][1])
    with pytest.raises(SignatureError) as error:
        Classifier.load(bundle_copy, trusted_keys=[keys["current"][1]])
    assert str(error.value) == f"bundle '{bundle_copy}' is signed by key {other.key_id}, which is not trusted here (trusted: {current.key_id})"


@slow
def test_a_manifest_changed_by_one_byte_is_refused(bundle_copy: Path, keys) -> None:
    sign_manifest(bundle_copy, keys["current"][0])
    path = bundle_copy / "manifest.json"
    data = bytearray(path.read_bytes())
    at = data.index(b'"threshold": ') + len(b'"threshold": ')
    data[at] = ord("1") if data[at] != ord("1") else ord("0")  # the bundle's threshold, one digit changed
    path.write_bytes(bytes(data))
    key_id = read_public_key(keys["current"][1]).key_id
    with pytest.raises(SignatureError) as error:
        Classifier.load(bundle_copy, trusted_keys=[keys["current"][1]])
    assert str(error.value) == (
        f"bundle '{bundle_copy}': the signature by key {key_id} does not match its manifest; the manifest changed "
        "after signing, or the signature belongs to another bundle"
    )


@slow
def test_a_signature_copied_from_another_bundle_is_refused(bundle_dir: Path, tmp_path: Path, keys) -> None:
    first = copy_bundle(bundle_dir, tmp_path / "first", serial=10)
    second = copy_bundle(bundle_dir, tmp_path / "second", serial=11)
    sign_manifest(first, keys["current"][0])
    shutil.copy(first / SIGNATURE_NAME, second / SIGNATURE_NAME)
    key_id = read_public_key(keys["current"][1]).key_id
    with pytest.raises(SignatureError, match=rf"^bundle '{second}': the signature by key {key_id} does not match its manifest; "):
        Classifier.load(second, trusted_keys=[keys["current"][1]])


@slow
def test_keys_rotate_any_of_several_trusted_keys_will_do(bundle_copy: Path, keys) -> None:
    sign_manifest(bundle_copy, keys["other"][0])
    both = [keys["current"][1], keys["other"][1]]
    assert Classifier.load(bundle_copy, backend="numpy", trusted_keys=both).predict(["see you at 6"]) == ["ham"]


@slow
def test_trusted_keys_can_be_set_for_the_process(bundle_copy: Path, keys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TRUSTED_KEYS_ENV, str(keys["current"][1]))
    with pytest.raises(SignatureError, match="is not signed"):
        Classifier.load(bundle_copy)
    sign_manifest(bundle_copy, keys["current"][0])
    assert Classifier.load(bundle_copy, backend="numpy").bundle.signed_by == read_public_key(keys["current"][1]).key_id


@slow
def test_an_older_serial_is_refused_and_the_serial_is_told(bundle_dir: Path, tmp_path: Path) -> None:
    bundle = copy_bundle(bundle_dir, tmp_path / "b", serial=5)
    assert Classifier.load(bundle, backend="numpy").serial == 5
    with pytest.raises(BundleError) as error:
        Classifier.load(bundle, min_serial=6)
    assert str(error.value) == f"bundle '{bundle}' has serial 5, older than 6; an older bundle is not taken back (a replayed update?)"


@slow
def test_export_sets_the_serial_and_signs(run_dir: Path, tmp_path: Path, keys) -> None:
    from smsguard.export import ExportConfig, export
    from smsguard.export._targets import TARGETS
    from smsguard.runtime import ModelFormat

    npz = tuple(t for t in TARGETS if t.format is ModelFormat.NPZ)  # the fastest to convert: signing is what is tested
    out = export(run_dir, tmp_path / "b", ExportConfig(serial=42, sign_key=str(keys["current"][0])), targets=npz)
    bundle = Bundle.load(out, [read_public_key(keys["current"][1])])
    assert bundle.manifest.serial == 42 and bundle.signed_by == read_public_key(keys["current"][1]).key_id
    assert json.loads((out / "manifest.json").read_text())["format_version"] == "1.4"


# ---- the commands -----------------------------------------------------------------------------------------


@slow
def test_keygen_sign_and_verify_commands(bundle_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keygen", "--out", str(tmp_path / "keys")]) == 0
    private, public = tmp_path / "keys" / "smsguard.key", tmp_path / "keys" / "smsguard.pub"
    assert main(["verify", str(bundle_copy), "--backend", "numpy", "--trusted-key", str(public)]) == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith(f"ERROR bundle '{bundle_copy}' is not signed (no manifest.sig)")
    assert main(["sign", str(bundle_copy), "--key", str(private)]) == 0
    assert main(["verify", str(bundle_copy), "--backend", "numpy", "--trusted-key", str(public)]) == 0
    err = capsys.readouterr().err
    assert f"-[✓] signature: manifest signed by trusted key {read_public_key(public).key_id}" in err
    assert main(["predict", "--bundle", str(bundle_copy), "--trusted-key", str(public), "--min-serial", "1", "see you at 6"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] == "ham"
    assert main(["sign", str(bundle_copy), "--key", str(public)]) == 2
    assert capsys.readouterr().err.strip() == f"ERROR private key '{public}' is not an unencrypted PEM private key; give the .key file that `smsguard keygen` wrote"


# ---- reload -------------------------------------------------------------------------------------------------


@slow
def test_reload_swaps_only_a_whole_verified_newer_bundle_while_threads_predict(bundle_dir: Path, tmp_path: Path, keys) -> None:
    """Threads call predict_proba on one batch in a loop while the main thread reloads: a good update, a
    corrupt file, a bad signature, an older serial, a truncated copy being written, and two racing updates.
    Every call must succeed and return exactly one bundle's results, and each refusal says why."""
    private, public = keys["current"]
    models = ("model.int8.npz", "model.float32.npz")  # two models whose results differ: a mixed call would show
    make = {serial: copy_bundle(bundle_dir, tmp_path / f"s{serial}", serial, models[serial % 2]) for serial in (100, 101, 102, 103, 104)}
    for folder in make.values():
        sign_manifest(folder, private)
    expected = {m: Classifier.load(bundle_dir, backend="numpy", model=m).predict_proba(TEXTS) for m in models}
    assert not np.array_equal(*expected.values())
    clf = Classifier.load(make[100], backend="numpy", trusted_keys=[public])
    assert clf.model.name == models[0]

    stop, failures, seen = threading.Event(), [], set()

    def call() -> None:
        while not stop.is_set():
            try:
                got = clf.predict_proba(TEXTS)
            except Exception as error:
                failures.append(repr(error))
                return
            match = [m for m, values in expected.items() if np.array_equal(got, values)]
            if len(match) != 1:
                failures.append("a call returned a mix of models")
                return
            seen.add(match[0])

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        assert clf.reload(make[101]) is True and clf.serial == 101 and clf.model.name == models[1]
        assert clf.reload(make[101]) is False  # the bundle already running: nothing to do

        corrupt = copy_bundle(make[102], tmp_path / "corrupt")
        (corrupt / "model.float32.npz").write_bytes(b"corrupt")
        with pytest.raises(ReloadError) as error:
            clf.reload(corrupt)
        assert str(error.value).startswith(
            f"bundle '{corrupt}' not taken, still running serial 101 from '{make[101]}': bundle file '{corrupt / 'model.float32.npz'}' "
            "does not match its manifest: expected sha256 "
        )

        unsigned_by_us = copy_bundle(make[102], tmp_path / "other-key")
        sign_manifest(unsigned_by_us, keys["other"][0])
        with pytest.raises(ReloadError, match=rf"^bundle '{unsigned_by_us}' not taken, still running serial 101 from '{make[101]}': bundle '{unsigned_by_us}' is signed by key "):
            clf.reload(unsigned_by_us)

        with pytest.raises(ReloadError) as error:
            clf.reload(make[100])
        assert str(error.value) == (
            f"bundle '{make[100]}' not taken, still running serial 101 from '{make[101]}': bundle '{make[100]}' has serial 100, "
            "older than 101; an older bundle is not taken back (a replayed update?)"
        )

        truncated = copy_bundle(make[102], tmp_path / "truncated")
        manifest = (truncated / "manifest.json").read_bytes()
        (truncated / "manifest.json").write_bytes(manifest[: len(manifest) // 2])  # a copy still being written
        with pytest.raises(ReloadError, match=rf"^bundle '{truncated}' not taken, still running serial 101 from '{make[101]}': bundle '{truncated}': the signature by key "):
            clf.reload(truncated)
        assert clf.serial == 101 and clf.model.name == models[1]

        outcomes: list[object] = []
        racers = [threading.Thread(target=lambda s=s: outcomes.append(_reload(clf, make[s]))) for s in (103, 104)]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join()
        assert clf.serial == 104  # whichever came first, the newer one is running now
        assert outcomes.count(True) >= 1 and all(o is True or "older than 104" in str(o) for o in outcomes)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert seen == set(models)  # the threads saw both models, each whole


@slow
def test_reload_refuses_a_bundle_whose_model_misses_its_golden_vectors(bundle_dir: Path, tmp_path: Path) -> None:
    clf = Classifier.load(copy_bundle(bundle_dir, tmp_path / "a", serial=1), backend="numpy", model="model.int8.npz")
    wrong = copy_bundle(bundle_dir, tmp_path / "b", serial=2)

    def change(manifest: dict) -> None:
        for golden in manifest["golden"]:
            golden["probabilities"]["model.int8.npz"] = 1.0 - golden["probabilities"]["model.int8.npz"]

    edit_manifest(wrong, change)
    with pytest.raises(ReloadError, match=r"model\.int8\.npz \[numpy\] does not reproduce its golden vectors: "):
        clf.reload(wrong)
    assert clf.serial == 1
    assert verify_bundle(clf.bundle.path, ["numpy"]).passed


def _reload(clf: Classifier, bundle: Path) -> object:
    try:
        return clf.reload(bundle)
    except ReloadError as error:
        return error

