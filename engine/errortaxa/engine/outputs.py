"""The one way ErrorTaxa writes files: command outputs, study results and reports, the server's store.

``open_text(path)`` / ``open_binary(path)`` (and ``write_text`` / ``write_bytes``) decide by what
``path`` is:

- ``-``: standard output (never closed);
- a regular file, or a name that does not exist yet: written to a temporary file in the same
  folder, fsynced, renamed over the name and the folder fsynced; a crash or an error leaves the
  old file (or none), never a torn one. A replaced file keeps its permissions (and owner where
  allowed);
- a symbolic link: followed to its final target, which is written as above; the link stays;
- anything else (a FIFO, a character or block device, a socket) and every path in ``/dev`` or
  ``/proc`` (``/dev/stdout``, ``/dev/fd/N`` as in ``--output >(gzip)``, ``/dev/null``), reached
  directly or through a link: opened and written in place, never renamed over.
"""

from __future__ import annotations

import os
import secrets
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

STDIO = "-"  # the name that means standard output (and standard input for inputs)
_DIRECT_ROOTS = ("/dev/", "/proc/")
_MAX_LINKS = 40  # as the kernel's ELOOP limit


def resolve_links(path: str | os.PathLike[str]) -> tuple[Path, bool]:
    """The final target of ``path``'s chain of symbolic links, and whether the chain passes through
    ``/dev`` or ``/proc`` (where names are devices or links to open descriptors)."""
    current = Path(os.path.abspath(path))
    special = False
    for _ in range(_MAX_LINKS):
        special = special or str(current).startswith(_DIRECT_ROOTS)
        if not current.is_symlink():
            return current, special
        # a relative target counts from the link's real folder (its ".." is not lexical)
        current = Path(os.path.abspath(Path(os.path.realpath(current.parent)) / os.readlink(current)))
    raise OSError(40, "Too many levels of symbolic links", str(path))


def writes_in_place(path: str | os.PathLike[str]) -> bool:
    """True where ``path`` is written directly rather than replaced: ``-``, a non-regular file
    (FIFO, device, socket, folder: opening it reports the error), or a path in /dev or /proc."""
    if os.fspath(path) == STDIO:
        return True
    target, special = resolve_links(path)
    if special:
        return True
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return False
    return not stat.S_ISREG(mode)


@contextmanager
def open_text(path: str | os.PathLike[str]) -> Iterator[IO[str]]:
    """A UTF-8 text stream to ``path``, written as the module docstring says once the block ends."""
    with _open(path, binary=False) as stream:
        yield stream


@contextmanager
def open_binary(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """A binary stream to ``path``, written as the module docstring says once the block ends."""
    with _open(path, binary=True) as stream:
        yield stream


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with open_text(path) as stream:
        stream.write(text)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with open_binary(path) as stream:
        stream.write(data)


@contextmanager
def _open(path: str | os.PathLike[str], *, binary: bool) -> Iterator[IO[Any]]:
    if os.fspath(path) == STDIO:
        stdout: IO[Any] = sys.stdout.buffer if binary else sys.stdout
        yield stdout
        stdout.flush()
        return
    if writes_in_place(path):
        with _stream(path, binary) as stream:
            yield stream
        return
    target, _ = resolve_links(path)
    with _replacing(target, binary=binary) as stream:
        yield stream


@contextmanager
def _replacing(target: Path, *, binary: bool) -> Iterator[IO[Any]]:
    """A temporary file beside ``target``, renamed over it when the block ends without error."""
    try:
        old: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        old = None
    tmp, fd = _create_beside(target, 0o666 if old is None else stat.S_IMODE(old.st_mode))
    try:
        with _stream(fd, binary) as stream:
            if old is not None:
                os.chmod(fd, stat.S_IMODE(old.st_mode))  # the umask may have narrowed the mode
                if (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
                    with suppress(PermissionError):
                        os.chown(fd, old.st_uid, old.st_gid)
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, target)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)


def _stream(file: str | os.PathLike[str] | int, binary: bool) -> IO[Any]:
    return open(file, "wb") if binary else open(file, "w", encoding="utf-8")


def _create_beside(target: Path, mode: int) -> tuple[Path, int]:
    """A new, empty hidden file ``.NAME.XXXXXXXX.partial`` in ``target``'s folder, and its descriptor.
    Errors name the folder (missing, not writable), not the temporary file."""
    while True:
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
        try:
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            continue
        except OSError as error:
            raise type(error)(error.errno, error.strerror, str(target.parent)) from None


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink in folder ``path`` durable (where the platform has folder descriptors)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
