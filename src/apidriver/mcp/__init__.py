"""``apidriver mcp``: the tables, the cache and the safety rules of apidriver, served to AI assistants
through the Model Context Protocol (on the official ``mcp`` SDK: ``pip install 'apidriver[mcp]'``).

- :mod:`.launch`: starting it (the SDK, the connection, logging, the transport); the options are in :mod:`apidriver.cli.mcp`.
- :mod:`.server`: the tools (``list_tables``, ``describe_table``, ``run_query``), resources and prompts.
- :mod:`.queries`: one statement on a worker thread, under a row cap, with progress and cancellation.
- :mod:`.catalogue`: the table reference as the assistant reads it (the text of ``docs/tables.md``).
- :mod:`.confine`: what SQL from an assistant may never do (open or write files on the server's machine).
- :mod:`.http`: streamable HTTP: the address rules and the bearer token.
- :mod:`.prompts`, :mod:`.results`: the prompts; the tools' output schemas.

The docs are ``docs/mcp.md``.
"""
