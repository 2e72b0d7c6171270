"""The backup sink as a part of the local stack, declared for a backup-and-restore drill.

`<prefix>-backup-sink` (a dynamic-provider resource, components/local/parts.py) runs
kdrill-s3backup's sink (components/local/s3backup.py) in the STANDBY region: it reads the
primary's topics over the backbone (the replication listener, as MirrorMaker 2 does, as
the replication principal) and writes to the standby's own object store, in its data bucket.

Why the bucket lives in the standby: a backup is for the day the primary region is lost,
and a bucket in the primary's object store is lost with it (moto here; on AWS, a bucket in
the primary region is unreachable in a regional outage unless replicated). Writing straight
to the standby's bucket makes the backup cross the backbone once, as S3 Cross-Region
Replication of a primary-region bucket would, without CRR's own lag (up to 15 minutes under
its SLA) between the two; the drill's RPO is then the sink's flush interval plus what was in
flight, and it is measured, not assumed.

The part is switched like the failback's reverse MirrorMaker 2: the drill-time config's
`kdrill:backup` (topics, prefix, flush interval) declares it and a targeted update creates
it (returning once the sink's consumer is assigned); removing the key and another targeted
update deletes it; `recover` and `down` remove it too.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from components.clientconf import client_config
from components.local import objectstore, processes, security
from components.local.errors import LocalEnvError
from components.wait import wait_until

ROLE = "backup-sink"
KEY = "kdrill:backup"
TOOL = Path(__file__).with_name("s3backup.py")


def data_bucket(pair) -> str:
    """The standby's data bucket (the first of its buckets that is not for evidence)."""
    for b in pair.standby.spec.buckets:
        if "evidence" not in b:
            return b
    raise LocalEnvError(f"the standby {pair.standby.name} has no data bucket in the stack config")


def s3_settings(pair) -> dict[str, str]:
    """Where the backup lives: the standby's endpoint and data bucket. moto's keys name the
    local endpoint (objectstore.ACCESS); they are kept out of argv all the same."""
    r = pair.standby
    return {"endpoint": r.s3_endpoint, "region": r.spec.aws_region, "bucket": data_bucket(pair),
            "access_key": objectstore.ACCESS["aws_access_key_id"],
            "secret_key": objectstore.ACCESS["aws_secret_access_key"]}  # fmt: skip


def _kafka_settings(pair) -> dict[str, str]:
    """The sink's client settings for the primary's replication listener: the replication
    principal over SASL when the stack's security is on (that listener has no TLS)."""
    extra: dict[str, str] = {}
    if pair.cfg.security.enabled:
        creds = security.read_credentials(pair.registry.dir)
        if not creds:
            raise LocalEnvError(f"security is on but {pair.registry.dir} holds no credentials")
        extra = security.client_settings(security.MM2, creds[security.MM2], None)
    return client_config(pair.primary.replication_bootstrap, extra)


def config_file(pair) -> Path:
    """The sink's config (0600; it holds the SASL password and the S3 keys, which stay off
    its argv): it exists only while the sink runs, `stop` removes it."""
    return pair.registry.workdir(pair.standby.name) / "backup-sink.json"


def status_file(pair) -> Path:
    return pair.registry.workdir(pair.standby.name) / "backup-status.json"


def status(pair) -> dict[str, Any]:
    """The sink's status file (no secrets): when it was assigned, what it flushed."""
    try:
        return json.loads(status_file(pair).read_text())
    except (FileNotFoundError, ValueError):
        return {}


def running(pair) -> bool:
    return pair.registry.running(ROLE, pair.standby.name)


def start(pair, settings: dict[str, Any], timeout: float = 60.0) -> None:
    """Start the sink (unless it runs) and return once its consumer is assigned."""
    if not running(pair):
        status_file(pair).unlink(missing_ok=True)
        conf = {
            "kafka": _kafka_settings(pair),
            "s3": s3_settings(pair),
            "topics": list(settings["topics"]),
            "prefix": settings["prefix"],
            "group": f"kdrill-backup-{settings['prefix'].replace('/', '-')}",
            "flush_interval_s": settings.get("flushIntervalMs", 1000) / 1000,
            "flush_records": settings.get("flushRecords", 5000),
            "status_file": str(status_file(pair)),
        }
        path = security.write_private(config_file(pair), json.dumps(conf))
        pair.registry.start(pair.standby, ROLE, [sys.executable, str(TOOL), "sink", str(path)])
    wait_until(
        lambda: status(pair).get("assigned") is not None,
        timeout,
        "the backup sink's consumer to be assigned",
        interval=0.2,
        check=lambda: running(pair) or _died(pair),
        error=LocalEnvError,
    )


def _died(pair):
    raise LocalEnvError(
        f"the backup sink exited; see {pair.registry.workdir(pair.standby.name) / (ROLE + '.log')}"
    )


def stop(pair) -> bool:
    """SIGKILL the sink and forget it (what it flushed stays in the bucket), and remove its
    config, the secrets with it; True if one ran."""
    pair.registry.sync()
    mine = [p for p in pair.registry.procs if (p.role, p.region) == (ROLE, pair.standby.name)]
    processes.kill_all([p.pid for p in mine])
    pair.registry.forget(lambda p: (p.role, p.region) == (ROLE, pair.standby.name))
    config_file(pair).unlink(missing_ok=True)
    return bool(mine)


TYPE = "pulumi-python:dynamic:Resource"  # parts.TYPE (imported there: no import circle)


def urn(pair) -> str:
    return pair.stack.urn(TYPE, f"{pair.cfg.prefix}-{ROLE}")


def set_backup(pair, settings: dict[str, Any] | None) -> float:
    """Declare (settings) or remove (None) the backup sink part through the drill-time config
    and a targeted update of that part. Returns CLOCK_MONOTONIC when the update returned."""
    pair.stack.set_drill_setting(KEY, settings)
    if settings is not None or urn(pair) in pair.stack.resource_urns():
        pair.stack.up(targets=[urn(pair)])
    if settings is None:
        stop(pair)  # whatever an interrupted update left behind
    return time.monotonic()


def recover(pair) -> list[str]:
    """After a kill: the key out of the drill-time config, the sink stopped."""
    done = []
    if pair.stack.config_file.exists() and pair.stack.drill_setting(KEY):
        pair.stack.set_drill_setting(KEY, None)
        done.append(f"removed {KEY} from the drill-time config")
    if stop(pair):
        done.append("stopped the backup sink")
    return done
