"""`dispatcher run`: the daemon."""


from dispatcher.daemon.runner import Daemon
from dispatcher.daemon.systemd import Notifier

__all__ = [
    "Daemon",
    "Notifier",
]
