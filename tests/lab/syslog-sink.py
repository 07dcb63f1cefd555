"""Reads syslog datagrams on a Unix socket and appends each as a line to a file, so that
what faxq, faxgetty and hfaxd log (they log only through syslog) can be read by the tests.
Usage: python3 syslog-sink.py SOCKET FILE. The socket appears, writable by every user, only
once it is read: whoever waits for its path to exist can log at once."""

from __future__ import annotations

import os
import socket
import sys


def main(path: str, output: str) -> None:
    staging = f"{path}.new"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sink, \
            open(output, "a", encoding="utf-8", errors="replace") as lines:
        sink.bind(staging)
        os.chmod(staging, 0o666)  # faxq and faxgetty log as uucp
        os.rename(staging, path)
        while True:
            datagram = sink.recv(65536).decode("utf-8", errors="replace")
            lines.write(datagram.rstrip("\n\0") + "\n")
            lines.flush()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
