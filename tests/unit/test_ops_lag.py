"""Consumer lag counts the records after the committed offsets, not the offsets: the relays write
the events topics in transactions, whose commit markers take an offset each but are no record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition

from shared.ops_api import unread_records

EVENTS = "zm.331122.intake.events"
INBOUND = "zm.331122.inbound.reports"


@dataclass
class Record:
    offset: int


class Probe:
    """A partition log of records and markers (None), read the way aiokafka reads it: a fetch
    returns the records after the position and moves the position past the markers too."""

    def __init__(self, logs: dict[TopicPartition, list[bool]]) -> None:
        self.logs = logs  # True: a record, False: a commit marker
        self.positions: dict[TopicPartition, int] = {}

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.positions = {tp: 0 for tp in partitions}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset

    async def getmany(self, *partitions: TopicPartition, timeout_ms: int, max_records: int) -> dict[Any, Any]:
        out = {}
        for tp in partitions:
            log, start = self.logs[tp], self.positions[tp]
            records = [Record(i) for i in range(start, len(log)) if log[i]]
            self.positions[tp] = len(log)
            if records:
                out[tp] = records
        return out

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]


async def test_a_partition_read_to_its_last_transaction_has_nothing_unread() -> None:
    tp = TopicPartition(EVENTS, 0)
    log = [True, True, False]  # two events and the transaction's marker, all consumed
    assert await unread_records(Probe({tp: log}), {tp: 2}, {tp: 3}) == 0


async def test_unread_records_are_counted_without_the_markers_between_them() -> None:
    tp = TopicPartition(EVENTS, 1)
    log = [True, False, True, True, False, True, False]  # consumed up to offset 1
    assert await unread_records(Probe({tp: log}), {tp: 2}, {tp: len(log)}) == 3


async def test_one_record_behind_on_a_topic_without_transactions_is_one() -> None:
    tp = TopicPartition(INBOUND, 0)
    log = [True, True]
    assert await unread_records(Probe({tp: log}), {tp: 1}, {tp: 2}) == 1


async def test_far_behind_is_counted_by_offsets() -> None:
    tp = TopicPartition(EVENTS, 2)
    assert await unread_records(Probe({tp: []}), {tp: 0}, {tp: 5000}) == 5000
