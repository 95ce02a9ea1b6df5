"""An agent using a database through as_tools(), with no LLM service.

    python examples/agent.py --router 127.0.0.1:7070

`db.as_tools()` gives tool definitions (name, description, JSON Schema) to hand
to any model; `db.call_tool(name, arguments)` runs the model's choice. Here a
scripted plan stands in for the model. The same tools reach any MCP host
(Claude Desktop, IDEs) with no code through `loot mcp` (docs/mcp.md).
"""

from __future__ import annotations

import argparse
import json

from loot import Client, Key

SCHEMA = """
CREATE TABLE tasks (id INTEGER PRIMARY KEY, title TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0);
INSERT INTO _filters VALUES ('tasks', 'all', 'true');
INSERT INTO _rules VALUES ('tasks', 'write', 'all', 'true');
"""

PLAN = [  # what a model might answer, one tool call at a time
    ("insert_tasks", {"title": "read the spec"}),
    ("insert_tasks", {"title": "write the tests"}),
    ("update_tasks", {"where": {"id": 1}, "set": {"done": 1}}),
    ("query", {"sql": "SELECT title, done FROM tasks ORDER BY id"}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--router", default="127.0.0.1:7070")
    args = parser.parse_args()
    with Client(args.router) as client:
        db = client.database("agent", tenant="demo", key=Key.generate(), schema=SCHEMA)
        tools = db.as_tools()
        print("tools:", ", ".join(tool["name"] for tool in tools))
        for name, arguments in PLAN:
            result = db.call_tool(name, arguments)
            print(f"{name}({json.dumps(arguments)}) -> {result.rows or f'{result.rows_written} row(s) written'}")


if __name__ == "__main__":
    main()
