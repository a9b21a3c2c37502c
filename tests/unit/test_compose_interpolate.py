"""Compose interpolation and .env files, case by case against compose's rules."""

from __future__ import annotations

import pytest
from hwprov.compose.interpolate import (
    DotenvError,
    InterpolationError,
    interpolate,
    read_dotenv,
)


@pytest.mark.parametrize(
    ("text", "env", "out"),
    [
        ("plain", {}, "plain"),
        ("${A}", {"A": "1"}, "1"),
        ("$A", {"A": "1"}, "1"),
        ("$A-x", {"A": "1"}, "1-x"),
        ("$A_B", {"A": "1", "A_B": "2"}, "2"),  # the longest name
        ("${A}", {}, ""),
        ("${A:-d}", {}, "d"),
        ("${A:-d}", {"A": ""}, "d"),
        ("${A-d}", {"A": ""}, ""),
        ("${A-d}", {}, "d"),
        ("${A:+alt}", {"A": "x"}, "alt"),
        ("${A:+alt}", {"A": ""}, ""),
        ("${A+alt}", {"A": ""}, "alt"),
        ("${A?msg}", {"A": ""}, ""),
        ("$$", {}, "$"),
        ("$$A", {"A": "1"}, "$A"),
        ("$${A}", {"A": "1"}, "${A}"),
        ("^.*/x$$", {}, "^.*/x$"),
        ("${A:-${B}}", {"B": "2"}, "2"),
        ("${A:-${B:-${C}}}x", {"C": "3"}, "3x"),
        ("${A:-a:b-c}", {}, "a:b-c"),
        ("${DEV:?set it: e.g. /dev/x}:/dev/y", {"DEV": "/dev/ttyUSB0"}, "/dev/ttyUSB0:/dev/y"),
        ("${X:-%randomPassword%}", {}, "%randomPassword%"),
        ("${x}", {"x": "lower"}, "lower"),
    ],
)
def test_interpolation(text: str, env: dict[str, str], out: str) -> None:
    assert interpolate(text, env) == out


@pytest.mark.parametrize(
    ("text", "env", "needle"),
    [
        ("${A:?A is needed}", {}, "required variable A is missing a value: A is needed"),
        ("${A:?}", {"A": ""}, "required variable A is missing a value"),
        ("${A?no A}", {}, "no A"),
        ("${A:?need ${B}}", {"B": "b"}, "need b"),
        (
            "${ZIGBEE2MQTT_DEVICE_PATH:?eg echo ZIGBEE2MQTT_DEVICE_PATH=/dev/ttyACM0 "
            ">>~/IOTstack/.env}:/dev/ttyACM0",
            {},
            "eg echo ZIGBEE2MQTT_DEVICE_PATH=/dev/ttyACM0 >>~/IOTstack/.env",
        ),
        ("cost: 5$", {}, "a '$' must start $VAR"),
        ("$1", {}, "write '$$' for a literal '$'"),
        ("${A", {}, "never closed"),
        ("${}", {}, "invalid interpolation '${}'"),
        ("${A B}", {}, "invalid interpolation '${A B}'"),
        ("${1A}", {}, "invalid interpolation"),
    ],
)
def test_interpolation_errors_say_what_is_wrong(
    text: str, env: dict[str, str], needle: str
) -> None:
    with pytest.raises(InterpolationError) as err:
        interpolate(text, env)
    assert needle in str(err.value)


def test_unset_variables_are_reported_once_each() -> None:
    unset: list[str] = []
    assert interpolate("$A ${A} ${B:-x} ${C-y} $D", {"D": "d"}, unset) == "  x y d"
    assert unset == ["A"]


def test_dotenv_reading() -> None:
    text = (
        "# a comment\n"
        "\n"
        "export DEV='/dev/ttyUSB1'\n"
        "PLAIN=a # note\n"
        "HASH=a#b\n"
        'QUOTED="x \\"y\\"\\nz" # after\n'
        "SINGLE='${NOT} $$'\n"
        "EMPTY=\n"
        "REF=${PLAIN}-${FROM_ENV}\n"
        "  SPACED = v  \n"
    )
    assert read_dotenv(text, {"FROM_ENV": "e"}) == {
        "DEV": "/dev/ttyUSB1",
        "PLAIN": "a",
        "HASH": "a#b",
        "QUOTED": 'x "y"\nz',
        "SINGLE": "${NOT} $$",
        "EMPTY": "",
        "REF": "a-e",
        "SPACED": "v",
    }


def test_dotenv_the_given_environment_wins_inside_references() -> None:
    assert read_dotenv("A=file\nB=${A}\n", {"A": "env"})["B"] == "env"


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("A=1\nnot a pair\n", 2, "expected KEY=VALUE"),
        ("=1\n", 1, "expected KEY=VALUE"),
        ("A='open\n", 1, "never closed"),
        ('A="open\n', 1, "never closed"),
        ("A='x' y\n", 1, "after the closing quote"),
        ("A=${B:?set B}\n", 1, "set B"),
    ],
)
def test_dotenv_errors_name_the_line(text: str, line: int, needle: str) -> None:
    with pytest.raises(DotenvError) as err:
        read_dotenv(text, source="x/.env")
    assert err.value.line == line and needle in err.value.message
    assert str(err.value).startswith(f"x/.env:{line}: ")
