"""The agents' pure helpers: packing story items into stories-topic messages and reading them back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from processors.agents import story_items_of, story_messages
from processors.stories import StoryItem
from trucewatch.errors import DecodeError

T0 = datetime(2025, 8, 12, tzinfo=UTC)


def items(n: int) -> list[StoryItem]:
    return [StoryItem(article_id=f"a{i}", t=T0 + timedelta(hours=i), source="s", title=f"عنوان {i}",
                      labels=["ceasefire"] if i % 2 else [], words=[i, i + 1, 2**32 - 1], visit_keys=[f"k{i}"])
            for i in range(n)]


@pytest.mark.parametrize(("n", "size", "messages"), [(0, 100, 0), (1, 100, 1), (100, 100, 1), (101, 100, 2),
                                                     (250, 100, 3), (7, 2, 4)])
def test_story_items_round_trip_through_packed_messages(n: int, size: int, messages: int) -> None:
    its = items(n)
    out = story_messages([it.model_dump_json().encode("utf-8") for it in its], size)
    assert len(out) == messages
    assert [it for m in out for it in story_items_of(m)] == its


def test_a_single_story_item_message_is_still_read() -> None:
    it = items(1)[0]
    assert story_items_of(it.model_dump_json().encode("utf-8")) == [it]


@pytest.mark.parametrize("raw", [b'{"items":[{"article_id": "x"}]}', b'{"items":[', b"not json", b""])
def test_a_bad_stories_message_raises_decode_error(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        story_items_of(raw)
