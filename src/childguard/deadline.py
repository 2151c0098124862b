# Owns interrupting a block of code in any thread once its time is up: one watchdog thread.
"""A deadline for a block of Python code running in a thread other than the main one, where
SIGALRM cannot reach: a Dask worker's task threads, a service's thread pool.

`interrupt_after(seconds, make_exception)` arms the watchdog for the calling thread; when the
time is up before the block ends, the watchdog raises the exception in that thread
(`PyThreadState_SetAsyncExc`), which the interpreter delivers at the thread's next bytecode, as
it delivers a signal's handler exception in the main thread: code inside one long C call
(one decoder call) is interrupted when that call returns. Leaving the block disarms the
watchdog under its lock, and withdraws an exception sent but not yet delivered, so nothing is
ever raised after the block.
"""

from __future__ import annotations

import contextlib
import ctypes
import heapq
import itertools
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

_set_async_exc = ctypes.pythonapi["PyThreadState_SetAsyncExc"]  # two prototypes of one function
_set_async_exc.argtypes = (ctypes.c_ulong, ctypes.py_object)
_set_async_exc.restype = ctypes.c_int
_clear_async_exc = ctypes.pythonapi["PyThreadState_SetAsyncExc"]
_clear_async_exc.argtypes = (ctypes.c_ulong, ctypes.c_void_p)
_clear_async_exc.restype = ctypes.c_int


@dataclass
class _Armed:
    thread_id: int
    deadline: float
    exception: type[BaseException]
    state: str = "armed"  # "armed", then "fired" or "done"


class _Watchdog:
    """The one thread that watches every armed block's deadline."""

    def __init__(self) -> None:
        self.forget()

    def forget(self) -> None:
        """Start afresh (and so in a forked child: the parent's lock may have been held at the
        fork by its watchdog, which the child does not have, and its deadlines are the
        parent's)."""
        self._lock = threading.Condition()
        self._queue: list[tuple[float, int, _Armed]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float, exception: type[BaseException]) -> _Armed:
        armed = _Armed(threading.get_ident(), time.monotonic() + seconds, exception)
        with self._lock:
            heapq.heappush(self._queue, (armed.deadline, next(self._order), armed))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._watch, name="childguard-deadline", daemon=True
                )
                self._thread.start()
            self._lock.notify()
        return armed

    def disarm(self, armed: _Armed) -> None:
        with self._lock:
            if armed.state == "fired":  # sent; withdraw it if it has not been delivered yet
                _clear_async_exc(armed.thread_id, None)
            armed.state = "done"

    def _watch(self) -> None:
        with self._lock:
            while True:
                while self._queue and self._queue[0][2].state != "armed":
                    heapq.heappop(self._queue)
                if not self._queue:
                    self._lock.wait()
                    continue
                deadline, _, armed = self._queue[0]
                left = deadline - time.monotonic()
                if left > 0:
                    self._lock.wait(left)
                    continue
                heapq.heappop(self._queue)
                armed.state = "fired"
                _set_async_exc(armed.thread_id, armed.exception)


_WATCHDOG = _Watchdog()
os.register_at_fork(after_in_child=_WATCHDOG.forget)


@contextlib.contextmanager
def interrupt_after(seconds: float, exception: type[BaseException]) -> Iterator[None]:
    """Raise `exception` (a class, instantiated with no arguments) in the calling thread if
    the block is still running after `seconds`."""
    armed = _WATCHDOG.arm(seconds, exception)
    try:
        yield
    finally:
        _WATCHDOG.disarm(armed)
