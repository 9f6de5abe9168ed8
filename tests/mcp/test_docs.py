"""docs/mcp.md: its client configurations are valid JSON that start this server, and it documents every option."""

from __future__ import annotations

import json
import re
from pathlib import Path

from apidriver.cli import cli

DOC = Path(__file__).resolve().parents[2] / "docs" / "mcp.md"


def test_every_json_block_parses_and_configures_apidriver_mcp() -> None:
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(), re.DOTALL)
    configs = [json.loads(block) for block in blocks]
    servers = [server for config in configs for server in (config.get("mcpServers") or config.get("servers") or {}).values()]
    assert len(servers) >= 4
    for server in servers:
        assert (server.get("command") == "apidriver" and server["args"][0] == "mcp") or server["url"].endswith("/mcp")


def test_every_option_is_documented() -> None:
    text = DOC.read_text()
    options = [opt for param in cli.commands["mcp"].params for opt in param.opts if opt.startswith("--")]
    assert options and [o for o in options if f"`{o}" not in text] == []
