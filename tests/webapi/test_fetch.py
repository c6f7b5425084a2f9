"""fetch() from an action to a loopback server: bodies, headers, errors, redirects,
bounds, abort and timeouts; queries and mutations refuse it in Convex's words."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the loopback server lives beside this file
from loopback_server import BIG_BYTES, loopback_server  # noqa: E402
from web_handler import web_handler  # noqa: E402


def FetchHandler(**limits):  # noqa: N802 - reads as the handler it makes
    return web_handler("action", **limits)


@pytest.fixture(scope="module")
def server():
    with loopback_server() as url:
        yield url


def fetch(run, code, server, **kw):
    return run(code, handler=kw.pop("handler", FetchHandler()), input=server, **kw)


def test_get_json(run, server):
    code = """
      const r = await fetch(`${input}/echo?x=1`, { headers: { "X-Token": "t" } });
      return [r.status, r.ok, r.headers.get("content-type"), r.url, await r.json()];
    """
    status, ok, ctype, url, body = fetch(run, code, server)
    assert (status, ok, ctype, url) == (200, True, "application/json", f"{server}/echo?x=1")
    assert body["method"] == "GET" and body["path"] == "/echo?x=1"
    assert body["headers"]["x-token"] == "t"
    assert body["headers"]["user-agent"] == "Convex/1.0"


def test_post_json_body(run, server):
    code = """
      const r = await fetch(`${input}/echo`, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ hello: "wörld" }) });
      return await r.json();
    """
    body = fetch(run, code, server)
    assert body["method"] == "POST"
    assert body["headers"]["content-type"] == "application/json"
    assert body["body"] == '{"hello":"wörld"}'


def test_a_500_is_a_response_not_an_error(run, server):
    code = """
      const r = await fetch(`${input}/fail`);
      return [r.status, r.ok, r.statusText, r.headers.get("x-reason"), await r.text()];
    """
    assert fetch(run, code, server) == [500, False, "Internal Server Error", "test", "server broke"]


@pytest.mark.parametrize(("status", "method"), [(302, "GET"), (303, "GET"), (307, "POST")])
def test_redirects_are_followed_as_fetch_does(run, server, status, method):
    code = f"""
      const r = await fetch(`${{input}}/redirect/{status}`, {{ method: "POST", body: "payload" }});
      const body = await r.json();
      return [r.status, r.redirected, r.url, body.method, body.body];
    """
    got = fetch(run, code, server)
    assert got[:3] == [200, True, f"{server}/echo?from=redirect"]
    # 303 turns any method to GET; 307 keeps the method and the body.
    assert got[3:] == ([method, "payload"] if status == 307 else ["GET", ""])


def test_redirect_modes_manual_and_error_and_a_loop(run, server):
    code = """
      const manual = await fetch(`${input}/redirect/301`, { redirect: "manual" });
      const out = [manual.status, manual.headers.get("location")];
      for (const url of [`${input}/redirect/301`, `${input}/loop`]) {
        try { await fetch(url, { redirect: url.endsWith("301") ? "error" : "follow" }); }
        catch (e) { out.push(`${e.name}: ${e.message}`); }
      }
      return out;
    """
    assert fetch(run, code, server) == [
        301,
        "/echo?from=redirect",
        "TypeError: fetch attempted redirect",
        "TypeError: fetch too many redirects",
    ]


def test_a_body_over_the_bound_is_refused(run, server):
    code = """
      const r = await fetch(`${input}/big`);
      try { await r.arrayBuffer(); return "read"; } catch (e) { return e.message; }
    """
    handler = FetchHandler(body_bytes_max=BIG_BYTES - 1)
    assert fetch(run, code, server, handler=handler) == (
        f"Response body too large: fetch reads bodies up to {BIG_BYTES - 1} bytes"
    )
    small = "const r = await fetch(`${input}/echo`); return await r.text();"
    assert run.error(small, handler=FetchHandler(body_bytes_max=10), input=server) == (
        "Uncaught Error: Response body too large: fetch reads bodies up to 10 bytes"
    )
    code_ok = "const r = await fetch(`${input}/big`); return (await r.arrayBuffer()).byteLength;"
    assert fetch(run, code_ok, server) == BIG_BYTES


def test_abort_stops_a_fetch(run, server):
    code = """
      const c = new AbortController();
      setTimeout(() => c.abort(), 50);
      const started = Date.now();
      try { await fetch(`${input}/slow?s=3`, { signal: c.signal }); return "finished"; }
      catch (e) { return [e.name, e.message, Date.now() - started < 2000]; }
    """
    assert fetch(run, code, server) == ["AbortError", "The signal has been aborted", True]


def test_an_already_aborted_signal_never_sends(run, server):
    code = """
      const c = new AbortController(); c.abort();
      try { await fetch(`${input}/echo`, { signal: c.signal }); } catch (e) { return e.name; }
    """
    assert fetch(run, code, server) == "AbortError"


def test_a_request_that_outlasts_its_timeout_fails(run, server):
    code = """
      try { await fetch(`${input}/slow?s=2`); return "finished"; } catch (e) { return e.message; }
    """
    started = time.monotonic()
    got = fetch(run, code, server, handler=FetchHandler(timeout_s=0.3))
    assert got == f"error sending request for url ({server}/slow?s=2): operation timed out"
    assert time.monotonic() - started < 1.5


def test_an_unreachable_host_fails_in_convexs_words(run):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = run(
        "await fetch(`http://127.0.0.1:${input}/x`);",
        handler=FetchHandler(),
        input=str(port),
        raw=True,
    )
    assert out.error.message == (
        f"Uncaught Error: error sending request for url (http://127.0.0.1:{port}/x): "
        "client error (Connect): tcp connect error: Connection refused (os error 111)"
    )


def test_fetches_run_concurrently_with_timers(run, server):
    code = """
      const started = Date.now();
      let ticks = 0;
      const t = setInterval(() => ticks++, 20);
      const one = () => fetch(`${input}/slow?s=0.4`).then((r) => r.text());
      const bodies = await Promise.all([one(), one(), one()]);
      clearInterval(t);
      return [bodies, Date.now() - started < 1100, ticks > 3];
    """
    assert fetch(run, code, server) == [["late", "late", "late"], True, True]


@pytest.mark.parametrize("kind", ["query", "mutation"])
def test_queries_and_mutations_refuse_fetch(run, server, kind):
    message = run.error(f"await fetch('{server}/echo');", kind)
    assert message == (
        "Uncaught Error: Can't use fetch() in queries and mutations. Please consider using an "
        "action. See https://docs.convex.dev/functions/actions for more details."
    )


def test_a_request_object_and_a_stream_body(run, server):
    code = """
      const enc = new TextEncoder();
      const body = new ReadableStream({ start(c) {
        c.enqueue(enc.encode("streamed ")); c.enqueue(enc.encode("body")); c.close(); } });
      const first = await (await fetch(`${input}/echo`, { method: "PUT", body })).json();
      const blob = new Blob(["from a blob"]);
      const request = new Request(`${input}/echo`, { method: "POST", body: blob });
      const second = await (await fetch(request)).json();
      return [first.method, first.body, second.method, second.body, request.bodyUsed];
    """
    assert fetch(run, code, server) == ["PUT", "streamed body", "POST", "from a blob", True]


def test_abort_stops_reading_a_body(run, server):
    code = """
      const c = new AbortController();
      const r = await fetch(`${input}/big`, { signal: c.signal });
      const reader = r.body.getReader();
      const first = await reader.read();
      c.abort();
      try {
        while (!(await reader.read()).done);
        return "finished";
      } catch (e) { return [first.value.length > 0, e.name]; }
    """
    assert fetch(run, code, server) == [True, "AbortError"]
