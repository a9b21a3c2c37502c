"""Property tests: whatever is thrown at the loader, only a ComposeError naming the file comes
out; and a valid service, written as YAML or JSON, loads to exactly the values it was made of."""

from __future__ import annotations

import json
from typing import Any

import yaml
from hwprov.compose import Project, load_project_text
from hwprov.compose.interpolate import InterpolationError, interpolate
from hwprov.errors import ComposeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FIELDS = [
    "image", "build", "devices", "labels", "environment", "cap_add", "cap_drop", "privileged",
    "restart", "network_mode", "depends_on", "group_add", "device_cgroup_rules", "ulimits",
    "volumes", "command", "<<", "x-ext", "composition",
]  # fmt: skip
VALID = """services:
  gpio:
    image: busybox
    devices: ["/dev/i2c-1:/dev/i2c-1:rw", {source: /dev/mem}]
    labels: [io.resin.features.dbus=1]
    environment: {A: "${A:-x}"}
    cap_add: [SYS_RAWIO]
    restart: no
"""


def loads_or_fails_cleanly(text: str, source: str = "fuzz.yml") -> Project | None:
    try:
        return load_project_text(text, source, {"A": "1"}, {"B": ""})
    except ComposeError as err:
        assert str(err).startswith(source) and err.message
        assert err.line is None or err.line >= 1
        return None


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["/dev/x:/dev/y:rwm", "${A}", "${NOPE:?gone}", "$", "a=b", "no", "1"])
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.sampled_from(FIELDS), children, max_size=4)
    ),
    max_leaves=20,
)


@SETTINGS
@given(st.dictionaries(st.sampled_from(FIELDS), values, max_size=6), st.text(max_size=12))
def test_random_service_bodies_load_or_fail_cleanly(body: dict[str, Any], name: str) -> None:
    doc = {"version": "2.1", "services": {name: body}}
    loads_or_fails_cleanly(yaml.safe_dump(doc))
    loads_or_fails_cleanly(json.dumps(doc), "fuzz.json")


@SETTINGS
@given(values)
def test_random_documents_load_or_fail_cleanly(doc: Any) -> None:
    loads_or_fails_cleanly(yaml.safe_dump(doc))


yamlish = st.text(alphabet=": -[]{}\n\"'&*!|>#$%@`,?<ab1/\t\\", max_size=80)


@SETTINGS
@given(yamlish | st.text(max_size=80))
def test_random_text_loads_or_fails_cleanly(text: str) -> None:
    loads_or_fails_cleanly(text)


@SETTINGS
@given(st.integers(0, len(VALID)), st.integers(0, 6), yamlish)
def test_a_damaged_valid_file_loads_or_fails_cleanly(at: int, cut: int, insert: str) -> None:
    loads_or_fails_cleanly(VALID[:at] + insert + VALID[at + cut :])


@SETTINGS
@given(st.text(alphabet="${}:-?+ABab_$ /", max_size=30))
def test_interpolation_gives_a_string_or_says_why(text: str) -> None:
    try:
        assert isinstance(interpolate(text, {"A": "1", "a": ""}), str)
    except InterpolationError as err:
        assert str(err)
    loads_or_fails_cleanly(
        yaml.safe_dump({"services": {"s": {"devices": [text], "labels": [text]}}})
    )


# Round trips: a valid service, made of generated values, loads to exactly those values.
names = st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True)
paths = st.from_regex(r"/dev/[a-zA-Z0-9_/.-]{1,16}", fullmatch=True)
perms = st.sampled_from(["r", "w", "m", "rw", "rwm", "mr", "wm"])
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
devices = st.lists(st.tuples(paths, st.none() | paths, st.none() | perms), max_size=4)
services = st.fixed_dictionaries(
    {
        "image": names,
        "devices": devices,
        "long": st.booleans(),
        "labels": st.dictionaries(st.from_regex(r"[a-z][a-z0-9.-]{0,15}", fullmatch=True), texts),
        "labels_as_list": st.booleans(),
        "environment": st.dictionaries(
            st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True), texts
        ),
        "cap_add": st.lists(st.from_regex(r"[A-Z_]{1,12}", fullmatch=True), max_size=3),
        "privileged": st.booleans(),
        "restart": st.sampled_from(["no", "always", "on-failure", "unless-stopped"]),
        "network_mode": st.sampled_from(["host", "bridge", "none", "service:db"]),
        "depends_on": st.lists(names, max_size=3, unique=True),
    }
)


class QuotingDumper(yaml.SafeDumper):
    """Writes every string double-quoted, so no YAML version reads one as anything else."""


QuotingDumper.add_representer(
    str, lambda dumper, s: dumper.represent_scalar("tag:yaml.org,2002:str", s, style='"')
)


def escape(text: str) -> str:
    return text.replace("$", "$$")


def written(spec: dict[str, Any]) -> dict[str, Any]:
    def device(host: str, container: str | None, perm: str | None) -> Any:
        if spec["long"]:
            return {"source": host, "target": container or host, "permissions": perm or None}
        return ":".join(
            [host, *([container or host, perm] if perm else [container] if container else [])]
        )

    labels: Any = {k: escape(v) for k, v in spec["labels"].items()}
    if spec["labels_as_list"]:
        labels = [f"{k}={v}" for k, v in labels.items()]
    return {
        "image": spec["image"],
        "devices": [device(*d) for d in spec["devices"]],
        "labels": labels,
        "environment": {k: escape(v) for k, v in spec["environment"].items()},
        **{k: spec[k] for k in ("cap_add", "privileged", "restart", "network_mode", "depends_on")},
    }


@SETTINGS
@given(services, st.sampled_from(["yaml", "json"]))
def test_a_generated_service_loads_to_the_values_it_was_made_of(
    spec: dict[str, Any], form: str
) -> None:
    doc = {"services": {"svc": written(spec)}}
    if form == "yaml":
        text = yaml.dump(doc, Dumper=QuotingDumper, allow_unicode=True, sort_keys=False)
    else:
        text = json.dumps(doc, indent="\t")
    service = load_project_text(text, f"gen.{form}").service("svc")
    assert [(d.host, d.container, d.permissions) for d in service.devices] == [
        (host, container or host, perm) for host, container, perm in spec["devices"]
    ]
    lines = [d.line for d in service.devices]
    assert all(isinstance(n, int) for n in lines) and lines == sorted(lines)
    assert dict(service.labels) == spec["labels"]
    assert dict(service.environment) == spec["environment"]
    assert service.image == spec["image"] and service.cap_add == tuple(spec["cap_add"])
    assert (service.privileged, service.restart) == (spec["privileged"], spec["restart"])
    assert service.network_mode == spec["network_mode"]
    assert service.depends_on == tuple(spec["depends_on"])


@SETTINGS
@given(
    st.dictionaries(
        st.from_regex(r"[a-z]{1,6}", fullmatch=True),
        st.from_regex(r"[a-z0-9]{0,6}", fullmatch=True),
    )
)
def test_env_wins_over_dotenv_for_every_variable(env: dict[str, str]) -> None:
    dotenv = {k: v + "-file" for k, v in env.items()} | {"only_file": "f"}
    labels = [f"{k}=${{{k}}}" for k in [*env, "only_file"]]
    text = yaml.dump({"services": {"s": {"labels": labels}}}, Dumper=QuotingDumper)
    service = load_project_text(text, "e.yml", env, dotenv).services[0]
    assert dict(service.labels) == {**env, "only_file": "f"}
