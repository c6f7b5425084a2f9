"""Three `headwater serve --store postgresql://...` nodes serving one deployment.

Real processes on a real PostgreSQL (a fresh database per test): the official
PyPI client writes through one node while subscribed on another; a bank of
accounts takes concurrent transfers through every node (the books must
balance: serializable across nodes); the leader is SIGKILLed in the middle of
the writes (every acknowledged transfer is in the ledger exactly once, and a
follower leads within 5 s); a node started under load catches up; the leader's
connection to the database is cut by a proxy (another node leads, the cut node
refuses writes clearly, then catches up when the network is back); the official
npm client behind a load balancer (a loopback proxy that fails over to the next
node) keeps its subscription when the node it was connected to is SIGKILLed.
"""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gateway"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli_process import ENV, Serve, headwater  # noqa: E402
from tcp_proxy import TcpProxy  # noqa: E402
from test_end_to_end import CLIENT_ENV, JS_DIR, NODE  # noqa: E402

BANK_APP = Path(__file__).resolve().parent / "bank_app" / "convex"
SUBSCRIBER = Path(__file__).resolve().parent / "js" / "cluster_subscriber.mjs"
ACCOUNTS = [f"acct{i}" for i in range(8)]
START_BALANCE = 1000

pytestmark = pytest.mark.slow


def node(tmp_path: Path, store: str, name: str, *extra: str, **env: str) -> Serve:
    return Serve(
        tmp_path / name,
        "--store",
        store,
        "--site-port",
        "0",
        "--dashboard-port",
        "0",
        "--log-format",
        "none",
        *extra,
        env=env,
    )


def call(url: str, kind: str, path: str, args: dict, timeout_s: float = 30) -> object:
    response = httpx.post(
        f"{url}/api/{kind}", json={"path": path, "args": args, "format": "json"}, timeout=timeout_s
    )
    body = response.json()
    if body.get("status") != "success":
        raise RuntimeError(f"{path} via {url}: {body}")
    return body["value"]


def transfer_args(key: str, rng: random.Random) -> dict:
    source, target = rng.sample(ACCOUNTS, 2)
    return {
        "key": key,
        "from": source,
        "to": target,
        "amount": {"$integer": _int64(rng.randint(1, 50))},
    }


def _int64(n: int) -> str:
    import base64
    import struct

    return base64.b64encode(struct.pack("<q", n)).decode()


def balances(url: str) -> dict[str, int]:
    return {k: int(v) for k, v in call(url, "query", "bank:balances", {}).items()}


def check_books(url: str, acked: set[str]) -> None:
    """Balances equal the opening balances plus the ledger, and each acknowledged
    transfer is in the ledger exactly once."""
    ledger = call(url, "query", "bank:ledger", {})
    keys = [row[0] for row in ledger]
    assert len(keys) == len(set(keys)), "a transfer was applied twice"
    assert acked <= set(keys), f"acknowledged transfers lost: {sorted(acked - set(keys))[:5]}"
    expected = {name: START_BALANCE for name in ACCOUNTS}
    for _, source, target, amount in ledger:
        expected[source] -= int(amount)
        expected[target] += int(amount)
    assert balances(url) == expected
    assert all(v >= 0 for v in expected.values())


def wait_for(predicate, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


@pytest.fixture
def cluster(tmp_path, fresh_postgres_url):
    first = node(tmp_path, fresh_postgres_url, "a", "--functions", str(BANK_APP))
    nodes = [
        first,
        node(tmp_path, fresh_postgres_url, "b"),
        node(tmp_path, fresh_postgres_url, "c"),
    ]
    call(
        first.url,
        "mutation",
        "bank:open",
        {"names": ACCOUNTS, "balance": {"$integer": _int64(START_BALANCE)}},
    )
    for n in nodes:  # every node installed the deployment from the log
        wait_for(lambda n=n: _answers(n.url))
    yield nodes, fresh_postgres_url
    for n in nodes:
        n.stop()


def _answers(url: str) -> bool:
    try:
        return len(balances(url)) == len(ACCOUNTS)
    except Exception:
        return False


PYPI_CLIENT = """
import json, sys
from convex import ConvexClient, ConvexInt64
write_url, watch_url = sys.argv[1], sys.argv[2]
updates = iter(ConvexClient(watch_url).subscribe("bank:ledger", {}))
first = next(updates)
args = {"key": "live", "from": "acct0", "to": "acct1", "amount": ConvexInt64(5)}
ConvexClient(write_url).mutation("bank:transfer", args)
second = next(updates)
print(json.dumps({"first": len(first), "second": [row[0] for row in second]}))
"""


def test_a_write_through_one_node_is_live_on_another(cluster):
    nodes, _ = cluster
    done = subprocess.run(
        [sys.executable, "-c", PYPI_CLIENT, nodes[1].url, nodes[2].url],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out == {"first": 0, "second": ["live"]}
    status = headwater("status", "--store", cluster[1], "--json")
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout)
    assert len(shown["nodes"]) == 3 and shown["leader"] is not None
    assert sum(n["role"] == "leader" for n in shown["nodes"]) == 1

    def one_code() -> set[str]:
        status = headwater("status", "--store", cluster[1], "--json")
        return {n["code_hash"] for n in json.loads(status.stdout)["nodes"]}

    wait_for(lambda: len(one_code()) == 1)  # every node runs the one deployed code
    assert "" not in one_code()


def test_transfers_through_every_node_kill_the_leader_add_a_node(cluster, tmp_path):
    nodes, store = cluster
    leader_url = json.loads(headwater("status", "--store", store, "--json").stdout)["leader"][
        "address"
    ]
    leader = next(n for n in nodes if n.url == leader_url)
    followers = [n for n in nodes if n is not leader]
    acked: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[str] = []

    def writer(target: Serve, seed: int) -> None:
        rng = random.Random(seed)
        for i in range(400):
            if stop.is_set():
                return
            key = f"w{seed}-{i}"
            try:
                if (
                    call(target.url, "mutation", "bank:transfer", transfer_args(key, rng))
                    is not None
                ):
                    with lock:
                        acked.add(key)
            except Exception as exc:  # noqa: BLE001 - unacknowledged: may or may not land
                errors.append(str(exc)[:200])
                if target.process.poll() is not None:
                    return

    threads = [threading.Thread(target=writer, args=(n, s)) for s, n in enumerate(nodes)]
    threads += [threading.Thread(target=writer, args=(n, 10 + s)) for s, n in enumerate(followers)]
    for t in threads:
        t.start()
    wait_for(lambda: len(acked) >= 60, 60)
    os.kill(leader.process.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    leader.process.wait()
    before = len(acked)
    wait_for(lambda: len(acked) > before + 5, 30)
    failover_s = time.monotonic() - killed_at
    late = node(tmp_path, store, "d")  # joins under load and catches up
    nodes.append(late)
    time.sleep(2)
    stop.set()
    for t in threads:
        t.join(60)
    assert failover_s < 5 + 2, failover_s  # a new leader, and writes through it, within ~5 s
    survivor = followers[0]
    ts_status = json.loads(headwater("status", "--store", store, "--json").stdout)
    assert ts_status["leader"]["address"] != leader_url
    check_books(survivor.url, acked)
    wait_for(lambda: balances(late.url) == balances(survivor.url), 30)
    check_books(late.url, acked)
    print(f"failover {failover_s:.2f} s, {len(acked)} transfers acknowledged, {len(errors)} errors")


def leader_address(store: str) -> str | None:
    shown = json.loads(headwater("status", "--store", store, "--json").stdout)
    return None if shown["leader"] is None else shown["leader"]["address"]


def test_a_leader_cut_from_the_database_is_replaced_and_catches_up(tmp_path, fresh_postgres_url):
    proxy = TcpProxy(5432)
    through_proxy = fresh_postgres_url.replace(":5432/", f":{proxy.port}/")
    # The cut node gives up on a commit after 4 s without a leader (15 s by default).
    cut = node(
        tmp_path,
        through_proxy,
        "cut",
        "--functions",
        str(BANK_APP),
        HEADWATER_CLUSTER_COMMIT_WAIT_MS="4000",
    )
    direct = node(tmp_path, fresh_postgres_url, "direct")
    try:
        balance = {"$integer": _int64(START_BALANCE)}
        call(cut.url, "mutation", "bank:open", {"names": ACCOUNTS, "balance": balance})
        wait_for(lambda: _answers(direct.url))
        assert leader_address(fresh_postgres_url) == cut.url
        rng = random.Random(7)
        acked = (
            {"before"}
            if call(direct.url, "mutation", "bank:transfer", transfer_args("before", rng))
            else set()
        )
        proxy.cut()
        started = time.monotonic()
        wait_for(lambda: leader_address(fresh_postgres_url) == direct.url, 15)
        call(direct.url, "mutation", "bank:transfer", transfer_args("during", rng))
        acked.add("during")
        assert time.monotonic() - started < 5 + 2
        with pytest.raises(RuntimeError) as refused:  # the cut node cannot commit
            call(cut.url, "mutation", "bank:transfer", transfer_args("refused", rng), 20)
        assert "'code': 'StoreUnavailable'" in str(refused.value)
        assert "the commit was not applied" in str(refused.value)
        proxy.restore()
        wait_for(lambda: balances(cut.url) == balances(direct.url), 30)
        call(cut.url, "mutation", "bank:transfer", transfer_args("after", rng))
        acked.add("after")
        check_books(direct.url, acked)
        wait_for(lambda: balances(cut.url) == balances(direct.url), 30)
        ledger = [row[0] for row in call(cut.url, "query", "bank:ledger", {})]
        assert "refused" not in ledger
    finally:
        cut.stop()
        direct.stop()
        proxy.close()


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_a_client_behind_a_load_balancer_keeps_its_subscription_when_its_node_dies(cluster):
    nodes, store = cluster
    first, second, writer = nodes
    balancer = TcpProxy(_port(first.url), _port(second.url))
    subscriber = subprocess.Popen(
        [NODE, str(SUBSCRIBER), f"http://127.0.0.1:{balancer.port}", str(JS_DIR)],
        stdout=subprocess.PIPE,
        text=True,
        env=CLIENT_ENV,
    )
    updates: queue.Queue[list[str]] = queue.Queue()
    threading.Thread(
        target=lambda: [updates.put(json.loads(line)) for line in subscriber.stdout],  # type: ignore[union-attr]
        daemon=True,
    ).start()

    def seen(key: str, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if key in updates.get(timeout=max(deadline - time.monotonic(), 0.01)):
                    return True
            except queue.Empty:
                break
        return False

    try:
        rng = random.Random(7)
        call(writer.url, "mutation", "bank:transfer", transfer_args("before", rng))
        assert seen("before", 30)
        os.kill(first.process.pid, signal.SIGKILL)  # the node the client is connected to
        first.process.wait()
        call(writer.url, "mutation", "bank:transfer", transfer_args("after", rng))
        assert seen("after", 30)  # reconnected through the balancer to the next node
        check_books(second.url, {"before", "after"})
    finally:
        subscriber.kill()
        subscriber.wait()
        subscriber.stdout.close()  # type: ignore[union-attr]
        balancer.close()
