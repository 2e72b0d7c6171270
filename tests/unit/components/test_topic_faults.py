"""The MirrorMaker 2 stall kinds and partitions-add: registered, their nftables rule, their
parameters checked (the real effects are tested on the pair: test_scenarios_offsets.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from components.faults.builtin import mm2requests, topics
from components.faults.registry import KINDS


def test_kinds_are_registered_for_the_local_target_on_the_primary():
    for name in ("offset-sync-stall", "topic-refresh-stall", "partitions-add"):
        k = KINDS[name]
        assert k.region == "primary" and k.targets == frozenset({"local"}) and k.local


def test_the_rule_matches_the_request_header_api_key_after_the_tcp_header():
    rule = mm2requests.request_drop_rule("{9192, 9193}", mm2requests.PRODUCE)
    # @ih: the payload after the TCP header; bits 32..47 are the api_key after int32 size
    assert rule == 'iifname "backbone" tcp dport {9192, 9193} @ih,32,16 0 counter drop'
    assert mm2requests.DESCRIBE_TOPIC_PARTITIONS == 75


def test_partitions_add_needs_a_topic_and_a_larger_count():
    assert topics.PartitionsAddParams(topic="orders", partitions=6).partitions == 6
    with pytest.raises(ValidationError):
        topics.PartitionsAddParams(topic="orders", partitions=1)
    with pytest.raises(ValidationError):
        topics.PartitionsAddParams(partitions=6)
