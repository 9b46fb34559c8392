"""The reference Prisma schema shipped with nodellm-orm, and its per-provider variants.

`nodellm-orm init` writes `schema_for(provider)`; the packaged `schema.prisma` is the
PostgreSQL form, identical to the one at the repository root.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files

__all__ = [
    "PROVIDERS",
    "SchemaField",
    "SchemaModel",
    "datasource_provider",
    "parse_models",
    "reference_schema",
    "schema_for",
]

PROVIDERS: tuple[str, ...] = ("postgresql", "sqlite", "mysql")

_DATASOURCE_PROVIDER = re.compile(r'(datasource\s+\w+\s*\{[^}]*?provider\s*=\s*)"([^"]*)"', re.S)
_MODEL_BLOCK = re.compile(r"^model\s+(\w+)\s*\{(.*?)^\}", re.S | re.M)
# A model field typed Json (optionally Json? or Json[]): indentation, name, gap, modifier, rest.
_JSON_FIELD = re.compile(r"^(\s+\w+\s+)Json(\?|\[\])?( *)(.*)$")


def reference_schema() -> str:
    """The packaged reference schema (provider postgresql)."""
    return (files("nodellm_orm") / "schema.prisma").read_text(encoding="utf-8")


def schema_for(provider: str) -> str:
    """The reference schema for `provider` ("postgresql", "sqlite" or "mysql").

    SQLite: Prisma 5's SQLite connector has no Json type, so Json fields become String
    (the library encodes and decodes the JSON itself). The column layout is kept as
    `prisma format` would write it, so `init` produces an already-formatted file.
    """
    if provider not in PROVIDERS:
        raise ValueError(
            f"unsupported provider {provider!r}; expected one of {', '.join(PROVIDERS)}"
        )
    schema = reference_schema()
    schema, count = _DATASOURCE_PROVIDER.subn(rf'\1"{provider}"', schema, count=1)
    if count != 1:
        raise RuntimeError("the packaged schema.prisma has no datasource provider line")
    if provider == "sqlite":
        schema = "\n".join(_json_to_string(line) for line in schema.split("\n"))
    return schema


def _json_to_string(line: str) -> str:
    match = _JSON_FIELD.match(line)
    if match is None:
        return line
    head, modifier, gap, rest = match.groups()
    new_type = "String" + (modifier or "")
    if not rest:
        return head + new_type
    # "String" is two characters longer than "Json": take them out of the alignment padding.
    gap = gap[2:] if len(gap) > 2 else " "
    return head + new_type + gap + rest


@dataclass(frozen=True)
class SchemaField:
    name: str
    type: str  # as written: String, Int?, LlmMessage[]
    line: str


@dataclass
class SchemaModel:
    name: str
    fields: dict[str, SchemaField]
    attributes: list[str]  # @@index(...), @@unique(...), whitespace removed
    block: str


def parse_models(schema: str) -> dict[str, SchemaModel]:
    """The models of a Prisma schema: fields by name, block attributes, source text."""
    models: dict[str, SchemaModel] = {}
    for match in _MODEL_BLOCK.finditer(schema):
        fields: dict[str, SchemaField] = {}
        attributes: list[str] = []
        for raw in match.group(2).splitlines():
            line = raw.split("//", 1)[0].strip()
            if not line:
                continue
            if line.startswith("@@"):
                attributes.append("".join(line.split()))
                continue
            parts = line.split()
            if len(parts) >= 2:
                fields[parts[0]] = SchemaField(parts[0], parts[1], raw.rstrip())
        models[match.group(1)] = SchemaModel(match.group(1), fields, attributes, match.group(0))
    return models


def datasource_provider(schema: str) -> str | None:
    """The datasource's provider ("postgresql", "sqlite"...), if the schema names one."""
    match = _DATASOURCE_PROVIDER.search(schema)
    return match.group(2) if match else None
