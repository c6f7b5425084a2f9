"""The run's two outputs: a text table for the terminal and a self-contained HTML page.

The page embeds its charts as base64 ``data:`` PNGs and its style inline, so it opens
offline and can be committed or mailed as one file.
"""

from __future__ import annotations

import base64
import html
import math
import platform
from dataclasses import dataclass
from pathlib import Path

from bench.load.samples import Summary
from bench.load.settings import Settings

PEER_NOTE = "Headwater only: no peer installable from a package registry here"
COLUMNS = ("operation", "count", "ops/s", "p50 ms", "p99 ms", "p99.9 ms", "errors")


@dataclass(frozen=True)
class RunFacts:
    """What the report says about the run besides the figures."""

    settings: Settings
    server: str  # "started by the driver" or the --url given
    elapsed_s: float
    subscribers_updated: int
    hanging_threads: int
    started_at: str  # ISO time, for the reader


def rows(summaries: list[Summary]) -> list[tuple[str, ...]]:
    return [
        (
            s.kind,
            f"{s.count:,}",
            f"{s.ops_per_s:,.1f}",
            _ms(s.p50_ms),
            _ms(s.p99_ms),
            _ms(s.p999_ms),
            f"{s.errors:,}",
        )
        for s in summaries
    ]


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.2f}"


def text_summary(summaries: list[Summary], facts: RunFacts) -> str:
    table = [COLUMNS, *rows(summaries)]
    widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in
                       enumerate(zip(r, widths, strict=True))) for r in table]  # fmt: skip
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += ["", *(f"{k}: {v}" for k, v in _settings(facts).items())]
    lines += [f"{s.kind} first error: {s.first_error}" for s in summaries if s.first_error]
    return "\n".join(lines)


def _settings(facts: RunFacts) -> dict[str, str]:
    s = facts.settings
    return {
        "duration": f"{facts.elapsed_s:.1f} s (asked {s.duration_s:g} s)",
        "client threads": f"{s.threads} per operation kind (insert, query, search, vector)",
        "target rates": f"insert {_rate(s.insert_rate)}, query {_rate(s.query_rate)}, "
        f"search {_rate(s.search_rate)}, vector {_rate(s.vector_rate)}",
        "subscribers": f"{s.subscribers} (newest {s.newest_limit} messages each); "
        f"{facts.subscribers_updated} received updates",
        "seed messages": f"{s.seed_messages:,}",
        "server": facts.server,
        "machine": f"{s.cores} cores, {platform.machine()}, Python {platform.python_version()}",
        "started": facts.started_at,
        "client calls still hanging at the end": str(facts.hanging_threads),
        "peer": PEER_NOTE,
    }


def _rate(rate: float) -> str:
    return f"{rate:g}/s" if rate > 0 else "unpaced"


def write_html(path: Path, summaries: list[Summary], charts: dict[str, bytes],
               facts: RunFacts) -> None:  # fmt: skip
    """Write the report; ``charts`` maps an operation kind to its PNG."""
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows(summaries)
    )
    settings = "".join(
        f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in _settings(facts).items()
    )
    figures = "".join(
        f'<figure><figcaption>{e(s.title)}</figcaption><img alt="{e(s.kind)} latency" '
        f'src="data:image/png;base64,{base64.b64encode(charts[s.kind]).decode()}"></figure>'
        for s in summaries
        if s.kind in charts
    )
    errors = "".join(
        f"<li>{e(s.kind)}: {e(s.first_error)}</li>" for s in summaries if s.first_error
    )
    page = _PAGE.format(
        head=head,
        body=body,
        settings=settings,
        figures=figures,
        errors=f"<h2>First error per operation</h2><ul>{errors}</ul>" if errors else "",
        peer=e(PEER_NOTE),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Headwater load report</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 62em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }}
th {{ background: #f4f4f4; }}
table.settings th, table.settings td {{ text-align: left; }}
figure {{ margin: 1.5em 0; }} figcaption {{ font-weight: 600; }}
img {{ max-width: 100%; }}
.peer {{ padding: 0.5em 0.8em; background: #fff8e1; border-left: 4px solid #f0b400; }}
</style></head><body>
<h1>Headwater load report</h1>
<p>Latency is client side: from a call's send to its answer, through the official Python
<code>convex</code> client over loopback. A subscriber's latency is the time its update
arrives minus the <code>sentAtMs</code> of the newest message it shows.</p>
<p class="peer">{peer}</p>
<h2>Summary</h2>
<table class="summary"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
{errors}
<h2>Settings</h2>
<table class="settings">{settings}</table>
<h2>Latency per operation</h2>
{figures}
</body></html>
"""
