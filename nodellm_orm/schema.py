"""The reference Prisma schema shipped with nodellm-orm, and its per-provider variants.

`nodellm-orm init` writes `schema_for(provider)`; the packaged `schema.prisma` is the
PostgreSQL form, identical to the one at the repository root.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib.resources import files

from .model.names import DEFAULT_TABLE_NAMES, OPTIONAL_MODELS

__all__ = [
    "PROVIDERS",
    "ModelDiff",
    "NotASchemaError",
    "SchemaDiff",
    "SchemaField",
    "SchemaModel",
    "datasource_provider",
    "diff_schema",
    "parse_models",
    "reference_schema",
    "schema_for",
    "shaped_schema",
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


# The models of the reference schema: the key of each in `table_names`, and which may be left out.
_MODEL_KEYS = DEFAULT_TABLE_NAMES
_MINIMAL_DROPS = OPTIONAL_MODELS
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def shaped_schema(
    provider: str,
    *,
    table_names: dict[str, str] | None = None,
    minimal: bool = False,
    sqlite_json: str = "Json",
) -> str:
    """The reference schema for `provider`, with models renamed and optional ones dropped.

    - `table_names` (`chat`, `message`, `tool_call`, `request`, `agent_session` -> name): each
      model carries the name, so Prisma names the table, its constraints and indexes after it
      as `nodellm-orm migrate --table-names` does. A name that is not a Prisma identifier
      (`llm-chat`) gets a model name made of its letters and digits and `@@map("llm-chat")`.
    - `minimal`: only LlmChat and LlmMessage (tool-call and request persistence off, no agent
      sessions), without the relation fields to the dropped models.
    - `sqlite_json`: on SQLite, "Json" (Prisma >= 6.2: every client, the JS package's included,
      hands out parsed JSON; Prisma Migrate declares the column JSONB, holding the same JSON
      text) or "String" (prisma-client-py pins Prisma 5.17, whose SQLite connector has no Json;
      its store parses the text itself, so Python values are the same).
    """
    if sqlite_json not in ("Json", "String"):
        raise ValueError(f"sqlite_json must be 'Json' or 'String', not {sqlite_json!r}")
    schema = schema_for(provider)
    if provider == "sqlite" and sqlite_json == "Json":
        schema = schema_for("postgresql").replace(
            'provider = "postgresql"', 'provider = "sqlite"', 1
        )
    unknown = sorted(set(table_names or {}) - set(_MODEL_KEYS))
    if unknown:
        raise ValueError(f"unknown table_names key(s) {unknown}; expected {sorted(_MODEL_KEYS)}")
    dropped = {_MODEL_KEYS[k] for k in _MINIMAL_DROPS} if minimal else set()
    if dropped:
        blocks = parse_models(schema)
        for name in dropped:
            schema = schema.replace(blocks[name].block + "\n\n", "").replace(blocks[name].block, "")
        kept = []
        for line in schema.split("\n"):
            words = line.split()
            if len(words) >= 2 and words[1].rstrip("[]?") in dropped:
                continue  # a relation field to a dropped model
            kept.append(line)
        schema = "\n".join(kept).rstrip("\n") + "\n"
    renames: dict[str, tuple[str, str | None]] = {}
    for key, table in (table_names or {}).items():
        if not table or '"' in table or "\\" in table:
            raise ValueError(f"table_names[{key!r}] is not a usable table name: {table!r}")
        if _IDENTIFIER.fullmatch(table):
            renames[_MODEL_KEYS[key]] = (table, None)
        else:
            model = "".join(
                part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", table)
            )
            if not model or not model[0].isalpha():
                model = "M" + model
            renames[_MODEL_KEYS[key]] = (model, table)
    if renames:
        pattern = re.compile(r"\b(" + "|".join(map(re.escape, renames)) + r")\b")
        schema = pattern.sub(lambda m: renames[m.group(1)][0], schema)
        for model, mapped in renames.values():
            if mapped is not None:
                block = re.compile(rf"(^model {re.escape(model)} \{{.*?)(\n\}})", re.S | re.M)
                found = block.search(schema)
                assert found is not None  # the model was just renamed to this name
                schema = (
                    schema[: found.end(1)] + f'\n\n  @@map("{mapped}")' + schema[found.end(1) :]
                )
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


class NotASchemaError(ValueError):
    """Text that is not a Prisma schema (no datasource, generator or model block)."""


_TOP_BLOCK = re.compile(r"^\s*(datasource|generator|model|enum)\s+\w+\s*\{", re.M)


@dataclass
class ModelDiff:
    """What one model of a user's schema lacks of the reference model."""

    name: str
    block: str  # the reference model, to add whole when `missing`
    missing: bool = False
    lines_to_add: list[str] = field(default_factory=list)  # fields and @@ attributes
    wrong_types: list[tuple[str, str, str]] = field(default_factory=list)  # field, theirs, ours


@dataclass
class SchemaDiff:
    """`diff_schema`'s answer: the provider compared against and each model's differences."""

    provider: str
    models: list[ModelDiff]

    @property
    def count(self) -> int:
        """How many differences: a missing model counts one, so does each line or type."""
        return sum(
            1 if m.missing else len(m.lines_to_add) + len(m.wrong_types) for m in self.models
        )


def diff_schema(text: str) -> SchemaDiff:
    """What a user's schema.prisma lacks of the reference models, for its datasource provider.

    Raises NotASchemaError for text with no Prisma block at all, and ValueError for a
    datasource provider the library does not support.
    """
    if not _TOP_BLOCK.search(text):
        raise NotASchemaError("not a Prisma schema (no datasource, generator or model block)")
    provider = datasource_provider(text) or "postgresql"
    if provider not in PROVIDERS:
        raise ValueError(f"datasource provider {provider!r} is not one of {', '.join(PROVIDERS)}")
    theirs = parse_models(text)
    out: list[ModelDiff] = []
    for name, model in parse_models(schema_for(provider)).items():
        diff = ModelDiff(name, model.block)
        other = theirs.get(name)
        if other is None:
            diff.missing = True
            out.append(diff)
            continue
        for wanted in model.fields.values():
            found = other.fields.get(wanted.name)
            if found is None:
                diff.lines_to_add.append(wanted.line)
            elif found.type != wanted.type:
                diff.wrong_types.append((wanted.name, found.type, wanted.line.strip()))
        raw_attrs = [ln for ln in model.block.splitlines() if ln.strip().startswith("@@")]
        for attr, raw in zip(model.attributes, raw_attrs, strict=True):
            if attr not in other.attributes:
                diff.lines_to_add.append(raw.rstrip())
        if diff.lines_to_add or diff.wrong_types:
            out.append(diff)
    return SchemaDiff(provider, out)
