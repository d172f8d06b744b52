"""Files that are whole or absent, and one writer at a time: atomic writes, the fcntl lock of
a file being written, JSON lines, and the SHA-256 of a file or folder. No TensorFlow, and
nothing of a run folder's format (see l2caf.runs.folder)."""
import errno
import fcntl
import hashlib
import json
import os
import socket
import sys
import threading
import time
from typing import IO, Any, BinaryIO, Callable, Dict, List, Optional, Set

from l2caf.errors import OutputError, RunError


def sha256(path: str) -> str:
    """The SHA-256 of a file, or of every file of a folder with its relative name (a
    SavedModel): what a run folder records of its checkpoint and label list."""
    digest = hashlib.sha256()
    paths = [path] if os.path.isfile(path) else sorted(
        os.path.join(folder, name) for folder, _, names in os.walk(path) for name in names)
    for file_path in paths:
        digest.update(os.path.relpath(file_path, path).encode("utf-8"))
        with open(file_path, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def write_atomically(path: str, write: Callable[[BinaryIO], object]) -> None:
    """Calls write(stream) on a temporary file, syncs it and renames it to `path`: the file
    is whole or absent, and no temporary file stays behind whatever stops the write. OSError
    (a full disk, no permission) becomes an OutputError."""
    temporary = path + ".tmp"
    try:
        with open(temporary, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        try:
            os.remove(temporary)
        except OSError:
            pass  # never made, or renamed already
        if isinstance(error, OSError):
            raise OutputError("cannot write %s: %s" % (path, error.strerror or error)) \
                from None
        raise


class FolderLock(object):
    """Makes this process the only writer of the file `path` (a results or scores file) while
    the `with` block runs: an fcntl (POSIX) lock on dirname/.basename.lock, which holds this
    process's pid, host, start time and command line. A second writer gets a RunError naming
    the holder. The system releases the lock when its process ends, however it ends (kill
    -9 included), so a lock left by a killed process is simply taken over. On a file system
    without locks, `problem` says so and nothing is locked."""

    _held: Set[str] = set()  # lock files this process holds: taking one twice fails too
    _held_guard = threading.Lock()

    def __init__(self, path: str):
        self.path = path
        self.lock_path = os.path.join(os.path.dirname(path), "." + os.path.basename(path)
                                      + ".lock")
        self.problem: Optional[str] = None
        self._stream: Optional[IO[str]] = None

    def __enter__(self) -> "FolderLock":
        key = os.path.realpath(self.lock_path)
        with self._held_guard:
            if key in self._held:  # a second fd would also drop the first's POSIX lock
                raise RunError("%s is being written by this process already; one writer per "
                               "file" % self.path)
            try:
                stream = open(self.lock_path, "a+")
            except OSError as error:
                raise OutputError("cannot write %s: %s"
                                  % (self.lock_path, error.strerror or error)) from None
            try:
                fcntl.lockf(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                stream.close()
                if error.errno not in (errno.EACCES, errno.EAGAIN):
                    self.problem = ("the file system of %s has no locks (%s): another "
                                    "process writing %s at the same time would not be "
                                    "noticed" % (self.lock_path, error.strerror, self.path))
                    return self
                raise RunError("%s is being written by another process (%s); wait for it "
                               "to end or stop it: two writers would overwrite each other's "
                               "files" % (self.path, self._holder())) from None
            self._stream = stream
            self._held.add(key)
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                  "command": " ".join(sys.argv)[:300]}
        try:
            stream.seek(0)
            stream.truncate()
            stream.write(json.dumps(holder) + "\n")
            stream.flush()
        except OSError:
            pass  # (a full disk) the holder is only for the message of a second writer
        return self

    def _holder(self):
        """What the lock file says of the process holding it (it may not have said yet)."""
        for _ in range(10):
            try:
                with open(self.lock_path) as stream:
                    holder = json.loads(stream.read() or "null")
            except (OSError, ValueError):
                holder = None
            if holder:
                return "pid %s on host %s since %s: %s" % (
                    holder.get("pid"), holder.get("host"), holder.get("since"),
                    holder.get("command"))
            time.sleep(0.05)
        return "it has not said which"

    def __exit__(self, *exc_info: object) -> None:
        if self._stream is not None:
            with self._held_guard:
                try:
                    self._stream.truncate(0)  # no holder; the file stays (see the README)
                except OSError:
                    pass
                self._stream.close()  # releases the lock
                self._stream = None
                self._held.discard(os.path.realpath(self.lock_path))


def read_json_lines(path: str) -> List[Dict[str, Any]]:
    """The JSON objects of a file of JSON lines, leaving out every line that is not one (a
    torn line, invalid UTF-8, a list): for what only needs the files the lines name (see
    l2caf.runs.lines for the reader that checks every line)."""
    records = []
    with open(path, "rb") as stream:
        for line in stream:
            try:
                record = json.loads(line.decode("utf-8"))
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
    return records
