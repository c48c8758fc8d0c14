"""Holding Ctrl-C back while a trial is cleaned up and recorded."""

from __future__ import annotations

import signal
import threading


class InterruptHold:
    """Holds Ctrl-C back while a trial is cleaned up and recorded, so that it is not cut short.

    Otherwise a Ctrl-C at the end of a trial (the xserver being stopped, the files being pulled)
    would leave the xserver, IPC state or the trial's folder in the target, and a trial record
    that still says "running". The first Ctrl-C is noted (``stop`` says whether one came); a
    second one interrupts at once. Only the main thread can hold signals; elsewhere this does nothing.
    """

    def __init__(self) -> None:
        self.received = False
        self._previous: object = None
        self._active = False

    def _handle(self, signum: int, frame: object) -> None:
        if self.received:
            raise KeyboardInterrupt
        self.received = True

    def start(self) -> None:
        if self._active or threading.current_thread() is not threading.main_thread():
            return
        self.received = False
        self._previous = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, self._handle)
        self._active = True

    def stop(self) -> bool:
        """Let Ctrl-C through again; whether one came while held."""
        if self._active:
            previous = self._previous if self._previous is not None else signal.default_int_handler
            signal.signal(signal.SIGINT, previous)  # type: ignore[arg-type]
            self._active = False
        received, self.received = self.received, False
        return received
