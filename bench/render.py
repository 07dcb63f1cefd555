"""Rendering speed: e-mail + SMS for 10,000 contacts, and the cost of a fax page.

Prints messages per second of dispatcher's Renderer (sandboxed, strict, SMS segments
counted) beside a baseline measured in the same run: a plain jinja2 Environment rendering
the same templates with the same context. Target: at least 5,000 messages per second.

    .venv/bin/python bench/render.py [--contacts N] [--fax-pages N] [--fax-batch-pages N]

Fax pages: one page per call (the old path), batches laid out together in one process,
and FaxPress (batches over one worker process per core, as a fax broadcast renders).
Target: personalised pages at least 10× faster per page than a page per call.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import jinja2

from dispatcher.render import (
    FaxPages,
    Renderer,
    filters,
    render_pdf,
    render_pdfs,
    template_name,
)
from dispatcher.send.faxpress import PAGES_PER_BATCH, FaxPress
from dispatcher.table import Channel, Contact, Phase, build_notice, find_window, load_config

ROOT = Path(__file__).resolve().parent.parent
TARGET_PER_SECOND = 5_000


def synthetic_contacts(count: int) -> list[Contact]:
    return [
        Contact(f"B{n:06d}", f"ベンチ加盟店{n:06d} 駅前店", f"担当 {n}", f"+8131234{n % 10000:04d}",
                f"incident-{n}@example.jp", f"+8190{n % 100000000:08d}", frozenset({"emoney"}),
                f"bench:{n}")
        for n in range(count)
    ]


def timed(work: Callable[[], int]) -> tuple[int, float]:
    start = time.perf_counter()
    done = work()
    return done, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--fax-pages", type=int, default=10)
    parser.add_argument("--fax-batch-pages", type=int, default=128)
    args = parser.parse_args()

    config = load_config(ROOT / "config.toml")
    window = find_window(config.windows, "3")
    notice = build_notice(window, window.planned, Phase.START)
    sent_at = datetime(2021, 7, 19, 1, tzinfo=config.settings.timezone)
    renderer = Renderer(config.settings.templates_dir, config)
    contacts = synthetic_contacts(args.contacts)
    channels = (Channel.EMAIL, Channel.SMS)

    def ours() -> int:
        return sum(1 for c in contacts for ch in channels
                   if renderer.render(notice, c, ch, sent_at))

    plain = jinja2.Environment(loader=jinja2.FileSystemLoader(config.settings.templates_dir))
    plain.filters.update(filters(config.settings.timezone))  # the same filters, none of the safety
    plain_templates = [plain.get_template(template_name(ch, Phase.START)) for ch in channels]

    def baseline() -> int:
        return sum(1 for c in contacts for t in plain_templates
                   if t.render(renderer.context(notice, c, sent_at)))

    ours()  # warm the template caches of both before timing
    baseline()
    base_count, base_seconds = timed(baseline)
    our_count, our_seconds = timed(ours)
    our_rate, base_rate = our_count / our_seconds, base_count / base_seconds
    print(f"e-mail + SMS for {args.contacts:,} contacts ({our_count:,} messages)")
    print(f"  dispatcher Renderer : {our_rate:9,.0f} messages/s  ({our_seconds:.2f} s)")
    print(f"  plain jinja2 baseline: {base_rate:9,.0f} messages/s  ({base_seconds:.2f} s)")
    print(f"  ratio (ours / baseline): {our_rate / base_rate:.2f}; target {TARGET_PER_SECOND:,}/s: "
          f"{'met' if our_rate >= TARGET_PER_SECOND else 'NOT met'}")

    fax_bodies = [renderer.render(notice, c, Channel.FAX, sent_at).body
                  for c in contacts[: args.fax_pages]]
    render_pdf(fax_bodies[0], str(config.settings.templates_dir))  # import and font load
    pages, per_contact = timed(lambda: sum(render_pdf(b, "").pages for b in fax_bodies))
    batch_bodies = [renderer.render(notice, c, Channel.FAX, sent_at).body
                    for c in synthetic_contacts(args.fax_batch_pages)]
    batched, in_process = timed(lambda: sum(d.pages for d in render_pdfs(batch_bodies, "")))
    pressed, press_seconds = timed(lambda: asyncio.run(press(batch_bodies)))
    shared = FaxPages(config.settings.templates_dir)
    _, cached = timed(lambda: sum(shared.render(fax_bodies[0]).pages for _ in contacts))
    per_page = per_contact / pages
    per_shared = cached / len(contacts)
    print("fax page (WeasyPrint, A4, embedded font)")
    print(f"  a page per contact (addressee on the page): {per_page * 1000:8.1f} ms/contact "
          f"({len(fax_bodies)} pages)")
    print(f"  one shared page (no contact field, cached): {per_shared * 1000:8.3f} ms/contact "
          f"({len(contacts):,} contacts, one render)")
    print(f"  ratio (per contact / shared): {per_page / per_shared:,.0f}")
    print(f"  personalised, batches of {PAGES_PER_BATCH} in one process (render_pdfs): "
          f"{in_process / batched * 1000:8.1f} ms/page ({batched} pages); ratio "
          f"{per_page / (in_process / batched):.1f}× faster than a page per call")
    print(f"  personalised, as a broadcast renders them (FaxPress, {os.cpu_count()} "
          f"processes): {press_seconds / pressed * 1000:8.1f} ms/page ({pressed} pages, "
          f"worker start included); ratio {per_page / (press_seconds / pressed):.1f}× "
          f"faster than a page per call")


async def press(bodies: list[str]) -> int:
    """Every page through FaxPress, as the dispatcher renders a fax broadcast's pages."""
    fax_press = FaxPress(ROOT / "templates")
    try:
        ahead = fax_press.pages_ahead  # as many as the dispatcher claims at a time
        for start in range(0, len(bodies), ahead):
            fax_press.prepare(bodies[start:start + ahead])
        return sum([(await fax_press.document(b)).pages for b in bodies])
    finally:
        await fax_press.close()


if __name__ == "__main__":
    main()
