"""The HTTP server embedded in the daemon (Starlette under uvicorn): Twilio's status
callbacks, and a health check."""

from dispatcher.web.app import make_app
from dispatcher.web.server import WebServer

__all__ = ["WebServer", "make_app"]
