"""The reverse MirrorMaker 2's exactly-once mode (active-active): the flow's destination is
written transactionally, the source read committed, with the internal REST listener that
dedicated mode needs for it; the forward flow and failback's reverse flow stay as they were;
the reverse part's shape names the mode only when it is on (failback's part is unchanged)."""

from __future__ import annotations

from components.local import config, mirrormaker
from components.local.parts import ReverseMirrorMakerProvider

URL = "http://10.71.1.2:8083"


def test_the_reverse_flow_with_exactly_once_writes_east_transactionally():
    cfg = config.load("local")
    props = mirrormaker.properties(cfg, "a:1", "b:2", "prefixed", reverse=True, exactly_once=URL)
    assert "west->east.enabled = true" in props
    assert "east.exactly.once.source.support = enabled" in props
    assert "west.consumer.isolation.level = read_committed" in props
    assert "dedicated.mode.enable.internal.rest = true" in props and f"listeners = {URL}" in props


def test_without_it_neither_flow_is_transactional():
    cfg = config.load("local")
    for reverse in (False, True):
        props = mirrormaker.properties(cfg, "a:1", "b:2", "prefixed", reverse=reverse)
        assert "exactly.once" not in props and "listeners" not in props


def test_the_reverse_parts_shape_names_exactly_once_only_when_on():
    p = ReverseMirrorMakerProvider()
    base = {"config": {"kdrill:replication": {"policy": "prefixed"}}, "policy": "prefixed"}
    assert p.shape(base)["exactly_once"] is None  # dropped from state: failback's part as before
    assert p.shape({**base, "exactly_once": True})["exactly_once"] is True
