"""Signed evidence: manifest.sig (Ed25519 over manifest.json), the key made on first use,
its fingerprint in the report, and ``bmsrig verify`` catching a flipped byte anywhere."""

from __future__ import annotations

import json
import os
import shutil
import stat

import pytest

import reports
from reports_synthetic import make_run
from rig.cli import main
from rig.signing import KEY_FILE, PUB_FILE, SIG_FILE, load_or_create_key


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    keys = tmp_path_factory.mktemp("keys") / "bmsrig"
    run_dir = make_run(tmp_path_factory.mktemp("signed") / "run", balancing_samples=200)
    artifacts = reports.build(run_dir, pdf=False, key_dir=keys)
    return run_dir, artifacts, keys


@pytest.fixture
def run_copy(signed, tmp_path):
    run_dir, _, keys = signed
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    return copy, keys


def test_key_is_created_on_first_use_private_and_reused(signed, tmp_path):
    run_dir, artifacts, keys = signed
    assert SIG_FILE in artifacts and (run_dir / SIG_FILE).is_file()
    mode = stat.S_IMODE(os.stat(keys / KEY_FILE).st_mode)
    assert mode == 0o600 and (keys / PUB_FILE).is_file()
    again = load_or_create_key(keys)
    assert not again.created
    doc = json.loads((run_dir / SIG_FILE).read_text())
    assert doc["algorithm"] == "Ed25519" and doc["fingerprint"] == again.fingerprint
    html = (run_dir / "report.html").read_text()
    assert again.fingerprint in html, "the report prints the public key's fingerprint"


def test_key_dir_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("BMSRIG_KEY_DIR", str(tmp_path / "k"))
    s = load_or_create_key()
    assert s.created and s.key_file == tmp_path / "k" / KEY_FILE and s.fingerprint.startswith("SHA256:")


def test_verify_accepts_an_intact_run(signed, capsys):
    run_dir, _, _ = signed
    assert main(["verify", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "signature valid" in out


def test_verify_detects_a_single_flipped_byte_in_every_file(run_copy, capsys):
    run_dir, _ = run_copy
    files = sorted(p for p in run_dir.rglob("*") if p.is_file())
    assert len(files) >= 6 and {p.name for p in files} >= {"record.jsonl", "report.html", "junit.xml", SIG_FILE}
    for p in files:
        data = bytearray(p.read_bytes())
        data[len(data) // 2] ^= 0x01
        p.write_bytes(bytes(data))
        code = main(["verify", str(run_dir)])
        out = capsys.readouterr().out
        rel = p.relative_to(run_dir).as_posix()
        assert code == 1, f"flipped byte in {rel} not detected"
        assert f"TAMPERED {rel}" in out or (rel == SIG_FILE and SIG_FILE in out), out
        data[len(data) // 2] ^= 0x01
        p.write_bytes(bytes(data))
    assert main(["verify", str(run_dir)]) == 0


def test_a_rehashed_manifest_breaks_the_signature(run_copy, capsys):
    run_dir, _ = run_copy
    (run_dir / "report.html").write_text("forged", encoding="utf-8")
    reports.write_manifest(run_dir, run_id="forged")  # the forger re-hashes, cannot re-sign
    assert main(["verify", str(run_dir)]) == 1
    assert "signature in manifest.sig does not match" in capsys.readouterr().out


def test_a_run_signed_by_another_key_fails_against_the_trusted_key(run_copy, tmp_path, capsys):
    from rig.signing import sign_manifest

    run_dir, keys = run_copy
    sign_manifest(run_dir, load_or_create_key(tmp_path / "forger"))
    assert main(["verify", str(run_dir)]) == 0  # self-consistent ...
    capsys.readouterr()
    assert main(["verify", str(run_dir), "--pubkey", str(keys / PUB_FILE)]) == 1  # ... but not the lab's key
    assert "not by the trusted key" in capsys.readouterr().out


def test_verify_rejects_paths_escaping_the_run_folder(run_copy, tmp_path, capsys):
    from rig.signing import sign_manifest

    run_dir, keys = run_copy
    secret = tmp_path / "outside.txt"
    secret.write_text("not evidence")
    (run_dir / "link.txt").symlink_to(secret)
    doc = json.loads((run_dir / "manifest.json").read_text())
    doc["files"] += [{"path": "../outside.txt", "size": 12, "sha256": "0" * 64},
                     {"path": str(secret), "size": 12, "sha256": "0" * 64},
                     {"path": "link.txt", "size": 12, "sha256": "0" * 64}]
    (run_dir / "manifest.json").write_text(json.dumps(doc))
    sign_manifest(run_dir, load_or_create_key(keys))  # even a validly signed manifest
    assert main(["verify", str(run_dir)]) == 1
    out = capsys.readouterr().out
    assert "TAMPERED ../outside.txt: rejected: path escapes the run folder" in out
    assert f"TAMPERED {secret}: rejected: absolute path" in out
    assert "TAMPERED link.txt: rejected: a symbolic link pointing outside" in out


def test_unsigned_run_fails_verify_and_missing_folder_is_a_usage_error(run_copy, tmp_path, capsys):
    run_dir, _ = run_copy
    (run_dir / SIG_FILE).unlink()
    assert main(["verify", str(run_dir)]) == 1
    assert "the run is not signed" in capsys.readouterr().out
    assert main(["verify", str(tmp_path / "nope")]) == 2


def test_unloadable_key_leaves_the_run_unsigned_and_says_why(tmp_path):
    bad = tmp_path / "keys"
    bad.mkdir()
    (bad / KEY_FILE).write_text("not a key")
    run_dir = make_run(tmp_path / "run", balancing_samples=200)
    artifacts = reports.build(run_dir, pdf=False, key_dir=bad)
    assert SIG_FILE not in artifacts and not (run_dir / SIG_FILE).exists()
    assert "Not signed" in (run_dir / "report.html").read_text()
