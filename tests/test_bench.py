"""The benchmarks still run (on a tiny input); their figures are printed, never asserted."""

import re
import subprocess
import sys

import pytest

from tests.helpers import ROOT


def test_render_benchmark_runs_and_prints_its_figures() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "render.py"), "--contacts", "40",
                           "--fax-pages", "1", "--fax-batch-pages", "4"], capture_output=True,
                          text=True, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "dispatcher Renderer" in done.stdout and "plain jinja2 baseline" in done.stdout
    assert "ms/contact" in done.stdout
    assert "(render_pdfs)" in done.stdout and "(FaxPress, " in done.stdout


def test_send_benchmark_runs_and_prints_its_figures() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "send.py"), "--contacts", "60"],
                          capture_output=True, text=True, check=False, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "ratio (send / baseline)" in done.stdout and "peak RSS" in done.stdout


def test_lateness_benchmark_runs_and_prints_its_figures() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "lateness.py"), "--windows", "2"],
                          capture_output=True, text=True, check=False, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "dispatcher run (daemon)" in done.stdout and "(4 notices)" in done.stdout


def test_receipts_benchmark_runs_and_prints_its_figures() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "read_mail.py"), "--mails", "40"],
                          capture_output=True, text=True, check=False, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "40 DSNs" in done.stdout and "ratio (read-mail / baseline time)" in done.stdout


def test_broadcast_benchmark_runs_and_prints_its_figures() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "broadcast.py"), "--contacts",
                           "6"], capture_output=True, text=True, check=False, cwd=ROOT,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert "(6 personalised fax pages)" in done.stdout
    assert "ratio (3 channels / e-mail alone)" in done.stdout


@pytest.mark.parametrize("database", ["SQLite", "PostgreSQL"])
def test_scale_benchmark_runs_and_prints_its_figures(database: str) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "scale.py"), "--contacts", "30",
                           "--sending-seconds", "1",
                           *(["--postgresql"] if database == "PostgreSQL" else [])],
                          capture_output=True, text=True, check=False, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"the ledger on {database})" in done.stdout
    assert "reference load" in done.stdout and "start notice late by" in done.stdout
    assert "peak RSS of the daemon's tree" in done.stdout
    assert re.search(r"unreached +[0-9.]+ s", done.stdout), done.stdout
    seconds = r"(-?[0-9.]+ s|none yet)"
    assert re.search(rf"first message in the outbox .*: fax {seconds}, email {seconds}, "
                     rf"sms {seconds}", done.stdout), done.stdout
