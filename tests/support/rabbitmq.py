"""RabbitMQ for the worker tests: the shared local broker, and a private one to stop.

The shared broker (``CLARITY_TEST_RABBIT_URL``, default 127.0.0.1:5672) is used with a
unique exchange/queue prefix per test, deleted afterwards. A test that must stop the
broker gets a private ``rabbitmq-server`` node of its own (own node name, ports, data and
log directories, no plugins; it registers with the machine's epmd), which it may stop and
start again with its data kept, leaving the shared node alone.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import aio_pika

SHARED_RABBIT_URL = os.environ.get("CLARITY_TEST_RABBIT_URL", "amqp://guest:guest@127.0.0.1:5672/")
RABBITMQ_SERVER = next(
    (p for p in ("/usr/lib/rabbitmq/bin/rabbitmq-server",) if os.access(p, os.X_OK)),
    shutil.which("rabbitmq-server"),
)


def unique_prefix() -> str:
    return f"clarity-test-{uuid.uuid4().hex[:10]}"


def rabbit_reachable(url: str = SHARED_RABBIT_URL) -> bool:
    host, port = _host_port(url)
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def _host_port(url: str) -> tuple[str, int]:
    netloc = url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    host, _, port = netloc.partition(":")
    return host, int(port or 5672)


async def delete_topology(url: str, prefix: str, partitions: int) -> None:
    """Remove a test's exchange and partition queues (with whatever they still hold)."""
    connection = await aio_pika.connect(url, timeout=5)
    try:
        channel = await connection.channel()
        for partition in range(partitions):
            await channel.queue_delete(f"{prefix}.events.p{partition}")
        await channel.exchange_delete(f"{prefix}.events")
    finally:
        await connection.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RabbitServer:
    """A private RabbitMQ node on free ports, under ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = _free_port()
        self.node = f"clarity-test-{uuid.uuid4().hex[:8]}@localhost"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        (self.workdir / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
        )
        (self.workdir / "enabled_plugins").write_text("[].\n")
        (self.workdir / "rabbitmq-env.conf").write_text("")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        env.update(
            HOME=str(self.workdir),  # its own Erlang cookie
            RABBITMQ_CONF_ENV_FILE=str(self.workdir / "rabbitmq-env.conf"),
            RABBITMQ_CONFIG_FILE=str(self.workdir / "rabbitmq.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.workdir / "enabled_plugins"),
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(_free_port()),
            RABBITMQ_MNESIA_BASE=str(self.workdir / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.workdir / "log"),
            RABBITMQ_PID_FILE=str(self.workdir / "rabbitmq.pid"),
            ERL_EPMD_ADDRESS="127.0.0.1",
        )
        return env

    def start(self, timeout: float = 90.0) -> float:
        """Start the node (again, with its data); returns the seconds it took to listen."""
        assert RABBITMQ_SERVER is not None
        began = time.monotonic()
        log = (self.workdir / f"server-{self.starts}.log").open("wb")
        self.starts += 1
        self.proc = subprocess.Popen(
            [RABBITMQ_SERVER],
            env=self._env(),
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        while time.monotonic() - began < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"private rabbitmq-server exited with {self.proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return time.monotonic() - began
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("private rabbitmq-server did not listen in time")

    def stop(self) -> float:
        """Stop the node (SIGTERM: a clean shutdown); returns the seconds it took."""
        began = time.monotonic()
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
            self.proc = None
        return time.monotonic() - began
