"""Time as the code is given it: a clock to read and a sleep to wait on, passed in so that
tests and the night model drive them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]
