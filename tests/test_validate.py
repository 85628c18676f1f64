"""The shared checks on user-given values: clean values pass, bad ones name themselves and what is allowed."""

from __future__ import annotations

from datetime import timedelta

import pytest

from copythat_ops.errors import InputError
from copythat_ops.validate import choices, duration, number


@pytest.mark.parametrize(
    ("given", "expected"),
    [("30 min", timedelta(minutes=30)), ("2h", timedelta(hours=2)), ("1 day", timedelta(days=1)),
     ("00:30:00", timedelta(minutes=30)), (90, timedelta(seconds=90)), (timedelta(seconds=5), timedelta(seconds=5)), ("0s", timedelta(0))],
)
def test_durations_in_the_forms_people_type(given, expected):
    assert duration(given) == expected


@pytest.mark.parametrize(("given", "says"), [("-5 min", "negative"), ("soon", "not a duration"), ("", "not a duration"), (True, "must be a duration"), (-1, "negative")])
def test_bad_durations_name_the_value(given, says):
    with pytest.raises(InputError, match=says) as caught:
        duration(given, name="older_than")
    assert "older_than" in str(caught.value) and "Fix:" in str(caught.value)


def test_choices_list_what_is_allowed():
    assert choices("failed", ["pending", "failed"], name="status") == ["failed"]
    assert choices(None, ["pending"], name="status") is None
    with pytest.raises(InputError) as caught:
        choices(["failed", "exploded"], ["pending", "failed"], name="status")
    assert "'exploded'" in str(caught.value) and "pending, failed" in str(caught.value)
    assert "'failed'" not in caught.value.problem


@pytest.mark.parametrize(("given", "kwargs", "says"), [("90", {}, "must be a number"), (-1, {}, "out of range"), (101, {"maximum": 100}, "out of range"), (1.5, {"integer": True}, "whole number"), (False, {}, "must be")])
def test_numbers_of_the_wrong_type_or_sign(given, kwargs, says):
    with pytest.raises(InputError, match=says):
        number(given, name="warn_percent", **kwargs)
    assert number(90, name="warn_percent", maximum=100) == 90
