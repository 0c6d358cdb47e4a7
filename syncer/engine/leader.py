"""Who may poll: the SQLite process lock and the polling lease.

* SQLite supports one syncer process per database: :class:`ProcessLock` takes an exclusive
  ``flock`` on ``<database>.lock``. The kernel drops it when the process dies, even by SIGKILL,
  so a restart never waits; a second process is refused at once with a clear message.
* The polling lease (``checkpoints.lease_owner``/``lease_expires_at``) makes one process per
  stream the reader. :class:`Lease` renews it before every page; a lease left by a process that
  died on this host (its pid is gone) is taken over at once instead of waiting for expiry. On
  SQLite the process lock already proves nobody else runs, so any lease is taken over.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
import uuid
from pathlib import Path
from typing import IO

from sqlalchemy import make_url, update

from ..errors import StateError
from ..state.schema import checkpoints
from ..state.store import Store


def new_owner() -> str:
    """``host:pid:random``: unique per process start, readable in ``syncer status``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_is_dead(owner: str) -> bool:
    """True when ``owner`` is a process of this host that no longer runs."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    return int(pid_text) != os.getpid() and not _pid_alive(int(pid_text))


class ProcessLock:
    """An exclusive lock on a SQLite state database (no-op on PostgreSQL)."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.path: Path | None = None
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            database = Path(str(parsed.database))
            self.path = database.with_name(database.name + ".lock")
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        if self.path is None or self._file is not None:
            return
        try:
            handle = self.path.open("a+")
        except OSError as exc:  # a missing directory, a file in the way, no permission
            raise StateError(
                f"cannot open the SQLite state database {self.path.with_suffix('')}: "
                f"{exc.strerror or exc} ({self.path})"
            ) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise StateError(
                f"the SQLite state database is in use by {holder}: SQLite supports one syncer "
                "process at a time; stop the other one, or use PostgreSQL to run several"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class LeaseLost(StateError):
    """Another process took the polling lease (ours expired): stop reading at once."""


class Lease:
    """The polling lease of one stream, held by ``owner``."""

    def __init__(self, store: Store, stream: str, owner: str, ttl: float) -> None:
        self.store = store
        self.stream = stream
        self.owner = owner
        self.ttl = ttl
        self._renew_after = 0.0

    def acquire(self) -> bool:
        """Take or renew the lease; False when another live process holds it."""
        if self.store.acquire_lease(self.stream, self.owner, self.ttl):
            self._renew_after = time.monotonic() + self.ttl / 3
            return True
        cp = self.store.checkpoint(self.stream)
        holder = cp.lease_owner if cp else None
        if holder is None or not (self.store.is_sqlite or owner_is_dead(holder)):
            return False
        with self.store.transaction() as conn:  # compare-and-set on the dead holder
            result = conn.execute(
                update(checkpoints)
                .where(checkpoints.c.stream == self.stream, checkpoints.c.lease_owner == holder)
                .values(lease_owner=self.owner, lease_expires_at=time.time() + self.ttl)
            )
        if result.rowcount == 1:
            self._renew_after = time.monotonic() + self.ttl / 3
            return True
        return False

    def renew(self) -> None:
        """Called before each page (renews once a third of the TTL has passed): raises
        :class:`LeaseLost` when the lease is gone."""
        if time.monotonic() < self._renew_after:
            return
        if not self.acquire():
            raise LeaseLost(f"lost the polling lease of {self.stream} to another process")

    def release(self) -> None:
        self._renew_after = 0.0
        self.store.release_lease(self.stream, self.owner)

    def holder(self) -> tuple[str | None, float | None]:
        cp = self.store.checkpoint(self.stream)
        return (cp.lease_owner, cp.lease_expires_at) if cp else (None, None)
