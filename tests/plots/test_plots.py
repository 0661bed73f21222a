"""astrocal_widgets.plots: every function returns a Figure that renders to a labelled PNG, no pyplot."""
from __future__ import annotations

import subprocess
import sys

import matplotlib
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib._pylab_helpers import Gcf
from matplotlib.colors import FuncNorm
from matplotlib.figure import Figure

import astrocal_widgets as aw
from astrocal_widgets import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def no_pyplot_figures() -> bool:
    return not Gcf.get_all_fig_managers()


def check_figure(fig, min_bytes: int = 5_000) -> bytes:
    """A Figure, rendered to a non-trivial PNG, every non-colour-bar axes labelled, titles set."""
    assert isinstance(fig, Figure)
    png = plots.to_png(fig)
    assert png.startswith(PNG_SIGNATURE)
    assert len(png) > min_bytes
    main = [ax for ax in fig.axes if not hasattr(ax, "_colorbar")]
    assert main
    for ax in main:
        assert ax.get_xlabel(), f"axes without x label: {ax}"
        assert ax.get_ylabel(), f"axes without y label: {ax}"
        assert ax.get_title(), f"axes without title: {ax}"
    for ax in fig.axes:
        if hasattr(ax, "_colorbar"):
            assert ax.get_ylabel() or ax.get_xlabel(), "colour bar without a unit label"
    assert no_pyplot_figures()
    return png


def test_import_pulls_in_neither_pyplot_nor_ipywidgets():
    code = ("import sys, astrocal_widgets.plots as p; "
            "bad = [m for m in ('matplotlib.pyplot', 'ipywidgets') if m in sys.modules]; "
            "assert not bad, bad; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "ok" in out.stdout


def test_to_png_renders_a_plain_figure():
    fig = Figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    png = plots.to_png(fig, dpi=50)
    assert png.startswith(PNG_SIGNATURE) and len(png) > 500


# --- histogram ---------------------------------------------------------------------------------

def test_histogram_mono_with_thresholds_and_clipping():
    rng = np.random.default_rng(0)
    data = np.clip(rng.normal(30000, 8000, (200, 300)), 0, 65535).astype(np.uint16)
    data[:3, :] = 65535
    fig = plots.histogram(data, thresholds={"hot": 50000, "cold": 5000}, title="flat")
    check_figure(fig)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert ax.get_title() == "flat"
    text = " ".join(t.get_text() for t in ax.texts)
    saturated, zero = int((data >= 65535).sum()), int((data <= 0).sum())
    assert saturated >= 900                             # the three saturated rows
    assert f"{saturated:,} at \u2265 65535" in text and f"{zero:,} at \u2264 0" in text
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "hot = 50000" in legend and "cold = 5000" in legend
    assert any(t.startswith("ADC max") for t in legend) and "ADC 0" in legend
    lo, hi = ax.get_xlim()
    assert lo <= 0 and hi >= 65535                      # auto -> the whole ADC range for a flat


def test_histogram_cfa_channels_in_colour():
    rng = np.random.default_rng(1)
    data = np.empty((100, 120), np.float32)
    data[0::2, 0::2] = rng.normal(10000, 100, (50, 60))   # R
    data[0::2, 1::2] = rng.normal(20000, 100, (50, 60))   # G
    data[1::2, 0::2] = rng.normal(20000, 100, (50, 60))   # G
    data[1::2, 1::2] = rng.normal(15000, 100, (50, 60))   # B
    fig = plots.histogram(xr.DataArray(data, dims=("y", "x")), bayer_pattern="RGGB", bins=128)
    check_figure(fig)
    channels = plots.histograms.cfa_channels(data, "RGGB")
    assert set(channels) == {"R", "G", "B"}
    assert channels["G"].size == 2 * channels["R"].size
    assert abs(np.median(channels["R"]) - 10000) < 50 and abs(np.median(channels["B"]) - 15000) < 50
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert [l.split()[0] for l in labels[:3]] == ["R", "G", "B"]
    with pytest.raises(ValueError):
        plots.histogram(data, bayer_pattern="RGX")


def test_histogram_of_a_bias_zooms_on_the_data():
    rng = np.random.default_rng(2)
    data = rng.normal(500, 3, (100, 100)).round().astype(np.uint16)
    fig = plots.histogram(data)
    check_figure(fig, min_bytes=3_000)
    lo, hi = fig.axes[0].get_xlim()
    assert hi < 1000 and lo > 0
    # integer-aligned bins: every bin of integer data holds whole ADU values
    widths = np.diff(fig.axes[0].patches[0].get_path().vertices[:, 0])
    assert np.allclose(np.abs(widths[widths != 0]) % 1, 0)


# --- image -------------------------------------------------------------------------------------

def test_image_auto_stretch_and_colorbar_in_data_units():
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:240, :320]
    data = (1000 + 0.5 * xx + rng.normal(0, 5, (240, 320))).astype(np.float32)
    data[100, 100] = 65535                                  # a hot pixel: highlights at the maximum
    fig = plots.image(data, title="flat")
    check_figure(fig)
    ax = fig.axes[0]
    assert ax.get_title().startswith("flat (stretch: auto STF")
    assert "preview" not in ax.get_title()
    norm = ax.images[0].norm
    assert isinstance(norm, FuncNorm)
    median = float(np.median(data))
    assert norm(median) == pytest.approx(0.25, abs=1e-6)  # STF: the median at 25 % grey
    cbar = [a for a in fig.axes if hasattr(a, "_colorbar")][0]
    assert cbar.get_ylabel() == "ADU"
    ticks = cbar.get_yticks()
    assert ticks.min() >= norm.vmin - 1e-3 and ticks.max() <= 65535 + 1e-3


@pytest.mark.parametrize("stretch", ["linear", "minmax", (0.0, 10.0), "stf"])
def test_image_other_stretches(stretch):
    data = np.arange(64 * 80, dtype=np.float64).reshape(64, 80)
    check_figure(plots.image(data, stretch=stretch, cmap="viridis"), min_bytes=2_000)


def test_image_constant_and_bad_input():
    check_figure(plots.image(np.full((32, 32), 7.0)), min_bytes=1_000)
    with pytest.raises(ValueError):
        plots.image(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError):
        plots.image(np.zeros((8, 8)), stretch="nope")


def test_mtf_inverse_and_fixed_points():
    x = np.linspace(0, 1, 11)
    assert np.allclose(plots.mtf(0.3, plots.mtf(0.7, x)), x)
    assert plots.mtf(0.2, 0.2) == pytest.approx(0.5)
    assert plots.mtf(0.2, 0.0) == 0 and plots.mtf(0.2, 1.0) == pytest.approx(1.0)


def test_image_large_is_downsampled_by_block_mean():
    data = np.random.default_rng(4).normal(1000, 10, (3000, 4000)).astype(np.float32)
    fig = plots.image(data)
    ax = fig.axes[0]
    shown = ax.images[0].get_array()
    assert shown.size <= 2_000_000 and shown.shape == (1000, 1333)
    assert "preview 1/3: 3x3 block mean" in ax.get_title()
    assert ax.get_xlim()[1] > 3900 and ax.get_ylim()[1] > 2900    # axes in original pixels
    assert float(np.std(shown)) == pytest.approx(10 / 3, rel=0.05)  # a mean, not a decimation
    check_figure(fig)


# --- rejection maps ----------------------------------------------------------------------------

def test_rejection_maps_synthetic():
    low = np.zeros((50, 60), np.uint16)
    high = np.zeros((50, 60), np.uint16)
    low[10, 10] = 2
    high[20:22, :] = 1
    ds = xr.Dataset({"master": (("y", "x"), np.zeros((50, 60), np.float32)),
                     "rejected_low": (("y", "x"), low), "rejected_high": (("y", "x"), high),
                     "contributing": (("y", "x"), (10 - low - high).astype(np.uint16))},
                    attrs={"rejection": "sigma", "n_frames": 10})
    fig = plots.rejection_maps(ds)
    check_figure(fig, min_bytes=3_000)
    titles = [ax.get_title() for ax in fig.axes if not hasattr(ax, "_colorbar")]
    assert titles[0] == "rejected low: 2 values (0.007%)"
    assert titles[1] == "rejected high: 120 values (0.400%)"
    assert "sigma, 10 frames" in fig.get_suptitle()
    # without attrs: n_frames from contributing + rejections
    fig = plots.rejection_maps({k: ds[k].values for k in ds.data_vars})
    titles = [ax.get_title() for ax in fig.axes if not hasattr(ax, "_colorbar")]
    assert titles[1] == "rejected high: 120 values (0.400%)"
    assert fig.get_suptitle() == "rejection maps, 10 frames"


def test_rejection_maps_large_keep_isolated_rejections():
    low = np.zeros((2000, 2400), np.uint16)
    low[1001, 1001] = 3
    ds = {"rejected_low": low, "rejected_high": np.zeros_like(low)}
    fig = plots.rejection_maps(ds, max_pixels=500_000)
    ax = fig.axes[0]
    assert ax.images[0].get_array().max() == 3
    assert "block max" in ax.get_title()
    check_figure(fig, min_bytes=3_000)


def test_rejection_maps_of_a_real_integration(tmp_path):
    session = aw.simulate_stack(tmp_path, "bias", 8, shape=(64, 96), seed=0)
    result = aw.integrate(aw.open_frames(session.paths["bias"])).compute()
    fig = plots.rejection_maps(result)
    check_figure(fig, min_bytes=3_000)
    n_values = 8 * 64 * 96
    low = int(result.rejected_low.sum())
    assert f"rejected low: {low:,} values ({low / n_values:.3%})" in fig.axes[0].get_title()
    assert result.attrs["rejection"] in fig.get_suptitle()
    check_figure(plots.image(result.master, title="master bias"))
    check_figure(plots.histogram(result.master, thresholds={"median": float(result.master.median())}),
                 min_bytes=3_000)


# --- series ------------------------------------------------------------------------------------

def test_frame_series_with_flagged_frames():
    rng = np.random.default_rng(5)
    table = pd.DataFrame({"median": rng.normal(20000, 50, 30), "robust_sigma": rng.normal(150, 2, 30),
                          "exposure": np.full(30, 2.0)})
    table.loc[7, "median"] = 12000
    table["flagged"] = False
    table.loc[7, "flagged"] = True
    fig = plots.frame_series(table)
    check_figure(fig)
    main = [ax for ax in fig.axes]
    assert len(main) == 2
    assert [ax.get_ylabel() for ax in main] == ["median", "robust_sigma"]
    legend = [t.get_text() for t in main[0].get_legend().get_texts()]
    assert "flagged (1)" in legend
    assert fig.get_suptitle() == "30 frames"


def test_frame_series_against_a_column_without_flags():
    table = pd.DataFrame({"time": pd.date_range("2024-01-01 21:00", periods=12, freq="2min"),
                          "mean": np.linspace(100, 112, 12)})
    fig = plots.frame_series(table, "mean", x="time", title="darks")
    check_figure(fig, min_bytes=3_000)
    assert fig.axes[0].get_xlabel() == "time"
    with pytest.raises(ValueError):
        plots.frame_series(table, ("mean", "nope"))
    with pytest.raises(ValueError):
        plots.frame_series(table, "mean", x="nope")


# --- curves ------------------------------------------------------------------------------------

def synthetic_ptc(gain=0.8, read_noise_e=3.5, full_well_adu=50000.0, seed=6):
    rng = np.random.default_rng(seed)
    signal = np.geomspace(20, 60000, 25)
    variance = signal / gain + (read_noise_e / gain) ** 2
    variance *= 1 + rng.normal(0, 0.01, signal.size)
    past = signal > full_well_adu
    variance[past] = variance[~past][-1] * np.linspace(0.6, 0.2, past.sum())
    return signal, variance


def test_photon_transfer_curve_fits_gain_and_excludes_full_well():
    signal, variance = synthetic_ptc()
    gain, rn_adu, used = plots.fit_photon_transfer(signal, variance)
    assert gain == pytest.approx(0.8, rel=0.03)
    assert rn_adu * gain == pytest.approx(3.5, rel=0.1)
    assert not used[signal > 50000].any() and used[signal < 50000].all()
    fig = plots.photon_transfer_curve(signal, variance)
    check_figure(fig)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    legend = " ".join(t.get_text() for t in ax.get_legend().get_texts())
    assert f"gain = {gain:.3g}" in legend and "(fitted)" in legend and "past full well" in legend


def test_photon_transfer_curve_given_gain():
    signal, variance = synthetic_ptc()
    fig = plots.photon_transfer_curve(signal, variance, gain=0.8, read_noise=3.5)
    check_figure(fig)
    assert "(given)" in " ".join(t.get_text() for t in fig.axes[0].get_legend().get_texts())
    check_figure(plots.photon_transfer_curve(signal, variance, gain=0.8))
    with pytest.raises(ValueError):
        plots.photon_transfer_curve([1.0], [1.0])


@pytest.mark.parametrize("combine, factor", [("average", 1.0), ("median", np.sqrt(np.pi / 2))])
def test_master_noise_curve(combine, factor):
    fig = plots.master_noise_curve(10.0, combine=combine, light_noise=6.0, n_current=20,
                                   recommended=(30, 60))
    check_figure(fig)
    ax = fig.axes[0]
    n, noise = ax.lines[0].get_data()
    assert n[0] == 1 and n[-1] == 100
    assert noise[24] == pytest.approx(factor * 10.0 / 5)
    legend = " ".join(t.get_text() for t in ax.get_legend().get_texts())
    assert "recommended: 30 to 60 frames" in legend and "N = 20" in legend and "light's own noise" in legend
    with pytest.raises(ValueError):
        plots.master_noise_curve(10.0, combine="sum")


def test_master_noise_curve_minimal():
    check_figure(plots.master_noise_curve(3.0, n_max=50))


def test_no_pyplot_state_after_all_plots():
    assert no_pyplot_figures()
    if "matplotlib.pyplot" in sys.modules:
        assert not sys.modules["matplotlib.pyplot"].get_fignums()
