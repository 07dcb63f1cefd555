"""The HTTP server embedded in the daemon (Starlette under uvicorn): Twilio's status
callbacks, a health check and the operator's console."""

from dispatcher.web.app import make_app
from dispatcher.web.auth import LoginLimiter, Users
from dispatcher.web.console import Console
from dispatcher.web.metrics import Metrics
from dispatcher.web.progress import notice_progress
from dispatcher.web.server import WebServer

__all__ = ["Console", "LoginLimiter", "Metrics", "Users", "WebServer", "make_app",
           "notice_progress"]
