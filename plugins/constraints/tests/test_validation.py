"""API-time validation: Marathon's messages, word for word."""

from __future__ import annotations

import pytest

from marathon_constraints.operators import operators
from marathon_core.contracts.placement import ConstraintValidationError

IS_MESSAGE = (
    "IS only supports Mesos text and float values "
    "(see http://mesos.apache.org/documentation/latest/attributes-resources/)"
)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("UNIQUE", None),
        ("CLUSTER", None),
        ("CLUSTER", ""),
        ("CLUSTER", "any thing at all"),
        ("GROUP_BY", None),
        ("GROUP_BY", "3"),
        ("GROUP_BY", "0"),
        ("GROUP_BY", "-1"),
        ("GROUP_BY", "+2"),
        ("MAX_PER", "2"),
        ("MAX_PER", "-2"),
        ("MAX_PER", "2147483647"),
        ("LIKE", "us-east-1[a-c]"),
        ("LIKE", ""),  # Marathon compiles "" fine; it then matches nothing
        ("UNLIKE", "gpu|spot"),
        ("IS", "linux"),
        ("IS", "0.8"),
        ("IS", "a/b_c-d.e"),
        ("IS", ""),
        ("IS", None),
    ],
)
def test_valid(name: str, value: str | None) -> None:
    operators()[name].validate("rack_id", value)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("UNIQUE", "foo", "UNIQUE does not accept a value"),
        ("UNIQUE", "", "UNIQUE does not accept a value"),
        ("GROUP_BY", "", "GROUP BY must define an integer value or else no value at all"),
        ("GROUP_BY", "two", "GROUP BY must define an integer value or else no value at all"),
        ("GROUP_BY", "1.5", "GROUP BY must define an integer value or else no value at all"),
        ("GROUP_BY", "inf", "GROUP BY must define an integer value or else no value at all"),
        ("GROUP_BY", " 2", "GROUP BY must define an integer value or else no value at all"),
        ("MAX_PER", None, "MAX_PER requires an integer value"),
        ("MAX_PER", "two", "MAX_PER requires an integer value"),
        ("MAX_PER", "1_000", "MAX_PER requires an integer value"),
        ("MAX_PER", "2147483648", "MAX_PER requires an integer value"),
        ("LIKE", None, "LIKE and UNLIKE require a non-empty, regular expression value"),
        ("UNLIKE", None, "LIKE and UNLIKE require a non-empty, regular expression value"),
        ("LIKE", "rack-[1-3", "is not a valid regular expression"),
        ("UNLIKE", "(unclosed", "is not a valid regular expression"),
        ("IS", "{a,b}", IS_MESSAGE),
        ("IS", "[1-5]", IS_MESSAGE),
        ("IS", "two words", IS_MESSAGE),
    ],
)
def test_invalid(name: str, value: str | None, message: str) -> None:
    with pytest.raises(ConstraintValidationError) as info:
        operators()[name].validate("rack_id", value)
    assert info.value.message == message
    assert str(info.value) == message


@pytest.mark.parametrize("name", ["UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "MAX_PER", "IS"])
def test_empty_field(name: str) -> None:
    with pytest.raises(ConstraintValidationError, match="missing field for constraint declaration"):
        operators()[name].validate("", "1")


# The constraint cases of examples/invalid-requests.json, as (constraint, message).
INVALID_REQUESTS = [
    (["hostname", "UNIQUE", "foo"], "UNIQUE does not accept a value"),
    (["rack_id", "MAX_PER", "two"], "MAX_PER requires an integer value"),
    (["rack_id", "LIKE", "rack-[1-3"], "is not a valid regular expression"),
]


@pytest.mark.parametrize(("constraint", "message"), INVALID_REQUESTS)
def test_invalid_requests_fixture(constraint: list[str], message: str) -> None:
    field, op, value = constraint
    with pytest.raises(ConstraintValidationError) as info:
        operators()[op.upper()].validate(field, value)
    assert info.value.message == message


def test_app_constraints_fixture_is_valid() -> None:
    for field, op, *rest in APP_CONSTRAINTS:
        operators()[op].validate(field, rest[0] if rest else None)


APP_CONSTRAINTS = [
    ["hostname", "UNIQUE"],
    ["rack_id", "GROUP_BY", "3"],
    ["rack_id", "MAX_PER", "2"],
    ["zone", "LIKE", "us-east-1[a-c]"],
    ["node_type", "UNLIKE", "gpu|spot"],
    ["os", "IS", "linux"],
    ["datacenter", "CLUSTER", "dc1"],
]
