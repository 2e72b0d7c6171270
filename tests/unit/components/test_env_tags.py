"""An AWS ephemeral env under Pulumi's mocks: the env id, owner, creation and expiry reach
every taggable resource as cost tags (the env id is also the drill id, which Cost Explorer
reconciliation filters on)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml

from components.aws.tags import (
    COST_TAG_KEYS,
    CREATED_AT_TAG,
    ENV_ID_TAG,
    EXPIRES_AT_TAG,
    is_taggable,
)
from components.local import envs
from components.local.envs import EnvRecord
from tests.unit.components.harness import STACKS, render


@pytest.mark.parametrize("template", ["msk-use1-usw2", "automq-use1-usw2"])
def test_env_id_tag_on_every_taggable_resource(template):
    now = datetime.now(UTC).replace(microsecond=0)
    rec = EnvRecord("f00d42", template, "aws", "team-a", envs.iso(now),
                    envs.iso(now + timedelta(hours=2)))  # fmt: skip
    raw = yaml.safe_load((STACKS / f"Pulumi.{template}.yaml").read_text())["config"]
    cfg = envs.aws_env_config(raw, rec)
    envs._validate_aws(cfg, rec.stack)
    rendered = render({k.split(":", 1)[1]: v for k, v in cfg.items()}, rec.stack)
    taggable = [r for r in rendered.resources if is_taggable(r.typ)]
    assert len(taggable) > 20
    for r in taggable:
        t = r.tags
        assert [k for k in COST_TAG_KEYS if not t.get(k)] == [], r.name
        assert t["kdrill:drill-id"] == "f00d42" and t[ENV_ID_TAG] == "f00d42", r.name
        assert t["environment"] == "ephemeral" and t["owner"] == "team-a", r.name
        assert t[EXPIRES_AT_TAG] == rec.expires_at and t[CREATED_AT_TAG] == rec.created_at
        assert t["kdrill:stack"] == "env-f00d42"


def test_the_template_config_is_left_as_it_was():
    raw = yaml.safe_load((STACKS / "Pulumi.msk-use1-usw2.yaml").read_text())["config"]
    rec = EnvRecord(
        "x", "msk-use1-usw2", "aws", "o", "2026-12-01T00:00:00Z", "2026-12-01T01:00:00Z"
    )
    envs.aws_env_config(raw, rec)
    assert raw["kdrill:environment"] == "staging"
