"""Exporting and importing chats: the `chats export` / `chats import` format, as a library.

The format is JSON Lines, one record per line, each a one-key object naming its kind:

```
{"format": "nodellm-orm/chats", "version": 2}
{"chat": {...}}            the chat row, custom columns (userId...) included
{"agentSession": {...}}    its agent session, if it has one (right after its chat)
{"message": {...}}         its messages, oldest first
{"toolCall": {...}}        tool calls, after the messages they belong to
{"request": {...}}         its request rows
{"chat": {...}}            the next chat...
```

Every record after a `chat` belongs to that chat, so an export is written while reading the
database page by page: memory stays bounded by a page (`PAGE` messages) whatever the size of
a chat or of the database. Field names are the schema's; DateTime fields are ISO-8601 strings.
`import_chats` also reads the earlier layout, one object per chat with `messages`,
`toolCalls`, `requests` (and `agentSession`) lists, as JSON Lines or as one JSON array.

An import is checked as it is read and written in ONE transaction: a record of another chat
(a message whose chatId is not the chat's, a tool call of a message not in it...), a field of
the wrong type, an unknown field, or a chat that already exists rolls everything back, and the
error names the source, the line, the record and the field.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import IO, Any

from .core.clock import iso_z, parse_iso
from .model import (
    ChatRecord,
    Cursor,
    RowCounts,
    TableNames,
)
from .model.definition import MODELS
from .stores import Database, open_store
from .stores.base import Store, near_miss_note

__all__ = [
    "FORMAT",
    "PAGE",
    "TransferError",
    "TransferProgress",
    "export_chats",
    "import_chats",
]

FORMAT = {"format": "nodellm-orm/chats", "version": 2}
# Rows read (and written) per statement. Large because a chat's page is found by keyset on
# (createdAt, id), which no index of the shared schema orders (there is no (chatId, createdAt)
# index), so each page costs a pass over the chat's rows: 100,000-message export and import
# took 14.5 s on SQLite and 12.2 s on PostgreSQL with pages of 500, 3.3 s and 4.6 s with 5,000.
# A page of 5,000 messages is a few MB of records.
PAGE = 5000
# Rows per INSERT on import: a few columns each stays under every driver's parameter limit.
_INSERT_BATCH = 64

# (rows done, rows in total or None when unknown): called after each page.
TransferProgress = Callable[[int, int | None], None]


class TransferError(ValueError):
    """An import document that cannot be written as it is; nothing was written."""


# ---- export ---------------------------------------------------------------------------------


def record_dict(record: Any) -> dict[str, Any]:
    """A record as the export writes it (custom chat columns inline, datetimes as ISO text)."""
    # The fields read as they are, not through dataclasses.asdict, which deep-copies every
    # value: nothing here or in the writer changes a value, so the record's own objects are
    # safe. (Measured: a second or two of a 100,000-message SQLite export, within noise; the
    # export's cost is the per-page pass over the chat: see PAGE.)
    names = _FIELD_NAMES.get(type(record))
    if names is None:
        names = _FIELD_NAMES[type(record)] = tuple(f.name for f in fields(record))
    data = {n: getattr(record, n) for n in names}
    if isinstance(record, ChatRecord):
        del data["extra"]
        data.update(record.extra)
    return {k: iso_z(v) if isinstance(v, datetime) else v for k, v in data.items()}


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


async def _chat_pages(store: Store, where: Mapping[str, Any] | None) -> AsyncIterator[ChatRecord]:
    offset = 0
    while True:
        page = await store.list_chats(limit=PAGE, offset=offset, where=where, oldest_first=True)
        for record in page:
            yield record
        if len(page) < PAGE:
            return
        offset += PAGE


async def _total(store: Store, where: Mapping[str, Any] | None) -> int:
    """Rows an export will write (a first pass over chat ids, one page at a time)."""
    total = RowCounts()
    ids: list[str] = []
    async for chat in _chat_pages(store, where):
        ids.append(chat.id)
        if len(ids) == PAGE:
            total += await store.subtree_counts(ids)
            ids = []
    if ids:
        total += await store.subtree_counts(ids)
    return total.chats + total.messages + total.toolCalls + total.requests + total.agentSessions


async def export_records(
    db: Database,
    *,
    where: Mapping[str, Any] | None = None,
    table_names: TableNames | None = None,
    progress: TransferProgress | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """The export's records in order (the format header first), read page by page.

    `db` is anything `create_chat` takes (a scoped handle exports only its tenant's chats);
    `where` narrows to chats whose columns equal it.
    """
    store = await open_store(db, table_names or TableNames())
    total = await _total(store, where) if progress is not None else None
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    yield dict(FORMAT)
    async for chat in _chat_pages(store, where):
        yield {"chat": record_dict(chat)}
        count = 1
        session = await store.agent_session_of(chat.id)
        if session is not None:
            yield {"agentSession": record_dict(session)}
            count += 1
        tick(count)
        cursor: Cursor | None = None
        while True:
            messages = await store.list_messages(chat.id, after=cursor, limit=PAGE)
            for message in messages:
                yield {"message": record_dict(message)}
            calls = await store.list_tool_calls([m.id for m in messages]) if messages else []
            for call in calls:
                yield {"toolCall": record_dict(call)}
            tick(len(messages) + len(calls))
            if len(messages) < PAGE:
                break
            last = messages[-1]
            assert last.createdAt is not None
            cursor = (last.createdAt, last.id)
        cursor = None
        while True:
            requests = await store.list_requests(chat.id, after=cursor, limit=PAGE)
            for request in requests:
                yield {"request": record_dict(request)}
            tick(len(requests))
            if len(requests) < PAGE:
                break
            last_request = requests[-1]
            assert last_request.createdAt is not None
            cursor = (last_request.createdAt, last_request.id)


async def export_chats(
    db: Database,
    out: IO[str],
    *,
    where: Mapping[str, Any] | None = None,
    table_names: TableNames | None = None,
    progress: TransferProgress | None = None,
    array: bool = False,
) -> int:
    """Write every chat (oldest first) to `out`; returns how many chats.

    JSON Lines by default; `array=True` writes the same records as one JSON array (still
    streamed, one record per line).
    """
    chats = 0
    first = True
    if array:
        out.write("[\n")
    async for record in export_records(db, where=where, table_names=table_names, progress=progress):
        chats += "chat" in record
        if array and not first:
            out.write(",\n")
        first = False
        out.write(json.dumps(record, ensure_ascii=False))
        if not array:
            out.write("\n")
    if array:
        out.write("\n]\n")
    return chats


# ---- import ---------------------------------------------------------------------------------

# Record kind in the export format -> model key.
_KINDS: dict[str, str] = {
    "chat": "chat",
    "agentSession": "agent_session",
    "message": "message",
    "toolCall": "tool_call",
    "request": "request",
}
# What an imported value of each Prisma type must be.
_FIELD_KINDS = {
    "String": "str",
    "Int": "int",
    "Float": "float",
    "DateTime": "datetime",
    "Json": "json",
}


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    kind: str  # "str", "int", "float", "datetime", "json"
    required: bool


def _spec(key: str) -> dict[str, _Field]:
    """The fields of one model as the import checks them: a column the schema declares
    without `?` is required (the ORM always sets id, createdAt and updatedAt itself)."""
    return {
        c.name: _Field(c.name, _FIELD_KINDS[c.type], not c.optional) for c in MODELS[key].columns
    }


_SPECS = {kind: _spec(key) for kind, key in _KINDS.items()}


class _Reader:
    """Records of a source, with the line (or array entry) each came from."""

    def __init__(self, source: str, lines: Iterable[str]) -> None:
        self.source = source
        self._lines = lines

    def fail(self, where: str, message: str) -> TransferError:
        return TransferError(f"{self.source}: {where}: {message}; nothing was imported")

    def not_export(self, why: str) -> TransferError:
        return TransferError(f"{self.source} is not a chats export: {why}; nothing was imported")

    def records(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(where, kind, data) for each record, legacy per-chat objects unfolded."""
        lines = iter(self._lines)
        first = ""
        for first in lines:
            if first.strip():
                break
        if first.lstrip().startswith("["):
            text = first + "".join(lines)
            try:
                docs = json.loads(text)
            except json.JSONDecodeError as exc:
                raise self.not_export(f"not JSON ({exc.msg} at line {exc.lineno})") from exc
            for i, doc in enumerate(docs, 1):
                yield from self._unfold(f"entry {i}", doc)
            return
        number = 0
        for number, line in enumerate(_chain(first, lines), 1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as exc:
                raise self.not_export(f"line {number} is not JSON ({exc.msg})") from exc
            yield from self._unfold(f"line {number}", doc)

    def _unfold(self, where: str, doc: Any) -> Iterator[tuple[str, str, dict[str, Any]]]:
        if not isinstance(doc, dict):
            raise self.fail(where, f"expected an object, not {type(doc).__name__}")
        if "format" in doc:
            if doc.get("format") != FORMAT["format"] or doc.get("version") != FORMAT["version"]:
                raise self.fail(where, f"unsupported format {doc!r}")
            return
        if len(doc) == 1 and next(iter(doc)) in _KINDS:
            ((kind, data),) = doc.items()
            yield where, kind, _object(self, where, kind, data)
            return
        if "chat" not in doc:
            raise TransferError(
                f"{self.source}: {where} is not a chat (no 'chat' object); nothing was imported"
            )
        # The earlier layout: one object per chat.
        unknown = sorted(set(doc) - {"chat", "agentSession", "messages", "toolCalls", "requests"})
        if unknown:
            raise self.fail(where, f"unknown key(s) {', '.join(map(repr, unknown))}")
        yield where, "chat", _object(self, where, "chat", doc["chat"])
        if doc.get("agentSession") is not None:
            yield where, "agentSession", _object(self, where, "agentSession", doc["agentSession"])
        for key, kind in (
            ("messages", "message"),
            ("toolCalls", "toolCall"),
            ("requests", "request"),
        ):
            items = doc.get(key) or []
            if not isinstance(items, list):
                raise self.fail(where, f"{key!r} must be a list, not {type(items).__name__}")
            for i, item in enumerate(items):
                yield where, kind, _object(self, f"{where}, {key}[{i}]", kind, item)


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    if first:
        yield first
    yield from rest


def _object(reader: _Reader, where: str, kind: str, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise reader.fail(where, f"{kind} must be an object, not {type(data).__name__}")
    return data


def _check_value(field: _Field, value: Any) -> Any:
    """The value to write, or a TypeError saying what is wrong with it."""
    if value is None:
        if field.required:
            raise TypeError("is required")
        return None
    if field.kind == "str":
        if not isinstance(value, str):
            raise TypeError(f"must be a string, not {type(value).__name__}")
    elif field.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"must be an integer, not {type(value).__name__}")
    elif field.kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"must be a number, not {type(value).__name__}")
    elif field.kind == "datetime":
        if not isinstance(value, str):
            raise TypeError(f"must be an ISO-8601 date-time string, not {type(value).__name__}")
        try:
            return parse_iso(value)
        except ValueError:
            raise TypeError(f"must be an ISO-8601 date-time, not {value!r}") from None
    return value


class _Importer:
    def __init__(self, store: Store, reader: _Reader, columns: frozenset[str]) -> None:
        self.store = store
        self.reader = reader
        self.columns = columns
        self.chats = 0
        self.rows = 0
        self.seen_chats: set[str] = set()
        self.chat_id: str | None = None
        self.pending_chat: dict[str, Any] | None = None
        self.messages: set[str] = set()
        self.buffers: dict[str, list[dict[str, Any]]] = {
            "message": [],
            "toolCall": [],
            "request": [],
        }

    def row(self, where: str, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        spec = _SPECS[kind]
        label = f"{kind} {data.get('id')!r}" if isinstance(data.get("id"), str) else kind
        allowed = set(spec) | (set(self.columns) if kind == "chat" else set())
        unknown = sorted(k for k in data if k not in allowed)
        if unknown:
            raise self.reader.fail(
                where,
                f"{label}: unknown field(s) {', '.join(map(repr, unknown))}"
                + near_miss_note(unknown, allowed),
            )
        out: dict[str, Any] = {}
        for name, field in spec.items():
            try:
                value = _check_value(field, data.get(name))
            except TypeError as exc:
                raise self.reader.fail(where, f"{label}: field {name!r} {exc}") from None
            if value is not None or name in data:
                out[name] = value
        for name in data:
            if name not in spec:  # a custom chat column: any JSON scalar the column takes
                value = data[name]
                if isinstance(value, dict | list):
                    raise self.reader.fail(
                        where,
                        f"{label}: field {name!r} must be a scalar, not {type(value).__name__}",
                    )
                out[name] = value
        return out

    def belongs(self, where: str, kind: str, row: dict[str, Any], field: str) -> None:
        if self.chat_id is None:
            raise self.reader.fail(where, f"{kind} {row['id']!r} comes before any chat")
        if row[field] != self.chat_id:
            raise self.reader.fail(
                where,
                f"{kind} {row['id']!r}: field {field!r} is {row[field]!r}, not the document's "
                f"chat {self.chat_id!r}",
            )

    async def add(self, where: str, kind: str, data: dict[str, Any]) -> None:
        row = self.row(where, kind, data)
        if kind == "chat":
            await self.finish_chat()
            chat_id = row["id"]
            if chat_id in self.seen_chats:
                raise self.reader.fail(where, f"chat {chat_id!r} appears more than once")
            if await self.store.get_chat(chat_id) is not None:
                raise self.reader.fail(where, f"chat {chat_id!r} already exists in the database")
            self.seen_chats.add(chat_id)
            self.chat_id, self.pending_chat, self.messages = chat_id, row, set()
            self.chats += 1
            return
        if kind == "agentSession":
            self.belongs(where, kind, row, "chatId")
            if self.pending_chat is None:
                raise self.reader.fail(
                    where, f"agentSession {row['id']!r} must follow its chat, before its messages"
                )
            chat, self.pending_chat = self.pending_chat, None
            await self.store.create_agent_session(chat, row)
            self.rows += 2
            return
        await self.write_chat()
        if kind == "message":
            self.belongs(where, kind, row, "chatId")
            self.messages.add(row["id"])
        elif kind == "toolCall":
            if row["messageId"] not in self.messages:
                raise self.reader.fail(
                    where,
                    f"toolCall {row['id']!r}: field 'messageId' is {row['messageId']!r}, not a "
                    f"message of the document's chat {self.chat_id!r} (listed before it)",
                )
        else:
            self.belongs(where, kind, row, "chatId")
            linked = row.get("messageId")
            if linked is not None and linked not in self.messages:
                raise self.reader.fail(
                    where,
                    f"request {row['id']!r}: field 'messageId' is {linked!r}, not a message of "
                    f"the document's chat {self.chat_id!r}",
                )
            # Tool calls and messages the request refers to must be in the database first.
            await self.flush("message")
            await self.flush("toolCall")
        buffer = self.buffers[kind]
        buffer.append(row)
        if len(buffer) >= _INSERT_BATCH:
            if kind == "toolCall":
                await self.flush("message")
            await self.flush(kind)

    async def write_chat(self) -> None:
        if self.pending_chat is not None:
            chat, self.pending_chat = self.pending_chat, None
            await self.store.create_chat(chat)
            self.rows += 1

    async def flush(self, kind: str) -> None:
        rows, self.buffers[kind] = self.buffers[kind], []
        if not rows:
            return
        writer: Callable[[list[dict[str, Any]]], Awaitable[None]] = {
            "message": self.store.insert_messages,
            "toolCall": self.store.create_tool_calls,
            "request": self.store.create_requests,
        }[kind]
        await writer(rows)
        self.rows += len(rows)

    async def finish_chat(self) -> None:
        await self.write_chat()
        for kind in ("message", "toolCall", "request"):
            await self.flush(kind)


async def import_chats(
    db: Database,
    lines: Iterable[str],
    *,
    source: str = "<import>",
    table_names: TableNames | None = None,
    progress: TransferProgress | None = None,
    total: int | None = None,
) -> int:
    """Import an export (lines of text) in one transaction; returns how many chats.

    `db` is anything `create_chat` takes: through a scoped handle every chat is stamped with
    the scope and one naming another value is refused. Raises `TransferError` naming `source`,
    the line, the record and the field, and writes nothing, when the document is not sound.
    `progress(bytes read, total)` is called per line when given (`total` in bytes if known).
    """
    store = await open_store(db, table_names or TableNames())
    columns = await store.chat_columns()
    reader = _Reader(source, _metered(lines, progress, total))
    importer = _Importer(store, reader, columns)
    async with store.transaction():
        for where, kind, data in reader.records():
            await importer.add(where, kind, data)
        await importer.finish_chat()
    return importer.chats


def _metered(
    lines: Iterable[str], progress: TransferProgress | None, total: int | None
) -> Iterator[str]:
    done = 0
    for n, line in enumerate(lines, 1):
        yield line
        if progress is not None:
            done += len(line.encode("utf-8"))
            if n % PAGE == 0:
                progress(done, total)
    if progress is not None:
        progress(done, total)
