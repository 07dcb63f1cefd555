"""`dispatcher demo`, and what the demo, the tests and the benchmarks share: an SMTP sink
and a free port."""


from dispatcher.demo.demo import run_demo
from dispatcher.demo.sink import SERVER_START_SECONDS, Arrival, MailSink, free_port, mail_server

__all__ = [
    "SERVER_START_SECONDS",
    "Arrival",
    "MailSink",
    "free_port",
    "mail_server",
    "run_demo",
]
