#!/usr/bin/env python3
"""Draws a Grafana dashboard as one PNG from a Prometheus server.

Every panel of the dashboard JSON is drawn from its own queries
(`targets[].expr`, with Grafana's variables filled in), its `legendFormat`,
its unit (`fieldConfig.defaults.unit`), thresholds and value mappings, at its
place on the 24-column grid (`gridPos`), in the look of Grafana's dark
theme: row headers, time series as lines with a legend, `stat` as a big
number over a sparkline, `bargauge` as horizontal bars, `state-timeline` as
coloured bands. A panel whose queries return nothing says "No data". A
footer says what drew the picture.

    render.py --prometheus http://127.0.0.1:9090 \\
        --dashboard deploy/grafana/dashboards/socialauth.json \\
        --start 1765036800 --end 1765037100 --out docs/images/dashboard.png

Data comes from `/api/v1/query_range` over [start, end] every `--step`
seconds; `$__rate_interval` becomes `--rate-interval`, `$__interval` the
step, `$__range` the window, and a template variable its "All" value.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import FancyBboxPatch, Rectangle
from matplotlib.transforms import IdentityTransform

DPI = 100

# Grafana's dark theme.
BG = "#111217"
PANEL_BG = "#181b1f"
BORDER = "#2b2e33"
TEXT = "#ccccdc"
TEXT_DIM = "#8e8e99"
GRID_LINE = "#26292e"
INPUT_BG = "#0d0e12"
LABEL_BG = "#22252b"
UNFILLED = "#24272c"

# Grafana's named colours (dark theme) and the classic palette, in order.
NAMED_COLORS = {
    "green": "#73BF69",
    "semi-dark-green": "#56A64B",
    "dark-green": "#37872D",
    "red": "#F2495C",
    "semi-dark-red": "#E02F44",
    "dark-red": "#C4162A",
    "orange": "#FF9830",
    "semi-dark-orange": "#FF780A",
    "dark-orange": "#FA6400",
    "yellow": "#FADE2A",
    "semi-dark-yellow": "#F2CC0C",
    "blue": "#5794F2",
    "semi-dark-blue": "#3274D9",
    "light-blue": "#8AB8FF",
    "purple": "#B877D9",
    "text": TEXT,
    "transparent": "#00000000",
}
PALETTE = [
    "#73BF69", "#F2CC0C", "#8AB8FF", "#FF780A", "#F2495C", "#5794F2", "#B877D9",
    "#705DA0", "#37872D", "#FADE2A", "#447EBC", "#C15C17", "#890F02", "#0A437C",
    "#6D1F62", "#584477", "#B7DBAB", "#F4D598", "#70DBED", "#F9BA8F", "#F29191",
    "#82B5D8", "#E5A8E2", "#AEA2E0",
]
# What Grafana uses when a panel names no thresholds.
DEFAULT_THRESHOLDS = [(-math.inf, "green"), (80.0, "red")]

# The grid: 24 columns, each height unit 30 px, 8 px between panels.
COLUMNS = 24
CELL_H = 30
GAP = 8
SIDE = 16
HEADER_H = 96
TITLE_H = 32
LEGEND_ROW_H = 18
AXIS_FONT = 10.5
LEGEND_FONT = 11.5
TITLE_FONT = 13

FOOTER_TEXT = (
    "Drawn by deploy/grafana/picture/render.py from the panel queries of "
    "deploy/grafana/dashboards/socialauth.json against Prometheus: "
    "Grafana's layout and units, not a Grafana screenshot."
)


# ---- data -------------------------------------------------------------------


@dataclass
class Series:
    name: str
    values: np.ndarray  # on the shared time grid, NaN where there is none


@dataclass
class PanelData:
    series: list[Series] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not any(np.isfinite(s.values).any() for s in self.series)


class Prometheus:
    def __init__(self, url: str, start: float, end: float, step: float):
        self.url = url.rstrip("/")
        self.start = start
        self.end = end
        self.step = step
        self.grid = np.arange(start, end + step / 2, step)

    def query_range(self, expr: str) -> list[tuple[dict, np.ndarray]]:
        params = urllib.parse.urlencode(
            {"query": expr, "start": self.start, "end": self.end, "step": self.step}
        )
        request = urllib.request.Request(f"{self.url}/api/v1/query_range?{params}")
        try:
            with urllib.request.urlopen(request, timeout=60) as reply:
                body = json.load(reply)
        except urllib.error.HTTPError as e:
            body = json.loads(e.read() or b"{}")
            raise RuntimeError(body.get("error", str(e))) from None
        if body.get("status") != "success":
            raise RuntimeError(body.get("error", "query failed"))
        out = []
        for item in body["data"]["result"]:
            values = np.full(len(self.grid), np.nan)
            for t, v in item["values"]:
                i = round((float(t) - self.start) / self.step)
                if 0 <= i < len(values):
                    x = float(v)
                    values[i] = x if math.isfinite(x) else np.nan
            out.append((item["metric"], values))
        return out


def template_values(dashboard: dict) -> dict[str, str]:
    """Each template variable's value: its "All" value where it has one."""
    values = {}
    for var in dashboard.get("templating", {}).get("list", []):
        name = var.get("name")
        if not name or var.get("type") == "datasource":
            continue
        current = var.get("current") or {}
        value = current.get("value")
        if isinstance(value, list):
            value = value[0] if len(value) == 1 else None
        if var.get("includeAll") and (value in (None, "", "$__all")):
            values[name] = var.get("allValue") or ".*"
        elif value not in (None, ""):
            values[name] = str(value)
        else:
            values[name] = ".*"
    return values


def interpolate(expr: str, variables: dict[str, str], rate_interval: str, step: float, window: float) -> str:
    interval = f"{int(step)}s" if float(step).is_integer() else f"{int(step * 1000)}ms"
    builtins = [
        (r"\$\{?__rate_interval\}?", rate_interval),
        (r"\$\{?__interval_ms\}?", str(int(step * 1000))),
        (r"\$\{?__interval\}?", interval),
        (r"\$\{?__range_s\}?", str(int(window))),
        (r"\$\{?__range_ms\}?", str(int(window * 1000))),
        (r"\$\{?__range\}?", f"{int(window)}s"),
    ]
    for pattern, value in builtins:
        expr = re.sub(pattern + r"(?![A-Za-z0-9_])", value, expr)
    for name, value in variables.items():
        n = re.escape(name)
        expr = re.sub(r"\$\{" + n + r"(?::[A-Za-z]+)?\}|\[\[" + n + r"\]\]|\$" + n + r"(?![A-Za-z0-9_])",
                      lambda _m, v=value: v, expr)
    return expr


def legend_name(fmt: str | None, labels: dict, expr: str) -> str:
    if fmt and fmt != "__auto":
        name = re.sub(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt)
        return re.sub(r"\s+", " ", name).strip()
    shown = {k: v for k, v in labels.items() if k != "__name__"}
    metric = labels.get("__name__", "")
    if not shown:
        return metric or expr
    return metric + "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(shown.items())) + "}"


def panel_data(panel: dict, prom: Prometheus, variables: dict[str, str], rate_interval: str) -> PanelData:
    data = PanelData()
    window = prom.end - prom.start
    for target in panel.get("targets", []):
        if target.get("hide") or not target.get("expr"):
            continue
        expr = interpolate(target["expr"], variables, rate_interval, prom.step, window)
        try:
            result = prom.query_range(expr)
        except (RuntimeError, OSError, ValueError) as e:
            data.errors.append(str(e))
            print(f"render.py: {panel.get('title')}: {expr}: {e}", file=sys.stderr)
            continue
        found = [Series(legend_name(target.get("legendFormat"), labels, expr), values)
                 for labels, values in result]
        found.sort(key=lambda s: s.name)
        data.series.extend(s for s in found if np.isfinite(s.values).any())
    return data


# ---- units --------------------------------------------------------------------


def decimals_for(value: float) -> int:
    """Grafana's decimals for a value shown on its own (getDecimalsForValue)."""
    if value == 0 or not math.isfinite(value):
        return 0
    delta = abs(value) / 2
    dec = -math.floor(math.log10(delta))
    magn = 10 ** -dec
    norm = delta / magn
    if 2.25 < norm < 3:
        dec += 1
    if float(value).is_integer():
        dec = 0
    return max(0, dec)


def scale(value: float, unit: str | None) -> tuple[float, str, str]:
    """(factor, prefix, suffix): value / factor is shown, then the suffix."""
    a = abs(value)
    if unit in ("short", "reqps", None, "", "none"):
        if unit == "reqps":
            names, sep, tail = ["", "K", "M", "B", "T"], "", " req/s"
        elif unit == "short":
            names, sep, tail = ["", " K", " Mil", " Bil", " Tri"], "", ""
        else:
            return 1.0, "", ""
        k = 0
        while k + 1 < len(names) and a >= 1000 ** (k + 1):
            k += 1
        return 1000.0 ** k, "", names[k] + sep + tail
    if unit == "percentunit":
        return 0.01, "", "%"
    if unit == "percent":
        return 1.0, "", "%"
    if unit in ("s", "ms"):
        seconds = a if unit == "s" else a / 1000
        base = 1.0 if unit == "s" else 0.001
        if seconds == 0:
            return 1.0, "", f" {unit}"
        for limit, factor, name in [
            (1e-3, 1e-6, "µs"), (1, 1e-3, "ms"), (60, 1, "s"), (3600, 60, "min"),
            (86400, 3600, "hour"), (604800, 86400, "day"), (math.inf, 604800, "week"),
        ]:
            if seconds < limit:
                return factor / base, "", f" {name}"
    if unit == "d":
        if a < 7:
            return 1.0, "", " day"
        if a < 365:
            return 7.0, "", " week"
        return 365.0, "", " year"
    return 1.0, "", f" {unit}"


def format_value(value: float, unit: str | None, decimals: int | None = None) -> str:
    if value is None or not math.isfinite(value):
        return "No data"
    factor, prefix, suffix = scale(value, unit)
    shown = value / factor
    dec = decimals_for(shown) if decimals is None else decimals
    text = f"{shown:.{dec}f}"
    if text.startswith("-") and float(text) == 0:
        text = text[1:]
    return f"{prefix}{text}{suffix}"


def format_tick(value: float, step: float, unit: str | None) -> str:
    factor, prefix, suffix = scale(value, unit)
    if value == 0:
        return f"0{suffix}"
    scaled_step = step / factor
    dec = max(0, -math.floor(math.log10(scaled_step) + 1e-9)) if scaled_step > 0 else 0
    if scaled_step > 0 and not math.isclose(round(scaled_step / 10 ** -dec), scaled_step / 10 ** -dec, rel_tol=1e-6):
        dec += 1
    return f"{prefix}{value / factor:.{dec}f}{suffix}"


def nice_ticks(lo: float, hi: float, count: int) -> np.ndarray:
    """Round ticks covering [lo, hi]: about `count` of them, steps of 1, 2, 2.5 or 5 times a power of ten."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / max(1, count)
    magn = 10 ** math.floor(math.log10(raw))
    step = next(m * magn for m in (1, 2, 2.5, 5, 10) if m * magn >= raw - 1e-12)
    first = math.floor(lo / step + 1e-9) * step
    last = math.ceil(hi / step - 1e-9) * step
    return np.arange(first, last + step / 2, step)


def round_up(value: float) -> float:
    """`value` rounded up to two significant digits."""
    if value <= 0:
        return value
    magn = 10 ** (math.floor(math.log10(value)) - 1)
    return math.ceil(value / magn - 1e-9) * magn


def threshold_steps(defaults: dict) -> list[tuple[float, str]]:
    steps = (defaults.get("thresholds") or {}).get("steps")
    if not steps:
        return DEFAULT_THRESHOLDS
    return [(-math.inf if s.get("value") is None else float(s["value"]), s.get("color", "green")) for s in steps]


def color_of(name: str) -> str:
    return NAMED_COLORS.get(name, name)


def threshold_color(value: float, steps: list[tuple[float, str]]) -> str:
    chosen = steps[0][1]
    for limit, color in steps:
        if value >= limit:
            chosen = color
    return color_of(chosen)


def mapped(value: float, mappings: list[dict]) -> tuple[str | None, str | None]:
    """(text, colour) of a value mapping that matches `value`."""
    for mapping in mappings or []:
        if mapping.get("type") == "value":
            for key, result in (mapping.get("options") or {}).items():
                try:
                    if float(key) == value:
                        return result.get("text"), result.get("color")
                except ValueError:
                    continue
        elif mapping.get("type") == "range":
            o = mapping.get("options") or {}
            lo = -math.inf if o.get("from") is None else float(o["from"])
            hi = math.inf if o.get("to") is None else float(o["to"])
            if lo <= value <= hi:
                r = o.get("result") or {}
                return r.get("text"), r.get("color")
    return None, None


def blend(color: str, alpha: float, under: str = PANEL_BG) -> tuple[float, float, float]:
    c = np.array(matplotlib.colors.to_rgb(color))
    u = np.array(matplotlib.colors.to_rgb(under))
    return tuple(c * alpha + u * (1 - alpha))


def contrast_text(rgb) -> str:
    r, g, b = matplotlib.colors.to_rgb(rgb)
    return "#111217" if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else "#ffffff"


# ---- drawing ------------------------------------------------------------------


class Canvas:
    """A figure addressed in pixels from its top-left corner."""

    def __init__(self, width: int, height: int):
        self.w = width
        self.h = height
        self.fig = plt.figure(figsize=(width / DPI, height / DPI), dpi=DPI)
        self.fig.patch.set_facecolor(BG)
        self.renderer = self.fig.canvas.get_renderer()
        self._widths: dict = {}

    @staticmethod
    def pt(px: float) -> float:
        return px * 72 / DPI

    def rect(self, x, y, w, h, color, edge=None, radius=2.0, z=0.0):
        patch = FancyBboxPatch(
            (x, self.h - y - h), w, h,
            boxstyle=f"round,pad=0,rounding_size={radius}",
            transform=IdentityTransform(), facecolor=color,
            edgecolor=edge or "none", linewidth=0.8 if edge else 0, zorder=z,
        )
        self.fig.add_artist(patch)

    def text(self, x, y, s, size, color=TEXT, ha="left", va="top", weight="normal", z=5.0, **kw):
        return self.fig.text(x / self.w, 1 - y / self.h, s, fontsize=self.pt(size), color=color,
                             ha=ha, va=va, fontweight=weight, zorder=z, **kw)

    def width(self, s: str, size: float, weight: str = "normal") -> float:
        key = (s, size, weight)
        if key not in self._widths:
            t = self.fig.text(0, 0, s, fontsize=self.pt(size), fontweight=weight)
            self._widths[key] = t.get_window_extent(self.renderer).width
            t.remove()
        return self._widths[key]

    def axes(self, x, y, w, h):
        ax = self.fig.add_axes((x / self.w, 1 - (y + h) / self.h, w / self.w, h / self.h))
        ax.set_facecolor("none")
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.tick_params(colors=TEXT_DIM, labelsize=self.pt(AXIS_FONT), length=0, pad=5)
        return ax

    def fit(self, s: str, size: float, width: float) -> str:
        if self.width(s, size) <= width:
            return s
        while s and self.width(s + "…", size) > width:
            s = s[:-1]
        return s + "…"

    def save(self, path: str):
        self.fig.savefig(path, dpi=DPI, facecolor=BG)


def time_ticks(start: float, end: float, width_px: float) -> tuple[list[float], str]:
    span = end - start
    want = max(2, width_px / 90)
    for step in (5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400):
        if span / step <= want:
            break
    first = math.ceil(start / step) * step
    ticks = list(np.arange(first, end + 1e-6, step))
    return ticks, ("%H:%M:%S" if step < 60 else "%H:%M")


def local_time(t: float, fmt: str) -> str:
    return dt.datetime.fromtimestamp(t).strftime(fmt)


def layout_legend(c: Canvas, items: list[tuple[str, str]], width: float) -> list[list[tuple[str, str, float]]]:
    rows: list[list[tuple[str, str, float]]] = [[]]
    used = 0.0
    for color, name in items:
        name = c.fit(name, LEGEND_FONT, width - 30)
        w = 14 + 6 + c.width(name, LEGEND_FONT) + 16
        if rows[-1] and used + w > width:
            rows.append([])
            used = 0.0
        rows[-1].append((color, name, w))
        used += w
    return rows if rows[0] else []


def draw_legend(c: Canvas, rows, x: float, y: float):
    for r, row in enumerate(rows):
        cx = x
        cy = y + r * LEGEND_ROW_H
        for color, name, w in row:
            c.rect(cx, cy + LEGEND_ROW_H / 2 - 2, 14, 4, color, radius=1.5, z=3)
            c.text(cx + 20, cy + LEGEND_ROW_H / 2, name, LEGEND_FONT, TEXT, va="center_baseline")
            cx += w


def no_data(c: Canvas, box, errors: list[str] | None = None):
    x, y, w, h = box
    c.text(x + w / 2, y + h / 2, "No data", 14, TEXT_DIM, ha="center", va="center")
    if errors:
        c.text(x + w / 2, y + h / 2 + 22, c.fit("query error: " + errors[0], 10, w - 20), 10,
               NAMED_COLORS["red"], ha="center", va="center")


def x_axis(ax, c: Canvas, start: float, end: float, width_px: float):
    ticks, fmt = time_ticks(start, end, width_px)
    ax.set_xlim(start, end)
    ax.set_xticks(ticks)
    ax.set_xticklabels([local_time(t, fmt) for t in ticks])


def draw_timeseries(c: Canvas, panel: dict, data: PanelData, box, grid: np.ndarray, start: float, end: float):
    x, y, w, h = box
    if data.empty:
        no_data(c, box, data.errors)
        return
    defaults = (panel.get("fieldConfig") or {}).get("defaults") or {}
    unit = defaults.get("unit")
    colors = [PALETTE[i % len(PALETTE)] for i in range(len(data.series))]
    legend_opts = (panel.get("options") or {}).get("legend") or {}
    rows = []
    if legend_opts.get("showLegend", True) and legend_opts.get("displayMode") != "hidden":
        rows = layout_legend(c, list(zip(colors, (s.name for s in data.series), strict=True)), w)
        rows = rows[: max(1, int((h * 0.4) // LEGEND_ROW_H))]
    legend_h = len(rows) * LEGEND_ROW_H + (6 if rows else 0)

    plot_h = h - legend_h - 20
    finite = np.concatenate([s.values[np.isfinite(s.values)] for s in data.series])
    lo = min(0.0, float(finite.min())) if "min" not in defaults else float(defaults["min"])
    hi = float(finite.max()) if "max" not in defaults else float(defaults["max"])
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    elif "max" not in defaults:
        # Headroom above the highest point, as Grafana's axes have.
        hi = round_up(hi + (hi - lo) * 0.1)
    ticks = nice_ticks(lo, hi, max(2, int(plot_h // 45)))
    step = ticks[1] - ticks[0]
    ticks = ticks[ticks <= hi + step * 1e-6]
    labels = [format_tick(t, step, unit) for t in ticks]
    left = max(c.width(s, AXIS_FONT) for s in labels) + 8

    ax = c.axes(x + left, y, w - left - 4, plot_h)
    ax.set_ylim(min(ticks[0], lo), hi)
    ax.set_yticks(ticks)
    ax.set_yticklabels(labels)
    x_axis(ax, c, start, end, w - left)
    ax.grid(True, color=GRID_LINE, linewidth=0.8)
    ax.set_axisbelow(True)
    for s, color in zip(data.series, colors, strict=True):
        ax.plot(grid, s.values, color=color, linewidth=1.1, solid_joinstyle="round", solid_capstyle="round")
        finite_mask = np.isfinite(s.values)
        before = np.concatenate([[False], finite_mask[:-1]])
        after = np.concatenate([finite_mask[1:], [False]])
        lonely = finite_mask & ~before & ~after
        if lonely.any():
            ax.plot(grid[lonely], s.values[lonely], "o", color=color, markersize=2.5)
    if rows:
        draw_legend(c, rows, x, y + h - legend_h + 4)


def draw_state_timeline(c: Canvas, panel: dict, data: PanelData, box, grid: np.ndarray, start: float, end: float):
    x, y, w, h = box
    if data.empty:
        no_data(c, box, data.errors)
        return
    defaults = (panel.get("fieldConfig") or {}).get("defaults") or {}
    mappings = defaults.get("mappings") or []
    steps = threshold_steps(defaults)
    options = panel.get("options") or {}
    row_height = float(options.get("rowHeight", 0.9))
    fill = float((defaults.get("custom") or {}).get("fillOpacity", 70)) / 100

    def state(v: float) -> tuple[str, str]:
        text, color = mapped(v, mappings)
        return text or format_value(v, defaults.get("unit")), color_of(color) if color else threshold_color(v, steps)

    legend_items = []
    for mapping in mappings:
        for result in (mapping.get("options") or {}).values():
            if isinstance(result, dict) and result.get("text"):
                legend_items.append((color_of(result.get("color", "text")), result["text"]))
    rows = layout_legend(c, legend_items, w) if legend_items else []
    legend_h = len(rows) * LEGEND_ROW_H + (6 if rows else 0)

    names = [s.name for s in data.series]
    left = max(c.width(n, 12) for n in names) + 12
    plot_h = h - legend_h - 20
    ax = c.axes(x + left, y, w - left - 4, plot_h)
    n = len(data.series)
    ax.set_ylim(n, 0)
    ax.set_yticks([])
    x_axis(ax, c, start, end, w - left)
    ax.grid(True, axis="x", color=GRID_LINE, linewidth=0.8)
    ax.set_axisbelow(True)
    px_per_s = (w - left - 4) / (end - start)
    row_px = plot_h / n
    for i, s in enumerate(data.series):
        c.text(x + left - 8, y + (i + 0.5) * row_px, s.name, 12, TEXT, ha="right", va="center")
        values = s.values
        j = 0
        while j < len(values):
            if not np.isfinite(values[j]):
                j += 1
                continue
            k = j
            while k + 1 < len(values) and np.isfinite(values[k + 1]) and values[k + 1] == values[j]:
                k += 1
            t0 = grid[j]
            t1 = grid[k + 1] if k + 1 < len(grid) else end
            text, color = state(float(values[j]))
            face = blend(color, fill)
            pad = (1 - row_height) / 2
            ax.add_patch(Rectangle((t0, i + pad), t1 - t0, row_height, facecolor=face,
                                   edgecolor=matplotlib.colors.to_rgb(color), linewidth=0.6))
            band_px = (t1 - t0) * px_per_s
            if options.get("showValue", "auto") != "never" and band_px > c.width(text, 12) + 10:
                ax.text((t0 + t1) / 2, i + 0.5, text, ha="center", va="center",
                        fontsize=c.pt(12), color=contrast_text(face), clip_on=True)
            j = k + 1
    if rows:
        draw_legend(c, rows, x, y + h - legend_h + 4)


def last_not_null(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite[-1]) if len(finite) else math.nan


def draw_stat(c: Canvas, panel: dict, data: PanelData, box, grid: np.ndarray, start: float, end: float):
    x, y, w, h = box
    if data.empty:
        no_data(c, box, data.errors)
        return
    defaults = (panel.get("fieldConfig") or {}).get("defaults") or {}
    options = panel.get("options") or {}
    steps = threshold_steps(defaults)
    unit = defaults.get("unit")
    n = len(data.series)
    cell_w = w / n
    for i, s in enumerate(data.series):
        value = last_not_null(s.values)
        color = threshold_color(value, steps)
        cx = x + i * cell_w
        if options.get("graphMode", "area") == "area":
            ax = c.axes(cx, y + h * 0.45, cell_w, h * 0.55)
            finite = s.values[np.isfinite(s.values)]
            lo, hi = float(finite.min()), float(finite.max())
            if hi <= lo:
                lo, hi = lo - 1, hi + 1
            ax.set_ylim(lo, hi + (hi - lo) * 0.05)
            ax.set_xlim(start, end)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.fill_between(grid, s.values, lo, color=color, alpha=0.18, linewidth=0)
            ax.plot(grid, s.values, color=color, linewidth=1.2)
        text = format_value(value, unit)
        size = min(h * 0.36, 72)
        while size > 12 and c.width(text, size, "bold") > cell_w * 0.8:
            size -= 2
        label_y = y + h * 0.36
        if n > 1:
            c.text(cx + cell_w / 2, y + 4, s.name, 12, TEXT, ha="center")
        colored = (options.get("colorMode", "value") == "value")
        c.text(cx + cell_w / 2, label_y, text, size, color if colored else TEXT, ha="center",
               va="center", weight="bold")


def draw_bargauge(c: Canvas, panel: dict, data: PanelData, box, grid: np.ndarray, start: float, end: float):
    x, y, w, h = box
    if data.empty:
        no_data(c, box, data.errors)
        return
    defaults = (panel.get("fieldConfig") or {}).get("defaults") or {}
    steps = threshold_steps(defaults)
    unit = defaults.get("unit")
    series = [(s.name, last_not_null(s.values)) for s in data.series]
    finite = [v for _, v in series if math.isfinite(v)]
    lo = float(defaults["min"]) if "min" in defaults else min(0.0, min(finite))
    hi = float(defaults["max"]) if "max" in defaults else max(finite)
    if hi <= lo:
        hi = lo + 1
    texts = [format_value(v, unit) for _, v in series]
    n = len(series)
    row_h = h / n
    name_h = 20
    bar_h = max(8.0, row_h - name_h - 8)
    value_size = min(bar_h * 0.6, 30)
    value_w = max(c.width(t, value_size, "bold") for t in texts) + 16
    bar_w = w - value_w
    gradient = (panel.get("options") or {}).get("displayMode", "gradient") == "gradient"
    for i, ((name, value), text) in enumerate(zip(series, texts, strict=True)):
        ry = y + i * row_h
        color = threshold_color(value, steps)
        c.text(x, ry + 2, c.fit(name, 12.5, w), 12.5, TEXT)
        by = ry + name_h
        c.rect(x, by, bar_w, bar_h, UNFILLED, radius=2, z=1)
        frac = min(1.0, max(0.0, (value - lo) / (hi - lo))) if math.isfinite(value) else 0.0
        filled = bar_w * frac
        if filled >= 1:
            ax = c.axes(x, by, filled, bar_h)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_zorder(2)
            if gradient:
                # Grafana's gradient: each threshold's colour from halfway
                # between its place and the previous one's, up to the value.
                stops = []
                last = 0.0
                for limit, cname in steps:
                    pos = 0.0 if limit == -math.inf else (limit - lo) / (hi - lo) * bar_w
                    if stops and value < limit:
                        break
                    offset = 0.0 if not stops else (pos + last) / 2
                    stops.append((offset, matplotlib.colors.to_rgb(color_of(cname))))
                    last = pos
                px = np.arange(math.ceil(filled)) + 0.5
                img = np.zeros((1, len(px), 3))
                xs = [s[0] for s in stops]
                for ch in range(3):
                    ys = [s[1][ch] for s in stops]
                    img[0, :, ch] = np.interp(px, xs, ys) if len(xs) > 1 else ys[0]
                # Darker towards the start, as Grafana fades the bar in.
                fade = 0.55 + 0.45 * np.clip(px / max(filled, 1), 0, 1)
                img[0] = img[0] * fade[:, None] + np.array(matplotlib.colors.to_rgb(PANEL_BG)) * (1 - fade[:, None])
                ax.imshow(img, aspect="auto", extent=(0, 1, 0, 1), interpolation="bilinear")
            else:
                ax.add_patch(Rectangle((0, 0), 1, 1, color=color))
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            c.rect(x + filled - 2, by, 2, bar_h, color, radius=0, z=4)
        c.text(x + bar_w + value_w - 4, by + bar_h / 2, text, value_size, color, ha="right",
               va="center", weight="bold")


DRAW = {
    "timeseries": draw_timeseries,
    "graph": draw_timeseries,
    "state-timeline": draw_state_timeline,
    "stat": draw_stat,
    "bargauge": draw_bargauge,
}


def draw_header(c: Canvas, dashboard: dict, start: float, end: float, variables: dict[str, str]):
    title = dashboard.get("title", "dashboard")
    c.rect(0, 0, c.w, 40, PANEL_BG, z=0)
    c.rect(0, 39, c.w, 1, BORDER, radius=0, z=0.5)
    crumbs = "Home  ›  Dashboards  ›  "
    c.text(SIDE, 20, crumbs, 13, TEXT_DIM, va="center")
    c.text(SIDE + c.width(crumbs, 13), 20, title, 13, TEXT, va="center", weight="bold")
    span = f"{local_time(start, '%Y-%m-%d %H:%M:%S')} to {local_time(end, '%Y-%m-%d %H:%M:%S')}"
    tz = dt.datetime.fromtimestamp(start).astimezone().tzname() or ""
    label = f"{span}  {tz}".strip()
    bw = c.width(label, 12) + 24
    c.rect(c.w - SIDE - bw, 8, bw, 24, INPUT_BG, edge=BORDER, radius=2, z=1)
    c.text(c.w - SIDE - bw / 2, 20, label, 12, TEXT, ha="center", va="center")
    # The variable pickers.
    cx = SIDE
    pickers = []
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("hide") == 2:
            continue
        label = var.get("label") or var.get("name")
        if var.get("type") == "datasource":
            value = "Prometheus"
        else:
            value = variables.get(var.get("name"), "")
            if var.get("includeAll") and value == (var.get("allValue") or ".*"):
                value = "All"
        pickers.append((label, value))
    for label, value in pickers:
        lw = c.width(label, 12) + 18
        vw = c.width(value, 12) + 34
        c.rect(cx, 52, lw, 28, LABEL_BG, edge=BORDER, radius=2, z=1)
        c.text(cx + lw / 2, 66, label, 12, TEXT, ha="center", va="center")
        c.rect(cx + lw, 52, vw, 28, INPUT_BG, edge=BORDER, radius=2, z=1)
        c.text(cx + lw + 10, 66, value, 12, TEXT, va="center")
        c.text(cx + lw + vw - 10, 66, "⌄", 12, TEXT_DIM, ha="right", va="center")
        cx += lw + vw + 10


def wrap(c: Canvas, text: str, size: float, width: float) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if line and c.width(candidate, size) > width:
            lines.append(line)
            line = word
        else:
            line = candidate
    return lines + ([line] if line else [])


def render(args: argparse.Namespace) -> int:
    with open(args.dashboard, encoding="utf-8") as f:
        dashboard = json.load(f)
    prom = Prometheus(args.prometheus, args.start, args.end, args.step)
    variables = template_values(dashboard)
    panels = dashboard.get("panels", [])
    # Panels of collapsed rows are inside the row: laid out after it.
    flat = []
    for p in panels:
        flat.append(p)
        if p.get("type") == "row" and p.get("collapsed"):
            flat.extend(p.get("panels") or [])

    bottom = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in flat)
    col_w = (args.width - 2 * SIDE - (COLUMNS - 1) * GAP) / COLUMNS

    def place(gp):
        px = SIDE + gp["x"] * (col_w + GAP)
        py = HEADER_H + gp["y"] * (CELL_H + GAP)
        pw = gp["w"] * col_w + (gp["w"] - 1) * GAP
        ph = gp["h"] * CELL_H + (gp["h"] - 1) * GAP
        return px, py, pw, ph

    probe = Canvas(args.width, 100)
    note_lines = wrap(probe, args.note, 11, args.width - 2 * SIDE) if args.note else []
    plt.close(probe.fig)
    footer_h = 14 + 16 * (1 + len(note_lines)) + 8
    height = int(HEADER_H + bottom * (CELL_H + GAP) + footer_h)
    c = Canvas(args.width, height)
    draw_header(c, dashboard, args.start, args.end, variables)

    summary = []
    for p in flat:
        gp = p.get("gridPos")
        if not gp:
            continue
        x, y, w, h = place(gp)
        kind = p.get("type")
        title = p.get("title", "")
        if kind == "row":
            c.text(x + 2, y + h / 2, "⌄", 14, TEXT_DIM, va="center")
            c.text(x + 20, y + h / 2, title, 14.5, TEXT, va="center", weight="bold")
            continue
        c.rect(x, y, w, h, PANEL_BG, edge=BORDER, radius=3, z=0)
        c.text(x + 9, y + 9, c.fit(title, TITLE_FONT, w - 18), TITLE_FONT, TEXT, weight="bold")
        data = panel_data(p, prom, variables, args.rate_interval)
        body = (x + 9, y + TITLE_H + 2, w - 18, h - TITLE_H - 10)
        drawer = DRAW.get(kind)
        if drawer is None:
            c.text(x + w / 2, y + h / 2, f"Panel type {kind} is not drawn", 13, TEXT_DIM, ha="center", va="center")
        else:
            drawer(c, p, data, body, prom.grid, args.start, args.end)
        summary.append((title, kind, len(data.series), not data.empty, data.errors))

    fy = HEADER_H + bottom * (CELL_H + GAP) + 10
    c.text(SIDE, fy, FOOTER_TEXT, 11, TEXT_DIM)
    for i, line in enumerate(note_lines):
        c.text(SIDE, fy + 16 * (i + 1), line, 11, TEXT_DIM)
    c.save(args.out)

    for title, kind, count, has_data, errors in summary:
        state = "data" if has_data else ("ERROR " + errors[0] if errors else "No data")
        print(f"  {title:<40} {kind:<15} {count:>3} series  {state}")
    shown = sum(1 for s in summary if s[3])
    print(f"{shown} of {len(summary)} panels show data; {len(flat) - len(summary)} rows")
    return 0 if not any(s[4] for s in summary) else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prometheus", required=True, help="Prometheus base URL")
    ap.add_argument("--dashboard", required=True, help="the dashboard JSON")
    ap.add_argument("--start", type=float, required=True, help="window start, Unix seconds")
    ap.add_argument("--end", type=float, required=True, help="window end, Unix seconds")
    ap.add_argument("--step", type=float, default=2.0, help="seconds between points (default 2)")
    ap.add_argument("--rate-interval", default="30s", help="what $__rate_interval becomes (default 30s)")
    ap.add_argument("--width", type=int, default=1800, help="picture width in pixels (default 1800)")
    ap.add_argument("--note", default="", help="a line under the footer: what the data is")
    ap.add_argument("--out", required=True, help="the PNG to write")
    args = ap.parse_args()
    if args.end <= args.start:
        ap.error("--end must be after --start")
    return render(args)


if __name__ == "__main__":
    sys.exit(main())
