"""Sources: uploaded files, their passages and full-text index, optional vectors;
the sources and attachments of user messages.

Revision ID: 0002
Revises: 0001

The full-text index differs by database:
- SQLite: an FTS5 table `passages_fts` over `passages` (external content, porter
  stemming), kept in step by insert/delete triggers; ranked with bm25(). Its
  `device_id` column lets a search be narrowed to one device's passages inside FTS5.
- PostgreSQL: a generated `tsv` tsvector column (English configuration) with a GIN
  index; ranked with ts_rank.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)

SQLITE_FTS = [
    "CREATE VIRTUAL TABLE passages_fts USING fts5("
    "text, section, device_id, content='passages', content_rowid='id', "
    "tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER passages_fts_insert AFTER INSERT ON passages BEGIN "
    "INSERT INTO passages_fts(rowid, text, section, device_id) "
    "VALUES (new.id, new.text, coalesce(new.section, ''), new.device_id); END",
    "CREATE TRIGGER passages_fts_delete AFTER DELETE ON passages BEGIN "
    "INSERT INTO passages_fts(passages_fts, rowid, text, section, device_id) "
    "VALUES ('delete', old.id, old.text, coalesce(old.section, ''), old.device_id); END",
    "CREATE TRIGGER passages_fts_update AFTER UPDATE ON passages BEGIN "
    "INSERT INTO passages_fts(passages_fts, rowid, text, section, device_id) "
    "VALUES ('delete', old.id, old.text, coalesce(old.section, ''), old.device_id); "
    "INSERT INTO passages_fts(rowid, text, section, device_id) "
    "VALUES (new.id, new.text, coalesce(new.section, ''), new.device_id); END",
]
POSTGRES_FTS = [
    "ALTER TABLE passages ADD COLUMN tsv tsvector GENERATED ALWAYS AS ("
    "setweight(to_tsvector('english', coalesce(section, '')), 'B') || "
    "setweight(to_tsvector('english', text), 'A')) STORED",
    "CREATE INDEX ix_passages_tsv ON passages USING GIN (tsv)",
]


def upgrade() -> None:
    op.add_column("messages", sa.Column("sources", sa.JSON, nullable=True))
    op.add_column("messages", sa.Column("attachments", sa.JSON, nullable=True))
    op.create_table(
        "files",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("pages", sa.Integer, nullable=True),
        sa.Column("chunks", sa.Integer, nullable=False),
        sa.Column("chars", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_files_device_created", "files", ["device_id", "created_at"])
    op.create_table(
        "passages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "file_id",
            sa.String(36),
            sa.ForeignKey("files.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("page", sa.Integer, nullable=True),
        sa.Column("section", sa.String(300), nullable=True),
        sa.Column("text", sa.Text, nullable=False),
    )
    op.create_index("ix_passages_file_seq", "passages", ["file_id", "seq"])
    op.create_index("ix_passages_device", "passages", ["device_id"])
    op.create_table(
        "passage_vectors",
        sa.Column(
            "passage_id",
            sa.Integer,
            sa.ForeignKey("passages.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("file_id", sa.String(36), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_passage_vectors_file_id", "passage_vectors", ["file_id"])
    dialect = op.get_bind().dialect.name
    for statement in SQLITE_FTS if dialect == "sqlite" else POSTGRES_FTS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("passages_fts_insert", "passages_fts_delete", "passages_fts_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS passages_fts")
    op.drop_table("passage_vectors")
    op.drop_table("passages")
    op.drop_table("files")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("attachments")
        batch.drop_column("sources")
