"""``integrate(..., cancel=token)`` stops before the next band; ``write_master`` then writes nothing."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from astrocal_widgets.cancel import CancelToken
from astrocal_widgets.errors import CancelledError
from astrocal_widgets.integrate import integrate, write_master


@pytest.fixture
def stack() -> np.ndarray:
    rng = np.random.default_rng(7)
    frames = rng.normal(1000.0, 10.0, (9, 600, 80)).astype(np.float32)
    frames[3, 10:20, 10:20] += 5000.0  # something to reject
    return frames


def _band_count(stack: np.ndarray) -> int:
    messages = []
    integrate(stack, rejection="sigma", progress=lambda f, m: messages.append(m)).compute()
    return sum("band" in m for m in messages)


@pytest.mark.parametrize("kind", ["token", "event"])
def test_cancelled_after_the_first_band_raises_and_writes_nothing(stack, tmp_path, kind):
    total = _band_count(stack)
    assert total >= 4, "the stack must have several bands for this test to mean anything"
    cancel = CancelToken() if kind == "token" else threading.Event()
    bands = []

    def progress(fraction, message):
        if "band" in message:
            bands.append(message)
            cancel.set() if kind == "event" else cancel.cancel()  # after the first band

    ds = integrate(stack, rejection="sigma", progress=progress, cancel=cancel)
    with pytest.raises(CancelledError, match="integrate: cancelled"):
        write_master(ds, tmp_path / "master.fits", cancel=cancel)
    assert list(tmp_path.iterdir()) == []  # no master, and no temporary file
    # Stopped within about a band: the other thread may finish the band it had started.
    assert 1 <= len(bands) <= 3 < total, bands


def test_a_token_cancelled_before_integrate_raises_at_once(stack):
    token = CancelToken()
    token.cancel()
    with pytest.raises(CancelledError):
        integrate(stack, cancel=token)


def test_write_master_refuses_to_write_once_cancelled_even_when_every_band_is_done(stack, tmp_path):
    ds = integrate(stack, rejection="sigma").compute()  # nothing left to stop in the bands
    token = CancelToken()
    token.cancel()
    with pytest.raises(CancelledError, match="master.fits: cancelled"):
        write_master(ds, tmp_path / "master.fits", cancel=token)
    assert list(tmp_path.iterdir()) == []


def test_a_rerun_after_a_cancel_matches_an_uncancelled_run_byte_for_byte(stack, tmp_path):
    token = CancelToken()
    ds = integrate(stack, rejection="sigma", cancel=token,
                   progress=lambda f, m: token.cancel() if "band" in m else None)
    with pytest.raises(CancelledError):
        write_master(ds, tmp_path / "master.fits", cancel=token)
    again = write_master(integrate(stack, rejection="sigma", cancel=CancelToken()), tmp_path / "master.fits")
    (tmp_path / "plain").mkdir()
    plain = write_master(integrate(stack, rejection="sigma"), tmp_path / "plain" / "master.fits")
    assert again.read_bytes() == plain.read_bytes()


def test_an_unknown_cancel_is_a_clear_type_error(stack):
    with pytest.raises(TypeError, match="cancel must be a CancelToken or a threading.Event"):
        integrate(stack, cancel="stop")
