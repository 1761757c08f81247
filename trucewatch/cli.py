"""The ``trucewatch`` command line: thin wrappers that parse options and call the packages."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from trucewatch.errors import TrucewatchError
from trucewatch.settings import Settings, load_settings

app = typer.Typer(
    help="trucewatch: watch Arabic news for ceasefire, mediation and aid stories and new high-level visits.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _settings() -> Settings:
    s = load_settings()
    logging.basicConfig(level=s.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    for noisy in ("kafka", "aiokafka", "faust", "mode"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    return s


PathsArg = Annotated[list[Path], typer.Argument(help="text files (first line = title), directories, JSONL files or -")]


@app.command()
def up(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="articles to ingest once the pipeline runs")] = None,  # noqa: UP007
    poll: Annotated[bool, typer.Option(help="also run the feed poller (config/feeds.yaml)")] = False,
    exit_after: Annotated[Optional[float], typer.Option(help="stop after this many seconds (demo/tests)")] = None,  # noqa: UP007
) -> None:
    """Run everything: the broker (embedded unless TRUCEWATCH_KAFKA_BOOTSTRAP is set), the Faust
    worker, the sinks and the producers. Alerts are printed as they arrive; Ctrl-C stops all."""
    from trucewatch.supervisor import run_up

    raise typer.Exit(run_up(_settings(), paths or [], poll=poll, exit_after=exit_after))


@app.command()
def worker() -> None:
    """Run a Faust stream worker against the configured broker: enrich, novelty and the story stage, or the part
    TRUCEWATCH_WORKER_STAGES names (stream = enrich + novelty; stories = the story stage, in its own group)."""
    from processors.app import run_worker

    raise typer.Exit(run_worker(_settings()))


@app.command()
def sink() -> None:
    """Run the sinks alone: alert store, console, archive and notification outbox."""
    from sinks.runner import run_sinks

    raise typer.Exit(run_sinks(_settings()))


@app.command()
def ingest(paths: PathsArg) -> None:
    """Publish articles from files, directories or JSONL to articles.raw; bad records are reported and skipped."""
    from producers.ingest import run_ingest

    raise typer.Exit(run_ingest(_settings(), paths))


@app.command()
def topics(
    create: Annotated[bool, typer.Option("--create", help="create the missing topics")] = False,
) -> None:
    """List the topics on the configured broker (or create the missing ones)."""
    from trucewatch.broker import ensure_topics, list_topics
    from trucewatch.topics import Topics

    s = _settings()
    if s.embedded:
        typer.echo("no broker configured (TRUCEWATCH_KAFKA_BOOTSTRAP); `trucewatch up` starts an embedded one",
                   err=True)
        raise typer.Exit(2)
    assert s.kafka_bootstrap
    if create:
        made = ensure_topics(s.kafka_bootstrap, Topics.from_settings(s).all(), s.partitions)
        for t in made:
            typer.echo(f"created {t}")
    for t in list_topics(s.kafka_bootstrap):
        typer.echo(t)


@app.command()
def classify(
    paths: PathsArg,
    jsonl: Annotated[bool, typer.Option("--jsonl", help="one JSON object per article (for score.py)")] = False,
) -> None:
    """Classify articles (ceasefire / mediation / aid) and extract visits, without any broker.

    Articles are written in input order, except those without a "date" field that report visits: they come
    last, once the dated reports are read, and take the key of the same visitor and destination reported with
    a date when exactly one such trip is in the input (else the month written in their text, or "undated").

    Unreadable records are reported on stderr as "path:line: reason" and skipped. Exit status: 0 when every
    record was processed, 1 when some records were reported as errors, 2 when nothing could be read."""
    from processors.report import run_classify

    raise typer.Exit(run_classify([str(p) for p in paths], jsonl=jsonl, out=sys.stdout))


@app.command()
def alerts(
    jsonl: Annotated[bool, typer.Option("--jsonl", help="one Alert per line")] = False,
    kind: Annotated[Optional[str], typer.Option(help="new_visit, visit_update or story")] = None,  # noqa: UP007
    since: Annotated[Optional[str], typer.Option(help="only alerts first seen at/after this date")] = None,  # noqa: UP007
    limit: Annotated[int, typer.Option(help="at most this many (newest first)")] = 1000,
) -> None:
    """List alerts from the alert store."""
    from sinks.listing import run_alerts

    raise typer.Exit(run_alerts(_settings(), jsonl=jsonl, kind=kind, since=since, limit=limit, out=sys.stdout))


@app.command()
def poll(
    once: Annotated[bool, typer.Option("--once", help="poll every feed once, then exit")] = False,
    feeds: Annotated[Optional[Path], typer.Option(help="feeds YAML (default: config/feeds.yaml)")] = None,  # noqa: UP007
) -> None:
    """Poll RSS/Atom feeds and publish new items to articles.raw."""
    from producers.feeds import run_poll

    raise typer.Exit(run_poll(_settings(), feeds_file=feeds, once=once))


@app.command()
def replay(
    paths: PathsArg,
    since: Annotated[Optional[str], typer.Option(help="only articles at/after this date")] = None,  # noqa: UP007
    until: Annotated[Optional[str], typer.Option(help="only articles before this date")] = None,  # noqa: UP007
    source: Annotated[Optional[list[str]], typer.Option(help="only these sources")] = None,  # noqa: UP007
    rate: Annotated[Optional[float], typer.Option(help="articles per second")] = None,  # noqa: UP007
    speedup: Annotated[Optional[float], typer.Option(help="replay event time X times faster")] = None,  # noqa: UP007
    max_speed: Annotated[bool, typer.Option("--max", help="as fast as possible (default)")] = False,
    notify: Annotated[bool, typer.Option("--notify", help="also send Slack/email for replayed alerts")] = False,
) -> None:
    """Replay archived articles into the stream in event-time order (marked replay=true)."""
    from producers.replay import run_replay

    raise typer.Exit(run_replay(_settings(), paths, since=since, until=until, sources=source, rate=rate,
                                speedup=speedup, max_speed=max_speed, notify=notify))


@app.command()
def notify(
    test: Annotated[str, typer.Option("--test", help="send a test notification on this channel: slack or email")],
) -> None:
    """Send a test notification through a channel to check its configuration."""
    from sinks.delivery import run_notify_test

    raise typer.Exit(run_notify_test(_settings(), test))


def main() -> None:
    """Entry point: run the CLI, turning trucewatch errors into one clear line and exit status 2."""
    try:
        app()
    except TrucewatchError as e:
        typer.echo(f"trucewatch: error: {e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
