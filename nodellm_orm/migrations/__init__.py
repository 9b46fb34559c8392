"""The shipped Prisma Migrate migrations (one set per provider) and their engine-free runner."""

from nodellm_orm.migrations.runner import (
    MIGRATIONS_ROOT,
    MIGRATIONS_TABLE,
    AppliedMigration,
    Migration,
    MigrationChecksumError,
    MigrationError,
    MigrationFailedError,
    MigrationResult,
    SchemaMismatchError,
    applied_migrations,
    checksum,
    load_migrations,
    mark_rolled_back,
    migrate,
    migrate_url,
    provider_of,
)

__all__ = [
    "MIGRATIONS_ROOT",
    "MIGRATIONS_TABLE",
    "AppliedMigration",
    "Migration",
    "MigrationChecksumError",
    "MigrationError",
    "MigrationFailedError",
    "MigrationResult",
    "SchemaMismatchError",
    "applied_migrations",
    "checksum",
    "load_migrations",
    "mark_rolled_back",
    "migrate",
    "migrate_url",
    "provider_of",
]
