"""The DogStatsD adapter: counters, gauges and timings over UDP (``--metrics-statsd HOST:PORT``).

Lines are DogStatsD's ``PREFIX.NAME:VALUE|TYPE|@RATE|#TAG,TAG``: counter increments (``c``) and
flush timings (``ms``) as they happen, sampled at ``--metrics-sample-rate`` (the agent scales
sampled counts back up by ``1/RATE``); gauges (``g``) every ``--metrics-interval``. Lines are
packed into datagrams of at most :data:`MAX_DATAGRAM` bytes, sent when full, every interval
and at the end of the run. UDP is fire-and-forget: an agent that is down costs nothing and
stops nothing. A few lines of standard library, so no client library to install.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .errors import ConfigError

log = logging.getLogger("parquet_ingestor")

#: What fits in one Ethernet frame with IP and UDP headers (the Datadog clients' default).
MAX_DATAGRAM = 1432


def split_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8125`` for IPv6) -> (host, port); ValueError says what is wrong."""
    host, sep, port = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {address!r}")
    return host, int(port)


class DogStatsd:
    """Sends the run's metrics to a DogStatsD agent (see the module docstring)."""

    def __init__(self, address: str, prefix: str = "ingest", tags: Sequence[str] = (),
                 sample_rate: float = 1.0, interval: float = 10.0) -> None:
        host, port = split_address(address)
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        except OSError as exc:
            raise ConfigError(f"--metrics-statsd {address}: cannot resolve {host!r}: "
                              f"{exc.strerror or exc}") from None
        family, _, _, _, address_info = infos[0]
        self._address: Any = address_info
        self._socket = socket.socket(family, socket.SOCK_DGRAM)
        self._socket.setblocking(False)
        self._prefix = f"{prefix}." if prefix else ""
        self._tags = f"|#{','.join(tags)}" if tags else ""
        self._rate = sample_rate
        self._rate_suffix = f"|@{sample_rate:g}" if sample_rate < 1 else ""
        self._interval = interval
        self._random = random.Random()
        self._buffer: list[bytes] = []
        self._size = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._gauges: Callable[[], Mapping[str, float]] = dict
        self._thread: threading.Thread | None = None
        self.dropped = 0  # datagrams the socket refused (full buffer, no route)

    # -------------------------------------------------------------- MetricsAdapter

    def start(self, gauges: Callable[[], Mapping[str, float]]) -> None:
        self._gauges = gauges
        self._thread = threading.Thread(target=self._tick, name="metrics-statsd", daemon=True)
        self._thread.start()

    def count(self, name: str, amount: float) -> None:
        if self._rate < 1 and self._random.random() >= self._rate:
            return
        self._add(f"{self._prefix}{name}:{_num(amount)}|c{self._rate_suffix}{self._tags}")

    def timing(self, name: str, seconds: float) -> None:
        if self._rate < 1 and self._random.random() >= self._rate:
            return
        self._add(f"{self._prefix}{name}:{seconds * 1000:.3f}|ms{self._rate_suffix}{self._tags}")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._send_gauges()
        self._flush()
        self._socket.close()

    # -------------------------------------------------------------- sending

    def _tick(self) -> None:
        while not self._stop.wait(self._interval):
            self._send_gauges()
            self._flush()

    def _send_gauges(self) -> None:
        try:
            gauges = self._gauges()
        except Exception:  # noqa: BLE001 - a gauge that cannot be read is skipped this time
            log.debug("reading the gauges failed", exc_info=True)
            return
        for name, value in gauges.items():
            self._add(f"{self._prefix}{name}:{_num(value)}|g{self._tags}")

    def _add(self, line: str) -> None:
        data = line.encode()
        with self._lock:
            if self._size + len(data) + 1 > MAX_DATAGRAM and self._buffer:
                self._send_locked()
            self._buffer.append(data)
            self._size += len(data) + 1

    def _flush(self) -> None:
        with self._lock:
            if self._buffer:
                self._send_locked()

    def _send_locked(self) -> None:
        packet = b"\n".join(self._buffer)
        self._buffer, self._size = [], 0
        try:
            self._socket.sendto(packet, self._address)
        except OSError:  # a full socket buffer or no route: metrics are best effort
            self.dropped += 1


def _num(value: Any) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
