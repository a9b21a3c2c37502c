"""The one list of hwprov's JSON documents and their versions (docs/json.md has each schema).

Every JSON document the CLI prints carries `"schema": "hwprov.<kind>/v<N>"` as its first key,
one per line for the line-per-object streams (`watch`, `apply`, `run`'s decision lines), so a
reader that starts mid-stream still knows what it reads. A field added keeps the version; a
field removed, renamed or given another meaning takes the next one. `hwprov cdi` prints CDI's
own format, versioned by its `cdiVersion`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Schema(StrEnum):
    SCAN = "hwprov.scan/v1"
    WATCH = "hwprov.watch/v1"
    PLAN = "hwprov.plan/v1"
    APPLY = "hwprov.apply/v1"
    MIGRATE = "hwprov.migrate/v1"
    DECISION = "hwprov.decision/v1"
    STATUS = "hwprov.status/v1"
    SIM = "hwprov.sim/v1"


def versioned(schema: Schema, doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` with its schema first (a `schema` key already in it is replaced)."""
    return {"schema": str(schema), **{k: v for k, v in doc.items() if k != "schema"}}
