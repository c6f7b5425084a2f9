"""``python -m bench.load``: start (or reach) a server, seed it, drive it, report.

Exit status: 0 when every operation succeeded, 1 when some failed (the report is still
written) or the run could not start, 2 for a refused flag, 130 on Ctrl-C. Every failure
the world causes is one ``error: ...`` line on stderr.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import AbstractContextManager, nullcontext

from bench.load.charts import latency_png
from bench.load.driver import RunError, RunResult, run, seed_messages
from bench.load.report import RunFacts, text_summary, write_html
from bench.load.samples import Summary, summarize
from bench.load.server import LocalServer, ServerError, deploy_app
from bench.load.settings import Settings, SettingsError, parse_settings
from bench.load.workload import OPERATIONS, SUBSCRIPTION, SUBSCRIPTION_TITLE

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    try:
        settings = parse_settings(argv)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return _run(settings)
    except KeyboardInterrupt:
        print("error: interrupted; the server was stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ServerError, RunError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _run(settings: Settings) -> int:
    started_at = time.strftime("%Y-%m-%d %H:%M:%S %z")
    server: AbstractContextManager[object]
    if settings.url is None:
        server = LocalServer()
    else:
        server = nullcontext()
    with server as local:
        if isinstance(local, LocalServer):
            url, where = local.url, "headwater serve, started by the driver"
        else:
            assert settings.url is not None and settings.admin_key is not None
            deploy_app(settings.url, settings.admin_key)
            url, where = settings.url, settings.url
        _progress(f"seeding {settings.seed_messages} messages at {url}")
        seed_messages(url, settings.seed_messages, settings.seed)
        _progress(f"running for {settings.duration_s:g} s")
        result = run(url, settings)
    facts = RunFacts(
        settings=settings,
        server=where,
        elapsed_s=result.elapsed_s,
        subscribers_updated=result.subscribers_updated,
        hanging_threads=result.hanging_threads,
        started_at=started_at,
    )
    summaries = _summaries(result)
    print(text_summary(summaries, facts), flush=True)
    _progress("drawing the charts")
    charts = {s.kind: latency_png(s.title, result.samples[s.kind]) for s in summaries}
    write_html(settings.out, summaries, charts, facts)
    print(f"report: {settings.out}")
    if settings.json_out is not None:
        _write_json(settings, summaries, facts)
    failed = sum(s.errors for s in summaries)
    if failed:
        print(f"error: {failed} operations failed; see the report", file=sys.stderr)
        return EXIT_FAILED
    return 0


def _summaries(result: RunResult) -> list[Summary]:
    titles = {op.kind: op.title for op in OPERATIONS} | {SUBSCRIPTION: SUBSCRIPTION_TITLE}
    return [summarize(k, t, result.samples[k], result.elapsed_s) for k, t in titles.items()]


def _write_json(settings: Settings, summaries: list[Summary], facts: RunFacts) -> None:
    assert settings.json_out is not None
    document = {
        "elapsed_s": facts.elapsed_s,
        "subscribers": settings.subscribers,
        "subscribers_updated": facts.subscribers_updated,
        "hanging_threads": facts.hanging_threads,
        "cores": settings.cores,
        "operations": [s.as_json() for s in summaries],
    }
    settings.json_out.parent.mkdir(parents=True, exist_ok=True)
    settings.json_out.write_text(json.dumps(document, indent=2) + "\n")


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
