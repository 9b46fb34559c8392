"""Render a shipped migration for other table names, by renaming quoted identifiers.

Prisma names every constraint and index after its table (`LlmMessage_pkey`,
`LlmMessage_chatId_idx`, `LlmMessage_chatId_fkey`), so a schema whose models carry other names
gets the same DDL with each table name, and each name derived from it, replaced. The scripts
are tokenised: only double-quoted identifiers change, never string literals, comments or
dollar-quoted bodies, and an identifier changes only when it is a table name or starts with
one followed by `_`.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["rename_identifiers"]


def rename_identifiers(script: str, renames: Mapping[str, str]) -> str:
    """`script` with every quoted identifier naming (or derived from) a key of `renames` renamed."""
    if not renames or all(old == new for old, new in renames.items()):
        return script
    # Longest first, so no table name matches as the prefix of a longer one.
    ordered = sorted(renames.items(), key=lambda kv: -len(kv[0]))
    out: list[str] = []
    i, n = 0, len(script)
    while i < n:
        c = script[i]
        if c == '"':
            end = i + 1
            while True:
                end = script.find('"', end)
                if end < 0:
                    raise ValueError(f"unterminated quoted identifier at offset {i}")
                if script.startswith('""', end):
                    end += 2
                    continue
                break
            name = script[i + 1 : end].replace('""', '"')
            out.append('"' + _rename(name, ordered).replace('"', '""') + '"')
            i = end + 1
        elif c == "'":
            end = i + 1
            while True:
                end = script.find("'", end)
                if end < 0:
                    raise ValueError(f"unterminated string literal at offset {i}")
                if script.startswith("''", end):
                    end += 2
                    continue
                break
            out.append(script[i : end + 1])
            i = end + 1
        elif script.startswith("--", i):
            end = script.find("\n", i)
            end = n if end < 0 else end
            out.append(script[i:end])
            i = end
        elif script.startswith("/*", i):
            end = script.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(script[i:end])
            i = end
        elif script.startswith("$$", i):
            end = script.find("$$", i + 2)
            end = n if end < 0 else end + 2
            out.append(script[i:end])
            i = end
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _rename(name: str, ordered: list[tuple[str, str]]) -> str:
    for old, new in ordered:
        if name == old:
            return new
        if name.startswith(old + "_"):
            return new + name[len(old) :]
    return name
