"""Write the IANA zone names of the installed tzdata package into the schema's `$defs.timezone`.

Editors complete and check `timezone` from this list; `reconciler validate` checks zones with the
tzdata it runs with (and suggests the name meant), so the list is for editors only. Refresh it
after upgrading tzdata (tests/test_schema_document.py says when it is stale):

    .venv/bin/python scripts/gen_schema_zones.py
"""

from __future__ import annotations

import json
from importlib import metadata, resources
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The package's copy and the copy users and editors fetch; a test keeps them identical.
SCHEMAS = (ROOT / "reconciler" / "data" / "schedule.schema.json", ROOT / "schema" / "schedule.schema.json")


def tzdata_version() -> str:
    return metadata.version("tzdata")


def zone_names() -> list[str]:
    """Every zone of the tzdata package (its `zones` index), links such as US/Eastern included."""
    text = resources.files("tzdata").joinpath("zones").read_text("utf-8")
    return sorted(set(text.split()))


def render(schema_text: str, zones: list[str], version: str) -> str:
    """The schema with `zones` as the timezone enum, written as the committed files are."""
    schema = json.loads(schema_text)
    timezone = schema["$defs"]["timezone"]
    timezone["$comment"] = (f"The enum lists the zones of tzdata {version}, written by "
                            "scripts/gen_schema_zones.py; validate checks zones with the tzdata it runs with.")
    timezone["enum"] = zones
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    zones, version = zone_names(), tzdata_version()
    for path in SCHEMAS:
        path.write_text(render(path.read_text("utf-8"), zones, version), "utf-8")
        print(f"{path.relative_to(ROOT)}: {len(zones)} zones from tzdata {version}")


if __name__ == "__main__":
    main()
