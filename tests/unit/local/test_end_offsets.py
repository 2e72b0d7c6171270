"""The one end-offsets reader: absent topics left out, transient answers retried within
its patience, anything else raised at once. A scripted client stands in for the
consumer (no broker needed); the real one is exercised by the integration tests."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest
from confluent_kafka import KafkaError, KafkaException

from components.local.kafka import read_end_offsets


@dataclass
class TopicMeta:
    partitions: dict[int, object]
    error: KafkaError | None = None


@dataclass
class Metadata:
    topics: dict[str, TopicMeta]


@dataclass
class Scripted:
    """A consumer whose answers are scripted: each call takes the next answer of its
    list (the last one repeats); a KafkaError answer is raised as a KafkaException."""

    listings: list[dict[str, int | KafkaError] | KafkaError]
    watermarks: dict[tuple[str, int], list[int | KafkaError]] = field(default_factory=dict)
    calls: list[tuple] = field(default_factory=list)

    @staticmethod
    def _next(script: list):
        answer = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(answer, KafkaError):
            raise KafkaException(answer)
        return answer

    def list_topics(self, timeout: float) -> Metadata:
        self.calls.append(("list_topics",))
        listing = self._next(self.listings)
        return Metadata(
            {
                name: TopicMeta({}, parts)
                if isinstance(parts, KafkaError)
                else TopicMeta(dict.fromkeys(range(parts)))
                for name, parts in listing.items()
            }
        )

    def get_watermark_offsets(self, tp, timeout: float, cached: bool) -> tuple[int, int]:
        assert cached is False, "end offsets must come from the brokers"
        self.calls.append(("watermark", tp.topic, tp.partition))
        return 0, self._next(self.watermarks[(tp.topic, tp.partition)])


def err(code: int) -> KafkaError:
    return KafkaError(code)


def test_reads_every_partition_and_leaves_absent_topics_out():
    c = Scripted(
        [{"orders": 2, "other": 1}],
        {("orders", 0): [5], ("orders", 1): [7], ("other", 0): [1]},
    )
    assert read_end_offsets(c, ["orders", "missing", "orders"]) == {
        ("orders", 0): 5,
        ("orders", 1): 7,
    }
    assert read_end_offsets(c, "other") == {("other", 0): 1}  # one topic by name
    assert read_end_offsets(c, []) == {}


def test_a_topic_the_metadata_calls_unknown_is_absent():
    c = Scripted([{"gone": err(KafkaError.UNKNOWN_TOPIC_OR_PART)}])
    assert read_end_offsets(c, ["gone"]) == {}


def test_transient_answers_are_retried_until_they_pass():
    c = Scripted(
        [err(KafkaError._TRANSPORT), {"t": 1}],
        {("t", 0): [err(KafkaError.NOT_LEADER_FOR_PARTITION), err(KafkaError._TIMED_OUT), 42]},
    )
    assert read_end_offsets(c, ["t"], patience=10) == {("t", 0): 42}
    assert c.calls.count(("list_topics",)) == 2
    assert c.calls.count(("watermark", "t", 0)) == 3


def test_a_topic_without_a_leader_yet_is_listed_again():
    c = Scripted([{"t": err(KafkaError.LEADER_NOT_AVAILABLE)}, {"t": 1}], {("t", 0): [3]})
    assert read_end_offsets(c, ["t"], patience=10) == {("t", 0): 3}


def test_a_transient_error_outlasting_the_patience_is_raised():
    c = Scripted([{"t": 1}], {("t", 0): [err(KafkaError.LEADER_NOT_AVAILABLE)]})
    t0 = time.monotonic()
    with pytest.raises(KafkaException) as e:
        read_end_offsets(c, ["t"], patience=0.5)
    assert e.value.args[0].code() == KafkaError.LEADER_NOT_AVAILABLE
    assert 0.5 <= time.monotonic() - t0 < 3
    assert c.calls.count(("watermark", "t", 0)) >= 2


def test_any_other_error_is_raised_at_once():
    c = Scripted([{"t": 1}], {("t", 0): [err(KafkaError.TOPIC_AUTHORIZATION_FAILED), 9]})
    with pytest.raises(KafkaException) as e:
        read_end_offsets(c, ["t"], patience=10)
    assert e.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert c.calls.count(("watermark", "t", 0)) == 1
