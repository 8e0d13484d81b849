"""Artifacts are registered only from the artifact roots by hashing their bytes, and loaded only when
root and SHA-256 still match: a file that would run code is never unpickled on the way."""

import hashlib
import os
import re
from pathlib import Path

import joblib
import pytest

from jobs.artifacts import artifact_roots, check_for_registration, read_trusted
from jobs.training import load_model
from store.errors import UntrustedArtifact
from tests.support.hostile_artifacts import write_hostile_pickle


@pytest.fixture
def root(tmp_path) -> Path:
    folder = tmp_path / "artifacts"
    folder.mkdir()
    return folder


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "code-ran"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_hostile_pickle_really_runs_code_when_unpickled(tmp_path, marker):
    """The control for every test below: joblib.load of this file creates the marker."""
    joblib.load(write_hostile_pickle(tmp_path / "control.pkl", marker))
    assert marker.exists()


def test_registration_records_the_digest_of_a_file_under_a_root_without_unpickling_it(root, marker):
    path = write_hostile_pickle(root / "fraud" / "v2.joblib", marker)
    artifact = check_for_registration(path.as_uri(), roots=[root])
    assert (artifact.uri, artifact.path, artifact.sha256) == (path.as_uri(), path.resolve(), sha256(path))
    assert not marker.exists()


def outside_uris(tmp_path: Path, root: Path, marker: Path) -> dict[str, str]:
    evil = write_hostile_pickle(tmp_path / "evil.pkl", marker)
    (root / "link.pkl").symlink_to(evil)
    (root / "linked-folder").symlink_to(tmp_path, target_is_directory=True)
    return {
        "absolute path outside": evil.as_uri(),
        "dot-dot traversal": f"{root.as_uri()}/../evil.pkl",
        "encoded traversal": f"{root.as_uri()}/%2e%2e/evil.pkl",
        "symlink to a file outside": (root / "link.pkl").as_uri(),
        "symlinked folder": (root / "linked-folder" / "evil.pkl").as_uri(),
        "the root itself": root.as_uri(),
    }


@pytest.mark.parametrize("case", ["absolute path outside", "dot-dot traversal", "encoded traversal",
                                  "symlink to a file outside", "symlinked folder", "the root itself"])
def test_a_file_outside_the_roots_is_refused_at_registration_and_at_load(tmp_path, root, marker, case):
    uri = outside_uris(tmp_path, root, marker)[case]
    with pytest.raises(UntrustedArtifact, match="outside the artifact roots. Flywheel loads models only from "
                                                "files under FLYWHEEL_ARTIFACTS or the model spec's artifact_roots"):
        check_for_registration(uri, roots=[root])
    with pytest.raises(UntrustedArtifact, match="outside the artifact roots"):  # even with the right digest
        load_model(uri, sha256=sha256(tmp_path / "evil.pkl"), roots=[root])
    assert not marker.exists()


@pytest.mark.parametrize(("uri", "message"), [
    ("s3://models/fraud/v2.joblib", "only file:// artifacts can be checked"),
    ("https://models.example/v2.joblib", "only file:// artifacts can be checked"),
    ("file://fileserver/srv/v2.joblib", "it names another host (fileserver)"),
    ("file:v2.joblib", "it is not an absolute file path"),
    ("file:///srv/v2%00.joblib", "it is not an absolute file path"),
])
def test_a_uri_the_loader_cannot_verify_is_refused(root, uri, message):
    with pytest.raises(UntrustedArtifact, match=re.escape(f"Refused {uri}: {message}")):
        check_for_registration(uri, roots=[root])


def test_a_missing_file_or_a_fifo_under_a_root_is_refused_without_waiting(root):
    with pytest.raises(UntrustedArtifact, match=f"there is no file at {root.resolve() / 'v9.joblib'}"):
        check_for_registration((root / "v9.joblib").as_uri(), roots=[root])
    os.mkfifo(root / "pipe.joblib")  # opening a FIFO for reading would block until a writer came
    with pytest.raises(UntrustedArtifact, match="pipe.joblib is not a regular file"):
        check_for_registration((root / "pipe.joblib").as_uri(), roots=[root])


def test_a_claimed_digest_must_be_the_files(root):
    path = root / "v2.joblib"
    path.write_bytes(b"a model")
    claimed = sha256(path).upper()
    assert check_for_registration(path.as_uri(), roots=[root], claimed_sha256=claimed).sha256 == sha256(path)
    with pytest.raises(UntrustedArtifact, match=f"its SHA-256 is {sha256(path)}, not the artifact_sha256 sent "
                                                f"\\({'ab' * 32}\\)"):
        check_for_registration(path.as_uri(), roots=[root], claimed_sha256="ab" * 32)


def test_a_version_without_a_recorded_digest_is_never_loaded(root, marker):
    path = write_hostile_pickle(root / "v1.joblib", marker)
    with pytest.raises(UntrustedArtifact, match="no SHA-256 was recorded when its version was registered .* "
                                                "register the model again"):
        load_model(path.as_uri(), sha256=None, roots=[root])
    assert not marker.exists()


def test_a_file_changed_after_registration_is_refused_before_unpickling(root, marker):
    path = root / "v2.joblib"
    joblib.dump({"threshold": 0.4}, path)
    recorded = check_for_registration(path.as_uri(), roots=[root]).sha256
    assert load_model(path.as_uri(), sha256=recorded, roots=[root]) == {"threshold": 0.4}
    write_hostile_pickle(path, marker)
    with pytest.raises(UntrustedArtifact, match=f"its SHA-256 is now {sha256(path)[:16]}..., not {recorded[:16]}... "
                                                "as recorded at registration"):
        load_model(path.as_uri(), sha256=recorded, roots=[root])
    assert not marker.exists()


def test_the_bytes_checked_are_the_bytes_returned(root):
    path = root / "v2.joblib"
    path.write_bytes(b"model bytes")
    assert read_trusted(path.as_uri(), sha256=sha256(path), roots=[root]) == b"model bytes"


def test_roots_are_flywheel_artifacts_and_the_specs_resolved_against_its_folder(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real", target_is_directory=True)
    roots = artifact_roots(tmp_path / "artifacts", ["models", "/srv/shared", "../alias"], tmp_path / "specs")
    assert roots == (tmp_path.resolve() / "artifacts", tmp_path.resolve() / "specs" / "models", Path("/srv/shared"),
                     tmp_path.resolve() / "real")
