"""`dispatcher run`: the daemon."""


from dispatcher.daemon.runner import Daemon

__all__ = [
    "Daemon",
]
