"""The run's hold on its workdir: an exclusive lock, and stop signals turned into a flag."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
from collections.abc import Iterator
from typing import Any


class WorkdirBusyError(RuntimeError):
    """Another live process holds the workdir."""


@contextlib.contextmanager
def workdir_lock(workdir: str, process_index: int) -> Iterator[None]:
    """Holds an exclusive lock on the workdir for this process (released even on SIGKILL)."""
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, f".lock-{process_index}")
    f = open(path, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        owner = f.read().strip() or "?"
        f.close()
        raise WorkdirBusyError(
            f"workdir {workdir} is in use by another run (pid {owner}); wait for it to end "
            "or use another --workdir"
        ) from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    try:
        yield
    finally:
        fcntl.flock(f, fcntl.LOCK_UN)
        f.close()


@contextlib.contextmanager
def stop_signals() -> Iterator[dict[str, Any]]:
    """Turns SIGTERM/SIGINT into a flag (`flag['signal']`) the loop checks after each step."""
    flag: dict[str, Any] = {"signal": None}

    def handler(signum, _frame):
        flag["signal"] = signal.Signals(signum).name

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield flag
    finally:
        for s, h in old.items():
            signal.signal(s, h)
