"""Atomic outputs, JSON and hashing: the small file handling every stage needs.

A stage writes into a temporary sibling and renames it into place only once complete, so a crash
or a bad input never leaves a half-written output and never destroys the previous one.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path


class LadderError(Exception):
    """An expected failure (bad params, bad input, missing upstream output): one line, exit 1."""


def _tmp_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


def clear_dead_siblings(path: Path) -> None:
    """Remove the temporary siblings of `path` that killed processes left (`.NAME.tmp-PID`); a process
    killed between its two renames left the previous output aside as `.NAME.old-PID`: put it back."""
    for kind in ("old", "tmp"):
        for sib in path.parent.glob(f".{path.name}.{kind}-*"):
            pid = sib.name.rsplit("-", 1)[1]
            if not pid.isdigit() or _alive(int(pid)):
                continue
            if kind == "old" and not path.exists():
                os.replace(sib, path)
            else:
                remove(sib)


@contextlib.contextmanager
def atomic(*paths: str | os.PathLike) -> Iterator[list[Path]]:
    """Yield temporary siblings of `paths`; on success rename each onto its path (files or folders)."""
    finals = [Path(p) for p in paths]
    tmps = []
    for p in finals:
        p.parent.mkdir(parents=True, exist_ok=True)
        clear_dead_siblings(p)
        tmps.append(_tmp_sibling(p))
        remove(tmps[-1])
    try:
        yield tmps
    except BaseException:
        for t in tmps:
            remove(t)
        raise
    for tmp, final in zip(tmps, finals):
        if tmp.is_dir() and final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, old)
            os.replace(tmp, final)
            try:
                remove(old)
            except KeyboardInterrupt:  # Ctrl-C while the previous output is deleted: finish it, then stop
                remove(old)
                raise
        else:
            os.replace(tmp, final)


def remove(p: Path) -> None:
    """A file, link or folder gone; a link is removed itself, never what it points to."""
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    elif p.exists() or p.is_symlink():
        p.unlink()


@contextlib.contextmanager
def written(path: str | os.PathLike, *errors: type[Exception]) -> Iterator[None]:
    """Around the writing of `path` (inside it, `atomic`): a failed write, as a full disk makes it, is
    one line naming the path. torch's writer raises RuntimeError for it (with a message about stream
    positions), safetensors its own error (passed in `errors`); `atomic` has put back what was there."""
    try:
        yield
    except LadderError:
        raise
    except (OSError, RuntimeError, *errors) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise LadderError(
            f"{path}: cannot be written ({reason}); is the disk full? What was there is intact: "
            "free some space and rerun (training resumes from its last checkpoint)"
        ) from None


def open_owned(path: str | os.PathLike, flags: int = os.O_RDWR | os.O_CREAT) -> int:
    """A file written in place rather than renamed into place (a lock: the inode is what is held), opened
    without following a link, so a symlink planted there is refused instead of written through."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise LadderError(f"{path}: is a symbolic link; ladder writes through no link (remove it)") from None
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic(path) as (tmp,):
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj) -> None:
    """Strict JSON: a NaN or infinity is an error here, not a file other tools cannot read."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")


class BrokenFile(LadderError, ValueError):
    """A file that exists but does not parse; a ValueError too, for callers that treat it as stale."""


def read_json(path: str | os.PathLike):
    try:
        return json.loads(Path(path).read_text())
    except ValueError as e:  # UnicodeDecodeError included
        raise BrokenFile(
            f"{path}: not valid JSON ({str(e).splitlines()[0]}); rerun the stage that writes it "
            "or restore it with `dvc checkout`"
        ) from None


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def user_target(path: str | os.PathLike, earlier, what: str) -> Path:
    """An output path the user named: refused when something is there that is not an earlier output
    of this command (`earlier(path)` says), since writing would replace it. Nothing there, or an empty
    folder, is fine."""
    path = Path(path)
    if not path.exists() or (path.is_dir() and not any(path.iterdir())) or earlier(path):
        return path
    kind = "a folder" if path.is_dir() else "a file"
    raise LadderError(
        f"{path}: already exists and is {kind} this command did not write; "
        f"name a new path for the {what} (or remove it first)"
    )


def is_png(path: Path) -> bool:
    """An earlier figure: a PNG file (by its signature)."""
    try:
        with open(path, "rb") as f:
            return f.read(8) == b"\x89PNG\r\n\x1a\n"
    except OSError:  # a folder, or unreadable
        return False


def need(path: str | os.PathLike, what: str) -> Path:
    """A required input; a clear error naming it when missing."""
    path = Path(path)
    if not path.exists():
        raise LadderError(f"{path}: missing {what} (run the upstream stage first)")
    return path


def jsonl_texts(path: Path, max_bytes: int | None = None, batch: int = 256) -> Iterator[list[str]]:
    """Batches of the `text` fields of a jsonl file (a data split), stopping after `max_bytes`."""
    seen, buf = 0, []
    with open(path) as f:
        for line in f:
            buf.append(json.loads(line)["text"])
            seen += len(line)
            if len(buf) == batch:
                yield buf
                buf = []
            if max_bytes and seen >= max_bytes:
                break
    if buf:
        yield buf
