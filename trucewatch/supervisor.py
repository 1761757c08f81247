"""``trucewatch up``: own the broker and the worker/sink/poller processes; restart what dies; stop cleanly.

Children run in their own sessions (so a terminal Ctrl-C reaches only this supervisor, which then
stops them in order) and die with it even if it is SIGKILLed (PR_SET_PDEATHSIG).

The embedded broker keeps everything in memory: when it dies, its replacement is a new, empty
cluster that would silently accept writes into topics that no longer exist. So a broker death is
handled as the loss of the cluster: stop every client, start a broker on the same port, recreate
the topics, start the clients again, and report what may have been in flight (recover it with
``trucewatch replay`` from the archive the producers write before publishing).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from trucewatch.broker import EmbeddedBroker, die_with_parent, ensure_topics
from trucewatch.errors import BrokerError
from trucewatch.inflight import Sampler, Stage, append_report, loss_report
from trucewatch.settings import Settings
from trucewatch.topics import Topics, story_group

log = logging.getLogger(__name__)

METRICS_OFFSETS = {"worker": 0, "sinks": 1, "poller": 2, "stories": 3}  # /metrics port = METRICS_PORT + offset


@dataclass
class Child:
    """One supervised process."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    stdout_to_console: bool = False
    proc: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)
    _log: IO[bytes] | None = None

    def start(self) -> None:
        """Start (or restart) the process."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        stdout = None if self.stdout_to_console else self._log
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            self.argv, env=self.env, stdout=stdout, stderr=self._log, stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent, start_new_session=True,
        )
        log.info("started %s (pid %s), log %s", self.name, self.proc.pid, self.log_path)

    def alive(self) -> bool:
        """True while running."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, wait, SIGKILL; idempotent."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0fs; killing it", self.name, timeout)
                proc.kill()
                proc.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None


def worker_stages(settings: Settings, role: str) -> str:
    """What a ``trucewatch worker`` child of ``role`` runs: with ``story_process`` the workers run enrich + novelty
    and the ``stories`` child the story stage (a group of its own): three busy processes the OS spreads over the
    cores, instead of one worker carrying enrich and the whole story stage."""
    if role == "stories":
        return "stories"
    return "stream" if settings.story_process else "all"


def child_env(settings: Settings, bootstrap: str, role: str) -> dict[str, str]:
    """The environment of a child process: this process's settings plus the broker address (and, for a worker or
    the stories process, the stages it runs)."""
    env = dict(os.environ)
    env.update(settings.to_env())
    env["TRUCEWATCH_KAFKA_BOOTSTRAP"] = bootstrap
    if role in ("worker", "stories"):
        env["TRUCEWATCH_WORKER_STAGES"] = worker_stages(settings, role)
    if settings.metrics_port:
        env["TRUCEWATCH_METRICS_PORT"] = str(settings.metrics_port + METRICS_OFFSETS.get(role, len(METRICS_OFFSETS)))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


class Stack:
    """The worker, sinks and (optionally) poller processes of one pipeline."""

    def __init__(self, settings: Settings, bootstrap: str, *, poll: bool = False,
                 log_dir: Path | None = None) -> None:
        self.settings = settings
        self.bootstrap = bootstrap
        self.log_dir = log_dir or settings.data_dir / "logs"
        cli = [sys.executable, "-m", "trucewatch.cli"]
        self.children: list[Child] = []
        for i in range(1, settings.workers + 1):  # workers in one group: the others on own data dirs, ports off
            name = "worker" if i == 1 else f"worker-{i}"
            env = child_env(settings, bootstrap, "worker")
            if i > 1:
                env["TRUCEWATCH_DATA_DIR"] = str(settings.data_dir / name)
                env["TRUCEWATCH_WORKER_WEB_PORT"] = "0"
                if settings.metrics_port:
                    env["TRUCEWATCH_METRICS_PORT"] = str(settings.metrics_port + len(METRICS_OFFSETS) + i - 2)
            self.children.append(Child(name, cli + ["worker"], env, self.log_dir / f"{name}.log"))
        if settings.story_process:  # the story stage, in a process (and consumer group) of its own
            env = child_env(settings, bootstrap, "stories")
            env["TRUCEWATCH_DATA_DIR"] = str(settings.data_dir / "stories")
            env["TRUCEWATCH_WORKER_WEB_PORT"] = "0"
            self.children.append(Child("stories", cli + ["worker"], env, self.log_dir / "stories.log"))
        self.children.append(Child("sinks", cli + ["sink"], child_env(settings, bootstrap, "sinks"),
                                   self.log_dir / "sinks.log", stdout_to_console=True))
        if poll:
            self.children.append(Child("poller", cli + ["poll"], child_env(settings, bootstrap, "poller"),
                                       self.log_dir / "poller.log"))

    def faust_dirs(self) -> set[Path]:
        """The Faust data directories of the children (their local table state)."""
        return {Path(c.env.get("TRUCEWATCH_DATA_DIR", str(self.settings.data_dir))) / "faust" for c in self.children}

    def start(self) -> None:
        """Start every child."""
        for c in self.children:
            c.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop children in reverse order (producers first, sinks last), each within ``timeout`` seconds."""
        for c in reversed(self.children):
            c.stop(timeout)

    def check(self, max_restarts_per_min: int = 5) -> None:
        """Restart children that died; give up on one that crash-loops."""
        now = time.monotonic()
        for c in self.children:
            if c.proc is None or c.alive():
                continue
            code = c.proc.returncode
            c.restarts = [t for t in c.restarts if now - t < 60]
            if len(c.restarts) >= max_restarts_per_min:
                log.error("%s exited (%s) %d times within a minute; not restarting (see %s)", c.name, code,
                          len(c.restarts), c.log_path)
                c.stop()
                continue
            log.warning("%s exited with %s; restarting (log %s)", c.name, code, c.log_path)
            c.restarts.append(now)
            c.stop()
            c.start()


LOSSES_FILE = "broker-losses.jsonl"  # one JSON line per lost embedded broker, in data_dir


def pipeline_stages(settings: Settings) -> list[Stage]:
    """The consumer groups whose uncommitted input a lost cluster takes with it."""
    topics = Topics.from_settings(settings)
    stages = [Stage("worker", topics.raw, settings.app_id), Stage("sinks", topics.alerts, f"{settings.app_id}-sinks")]
    if settings.story_process:
        stages.insert(1, Stage("stories", topics.stories, story_group(settings)))
    return stages


class BrokerKeeper:
    """Owns the embedded broker across its deaths: each death is the loss of the cluster.

    On a death: report what was in flight (last sample), stop every client *before* a new broker
    exists (so no client ever writes into the new, empty cluster believing it is the old one), drop
    the workers' local table state (it describes the lost cluster's changelogs), start a broker on
    the same port with backoff (deaths in quick succession wait longer: no crash loop), recreate the
    topics and start the clients again.
    """

    def __init__(self, broker: EmbeddedBroker, settings: Settings, stack: Stack, stop: threading.Event) -> None:
        self.broker, self.settings, self.stack, self.stop = broker, settings, stack, stop
        self.losses: list[float] = []
        self.sampler = Sampler(broker.bootstrap, pipeline_stages(settings), alive=broker.alive)
        self.sampler.start()

    def check(self) -> bool:
        """Handle a dead broker; True if one was handled."""
        if self.broker.alive():
            return False
        now = time.monotonic()
        self.losses.append(now)
        n = len(self.losses)
        report = loss_report(self.sampler.last)
        report.update(loss=n, bootstrap=self.broker.bootstrap, archive=str(self.settings.data_dir / "archive"))
        flight = report["in_flight"]
        _say(f"trucewatch: the embedded broker died (loss #{n}); it kept everything in memory, so the restarted "
             f"broker is a new, empty cluster. In flight at the last sample ({report.get('sample_age_s', '?')}s "
             f"before): {flight.get('worker', '?')} article(s) not yet processed, {flight.get('sinks', '?')} "
             f"alert(s) not yet stored. Recover them with `trucewatch replay {report['archive']}`.")
        log.error("broker loss #%s: %s", n, json.dumps(report, ensure_ascii=False))
        self.stack.stop(timeout=3.0)  # nothing to flush: their broker is gone
        self.broker.stop()
        for d in self.stack.faust_dirs():
            shutil.rmtree(d, ignore_errors=True)
        self.sampler.last = None
        recent = [t for t in self.losses if now - t < 60]
        delay = 0.0 if len(recent) <= 2 else min(60.0, 5.0 * 2 ** (len(recent) - 3))
        while not self.stop.is_set():
            if delay:
                _say(f"trucewatch: {len(recent)} broker losses within a minute; waiting {delay:.0f}s before "
                     "starting a new one")
                if self.stop.wait(delay):
                    return True
            try:
                self.broker.start()
                ensure_topics(self.broker.bootstrap, Topics.from_settings(self.settings).all(),
                              self.settings.partitions)
                break
            except BrokerError as e:
                log.error("could not start a new embedded broker: %s", e)
                self.broker.stop()
                delay = min(60.0, max(2.0, delay * 2))
        else:
            return True
        report["recovered_s"] = round(time.monotonic() - now, 1)
        append_report(self.settings.data_dir / LOSSES_FILE, report)
        self.stack.start()
        _say(f"trucewatch: new cluster up on {self.broker.bootstrap} after {report['recovered_s']}s; "
             "clients restarted")
        return True

    def close(self) -> None:
        self.sampler.stop()


def run_up(settings: Settings, paths: Sequence[Path], *, poll: bool = False, exit_after: float | None = None) -> int:
    """Run the whole pipeline until Ctrl-C/SIGTERM (or ``exit_after`` seconds). Returns an exit status."""
    from producers.ingest import ingest
    from producers.publish import Publisher

    logging.getLogger("sinks.archive").setLevel(logging.WARNING)  # keep the console for alerts
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    topics = Topics.from_settings(settings)
    broker: EmbeddedBroker | None = None
    if settings.embedded:
        broker = EmbeddedBroker(port=settings.broker_port, log_path=settings.data_dir / "logs" / "broker.log").start()
        bootstrap = broker.bootstrap
        shutil.rmtree(settings.data_dir / "faust", ignore_errors=True)  # a new cluster: no old table state
    else:
        assert settings.kafka_bootstrap
        bootstrap = settings.kafka_bootstrap
    ensure_topics(bootstrap, topics.all(), settings.partitions)
    stack = Stack(settings, bootstrap, poll=poll)
    _say(f"trucewatch: broker {bootstrap} ({'embedded' if broker else 'external'}), "
         f"store {settings.effective_store_url}, logs in {stack.log_dir}/ — Ctrl-C stops")
    stack.start()
    keeper = BrokerKeeper(broker, settings, stack, stop) if broker is not None else None
    try:
        if paths:
            with Publisher.from_settings(settings, bootstrap, archive=True) as pub:
                n, bad = ingest(paths, pub)
            _say(f"trucewatch: ingested {n} article(s)" + (f", skipped {bad}" if bad else "")
                 + "; alerts appear below as the worker raises them")
        deadline = time.monotonic() + exit_after if exit_after else None
        while not stop.wait(0.5):
            if deadline and time.monotonic() > deadline:
                break
            if keeper is not None and keeper.check():
                continue
            stack.check()
    finally:
        _say("trucewatch: stopping…")
        if keeper is not None:
            keeper.close()
        stack.stop()
        if broker is not None:
            broker.stop()
        _say("trucewatch: stopped")
    return 0


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
