"""Compose interpolation and .env files, case by case against compose's rules."""

from __future__ import annotations

import pytest
from hwprov.compose import load_project_text
from hwprov.compose.interpolate import (
    DotenvError,
    InterpolationError,
    interpolate,
    read_dotenv,
)
from hwprov.errors import ComposeError

# (text, env, result): compose-go v2.9.1's rules (hwprov/compose/interpolate.py); every case is
# also run through the real docker compose binary by test_interpolate_vs_compose.py.
VALUES: list[tuple[str, dict[str, str], str]] = [
    ("plain", {}, "plain"),
    ("${A}", {"A": "1"}, "1"),
    ("$A", {"A": "1"}, "1"),
    ("$A-x", {"A": "1"}, "1-x"),
    ("$A_B", {"A": "1", "A_B": "2"}, "2"),  # the longest name
    ("${A}", {}, ""),
    ("$A", {}, ""),
    ("${A}${B}", {"A": "1", "B": "2"}, "12"),
    ("$A$B", {"A": "1", "B": "2"}, "12"),
    ("${x}", {"x": "lower"}, "lower"),
    ("${A}", {"A": "$B ${C}"}, "$B ${C}"),  # a value is not interpolated again
    # defaults, alternatives, required: each operator on set, empty and unset
    ("${A:-d}", {"A": "x"}, "x"),
    ("${A:-d}", {"A": ""}, "d"),
    ("${A:-d}", {}, "d"),
    ("${A-d}", {"A": "x"}, "x"),
    ("${A-d}", {"A": ""}, ""),
    ("${A-d}", {}, "d"),
    ("${A:+alt}", {"A": "x"}, "alt"),
    ("${A:+alt}", {"A": ""}, ""),
    ("${A:+alt}", {}, ""),
    ("${A+alt}", {"A": "x"}, "alt"),
    ("${A+alt}", {"A": ""}, "alt"),
    ("${A+alt}", {}, ""),
    ("${A:?msg}", {"A": "x"}, "x"),
    ("${A?msg}", {"A": "x"}, "x"),
    ("${A?msg}", {"A": ""}, ""),
    ("${A:-}", {}, ""),
    ("${A:-}", {"A": "x"}, "x"),
    ("${A-}", {}, ""),
    ("${A:+}", {"A": "x"}, ""),
    ("${A:?}", {"A": "x"}, "x"),
    ("${A?}", {"A": ""}, ""),
    # escapes
    ("$$", {}, "$"),
    ("$$A", {"A": "1"}, "$A"),
    ("$$$A", {"A": "1"}, "$1"),
    ("$${A}", {"A": "1"}, "${A}"),
    ("^.*/x$$", {}, "^.*/x$"),
    # a `$` that starts no expression stays as written (the old reader refused these)
    ('sh -c "echo $(hostname)"', {}, 'sh -c "echo $(hostname)"'),
    ("$(", {}, "$("),
    ("$", {}, "$"),
    ("cost: 5$", {}, "cost: 5$"),
    ("$ x", {}, "$ x"),
    ("$1", {}, "$1"),
    ("$1A", {"A": "1"}, "$1A"),  # a name cannot start with a digit: `A` is text
    ("$-", {}, "$-"),
    ("$.x", {}, "$.x"),
    ("$}", {}, "$}"),
    ("$:", {}, "$:"),
    ("a$\nb", {}, "a$\nb"),
    # names: ASCII, plus the two letters Go's case folding maps onto ASCII ones
    ("$\u017f", {"\u017f": "long s"}, "long s"),
    ("${\u212a}", {"\u212a": "kelvin"}, "kelvin"),
    ("$A\u017fB", {"A\u017fB": "v", "A": "no"}, "v"),
    ("$\u00e9", {"\u00e9": "x"}, "$\u00e9"),
    ("$\u0130", {}, "$\u0130"),
    ("$A\u00e9", {"A": "1"}, "1\u00e9"),
    # nesting; the operator is the one right after the name
    ("${A:-${B}}", {"B": "2"}, "2"),
    ("${A:-${B:-c}}", {}, "c"),
    ("${A:-${B:-c}}", {"B": "b"}, "b"),
    ("${A:-${B:-c}}", {"A": "a"}, "a"),
    ("${A:-${B:-${C}}}x", {"C": "3"}, "3x"),
    ("${A:-$B}", {"B": "2"}, "2"),
    ("${A:-a:b-c}", {}, "a:b-c"),
    ("${A-b:?c}", {}, "b:?c"),
    ("${A-b:?c}", {"A": "a"}, "a"),
    ("${DEV:?set it: e.g. /dev/x}:/dev/y", {"DEV": "/dev/ttyUSB0"}, "/dev/ttyUSB0:/dev/y"),
    ("${X:-%randomPassword%}", {}, "%randomPassword%"),
    ("${A:-$(x)}", {}, "$(x)"),
    # braces inside defaults, and where the expression ends
    ("${A:-{x}}", {}, "{x}"),
    ("${A:-{}}", {}, "{}"),
    ("${A:-{}}", {"A": "a"}, "a"),
    ("${A:-a}b}", {}, "ab}"),
    ("${A:-x}y${B}", {"B": "b"}, "xyb"),
    ("${A:-{{}}}", {}, "{{}}"),
    ("${A:-{{}}}", {"A": "a"}, "a}"),  # `{` hides the next character from the brace count
    ("${A:-{x}y}z", {"A": "a"}, "az"),
    ("${A}\n${B:-x}\n${C:-y}z}", {"A": "a", "B": "b"}, "a\nb\nyz}"),
]

# (text, env, part of the message): compose refuses these too.
ERRORS: list[tuple[str, dict[str, str], str]] = [
    ("${A:?A is needed}", {}, "required variable A is missing a value: A is needed"),
    ("${A:?}", {"A": ""}, "required variable A is missing a value"),
    ("${A:?}", {}, "required variable A is missing a value"),
    ("${A?}", {}, "required variable A is missing a value"),
    ("${A?no A}", {}, "no A"),
    ("${A:?need ${B}}", {"B": "b"}, "need b"),
    (
        "${ZIGBEE2MQTT_DEVICE_PATH:?eg echo ZIGBEE2MQTT_DEVICE_PATH=/dev/ttyACM0 "
        ">>~/IOTstack/.env}:/dev/ttyACM0",
        {},
        "eg echo ZIGBEE2MQTT_DEVICE_PATH=/dev/ttyACM0 >>~/IOTstack/.env",
    ),
    ("${", {}, "invalid interpolation '${'"),
    ("x ${A} ${", {"A": "1"}, "invalid interpolation '${'"),
    ("${A", {}, "invalid interpolation '${A'"),
    ("${}", {}, "invalid interpolation '${}'"),
    ("${A B}", {}, "invalid interpolation '${A B}'"),
    ("${1A}", {}, "invalid interpolation '${1A}'"),
    ("${A:}", {}, "invalid interpolation '${A:}'"),
    ("${\u00e9}", {}, "invalid interpolation"),
    ("${A:-{", {}, "invalid interpolation '${A:-{'"),
    ("${A:-x\ny}", {"A": "a"}, "invalid interpolation '${A:-x'"),  # `}` on the next line
    ("$${A} ${A", {}, "invalid interpolation '${A'"),
    # the argument is interpolated even when it is not used (compose-go v2.9.1)
    ("${A:-${}}", {"A": "a"}, "invalid interpolation '${}'"),
    ("${A:-${B:?boom}}", {"A": "a"}, "required variable B is missing a value: boom"),
    ("${A:+${B:-{}", {}, "invalid interpolation '${B:-{'"),
]


@pytest.mark.parametrize(("text", "env", "out"), VALUES)
def test_interpolation(text: str, env: dict[str, str], out: str) -> None:
    assert interpolate(text, env) == out


@pytest.mark.parametrize(("text", "env", "needle"), ERRORS)
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


def test_an_argument_reports_its_unset_variables_even_when_unused() -> None:
    unset: list[str] = []
    assert interpolate("${A:-$B}${A:+$C}", {"A": "a"}, unset) == "a"
    assert unset == ["B", "C"]  # compose warns about both: it interpolates arguments first


@pytest.mark.parametrize(
    "top",
    ['x-note: "${"', 'secrets: {s: {file: "${S:?set S}"}}', 'name: "${"', 'version: "${"'],
)
def test_every_string_in_the_file_is_interpolated_as_compose_does(top: str) -> None:
    """Compose interpolates the whole file, so a bad `${` fails wherever it is written."""
    with pytest.raises(ComposeError) as err:
        load_project_text(f"{top}\nservices:\n  a:\n    image: busybox\n", "c.yml")
    message = err.value.message
    assert err.value.line == 1
    assert (
        "invalid interpolation '${'" in message
        or "required variable S is missing a value: set S" in message
    )


def test_the_name_is_interpolated_and_given_to_the_file_normalised() -> None:
    text = "name: ${N:-My_App}\nservices:\n  a:\n    image: ${COMPOSE_PROJECT_NAME}\n"
    project = load_project_text(text, "c.yml", {})
    assert (project.name, project.services[0].image) == ("My_App", "my_app")


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


def test_defaults_nested_past_the_limit_are_an_error_not_a_stack_overflow() -> None:
    deep = "${A:-" * 500 + "x" + "}" * 500
    with pytest.raises(InterpolationError, match="nested more than 100 deep"):
        interpolate(deep, {})
    with pytest.raises(DotenvError, match="nested more than 100 deep"):
        read_dotenv(f"A={deep}\n")
    assert interpolate("${A:-" * 100 + "x" + "}" * 100, {}) == "x"
