"""Scenario 2: the store unavailable 10 s (SQLite locked; PostgreSQL behind a cut proxy): nothing lost or doubled."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections import Counter

import pytest

from sinks.merge import article_ids_of
from tests.faults.conftest import PacedPublisher, Tally, TcpProxy, numbered_articles, per_article, wait_progress

N = 150
OUTAGE = 10.0


def _pg_reachable() -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_store_outage_loses_and_doubles_nothing(pipeline, receivers, tmp_path, backend) -> None:
    slack, smtp, overrides = receivers
    proxy = None
    schema = f"tw_faults_{uuid.uuid4().hex[:10]}"
    if backend == "postgresql":
        if not _pg_reachable():
            pytest.skip("no PostgreSQL on 127.0.0.1:5432")
        proxy = TcpProxy(5432)
        overrides = overrides | {"store_url": f"postgresql://postgres@127.0.0.1:{proxy.port}/test?schema={schema}"}
    p = pipeline(**overrides)
    tag = f"s{backend[0]}"
    articles = numbered_articles(N, tag=tag, distinct_visits=True)
    ids = sorted(a.id for a in articles)
    pub = PacedPublisher(p, articles, rate=15.0)

    def stored() -> set[str]:
        try:
            return {i for a in p.alerts() for i in article_ids_of(a)}
        except Exception:  # noqa: BLE001 - the store is down on purpose
            return set()

    try:
        pub.start()
        wait_progress(lambda: len(stored()) >= N // 3, lambda: len(stored()))
        assert len(stored()) >= N // 3, f"only {len(stored())} stored before the outage\n{p.logs()}"
        # --- the outage
        if proxy is not None:
            proxy.down()
            time.sleep(OUTAGE)
            proxy.up()
        else:
            lock = sqlite3.connect(str(p.settings.data_dir / "trucewatch.db"), timeout=5)
            lock.execute("BEGIN EXCLUSIVE")
            time.sleep(OUTAGE)
            lock.rollback()
            lock.close()
        t_up = time.monotonic()
        wait_progress(lambda: len(stored()) == N and all(len(per_article(r.texts(), tag)) == N for r in (slack, smtp)),
                      lambda: (len(stored()), len(slack.texts()), len(smtp.texts())), interval=0.5)
        recovery = time.monotonic() - t_up
        time.sleep(3.0)  # anything doubled would show up now
        pub.join(30)
        assert pub.error is None, pub.error
        got = stored()
        store = Tally.of(f"s2 {backend} store (alert per article)", ids, Counter(got),
                         outage_s=OUTAGE, recovery_s=round(recovery, 1)).show()
        slack_t = Tally.of(f"s2 {backend} slack notifications", ids, per_article(slack.texts(), tag)).show()
        mail_t = Tally.of(f"s2 {backend} email notifications", ids, per_article(smtp.texts(), tag)).show()
        assert not store.never, f"{store}\n{p.logs()}"
        assert not slack_t.never and not mail_t.never, f"{slack_t}\n{mail_t}\n{p.logs()}"
        assert slack_t.dup == 0 and mail_t.dup == 0, f"{slack_t}\n{mail_t}\n{p.logs()}"
        assert len(p.alerts()) == N  # one alert per visit, never a second one
    finally:
        if proxy is not None:
            proxy.down()
            try:
                from sinks.store import open_store

                st = open_store(f"postgresql://postgres@127.0.0.1:5432/test?schema={schema}")
                st.drop_schema()  # type: ignore[attr-defined]
                st.close()
            except Exception:  # noqa: BLE001
                pass
