"""Cancelling long work: a token the caller keeps and the engine looks at between pieces of work.

``integrate`` looks at it before each band, ``calibrate_session`` between masters, bands and lights
and within a light (``calibrate_light``: once read, before its cosmetic correction, before its write),
and the dashboard's Cancel buttons set one. A :class:`threading.Event` works as well; the engine turns it
into a token with :meth:`CancelToken.of`. What is cancelled raises
:class:`~astrocal_widgets.errors.CancelledError`; files are written atomically, so a cancelled run
leaves either a whole output or none, and a rerun reuses the whole ones.
"""
from __future__ import annotations

import threading
import uuid
from typing import Any

from .errors import CancelledError

__all__ = ["CancelToken", "raise_if_cancelled"]


class CancelToken:
    """A request to stop, shared between whoever may cancel and the work that stops.

    Parameters
    ----------
    event : threading.Event, optional
        Wrap an existing event (setting it cancels); by default the token has its own.

    Examples
    --------
    >>> token = CancelToken()
    >>> # in another thread, or from a button: token.cancel()
    >>> # ds = integrate(frames, cancel=token); write_master(ds, "master.fits")  # raises CancelledError
    >>> token.cancelled
    False
    """

    def __init__(self, event: threading.Event | None = None) -> None:
        self.event = event if event is not None else threading.Event()
        self._id = uuid.uuid4().hex  # two tokens never share a dask task name

    @classmethod
    def of(cls, cancel: "CancelToken | threading.Event | None") -> "CancelToken | None":
        """The token for what a caller passed as ``cancel=``: a token, an event, or None (never cancelled)."""
        if cancel is None or isinstance(cancel, CancelToken):
            return cancel
        if callable(getattr(cancel, "is_set", None)) and callable(getattr(cancel, "set", None)):
            return cls(cancel)
        raise TypeError(f"cancel must be a CancelToken or a threading.Event, got {type(cancel).__name__}")

    def cancel(self) -> None:
        """Ask the work to stop (it stops at its next check; calling again does nothing more)."""
        self.event.set()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called (or the wrapped event set)."""
        return self.event.is_set()

    def raise_if_cancelled(self, what: str = "") -> None:
        """Raise :class:`~astrocal_widgets.errors.CancelledError` (naming ``what``) if cancelled."""
        if self.cancelled:
            raise CancelledError(what)

    def __dask_tokenize__(self) -> tuple[str, str]:
        return ("CancelToken", self._id)

    def __reduce__(self):
        # A token sent to another process (a cluster's worker) cannot reach the caller's: a fresh,
        # never-cancelled one stands in, and the caller's process checks between tasks.
        return (CancelToken, ())

    def __repr__(self) -> str:
        return f"CancelToken(cancelled={self.cancelled})"


def raise_if_cancelled(cancel: Any, what: str = "") -> None:
    """Raise :class:`~astrocal_widgets.errors.CancelledError` if ``cancel`` (a token, an event or None) is set.

    Parameters
    ----------
    cancel : CancelToken, threading.Event or None
    what : str
        What was stopped, for the message (``"master bias"``).
    """
    token = CancelToken.of(cancel)
    if token is not None:
        token.raise_if_cancelled(what)
