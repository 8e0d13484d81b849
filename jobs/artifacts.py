"""Which model artifacts Flywheel will open: files under the artifact roots whose bytes still have the
SHA-256 recorded when their version was registered.

pickle and joblib run code while they load, so naming a file must never be enough to have it loaded.
Registering a version hashes the file's bytes (it is never unpickled there); loading reads the bytes once,
checks root and digest, and unpickles those same bytes, so the file cannot be swapped in between.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from store.errors import UntrustedArtifact

_CHUNK = 1 << 20
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
RULE = "Flywheel loads models only from files under FLYWHEEL_ARTIFACTS or the model spec's artifact_roots"


@dataclass(frozen=True)
class Artifact:
    uri: str
    path: Path  # with links and '..' resolved
    sha256: str


def artifact_roots(artifacts_dir: str | Path, spec_roots: Sequence[str], spec_dir: str | Path) -> tuple[Path, ...]:
    """FLYWHEEL_ARTIFACTS and the spec's artifact_roots (relative ones against the spec's folder), resolved."""
    folders = [Path(artifacts_dir), *(Path(spec_dir) / root for root in spec_roots)]
    return tuple(dict.fromkeys(Path(os.path.realpath(folder)) for folder in folders))


def check_for_registration(uri: str, *, roots: Sequence[str | Path], claimed_sha256: str | None = None) -> Artifact:
    """The artifact at uri with the SHA-256 of its bytes, or UntrustedArtifact. Never unpickles; a file
    outside the roots is not even opened."""
    path = _path_under_roots(uri, roots)
    digest = hashlib.sha256()
    with _open_regular(uri, path) as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    found = digest.hexdigest()
    if claimed_sha256 is not None and claimed_sha256.lower() != found:
        raise UntrustedArtifact(f"Refused {uri}: its SHA-256 is {found}, not the artifact_sha256 sent "
                                f"({claimed_sha256.lower()}); send the digest of the file you wrote.")
    return Artifact(uri, path, found)


def read_trusted(uri: str, *, sha256: str | None, roots: Sequence[str | Path]) -> bytes:
    """The artifact's bytes, only when it is under a root and they have the SHA-256 recorded at registration."""
    if not sha256:
        raise UntrustedArtifact(f"Refused to load {uri}: no SHA-256 was recorded when its version was registered "
                                "(registered before Flywheel checked artifacts); register the model again, or "
                                "record its digest with `flywheel artifacts pin`.")
    path = _path_under_roots(uri, roots)
    with _open_regular(uri, path) as handle:
        data = handle.read()
    found = hashlib.sha256(data).hexdigest()
    if found != sha256:
        raise UntrustedArtifact(f"Refused to load {uri}: its SHA-256 is now {found[:16]}..., not {sha256[:16]}... "
                                "as recorded at registration, so the file changed since; register it again if "
                                "the change is yours.")
    return data


def _path_under_roots(uri: str, roots: Sequence[str | Path]) -> Path:
    roots = [Path(os.path.realpath(root)) for root in roots]
    parsed = urlparse(uri)
    where = ", ".join(str(root) for root in roots) or "none configured"
    if parsed.scheme != "file":
        raise UntrustedArtifact(f"Refused {uri}: only file:// artifacts can be checked. {RULE} ({where}); "
                                "copy the model there and send its file:// URI.")
    if parsed.netloc not in ("", "localhost"):
        raise UntrustedArtifact(f"Refused {uri}: it names another host ({parsed.netloc}). {RULE} ({where}).")
    raw = url2pathname(unquote(parsed.path))
    if "\x00" in raw or not Path(raw).is_absolute():
        raise UntrustedArtifact(f"Refused {uri}: it is not an absolute file path. {RULE} ({where}).")
    path = Path(os.path.realpath(raw))
    if not any(path.is_relative_to(root) and path != root for root in roots):
        raise UntrustedArtifact(f"Refused {uri}: with links and '..' resolved it is {path}, outside the artifact "
                                f"roots. {RULE} ({where}).")
    return path


def _open_regular(uri: str, path: Path):
    try:
        fd = os.open(path, _OPEN_FLAGS)  # no following a link swapped in, no waiting on a FIFO
    except FileNotFoundError:
        raise UntrustedArtifact(f"Refused {uri}: there is no file at {path}.") from None
    except OSError as exc:
        raise UntrustedArtifact(f"Refused {uri}: cannot open {path} ({exc.strerror}).") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UntrustedArtifact(f"Refused {uri}: {path} is not a regular file.")
    return os.fdopen(fd, "rb")
