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

import ctypes
import heapq
import itertools
import os
import threading
import time
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
    """The one thread that watches every armed block's deadline.

    The lock is a plain `threading.Lock`, taken with `with`: the interpreter runs no bytecode
    between acquiring it and entering the block, so an exception sent into a thread (by this
    watchdog, for an enclosing block) cannot leave it held. A `threading.Condition`'s own
    `__enter__` is Python code, and an exception delivered there, after the acquire, would.
    """

    def __init__(self) -> None:
        self.forget()

    def forget(self) -> None:
        """Start afresh (and so in a forked child: the parent's lock may have been held at the
        fork by its watchdog, which the child does not have, and its deadlines are the
        parent's)."""
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: list[tuple[float, int, _Armed]] = []
        self._order = itertools.count()
        self._stacks: dict[int, list[_Armed]] = {}  # each thread's armed blocks, innermost last
        self._thread: threading.Thread | None = None

    def arm(self, armed: _Armed) -> None:
        with self._lock:
            self._stacks.setdefault(armed.thread_id, []).append(armed)
            heapq.heappush(self._queue, (armed.deadline, next(self._order), armed))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._watch, name="childguard-deadline", daemon=True
                )
                self._thread.start()
            self._wake.notify()

    def disarm(self, armed: _Armed) -> _Armed | None:
        """End `armed` and every block armed inside it (one whose own exit was cut short by
        an exception is ended with it, so it can never fire later). Idempotent: an exception
        delivered part-way leaves every entry either still on the stack or done. Returns an
        enclosing block whose exception may have been withdrawn with this one's, which the
        caller raises."""
        with self._lock:
            stack = self._stacks.get(armed.thread_id, [])
            if armed not in stack:
                return None
            withdrew = False
            while stack:
                top = stack[-1]
                if top.state == "fired":  # sent; withdraw it if it has not been delivered
                    _clear_async_exc(armed.thread_id, None)
                    withdrew = True
                top.state = "done"
                del stack[-1]
                if top is armed:
                    break
            if not stack:
                del self._stacks[armed.thread_id]
            return next((a for a in stack if a.state == "fired"), None) if withdrew else None

    def _watch(self) -> None:
        with self._lock:
            while True:
                while self._queue and self._queue[0][2].state != "armed":
                    heapq.heappop(self._queue)
                if not self._queue:
                    self._wake.wait()
                    continue
                deadline, _, armed = self._queue[0]
                left = deadline - time.monotonic()
                if left > 0:
                    self._wake.wait(left)
                    continue
                heapq.heappop(self._queue)
                armed.state = "fired"
                _set_async_exc(armed.thread_id, armed.exception)


_WATCHDOG = _Watchdog()
os.register_at_fork(after_in_child=_WATCHDOG.forget)


class interrupt_after:
    """Raise `exception` (a class, instantiated with no arguments) in the calling thread if
    the block is still running after `seconds`."""

    def __init__(self, seconds: float, exception: type[BaseException]) -> None:
        self._seconds = seconds
        self._exception = exception
        self._armed: _Armed | None = None

    def __enter__(self) -> None:
        armed = _Armed(threading.get_ident(), time.monotonic() + self._seconds, self._exception)
        self._armed = armed
        _WATCHDOG.arm(armed)

    def __exit__(self, kind: type[BaseException] | None, value: object, tb: object) -> None:
        armed = self._armed
        if armed is None:
            return
        late: BaseException | None = None
        while True:  # an enclosing block's exception may arrive mid-way: disarm is idempotent
            try:
                outer = _WATCHDOG.disarm(armed)
                break
            except BaseException as exc:
                late = exc
        if late is not None:
            raise late
        if outer is not None and not isinstance(value, outer.exception):
            raise outer.exception()
