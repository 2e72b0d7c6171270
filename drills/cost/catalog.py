"""The dated price catalog (catalog.json beside this file).

One entry per (SKU, region): the on-demand list price in USD, its unit, the usage type
AWS's Cost and Usage Report names it by (e.g. `USE1-USW2-AWS-Out-Bytes`), the price
list service code, where the price came from and the date it was taken. A lookup of a
region or SKU the catalog does not hold raises `CatalogError` naming what is missing:
a drill is never priced at a silent zero.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path(__file__).with_name("catalog.json")


class CatalogError(LookupError):
    """A price the catalog does not have (unknown region, unknown SKU) or a malformed catalog."""


@dataclass(frozen=True)
class Price:
    sku: str
    region: str
    service_code: str
    usage_type: str
    unit: str
    usd: float
    description: str
    source: str
    taken: str
    aws_sku: str | None = None  # the Price List's own SKU, once refreshed from the API

    @property
    def price_id(self) -> str:
        return f"{self.sku}@{self.region}"


REQUIRED = ("sku", "region", "service_code", "usage_type", "unit", "usd", "source", "taken")


@dataclass
class Catalog:
    prices: dict[tuple[str, str], Price]
    gb_bytes: int
    hours_per_month: float
    region_names: dict[str, str]
    raw: dict[str, Any]
    path: Path | None = None

    @classmethod
    def load(cls, path: Path | str | None = None) -> Catalog:
        path = Path(path) if path else DEFAULT_PATH
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            raise CatalogError(f"no price catalog at {path}") from None
        except ValueError as e:
            raise CatalogError(f"{path}: not valid JSON ({e})") from None
        return cls.from_dict(doc, path)

    @classmethod
    def from_dict(cls, doc: dict[str, Any], path: Path | None = None) -> Catalog:
        prices: dict[tuple[str, str], Price] = {}
        for i, p in enumerate(doc.get("prices", [])):
            missing = [k for k in REQUIRED if p.get(k) in (None, "")]
            if missing:
                raise CatalogError(
                    f"catalog price #{i} ({p.get('sku')}) lacks {', '.join(missing)}"
                )
            if not isinstance(p["usd"], int | float) or p["usd"] < 0:
                raise CatalogError(f"catalog price {p['sku']}@{p['region']}: usd must be >= 0")
            price = Price(**{k: p.get(k) for k in Price.__dataclass_fields__ if k in p})
            prices[(price.sku, price.region)] = price
        gb = doc.get("gb_definition", {}).get("bytes_per_gb")
        if gb not in (10**9, 2**30):
            raise CatalogError("catalog gb_definition.bytes_per_gb must be 2^30 or 10^9")
        return cls(prices, gb, float(doc.get("hours_per_month", 730)),
                   dict(doc.get("region_names", {})), doc, path)  # fmt: skip

    @property
    def regions(self) -> list[str]:
        return sorted({r for _, r in self.prices})

    @property
    def skus(self) -> list[str]:
        return sorted({s for s, _ in self.prices})

    def price(self, sku: str, region: str) -> Price:
        """The price of `sku` in `region`; CatalogError when either is unknown."""
        p = self.prices.get((sku, region))
        if p is not None:
            return p
        if region not in self.regions:
            raise CatalogError(
                f"region {region!r} is not in the price catalog (regions: {', '.join(self.regions)}); "
                "add it with `kdrill cost refresh --region` or edit drills/cost/catalog.json"
            )
        have = [r for s, r in self.prices if s == sku]
        if not have:
            raise CatalogError(
                f"SKU {sku!r} is not in the price catalog; known SKUs: {', '.join(self.skus)}"
            )
        raise CatalogError(
            f"SKU {sku!r} has no price for {region} in the catalog (priced in: {', '.join(sorted(have))})"
        )

    def region_name(self, region: str) -> str:
        return self.region_names.get(region, region)

    def to_dict(self) -> dict[str, Any]:
        doc = dict(self.raw)
        doc["prices"] = [
            {k: v for k, v in p.__dict__.items() if v is not None} for p in self.prices.values()
        ]
        return doc

    def save(self, path: Path | str | None = None) -> Path:
        path = Path(path or self.path or DEFAULT_PATH)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        tmp.replace(path)
        return path
