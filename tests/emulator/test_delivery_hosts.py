"""The emulator never calls the internet by default: webhook deliveries go to loopback addresses only,
unless an explicit option (``allow_webhook_hosts``, ``--allow-webhook-host``) names the host."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from apidriver.emulator import Emulator
from apidriver.emulator.backend import Backend
from apidriver.emulator.webhooks import Dispatcher

from .support import Receiver, client, create_job, wait_until

MakeEmulator = Callable[..., Emulator]


def test_deliveries_to_other_hosts_are_refused_without_any_traffic(make_emulator: MakeEmulator, receiver: Receiver) -> None:
    """Issue #16: the README's own https://me.example/hook got 4 delivery attempts over the network."""
    emu = make_emulator(rate_limit=0)
    outside = ["https://me.example/hook", "http://10.255.255.1:9/hook", "http://127.0.0.1.nip.io/hook"]
    with client(emu) as api:
        for url in [*outside, receiver.url + "/hook"]:
            assert api.post("/webhooks", json={"url": url, "events": ["job.created"]}).status_code == 201
        started = time.monotonic()
        create_job(api, tag="hooked")
    receiver.wait_posts(1, "/hook")
    wait_until(lambda: sum(1 for d in emu.deliveries() if d["url"] in outside) == len(outside), what="the refused deliveries")
    for delivery in emu.deliveries():
        if delivery["url"] in outside:
            assert [a["status"] for a in delivery["attempts"]] == [None] * 4  # unreachable, as a host that does not resolve
            assert all("only to loopback addresses" in str(a["error"]) for a in delivery["attempts"])
    assert time.monotonic() - started < 4  # no connection was even tried (10.255.255.1 would time out)


@pytest.mark.parametrize(
    ("host", "allow", "allowed"),
    [
        ("127.0.0.1", (), True),
        ("127.8.9.10", (), True),
        ("::1", (), True),
        ("[::1]", (), True),
        ("localhost", (), True),
        ("hooks.localhost", (), True),
        ("me.example", (), False),
        ("10.0.0.1", (), False),
        ("127.0.0.1.nip.io", (), False),
        ("::ffff:8.8.8.8", (), False),
        ("me.example", ("me.example",), True),
        ("ME.example.", ("me.example",), True),
        ("other.example", ("me.example",), False),
        ("anything.example", ("*",), True),
    ],
)
def test_which_hosts_a_delivery_may_go_to(host: str, allow: tuple[str, ...], allowed: bool) -> None:
    assert Dispatcher(Backend(), allow_hosts=allow).allowed(host) is allowed


def test_the_help_says_so() -> None:
    from click.testing import CliRunner

    from apidriver.cli.commands import cli

    module = subprocess.run([sys.executable, "-m", "apidriver.emulator", "--help"], capture_output=True, text=True, timeout=60, check=True).stdout
    command = CliRunner().invoke(cli, ["emulator", "--help"], terminal_width=200).output
    for text in (module, command):
        text = " ".join(text.split())
        assert "--allow-webhook-host" in text and "only to loopback addresses" in text and "never calls the internet" in text
