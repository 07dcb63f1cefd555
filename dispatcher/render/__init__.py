"""Notices rendered per contact and channel: the Jinja2 sandbox, the fax page, the MIME
e-mail, SMS segments, whole-notice checks and previews. Pure apart from the templates."""


from dispatcher.render.checks import (
    Shapes,
    check_inputs,
    check_notice,
    check_rendering,
    messages_for,
)
from dispatcher.render.fax import (
    FaxDocument,
    FaxPages,
    RecentPages,
    page_key,
    render_pdf,
    render_pdfs,
    require_japanese_font,
    write_png,
)
from dispatcher.render.links import CONFIRM_PATH, ConfirmLink, ConfirmLinks, normalised
from dispatcher.render.mail import (
    AUTO_SUBMITTED,
    MESSAGE_ID,
    MESSAGE_ID_LENGTH,
    build_email,
    build_fax_email,
    mailbox_parts,
    message_id,
    message_id_domain,
    message_id_text,
    readable,
)
from dispatcher.render.preview import ChannelTotals, Preview, Previewer, channels_to_preview
from dispatcher.render.segments import Encoding, Segments, count_segments, utf16_units
from dispatcher.render.templates import (
    Message,
    Renderer,
    filters,
    local_slot,
    one_line,
    template_name,
)
from dispatcher.render.twiml import (
    Script,
    after_key_twiml,
    call_twiml,
    hang_up_twiml,
    parse_script,
)

__all__ = [
    "AUTO_SUBMITTED",
    "CONFIRM_PATH",
    "MESSAGE_ID",
    "MESSAGE_ID_LENGTH",
    "ChannelTotals",
    "ConfirmLink",
    "ConfirmLinks",
    "Encoding",
    "FaxDocument",
    "FaxPages",
    "Message",
    "Preview",
    "Previewer",
    "RecentPages",
    "Renderer",
    "Script",
    "Segments",
    "Shapes",
    "after_key_twiml",
    "build_email",
    "build_fax_email",
    "call_twiml",
    "channels_to_preview",
    "check_inputs",
    "check_notice",
    "check_rendering",
    "count_segments",
    "filters",
    "hang_up_twiml",
    "local_slot",
    "mailbox_parts",
    "message_id",
    "message_id_domain",
    "message_id_text",
    "messages_for",
    "normalised",
    "one_line",
    "page_key",
    "parse_script",
    "readable",
    "render_pdf",
    "render_pdfs",
    "require_japanese_font",
    "template_name",
    "utf16_units",
    "write_png",
]
