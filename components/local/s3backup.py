"""kdrill-s3backup: kdrill's own small Kafka-to-S3 backup tool (confluent-kafka + boto3).

It stands in for a Kafka Connect S3 sink and source connector because none that this
machine can fetch is usable (README, "Backup and restore": every Maven coordinate tried
and its answer). It does what such a pair of connectors does, no more:

- `sink` (a daemon, `python s3backup.py sink CONFIG`): a consumer group reads the listed
  topics from their beginning and, every `flush_interval_s` or `flush_records` records,
  writes each partition's new records as one object, then commits the group's offsets
  (at-least-once: a crash between the two re-writes the same records under the same key).
  Object key: `<prefix>/<topic>/<partition:05d>/<first offset:020d>-<last offset:020d>.jsonl`
  -- zero-padded, so a listing is in log order. One JSON line per record: offset `o`,
  timestamp ms `t`, key `k` and value `v` (base64), headers `h`.
- `restore` (a function the drill calls): reads a topic's objects in key order and produces
  every record into a topic of the standby, to the same partition number, with its original
  key, value, headers and timestamp (so consumers can resume by timestamp: offsets are new).

The daemon imports nothing of kdrill (it runs from this file's path with the virtualenv's
interpreter); its config file, written 0600 by components/local/backup.py, carries the Kafka
client settings (SASL password included) and the S3 keys, never argv. Its status file (no
secrets) says when it was assigned and what it flushed.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

STATUS = "backup-status.json"


def object_key(prefix: str, topic: str, partition: int, first: int, last: int) -> str:
    return f"{prefix}/{topic}/{partition:05d}/{first:020d}-{last:020d}.jsonl"


def encode_record(offset: int, ts_ms: int, key: bytes | None, value: bytes | None,
                  headers: list | None) -> str:  # fmt: skip
    b64 = lambda b: None if b is None else base64.b64encode(b).decode()  # noqa: E731
    return json.dumps({"o": offset, "t": ts_ms, "k": b64(key), "v": b64(value),
                       "h": [[k, b64(v)] for k, v in (headers or [])]}, separators=(",", ":"))  # fmt: skip


def decode_record(line: str) -> dict:
    d = json.loads(line)
    unb64 = lambda s: None if s is None else base64.b64decode(s)  # noqa: E731
    return {"offset": d["o"], "timestamp": d["t"], "key": unb64(d["k"]), "value": unb64(d["v"]),
            "headers": [(k, unb64(v)) for k, v in d["h"]]}  # fmt: skip


def s3_client(s3: dict):
    import boto3

    return boto3.client("s3", endpoint_url=s3["endpoint"], region_name=s3["region"],
                        aws_access_key_id=s3["access_key"], aws_secret_access_key=s3["secret_key"])  # fmt: skip


# --- the sink daemon --------------------------------------------------------------------


def _write_status(path: Path, status: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(status))
    tmp.replace(path)


def sink(config_path: str) -> None:
    """Back the topics up until SIGTERM (or SIGKILL: what was flushed is in the bucket)."""
    from confluent_kafka import Consumer, KafkaError

    cfg = json.loads(Path(config_path).read_text())
    status_path = Path(cfg["status_file"])
    s3 = s3_client(cfg["s3"])
    bucket, prefix = cfg["s3"]["bucket"], cfg["prefix"]
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    status = {"pid": os.getpid(), "assigned": None, "objects": 0, "records": 0, "bytes": 0,
              "last_flush": None, "flushes": 0}  # fmt: skip

    def assigned(_c, parts) -> None:
        status["assigned"] = time.time()
        status["partitions"] = [f"{p.topic}[{p.partition}]" for p in parts]
        _write_status(status_path, status)

    c = Consumer({**cfg["kafka"], "group.id": cfg["group"], "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})  # fmt: skip
    c.subscribe(cfg["topics"], on_assign=assigned)
    buf: dict[tuple[str, int], list] = {}
    last = time.monotonic()
    every, most = float(cfg["flush_interval_s"]), int(cfg["flush_records"])
    while not stopping:
        for m in c.consume(num_messages=500, timeout=0.1):
            if m.error() is not None:
                if m.error().code() != KafkaError._PARTITION_EOF:
                    print(f"consume: {m.error()}", file=sys.stderr, flush=True)
                continue
            buf.setdefault((m.topic(), m.partition()), []).append(m)
        if sum(map(len, buf.values())) >= most or (buf and time.monotonic() - last >= every):
            _flush(c, s3, bucket, prefix, buf, status)
            _write_status(status_path, status)
            buf, last = {}, time.monotonic()
        elif time.monotonic() - last >= every:
            last = time.monotonic()
    if buf:
        _flush(c, s3, bucket, prefix, buf, status)
        _write_status(status_path, status)
    c.close()


def _flush(c, s3, bucket: str, prefix: str, buf: dict, status: dict) -> None:
    """One object per partition, then the group's offsets: at-least-once."""
    from confluent_kafka import TopicPartition

    done = []
    for (topic, part), msgs in buf.items():
        body = "\n".join(
            encode_record(m.offset(), m.timestamp()[1], m.key(), m.value(), m.headers())
            for m in msgs
        )
        key = object_key(prefix, topic, part, msgs[0].offset(), msgs[-1].offset())
        s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
        status["objects"] += 1
        status["records"] += len(msgs)
        status["bytes"] += sum(len(m.value() or b"") + len(m.key() or b"") for m in msgs)
        done.append(TopicPartition(topic, part, msgs[-1].offset() + 1))
    c.commit(offsets=done, asynchronous=False)
    status["last_flush"] = time.time()
    status["flushes"] += 1


# --- restore ----------------------------------------------------------------------------


@dataclass
class Restored:
    """What a restore did: records and bytes (keys + values) produced, objects read, the
    seconds it took (listing to the last acknowledgement), and per source partition the
    source offset -> timestamp ms of every record restored (how a group's committed
    position becomes a timestamp)."""

    records: int = 0
    bytes: int = 0
    objects: int = 0
    seconds: float = 0.0
    timestamps: dict[tuple[str, int], dict[int, int]] = field(default_factory=dict)

    @property
    def mb_per_s(self) -> float | None:
        return None if self.seconds <= 0 else self.bytes / 1e6 / self.seconds

    @property
    def seconds_per_gb(self) -> float | None:
        return None if self.bytes <= 0 else self.seconds / (self.bytes / 1e9)


def restore(kafka: dict, s3: dict, prefix: str, topics: dict[str, str]) -> Restored:
    """Produce every backed-up record of each `topics` key into the topic it maps to (same
    partition, original key/value/headers/timestamp); returns once all are acknowledged."""
    from confluent_kafka import Producer

    out = Restored()
    start = time.monotonic()
    client = s3_client(s3)
    errors: list = []
    p = Producer({**kafka, "enable.idempotence": True, "linger.ms": 20})
    for src, dst in topics.items():
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=s3["bucket"], Prefix=f"{prefix}/{src}/"
        )
        keys = sorted(o["Key"] for page in pages for o in page.get("Contents", ()))
        for key in keys:
            part = int(key.rsplit("/", 2)[1])
            body = client.get_object(Bucket=s3["bucket"], Key=key)["Body"].read().decode()
            out.objects += 1
            seen = out.timestamps.setdefault((src, part), {})
            for line in body.splitlines():
                r = decode_record(line)
                if r["offset"] in seen:  # at-least-once: an object written twice
                    continue
                seen[r["offset"]] = r["timestamp"]
                while True:
                    try:
                        p.produce(dst, key=r["key"], value=r["value"], partition=part,
                                  timestamp=r["timestamp"], headers=r["headers"] or None,
                                  on_delivery=lambda e, _m: e and errors.append(e))  # fmt: skip
                        break
                    except BufferError:
                        p.poll(0.05)
                p.poll(0)
                out.records += 1
                out.bytes += len(r["value"] or b"") + len(r["key"] or b"")
    left = p.flush(120)
    if left or errors:
        raise RuntimeError(
            f"restore: {left} records unacknowledged, {len(errors)} delivery errors"
            + (f" (first: {errors[0]})" if errors else "")
        )
    out.seconds = time.monotonic() - start
    return out


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "sink":
        print("usage: s3backup.py sink CONFIG.json", file=sys.stderr)
        sys.exit(2)
    sink(sys.argv[2])
