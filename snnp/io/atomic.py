"""Atomic file writes: a reader sees the old file or the whole new one, never half of it."""
import contextlib
import os
import re
import socket
import tempfile
import time

#: a temporary file whose writer is not known to have died is removed once it has not been
#: written to for this long (s): another host's writer, or one whose PID was reused
STALE_AFTER = 3600.0


@contextlib.contextmanager
def atomic_write(path, mode="w"):
    """Open a temporary file beside ``path``; on success it replaces ``path`` in one step.

    The file gets the permissions a plain ``open`` would give it (an existing file's own, else
    0666 less the umask), not the private 0600 of the temporary file.

    The temporary file is named after ``path``, its host and writer's PID
    (``.{name}.snnp-{host}-{pid}-XXXXXXXX.tmp``); each write first removes the ones of the same
    target that a killed writer left: those of a PID no longer running on this host, and any
    not written to for ``STALE_AFTER`` seconds."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    _remove_stale(path, directory)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _host():
    return re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())[:32] or "host"


def _temp_prefix(path, pid=None):
    """``.{name}.snnp-{host}-{pid}-``: what the temporary files of ``path`` start with."""
    name = os.path.basename(os.fspath(path))[:150]       # keep within NAME_MAX
    return f".{name}.snnp-{_host()}-{os.getpid() if pid is None else pid}-"


def _pid_running(pid):
    if os.name == "nt":         # os.kill would terminate it there: rely on the age rule
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True             # exists but not ours, or cannot tell: keep it
    return True


def _remove_stale(path, directory):
    """Remove temporary files of ``path`` left by writers that died (see ``atomic_write``)."""
    name = os.path.basename(os.fspath(path))[:150]
    start = f".{name}.snnp-"
    host = _host()
    try:
        entries = os.listdir(directory)
    except OSError:
        return
    now = time.time()
    for entry in entries:
        if not (entry.startswith(start) and entry.endswith(".tmp")):
            continue
        parts = entry[len(start):-len(".tmp")].rsplit("-", 2)
        if len(parts) != 3 or not parts[1].isdigit():
            continue
        tmp = os.path.join(directory, entry)
        try:
            age = now - os.stat(tmp).st_mtime
        except OSError:
            continue
        dead = parts[0] == host and not _pid_running(int(parts[1]))
        if dead or age > STALE_AFTER:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _mode_for(path):
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
