"""Cross-check of ``integrate`` against Siril 1.0.6 (``siril-cli``), the reference peer.

What is shown (figures and explanations in docs/siril-agreement.md):

* sigma, Winsorized sigma and percentile masters of simulated bias (20 frames) and flat (21 frames)
  stacks of 256 x 384 pixels -- cosmic rays, a satellite trail added to one frame, a flickering
  column -- agree with Siril's without normalisation: at least 99.9 % of pixels within 0.01 ADU
  and an RMS of at most 0.01 ADU over the pixels where the two tools make the same decisions by
  definition; every pixel off by more than 0.01 ADU is explained, either by the over-rejection
  guard (ours and Siril's differ on purpose) or by an exact tie (a value exactly on a threshold,
  decided in float64 by us and in float32 by Siril). The all-pixel RMS is reported too.
* with multiplicative normalisation, flat masters divided by their own median agree to 2e-5 RMS.
* linear fit: ours sits closer than Siril's to the robust mean of a drifting flat stack (Siril
  centres the rank axis on the original stack size after rejections).
* ESD: Rosner's example, through ``integrate``, rejects exactly 3 values; Siril for information.
* Siril's own rules the comparison relies on: exact 0 is a missing value, no rejection with 2
  values or fewer.

A numpy model of both rule sets (:func:`model_reject`, written from both tools' published rules, float64)
attributes each differing pixel: it follows one pixel's passes without any guard and records
whether our guard (never keep fewer than ``max(3, ceil(n/2))``) or Siril's (``n_current -
r_total <= 4`` before each value) would bind, and whether a kept value lies within rounding of a
threshold. The model with our guard reproduces the engine's kept counts exactly (asserted).

Run: ``python -m pytest tests/integrate/test_siril_agreement.py -s -m siril`` (``-s`` prints the figures).
Skips without ``siril-cli``; fails instead when ``CI=true``.
"""
from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import astrocal_widgets as aw
from astrocal_widgets.errors import AstrocalError
from astrocal_widgets.integrate.siril import ADU_SCALE, siril_executable, siril_stack

from conftest import skip_or_fail

pytestmark = pytest.mark.siril

SHAPE = (256, 384)
SEED = 3
N_BIAS = 20            # NINA's default count; even, so the median is a mean of two values
N_FLAT = 21
TRAIL_FRAME = {"bias": 4, "flat": 7}
TRAIL_PEAK = {"bias": 800.0, "flat": 4000.0}    # ADU at the trail's centre line
FLICKER_JUMP = 30.0    # ADU, as the simulator's flickering column in bias frames
ADU_TOL = 0.01
FRACTION_WITHIN = 0.999
NORM_RMS_TOL = 2e-5
# A kept value is "on a threshold" (an exact tie) when its deviation from the centre is within
# this relative distance of the threshold: Siril decides such values in float32 on data scaled to
# [0, 1] (relative precision ~1e-5 of the spread), we in float64. Winsorized sigma gets a wider
# band: Siril iterates its sigma in float32 to a 5e-4 convergence test, so its final sigma can
# stop one iteration earlier or later than ours (and it clamps the already-clamped copy).
TIE_RTOL = 3e-5
WINSOR_TIE_RTOL = 1e-3

CASES = [("sigma", 3.0, 3.0), ("winsorized_sigma", 3.0, 3.0), ("percentile", 0.2, 0.1)]
FIGURES: list[dict] = []       # rows of the agreement table
LINFIT: list[str] = []         # rows of the linear-fit table


# --- fixtures ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def siril():
    exe = siril_executable()
    if exe is None:
        skip_or_fail("siril-cli (Siril 1.0.6) is not installed; the Siril cross-checks need it")
    return exe


@pytest.fixture(scope="module", autouse=True)
def _report():
    """Print the collected figures once the module's tests ran (``pytest -s`` shows them)."""
    t0 = time.perf_counter()
    yield
    if not FIGURES and not LINFIT:
        return
    lines = [_table_header()] + [_table_row(f) for f in FIGURES]
    if LINFIT:
        lines += ["", "| linear fit kl/kh | ours - robust mean: mean / RMS / mean abs (ADU) "
                  "| Siril - robust mean: mean / RMS / mean abs (ADU) | ours - Siril RMS (ADU) |",
                  "|---|---|---|---|"] + LINFIT
    print("\n\nSiril 1.0.6 agreement figures (docs/siril-agreement.md):\n" + "\n".join(lines))
    print(f"(module ran in {time.perf_counter() - t0:.1f} s)")
    target = os.environ.get("ASTROCAL_SIRIL_REPORT")
    if target:
        Path(target).write_text("\n".join(lines) + "\n")


def _add_trail(data: np.ndarray, peak: float) -> np.ndarray:
    """A satellite trail: a straight line across the frame, Gaussian profile (sigma 0.8 px)."""
    h, w = data.shape
    yy, xx = np.mgrid[0:h, 0:w]
    dist = np.abs((yy - 0.3 * h) - 0.45 * xx) / np.hypot(1.0, 0.45)
    return data + np.rint(peak * np.exp(-0.5 * (dist / 0.8) ** 2))


@pytest.fixture(scope="module")
def stacks(tmp_path_factory):
    """Bias and flat stacks: simulator output copied, a trail added to one frame of each, and the
    flickering column (+30 ADU, every third frame) added to the flats too (the simulator puts it in
    bias, darks and dark flats only). The simulator's own files are never modified."""
    root = tmp_path_factory.mktemp("siril_agreement")
    out = {}
    for kind, n in (("bias", N_BIAS), ("flat", N_FLAT)):
        sim = aw.simulate_stack(root / f"sim_{kind}", kind, n, shape=SHAPE, seed=SEED)
        column = int(sim.truth.attrs["flicker_column"])
        folder = root / f"{kind}_copies"
        folder.mkdir()
        paths, cube = [], []
        for i, src in enumerate(sim.paths[kind]):
            with fits.open(src) as hdul:
                data = hdul[0].data.astype(np.float64)
                header = hdul[0].header.copy()
            if i == TRAIL_FRAME[kind]:
                data = _add_trail(data, TRAIL_PEAK[kind])
            if kind == "flat" and i % 3 == 1:
                data[:, column] += FLICKER_JUMP
            data = np.clip(data, 0, 65535)
            target = folder / Path(src).name
            fits.PrimaryHDU(data.astype(np.uint16), header=header).writeto(target)
            paths.append(target)
            cube.append(data)
        cube = np.stack(cube)
        # Siril would treat an exact 0 as missing: make sure the comparison never meets one.
        assert cube.min() > 0
        out[kind] = {"paths": paths, "cube": cube, "flicker_column": column}
    return out


def _siril(paths, retries: int = 2, **kwargs):
    """siril_stack, retried: Siril 1.0.6 now and then aborts (heap corruption) on tiny ESD stacks."""
    for attempt in range(retries + 1):
        try:
            return siril_stack(paths, **kwargs)
        except AstrocalError:
            if attempt == retries:
                raise


def _ours(paths, **kwargs):
    return aw.integrate(aw.open_frames(paths), combine="average", **kwargs).compute()


# --- a numpy model of both rule sets (attribution of differences) ------------------------------

def _median(xm: np.ndarray, n: np.ndarray) -> np.ndarray:
    srt = np.sort(xm, axis=0)                                    # NaN sorts last
    lo = np.take_along_axis(srt, ((n - 1) // 2)[None], 0)[0]
    hi = np.take_along_axis(srt, (n // 2)[None], 0)[0]
    return 0.5 * (lo + hi)


def _std(xm: np.ndarray, n: np.ndarray) -> np.ndarray:
    mean = np.nansum(xm, axis=0) / n
    return np.sqrt(np.nansum((xm - mean) ** 2, axis=0) / (n - 1))


def _winsorized_sigma(xm, n, med, s, cumulative):
    """Winsorized sigma: clamp to m -/+ 1.5 s, s = 1.134 std, until |s_new - s| <= 5e-4 s.
    ``cumulative``: clamp the already-clamped copy (Siril) rather than the kept values (ours)."""
    s = s.copy()
    todo = np.flatnonzero(s > 0)
    kept = xm[:, todo]
    w = kept.copy()
    for _ in range(50):
        if todo.size == 0:
            break
        st = s[todo]
        w = np.clip(w if cumulative else kept, (med[todo] - 1.5 * st)[None], (med[todo] + 1.5 * st)[None])
        s_new = 1.134 * _std(w, n[todo])
        going = ~(np.abs(s_new - st) <= 0.0005 * st)
        s[todo] = s_new
        todo, w, kept = todo[going], w[:, going], kept[:, going]
    return s


def model_reject(x: np.ndarray, method: str, low: float, high: float, guard: str = "none",
                 winsor_cumulative: bool = False) -> dict:
    """Reject from each column of ``x`` (frames, pixels; float64, NaN missing) by the published rules.

    guard: ``"ours"`` (never keep fewer than max(3, ceil(n/2)), largest |deviation|/threshold
    first, stop once at the floor), ``"siril"`` (before each value, keep it if
    ``n_current - r_total <= 4``; none for percentile) or ``"none"``. Whether a guard binds in
    a pass depends on counts only, not on the visiting order. Whatever the guard, the
    result records per pixel whether either guard *would* bind in a pass of this trajectory
    (``ours_binds``, ``siril_binds``) and whether a kept value was within rounding of a threshold
    (``tie``). Returns kept counts, rejection counts, mean of the kept values and those flags.
    """
    _, npix = x.shape
    valid = ~np.isnan(x)
    n0 = valid.sum(0)
    floor = np.maximum(3, (n0 + 1) // 2)
    keep = valid.copy()
    r_total = np.zeros(npix, int)
    rej_low = np.zeros(npix, int)
    rej_high = np.zeros(npix, int)
    active = n0 > 2                                  # no rejection with 2 values or fewer
    ours_binds = np.zeros(npix, bool)
    siril_binds = np.zeros(npix, bool)
    tie = np.zeros(npix, bool)
    rtol = WINSOR_TIE_RTOL if method == "winsorized_sigma" else TIE_RTOL
    while active.any():
        idx = np.flatnonzero(active)
        xa, ka = x[:, idx], keep[:, idx]
        xm = np.where(ka, xa, np.nan)
        n = ka.sum(0)
        med = _median(xm, n)
        if method == "percentile":
            ok = med > 0
            tl, th = low * med, high * med
        else:
            s = _std(xm, n)
            if method == "winsorized_sigma":
                s = _winsorized_sigma(xm, n, med, s, winsor_cumulative)
            ok = s > 1e-12 * np.nanmax(np.abs(xm), axis=0)
            tl, th = low * s, high * s
        dev = xa - med
        is_low = ka & ok & (-dev > tl)
        is_high = ka & ok & (dev > th)
        cand = is_low | is_high
        c = cand.sum(0)
        near = ka & (((np.abs(-dev - tl) <= rtol * tl) & (dev < 0))
                     | ((np.abs(dev - th) <= rtol * th) & (dev > 0)))
        tie[idx] |= near.any(0)
        ours_allowed = np.maximum(n - floor[idx], 0)
        siril_allowed = n if method == "percentile" else np.maximum(n - r_total[idx] - 4, 0)
        ours_binds[idx] |= c > ours_allowed
        siril_binds[idx] |= c > siril_allowed
        allowed = {"none": n, "ours": ours_allowed, "siril": siril_allowed}[guard]
        if (c > allowed).any():
            if guard == "siril":
                # Siril keeps the values it visits last. It visits them in its working order (the
                # frame order as left by the median's in-place partial sort); frame order here, an
                # approximation that only matters once the guard binds (flagged anyway).
                chosen = cand & (np.cumsum(cand, axis=0) <= allowed[None])
            else:                                    # ours: largest |deviation| / threshold first
                with np.errstate(divide="ignore", invalid="ignore"):
                    score = np.where(is_low, -dev / tl, np.where(is_high, dev / th, -np.inf))
                rank = np.argsort(np.argsort(-score, axis=0, kind="stable"), axis=0)
                chosen = cand & (rank < allowed[None])
            is_low &= chosen
            is_high &= chosen
            cand = is_low | is_high
        nc = cand.sum(0)
        rej_low[idx] += is_low.sum(0)
        rej_high[idx] += is_high.sum(0)
        r_total[idx] += nc
        ka &= ~cand
        keep[:, idx] = ka
        n_after = ka.sum(0)
        if method == "percentile":
            still = np.zeros(idx.size, bool)         # one pass
        else:
            still = (nc > 0) & (n_after > 3)         # Siril: do ... while (changed && N > 3)
            if guard == "ours":
                still &= n_after > floor[idx]
        active[idx] = still
    kept = keep.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(keep, x, 0.0).sum(0) / kept
    return {"kept": kept, "rej_low": rej_low, "rej_high": rej_high, "mean": mean,
            "ours_binds": ours_binds, "siril_binds": siril_binds, "tie": tie}


# --- figures -----------------------------------------------------------------------------------

def _table_header() -> str:
    return ("| data | rejection | normalisation | RMS all px (ADU) | RMS same-decision px (ADU) | max abs (ADU) "
            "| within 0.01 ADU | normalised RMS | guard binds ours / Siril (px) | px > 0.01 ADU: guard / tie |\n"
            "|---|---|---|---|---|---|---|---|---|---|")


def _fmt(v, spec: str, suffix: str = "") -> str:
    return "" if v is None else format(v, spec) + suffix


def _table_row(f: dict) -> str:
    guard = "" if f.get("guard_ours") is None else f"{f['guard_ours']} / {f['guard_siril']}"
    causes = "" if f.get("off_guard") is None else f"{f['off_guard']} / {f['off_tie']}"
    within = None if f.get("within") is None else 100 * f["within"]
    return (f"| {f['data']} | {f['rejection']} | {f['normalisation']} | {_fmt(f.get('rms'), '.4f')} "
            f"| {_fmt(f.get('rms_same'), '.4f')} | {_fmt(f.get('max'), '.3g')} | {_fmt(within, '.3f', ' %')} "
            f"| {_fmt(f.get('nrms'), '.2e')} | {guard} | {causes} |")


def _print(f: dict) -> None:
    print("\n" + _table_header() + "\n" + _table_row(f))


# --- 1. sigma, Winsorized sigma, percentile without normalisation ---------------------------------

@pytest.mark.parametrize("kind", ["bias", "flat"])
@pytest.mark.parametrize("method,low,high", CASES)
def test_masters_agree_without_normalisation(siril, stacks, kind, method, low, high):
    paths = stacks[kind]["paths"]
    cube = stacks[kind]["cube"]
    n = len(paths)
    ours = _ours(paths, rejection=method, low=low, high=high, normalization="none")
    theirs = _siril(paths, rejection=method, low=low, high=high, normalization="none").master
    ours_master = ours["master"].values.astype(np.float64)
    diff = (ours_master - theirs).ravel()
    off = np.abs(diff) > ADU_TOL

    x = cube.reshape(n, -1)
    free = model_reject(x, method, low, high, guard="none")
    mine = model_reject(x, method, low, high, guard="ours")
    peer = model_reject(x, method, low, high, guard="siril", winsor_cumulative=True)
    guard = free["ours_binds"] | free["siril_binds"] | mine["ours_binds"] | peer["siril_binds"]
    tie = free["tie"] | mine["tie"] | peer["tie"]
    if method == "winsorized_sigma":             # Siril clamps the clamped copy again: flag changes
        free_cum = model_reject(x, method, low, high, guard="none", winsor_cumulative=True)
        guard |= free_cum["ours_binds"] | free_cum["siril_binds"]
        tie |= free_cum["tie"] | (free_cum["kept"] != free["kept"])
    same = ~guard & ~tie

    # The model is faithful to the engine: same kept counts wherever no value sits on a threshold.
    contributing = ours["contributing"].values.ravel()
    assert np.array_equal(mine["kept"][~tie], contributing[~tie])

    fig = {
        "data": f"{kind} {n} x {SHAPE[0]}x{SHAPE[1]}", "rejection": f"{method} {low:g}/{high:g}",
        "normalisation": "none", "rms": float(np.sqrt(np.mean(diff ** 2))),
        "rms_same": float(np.sqrt(np.mean(diff[same] ** 2))), "max": float(np.abs(diff).max()),
        "within": float(np.mean(~off)), "guard_ours": int(mine["ours_binds"].sum()),
        "guard_siril": int(peer["siril_binds"].sum()), "off_guard": int((off & guard).sum()),
        "off_tie": int((off & tie & ~guard).sum()),
        "rejected": int(ours["rejected_low"].sum() + ours["rejected_high"].sum()),
    }
    FIGURES.append(fig)
    _print(fig)
    print(f"values rejected by ours: {fig['rejected']}; guard-flagged px {int(guard.sum())}, "
          f"tie-flagged px {int(tie.sum())}; model(Siril guard) vs Siril off by > 0.01 ADU at "
          f"{int((np.abs(peer['mean'] - theirs.ravel()) > ADU_TOL).sum())} px")

    assert fig["within"] >= FRACTION_WITHIN
    assert fig["rms_same"] <= ADU_TOL
    # Every pixel off by more than 0.01 ADU is explained by the guard or an exact tie ...
    unexplained = np.flatnonzero(off & same)
    assert unexplained.size == 0, [(int(p), float(diff[p]), np.sort(x[:, p]).tolist()) for p in unexplained[:5]]
    # ... and those are rare.
    assert guard.mean() <= 0.001 and (tie & off).mean() <= 0.0001


@pytest.mark.parametrize("kind", ["bias", "flat"])
def test_mad_clipping_for_information(siril, stacks, kind):
    """Siril 1.0.6 takes the MAD of 32-bit data from a coarse histogram: no agreement expected.

    Ours scales the MAD by 1.4826 (a Gaussian sigma), Siril uses the raw MAD, so ours at
    k / 1.4826 is the like-for-like threshold. Recorded for the docs; the one assertion is the
    documented symptom: at 5 raw MADs Siril keeps the satellite trail, which ours rejects.
    """
    paths = stacks[kind]["paths"]
    k = 5.0
    ours = _ours(paths, rejection="mad", low=k / 1.4826, high=k / 1.4826)
    res = _siril(paths, rejection="mad", low=k, high=k)
    diff = ours["master"].values.astype(np.float64) - res.master
    fig = {"data": f"{kind} {len(paths)} x {SHAPE[0]}x{SHAPE[1]}", "rejection": f"mad {k:g}/{k:g} raw MAD",
           "normalisation": "none", "rms": float(np.sqrt(np.mean(diff ** 2))),
           "max": float(np.abs(diff).max()), "within": float(np.mean(np.abs(diff) <= ADU_TOL))}
    FIGURES.append(fig)
    _print(fig)
    print("Siril:", [line.split("log: ")[-1] for line in res.log.splitlines() if "rejection in channel" in line])
    trail = _add_trail(np.zeros(SHAPE), TRAIL_PEAK[kind]) > TRAIL_PEAK[kind] / 2
    excess = np.median(res.master[trail] - ours["master"].values[trail])
    assert excess > 0.5 * TRAIL_PEAK[kind] / len(paths)


# --- 2. multiplicative normalisation -----------------------------------------------------------

@pytest.mark.parametrize("method,low,high", CASES)
def test_flat_masters_agree_with_multiplicative_normalisation(siril, stacks, method, low, high):
    """Flats, ``-norm=mul`` against normalization = rejection_normalization = multiplicative.

    Siril 1.0.6 normalises with IKSS-lite (location = median after a 6 MAD clip; its .seq cache
    shows location and scale equal to ``ikss_lite``'s to 6 digits), so ours uses the same
    estimator; the master of each is divided by its own median. The median estimator is
    reported for information (on integer data its location is a half-integer, which shifts the
    coefficients by up to 1.6e-5 and flips borderline rejections).
    """
    paths = stacks["flat"]["paths"]
    theirs = _siril(paths, rejection=method, low=low, high=high, normalization="multiplicative").master
    theirs = theirs / np.median(theirs)
    nrms = {}
    for estimator in ("ikss_lite", "median"):
        ours = _ours(paths, rejection=method, low=low, high=high, normalization="multiplicative",
                     rejection_normalization="multiplicative", estimator=estimator)
        m = ours["master"].values.astype(np.float64)
        nrms[estimator] = float(np.sqrt(np.mean((m / np.median(m) - theirs) ** 2)))
    fig = {"data": f"flat {len(paths)} x {SHAPE[0]}x{SHAPE[1]}", "rejection": f"{method} {low:g}/{high:g}",
           "normalisation": "multiplicative (IKSS-lite)", "nrms": nrms["ikss_lite"]}
    FIGURES.append(fig)
    _print(fig)
    print(f"normalised RMS with our median estimator instead: {nrms['median']:.2e}")
    assert nrms["ikss_lite"] <= NORM_RMS_TOL


# --- 3. linear fit: closer to the robust mean than Siril's --------------------------------------

DRIFT = 0.002      # the flat panel brightens by 0.2 % of its signal per frame (+-2 % over 21)


def robust_mean(cube: np.ndarray, k: float = 5.0) -> np.ndarray:
    """Per-pixel robust mean of a drifting stack: the mean of the values kept by an iterative
    k-sigma clip about the pixel's least-squares line in frame number (the drift is linear in
    time), sigma = 1.4826 x the median absolute residual of the kept values. Cosmic rays and the
    trail (>= 1000 ADU) are removed, noise (~200 ADU) and drift are kept."""
    n_frames = cube.shape[0]
    y = cube.reshape(n_frames, -1)
    t = np.arange(n_frames, dtype=np.float64)[:, None]
    keep = np.ones(y.shape, bool)
    todo = np.arange(y.shape[1])                 # pixels whose kept set may still change
    for _ in range(50):
        if todo.size == 0:
            break
        ys, ks = y[:, todo], keep[:, todo]
        w = ks.astype(np.float64)
        n = w.sum(0)
        tb = (w * t).sum(0) / n
        yb = (w * ys).sum(0) / n
        slope = (w * (t - tb) * (ys - yb)).sum(0) / (w * (t - tb) ** 2).sum(0)
        res = np.abs(ys - (yb + slope * (t - tb)))
        sorted_res = np.sort(np.where(ks, res, np.inf), axis=0)
        mid = np.take_along_axis(sorted_res, ((n.astype(int) - 1) // 2)[None], 0)[0]
        mid2 = np.take_along_axis(sorted_res, (n.astype(int) // 2)[None], 0)[0]
        new = res <= k * 1.4826 * 0.5 * (mid + mid2)
        changed = (new != ks).any(0)
        keep[:, todo] = new
        todo = todo[changed]
    return ((y * keep).sum(0) / keep.sum(0)).reshape(cube.shape[1:])


@pytest.fixture(scope="module")
def drifting_flats(stacks, tmp_path_factory):
    folder = tmp_path_factory.mktemp("drifting_flats")
    cube = stacks["flat"]["cube"]
    n = cube.shape[0]
    pedestal = 500.0   # the simulated camera's bias level
    gain = 1 + DRIFT * (np.arange(n) - (n - 1) / 2)
    drifted = np.clip(np.rint(pedestal + (cube - pedestal) * gain[:, None, None]), 0, 65535)
    paths = []
    for i, frame in enumerate(drifted):
        p = folder / f"drift_{i:03d}.fits"
        fits.PrimaryHDU(frame.astype(np.uint16)).writeto(p)
        paths.append(p)
    return paths, drifted, robust_mean(drifted)


@pytest.mark.parametrize("k", [3.0, 4.0, 5.0])
def test_linear_fit_closer_to_robust_mean_than_siril(siril, drifting_flats, k):
    paths, _, reference = drifting_flats
    ours = _ours(paths, rejection="linear_fit", low=k, high=k)["master"].values.astype(np.float64)
    theirs = _siril(paths, rejection="linear_fit", low=k, high=k).master
    stats = {}
    for who, m in (("ours", ours), ("siril", theirs)):
        e = m - reference
        stats[who] = (float(e.mean()), float(np.sqrt(np.mean(e ** 2))), float(np.mean(np.abs(e))))
    print(f"\nlinear fit {k:g}/{k:g}, flats drifting {DRIFT:.1%}/frame, master - robust mean "
          f"(mean, RMS, mean abs; ADU): ours {stats['ours'][0]:+.2f} {stats['ours'][1]:.2f} "
          f"{stats['ours'][2]:.2f}; Siril {stats['siril'][0]:+.2f} {stats['siril'][1]:.2f} {stats['siril'][2]:.2f}")
    LINFIT.append(f"| {k:g}/{k:g} | {stats['ours'][0]:+.2f} / {stats['ours'][1]:.2f} / {stats['ours'][2]:.2f} "
                  f"| {stats['siril'][0]:+.2f} / {stats['siril'][1]:.2f} / {stats['siril'][2]:.2f} "
                  f"| {float(np.sqrt(np.mean((ours - theirs) ** 2))):.2f} |")
    assert stats["ours"][1] < stats["siril"][1]          # RMS
    assert stats["ours"][2] <= stats["siril"][2]         # mean absolute error
    if k <= 4:   # where Siril's rank-centring bias shows: ours is clearly less biased
        assert abs(stats["ours"][0]) < abs(stats["siril"][0])
    if k == 3:
        assert stats["siril"][0] < -5 and abs(stats["ours"][0]) < 2


# --- 4. ESD: Rosner's example --------------------------------------------------------------------

ROSNER = np.array([
    -0.25, 0.68, 0.94, 1.15, 1.20, 1.26, 1.26, 1.34, 1.38, 1.43, 1.49, 1.49, 1.55, 1.56, 1.58, 1.65,
    1.69, 1.70, 1.76, 1.77, 1.81, 1.91, 1.94, 1.96, 1.99, 2.06, 2.09, 2.10, 2.14, 2.15, 2.23, 2.24,
    2.26, 2.35, 2.37, 2.40, 2.47, 2.54, 2.62, 2.64, 2.90, 2.92, 2.92, 2.93, 3.21, 3.26, 3.30, 3.59,
    3.68, 4.30, 4.64, 5.34, 5.42, 6.01])


def _single_pixel_siril(values: np.ndarray, tmp: Path, shape=(8, 8), **kwargs):
    """Siril on N frames whose every pixel holds the stack ``values`` (Siril wants images)."""
    tmp.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, v in enumerate(values):
        p = tmp / f"v_{i:03d}.fits"
        fits.PrimaryHDU(np.full(shape, v, np.float64)).writeto(p, overwrite=True)
        paths.append(p)
    res = _siril(paths, **kwargs)
    assert np.ptp(res.master) < 1e-6 * max(1.0, np.abs(res.master).max())
    return float(res.master[0, 0]), res.log


def _siril_counts(log: str, n: int) -> tuple[int, int]:
    """Values rejected low and high per pixel, from Siril's "Pixel rejection ...: a% - b%" line
    (every pixel of these images holds the same stack)."""
    line = next(l for l in log.splitlines() if "rejection in channel" in l)
    low, high = (float(v.strip().rstrip("%")) for v in line.rsplit(":", 1)[1].split(" - "))
    return round(low / 100 * n), round(high / 100 * n)


def _explain(values: np.ndarray, mean: float, n_low: int, n_high: int) -> str:
    """Which n_low values below the median and n_high above it leave ``mean``."""
    v = np.sort(values)
    med = np.median(v)
    below, above = np.flatnonzero(v < med), np.flatnonzero(v > med)
    for lo in itertools.combinations(below, n_low):
        for hi in itertools.combinations(above, n_high):
            rest = np.delete(v, list(lo) + list(hi))
            if abs(rest.mean() - mean) < 1e-5 * max(1.0, abs(mean)):
                dropped = ", ".join(f"{v[i]:g}" for i in lo + hi) or "nothing"
                return f"rejects {n_low} low and {n_high} high: {dropped}"
    return f"rejects {n_low} low and {n_high} high (no subset matches the mean)"


def test_esd_rosner_example(siril, tmp_path):
    # At most 10 outliers of 54 (NIST): fraction 0.19 -> floor(54 * 0.19) = 10; alpha 0.05.
    ds = aw.integrate(ROSNER.reshape(-1, 1, 1), rejection="esd", low=0.19, high=0.05).compute()
    assert int(ds["rejected_high"][0, 0]) == 3 and int(ds["rejected_low"][0, 0]) == 0
    assert int(ds["contributing"][0, 0]) == 51
    np.testing.assert_allclose(float(ds["master"][0, 0]), np.sort(ROSNER)[:-3].mean(), rtol=1e-6)

    theirs, log = _single_pixel_siril(ROSNER, tmp_path / "rosner", rejection="esd", low=0.19, high=0.05)
    what = _explain(ROSNER, theirs, *_siril_counts(log, ROSNER.size))
    print(f"\nESD on Rosner's 54 values: ours rejects 6.01, 5.42, 5.34 (mean {float(ds['master'][0, 0]):.6f}); "
          f"Siril mean {theirs:.6f}: {what}")


@pytest.mark.parametrize("values,ours_expected", [
    ([100, 101, 99, 100, 102, 98, 100, 101, 99, 100], 100.0),            # clean: nothing rejected
    ([100, 98, 102, 101, 99, 97, 103, 100, 130, 60, 100], 100.0),        # 60 and 130 rejected
])
def test_esd_spec_vectors_and_siril_for_information(siril, tmp_path, values, ours_expected):
    v = np.array(values, np.float64)
    ds = aw.integrate(v.reshape(-1, 1, 1), rejection="esd", low=0.3, high=0.05).compute()
    assert float(ds["master"][0, 0]) == pytest.approx(ours_expected, abs=1e-9)
    theirs, log = _single_pixel_siril(v, tmp_path / "esd", rejection="esd", low=0.3, high=0.05)
    print(f"\nESD {values}: ours mean {float(ds['master'][0, 0]):.6f} "
          f"(rejects {int(ds['rejected_low'][0, 0])} low, {int(ds['rejected_high'][0, 0])} high); "
          f"Siril mean {theirs:.6f}: {_explain(v, theirs, *_siril_counts(log, v.size))}")
    assert theirs != pytest.approx(ours_expected, abs=1e-3)   # Siril always rejects two


# --- 5. Siril's own rules the comparison relies on -------------------------------------------------

def test_siril_zero_is_missing_and_no_rejection_with_two_values(siril, tmp_path):
    """Pixel A: one exact 0 among ten values; pixel B: eight zeros, 1000 and 5000. Siril ignores the
    zeros (so B has 2 values and nothing is rejected); ours treats 0 as a value and NaN as missing."""
    a = np.array([0, 1000, 1002, 998, 1001, 999, 1003, 997, 1000, 1001], np.float64)
    b = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1000, 5000], np.float64)
    folder = tmp_path / "zeros"
    folder.mkdir()
    paths = []
    for i in range(a.size):
        frame = np.full((8, 8), 1000.0)
        frame[:, :4] = a[i]
        frame[:, 4:] = b[i]
        p = folder / f"z_{i:03d}.fits"
        fits.PrimaryHDU(frame).writeto(p)
        paths.append(p)
    none = _siril(paths, rejection="none", low=0, high=0).master
    sigma = _siril(paths, rejection="sigma", low=3, high=3).master
    assert none[0, 0] == pytest.approx(a[1:].mean(), abs=1e-3)        # the 0 is not averaged
    assert sigma[0, 4] == pytest.approx(3000.0, abs=1e-3)             # 2 values: no rejection

    ours_none = aw.integrate(a.reshape(-1, 1, 1), rejection="none").compute()["master"].values[0, 0]
    assert ours_none == pytest.approx(a.mean())                       # 0 is a value for us
    b_nan = np.where(b == 0, np.nan, b).reshape(-1, 1, 1)
    ours_b = aw.integrate(b_nan, rejection="sigma", low=3, high=3).compute()
    assert float(ours_b["master"][0, 0]) == pytest.approx(3000.0)
    assert int(ours_b["contributing"][0, 0]) == 2
    print(f"\nSiril: mean of [0, 1000, ...] = {none[0, 0]:.4f} (zero ignored; ours {ours_none:.4f}); "
          f"[8 x 0, 1000, 5000] sigma 3/3 = {sigma[0, 4]:.1f}")


# --- 1b. the same with Siril's own guard (guard="siril", reference path) -------------------------

@pytest.mark.parametrize("kind", ["bias", "flat"])
@pytest.mark.parametrize("method,low,high", CASES)
def test_masters_agree_with_sirils_guard(siril, stacks, kind, method, low, high):
    """With ``guard="siril"`` (Siril 1.0.6's order-dependent guard, offered for cross-checks) the
    all-pixel figures meet the issue's tolerance too: RMS <= 0.01 ADU and >= 99.9 % within 0.01 ADU.
    Our default guard differs from Siril's on a handful of cascading pixels (see the test above)."""
    paths = stacks[kind]["paths"]
    ours = _ours(paths, rejection=method, low=low, high=high, normalization="none", guard="siril")
    theirs = _siril(paths, rejection=method, low=low, high=high, normalization="none").master
    diff = (ours["master"].values.astype(np.float64) - theirs).ravel()
    rms = float(np.sqrt(np.mean(diff ** 2)))
    within = float(np.mean(np.abs(diff) <= ADU_TOL))
    print(f"\n{kind} {method} {low:g}/{high:g} with guard='siril': RMS {rms:.4f} ADU, max {np.abs(diff).max():.4f}, "
          f"within 0.01 ADU {within:.3%}")
    assert ours.attrs["guard"].startswith("Siril 1.0.6 guard")
    assert rms <= ADU_TOL
    assert within >= FRACTION_WITHIN
