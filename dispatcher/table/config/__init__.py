"""``config.toml`` → frozen, typed objects, validated once.

Every problem is collected and reported together, each naming the file, the line where
it can be found and the key. Relative paths inside the file are relative to the file.
"""

from dispatcher.table.config.load import load_config, parse_config, window_where
from dispatcher.table.config.model import (
    BACKENDS,
    JAPANESE_VOICES,
    Alerts,
    BackendSettings,
    ChannelConfig,
    Config,
    ConfirmSettings,
    ConsoleSettings,
    GatewaySettings,
    Helpdesk,
    HylafaxSettings,
    Messages,
    OutboxSettings,
    Publish,
    Sender,
    Settings,
    SmtpSettings,
    TwilioSettings,
)
from dispatcher.table.windows import AffectedService

__all__ = [
    "BACKENDS",
    "JAPANESE_VOICES",
    "AffectedService",
    "Alerts",
    "BackendSettings",
    "ChannelConfig",
    "Config",
    "ConfirmSettings",
    "ConsoleSettings",
    "GatewaySettings",
    "Helpdesk",
    "HylafaxSettings",
    "Messages",
    "OutboxSettings",
    "Publish",
    "Sender",
    "Settings",
    "SmtpSettings",
    "TwilioSettings",
    "load_config",
    "parse_config",
    "window_where",
]
