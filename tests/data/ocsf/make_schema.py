"""Write ``detection_finding-1.2.0.schema.json``: a JSON Schema of OCSF Detection Finding (class 2004).

Source: the OCSF schema repository (github.com/ocsf/ocsf-schema, tag v1.2.0,
Apache-2.0: LICENSE and NOTICE beside this file), compiled with the OCSF project's
own compiler (``pip install ocsf-lib``; ``python -m ocsf.compile PATH > compiled.json``).
This script turns the compiled class and the objects it reaches into JSON Schema
(draft 2020-12) the way the OCSF schema server exports it: base types resolved,
``_id`` enumerations as ``enum``, required attributes, ``at_least_one``/``just_one``
constraints, only the :data:`PROFILES` applied, no unknown attributes. Run by hand when the
vendored version changes:

    python tests/data/ocsf/make_schema.py compiled.json > tests/data/ocsf/detection_finding-1.2.0.schema.json
"""

from __future__ import annotations

import json
import sys
from typing import Any

PROFILES = ("host",)
"""Profiles applied (what residency-audit's findings declare in ``metadata.profiles``)."""
_JSON_TYPES = {
    "string_t": "string",
    "integer_t": "integer",
    "long_t": "integer",
    "float_t": "number",
    "boolean_t": "boolean",
    "timestamp_t": "integer",
}


def _base(types: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
    """The JSON type of an OCSF scalar type and its string constraints."""
    extra: dict[str, Any] = {}
    while name not in _JSON_TYPES and name in types:
        info = types[name]
        if info.get("regex") and "pattern" not in extra:
            extra["pattern"] = info["regex"]
        name = info.get("type") or name
        if info.get("type") is None:
            break
    return _JSON_TYPES.get(name, ""), extra


def _attribute(schema: dict[str, Any], attr: dict[str, Any], todo: list[str]) -> dict[str, Any]:
    kind = attr["type"]
    item: dict[str, Any]
    if kind == "object":
        item = {"type": "object"}
    elif kind == "json_t":
        item = {}
    elif kind in schema["objects"]:
        todo.append(kind)
        item = {"$ref": f"#/$defs/{kind}"}
    else:
        json_type, extra = _base(schema["types"], kind)
        item = {"type": json_type, **extra} if json_type else {}
        if attr.get("enum") and json_type == "integer":
            item["enum"] = sorted(int(value) for value in attr["enum"])
    return {"type": "array", "items": item} if attr.get("is_array") else item


def _definition(schema: dict[str, Any], entity: dict[str, Any], todo: list[str]) -> dict[str, Any]:
    attrs = {n: a for n, a in entity["attributes"].items() if a.get("profile") in (None, *PROFILES)}
    out: dict[str, Any] = {
        "title": entity.get("caption", entity["name"]),
        "type": "object",
        "properties": {name: _attribute(schema, attr, todo) for name, attr in sorted(attrs.items())},
        "additionalProperties": False,
    }
    required = sorted(n for n, a in attrs.items() if a.get("requirement") == "required")
    if required:
        out["required"] = required
    constraints = entity.get("constraints") or {}
    if constraints.get("at_least_one"):
        out["anyOf"] = [{"required": [n]} for n in constraints["at_least_one"]]
    if constraints.get("just_one"):
        out["oneOf"] = [{"required": [n]} for n in constraints["just_one"]]
    return out


def json_schema(schema: dict[str, Any], class_name: str) -> dict[str, Any]:
    """JSON Schema of one compiled OCSF class and every object it reaches."""
    todo: list[str] = []
    top = _definition(schema, schema["classes"][class_name], todo)
    defs: dict[str, Any] = {}
    while todo:
        name = todo.pop()
        if name not in defs:
            defs[name] = {}
            defs[name] = _definition(schema, schema["objects"][name], todo)
    top["$defs"] = dict(sorted(defs.items()))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://schema.ocsf.io/schema/{schema['version']}/classes/{class_name}",
        **top,
    }


def main() -> None:
    with open(sys.argv[1]) as fh:
        compiled = json.load(fh)
    print(json.dumps(json_schema(compiled, "detection_finding"), indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
