"""Ctrl-C during a run: one stop request that every stage heeds at its next step.

:class:`InterruptWatch` is entered for the duration of ``minimize``. When that runs in the main thread and
SIGINT's Python handler is Python's default (``signal.default_int_handler``), it installs a handler that only
records the first SIGINT as a stop request, and, where the compiled plugin is built, sets the plugin's stop
request and arms its C-level SIGINT watch (``StopRequest.h``: it sets the request even while a compiled stage
holds no Python lock, then passes the signal on to CPython's own handler). The Python stage loops read the request
through :meth:`InterruptWatch.requested` (the run recorder polls it at every step and before every stage); the
compiled and device stages read the plugin's at every step and end with stop reason "interrupted"; OpenMM's
L-BFGS stages are stopped by the plugin's C++ reporter. Work that reads no request (the set-up stages: slow
modes, the generator's fit, the preconditioner) gets :data:`GRACE` seconds: a request nothing has read by then
raises KeyboardInterrupt in the main thread, as a second SIGINT does at once. The previous handlers are put back on
exit, whatever the exit.

Left alone (the watch does nothing, and a SIGINT does what it did before): a call from another thread (a Dask
worker), and a process whose SIGINT handler is not Python's default (the user's own handler, or a nested run:
that one shares the outer run's watch).
"""
from __future__ import annotations

import _thread
import signal
import threading
from typing import Any, Optional

#: Seconds a stop request may go unread (by a stage loop) before KeyboardInterrupt is raised in the main thread.
GRACE = 1.0

_active: Optional["InterruptWatch"] = None  # the watch whose handler is installed (main thread only)


def _plugin() -> Any:
    """The compiled plugin, or None where it is not built (the Python handler alone then stops the Python loops)."""
    from . import compiled
    module = compiled._load()
    return module if module is not None and hasattr(module, "beginInterruptWatch") else None


def _let_pending_handlers_run() -> None:
    """A Python function call: the interpreter runs the Python handlers of signals already received on entering
    one, so a SIGINT that arrived during the run is handled by the watch's handler, not by the one restored."""


class InterruptWatch:
    """``with InterruptWatch() as watch:`` the run; ``watch.requested()`` says whether Ctrl-C asked it to stop."""

    def __init__(self) -> None:
        self.active = False           # this watch installed the handlers
        self.outer: Optional[InterruptWatch] = None
        self._requested = False
        self._signals = 0             # SIGINTs the handler saw
        self._read = False            # a stage loop read the request
        self._closing = False         # in __exit__: the handler only records, so that the clean-up completes
        self._previous: Any = None
        self._plugin: Any = None
        self._lock = threading.Lock()

    def __enter__(self) -> "InterruptWatch":
        if threading.current_thread() is not threading.main_thread():
            return self
        handler = signal.getsignal(signal.SIGINT)
        if _active is not None and handler == _active._handle:
            self.outer = _active
            return self
        if handler is not signal.default_int_handler:
            return self
        self._activate()
        return self

    def _activate(self) -> None:
        global _active
        self._plugin = _plugin()
        self._previous = signal.signal(signal.SIGINT, self._handle)
        self.active, _active = True, self
        if self._plugin is not None:
            self._plugin.beginInterruptWatch()

    def _handle(self, signum: int, frame: Any) -> None:
        self._signals += 1
        if self._signals > 1:  # a second SIGINT (or GRACE passed unread): at once, unless cleaning up
            if not self._closing:
                raise KeyboardInterrupt
            return
        self._requested = True
        if self._plugin is not None:
            self._plugin.requestStop()
        timer = threading.Timer(GRACE, self._unread)
        timer.daemon = True
        timer.start()

    def _unread(self) -> None:
        """GRACE seconds after the request: unread, it becomes a KeyboardInterrupt (the handler raises on the
        second signal)."""
        with self._lock:
            if self.active and not self._read:
                _thread.interrupt_main(signal.SIGINT)

    def requested(self) -> bool:
        """Whether Ctrl-C asked the run to stop (this watch's, the outer run's or the plugin's request); what the
        stage loops read."""
        if self.outer is not None:
            return self.outer.requested()
        if self.active and not self._requested and self._plugin is not None and self._plugin.stopRequested():
            self._requested = True
        self._read = self._read or self._requested
        return self._requested

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        """Put the previous handlers back. A request that came after the run's last read (it ended normally)
        raises KeyboardInterrupt now: a Ctrl-C is never lost."""
        global _active
        if not self.active:
            return
        self._closing = True
        try:
            self.requested()  # the plugin's request too: ending its watch clears it
            _let_pending_handlers_run()
        finally:
            with self._lock:
                if self._plugin is not None:
                    self._plugin.endInterruptWatch()
                signal.signal(signal.SIGINT, self._previous)
                self.active, _active = False, None
        if exc_type is None and self._requested:
            raise KeyboardInterrupt
