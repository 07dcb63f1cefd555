from datetime import datetime

import pytest

from dispatcher.table import jp_clock, jp_datetime, jp_range
from tests.helpers import TOKYO


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=TOKYO)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (at(2021, 5, 30, 22, 30), at(2021, 5, 31, 3, 0), "2021年5月30日(日) PM10:30～翌AM3:00"),
        (at(2021, 6, 27, 22, 30), at(2021, 6, 28, 1, 0), "2021年6月27日(日) PM10:30～翌AM1:00"),
        (at(2021, 7, 19, 1, 0), at(2021, 7, 19, 2, 0), "2021年7月19日(月) AM1:00～AM2:00"),
        (at(2021, 7, 19, 4, 0), at(2021, 7, 19, 7, 30), "2021年7月19日(月) AM4:00～AM7:30"),
        (at(2021, 6, 30, 22, 30), at(2021, 7, 1, 1, 0), "2021年6月30日(水) PM10:30～翌AM1:00"),
        (at(2021, 8, 21, 22, 0), at(2021, 8, 23, 6, 0),
         "2021年8月21日(土) PM10:00～2021年8月23日(月) AM6:00"),
    ],
)
def test_ranges_read_as_the_seed_writes_them(start: datetime, end: datetime, expected: str) -> None:
    assert jp_range(start, end) == expected


def test_midnight_and_noon_follow_japanese_usage() -> None:
    assert jp_clock(at(2021, 7, 19, 0, 5)) == "AM0:05"
    assert jp_clock(at(2021, 7, 19, 12, 0)) == "PM0:00"
    assert jp_clock(at(2021, 7, 19, 23, 59)) == "PM11:59"


def test_datetime_has_weekday_in_brackets() -> None:
    assert jp_datetime(at(2021, 8, 23, 1, 0)) == "2021年8月23日(月) AM1:00"
