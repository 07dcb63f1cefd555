from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from dispatcher.errors import ContactError, Problem
from dispatcher.table import (
    Channel,
    Contact,
    ContactsRead,
    KnownContacts,
    in_audience,
    load_contacts,
    parse_contacts_file,
    read_contacts,
)
from tests.helpers import CONTACTS_HEADER, ROOT


def parse(body: str, header: str = CONTACTS_HEADER) -> tuple[list[str], list[str]]:
    """The ids of the valid contacts, and every problem: the file's, and its bad rows'."""
    found = parse_contacts_file((header + body).encode(), "c.csv")
    return [c.id for c in found.contacts], [str(p) for p in every_problem(found)]


def every_problem(found: ContactsRead) -> list[Problem]:
    return [*found.problems, *(p for row in found.set_aside for p in row.problems)]


def test_shipped_contacts_load_in_both_encodings() -> None:
    contacts = load_contacts(ROOT / "contacts")
    assert len(contacts) >= 30
    assert (ROOT / "contacts" / "osaka.csv").read_bytes().decode("cp932")
    osaka = next(c for c in contacts if c.id == "M0021")
    assert osaka.merchant == "なにわ串カツ"
    assert osaka.fax == "+81665712861" and osaka.sms == "+819010215273"
    assert "emoney" in osaka.tags


def test_numbers_are_normalised_to_e164() -> None:
    found = parse_contacts_file(
        (CONTACTS_HEADER
         + "A1,店,担当,０３－１２３４－５６７８,a@example.jp,+81 90 1234 5678,x\n").encode(),
        "c.csv")
    contacts = found.contacts
    assert every_problem(found) == []
    assert (contacts[0].fax, contacts[0].sms) == ("+81312345678", "+819012345678")


def test_utf8_with_bom_and_cp932_read_the_same() -> None:
    row = CONTACTS_HEADER + "A1,さくら書店,佐藤,03-1234-5678,,,emoney\n"
    from_bom = parse_contacts_file(b"\xef\xbb\xbf" + row.encode(), "bom.csv").contacts
    from_cp932 = parse_contacts_file(row.encode("cp932"), "sjis.csv").contacts
    assert from_bom[0].merchant == from_cp932[0].merchant == "さくら書店"


def test_every_bad_row_is_reported_with_file_line_and_column() -> None:
    ids, problems = parse(
        "A1,店,担当,03-1234-5678,a@example.jp,090-1234-5678,emoney\n"
        "A2,店,担当,03-12,a@example.jp,,\n"
        "A3,店,担当,,not-an-address,,\n"
        "A4,店,担当,,,,emoney\n"
        "A5,店,担当,,,03-1234-5678,\n"
        ",店,担当,03-1234-5678,,,\n"
    )
    assert ids == ["A1"]
    assert problems == [
        "c.csv:3: fax: '03-12' is not a valid phone number",
        "c.csv:4: email: 'not-an-address': An email address must have an @-sign.",
        "c.csv:5: fax/email/sms/phone: a contact needs at least one address",
        "c.csv:6: sms: '03-1234-5678' is not a mobile number, so it cannot receive SMS",
        "c.csv:7: id: missing",
    ]


def test_quoted_field_spanning_lines_keeps_line_numbers_right() -> None:
    _, problems = parse('A1,"二行の\n店名",担当,03-1234-5678,,,\nA2,店,担当,abc,,,\n')
    assert problems == ["c.csv:4: fax: 'abc' is not a phone number"]


def test_header_missing_columns() -> None:
    _, problems = parse("A1,店,03-1234-5678\n", header="id,merchant,facsimile\n")
    assert problems == ["c.csv:1: missing column(s) fax, email, sms (expected id, merchant, "
                        "name, fax, email, sms, tags, phone)"]
    _, unnamed = parse("A1,店,03-1234-5678,,,x\n", header="id,merchant,fax,email,sms,\n")
    assert unnamed == ["c.csv:1: column 6 has no name"]


def test_row_with_more_fields_than_columns() -> None:
    _, problems = parse("A1,店,担当,03-1234-5678,,,emoney,extra\n")
    assert problems == ["c.csv:2: 8 fields, but the header names 7 columns"]


def test_mail_header_injection_in_address_is_rejected() -> None:
    _, problems = parse('A1,店,担当,,"a@example.jp\r\nBcc: b@example.jp",,\n')
    assert len(problems) == 1 and problems[0].startswith("c.csv:2: email:")


def test_full_width_mail_address_is_rejected() -> None:
    _, problems = parse("A1,店,担当,,ｔａｒｏ@example.jp,,\n")
    assert len(problems) == 1 and problems[0].startswith("c.csv:2: email:")


def test_file_that_is_neither_utf8_nor_cp932() -> None:
    problems = parse_contacts_file(b"id,merchant\n\xff\xfe\xfd\x80\x81\n", "bad.csv").problems
    assert problems[0].where == "bad.csv" and "neither UTF-8 nor CP932" in problems[0].what


def test_duplicate_ids_across_files_name_both_places(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text(CONTACTS_HEADER + "A1,店,担当,03-1234-5678,,,\n",
                                    encoding="utf-8")
    (tmp_path / "b.csv").write_text(CONTACTS_HEADER + "X,店,担当,03-1234-5678,,,\nA1,別,,,"
                                    "a@example.jp,,\n", encoding="utf-8")
    found = read_contacts(tmp_path)
    assert [c.source for c in found.contacts] == [f"{tmp_path}/a.csv:2", f"{tmp_path}/b.csv:2"]
    [second] = found.set_aside
    assert (second.source, second.merchant, second.typed) == (
        f"{tmp_path}/b.csv:3", "別", (("email", "a@example.jp"),))
    assert second.reason == f"id: 'A1' is already used at {tmp_path}/a.csv:2"


def test_missing_contacts_folder(tmp_path: Path) -> None:
    with pytest.raises(ContactError, match="contacts: no such folder"):
        load_contacts(tmp_path / "contacts")


def test_folder_without_csv_files(tmp_path: Path) -> None:
    with pytest.raises(ContactError, match=r"holds no \*\.csv"):
        load_contacts(tmp_path)


def test_audience_selects_by_tag_and_empty_means_everyone() -> None:
    contacts = load_contacts(ROOT / "contacts")
    emoney = in_audience(contacts, ["emoney"])
    assert 0 < len(emoney) < len(contacts)
    assert all("emoney" in c.tags for c in emoney)
    assert len(in_audience(contacts, [])) == len(contacts)


def test_address_by_channel() -> None:
    contacts = parse_contacts_file(
        (CONTACTS_HEADER + "A1,店,担当,03-1234-5678,a@example.jp,,\n").encode(), "c.csv").contacts
    assert contacts[0].address(Channel.EMAIL) == "a@example.jp"
    assert contacts[0].address(Channel.SMS) is None


ROWS = st.sampled_from([
    "{id},さくら書店,佐藤,03-1234-5678,{id}@example.jp,090-1234-5678,emoney",
    "{id},ひまわり商店,,,{id}@example.jp,,emoney kiosk",
    "{id},Books & Co.,\"Sato, K\",+81 3 1234 5678,,+81 90 1234 5678,",
    "{id},番号違い,鈴木,03-1234,,,emoney",  # not a valid fax number
    "{id},携帯なし,田中,,,03-1234-5678,",  # a landline cannot receive SMS
    ",名無し,,03-1234-5678,,,",  # no id
])


class Reloads(RuleBasedStateMachine):
    """A folder of contacts files edited at random and read again after each edit: what a
    reload with the last load's KnownContacts reads is what a fresh load reads, and a row
    left as it was is taken as it was, not validated again."""

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="contacts-"))
        self.files: dict[str, list[str]] = {"a.csv": []}
        self.known = KnownContacts()
        self.serial = 0
        self.last: dict[str, Contact] = {}

    def teardown(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    @rule(file=st.sampled_from(["a.csv", "b.csv"]), row=ROWS, at=st.integers(0, 20))
    def add_row(self, file: str, row: str, at: int) -> None:
        self.serial += 1
        rows = self.files.setdefault(file, [])
        rows.insert(at % (len(rows) + 1), row.format(id=f"C{self.serial}"))

    @rule(file=st.sampled_from(["a.csv", "b.csv"]), at=st.integers(0, 20))
    def remove_row(self, file: str, at: int) -> None:
        rows = self.files.get(file, [])
        if rows:
            rows.pop(at % len(rows))

    @rule(file=st.sampled_from(["a.csv", "b.csv"]), at=st.integers(0, 20), row=ROWS)
    def change_row(self, file: str, at: int, row: str) -> None:
        rows = self.files.get(file, [])
        if rows:
            index = at % len(rows)
            rows[index] = row.format(id=rows[index].split(",")[0] or "C0")

    @rule()
    def remove_file(self) -> None:
        self.files.pop("b.csv", None)

    @invariant()
    def a_reload_reads_what_a_fresh_load_reads(self) -> None:
        for stale in self.folder.glob("*.csv"):
            if stale.name not in self.files:
                stale.unlink()
        for name, rows in self.files.items():
            (self.folder / name).write_text(CONTACTS_HEADER + "".join(f"{r}\n" for r in rows),
                                            encoding="utf-8")
        paths = sorted(self.folder.glob("*.csv"))
        found, fresh = self.known.read(paths), KnownContacts().read(paths)
        contacts = found.contacts
        assert contacts == fresh.contacts and found.set_aside == fresh.set_aside
        assert [str(p) for p in every_problem(found)] == [str(p) for p in every_problem(fresh)]
        # every row is a contact or set aside, or its file is refused whole
        rows = sum(len(r) for r in self.files.values())
        refused = {p.where for p in found.problems}
        kept = sum(len(self.files[n]) for n in self.files if str(self.folder / n) not in refused)
        assert len(contacts) + len(found.set_aside) == kept <= rows
        for contact in contacts:
            before = self.last.get(contact.source)
            if before is not None and before == contact:
                assert before is contact, f"{contact.source} was validated again"
        self.last = {c.source: c for c in contacts}


test_a_reload_reads_what_a_fresh_load_reads = Reloads.TestCase
Reloads.TestCase.settings = settings(max_examples=40, stateful_step_count=12, deadline=None)


def many(count: int, start: int = 0) -> str:
    return "".join(f"B{n},店{n},担当,03-1234-{n % 10000:04d},b{n}@example.jp,,emoney\n"
                   for n in range(start, start + count))


def test_a_bad_row_among_many_is_set_aside_and_the_rest_load(tmp_path: Path) -> None:
    bad = "X1,しらかば商店,鈴木,,ｘ＠example.jp,,emoney\n"
    (tmp_path / "a.csv").write_text(CONTACTS_HEADER + many(150) + bad + many(49, 150),
                                    encoding="utf-8")
    found = read_contacts(tmp_path)
    assert len(found.contacts) == 199 and found.problems == []
    [row] = found.set_aside
    assert (row.source, row.id, row.merchant, row.tags) == (
        f"{tmp_path}/a.csv:152", "X1", "しらかば商店", frozenset({"emoney"}))
    assert row.reason.startswith("email: 'ｘ＠example.jp': ")
    assert row.typed == (("email", "ｘ＠example.jp"),)


def test_a_file_with_more_bad_rows_than_its_share_is_refused_whole(tmp_path: Path) -> None:
    bad = "".join(f"X{n},店,担当,03-12,,,\n" for n in range(3))
    (tmp_path / "a.csv").write_text(CONTACTS_HEADER + many(197) + bad, encoding="utf-8")
    with pytest.raises(ContactError) as caught:
        read_contacts(tmp_path)  # 3 of 200 rows: more than 1 % (2)
    problems = [str(p) for p in caught.value.problems]
    assert problems[0] == (f"{tmp_path}/a.csv: 3 of its 200 rows are invalid, more than "
                           "[dispatcher] invalid_rows_percent = 1 allows (2): the whole file "
                           "is refused, it is probably not the contacts file meant")
    assert problems[1:] == [f"{tmp_path}/a.csv:{n}: fax: '03-12' is not a valid phone number"
                            for n in (199, 200, 201)]
    assert len(read_contacts(tmp_path, invalid_rows_percent=2).set_aside) == 3
    (tmp_path / "a.csv").write_text(CONTACTS_HEADER + many(3) + bad[:15], encoding="utf-8")
    assert len(read_contacts(tmp_path).set_aside) == 1  # one bad row is always allowed


def test_extra_columns_are_kept_for_the_templates() -> None:
    found = parse_contacts_file(
        "id,merchant,fax,email,sms,memo,担当部署\nA1,店,03-1234-5678,,,夜間は携帯,経理\n"
        .encode(), "c.csv")
    [contact] = found.contacts
    assert contact.extra == {"memo": "夜間は携帯", "担当部署": "経理"}
    assert every_problem(found) == []


def test_a_name_as_excel_mangled_it_is_a_warning_naming_the_row() -> None:
    found = parse_contacts_file(
        (CONTACTS_HEADER + "A1,?田酒店,佐藤,03-1234-5678,,,\nA2,吉田酒店,,03-1234-5678,,,\n")
        .encode("cp932"), "c.csv")
    assert [c.id for c in found.contacts] == ["A1", "A2"]
    [warning] = found.warnings
    assert warning.startswith("c.csv:2: merchant: '?田酒店' holds '?', which Excel writes")


def test_a_stale_copy_of_the_contacts_file_is_refused_not_preferred(tmp_path: Path) -> None:
    """Its ids are all taken by the copy that sorts first: as duplicates they count toward
    the real file's share of bad rows, and the table is refused, not sent to old addresses."""
    (tmp_path / "contacts - コピー.csv").write_text(CONTACTS_HEADER + many(200),
                                                   encoding="utf-8")
    fresh = many(200).replace("@example.jp", "@new.example.jp")
    (tmp_path / "contacts.csv").write_text(CONTACTS_HEADER + fresh, encoding="utf-8")
    with pytest.raises(ContactError) as caught:
        read_contacts(tmp_path)
    assert str(caught.value.problems[0]).startswith(
        f"{tmp_path}/contacts.csv: 200 of its 200 rows are invalid")


def test_zero_percent_allows_no_bad_row(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text(CONTACTS_HEADER + many(3) + "X,店,担当,03-12,,,\n",
                                    encoding="utf-8")
    with pytest.raises(ContactError):
        read_contacts(tmp_path, invalid_rows_percent=0)


def test_a_row_cut_short_still_has_every_extra_column() -> None:
    found = parse_contacts_file(
        "id,merchant,fax,email,sms,memo\nA1,店,03-1234-5678,,,夜間\nA2,店,03-1234-5678\n"
        .encode(), "c.csv")
    assert [c.extra for c in found.contacts] == [{"memo": "夜間"}, {"memo": ""}]


def test_a_misspelt_column_is_a_warning_naming_the_known_one() -> None:
    found = parse_contacts_file(
        "id,merchant,fax,email,sms,tag\nA1,店,03-1234-5678,,,emoney\n".encode(), "c.csv")
    [contact] = found.contacts
    assert contact.tags == frozenset() and contact.extra == {"tag": "emoney"}
    assert found.warnings == ["c.csv:1: column 'tag' is not one of id, merchant, name, fax, "
                              "email, sms, tags, phone: kept for the templates as "
                              "contact.extra; did you mean 'tags'?"]


def test_a_control_character_sets_the_row_aside_and_is_never_shown_raw() -> None:
    """ESC or BEL in a name would clear or retitle the operator's terminal when `preview`,
    `status` or `unreached` print it; a line break typed in a cell is a space."""
    found = parse_contacts_file(
        (CONTACTS_HEADER + "A1,\x1b]0;owned\x07店,担当,03-1234-5678,,,\n"
         'A2,"二行の\n店名",担当,03-1234-5678,,,\n').encode(), "c.csv")
    [row] = found.set_aside
    assert row.reason == ("merchant: holds the control character U+001B, which no name or "
                          "address has; correct the row")
    assert "\x1b" not in row.merchant and "\x07" not in row.merchant
    assert [c.merchant for c in found.contacts] == ["二行の 店名"]
