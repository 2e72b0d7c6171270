"""How every Kafka client kdrill makes reaches its cluster: one config per bootstrap address.

A cluster that requires authentication (SASL, TLS) registers its client settings under
its bootstrap address once, where they are known (the local pair when it reads its
credentials, a target reading stack secrets). Every client kdrill builds -- workload
producers and groups, admin clients, offset readers, probes, tests -- takes its config
from `client_config()`, so turning security on for a cluster changes no call site.

A cluster may also register *roles*: the least-privilege principals its workload uses
(`producer`, `group:<name>`); `client_config(bootstrap, principal=role)` then gives that
principal's settings instead of the cluster's default (admin) ones. A role the cluster did
not register falls back to the default: `has_role` is how a preflight tells.

Settings that name files (TLS: `ssl.ca.location`, the pair's CA certificate) are registered
the same way: a cluster switching its client listener to SASL_SSL changes no call site.

The registry is process memory only: settings never reach argv, logs or evidence from
here (`redacted()` is what may be shown).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

# The workload's roles (what drills/workload.py asks for).
PRODUCER_ROLE = "producer"


def group_role(group: str) -> str:
    """The role of the consumer group the drill names `group`."""
    return f"group:{group}"


SECRET_KEYS = frozenset({"sasl.password", "ssl.key.password", "ssl.keystore.password",
                         "ssl.truststore.password", "ssl.key.pem"})  # fmt: skip

_lock = threading.Lock()
_settings: dict[str, dict[str, str]] = {}
_roles: dict[str, dict[str, dict[str, str]]] = {}


def _addresses(bootstrap: str) -> list[str]:
    return [a.strip() for a in bootstrap.split(",") if a.strip()]


def register(
    bootstrap: str,
    settings: Mapping[str, str],
    roles: Mapping[str, Mapping[str, str]] | None = None,
) -> None:
    """Clients of the cluster at `bootstrap` (a comma list, each address registered)
    connect with `settings` (e.g. security.protocol, sasl.mechanism, sasl.username,
    sasl.password); `roles`: role -> the settings of that role's principal. An empty
    mapping forgets the cluster's settings and roles."""
    with _lock:
        for address in _addresses(bootstrap):
            if settings:
                _settings[address] = dict(settings)
                _roles[address] = {k: dict(v) for k, v in (roles or {}).items()}
            else:
                _settings.pop(address, None)
                _roles.pop(address, None)


def settings_for(bootstrap: str) -> dict[str, str]:
    """The registered settings of the cluster at `bootstrap` (its first registered address)."""
    with _lock:
        for address in _addresses(bootstrap):
            if address in _settings:
                return dict(_settings[address])
    return {}


def role_settings(bootstrap: str, role: str) -> dict[str, str] | None:
    """The settings of `role`'s principal in the cluster at `bootstrap`, or None."""
    with _lock:
        for address in _addresses(bootstrap):
            if role in _roles.get(address, {}):
                return dict(_roles[address][role])
    return None


def has_role(bootstrap: str, role: str) -> bool:
    """Whether the cluster registered a principal for `role` (True when it registered no
    settings at all: an open cluster has no principals to miss)."""
    return not settings_for(bootstrap) or role_settings(bootstrap, role) is not None


def client_config(
    bootstrap: str, extra: Mapping[str, object] | None = None, principal: str | None = None
) -> dict[str, object]:
    """A librdkafka config for a client of the cluster at `bootstrap`: its address, the
    cluster's registered settings (those of `principal`, a role, when registered), then
    `extra` (which wins)."""
    base = settings_for(bootstrap)
    if principal is not None:
        base.update(role_settings(bootstrap, principal) or {})
    return {"bootstrap.servers": bootstrap, **base, **(extra or {})}


def redacted(conf: Mapping[str, object]) -> dict[str, object]:
    """`conf` fit to show: secret values replaced."""
    return {k: ("[secret]" if k in SECRET_KEYS else v) for k, v in conf.items()}
