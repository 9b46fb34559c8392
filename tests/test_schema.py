"""The shipped schema.prisma is valid for Prisma 5.17 and generates a usable client.

Prisma's CLI runs offline through tests/support/prisma_offline.py. The first run installs the
CLI from npm into prisma-client-py's cache (about 6 s); afterwards this module takes ~5 s.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nodellm_orm.schema import PROVIDERS, parse_models, reference_schema, schema_for, shaped_schema
from tests.conftest import unavailable
from tests.support.prisma_offline import (
    GeneratedClient,
    dummy_database_url,
    generate_client,
    import_client,
    node_available,
    offline_env,
    run_prisma,
)

ROOT = Path(__file__).resolve().parents[1]
DELEGATES = ("llmchat", "llmmessage", "llmtoolcall", "llmrequest", "llmagentsession")
MODELS = ("LlmChat", "LlmMessage", "LlmToolCall", "LlmRequest", "LlmAgentSession")

needs_node = pytest.mark.skipif(not node_available(), reason="Prisma's CLI needs node and npm")


def test_root_and_packaged_schema_are_identical() -> None:
    root = (ROOT / "schema.prisma").read_bytes()
    assert root == (ROOT / "nodellm_orm" / "schema.prisma").read_bytes()
    assert reference_schema().encode("utf-8") == root


def test_schema_for_sqlite_turns_json_into_string_and_keeps_everything_else() -> None:
    postgres = schema_for("postgresql")
    sqlite = schema_for("sqlite")
    assert postgres == reference_schema()
    assert re.search(r'provider\s*=\s*"sqlite"', sqlite)
    types = re.findall(r"^\s+\w+\s+(\w+)", sqlite, re.M)
    assert "Json" not in types
    # Only the type column changes: same field names in the same order.
    field = re.compile(r"^\s+(\w+)\s+\w", re.M)
    assert field.findall(sqlite) == field.findall(postgres)
    metadata = [line.split() for line in sqlite.splitlines() if line.strip().startswith("metadata")]
    assert metadata == [["metadata", "String?"], ["metadata", "String?"]]


def test_schema_for_mysql_only_switches_provider() -> None:
    mysql = schema_for("mysql")
    assert mysql == reference_schema().replace('provider = "postgresql"', 'provider = "mysql"', 1)


def test_schema_for_rejects_unknown_provider() -> None:
    with pytest.raises(ValueError, match="sqlserver"):
        schema_for("sqlserver")


@pytest.fixture(scope="module")
def prisma_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prisma")


@pytest.mark.toolchain
@needs_node
@pytest.mark.parametrize("provider", PROVIDERS)
def test_prisma_validate_accepts_each_variant(prisma_dir: Path, provider: str) -> None:
    text = schema_for(provider)
    schema = prisma_dir / f"{provider}.prisma"
    schema.write_text(text, encoding="utf-8")
    env = offline_env(prisma_dir / "engines", database_url=dummy_database_url(text))
    proc = run_prisma(["validate", "--schema", str(schema)], env)
    assert "is valid" in proc.stdout


@pytest.mark.toolchain
@needs_node
@pytest.mark.parametrize("provider", ["postgresql", "sqlite"])
def test_variants_are_already_prisma_formatted(prisma_dir: Path, provider: str) -> None:
    text = schema_for(provider)
    schema = prisma_dir / f"format-{provider}.prisma"
    schema.write_text(text, encoding="utf-8")
    env = offline_env(prisma_dir / "engines", database_url=dummy_database_url(text))
    run_prisma(["format", "--schema", str(schema)], env)
    assert schema.read_text(encoding="utf-8") == text


@pytest.mark.toolchain
def test_json_fields_are_rejected_by_prisma_sqlite_so_the_variant_is_needed(
    prisma_dir: Path,
) -> None:
    if not node_available():
        unavailable("Prisma's CLI needs node and npm")
    wrong = reference_schema().replace('provider = "postgresql"', 'provider = "sqlite"', 1)
    schema = prisma_dir / "wrong.prisma"
    schema.write_text(wrong, encoding="utf-8")
    env = offline_env(prisma_dir / "engines", database_url="file:./x.db")
    with pytest.raises(RuntimeError, match="Json"):
        run_prisma(["validate", "--schema", str(schema)], env)


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def generated(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> GeneratedClient:
    if not node_available():
        unavailable("Prisma's CLI needs node and npm")
    provider: str = request.param
    out = tmp_path_factory.mktemp(f"gen-{provider}")
    schema = out / "schema.prisma"
    schema.write_text(schema_for(provider), encoding="utf-8")
    return generate_client(schema, out / "client")


@pytest.mark.toolchain
def test_generated_client_has_the_five_delegates(generated: GeneratedClient) -> None:
    module = import_client(generated)
    client = module.Prisma()
    for name in DELEGATES:
        assert hasattr(client, name), name
    for model in MODELS:
        assert hasattr(module.models, model), model


@pytest.mark.toolchain
def test_generated_models_carry_the_reference_fields(generated: GeneratedClient) -> None:
    module = import_client(generated)
    fields = set(module.models.LlmToolCall.model_fields)
    assert {"id", "messageId", "toolCallId", "name", "arguments", "thought"} <= fields
    assert {"thoughtSignature", "result", "createdAt", "message"} <= fields
    assert set(module.models.LlmChat.model_fields) >= {
        "instructions",
        "metadata",
        "messages",
        "requests",
        "agentSession",
    }


@pytest.mark.toolchain
def test_generation_leaves_the_installed_prisma_package_alone(
    generated: GeneratedClient,
) -> None:
    import prisma

    # Without an explicit output the generator would have written its client into this package.
    installed = Path(prisma.__file__).parent
    assert (generated.package_dir / "client.py").is_file()
    assert not (installed / "client.py").exists()
    assert not (installed / "models.py").exists()


@pytest.mark.toolchain
@needs_node
@pytest.mark.parametrize("provider", ["postgresql", "sqlite"])
def test_minimal_schema_with_custom_names_is_valid_prisma(prisma_dir: Path, provider: str) -> None:
    names = {"chat": "AssistantChat", "message": "assistant-message"}
    text = shaped_schema(provider, table_names=names, minimal=True, sqlite_json="String")
    models = parse_models(text)
    assert sorted(models) == ["AssistantChat", "AssistantMessage"]
    assert '@@map("assistant-message")' in models["AssistantMessage"].block
    assert models["AssistantMessage"].fields["chat"].type == "AssistantChat"
    assert "toolCalls" not in models["AssistantMessage"].fields
    schema = prisma_dir / f"minimal-{provider}.prisma"
    schema.write_text(text, encoding="utf-8")
    env = offline_env(prisma_dir / "engines", database_url=dummy_database_url(text))
    assert "is valid" in run_prisma(["validate", "--schema", str(schema)], env).stdout


def test_sqlite_schema_keeps_json_for_prisma_6_2_and_later_clients() -> None:
    text = shaped_schema("sqlite")
    assert 'provider = "sqlite"' in text
    assert parse_models(text)["LlmChat"].fields["metadata"].type == "Json?"
    assert (
        parse_models(shaped_schema("sqlite", sqlite_json="String"))["LlmChat"]
        .fields["metadata"]
        .type
        == "String?"
    )
