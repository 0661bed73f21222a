"""The cancel token: set by whoever cancels, looked at by the engine; a threading.Event works as well."""
from __future__ import annotations

import pickle
import threading

import pytest
from dask.base import tokenize

import astrocal_widgets as aw
from astrocal_widgets.cancel import CancelToken, raise_if_cancelled
from astrocal_widgets.errors import AstrocalError, CancelledError


def test_a_token_is_cancelled_once_asked_and_raises_naming_what_stopped():
    token = CancelToken()
    assert not token.cancelled
    token.raise_if_cancelled("master bias")  # not cancelled: nothing happens
    token.cancel()
    assert token.cancelled
    with pytest.raises(CancelledError, match="^master bias: cancelled$") as caught:
        token.raise_if_cancelled("master bias")
    assert isinstance(caught.value, AstrocalError) and caught.value.what == "master bias"
    assert aw.CancelToken is CancelToken and aw.CancelledError is CancelledError


def test_a_threading_event_is_accepted_and_anything_else_is_refused():
    event = threading.Event()
    token = CancelToken.of(event)
    assert isinstance(token, CancelToken) and not token.cancelled
    raise_if_cancelled(event, "x")
    event.set()
    assert token.cancelled
    with pytest.raises(CancelledError):
        raise_if_cancelled(event, "x")
    raise_if_cancelled(None, "x")  # no token: never cancelled
    assert CancelToken.of(None) is None and CancelToken.of(token) is token
    with pytest.raises(TypeError, match="CancelToken or a threading.Event, got bool"):
        CancelToken.of(True)


def test_tokens_pickle_and_never_share_a_task_name():
    error = pickle.loads(pickle.dumps(CancelledError("flat L")))
    assert str(error) == "flat L: cancelled" and error.what == "flat L"
    assert isinstance(pickle.loads(pickle.dumps(CancelToken())), CancelToken)  # a cluster worker's stand-in
    assert tokenize(CancelToken()) != tokenize(CancelToken())
