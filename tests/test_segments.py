import pytest

from dispatcher.render import Encoding, count_segments


@pytest.mark.parametrize(("text", "encoding", "units", "count"), [
    ("", Encoding.GSM7, 0, 1),
    ("a" * 160, Encoding.GSM7, 160, 1),
    ("a" * 161, Encoding.GSM7, 161, 2),
    ("a" * 306, Encoding.GSM7, 306, 2),
    ("a" * 307, Encoding.GSM7, 307, 3),
    ("€" * 80, Encoding.GSM7, 160, 1),
    ("{" * 81, Encoding.GSM7, 162, 2),
    ("あ" * 70, Encoding.UCS2, 70, 1),
    ("あ" * 71, Encoding.UCS2, 71, 2),
    ("あ" * 134, Encoding.UCS2, 134, 2),
    ("あ" * 135, Encoding.UCS2, 135, 3),
    ("a" * 69 + "あ", Encoding.UCS2, 70, 1),
    ("😀" * 35, Encoding.UCS2, 70, 1),
    ("😀" * 36, Encoding.UCS2, 72, 2),
])
def test_segments(text: str, encoding: Encoding, units: int, count: int) -> None:
    segments = count_segments(text)
    assert (segments.encoding, segments.units, segments.count) == (encoding, units, count)


def test_description_names_encoding_and_units() -> None:
    assert str(count_segments("あ" * 71)) == "2 segment(s), UCS-2, 71 UTF-16 units"
