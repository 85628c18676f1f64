"""The shared checks on user-given values: clean values pass, bad ones name themselves and what is allowed."""

from __future__ import annotations

from datetime import timedelta

import pytest

from copythat_ops.errors import ConfigError, InputError
from copythat_ops.migrations import alembic_config, lock_timeout
from copythat_ops.validate import choices, duration, number


@pytest.mark.parametrize(
    ("given", "expected"),
    [("30 min", timedelta(minutes=30)), ("2h", timedelta(hours=2)), ("1 day", timedelta(days=1)),
     ("00:30:00", timedelta(minutes=30)), ("1h30m", timedelta(minutes=90)), (timedelta(seconds=5), timedelta(seconds=5)), ("0s", timedelta(0)),
     ("0", timedelta(0)), (0, timedelta(0))],
)
def test_durations_in_the_forms_people_type(given, expected):
    assert duration(given) == expected


@pytest.mark.parametrize(("given", "says"), [("-5 min", "negative"), ("soon", "not a duration"), ("", "not a duration"), (True, "must be a duration"), (-1, "negative"), (None, "must be a duration")])
def test_bad_durations_name_the_value(given, says):
    with pytest.raises(InputError, match=says) as caught:
        duration(given, name="older_than")
    assert "older_than" in str(caught.value) and "Fix:" in str(caught.value)


@pytest.mark.parametrize("given", ["30", "5", " 30 ", "1.5", 30, 90.0, "1e3"])
def test_a_number_without_a_unit_is_refused_naming_the_fix(given):
    """A bare number used to be read as nanoseconds, i.e. zero: `older_than="5"` matched every job."""
    with pytest.raises(InputError) as caught:
        duration(given, name="older_than")
    number = str(given).strip()
    assert str(caught.value) == f"older_than {given!r} has no unit. Fix: give a unit, e.g. {number}min or {number}s"
    assert caught.value.params == ("older_than",)


@pytest.mark.parametrize("given", ["-5", "-5min", -30, "-00:10:00"])
def test_a_negative_duration_is_refused(given):
    with pytest.raises(InputError, match=r"older_than .* is negative\. Fix: give a positive duration"):
        duration(given, name="older_than")


def test_zero_is_refused_only_when_a_positive_duration_is_needed():
    assert duration("0s", name="freq") == timedelta(0)
    with pytest.raises(InputError, match="freq '0s' is zero"):
        duration("0s", name="freq", positive=True)


def test_choices_list_what_is_allowed():
    assert choices("failed", ["pending", "failed"], name="status") == ["failed"]
    assert choices(None, ["pending"], name="status") is None
    assert choices(["failed", "pending", "failed"], ["pending", "failed"], name="status") == ["failed", "pending"]  # each once
    with pytest.raises(InputError) as caught:
        choices(["failed", "exploded"], ["pending", "failed"], name="status")
    assert "'exploded'" in str(caught.value) and "pending, failed" in str(caught.value)
    assert "'failed'" not in caught.value.problem


@pytest.mark.parametrize(("given", "kwargs", "says"), [("90", {}, "must be a number"), (-1, {}, "out of range"), (101, {"maximum": 100}, "out of range"), (1.5, {"integer": True}, "whole number"), (False, {}, "must be")])
def test_numbers_of_the_wrong_type_or_sign(given, kwargs, says):
    with pytest.raises(InputError, match=says):
        number(given, name="warn_percent", **kwargs)
    assert number(90, name="warn_percent", maximum=100) == 90


@pytest.mark.parametrize(("given", "says"), [("5", "'5' has no unit. Fix: give a unit, e.g. 5s or 5ms"), ("-5s", "'-5s' is not a duration")])
def test_the_migration_lock_timeout_in_alembic_ini_needs_a_unit_too(given, says):
    cfg = alembic_config()
    cfg.set_main_option("lock_timeout", given)
    with pytest.raises(ConfigError, match=f"^alembic.ini lock_timeout {says}"):
        lock_timeout(cfg)
    cfg.set_main_option("lock_timeout", "500ms")
    assert lock_timeout(cfg) == "500ms"
