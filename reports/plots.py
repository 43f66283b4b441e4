"""Plots for the report: matplotlib (Agg, no pyplot state) to inline SVG strings.

One function per capture kind (docs/internals.md, "Run record"):

- ``balancing_convergence`` — cell voltages and Vmax − Vmin over time
- ``hvc_timing`` / ``lvc_timing`` — cell voltage against the threshold, FET state and flag
  as step traces, with the crossing and the trip marked
- ``derating`` — balancing duty against bleed-resistor temperature with the profile's curve
- ``sampling_error`` — per-channel error against the ±accuracy band with U bars, one series
  per temperature (also drawn from ``sampling_error*`` measurements)
- anything else — a generic line plot of every numeric column against the first

Each returns an ``<svg>`` string whose ids are prefixed so several plots can live inline
in one HTML document. Text stays text (``svg.fonttype = none``), so the PDF is searchable.
Series are decimated to a few thousand points: a plot is for the eye, the CSV keeps it all.
"""

from __future__ import annotations

import io
import itertools
import re
from typing import Any, Callable

import numpy as np
from matplotlib import rcParams
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

from .fmt import fmt_plain, fmt_value_u

MAX_POINTS = 1200
WIDTH_IN = 7.0

_STYLE = {
    "svg.fonttype": "none",
    "svg.hashsalt": "bmsrig",
    "font.family": ["DejaVu Sans"],
    "font.size": 8.0,
    "axes.titlesize": 9.0,
    "axes.labelsize": 8.0,
    "legend.fontsize": 7.0,
    "xtick.labelsize": 7.0,
    "ytick.labelsize": 7.0,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "lines.linewidth": 1.0,
    "path.simplify": True,
}

PASS_COLOR = "#1a7f37"
FAIL_COLOR = "#c62828"
BAND_COLOR = "#d0e8d5"

_counter = itertools.count(1)


# --------------------------------------------------------------------------- helpers


def _figure(height_in: float = 2.8, rows: int = 1, sharex: bool = True, ratios=None, left_in: float = 0.65,
            right_in: float = 0.15):
    """A figure with fixed margins (in inches): cheaper than a layout engine, same look every plot."""
    fig = Figure(figsize=(WIDTH_IN, height_in))
    FigureCanvasSVG(fig)
    fig.subplots_adjust(left=left_in / WIDTH_IN, right=1 - right_in / WIDTH_IN, top=1 - 0.28 / height_in,
                        bottom=0.42 / height_in, hspace=0.12 if rows > 1 else 0.2)
    if rows == 1:
        return fig, fig.add_subplot(1, 1, 1)
    axes = fig.subplots(rows, 1, sharex=sharex, gridspec_kw={"height_ratios": ratios} if ratios else None)
    return fig, list(axes)


_ID_RE = re.compile(r'(\bid=")([^"]+)(")')
_REF_RE = re.compile(r'(url\(#|xlink:href="#|href="#)([^)"]+)')


def to_svg(fig: Figure, prefix: str | None = None) -> str:
    """Render ``fig`` to an SVG string for inline HTML (no XML prolog, unique ids)."""
    prefix = prefix or f"fig{next(_counter)}"
    buf = io.StringIO()
    with _rc():
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    fig.clear()
    svg = buf.getvalue()
    start = svg.find("<svg")
    svg = svg[start:] if start >= 0 else svg
    svg = _ID_RE.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}{m.group(3)}", svg)
    svg = _REF_RE.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", svg)
    # let CSS size it: keep the viewBox, drop the fixed size in pt
    svg = re.sub(r'(<svg[^>]*?)\swidth="[^"]*"', r"\1", svg, count=1)
    svg = re.sub(r'(<svg[^>]*?)\sheight="[^"]*"', r"\1", svg, count=1)
    svg = svg.replace("<svg ", '<svg class="plot" role="img" ', 1)
    return svg


class _rc:
    """rcParams for our plots, restored afterwards (no global side effects)."""

    def __enter__(self):
        self._saved = {k: rcParams[k] for k in _STYLE}
        rcParams.update(_STYLE)

    def __exit__(self, *exc):
        rcParams.update(self._saved)


def decimate(*cols: np.ndarray, max_points: int = MAX_POINTS) -> list[np.ndarray]:
    """Every ``k``-th sample so that at most ``max_points`` remain (last sample kept)."""
    n = len(cols[0]) if cols else 0
    if n <= max_points:
        return list(cols)
    idx = np.unique(np.r_[np.arange(0, n, int(np.ceil(n / max_points))), n - 1])
    return [np.asarray(c)[idx] for c in cols]


def _time_scale(t: np.ndarray) -> tuple[float, str]:
    span = float(np.nanmax(t) - np.nanmin(t)) if len(t) else 0.0
    if span > 3 * 3600:
        return 1 / 3600.0, "time (h)"
    if span > 300:
        return 1 / 60.0, "time (min)"
    return 1.0, "time (s)"


def _time_axis(t: np.ndarray) -> tuple[np.ndarray, str]:
    k, label = _time_scale(t)
    return t * k, label


def _num(cols: dict, key: str) -> np.ndarray | None:
    v = cols.get(key)
    if v is None:
        return None
    a = np.asarray(v)
    return a.astype(float) if a.dtype.kind in "fiub" else None


def profile_get(profile: dict | None, *path, default=None):
    cur: Any = profile or {}
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return default
        cur = cur[p]
    return cur


def _first_crossing(t, v, threshold, above: bool):
    if t is None or v is None or threshold is None:
        return None
    mask = v >= threshold if above else v <= threshold
    idx = np.flatnonzero(mask)
    return float(t[idx[0]]) if len(idx) else None


def _first_change(t, x, after: float | None, to_level: float):
    if t is None or x is None:
        return None
    ok = x == to_level
    if after is not None:
        ok &= t >= after
    idx = np.flatnonzero(ok & np.r_[True, x[:-1] != to_level])
    return float(t[idx[0]]) if len(idx) else None


# --------------------------------------------------------------------------- kinds


def plot_balancing_convergence(cols: dict, units: dict, meta: dict, profile: dict | None) -> Figure:
    t = _num(cols, "t_s")
    if t is None:
        t = np.arange(len(next(iter(cols.values()))), dtype=float)
    cell_keys = sorted(k for k in cols if re.match(r"v_cell_?\d+", k) and _num(cols, k) is not None)
    fig, (ax1, ax2) = _figure(4.0, rows=2, ratios=[3, 2], right_in=0.95 if 0 < len(cell_keys) <= 32 else 0.15)
    tt, tlabel = _time_axis(t)
    if cell_keys:
        V = np.vstack([_num(cols, k) for k in cell_keys])
        tt_d, *Vd = decimate(tt, *V)
        cmap = rcParams["axes.prop_cycle"].by_key()["color"]
        for i, (k, v) in enumerate(zip(cell_keys, Vd)):
            ax1.plot(tt_d, v, lw=0.8, color=cmap[i % len(cmap)], label=k.replace("v_cell_", "cell "))
        delta = _num(cols, "delta_v")
        if delta is None:
            delta = V.max(axis=0) - V.min(axis=0)
    else:
        delta = _num(cols, "delta_v")
    ax1.set_ylabel(f"cell voltage ({units.get(cell_keys[0], 'V') if cell_keys else 'V'})")
    ax1.set_title("Cell voltages under balancing")
    if 0 < len(cell_keys) <= 32:
        ax1.legend(ncol=1 if len(cell_keys) <= 16 else 2, loc="upper left", bbox_to_anchor=(1.01, 1.02), fontsize=5.5,
                   frameon=False, handlelength=1.2, labelspacing=0.25, borderaxespad=0.0)
    if delta is not None:
        scale, unit = (1000.0, "mV") if units.get("delta_v", "V") == "V" else (1.0, units.get("delta_v", ""))
        td, dd = decimate(tt, delta * scale)
        ax2.plot(td, dd, color="#333333", lw=1.0, label="Vmax − Vmin")
        for key, label, style in (("start_delta_mv", "start delta", "--"), ("stop_delta_mv", "stop delta", ":")):
            mv = meta.get(key, profile_get(profile, "balancing", key))
            if mv is not None and unit == "mV":
                ax2.axhline(float(mv), color=FAIL_COLOR if key == "start_delta_mv" else PASS_COLOR, ls=style, lw=0.9,
                            label=f"{label} {float(mv):g} mV")
        ax2.set_ylabel(f"delta ({unit})")
        ax2.legend(loc="upper left", bbox_to_anchor=(1.01, 1.02), fontsize=5.5, frameon=False, handlelength=1.2,
                   borderaxespad=0.0)
    ax2.set_xlabel(tlabel)
    return fig


def cutoff_title(name: str, meta: dict, profile: dict | None) -> str:
    """The timing plot's title: the cell it shows and the latency as the results table writes
    it (``meta``: ``cell``, ``latency_s``, ``latency_u_s``, ``measurement``; s)."""
    title = f"{name} timing" + (f", cell {meta['cell']}" if meta.get("cell") is not None else "")
    lat = meta.get("latency_s")
    if lat is not None:
        text = fmt_value_u(lat, meta.get("latency_u_s"))[0] if meta.get("latency_u_s") else f"{float(lat):.3f}"
        lim = profile_get(profile, "protection", name.lower(), "latency_max_s")
        title += f" — latency {text} s" + (f" (limit ≤ {fmt_plain(lim)} s)" if lim is not None else "")
    return title


def plot_cutoff_timing(cols: dict, units: dict, meta: dict, profile: dict | None, kind: str) -> Figure:
    hvc = kind.startswith("hvc")
    t = _num(cols, "t_s")
    v = _num(cols, "cell_v")
    if t is None:
        t = np.arange(len(v) if v is not None else 0, dtype=float)
    thr_col = _num(cols, "threshold_v")
    threshold = meta.get("threshold_v")
    if threshold is None and thr_col is not None and len(thr_col):
        threshold = float(np.nanmedian(thr_col))
    if threshold is None:
        threshold = profile_get(profile, "protection", "hvc" if hvc else "lvc", "threshold_v")
    fet_key = next((k for k in (("charge_fet", "discharge_fet") if hvc else ("discharge_fet", "charge_fet")) if k in cols), None)
    fet = _num(cols, fet_key) if fet_key else None
    flag = _num(cols, "flag")
    if meta.get("t_cross") is not None and meta.get("t_trip") is not None and len(t):
        # the latency measurement's step and FET edge: show the seconds around them, not the run
        t0, t1 = float(meta["t_cross"]), float(meta["t_trip"])
        pad = max(2.0, 2.0 * (t1 - t0))
        keep = (t >= t0 - pad) & (t <= t1 + pad)
        if keep.sum() >= 2:
            cols = {k: (np.asarray(c)[keep] if hasattr(c, "__len__") and len(c) == len(t) else c) for k, c in cols.items()}
            t, v = t[keep], (v[keep] if v is not None else None)
            thr_col = thr_col[keep] if thr_col is not None else None
            fet = fet[keep] if fet is not None else None
            flag = flag[keep] if flag is not None else None
    fig, axes = _figure(3.8, rows=3, ratios=[3, 1, 1], left_in=1.2)
    ax_v, ax_fet, ax_flag = axes
    # time from the threshold crossing (or the capture's start): rig time since the rig was
    # built runs to 1e5 s on the bench and would hide milliseconds behind an axis offset
    t_cross = meta.get("t_cross")
    if t_cross is None and threshold is not None:
        t_cross = _first_crossing(t, v, float(threshold), above=hvc)
    t_ref = float(t_cross) if t_cross is not None else (float(t[0]) if len(t) else 0.0)
    scale, tlabel = _time_scale(t - t_ref)
    tlabel = tlabel.replace("time", "time from the crossing" if t_cross is not None else "time from capture start", 1)
    tt = (t - t_ref) * scale
    if v is not None:
        td, vd = decimate(tt, v)
        ax_v.plot(td, vd, color="#1f4e9c", label="cell voltage")
    if thr_col is not None:
        td, thd = decimate(tt, thr_col)
        ax_v.step(td, thd, where="post", color=FAIL_COLOR, ls="--", lw=0.9, label="threshold")
    elif threshold is not None:
        ax_v.axhline(float(threshold), color=FAIL_COLOR, ls="--", lw=0.9, label="threshold")
    name = "HVC" if hvc else "LVC"
    title = cutoff_title(name, meta, profile)
    ax_v.set_title(title)
    ax_v.set_ylabel(f"cell voltage ({units.get('cell_v', 'V')})")
    t_trip = meta.get("t_trip")
    if t_trip is None:
        t_trip = _first_change(t, fet, t_cross, 0.0)
    fet_label = (fet_key or "FET").replace("_fet", " FET").replace("_", " ")
    for ax, series, label, ticks in ((ax_fet, fet, fet_label, ["open", "closed"]), (ax_flag, flag, f"{name} flag", ["off", "on"])):
        if series is not None:
            td, sd = decimate(tt, series)
            ax.step(td, sd, where="post", color="#444444")
        ax.set_ylim(-0.25, 1.3)
        ax.set_yticks([0, 1], ticks)
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=6.5, labelpad=4)
    marks = []
    if t_cross is not None:
        marks.append((float(t_cross), "crossing", "#b26a00"))
    if t_trip is not None:
        marks.append((float(t_trip), "trip", FAIL_COLOR))
    for tm, label, color in marks:
        for ax in axes:
            ax.axvline((tm - t_ref) * scale, color=color, lw=0.9, ls="-.")
        left = label == "crossing"
        ax_v.annotate(f"{label} {tm - t_ref:+.3f} s" if label != "crossing" else label,
                      xy=((tm - t_ref) * scale, 1.0), xycoords=("data", "axes fraction"),
                      xytext=(-3 if left else 3, -10), textcoords="offset points", fontsize=7, color=color,
                      ha="right" if left else "left", va="center",
                      bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8})
    if t_cross is not None and t_trip is not None and meta.get("latency_s") is None:
        ax_v.set_title(cutoff_title(name, {**meta, "latency_s": float(t_trip) - float(t_cross)}, profile))
    ax_v.legend(loc="lower left" if hvc else "upper left", frameon=False)
    for ax in axes:
        ax.ticklabel_format(axis="x", useOffset=False, style="plain")
    ax_flag.set_xlabel(tlabel)
    return fig


def plot_derating(cols: dict, units: dict, meta: dict, profile: dict | None) -> Figure:
    temp = _num(cols, "temp_c")
    duty = _num(cols, "duty")
    expected = _num(cols, "expected_duty")
    fig, ax = _figure(2.9)
    der = profile_get(profile, "balancing", "derating") or {}
    start, zero = der.get("start_c", meta.get("start_c")), der.get("zero_c", meta.get("zero_c"))
    tol = der.get("duty_tolerance", meta.get("duty_tolerance"))
    lo_t = float(np.nanmin(temp)) if temp is not None and len(temp) else 20.0
    hi_t = float(np.nanmax(temp)) if temp is not None and len(temp) else 90.0
    if start is not None and zero is not None:
        start, zero = float(start), float(zero)
        x = np.linspace(min(lo_t, start) - 5, max(hi_t, zero) + 5, 200)
        y = np.clip(1.0 - (x - start) / (zero - start), 0.0, 1.0)
        ax.plot(x, y, color="#333333", lw=1.0, label="profile derating curve")
        if tol is not None:
            ax.fill_between(x, np.clip(y - tol, 0, 1), np.clip(y + tol, 0, 1), color=BAND_COLOR, lw=0,
                            label=f"± {float(tol):g} tolerance")
    elif expected is not None and temp is not None:
        order = np.argsort(temp)
        ax.plot(temp[order], expected[order], color="#333333", lw=1.0, label="expected duty")
    if temp is not None and duty is not None:
        if expected is not None and tol is not None:
            ok = np.abs(duty - expected) <= float(tol)
        else:
            ok = np.ones(len(duty), bool)
        ax.scatter(temp[ok], duty[ok], s=14, color=PASS_COLOR, zorder=3, label="measured duty")
        if (~ok).any():
            ax.scatter(temp[~ok], duty[~ok], s=18, color=FAIL_COLOR, marker="x", zorder=4, label="out of tolerance")
    ax.set_xlabel(f"bleed-resistor temperature ({units.get('temp_c', '°C')})")
    ax.set_ylabel("balancing duty")
    ax.set_ylim(-0.05, 1.1)
    ax.set_title("Balancing duty cycle against temperature")
    ax.legend(loc="lower left", frameon=False)
    return fig


def sampling_points_from_measurements(measurements: list[dict]) -> list[dict]:
    """Rows (cell, temp_c, error_v, u_v, limit_v, verdict) from ``sampling_error*`` measurements."""
    rows = []
    for m in measurements:
        cond = m.get("conditions") or {}
        if not str(m.get("name", "")).startswith("sampling_error") or "cell" not in cond:
            continue
        value = _as_float(m.get("value"))
        if value is None:
            continue
        scale = {"V": 1.0, "mV": 1e-3, "uV": 1e-6, "µV": 1e-6}.get(m.get("unit") or "V", 1.0)
        lims = [x for x in (m.get("limits") or []) if _as_float(x) is not None]
        limit = max(abs(_as_float(x)) for x in lims) * scale if lims else None
        rows.append(
            {
                "cell": _as_float(cond.get("cell")),
                "temp_c": _as_float(cond.get("temp_c")),
                "error_v": value * scale,
                "u_v": (_as_float(m.get("uncertainty")) or 0.0) * scale,
                "limit_v": limit,
                "verdict": m.get("verdict"),
            }
        )
    return rows


def plot_sampling_error(rows: list[dict], accuracy_mv: float | None, title: str = "Sampling error per channel") -> Figure:
    fig, ax = _figure(3.0)
    if accuracy_mv is None:
        lims = [r["limit_v"] for r in rows if r.get("limit_v")]
        accuracy_mv = max(lims) * 1000.0 if lims else None
    temps = sorted({r["temp_c"] for r in rows}, key=lambda x: (x is None, x if x is not None else 0.0))
    n_t = max(len(temps), 1)
    width = 0.6
    cells = [r["cell"] for r in rows if r["cell"] is not None]
    cmin, cmax = (min(cells), max(cells)) if cells else (1, 1)
    if accuracy_mv is not None:
        ax.axhspan(-accuracy_mv, accuracy_mv, color=BAND_COLOR, lw=0, zorder=0, label=f"± {accuracy_mv:g} mV spec")
        ax.axhline(accuracy_mv, color=PASS_COLOR, lw=0.8)
        ax.axhline(-accuracy_mv, color=PASS_COLOR, lw=0.8)
    cmap = ["#1f4e9c", "#b26a00", "#6a3d9a", "#00838f", "#ad1457", "#558b2f", "#4e342e"]
    for i, temp in enumerate(temps):
        sel = [r for r in rows if r["temp_c"] == temp]
        x = np.array([r["cell"] for r in sel], float) + (i - (n_t - 1) / 2) * (width / n_t)
        y = np.array([r["error_v"] for r in sel]) * 1000.0
        u = np.array([r["u_v"] for r in sel]) * 1000.0
        color = cmap[i % len(cmap)]
        label = f"{temp:g} °C" if temp is not None else "error"
        ax.errorbar(x, y, yerr=u, fmt="o", ms=3, color=color, ecolor=color, elinewidth=0.8, capsize=1.5, label=label)
        bad = np.array([r.get("verdict") == "fail" for r in sel])
        if bad.any():
            ax.scatter(x[bad], y[bad], s=40, facecolors="none", edgecolors=FAIL_COLOR, lw=1.0, zorder=5)
    ax.set_xlim(cmin - 0.7, cmax + 0.7)
    if accuracy_mv is not None:
        ys = [abs(r["error_v"]) * 1000.0 + abs(r["u_v"]) * 1000.0 for r in rows] or [0.0]
        top = max(accuracy_mv * 1.2, max(ys) * 1.1)
        ax.set_ylim(-top, top * 1.45)  # room above the band for the legend
    if cmax - cmin <= 32:
        ax.set_xticks(np.arange(int(cmin), int(cmax) + 1))
    ax.set_xlabel("cell channel")
    ax.set_ylabel("reported − reference (mV)")
    ax.set_title(title + " (bars: U, k = 2; red ring: fail)")
    ax.legend(loc="upper right", ncol=min(n_t + 1, 6), frameon=False)
    return fig


def plot_generic(cols: dict, units: dict, title: str) -> Figure:
    fig, ax = _figure(2.6)
    numeric = [k for k in cols if _num(cols, k) is not None]
    if not numeric:
        ax.text(0.5, 0.5, "no numeric columns", ha="center", transform=ax.transAxes)
        return fig
    xkey = numeric[0]
    x = _num(cols, xkey)
    ys = numeric[1:] or [xkey]
    if len(numeric) == 1:
        x = np.arange(len(x), dtype=float)
        xkey = "sample"
    for k in ys[:12]:
        xd, yd = decimate(x, _num(cols, k))
        ax.plot(xd, yd, lw=0.9, label=f"{k} ({units[k]})" if units.get(k) else k)
    ax.set_xlabel(f"{xkey} ({units[xkey]})" if units.get(xkey) else xkey)
    ax.set_title(title)
    if len(ys) > 1:
        ax.legend(loc="best", frameon=False, ncol=2)
    else:
        ax.set_ylabel(f"{ys[0]} ({units[ys[0]]})" if units.get(ys[0]) else ys[0])
    return fig


def _as_float(x) -> float | None:
    if x is None or isinstance(x, bool):
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f


# --------------------------------------------------------------------------- dispatch


def capture_figure(kind: str | None, name: str, cols: dict, units: dict, meta: dict, profile: dict | None) -> Figure:
    """The figure for one capture, chosen by its kind."""
    kind = kind or ""
    if kind == "balancing_convergence":
        return plot_balancing_convergence(cols, units, meta, profile)
    if kind in ("hvc_timing", "lvc_timing"):
        return plot_cutoff_timing(cols, units, meta, profile, kind)
    if kind == "derating":
        return plot_derating(cols, units, meta, profile)
    if kind == "sampling_error":
        rows = []
        cell, temp = _num(cols, "cell"), _num(cols, "temp_c")
        err, u = _num(cols, "error_v"), _num(cols, "u_v")
        if cell is not None and err is not None:
            for i in range(len(cell)):
                rows.append({"cell": cell[i], "temp_c": None if temp is None else float(temp[i]),
                             "error_v": float(err[i]), "u_v": 0.0 if u is None else float(u[i]), "verdict": None})
        acc = meta.get("accuracy_mv", profile_get(profile, "sampling", "accuracy_mv"))
        return plot_sampling_error(rows, None if acc is None else float(acc), title=f"Sampling error: {name}")
    return plot_generic(cols, units, f"{name} ({kind})" if kind else name)


def capture_svg(kind, name, cols, units, meta, profile, prefix: str | None = None) -> str:
    """The SVG of one capture (see :func:`capture_figure`); ``prefix`` makes its ids unique."""
    with _rc():
        return to_svg(capture_figure(kind, name, cols, units or {}, meta or {}, profile), prefix)


def sampling_error_svg(measurements: list[dict], accuracy_mv: float | None, prefix: str | None = None) -> str | None:
    """The per-channel error plot from ``sampling_error*`` measurements; None if there are none."""
    rows = sampling_points_from_measurements(measurements)
    if not rows:
        return None
    with _rc():
        return to_svg(plot_sampling_error(rows, accuracy_mv), prefix)


def safe_svg(render: Callable[[], str], what: str) -> str:
    """Render, or an inline note when the data cannot be plotted (a report never dies on a plot)."""
    try:
        return render()
    except Exception as exc:  # noqa: BLE001 - a bad capture must not lose the report
        from html import escape

        return f'<p class="plot-error">Plot of {escape(what)} could not be drawn: {escape(type(exc).__name__)}: {escape(str(exc))}</p>'
