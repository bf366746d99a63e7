"""``pareto.html``: a self-contained page (SVG scatter and table) of throughput against parameters."""

from __future__ import annotations

import html
import math

from .values import RankResult


def pareto_html(result: RankResult) -> str:
    """A self-contained HTML page: an SVG scatter of throughput against parameters, front highlighted, and a table."""
    width, height, pad = 720, 420, 60
    cands = result.candidates
    front = {c.trial for c in result.pareto}
    xs = [max(c.design.params.total, 1) for c in cands]
    ys = [c.throughput for c in cands]
    log = max(xs) / min(xs) > 20
    fx = (lambda v: math.log10(v)) if log else float
    x0, x1 = fx(min(xs)), fx(max(xs))
    y0, y1 = 0.0, max(ys) * 1.05
    x1 = x1 if x1 > x0 else x0 + 1

    def px(v: float) -> float:
        return pad + (fx(v) - x0) / (x1 - x0) * (width - 2 * pad)

    def py(v: float) -> float:
        return height - pad - (v - y0) / (y1 - y0) * (height - 2 * pad)

    dots = []
    for c, x, y in zip(cands, xs, ys, strict=True):
        on = c.trial in front
        tip = html.escape(f"#{c.rank} trial {c.trial}: {' | '.join(c.keys)} — {y:,.0f} samples/s, {x:,} params")
        dots.append(
            f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="{6 if on else 4}" '
            f'fill="{"#d62728" if on else "#7f7f7f"}" fill-opacity="0.8"><title>{tip}</title></circle>'
        )
    line = " ".join(f"{px(max(c.design.params.total, 1)):.1f},{py(c.throughput):.1f}" for c in result.pareto)
    rows = "".join(
        f"<tr><td>{c.rank}</td><td>{c.trial}</td><td>{html.escape(' | '.join(c.keys))}</td>"
        f"<td>{c.throughput:,.1f}</td><td>{c.design.params.total:,}</td>"
        f"<td>{'' if c.peak_memory_bytes is None else f'{c.peak_memory_bytes:,}'}</td></tr>"
        for c in result.pareto
    )
    axis = "parameters (log scale)" if log else "parameters"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(result.problem)}: Pareto front</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}</style></head><body>
<h1>{html.escape(result.problem)}: throughput vs parameters</h1>
<p>{len(cands)} measured designs; red: Pareto front. Device {html.escape(result.environment.device_name)},
{html.escape(result.measure.dtype)}, batch {result.measure.batch_size}, {html.escape(result.measure.mode)}.</p>
<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">
<rect x="{pad}" y="{pad}" width="{width - 2 * pad}" height="{height - 2 * pad}" fill="none" stroke="#999"/>
<polyline points="{line}" fill="none" stroke="#d62728" stroke-width="1.5"/>
{"".join(dots)}
<text x="{width / 2}" y="{height - 15}" text-anchor="middle">{axis}: {min(xs):,} – {max(xs):,}</text>
<text x="15" y="{height / 2}" text-anchor="middle"
 transform="rotate(-90 15 {height / 2})">samples/s (0 – {y1:,.0f})</text>
</svg>
<h2>Pareto front</h2>
<table><tr><th>rank</th><th>trial</th><th>choices</th><th>samples/s</th><th>params</th><th>peak memory (B)</th></tr>
{rows}</table></body></html>
"""
