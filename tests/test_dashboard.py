"""The dashboard over real SQLite files and the real PostgreSQL server, page by page.

Figures on the pages are checked against SQL written here, independently of the dashboard's
queries (percentiles are recomputed in Python from the raw durations). The browser test is
tests/test_dashboard_browser.py; these run the ASGI app in-process.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from nodellm_orm import connect
from nodellm_orm.cli import main
from nodellm_orm.core.clock import to_datetime
from nodellm_orm.dashboard import DashboardError, create_app
from nodellm_orm.dashboard._queries import RANGES, SCAN_SHARE
from nodellm_orm.stores.urls import async_url
from tests.conftest import sql_dialects
from tests.support.dashboard_seed import Seeded, fresh_url, long_chat, seed, sql


@pytest.fixture(params=sql_dialects())
async def seeded(request: pytest.FixtureRequest, tmp_path: Path) -> Seeded:
    return await seed(await fresh_url(request.param, tmp_path, "dash"))


class Pages:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def get(self, path: str, status: int = 200) -> str:
        response = await self.client.get(path)
        assert response.status_code == status, response.text
        # Error pages are read as text; pages are parsed as the HTML they are.
        return response.text if status == 200 else html.unescape(response.text)


@pytest.fixture
async def pages(seeded: Seeded) -> AsyncIterator[Pages]:
    app = create_app(seeded.url)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        yield Pages(client)


def cell_texts(page: str, table_id: str) -> list[list[str]]:
    body = page.split(f'<table id="{table_id}">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body.split("<tbody>", 1)[1], re.S)
    return [
        [
            html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)
        ]
        for r in rows
    ]


def metric(page: str, name: str) -> str:
    match = re.search(rf'data-metric="{name}">([^<]*)<', page)
    assert match, name
    return html.unescape(match.group(1))


def percentile(values: list[float], p: float) -> float:
    """Linear interpolation between closest ranks (PostgreSQL's percentile_cont)."""
    ordered = sorted(values)
    h = (len(ordered) - 1) * p
    low = int(h)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (h - low) * (ordered[high] - ordered[low])


async def test_overview_figures_equal_sql(seeded: Seeded, pages: Pages) -> None:
    for path in ("/?range=all", "/"):  # everything was written just now: same figures
        page = await pages.get(path)
        ((n, inp, out, cost, errors),) = await sql(
            seeded.url,
            'SELECT count(*), sum("inputTokens"), sum("outputTokens"), sum(cost), '
            'sum(CASE WHEN "statusCode" >= 400 THEN 1 ELSE 0 END) FROM "LlmRequest"',
        )
        ((reasoning,),) = await sql(seeded.url, 'SELECT sum("thinkingTokens") FROM "LlmMessage"')
        assert (n, errors, reasoning) == (7, 2, 40)  # the seed as written
        assert metric(page, "requests") == f"{n:,}"
        assert metric(page, "input_tokens") == f"{inp:,}"
        assert metric(page, "output_tokens") == f"{out:,}"
        assert metric(page, "reasoning_tokens") == f"{reasoning:,}"
        assert metric(page, "cost") == f"${cost:,.6f}"
        assert metric(page, "error_rate") == f"{100 * errors / n:.2f}%"

        by_model = await sql(
            seeded.url,
            'SELECT provider, model, count(*), sum("inputTokens"), sum("outputTokens"), '
            "coalesce(sum(cost), 0), "
            'sum(CASE WHEN "statusCode" >= 400 THEN 1 ELSE 0 END) FROM "LlmRequest" '
            "GROUP BY provider, model ORDER BY provider, model",
        )
        thinking = dict(
            await sql(
                seeded.url,
                'SELECT "modelId", sum("thinkingTokens") FROM "LlmMessage" '
                'WHERE "thinkingTokens" IS NOT NULL GROUP BY "modelId"',
            )
        )
        assert cell_texts(page, "by-model") == [
            [p, m, f"{c:,}", f"{i:,}", f"{o:,}", f"{thinking.get(m, 0):,}", f"${co:,.6f}", f"{e:,}"]
            for p, m, c, i, o, co, e in by_model
        ]

        durations: dict[str, list[float]] = {}
        for model, duration in await sql(seeded.url, 'SELECT model, duration FROM "LlmRequest"'):
            durations.setdefault(model, []).append(float(duration))
        assert cell_texts(page, "latency") == [
            [
                model,
                str(len(values)),
                *(f"{percentile(values, p):,.1f} ms" for p in (0.5, 0.95, 0.99)),
            ]
            for model, values in sorted(durations.items())
        ]

        top = await sql(
            seeded.url,
            'SELECT r."chatId", c.model, count(*), sum(r."inputTokens" + r."outputTokens"), '
            'coalesce(sum(r.cost), 0) AS total FROM "LlmRequest" r '
            'JOIN "LlmChat" c ON c.id = r."chatId" GROUP BY r."chatId", c.model '
            'ORDER BY total DESC, r."chatId"',
        )
        assert cell_texts(page, "expensive") == [
            [cid, model, f"{k:,}", f"{tok:,}", f"${co:,.6f}"] for cid, model, k, tok, co in top
        ]
        assert top[0][0] == seeded.failed_chat  # bob's 0.015 turn is the dearest


def bucket_start(at: datetime, unit: str) -> int:
    start = at.replace(minute=0, second=0, microsecond=0)
    if unit != "hour":
        start = start.replace(hour=0)
    if unit == "week":
        start -= timedelta(days=start.weekday())  # weeks start on Monday
    return int(start.timestamp() * 1000)


async def test_overview_buckets_and_bad_parameters(seeded: Seeded, pages: Pages) -> None:
    rows = await sql(seeded.url, 'SELECT "createdAt", "inputTokens" FROM "LlmRequest"')
    if seeded.url.startswith("sqlite"):  # the seed mixes epoch-ms integers and ISO text
        assert {type(at) for at, _ in rows} == {int, str}
    for bucket in ("hour", "day", "week"):
        page = await pages.get(f"/?range=all&bucket={bucket}")
        charts = json.loads(page.split('id="charts-data">', 1)[1].split("</script>", 1)[0])
        expected: dict[int, list[int]] = {}
        for at, tokens in rows:
            when = to_datetime(at)
            assert when is not None
            acc = expected.setdefault(bucket_start(when, bucket), [0, 0])
            acc[0] += 1
            acc[1] += tokens
        requests = charts["requests"]["data"]
        xs = requests[0]["x"]
        counts = [sum(trace["y"][i] for trace in requests) for i in range(len(xs))]
        inputs = next(t for t in charts["tokens"]["data"] if t["name"] == "input")["y"]
        assert {x: [n, i] for x, n, i in zip(xs, counts, inputs, strict=True)} == expected
        assert charts["requests"]["layout"]["title"]["text"] == f"Requests per {bucket}"
    assert "range must be one of" in await pages.get("/?range=forever", status=400)
    assert "bucket must be one of" in await pages.get("/?bucket=minute", status=400)
    assert "unknown parameter 'rnage'" in await pages.get("/?rnage=all", status=400)


async def test_chats_list_totals_and_custom_column_filter(seeded: Seeded, pages: Pages) -> None:
    page = await pages.get("/chats")
    ((count,),) = await sql(seeded.url, 'SELECT count(*) FROM "LlmChat"')
    assert re.search(r'id="chat-total">(\d+)<', page).group(1) == str(count) == "4"  # type: ignore[union-attr]
    totals = await sql(
        seeded.url,
        'SELECT c.id, (SELECT count(*) FROM "LlmMessage" m WHERE m."chatId" = c.id), '
        '(SELECT count(*) FROM "LlmRequest" r WHERE r."chatId" = c.id), '
        '(SELECT coalesce(sum(r."inputTokens" + r."outputTokens"), 0) FROM "LlmRequest" r '
        'WHERE r."chatId" = c.id), '
        '(SELECT coalesce(sum(r.cost), 0) FROM "LlmRequest" r WHERE r."chatId" = c.id) '
        'FROM "LlmChat" c',
    )
    for chat_id, messages, requests, tokens, cost in totals:
        row = page.split(f'<tr data-chat="{chat_id}">', 1)[1].split("</tr>", 1)[0]
        assert metric(row, "messages") == f"{messages:,}"
        assert metric(row, "requests") == f"{requests:,}"
        assert metric(row, "tokens") == f"{tokens:,}"
        assert metric(row, "cost") == f"${cost:,.6f}"
    # The agent session shows its class and metadata.
    session_row = page.split(f'<tr data-chat="{seeded.session_chat}">', 1)[1].split("</tr>")[0]
    assert "SupportAgent" in session_row and '{"ticket": 7}' in html.unescape(session_row)

    for user, expected in seeded.chats_of.items():
        narrowed = await pages.get(f"/chats?column=userId&value={user}")
        shown = set(re.findall(r'<tr data-chat="([^"]+)"', narrowed))
        assert shown == set(expected)
    by_model = await pages.get("/chats?model=claude-sonnet-4")
    assert set(re.findall(r'<tr data-chat="([^"]+)"', by_model)) == {seeded.failed_chat}
    by_id = await pages.get(f"/chats?id={seeded.tool_chat[:-4]}")
    assert set(re.findall(r'<tr data-chat="([^"]+)"', by_id)) == {seeded.tool_chat}
    by_agent = await pages.get("/chats?agent=SupportAgent")
    assert set(re.findall(r'<tr data-chat="([^"]+)"', by_agent)) == {seeded.session_chat}
    # The date filters (the seed was written today).
    future = await pages.get("/chats?from=2999-01-01")
    assert "no chats match" in future
    past = await pages.get("/chats?to=2000-01-01")
    assert "no chats match" in past

    refused = await pages.get("/chats?column=nosuch&value=1", status=400)
    assert "cannot filter on column 'nosuch'" in refused and "userId" in refused
    assert "from must be a date" in await pages.get("/chats?from=yesterday", status=400)


async def test_conversation_shows_tools_thinking_failures_and_requests(
    seeded: Seeded, pages: Pages
) -> None:
    page = await pages.get(f"/chats/{seeded.tool_chat}")
    call = html.unescape(page.split('class="tool-call"', 1)[1].split('class="tool-call"', 1)[0])
    assert "get_weather" in call
    assert '"city": "Paris"' in call
    assert '"conditions": "sunny"' in call  # the stored result
    assert "The user asks how to get around" in page  # thinking
    requests = await sql(
        seeded.url,
        'SELECT "messageId", "statusCode", duration FROM "LlmRequest" WHERE "chatId" = :c',
        c=seeded.tool_chat,
    )
    for message_id, status, duration in requests:
        turn = page.split(f'data-message="{message_id}"', 1)[1].split('<div class="turn', 1)[0]
        assert f'data-metric="status">{status}<' in turn and f"{duration:,} ms" in turn

    failed = await pages.get(f"/chats/{seeded.failed_chat}")
    assert failed.count('data-failed="1"') == 1
    failed_turn = failed.split('data-failed="1"', 1)[1]
    assert "Are you there?" in failed_turn and 'data-metric="status">500<' in failed_turn

    interrupted = await pages.get(f"/chats/{seeded.interrupted_chat}")
    assert 'data-interrupted="error"' in interrupted
    assert 'data-metric="status">502<' in interrupted

    missing = await pages.get("/chats/no-such-chat", status=404)
    assert "no chat with id 'no-such-chat'" in missing


async def test_a_long_conversation_renders_a_page_at_a_time(seeded: Seeded, pages: Pages) -> None:
    from nodellm_orm.dashboard._queries import MESSAGES_PER_PAGE

    # 110 turns, of which turns 10 and 75 fail (the question and its 500 request row stay):
    # 218 messages, three pages. The failure at turn 10 shifts the pairs, so page 1 ends on
    # a question whose answer opens page 2.
    chat_id = await long_chat(seeded.url, turns=110, failing=(10, 75))
    ordered = [
        (mid, role)
        for mid, role in await sql(
            seeded.url,
            'SELECT id, role FROM "LlmMessage" WHERE "chatId" = :c ORDER BY "createdAt", id',
            c=chat_id,
        )
    ]
    assert len(ordered) == 218 and MESSAGES_PER_PAGE == 100
    assert ordered[99][1] == "user" and ordered[100][1] == "assistant"
    requests = await sql(
        seeded.url,
        'SELECT id, "messageId", "statusCode", "inputTokens" + "outputTokens", cost '
        'FROM "LlmRequest" WHERE "chatId" = :c',
        c=chat_id,
    )
    assert len(requests) == 110
    base = f"/chats/{chat_id}"
    seen_requests: dict[str, str] = {}
    failed_questions: list[str] = []
    path = base
    for number in (1, 2, 3):
        page = await pages.get(path)
        shown = re.findall(r'<div class="turn[^"]*" data-message="([^"]+)"', page)
        assert shown == [mid for mid, _ in ordered[100 * (number - 1) : 100 * number]]
        span = f"messages {100 * (number - 1) + 1:,}-{min(100 * number, 218):,} of 218"
        assert f"{span} · page {number} of 3" in html.unescape(page)
        # The whole chat's totals on every page.
        assert metric(page, "requests") == "110"
        assert metric(page, "tokens") == f"{sum(r[3] for r in requests):,}"
        assert metric(page, "cost") == f"${sum(r[4] or 0 for r in requests):,.6f}"
        # Each request row beside the turn it belongs to.
        for turn_html in page.split('<div class="turn')[1:]:
            message_id = turn_html.split('data-message="', 1)[1].split('"', 1)[0]
            for request_id in re.findall(r'data-request="([^"]+)"', turn_html):
                assert request_id not in seen_requests
                seen_requests[request_id] = message_id
            if 'data-failed="1"' in turn_html:
                failed_questions.append(message_id)
        assert ('rel="prev"' in page) == (number > 1)
        assert ('rel="next"' in page) == (number < 3)
        if number < 3:
            path = html.unescape(
                re.search(r'class="next" rel="next" href="([^"]+)"', page).group(1)
            )  # type: ignore[union-attr]
            assert path == f"{base}?page={number + 1}"
    questions = [mid for mid, role in ordered if role == "user"]
    for request_id, message_id, status, _, _ in requests:
        if message_id is not None:
            assert seen_requests[request_id] == message_id
        else:  # a failed turn's request: beside its question, which is marked failed
            assert status == 500
            assert seen_requests[request_id] in questions
    assert len(seen_requests) == 110
    assert failed_questions == [questions[10], questions[75]]  # page 1's last is answered
    assert "Question 10?" in (await pages.get(base)) and "Question 75?" in (
        await pages.get(f"{base}?page=2")
    )
    assert "past the last page of this chat (3: 218 messages" in await pages.get(
        f"{base}?page=4", status=400
    )
    assert "page must be 1 or more" in await pages.get(f"{base}?page=0", status=400)
    assert "unknown parameter 'p'" in await pages.get(f"{base}?p=2", status=400)


async def test_a_failed_request_in_the_same_millisecond_as_the_next_question(
    seeded: Seeded, pages: Pages
) -> None:
    # A fast failure: its request row and the next turn's question share a millisecond (seen
    # on PostgreSQL, which rounds to ms). The request is the failed turn's, not the next one's.
    chat_id = await long_chat(seeded.url, turns=4, failing=(1,))
    (failed_request,) = await sql(
        seeded.url,
        'SELECT id FROM "LlmRequest" WHERE "chatId" = :c AND "messageId" IS NULL',
        c=chat_id,
    )
    questions = await sql(
        seeded.url,
        'SELECT id, "createdAt" FROM "LlmMessage" WHERE "chatId" = :c AND role = \'user\' '
        'ORDER BY "createdAt", id',
        c=chat_id,
    )
    engine = create_async_engine(async_url(seeded.url))
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text('UPDATE "LlmRequest" SET "createdAt" = :at WHERE id = :r'),
                {"at": questions[2][1], "r": failed_request[0]},
            )
    finally:
        await engine.dispose()

    page = await pages.get(f"/chats/{chat_id}")
    turns = {
        chunk.split('data-message="', 1)[1].split('"', 1)[0]: chunk
        for chunk in page.split('<div class="turn')[1:]
    }
    failed = [mid for mid, chunk in turns.items() if 'data-failed="1"' in chunk]
    assert failed == [questions[1][0]]
    assert f'data-request="{failed_request[0]}"' in turns[questions[1][0]]
    assert f'data-request="{failed_request[0]}"' not in turns[questions[2][0]]


async def test_where_scope_keeps_to_its_chats(seeded: Seeded) -> None:
    app = create_app(seeded.url, where={"userId": "u-bob"})
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        listed = (await client.get("/chats")).text
        assert set(re.findall(r'<tr data-chat="([^"]+)"', listed)) == {seeded.failed_chat}
        overview = (await client.get("/?range=all")).text
        ((n,),) = await sql(
            seeded.url,
            'SELECT count(*) FROM "LlmRequest" r JOIN "LlmChat" c ON c.id = r."chatId" '
            "WHERE c.\"userId\" = 'u-bob'",
        )
        assert metric(overview, "requests") == str(n) == "2"
        assert (await client.get(f"/chats/{seeded.tool_chat}")).status_code == 404
    bad = create_app(seeded.url, where={"tenant": "x"})
    with pytest.raises(DashboardError, match="has no column 'tenant'"):
        await bad.state.reader.check()
    await bad.state.reader.engine.dispose()


async def test_the_dashboard_cannot_write(seeded: Seeded) -> None:
    app = create_app(seeded.url)
    engine = app.state.reader.engine
    try:
        with pytest.raises(Exception, match=r"(?i)read.only|readonly"):
            async with engine.begin() as conn:
                await conn.execute(text('DELETE FROM "LlmRequest"'))
    finally:
        await engine.dispose()
    ((n,),) = await sql(seeded.url, 'SELECT count(*) FROM "LlmRequest"')
    assert n == 7


async def test_pages_load_nothing_from_elsewhere(pages: Pages, seeded: Seeded) -> None:
    for path in ("/", "/chats", f"/chats/{seeded.tool_chat}"):
        page = await pages.get(path)
        for ref in re.findall(r'(?:src|href|action)="([^"]*)"', page):
            assert ref.startswith(("/", "?", "data:")), (path, ref)
    response = await pages.client.get("/static/plotly.min.js")
    assert response.status_code == 200 and "plotly" in response.text[:2000].lower()
    assert "default-src 'none'" in (await pages.client.get("/")).headers["content-security-policy"]


async def test_mounted_in_another_app_links_stay_under_the_mount(seeded: Seeded) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    dashboard = create_app(seeded.url)
    outer = Starlette(routes=[Mount("/llm", app=dashboard)])
    try:
        transport = httpx.ASGITransport(app=outer)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            page = (await client.get("/llm/chats")).text
            assert f'href="/llm/chats/{seeded.tool_chat}"' in page
            assert 'href="/llm/static/dashboard.css"' in page
            assert (await client.get(f"/llm/chats/{seeded.tool_chat}")).status_code == 200
    finally:
        await dashboard.state.reader.engine.dispose()


async def test_custom_table_names(tmp_path: Path) -> None:
    from nodellm_orm import TableNames, create_chat, create_llm
    from nodellm_orm.testing import FakeProvider
    from tests.conftest import CUSTOM_TABLES, renamed_ddl

    url = f"sqlite:///{tmp_path / 'custom.db'}"
    engine = create_async_engine(async_url(url))
    async with engine.begin() as conn:
        for statement in renamed_ddl("sqlite", CUSTOM_TABLES):
            await conn.execute(text(statement))
    names = TableNames(**CUSTOM_TABLES)
    chat = await create_chat(engine, create_llm(FakeProvider(["Hi."])), table_names=names)
    await chat.ask("Hello")
    await engine.dispose()

    app = create_app(url, table_names=names)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        page = (await client.get("/chats")).text
        assert f'<tr data-chat="{chat.id}">' in page
        assert metric((await client.get("/?range=all")).text, "requests") == "1"
    await app.state.reader.engine.dispose()
    wrong = create_app(url)
    with pytest.raises(DashboardError, match="'LlmChat' \\(for chat\\), 'LlmMessage'"):
        await wrong.state.reader.check()
    await wrong.state.reader.engine.dispose()


def test_cli_refuses_bad_options_before_serving(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    url = f"sqlite:///{db}"
    runner = CliRunner()
    missing = runner.invoke(main, ["dashboard", "--url", url])
    assert missing.exit_code == 1 and "no database file" in missing.output
    assert not db.exists()
    assert runner.invoke(main, ["migrate", "--url", url]).exit_code == 0
    unknown = runner.invoke(main, ["dashboard", "--url", url, "--where", "tenant=acme"])
    assert unknown.exit_code == 1
    assert "--where: LlmChat has no column 'tenant'" in unknown.output
    malformed = runner.invoke(main, ["dashboard", "--url", url, "--where", "tenant"])
    assert malformed.exit_code == 1 and "--where takes KEY=VALUE" in malformed.output
    tables = runner.invoke(main, ["dashboard", "--url", url, "--table-names", "chats=X"])
    assert tables.exit_code == 1 and "unknown table 'chats'" in tables.output
    absent = runner.invoke(main, ["dashboard", "--url", url, "--table-names", "chat=Nope"])
    assert absent.exit_code == 1 and "'Nope' (for chat) does not exist" in absent.output
    refused = runner.invoke(main, ["dashboard", "--url", "postgresql://postgres@127.0.0.1:1/x"])
    assert refused.exit_code == 1 and "cannot connect to the database" in refused.output
    word = runner.invoke(main, ["dashboard", "--url", "notaurl"])
    assert word.exit_code == 1 and "not a database URL" in word.output


def test_importing_the_library_does_not_import_the_dashboard() -> None:
    probe = (
        "import sys, nodellm_orm, nodellm_orm.cli; "
        "print(sorted(m for m in ('starlette', 'uvicorn', 'jinja2', 'plotly', "
        "'nodellm_orm.dashboard') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# -- time ranges: rows of many ages, figures per range against the rows themselves

# (chat, provider, model of each request, age of each request in hours, chat model). The
# oldest rows make the recent ranges a small share of the table's time span and 90 days a
# wide one, so the overview reads both ways (on SQLite: through the createdAt index, and
# the whole table grouped by chat first); "switch" changes model inside one day, "span"
# crosses days, weeks and the 30-day boundary.
AGED = [
    ("recent", "openai", ["gpt-4o-mini"] * 3, [1, 2, 3], "gpt-4o-mini"),
    ("week", "anthropic", ["claude-sonnet-4"] * 2, [50, 100], "claude-sonnet-4"),
    (
        "switch",
        "openai",
        ["gpt-4o-mini", "gpt-4o-mini", "o3-mini", "o3-mini"],
        [240] * 4,
        "o3-mini",
    ),
    ("span", "openai", ["o3-mini"] * 4, [480, 600, 840, 960], "o3-mini"),
    ("old", "anthropic", ["claude-sonnet-4"] * 12, [2400 + 200 * k for k in range(12)], None),
]


@dataclass
class AgedRow:
    chat: str
    provider: str
    model: str
    at: datetime
    status: int
    duration: int
    inp: int
    out: int
    cost: float | None
    thinking: int | None
    epoch_ms: bool  # on SQLite, stored as epoch milliseconds rather than ISO-8601 text


def aged_rows(now: datetime) -> list[AgedRow]:
    rows: list[AgedRow] = []
    for chat, provider, models, ages, _ in AGED:
        for k, (model, age) in enumerate(zip(models, ages, strict=True)):
            failed = chat == "week" and k == 1
            rows.append(
                AgedRow(
                    chat=chat,
                    provider=provider,
                    model=model,
                    at=now - timedelta(hours=age, minutes=k),
                    status=500 if failed else 200,
                    duration=300 + 37 * len(rows) % 500,
                    inp=0 if failed else 100 + 10 * len(rows),
                    out=0 if failed else 5 + len(rows),
                    cost=None if failed else 0.001 * (len(rows) + 1),
                    thinking=20 + len(rows) if model == "o3-mini" else None,
                    epoch_ms=len(rows) % 2 == 1,
                )
            )
    return rows


@pytest.fixture(params=sql_dialects())
async def aged(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, list[AgedRow]]:
    url = await fresh_url(request.param, tmp_path, "aged")
    store = await connect(url)  # creates the tables
    await store.close()
    now = datetime.now(UTC).replace(microsecond=0)
    rows = aged_rows(now)
    sqlite = url.startswith("sqlite")

    def at(row: AgedRow) -> Any:
        if not sqlite:
            return row.at.replace(tzinfo=None)
        if row.epoch_ms:  # as Prisma's native engine writes them
            return int(row.at.timestamp() * 1000)
        return row.at.strftime("%Y-%m-%dT%H:%M:%S.000Z")  # as Prisma's JS adapters do

    engine = create_async_engine(async_url(url))
    async with engine.begin() as conn:
        for chat, provider, _, _, model in AGED:
            first = min((r for r in rows if r.chat == chat), key=lambda r: r.at)
            await conn.execute(
                text(
                    'INSERT INTO "LlmChat" (id, model, provider, "createdAt", "updatedAt") '
                    "VALUES (:id, :model, :provider, :at, :at)"
                ),
                {"id": chat, "model": model, "provider": provider, "at": at(first)},
            )
        for k, row in enumerate(rows):
            await conn.execute(
                text(
                    'INSERT INTO "LlmMessage" (id, "chatId", role, content, "thinkingTokens", '
                    '"modelId", provider, "createdAt") VALUES (:id, :chat, \'assistant\', '
                    "'answer', :thinking, :model, :provider, :at)"
                ),
                {
                    "id": f"m{k}",
                    "chat": row.chat,
                    "thinking": row.thinking,
                    "model": row.model,
                    "provider": row.provider,
                    "at": at(row),
                },
            )
            await conn.execute(
                text(
                    'INSERT INTO "LlmRequest" (id, "chatId", "messageId", provider, model, '
                    '"statusCode", duration, "inputTokens", "outputTokens", cost, "createdAt") '
                    "VALUES (:id, :chat, :m, :provider, :model, :status, :duration, :inp, "
                    ":out, :cost, :at)"
                ),
                {
                    "id": f"r{k}",
                    "chat": row.chat,
                    "m": f"m{k}",
                    "provider": row.provider,
                    "model": row.model,
                    "status": row.status,
                    "duration": row.duration,
                    "inp": row.inp,
                    "out": row.out,
                    "cost": row.cost,
                    "at": at(row),
                },
            )
    await engine.dispose()
    return url, rows


async def test_each_range_counts_exactly_its_rows(aged: tuple[str, list[AgedRow]]) -> None:
    url, rows = aged
    app = create_app(url)
    reader = app.state.reader
    await reader.check()
    tables = await reader._tables()
    dialect = reader.dialect
    share = SCAN_SHARE["request"]
    if dialect.wide_range(tables.request, datetime.now(UTC), share) is not None:
        # Where the dialect picks the form (SQLite), this seed puts ranges on both sides.
        async with reader.engine.connect() as conn:
            for span, wide in ((timedelta(days=30), False), (timedelta(days=90), True)):
                probe = dialect.wide_range(tables.request, datetime.now(UTC) - span, share)
                assert probe is not None and bool(await conn.scalar(probe)) is wide, span
    chat_model = {chat: model for chat, _, _, _, model in AGED}
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for range_name, bucket in (
                ("24h", "hour"),
                ("7d", "day"),
                ("30d", "day"),
                ("90d", "week"),
                ("all", "week"),
                ("90d", "day"),
                ("90d", "hour"),
            ):
                page = (await client.get(f"/?range={range_name}&bucket={bucket}")).text
                window = RANGES[range_name]
                since = None if window is None else datetime.now(UTC) - window
                inside = [r for r in rows if since is None or r.at >= since]
                assert inside, range_name

                by_model: dict[tuple[str, str], list[Any]] = {}
                for r in inside:
                    acc = by_model.setdefault((r.provider, r.model), [0, 0, 0, 0, 0.0, 0])
                    acc[0] += 1
                    acc[1] += r.inp
                    acc[2] += r.out
                    acc[3] += r.thinking or 0
                    acc[4] += r.cost or 0.0
                    acc[5] += r.status >= 400
                assert cell_texts(page, "by-model") == [
                    [p, m, f"{n:,}", f"{i:,}", f"{o:,}", f"{k:,}", f"${c:,.6f}", f"{e:,}"]
                    for (p, m), (n, i, o, k, c, e) in sorted(by_model.items())
                ], range_name

                per_chat: dict[str, list[Any]] = {}
                for r in inside:
                    acc = per_chat.setdefault(r.chat, [0, 0, 0.0])
                    acc[0] += 1
                    acc[1] += r.inp + r.out
                    acc[2] += r.cost or 0.0
                top = sorted(per_chat.items(), key=lambda kv: (-kv[1][2], kv[0]))
                assert cell_texts(page, "expensive") == [
                    [chat, chat_model[chat] or "-", f"{n:,}", f"{tok:,}", f"${c:,.6f}"]
                    for chat, (n, tok, c) in top
                ], range_name

                durations: dict[str, list[float]] = {}
                for r in inside:
                    durations.setdefault(r.model, []).append(float(r.duration))
                assert cell_texts(page, "latency") == [
                    [m, str(len(v)), *(f"{percentile(v, p):,.1f} ms" for p in (0.5, 0.95, 0.99))]
                    for m, v in sorted(durations.items())
                ], range_name

                charts = json.loads(page.split('id="charts-data">', 1)[1].split("</script>", 1)[0])
                expected: dict[int, list[int]] = {}
                for r in inside:
                    acc2 = expected.setdefault(bucket_start(r.at, bucket), [0, 0])
                    acc2[0] += 1
                    acc2[1] += r.inp
                requests = charts["requests"]["data"]
                xs = requests[0]["x"]
                counts = [sum(trace["y"][i] for trace in requests) for i in range(len(xs))]
                inputs = next(t for t in charts["tokens"]["data"] if t["name"] == "input")["y"]
                got = {x: [n, i] for x, n, i in zip(xs, counts, inputs, strict=True)}
                assert got == expected, range_name
    finally:
        await reader.engine.dispose()


def test_an_older_postgresql_is_refused_by_name() -> None:
    from nodellm_orm.dashboard._queries import dialect_of

    refused = dialect_of("postgresql").analytics_unsupported((13, 11))
    assert refused is not None and "13.11" in refused and "14 or later" in refused
    assert dialect_of("postgresql").analytics_unsupported((14, 0)) is None
    assert dialect_of("sqlite").analytics_unsupported((3, 40, 1)) is None
