"""Settings come from Django settings, else the environment, else the default."""

import math
import typing

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasklog import conf
from tasklog.conf import OPTIONS, SettingError, settings

NUMBER_PARSERS = [
    conf.non_negative_int,
    conf.positive_int,
    conf.positive_float,
    conf.days,
    conf.whole_seconds,
    conf.flush_interval,
]


def test_defaults(monkeypatch):
    for name in OPTIONS:
        monkeypatch.delenv(f"CELERY_TASKLOG_{name}", raising=False)
    assert settings.MAX_LINES == 1000
    assert settings.RETENTION_DAYS == 30
    assert settings.FLUSH_INTERVAL == 0.2
    assert settings.ENABLED is True
    assert settings.DATABASE == "default"
    assert settings.PRUNE_SCHEDULE == "30 3 * * *"


def test_the_environment_is_read_when_the_setting_is_absent(monkeypatch):
    monkeypatch.setenv("CELERY_TASKLOG_MAX_LINES", "250")
    monkeypatch.setenv("CELERY_TASKLOG_ENABLED", "off")
    monkeypatch.setenv("CELERY_TASKLOG_FLUSH_INTERVAL", "0.5")
    assert settings.MAX_LINES == 250
    assert settings.ENABLED is False
    assert settings.FLUSH_INTERVAL == 0.5


def test_the_django_setting_wins_over_the_environment(monkeypatch, django_settings):
    monkeypatch.setenv("CELERY_TASKLOG_MAX_LINES", "250")
    django_settings.CELERY_TASKLOG_MAX_LINES = 40
    assert settings.MAX_LINES == 40


def test_an_invalid_value_falls_back_to_the_default_at_run_time(django_settings):
    django_settings.CELERY_TASKLOG_MAX_LINES = "abc"
    assert settings.MAX_LINES == 1000


def test_an_empty_schedule_switches_the_periodic_prune_off(django_settings):
    django_settings.CELERY_TASKLOG_PRUNE_SCHEDULE = None
    assert settings.PRUNE_SCHEDULE is None


def test_unknown_attributes_are_errors():
    with pytest.raises(AttributeError):
        settings.NO_SUCH_SETTING  # noqa: B018


@pytest.fixture
def django_settings(settings):
    return settings


@pytest.mark.abuse
@pytest.mark.parametrize("parse", NUMBER_PARSERS, ids=lambda parse: parse.__name__)
@given(
    value=st.one_of(
        st.text(),
        st.floats(),
        st.integers(),
        st.integers(min_value=-(10**500), max_value=10**500),
        st.from_regex(r"\A\s*[-+]?(\d{1,30}|nan|inf|infinity)(\.\d*)?(e[-+]?\d{1,4})?\s*\Z"),
    )
)
def test_a_number_setting_is_finite_and_bounded_or_refused_with_a_setting_error(parse, value):
    try:
        number = parse(value)
    except SettingError as error:
        assert error.check_id in {"tasklog.E002", "tasklog.E003"}
        assert len(str(error)) < 200
        return
    assert math.isfinite(number)
    assert 0 <= number <= conf.MAX_COUNT


def test_a_number_setting_at_its_bound_is_accepted_and_one_above_is_refused(django_settings):
    django_settings.CELERY_TASKLOG_RETENTION_DAYS = conf.MAX_DAYS
    assert settings.RETENTION_DAYS == conf.MAX_DAYS
    django_settings.CELERY_TASKLOG_RETENTION_DAYS = conf.MAX_DAYS + 1
    with pytest.raises(SettingError, match="must be at most 36500"):
        settings.parsed("RETENTION_DAYS")
    assert settings.RETENTION_DAYS == 30  # the default, while the check reports the error


def test_nan_flush_interval_falls_back_to_the_default_at_run_time(django_settings):
    django_settings.CELERY_TASKLOG_FLUSH_INTERVAL = float("nan")
    assert settings.FLUSH_INTERVAL == 0.2


def test_every_option_is_a_typed_property_of_the_settings_and_nothing_else_is():
    properties = {
        name for name, value in vars(conf.Settings).items() if isinstance(value, conf.Setting)
    }
    assert properties == set(OPTIONS)
    assert typing.get_type_hints(conf.Settings)["BATCH_SIZE"] == conf.Setting[int]
    with pytest.raises(AttributeError):
        settings.NOT_AN_OPTION  # noqa: B018


def test_a_property_naming_no_option_is_refused_when_the_class_is_made():
    with pytest.raises(Exception) as refused:  # Python 3.11 wraps it in a RuntimeError

        class Misnamed(conf.Settings):
            NOT_AN_OPTION: conf.Setting[int] = conf.Setting()

    cause = refused.value.__cause__ or refused.value
    assert isinstance(cause, TypeError)
    assert "Settings.NOT_AN_OPTION names no option" in str(cause)


def test_each_access_reads_the_setting_again(django_settings):
    django_settings.CELERY_TASKLOG_BATCH_SIZE = 7
    assert settings.BATCH_SIZE == 7
    django_settings.CELERY_TASKLOG_BATCH_SIZE = "8"
    assert settings.BATCH_SIZE == 8
