"""Files of an app directory that several people write: a whole line per append, and
modes that let every member of the directory's group go on writing.

An app directory that its group may write (``chmod g+w``) is shared: what the tool
creates in it is readable and writable by that group (and owned by it), whatever the
creator's umask; others get what the umask gives. A file that exists keeps its mode
and group: appending never rewrites it. A file a member cannot write is refused with
its owner and the command that fixes it, never a traceback.
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import os
import pwd
import shlex
import stat
from collections.abc import Iterator
from pathlib import Path

from ..errors import ConfigError

_GROUP_RW = stat.S_IRGRP | stat.S_IWGRP


def append_line(path: Path, line: bytes) -> None:
    """Append ``line`` (ending in a newline) whole: one write on an O_APPEND descriptor,
    under ``flock``, then fsync. A line torn by a writer killed mid-write is ended first,
    so it stays one damaged line (which readers skip) and never swallows this one."""
    fd = _open(path, os.O_RDWR | os.O_APPEND)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        view = memoryview(line)
        while view:  # a regular file takes it in one write but when the disk is full
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except PermissionError as error:
        raise refused(path, error) from None
    finally:
        os.close(fd)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold ``flock`` on ``path`` (created if missing); reading it is enough to lock it."""
    fd = _open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def make_dir(path: Path) -> None:
    """Create the directory ``path`` (if missing): private to its owner, or to the group
    too when its parent is shared. It may hold config files, and so secrets: never
    others'."""
    if path.is_dir():
        return
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        return
    except PermissionError as error:
        raise refused(path.parent, error) from None
    parent = path.parent.stat()
    if shared(parent):
        os.chmod(path, 0o770)
        _group_of(path, parent)


def shared(directory: os.stat_result) -> bool:
    """Whether a directory is its group's too (group-writable)."""
    return bool(directory.st_mode & stat.S_IWGRP)


def give_to_group(path: Path) -> None:
    """A file just created in a shared directory: the group's, readable and writable by
    it (a file in a directory nobody shares is left as the umask made it)."""
    parent = path.parent.stat()
    if shared(parent):
        with contextlib.suppress(PermissionError):
            os.chmod(path, stat.S_IMODE(path.stat().st_mode) | _GROUP_RW)
        _group_of(path, parent)


def _open(path: Path, flags: int) -> int:
    """Open ``path``, creating it the way `give_to_group` says when it is missing."""
    while True:
        try:
            return os.open(path, flags)
        except FileNotFoundError:
            pass
        except PermissionError as error:
            raise refused(path, error) from None
        try:
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue  # another writer created it meanwhile: open theirs
        except PermissionError as error:
            raise refused(path.parent, error) from None
        give_to_group(path)
        return fd


def _group_of(path: Path, parent: os.stat_result) -> None:
    """Give ``path`` its directory's group, as a setgid directory would (when we may)."""
    if path.stat().st_gid != parent.st_gid:
        with contextlib.suppress(PermissionError):
            os.chown(path, -1, parent.st_gid)


def refused(path: Path, error: PermissionError) -> ConfigError:
    """What to tell someone who may not write a file (or create one in a directory)."""
    try:
        info, parent = path.stat(), path.parent.stat()
    except PermissionError:  # inside a directory we may not enter: that one is the trouble
        return refused(path.parent, error) if path.parent != path else _unknown(path, error)
    except OSError:
        return _unknown(path, error)
    owner, group = _user(info.st_uid), _group(info.st_gid)
    mode = stat.S_IMODE(info.st_mode)
    where = shlex.quote(str(path))
    bits = "g+rwx" if path.is_dir() else "g+rw"
    return ConfigError(
        f"{path}: {error.strerror} (owner {owner}, group {group}, mode {mode:04o}); "
        f"everyone who deploys this app must be able to write it: ask {owner} (or root) "
        f"to run `chgrp {shlex.quote(_group(parent.st_gid))} {where} && chmod {bits} {where}`"
    )


def _unknown(path: Path, error: PermissionError) -> ConfigError:
    return ConfigError(f"{path}: {error.strerror}; check its permissions")


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)
