from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatcher.errors import ArgumentError, ConfigError, TemplateError
from dispatcher.publish import entries
from dispatcher.render import (
    Message,
    Renderer,
    build_email,
    build_fax_email,
    check_notice,
    check_rendering,
    count_segments,
    interrupted_warnings,
    messages_for,
    readable,
)
from dispatcher.table import (
    Channel,
    Config,
    Contact,
    EndNotice,
    Phase,
    Window,
    build_notice,
    find_window,
    load_config,
    load_inputs,
    possible_notices,
)
from tests.helpers import TOKYO

SENT_AT = datetime(2021, 7, 19, 1, 0, tzinfo=TOKYO)


def contact(merchant: str = "さくら書店", name: str = "佐藤", contact_id: str = "C1") -> Contact:
    return Contact(contact_id, merchant, name, "+81312345678", "a@example.jp", "+819012345678",
                   frozenset({"emoney"}), "c.csv:2")


@pytest.fixture
def config(project: Path) -> Config:
    return load_config(project)


@pytest.fixture
def renderer(config: Config) -> Renderer:
    return Renderer(config.settings.templates_dir, config)


def window3(config: Config) -> Window:
    return find_window(config.windows, "3")


@pytest.mark.parametrize("phase", list(Phase))
@pytest.mark.parametrize("channel", list(Channel))
def test_every_shipped_template_names_the_slot_and_the_helpdesk(
        config: Config, renderer: Renderer, phase: Phase, channel: Channel) -> None:
    window = replace(window3(config), end_notice=EndNotice.CONFIRMED)  # it can overrun
    notice = next(n for n in possible_notices(window) if n.phase is phase
                  and (phase is not Phase.END or n.report is None)
                  and (phase is not Phase.REMINDER or n.lead == timedelta(hours=1)))
    message = renderer.render(notice, contact(), channel, SENT_AT)
    text = f"{message.subject or ''}\n{message.body}"
    assert "0120-220-766" in text
    assert "さくら書店" in text
    if channel is Channel.VOICE:  # said, not written: 7月19日、月曜日, 午前2時30分
        _check_spoken(phase, text)
        return
    if channel is not Channel.SMS:  # an extension names its new end (30 min later here)
        end = "AM2:30" if phase is Phase.EXTENDED else "AM2:00"
        assert f"2021年7月19日(月) AM1:00～{end}" in text
    if phase in (Phase.POSTPONED, Phase.ANNOUNCE):
        assert "8/23(月)" in text or "2021年8月23日(月) AM1:00～AM2:00" in text
    if phase is Phase.REMINDER:
        assert "1時間後" in text
    if phase is Phase.EXTENDED:
        assert "延長" in text and "AM2:30" in text.replace("<strong>", "")
    if phase is Phase.UPDATE:
        assert "作業は順調に進んでおります。" in text  # check's sample
    if phase is Phase.OVERRUN:
        assert "AM2:00" in text and "過ぎ" in text


def _check_spoken(phase: Phase, text: str) -> None:
    assert "7月19日、月曜日" in text and "AM" not in text and "～" not in text
    expected = {Phase.START: "午前1時から午前2時まで", Phase.REMINDER: "1時間後",
                Phase.POSTPONED: "8月23日、月曜日、午前1時から",
                Phase.EXTENDED: "午前2時30分に延長", Phase.UPDATE: "作業は順調に進んでおります。",
                Phase.OVERRUN: "午前2時を過ぎ", Phase.ANNOUNCE: "午前1時から午前2時まで",
                Phase.END: "終了しました", Phase.INTERRUPTED: "決まり次第お知らせします"}
    assert expected[phase] in text


@pytest.mark.parametrize(("service", "centre", "named"), [
    ("J-Mups", None, "J-Mups センター"),  # the shipped table: as the seed names it
    ("サンプルPay センター", None, "サンプルPay センター"),  # no word added to a value
    ("サンプルPay", "サンプル決済システム", "サンプル決済システム")])
@pytest.mark.parametrize("channel", list(Channel))
def test_the_notices_name_the_centre_as_configured_and_add_no_word_to_it(
        config: Config, service: str, centre: str | None, named: str, channel: Channel
        ) -> None:
    text = config.path.read_text(encoding="utf-8").replace(
        'service = "J-Mups"', f'service = "{service}"' + (
            f'\ncentre = "{centre}"' if centre else ""), 1)
    config.path.write_text(text, encoding="utf-8")
    mine = load_config(config.path)
    assert mine.sender.centre == named
    window = window3(mine)
    for phase in (Phase.START, Phase.POSTPONED, Phase.ANNOUNCE):
        notice = build_notice(window, window.planned, phase,
                              window.reserves[0] if phase is Phase.POSTPONED else None)
        message = Renderer(mine.settings.templates_dir, mine).render(
            notice, contact(), channel, SENT_AT)
        written = f"{message.subject or ''}\n{message.body}"
        assert "センター センター" not in written and "センターセンター" not in written
        if channel is not Channel.SMS:
            assert named in written, (phase, channel)


def test_each_window_names_only_the_services_its_own_work_stops(config: Config) -> None:
    """Window 3 names one of the table's services and one of its own; window 1 stops
    none: its notices leave the heading out. Without its own list, the table's."""
    text = config.path.read_text(encoding="utf-8")
    text = text.replace('audience = ["emoney"]', 'audience = ["emoney"]\naffected_services = '
                        '["各種電子マネーの開局処理", {name = "全取引", note = "深夜のみ"}]', 1)
    text = text.replace('notify = "none"', 'notify = "none"\naffected_services = []', 1)
    config.path.write_text(text, encoding="utf-8")
    mine = load_config(config.path)
    renderer = Renderer(mine.settings.templates_dir, mine)
    three, one = find_window(mine.windows, "3"), find_window(mine.windows, "1")
    assert [s.name for s in mine.services_of(three)] == ["各種電子マネーの開局処理", "全取引"]
    for channel in (Channel.EMAIL, Channel.FAX):
        own = renderer.render(build_notice(three, three.planned, Phase.START), contact(),
                              channel, SENT_AT).body
        assert "各種電子マネーの開局処理" in own and "全取引" in own and "深夜のみ" in own
        assert "各種電子マネー決済取引" not in own  # the table's, not named by window 3
        assert "クレジットカード" not in own
        none = renderer.render(build_notice(one, one.planned, Phase.START), contact(),
                               channel, SENT_AT).body
        assert "ご利用いただけないサービス" not in none and "開局処理" not in none
        assert "下記のサービス" not in none  # no sentence pointing at a list not there
    for channel in (Channel.SMS, Channel.VOICE):
        spoken = renderer.render(build_notice(one, one.planned, Phase.START), contact(),
                                 channel, SENT_AT).body
        assert "一部" not in spoken and "開始しました" in spoken
    two = find_window(mine.windows, "2")
    assert mine.services_of(two) == mine.affected_services and two.services is None
    published = {e.number: e.services for e in entries(mine, {}, SENT_AT)}
    assert published[3] == ("各種電子マネーの開局処理", "全取引") and published[1] == ()
    assert published[2] == tuple(s.name for s in mine.affected_services)
    with pytest.raises(ConfigError, match=r"windows\[3\]\.affected_services: .*each is"):
        config.path.write_text(text.replace('note = "深夜のみ"', 'memo = "x"'),
                               encoding="utf-8")
        load_config(config.path)


@pytest.mark.parametrize("channel", list(Channel))
def test_the_interrupted_notice_says_stopped_back_now_why_and_when_again(
        config: Config, renderer: Renderer, channel: Channel) -> None:
    window = window3(config)
    notice = replace(build_notice(window, window.planned, Phase.POSTPONED),
                     interrupted=True, reason="前提作業の遅延のため")
    message = renderer.render(notice, contact(), channel, SENT_AT)
    text = f"{message.subject or ''}\n{message.body}"
    assert "中断" in text and "通常通りご利用いただけます" in text
    assert "予定しておりました" not in text and "予定していた" not in text
    if channel is Channel.VOICE:
        assert "8月23日、月曜日、午前1時から" in text
    elif channel is Channel.SMS:  # two segments: no room for the operator's words
        assert "8/23(月) AM1:00～AM2:00" in text
        assert message.segments is not None and message.segments.count <= 2
    else:
        assert "2021年8月23日(月) AM1:00～AM2:00" in text
    if channel is not Channel.SMS:
        assert "前提作業の遅延のため、作業を中断" in text
        plain = replace(notice, reason="")
        assert "作業中に問題が発生したため" in renderer.render(plain, contact(), channel,
                                                             SENT_AT).body


def test_templates_that_predate_the_interrupted_notice_still_send_and_check_warns(
        config: Config, project: Path) -> None:
    """An upgrade that kept its own templates folder: the daemon must still start and
    postpone; the interruption is written with the postponed text, and `check` says so."""
    (project.parent / "templates" / "email" / "interrupted.txt.j2").unlink()
    inputs = load_inputs(project)
    renderer = Renderer.of(inputs)
    window = window3(inputs.config)
    notice = replace(build_notice(window, window.planned, Phase.POSTPONED), interrupted=True)
    body = renderer.render(notice, contact(), Channel.EMAIL, SENT_AT).body
    assert "下記の予備日に改めて実施" in body
    audiences = {window.id: [contact()]}
    assert check_rendering(renderer, [window], audiences, 2, SENT_AT) == []
    [warning] = interrupted_warnings(inputs)
    assert "templates/email/interrupted.txt.j2 is missing" in warning


def test_email_subject_is_the_first_line(config: Config, renderer: Renderer) -> None:
    window = window3(config)
    message = renderer.render(build_notice(window, window.planned, Phase.END),
                              contact(), Channel.EMAIL, SENT_AT)
    assert message.subject == "【J-Mups】メンテナンス作業終了のご連絡（2021年7月19日(月)）"
    assert message.body.startswith("さくら書店 御中\n佐藤 様\n")


def test_sms_fits_two_segments_and_carries_its_count(config: Config, renderer: Renderer) -> None:
    window = window3(config)
    message = renderer.render(build_notice(window, window.planned, Phase.START),
                              contact(), Channel.SMS, SENT_AT)
    assert message.segments is not None and message.segments.count == 2
    assert "7/19(月) AM1:00～AM2:00" in message.body


@pytest.mark.parametrize("hostile", ["{{ 7*7 }}", "{% raw %}", "{{ contact.__class__ }}",
                                     "{# comment #}"])
def test_contact_fields_are_data_not_template_code(
        config: Config, renderer: Renderer, hostile: str) -> None:
    window = window3(config)
    notice = build_notice(window, window.planned, Phase.START)
    for channel in (Channel.EMAIL, Channel.SMS):
        assert hostile in renderer.render(notice, contact(merchant=hostile), channel, SENT_AT).body
    fax = renderer.render(notice, contact(merchant=hostile), Channel.FAX, SENT_AT).body
    assert f"{hostile} 御中" in fax
    assert "49" not in fax.split("御中")[0][-20:]


def test_fax_page_escapes_html_in_contact_fields(config: Config, renderer: Renderer) -> None:
    window = window3(config)
    notice = build_notice(window, window.planned, Phase.START)
    hostile = contact(merchant="<script>x</script>&")
    fax = renderer.render(notice, hostile, Channel.FAX, SENT_AT).body
    assert "&lt;script&gt;x&lt;/script&gt;&amp; 御中" in fax
    assert "<script>" not in fax


def test_line_breaks_in_contact_fields_cannot_add_mail_headers(
        config: Config, renderer: Renderer) -> None:
    window = window3(config)
    notice = build_notice(window, window.planned, Phase.START)
    hostile = contact(merchant="店\r\nBcc: victim@example.jp", name="佐藤\nX-Injected: 1")
    message = renderer.render(notice, hostile, Channel.EMAIL, SENT_AT)
    raw = build_email(message, "J-Mups <m@example.jp>", SENT_AT)
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Bcc"] is None and parsed["X-Injected"] is None
    assert sorted(parsed.keys()) == ["Auto-Submitted", "Content-Transfer-Encoding",
                                     "Content-Type", "Date", "From", "MIME-Version",
                                     "Subject", "To"]
    headers, _ = readable(raw)
    assert "To: 店 Bcc: victim@example.jp 佐藤 X-Injected: 1 <a@example.jp>" in headers


def write_template(renderer: Renderer, name: str, text: str) -> Path:
    path = renderer.templates_dir / name
    path.write_text(text, encoding="utf-8")
    return path


def test_unknown_variable_is_an_error_naming_file_and_line(
        config: Config, renderer: Renderer) -> None:
    path = write_template(renderer, "sms/end.txt.j2",
                          "{% extends 'sms/base.txt.j2' %}\n{% block text %}\n"
                          "終了 {{ window.finish_time }}{% endblock %}\n")
    window = window3(config)
    with pytest.raises(TemplateError) as caught:
        renderer.render(build_notice(window, window.planned, Phase.END), contact(),
                        Channel.SMS, SENT_AT)
    [problem] = caught.value.problems
    assert problem.where == f"{path}:3"
    assert "unknown variable" in problem.what and "finish_time" in problem.what


def test_syntax_error_names_file_and_line(config: Config, renderer: Renderer) -> None:
    path = write_template(renderer, "email/start.txt.j2", "Subject: x\n\n{% if %}\n")
    window = window3(config)
    with pytest.raises(TemplateError) as caught:
        renderer.render(build_notice(window, window.planned, Phase.START), contact(),
                        Channel.EMAIL, SENT_AT)
    assert caught.value.problems[0].where == f"{path}:3"
    assert caught.value.problems[0].what.startswith("syntax:")


def test_sandbox_refuses_python_internals(config: Config, renderer: Renderer) -> None:
    write_template(renderer, "sms/start.txt.j2",
                   "{{ contact.__class__.__init__.__globals__ }}\n")
    window = window3(config)
    with pytest.raises(TemplateError, match=r"not allowed in a template: .* is unsafe"):
        renderer.render(build_notice(window, window.planned, Phase.START), contact(),
                        Channel.SMS, SENT_AT)


def test_email_template_without_subject_line(config: Config, renderer: Renderer) -> None:
    write_template(renderer, "email/end.txt.j2", "件名なし\n本文\n")
    window = window3(config)
    with pytest.raises(TemplateError, match="must start with a 'Subject: …' line"):
        renderer.render(build_notice(window, window.planned, Phase.END), contact(),
                        Channel.EMAIL, SENT_AT)


def test_missing_template_file(config: Config, renderer: Renderer) -> None:
    (renderer.templates_dir / "fax" / "end.html.j2").unlink()
    problems = check_rendering(renderer, [window3(config)], {window3(config).id: [contact()]},
                               2, SENT_AT)
    assert [str(p) for p in problems] == [
        f"{renderer.templates_dir}/fax/end.html.j2: missing (rendering for contact C1)"]


def test_sms_over_max_segments_names_each_contact(config: Config, renderer: Renderer) -> None:
    window = window3(config)
    long_name = contact(merchant="とても長い名前の加盟店" * 6, contact_id="LONG")
    problems = check_rendering(renderer, [window], {window.id: [contact(), long_name]}, 2,
                               SENT_AT)
    assert problems, "a 66-character merchant name must push the SMS past 2 segments"
    assert all("contact LONG (とても長い" in p.where for p in problems)
    assert "more than max_segments = 2" in problems[0].what


def test_postponed_needs_a_reserve_slot(config: Config) -> None:
    window = window3(config)
    with pytest.raises(ArgumentError, match="no reserve slot after reserve-2021-08-23-0100"):
        build_notice(window, window.reserves[-1], Phase.POSTPONED)


def test_shipped_templates_pass_the_check(config: Config, renderer: Renderer,
                                          project: Path) -> None:
    from dispatcher.table import in_audience, load_contacts
    contacts = load_contacts(project.parent / "contacts")
    window = window3(config)
    audiences = {window.id: in_audience(contacts, window.audience)}
    assert check_rendering(renderer, [window], audiences, 2, SENT_AT) == []
    shutil.rmtree(project.parent / "templates" / "sms")
    fresh = Renderer(config.settings.templates_dir, config)
    problems = check_rendering(fresh, [window], audiences, 2, SENT_AT)
    assert {p.where for p in problems} == {
        f"{project.parent}/templates/sms/{phase}.txt.j2"
        for phase in ("announce", "reminder", "start", "end", "postponed", "extended",
                      "update")}  # no overrun (a scheduled end); interrupted: postponed's


@pytest.mark.parametrize("name", ["さくら書店", "Sakura Books", 'Books, "Sakura" & Co.',
                                  "とても長い名前の加盟店" * 5, "a" * 200, "a" * 1008,
                                  "Sakura Books of the Greater Tokyo Metropolitan Area, "
                                  "Shinjuku Branch (Main Office)"])
def test_mail_bytes_round_trip_through_a_mail_parser(name: str) -> None:
    message = Message(contact(merchant=name, name=""), Channel.EMAIL, "a@example.jp",
                      f"【J-Mups】{name} メンテナンス作業開始のご連絡", "本文\n二行目\n")
    raw = build_email(message, "J-Mups センター <m@example.jp>", SENT_AT, "<id@example.jp>",
                      "J-Mups ヘルプデスク <help@j-mups.example.jp>")
    head = raw.split(b"\r\n\r\n")[0]
    assert max(len(line) for line in head.split(b"\r\n")) <= 78, head.decode()
    headers, body = readable(raw)
    to = f'"{name}"'.replace('"Sakura"', '\\"Sakura\\"') if "," in name else name
    assert f"To: {to} <a@example.jp>" in headers
    assert f"Subject: 【J-Mups】{name} メンテナンス作業開始のご連絡" in headers
    assert "From: J-Mups センター <m@example.jp>" in headers
    assert "Message-ID: <id@example.jp>" in headers
    assert "Reply-To: J-Mups ヘルプデスク <help@j-mups.example.jp>" in headers
    assert "Auto-Submitted: auto-generated" in headers
    assert body == "本文\n二行目\n"
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["To"].addresses[0].addr_spec == "a@example.jp"
    # (Python's address parser keeps the space between two encoded words, which RFC 2047
    # says to drop, as decode_header above does: only a name sent whole is compared)
    if name.isascii() and len(name) <= 60:
        assert parsed["To"].addresses[0].display_name == name


@pytest.mark.parametrize("merchant", ["さくら書店", "店\r\nBcc: victim@example.jp",
                                      "とても長い名前の加盟店" * 5])
def test_a_fax_gateway_mail_carries_the_pdf_whole_and_no_added_header(merchant: str) -> None:
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 40
    raw = build_fax_email(pdf, "0355511037@fax.example.jp", merchant,
                          "J-Mups センター <m@example.jp>", SENT_AT, "<id@example.jp>")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78
    assert b"\r\nTo: 0355511037@fax.example.jp\r\n" in raw  # bare, as gateways expect
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Bcc"] is None and parsed["To"] == "0355511037@fax.example.jp"
    assert parsed["Subject"] == f"FAX {merchant}".replace("\r\n", " ")
    assert (parsed["Message-ID"], parsed["Auto-Submitted"]) == ("<id@example.jp>",
                                                                "auto-generated")
    text, attachment = parsed.iter_parts()
    assert text.get_content() == "FAX\r\n"
    assert (attachment.get_filename(), attachment.get_content()) == ("notice.pdf", pdf)


def test_check_refuses_a_contact_whose_header_would_pass_998_octets(
        config: Config, renderer: Renderer) -> None:
    window = window3(config)
    notice = build_notice(window, window.planned, Phase.START)
    very_long = "a" * 1008  # folded into encoded words: fine
    overlong = Contact("C9", "長い住所の店", "佐藤", None, f"{'x' * 990}@example.jp", None,
                       frozenset({"emoney"}), "c.csv:9")  # an address is never split
    assert list(check_notice(renderer, notice, [contact(merchant=very_long)], Channel.EMAIL,
                             2, SENT_AT)) == []
    [problem] = check_notice(renderer, notice, [overlong], Channel.EMAIL, 2, SENT_AT)
    assert "contact C9 (長い住所の店)" in problem.where
    assert "past the 998 that RFC 5322 allows" in problem.what


field_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
                     min_size=1, max_size=30).map(str.strip).filter(bool)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(people=st.lists(st.tuples(field_text, st.one_of(st.just(""), field_text)),
                       min_size=2, max_size=6))
def test_every_message_put_together_is_the_message_rendered(
        config: Config, renderer: Renderer, people: list[tuple[str, str]]) -> None:
    """What `check` and the send's preflight look at for 100,000 contacts is, for each of
    them, exactly what rendering gives: fields with markup, quotes, emoji and spaces."""
    audience = [contact(merchant=merchant, name=name, contact_id=f"C{n}")
                for n, (merchant, name) in enumerate(people)]
    window = window3(config)
    for phase in (Phase.START, Phase.END):
        notice = build_notice(window, window.planned, phase)
        for channel in Channel:
            put_together = list(messages_for(renderer, notice, audience, channel, SENT_AT))
            rendered = [renderer.render(notice, c, channel, SENT_AT) for c in audience]
            assert sorted(put_together, key=lambda m: m.contact.id) == rendered


def test_a_template_that_branches_on_an_extra_column_is_checked_for_each_value(
        config: Config, renderer: Renderer) -> None:
    """Extra columns are not markers: a template testing one's value (``plan == "gold"``)
    gives each contact its own text, and `check` sees the long one of the gold contact."""
    write_template(renderer, "sms/start.txt.j2", "{% if contact.extra.plan == 'gold' %}"
                   + "ゴールド会員様への大切なお知らせです。" * 8
                   + "{% else %}開始しました。{% endif %}")
    fresh = Renderer(config.settings.templates_dir, config)
    window = window3(config)
    notice = build_notice(window, window.planned, Phase.START)
    silver, gold = (replace(contact(contact_id=i), extra_fields=(("plan", plan),))
                    for i, plan in (("C1", "silver"), ("C2", "gold")))
    put_together = list(messages_for(fresh, notice, [silver, gold], Channel.SMS, SENT_AT))
    assert put_together == [fresh.render(notice, c, Channel.SMS, SENT_AT)
                            for c in (silver, gold)]
    [too_long] = check_notice(fresh, notice, [silver, gold], Channel.SMS, 2, SENT_AT)
    assert "C2" in str(too_long)


def test_a_template_that_changes_a_field_is_rendered_for_everyone(
        config: Config, renderer: Renderer) -> None:
    write_template(renderer, "sms/start.txt.j2",
                   "{{ contact.merchant|upper }}様 メンテナンスを開始しました。")
    fresh = Renderer(config.settings.templates_dir, config)
    window = window3(config)
    notice = build_notice(window, window.planned, Phase.START)
    audience = [contact(merchant="sakura"), contact(merchant="himawari", contact_id="C2")]
    bodies = [m.body for m in messages_for(fresh, notice, audience, Channel.SMS, SENT_AT)]
    assert bodies == ["SAKURA様 メンテナンスを開始しました。",
                      "HIMAWARI様 メンテナンスを開始しました。"]


@pytest.mark.parametrize("template", [
    None,  # the shipped one: Japanese, so the fields' lengths give the SMS's
    "{{ contact.merchant }} / {{ contact.name }}: maintenance started.",  # GSM-7 around them
])
@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(people=st.lists(st.tuples(field_text, st.one_of(st.just(""), field_text)),
                       min_size=2, max_size=6))
def test_the_sms_length_checked_is_the_length_rendered(
        config: Config, renderer: Renderer, template: str | None,
        people: list[tuple[str, str]]) -> None:
    """`check` counts each contact's SMS from its fields' lengths: it must flag exactly the
    contacts whose rendered SMS is too long (emoji take two units; a GSM-7 text turns
    UCS-2 with one Japanese character)."""
    if template is not None:
        write_template(renderer, "sms/start.txt.j2", template)
        renderer = Renderer(config.settings.templates_dir, config)
    audience = [contact(merchant=merchant * 3, name=name, contact_id=f"C{n}")
                for n, (merchant, name) in enumerate(people)]
    notice = build_notice(window3(config), window3(config).planned, Phase.START)
    counts = {c.id: (renderer.render(notice, c, Channel.SMS, SENT_AT).segments
                     or count_segments("")).count for c in audience}
    limit = min(counts.values())  # the shortest passes; longer ones may not
    flagged = {p.where.split("contact ")[1].split(" ")[0]
               for p in check_notice(renderer, notice, audience, Channel.SMS, limit, SENT_AT)}
    assert flagged == {contact_id for contact_id, count in counts.items() if count > limit}
