"""Whatever bytes or TOML the loader is fed, it raises only ConfigError."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.errors import ConfigError
from dispatcher.table import Config, parse_config
from tests.configs import MINIMAL

KEYS = ["dispatcher", "sender", "helpdesk", "affected_services", "windows", "channels",
        "timezone", "contacts", "templates", "ledger", "catch_up_minutes", "organisation",
        "service", "website", "name", "phone", "hours", "note", "number", "id", "title", "start",
        "end", "impact", "impact_detail", "notify", "reserve", "audience", "backend", "path",
        "max_segments", "fax", "email", "sms", "broadcast", "none", "x"]
WORDS = ["broadcast", "none", "fax", "email", "sms", "outbox", "smtp", "Asia/Tokyo", "UTC",
         "", "3", "w3", "emoney", "Mars/Phobos", "../..", "\x00"]

offsets = st.sampled_from([None, UTC, timezone(timedelta(hours=9)),
                           timezone(timedelta(hours=-5, minutes=-30))])
datetimes = st.builds(lambda d, tz: d.replace(tzinfo=tz),
                      st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1)),
                      offsets)
scalars = st.one_of(st.integers(-3, 2**40), st.booleans(), st.text(max_size=12),
                    st.sampled_from(WORDS), datetimes, st.dates(min_value=date(1970, 1, 1)),
                    st.times(), st.floats(allow_nan=False))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(KEYS), inner, max_size=6)),
    max_leaves=30,
)
window_tables = st.dictionaries(st.sampled_from(KEYS), values, max_size=12)
documents = st.fixed_dictionaries(
    {},
    optional={
        "dispatcher": st.dictionaries(st.sampled_from(KEYS), values, max_size=5),
        "sender": st.dictionaries(st.sampled_from(KEYS), values, max_size=4),
        "helpdesk": st.dictionaries(st.sampled_from(KEYS), values, max_size=4),
        "windows": st.lists(window_tables, max_size=4),
        "channels": st.dictionaries(st.sampled_from(KEYS), values, max_size=4),
        "affected_services": st.lists(st.dictionaries(st.sampled_from(KEYS), values), max_size=3),
    },
)


def load(raw: bytes) -> Config | None:
    try:
        return parse_config(raw, Path("fuzz/config.toml"))
    except ConfigError as exc:
        assert exc.problems
        assert all(str(p).startswith("fuzz/config.toml") for p in exc.problems)
        return None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes(raw: bytes) -> None:
    load(raw)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60), st.integers(0, len(MINIMAL)))
def test_random_bytes_spliced_into_a_valid_config(noise: bytes, at: int) -> None:
    text = MINIMAL.encode()
    load(text[:at] + noise + text[at:])


@settings(max_examples=400, deadline=None)
@given(documents)
def test_random_toml_documents(document: dict[str, Any]) -> None:
    load(tomli_w.dumps(document).encode())


@settings(max_examples=300, deadline=None)
@given(window_tables, st.integers(0, 1))
def test_random_window_added_to_a_valid_config(window: dict[str, Any], copies: int) -> None:
    extra = tomli_w.dumps({"windows": [window] * (copies + 1)})
    load((MINIMAL + "\n" + extra).encode())


def test_the_valid_config_itself_loads() -> None:
    config = load(MINIMAL.encode())
    assert config is not None and config.windows[0].id == "w3"

