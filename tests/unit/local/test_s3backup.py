"""kdrill-s3backup's object format: keys list in log order, records round-trip whole."""

from __future__ import annotations

from components.local.s3backup import decode_record, encode_record, object_key


def test_object_keys_sort_in_log_order():
    keys = [object_key("backup/r", "orders", p, first, first + 9)
            for p in (10, 2) for first in (100, 9, 1000)]  # fmt: skip
    got = [(k.split("/")[3], k.split("/")[4]) for k in sorted(keys)]
    assert got == sorted(got, key=lambda x: (int(x[0]), int(x[1].split("-")[0])))


def test_a_record_round_trips_with_key_headers_and_timestamp():
    line = encode_record(7, 1_700_000_000_123, b"k\x00", b"v|1", [("h", b"\xff"), ("n", None)])
    assert "\n" not in line
    assert decode_record(line) == {"offset": 7, "timestamp": 1_700_000_000_123, "key": b"k\x00",
                                   "value": b"v|1", "headers": [("h", b"\xff"), ("n", None)]}  # fmt: skip
    assert decode_record(encode_record(0, 1, None, None, None))["key"] is None
