"""The five models as the packaged schema.prisma declares them: the one definition of the
physical schema.

Read once, at import, from the schema `nodellm-orm init` writes. Everything that depends on
the columns is derived from it: the SQLAlchemy tables (`stores.tables`), which columns a store
selects and how it builds records from them (`stores.sql`, `stores.prisma`), which fields hold
JSON, the import format's field kinds (`transfer`). The records (`model.records`) are the typed
Python face of the same models; loading this module checks they name the schema's columns, so a
column is added in schema.prisma, in `model.records` and in one migration per provider, and
nowhere else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..schema import parse_models, reference_schema
from .names import DEFAULT_TABLE_NAMES
from .records import (
    AgentSessionRecord,
    ChatRecord,
    MessageRecord,
    RequestRecord,
    ToolCallRecord,
    columns,
)

__all__ = [
    "JSON_FIELDS",
    "MODELS",
    "RECORDS",
    "SCALAR_TYPES",
    "Column",
    "ForeignKey",
    "Model",
    "SchemaDefinitionError",
    "load_models",
]

# The record of each model key.
RECORDS: Mapping[str, type[Any]] = {
    "chat": ChatRecord,
    "message": MessageRecord,
    "tool_call": ToolCallRecord,
    "request": RequestRecord,
    "agent_session": AgentSessionRecord,
}

# The Prisma scalar types the stores map (column type, value conversion), and the Python type a
# record field of that type is annotated with.
SCALAR_TYPES: Mapping[str, str] = {
    "String": "str",
    "Int": "int",
    "Float": "float",
    "DateTime": "datetime",
    "Json": "Any",
}

# Prisma's referential actions in SQL.
_ACTIONS = {
    "Cascade": "CASCADE",
    "Restrict": "RESTRICT",
    "NoAction": "NO ACTION",
    "SetNull": "SET NULL",
    "SetDefault": "SET DEFAULT",
}
_LIST = re.compile(r"\[([^\]]*)\]")


class SchemaDefinitionError(RuntimeError):
    """The packaged schema.prisma uses something the stores do not map, or disagrees with the
    records."""


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str  # Prisma scalar type: String, Int, Float, DateTime, Json
    optional: bool  # `?`: nullable
    primary_key: bool  # @id
    unique: bool  # @unique


@dataclass(frozen=True, slots=True)
class ForeignKey:
    columns: tuple[str, ...]
    target: str  # model key
    references: tuple[str, ...]
    on_delete: str  # SQL spelling: CASCADE, SET NULL...
    on_update: str


@dataclass(frozen=True, slots=True)
class Model:
    key: str  # chat, message, tool_call, request, agent_session
    name: str  # the model name, which is the default table name
    columns: tuple[Column, ...]  # scalar fields, in schema order
    foreign_keys: tuple[ForeignKey, ...]
    indexes: tuple[tuple[str, ...], ...]  # @@index
    unique_together: tuple[tuple[str, ...], ...]  # @@unique
    record: type[Any]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def of_type(self, prisma_type: str) -> tuple[str, ...]:
        """The columns of one Prisma type (`DateTime`, `Json`), in schema order."""
        return tuple(c.name for c in self.columns if c.type == prisma_type)


def _names_in(text: str, key: str) -> tuple[str, ...]:
    """`[a, b]` following `key:` in an attribute's arguments."""
    found = re.search(rf"{key}\s*:\s*\[([^\]]*)\]", text)
    if found is None:
        raise SchemaDefinitionError(f"no {key}: [...] in {text!r}")
    return tuple(n.strip() for n in found.group(1).split(",") if n.strip())


def _action(text: str, key: str, default: str) -> str:
    found = re.search(rf"{key}\s*:\s*(\w+)", text)
    if found is None:
        return default
    try:
        return _ACTIONS[found.group(1)]
    except KeyError:
        raise SchemaDefinitionError(f"unknown referential action {found.group(1)!r}") from None


def load_models(schema: str) -> dict[str, Model]:
    """The five models of a schema in the reference schema's form, by model key, in the
    schema's order.

    Raises SchemaDefinitionError for what the stores cannot map (another scalar type, `@map`,
    native `@db.` types, composite ids) rather than mapping it wrongly.
    """
    parsed = parse_models(schema)
    keys = {name: key for key, name in DEFAULT_TABLE_NAMES.items()}
    if set(parsed) != set(keys):
        raise SchemaDefinitionError(
            f"schema.prisma declares the models {sorted(parsed)}; expected {sorted(keys)}"
        )
    models: dict[str, Model] = {}
    for name, block in parsed.items():
        where = f"schema.prisma model {name}"
        cols: list[Column] = []
        fks: list[ForeignKey] = []
        for field in block.fields.values():
            base = field.type.rstrip("?").removesuffix("[]")
            attrs = field.line.split("//", 1)[0].split(None, 2)[2:] or [""]
            rest = attrs[0]
            if base in keys:  # a relation field: a foreign key when it names `fields:`
                if "@relation" in rest and "fields:" in rest:
                    own = _names_in(rest, "fields")
                    optional = field.type.endswith("?")
                    fks.append(
                        ForeignKey(
                            columns=own,
                            target=keys[base],
                            references=_names_in(rest, "references"),
                            on_delete=_action(
                                rest, "onDelete", "SET NULL" if optional else "RESTRICT"
                            ),
                            on_update=_action(rest, "onUpdate", "CASCADE"),
                        )
                    )
                continue
            if base not in SCALAR_TYPES or field.type.endswith("[]"):
                raise SchemaDefinitionError(
                    f"{where}: field {field.name} has type {field.type}, which the stores do "
                    f"not map; supported: {', '.join(SCALAR_TYPES)} (optionally with ?)"
                )
            if "@map(" in rest or "@db." in rest:
                raise SchemaDefinitionError(
                    f"{where}: field {field.name} uses @map or a native @db. type, which the "
                    "stores do not map"
                )
            cols.append(
                Column(
                    name=field.name,
                    type=base,
                    optional=field.type.endswith("?"),
                    primary_key=re.search(r"@id\b", rest) is not None,
                    unique=re.search(r"@unique\b", rest) is not None,
                )
            )
        indexes: list[tuple[str, ...]] = []
        unique: list[tuple[str, ...]] = []
        for attribute in block.attributes:
            listed = _LIST.search(attribute)
            names = tuple(n for n in (listed.group(1).split(",") if listed else []) if n)
            if attribute.startswith("@@index("):
                indexes.append(names)
            elif attribute.startswith("@@unique("):
                unique.append(names)
            else:
                raise SchemaDefinitionError(f"{where}: {attribute} is not mapped by the stores")
        if [c.name for c in cols if c.primary_key] != ["id"]:
            raise SchemaDefinitionError(f"{where}: the stores expect `id` as the only @id")
        key = keys[name]
        models[key] = Model(
            key, name, tuple(cols), tuple(fks), tuple(indexes), tuple(unique), RECORDS[key]
        )
    return models


def _check_records(models: Mapping[str, Model]) -> None:
    # Same names; the order may differ (a dataclass puts fields without a default first), and
    # readers build records in the record's order, selecting columns by name.
    for model in models.values():
        fields = columns(model.record)
        if sorted(fields) != sorted(model.names):
            missing = sorted(set(model.names) - set(fields))
            extra = sorted(set(fields) - set(model.names))
            raise SchemaDefinitionError(
                f"{model.record.__name__} and schema.prisma's {model.name} disagree: "
                f"columns without a record field {missing}, record fields without a column "
                f"{extra}; keep nodellm_orm/model/records.py in step with schema.prisma"
            )


MODELS: Mapping[str, Model] = load_models(reference_schema())
_check_records(MODELS)

# Json columns by name, over every model: what a store encodes on write and decodes on read.
# (A name is Json in every model that has it; the model test holds that.)
JSON_FIELDS: frozenset[str] = frozenset(n for m in MODELS.values() for n in m.of_type("Json"))
