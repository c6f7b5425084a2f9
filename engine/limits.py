"""Every limit Headwater enforces, in one place.

Each limit has its unit in its name, a comment on why, and can be overridden by
an environment variable ``HEADWATER_<NAME>`` (upper-case) read once at import.
Defaults follow the reference deployment's documented limits
(spec/function-runtime.md §8) so apps behave the same here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get("HEADWATER_" + name.upper())
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"HEADWATER_{name.upper()} must be an integer, got {raw!r}") from exc


@dataclass(frozen=True)
class Limits:
    # Values: documents nest at most 16 deep, other values (arguments) 64.
    document_depth_max: int = 16
    value_depth_max: int = 64
    # A stored document at most 1 MiB, so one read never balloons memory.
    document_bytes_max: int = 1 << 20
    # Arguments and return values at most 16 MiB each.
    value_bytes_max: int = 16 << 20
    array_items_max: int = 8192
    object_fields_max: int = 1024
    field_name_bytes_max: int = 1024
    identifier_chars_max: int = 64
    # Per transaction: bounded work, so one function cannot starve the others.
    documents_read_max: int = 32_000
    read_bytes_max: int = 16 << 20
    index_ranges_max: int = 4096
    documents_written_max: int = 16_000
    written_bytes_max: int = 16 << 20
    query_operators_max: int = 256
    page_size_max: int = 32_000
    # A page longer than this asks the client to split it (pageStatus SplitRecommended):
    # three quarters of the reference's 8192, so live pages stay cheap to re-run.
    page_split_recommended_items: int = 6144
    # OCC: a mutation is retried this many times after a conflict, then fails;
    # pauses are jittered and double from the initial cap up to the max.
    occ_retries_max: int = 6
    occ_backoff_initial_ms: int = 5
    occ_backoff_max_ms: int = 1000
    # After this many conflicts a retry runs alone, so a hot document cannot starve it.
    occ_exclusive_after_conflicts: int = 3
    # Group commit: the most transactions written in one durable LMDB transaction.
    group_commit_batch_max: int = 512
    # Recent commits kept in memory for OCC validation; an older snapshot is a conflict.
    write_log_entries_max: int = 100_000
    # How often an idle committer checks the log for entries another process wrote,
    # so live queries and OCC see them; a commit checks first anyway.
    log_follow_interval_ms: int = 100
    # Cluster (--store): the leader's lease lives this long unless renewed; every node
    # checks it this often, so a dead leader is replaced within ttl + check (< 5 s).
    cluster_lease_ttl_ms: int = 2500
    cluster_lease_check_ms: int = 500
    # How long a commit waits for a leader (an election, a reconnect) before failing.
    cluster_commit_wait_ms: int = 15_000
    # Entries applied from the shared store per local LMDB transaction while catching up.
    cluster_catch_up_batch_entries: int = 2000
    # Receipts of forwarded commits a leader keeps in memory, to answer one sent again
    # (its first answer lost) with the first commit's ts; older ones are in the store.
    cluster_receipts_remembered: int = 100_000
    # Query results kept while no commit touches what they read (udf/query_cache.py),
    # by the size of their values; 0 turns the cache off.
    query_cache_bytes_max: int = 256 << 20
    # Schema shape limits.
    indexes_per_table_max: int = 32
    fields_per_index_max: int = 16
    search_indexes_per_table_max: int = 4
    vector_indexes_per_table_max: int = 4
    filter_fields_max: int = 16
    vector_dimensions_min: int = 2
    vector_dimensions_max: int = 4096
    user_tables_max: int = 10_000
    # Functions: user-code time per call (time inside syscalls excluded), and for actions
    # their user code plus the time they wait on timers and fetches (Convex's V8 action
    # timeout, V8_ACTION_USER_TIMEOUT_SECS: 30 minutes).
    function_time_max_ms: int = 1000
    action_time_max_ms: int = 1_800_000
    # Actions running at once per nesting level, each on its own isolate (Convex's
    # APPLICATION_MAX_CONCURRENT_V8_ACTIONS); more wait for a free one.
    actions_concurrent_max: int = 64
    # fetch() from actions: a request's connect/read timeout, and the largest response
    # (or request) body: the user heap, which must hold it (Convex bounds it by memory only).
    fetch_timeout_ms: int = 120_000
    fetch_body_bytes_max: int = 64 << 20
    # V8 heap for user code, per isolate.
    isolate_heap_bytes_max: int = 64 << 20
    # Console lines kept per call, and the longest line.
    log_lines_max: int = 256
    log_line_bytes_max: int = 32768
    # The function log (`/api/stream_function_logs`, serve's stderr): the newest executions
    # kept in memory, as the reference keeps 1000; the byte bound keeps a burst of calls
    # with 256 long console lines each from holding gigabytes. The oldest go first.
    function_log_entries_max: int = 1000
    function_log_bytes_max: int = 32 << 20
    # A `stream_function_logs` long poll with nothing new answers empty after this long
    # (as the reference does), so proxies and clients never see a hung request.
    function_log_poll_s: int = 60
    # runQuery/runMutation/runAction nesting.
    nested_call_depth_max: int = 8
    # Isolates per nesting level (calls run in parallel up to this many).
    isolates_per_level_max: int = 2
    # Node actions ("use node"): Convex's 10 minutes; a heap bound per Node.js worker
    # (--max-old-space-size, and the worker's resident size checked against it plus
    # Node's own share); workers per nesting level (node actions run in parallel up to
    # this many); how long installing a deployment's external npm packages may take.
    node_action_time_max_ms: int = 600_000
    node_heap_bytes_max: int = 512 << 20
    node_workers_per_level_max: int = 4
    node_install_time_max_s: int = 600
    # With a retention window, history is compacted this often.
    retention_compact_interval_s: int = 60
    # LMDB map size: address space reserved, not disk used.
    lmdb_map_bytes: int = 1 << 40
    lmdb_readers_max: int = 1024
    # JSON a client sends (HTTP bodies, sync frames, tokens) nests at most this deep: the
    # deepest value (value_depth_max, 64) plus its envelope (message object, args array,
    # query list, `$integer` wrapper). Deeper text is refused before it is parsed, so it
    # cannot make the parser recurse 100,000 levels. Raise it with value_depth_max.
    json_depth_max: int = 64 + 8
    # A request body its handler left unread (or refused) is read and dropped up to this
    # size before the answer, so the keep-alive connection stays usable; past it the
    # connection is closed after the answer instead of reading on.
    request_drain_bytes_max: int = 64 << 20
    # HTTP actions: request and response bodies at most 20 MiB each (Convex's
    # HTTP_ACTION_BODY_LIMIT); a request body is streamed into the action, not held.
    http_body_bytes_max: int = 20 << 20
    # A client that sends (or reads) no body bytes for this long is gone: the action
    # holds an isolate while it waits, and waiting is not user time.
    http_body_idle_timeout_s: int = 60
    # Memory that must come back after load: every cache is bounded, and big
    # requests give their memory back to the OS instead of leaving it in the heap.
    # Decoded document ids kept (a hot id is decoded once; ~200 B each).
    id_cache_entries_max: int = 1 << 16
    # Built-in index definitions kept, by table name (two small tuples each).
    builtin_index_cache_entries_max: int = 4096
    # Parsed schemas kept by schema version (a deploy adds one).
    schema_versions_cached_max: int = 64
    # Parsed argument/return validators kept per deployment (two per function).
    validator_cache_entries_max: int = 4096
    # Rendered sync state versions kept (one per version a fan-out sends; ~100 B each).
    sync_encoding_cache_entries_max: int = 256
    # An HTTP body or WebSocket message this big triggers a full GC and a glibc
    # malloc_trim once the server is quiet: freed buffers otherwise stay for good.
    memory_release_after_request_bytes: int = 1 << 20
    # Allocations from this size get their own mapping, returned to the OS on free.
    # Fixed: glibc's default threshold rises to the biggest block freed (up to
    # 32 MiB), after which big bodies fragment the heap instead.
    malloc_mmap_threshold_bytes: int = 256 << 10
    # glibc heaps ("arenas") shared by all threads; the default (8 per core) lets each
    # worker thread keep its own fragmented heap.
    malloc_arenas_max: int = 4
    # Deployment environment variables (Convex's numbers, so a project moves either way):
    # a name of at most 256 characters, a value of at most 8 KiB (an HTTP header's size),
    # at most 512 of them and 512 KiB of names and values in all, because every function
    # call gets the whole set.
    env_var_name_chars_max: int = 256
    env_var_value_bytes_max: int = 8 << 10
    env_vars_max: int = 512
    env_vars_total_bytes_max: int = 512 << 10
    # Snapshot import uploads: a part at most 20 MiB (Convex's import route body limit;
    # the app's message_bytes_max applies first), at most 9999 parts (the CLI's part
    # count), and 8 GiB in all, so an upload cannot fill the disk. An upload not
    # finished (or an import not confirmed) within a day is deleted.
    import_part_bytes_max: int = 20 << 20
    import_parts_max: int = 9999
    import_upload_bytes_max: int = 8 << 30
    import_upload_age_max_s: int = 24 * 3600
    # A single-table JSON array import at most 16 MiB (Convex's: the transaction write
    # limit); larger data goes as JSON lines.
    import_json_array_bytes_max: int = 16 << 20
    # A code push (the CLI sends it brotli-compressed): at most 200 MB once decompressed,
    # Convex's MAX_PUSH_BYTES, so a small compressed body cannot inflate without bound.
    push_bytes_max: int = 200_000_000
    # Pushes started (start_push) and not yet finished, kept in memory for finish_push;
    # the oldest is dropped past this count or this age.
    pending_pushes_max: int = 16
    pending_push_age_s: int = 3600
    # A deploy is answered once its text and vector indexes are backfilled (as Convex's
    # push waits for its indexes), so the functions it deploys can search at once; past
    # this wait the deploy still succeeds and searches report the index as backfilling.
    deploy_search_backfill_wait_s: float = 30.0
    # Scheduling (Convex's numbers): one mutation schedules at most 1000 functions with
    # 16 MiB of arguments in all; the runner starts at most 8 due jobs at once, as
    # Convex's SCHEDULED_JOB_EXECUTION_PARALLELISM, so a burst cannot starve clients.
    functions_scheduled_max: int = 1000
    scheduled_args_bytes_max: int = 16 << 20
    scheduler_concurrency_max: int = 8
    # Finished scheduled functions are deleted after a week (Convex's retention), checked
    # this often, at most this many per transaction.
    scheduled_job_retention_s: int = 7 * 24 * 3600
    scheduled_job_cleanup_interval_s: int = 3600
    scheduled_job_cleanup_batch_max: int = 1000
    # File storage: an upload (or ctx.storage.store) at most 2 TB, Convex's bound (10,000
    # parts of 200 MiB); uploads stream to disk, so memory is not the limit. An upload URL
    # is valid an hour (Convex's STORE_FILE_AUTHORIZATION_VALIDITY). A blob no retained
    # version references and older than the grace (an upload between its write and its
    # commit) is removed by the sweep, which runs this often.
    storage_file_bytes_max: int = 10_000 * (200 << 20)
    storage_upload_token_validity_s: int = 3600
    storage_orphan_grace_s: int = 3600
    storage_sweep_interval_s: int = 600


def _from_environment() -> Limits:
    defaults = Limits()
    return Limits(**{f.name: _env_int(f.name, getattr(defaults, f.name)) for f in fields(Limits)})


LIMITS = _from_environment()


# Units a limit is shown in, largest first, binary and decimal mixed.
_BYTE_UNITS = (
    (1 << 30, "GiB"),
    (1_000_000_000, "GB"),
    (1 << 20, "MiB"),
    (1_000_000, "MB"),
    (1 << 10, "KiB"),
    (1_000, "KB"),
)


def format_bytes(n: int) -> str:
    """A byte limit as Convex's limit errors show it: in the unit that divides it
    exactly (one decimal allowed), else in bytes: ``16 MiB``, ``4.5 MiB``, ``1534 bytes``."""
    if n == 0:
        return "0 bytes"
    for unit, name in _BYTE_UNITS:
        if n < unit:
            continue
        if n % unit == 0:
            return f"{n // unit} {name}"
        if (n * 10) % unit == 0:
            return f"{n // unit}.{(n * 10 // unit) % 10} {name}"
    return f"{n} bytes"
