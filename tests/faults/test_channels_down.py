"""Scenario 3: the Slack endpoint and the SMTP server down for 30 s, then back: every alert notified once on each."""

from __future__ import annotations

import time

from tests.faults.conftest import Tally, numbered_articles, per_article, wait_progress

N = 45
DOWN = 30.0


def test_channels_down_then_back_deliver_exactly_once(pipeline, receivers) -> None:
    slack, smtp, overrides = receivers
    p = pipeline(**overrides)
    tag = "ch"
    articles = numbered_articles(N, tag=tag, distinct_visits=True)
    ids = sorted(a.id for a in articles)
    thirds = [articles[: N // 3], articles[N // 3: 2 * N // 3], articles[2 * N // 3:]]

    def delivered(upto: int) -> bool:
        return all(len(per_article(r.texts(), tag)) >= upto for r in (slack, smtp))

    def counts() -> tuple[int, int]:
        return len(slack.texts()), len(smtp.texts())

    p.send_raw([a.to_bytes() for a in thirds[0]])
    assert wait_progress(lambda: delivered(len(thirds[0])), counts), p.logs()
    # both channels go away; alerts keep coming and wait in the outbox
    slack.down()
    smtp.down()
    t_down = time.monotonic()
    p.send_raw([a.to_bytes() for a in thirds[1]])
    time.sleep(DOWN / 2)
    p.send_raw([a.to_bytes() for a in thirds[2]])
    time.sleep(max(0.0, DOWN - (time.monotonic() - t_down)))
    pending_while_down = len(per_article(slack.texts(), tag)), len(per_article(smtp.texts(), tag))
    slack.up()
    smtp.up()
    t_up = time.monotonic()
    complete = wait_progress(lambda: delivered(N), counts)
    recovery = time.monotonic() - t_up
    time.sleep(5.0)  # a duplicate would arrive now
    s = Tally.of("s3 slack notifications", ids, per_article(slack.texts(), tag),
                 delivered_while_down=pending_while_down[0], recovery_s=round(recovery, 1)).show()
    m = Tally.of("s3 email notifications", ids, per_article(smtp.texts(), tag),
                 delivered_while_down=pending_while_down[1], recovery_s=round(recovery, 1)).show()
    assert complete, p.logs()
    assert not s.never and not m.never
    assert s.dup == 0 and m.dup == 0, p.logs()
    assert pending_while_down == (len(thirds[0]), len(thirds[0]))  # nothing got through while down
