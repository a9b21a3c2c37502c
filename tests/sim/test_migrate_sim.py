"""`hwprov migrate` on the real corpus: every privileged service, taken off privileged, still
gets the same hardware from the same board."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import sim

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "compose-corpus" / "corpus"

# Runs inside the simulated board: plan before and after the migration, per service.
MIGRATE_CORPUS = """
import json, sys
from pathlib import Path
from hwprov.compose.loader import load_project, load_project_text
from hwprov.errors import HwprovError
from hwprov.hardware.inventory import Inventory
from hwprov.export.migrate import migrate
from hwprov.planning.build import build_plan
from hwprov.plugins.host import PluginHost
from hwprov.hardware.udev import coldplug

host = PluginHost().load()
inventory = Inventory(host, None)
list(inventory.load(coldplug(host.subsystems(), host.sysfs_attributes())))
hardware = inventory.hardware()

def shape(plan, name):
    s = plan.service(name)
    return {"devices": sorted(d.host for d in s.devices),
            "caps": sorted(c.value for c in s.capabilities),
            "network": s.network_mode.value if s.network_mode else None}

out = {}
for path in sorted(Path(sys.argv[1]).iterdir()):
    try:
        project = load_project(path, env={})
    except HwprovError:
        continue  # rejected files are the loader tests' business
    if not any(s.privileged for s in project.services):
        continue
    before = build_plan(project, hardware, host)
    result = migrate(path.read_text(), project, before, hardware, host.grant)
    after_project = load_project_text(result.text, str(path), env={})
    after = build_plan(after_project, hardware, host)
    out[path.name] = {
        "notes": list(result.notes),
        "services": {
            s.name: {"before": shape(before, s.name), "after": shape(after, s.name),
                     "privileged_after": next(a.privileged for a in after_project.services
                                              if a.name == s.name),
                     "network_declared_after": next(a.network_mode for a in after_project.services
                                                    if a.name == s.name)}
            for s in project.services if s.privileged
        },
    }
print(json.dumps(out))
"""


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/compose-corpus is not here")
@pytest.mark.parametrize("board", ["rpi4b", "x86-gateway"])
def test_migrated_corpus_services_keep_their_hardware_without_privileged(board: str) -> None:
    out = sim("python3", "-c", MIGRATE_CORPUS, str(CORPUS), board=board)
    assert out.returncode == 0, out.stderr[-3000:]
    files = json.loads(out.stdout)
    assert len(files) >= 25  # the corpus has 35 files with privileged services
    migrated = 0
    for name, doc in files.items():
        for service, s in doc["services"].items():
            where = f"{name}: {service}"
            if s["privileged_after"]:
                # only where the file sets it through an anchor, and a note says so
                assert any(service in n and "anchor" in n for n in doc["notes"]), where
                continue
            migrated += 1
            # the same nodes, at least the same capabilities, the network it needs declared
            assert s["after"]["devices"] == s["before"]["devices"], where
            assert set(s["before"]["caps"]) <= set(s["after"]["caps"]), where
            if s["before"]["network"]:
                assert s["network_declared_after"] in (s["before"]["network"], None), where
                assert s["after"]["network"] in (None, s["before"]["network"]), where
    assert migrated >= 30


def test_migrate_json_names_its_schema_and_lists_each_service(tmp_path: Path) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text("services:\n  bus:\n    image: busybox\n    privileged: true\n")
    done = sim("hwprov", "migrate", "--json", "--no-probe", "-f", str(compose), board="rpi4b")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["schema"] == "hwprov.migrate/v1"
    assert [s["service"] for s in doc["services"]] == ["bus"]
