"""How every Kafka client kdrill makes reaches its cluster: one config per bootstrap address.

A cluster that requires authentication (SASL, TLS) registers its client settings under
its bootstrap address once, where they are known (the local pair when it reads its
credentials, a target reading stack secrets). Every client kdrill builds -- workload
producers and groups, admin clients, offset readers, probes, tests -- takes its config
from `client_config()`, so turning security on for a cluster changes no call site.

The registry is process memory only: settings never reach argv, logs or evidence from
here (`redacted()` is what may be shown).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

SECRET_KEYS = frozenset({"sasl.password", "ssl.key.password", "ssl.keystore.password"})

_lock = threading.Lock()
_settings: dict[str, dict[str, str]] = {}


def _addresses(bootstrap: str) -> list[str]:
    return [a.strip() for a in bootstrap.split(",") if a.strip()]


def register(bootstrap: str, settings: Mapping[str, str]) -> None:
    """Clients of the cluster at `bootstrap` (a comma list, each address registered)
    connect with `settings` (e.g. security.protocol, sasl.mechanism, sasl.username,
    sasl.password); an empty mapping forgets the cluster's settings."""
    with _lock:
        for address in _addresses(bootstrap):
            if settings:
                _settings[address] = dict(settings)
            else:
                _settings.pop(address, None)


def settings_for(bootstrap: str) -> dict[str, str]:
    """The registered settings of the cluster at `bootstrap` (its first registered address)."""
    with _lock:
        for address in _addresses(bootstrap):
            if address in _settings:
                return dict(_settings[address])
    return {}


def client_config(bootstrap: str, extra: Mapping[str, object] | None = None) -> dict[str, object]:
    """A librdkafka config for a client of the cluster at `bootstrap`: its address, the
    cluster's registered settings, then `extra` (which wins)."""
    return {"bootstrap.servers": bootstrap, **settings_for(bootstrap), **(extra or {})}


def redacted(conf: Mapping[str, object]) -> dict[str, object]:
    """`conf` fit to show: secret values replaced."""
    return {k: ("[secret]" if k in SECRET_KEYS else v) for k, v in conf.items()}
