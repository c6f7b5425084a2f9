"""The Web classes functions use: streams, Blob, File, FormData, URL, Headers,
Request, Response, AbortController (in actions, and in queries where they are
deterministic)."""

from __future__ import annotations


def test_a_response_reads_a_readable_stream(run):
    code = """
      const enc = new TextEncoder();
      const stream = new ReadableStream({ start(c) {
        c.enqueue(enc.encode("hello ")); c.enqueue(enc.encode("stream")); c.close(); } });
      const response = new Response(stream, { status: 201, headers: { "X-Kind": "s" } });
      const text = await response.text();
      let again;
      try { await response.text(); } catch (e) { again = e.message; }
      return [text, response.status, response.ok, response.bodyUsed,
              response.headers.get("x-kind"), again];
    """
    assert run(code) == [
        "hello stream",
        201,
        True,
        True,
        "s",
        "Failed to execute 'text' on 'Response': body stream already read",
    ]


def test_blob_slice_text_and_array_buffer(run):
    code = """
      const world = new Uint8Array([119, 111, 114, 108, 100]);
      const blob = new Blob(["hello", " ", world], { type: "text/plain" });
      const part = blob.slice(6, 9, "x/y");
      return [blob.size, blob.type, await blob.text(), await part.text(), part.type,
              Array.from(new Uint8Array(await blob.slice(-2).arrayBuffer()))];
    """
    assert run(code) == [11, "text/plain", "hello world", "wor", "x/y", [108, 100]]


def test_form_data_with_a_file_round_trips_through_a_body(run):
    code = """
      const form = new FormData();
      form.append("title", "notes");
      form.append("upload", new File(["line 1\\n"], "notes.txt", { type: "text/plain" }));
      const request = new Request("http://127.0.0.1/upload", { method: "POST", body: form });
      const type = request.headers.get("content-type");
      const back = await request.formData();
      const file = back.get("upload");
      return [type.startsWith("multipart/form-data; boundary="), back.get("title"),
              file instanceof File, file.name, file.type, await file.text()];
    """
    assert run(code) == [True, "notes", True, "notes.txt", "text/plain", "line 1\n"]


def test_urlencoded_bodies_parse_as_form_data(run):
    code = """
      const r = new Response(new URLSearchParams({ a: "1 2", b: "é" }));
      const type = r.headers.get("content-type");
      const form = await r.formData();
      return [type, form.get("a"), form.get("b")];
    """
    assert run(code) == ["application/x-www-form-urlencoded;charset=UTF-8", "1 2", "é"]


def test_url_parsing_and_search_params(run):
    code = """
      const u = new URL("HTTPS://user:pw@Example.COM:8443/a/./b/../c?x=1&y=two#frag");
      u.searchParams.append("z", "3 4");
      const rel = new URL("../d?q", "https://example.com/a/b/c");
      let bad;
      try { new URL("not a url"); } catch (e) { bad = [e.name, e.message]; }
      return [u.href, u.origin, u.hostname, u.port, u.pathname, u.hash, u.searchParams.get("y"),
              rel.href, new URL("https://bücher.example/").hostname, bad];
    """
    assert run(code) == [
        "https://user:pw@example.com:8443/a/c?x=1&y=two&z=3+4#frag",
        "https://example.com:8443",
        "example.com",
        "8443",
        "/a/c",
        "#frag",
        "two",
        "https://example.com/a/d?q",
        "xn--bcher-kva.example",
        ["TypeError", "Invalid URL: 'not a url'"],
    ]


def test_headers_are_case_insensitive(run):
    code = """
      const h = new Headers({ "Content-Type": "text/html" });
      h.append("X-Many", "1");
      h.append("x-many", "2");
      h.set("CONTENT-type", "application/json");
      return [h.get("content-type"), h.get("X-MANY"), h.has("x-many"), [...h.keys()]];
    """
    assert run(code) == ["application/json", "1, 2", True, ["content-type", "x-many"]]


def test_request_and_response_follow_conventions(run):
    code = """
      const out = [];
      for (const f of [
        () => new Request("ftp://example.com/"),
        () => new Request("http://127.0.0.1/", { method: "GET", body: "x" }),
        () => new Response("x", { status: 99 }),
        () => Response.json(undefined),
      ]) { try { f(); out.push(null); } catch (e) { out.push(`${e.name}: ${e.message}`); } }
      const json = Response.json({ a: 1 }, { status: 202 });
      const redirect = Response.redirect("https://example.com/next", 307);
      const request = new Request("http://127.0.0.1/x", { method: "post", body: "abc" });
      const copy = request.clone();
      out.push([json.status, json.headers.get("content-type"), await json.json()]);
      out.push([redirect.status, redirect.headers.get("location")]);
      out.push([request.method, await request.text(), await copy.text()]);
      return out;
    """
    assert run(code) == [
        "TypeError: Unsupported URL scheme -- http and https are supported (scheme was ftp)",
        "TypeError: Failed to construct 'Request': Request with GET/HEAD method cannot have body.",
        "RangeError: Failed to construct 'Response': The status provided is outside the range "
        "[200, 599].",
        "TypeError: Failed to execute 'json' on 'Response': The data is not JSON serializable",
        [202, "application/json", {"a": 1}],
        [307, "https://example.com/next"],
        ["POST", "abc", "abc"],
    ]


def test_a_cloned_streamed_response_reads_twice(run):
    code = """
      const r = new Response(new Blob(["twice"]).stream());
      const c = r.clone();
      return [await r.text(), await c.text()];
    """
    assert run(code) == ["twice", "twice"]


def test_abort_controller_signals_its_listeners(run):
    code = """
      const c = new AbortController();
      let seen = 0;
      c.signal.addEventListener("abort", () => seen++);
      c.abort();
      c.abort();
      return [c.signal.aborted, seen, c.signal.reason.name];
    """
    assert run(code) == [True, 1, "AbortError"]


def test_the_classes_work_in_queries_and_leave_no_trace(run):
    code = """
      const b = new Blob(["q"]);
      const r = new Response(b);
      globalThis.leak = 1;
      return [await r.text(), new URL("https://a.b/c").pathname, typeof globalThis.leak];
    """
    assert run(code, "query") == ["q", "/c", "number"]
    assert run("return typeof globalThis.leak;", "query") == "undefined"
