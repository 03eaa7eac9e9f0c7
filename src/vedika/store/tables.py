"""All tables, in one module. Migrations in store/migrations mirror this file."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    false,
)

metadata = MetaData()

TS = DateTime(timezone=True)

device_sessions = Table(
    "device_sessions",
    metadata,
    Column("session_id", String(64), primary_key=True),
    Column("device_id", String(128), nullable=False, index=True),
    Column("plan", String(32), nullable=False),
    Column("device_info", JSON, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    # The id the client asked for when it could not prove it held that device, so the
    # device id it keeps sending still matches (migration 0004; vedika.identity.devices).
    Column("client_device_id", String(128), nullable=True),
    # The account signed in with this session, or NULL for an anonymous one (migration
    # 0005; docs/accounts.md).
    Column("account_id", String(36), nullable=True, index=True),
)

# Email + password accounts (migration 0005). What an account owns is stored under its
# owner key (vedika.ids.account_owner) in the same `device_id` columns a device's is.
accounts = Table(
    "accounts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("email", String(254), nullable=False, unique=True),  # normalised: lower case
    Column("name", String(100), nullable=True),
    Column("password_hash", String(200), nullable=False),  # Argon2id, PHC string
    Column("plan", String(32), nullable=False),
    Column("created_at", TS, nullable=False),
    # Set: the account is disabled by an admin (migration 0006; docs/accounts.md).
    Column("disabled_at", TS, nullable=True),
)

# Every device, with the hash of the secret that proves holding it (migration 0004).
# A device id alone is not a credential: re-binding an existing device needs its
# secret or a live session of it. `secret_hash` is NULL for devices from before 0004.
devices = Table(
    "devices",
    metadata,
    Column("device_id", String(128), primary_key=True),
    Column("secret_hash", String(64), nullable=True),
    Column("created_at", TS, nullable=False),
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("device_id", String(128), nullable=False),
    Column("title", String(200), nullable=False),
    Column("model", String(200), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("message_count", Integer, nullable=False, default=0),
    Column("total_tokens", Integer, nullable=False, default=0),
    # Organising (migration 0008): pinned first in the list, archived hidden from it.
    Column("pinned", Boolean, nullable=False, default=False, server_default=false()),
    Column("archived", Boolean, nullable=False, default=False, server_default=false()),
    Index("ix_conversations_device_updated", "device_id", "updated_at"),
    Index("ix_conversations_owner_list", "device_id", "archived", "pinned", "updated_at"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", String(36), primary_key=True),
    Column(
        "conversation_id",
        String(36),
        ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("role", String(16), nullable=False),
    Column("content", Text, nullable=False),
    # user: complete; assistant: streaming|complete|stopped|error|interrupted
    Column("status", String(16), nullable=False),
    Column("model", String(200), nullable=True),
    Column("citations", JSON, nullable=True),
    Column("routing", JSON, nullable=True),
    Column("input_tokens", Integer, nullable=False, default=0),
    Column("output_tokens", Integer, nullable=False, default=0),
    Column("chunk_count", Integer, nullable=False, default=0),
    # Where each chunk 1..chunk_count ends in `content`, written with it (migration 0012):
    # vedika.store.conversations.encode_chunk_sizes. NULL: not known (older rows).
    Column("chunk_ends", Text, nullable=True),
    Column("finish_reason", String(32), nullable=True),
    Column("error_code", String(64), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("mode", String(16), nullable=True),
    Column("interaction_mode", String(16), nullable=True),
    # user messages: the sources asked for and the files attached (migration 0002)
    Column("sources", JSON, nullable=True),
    Column("attachments", JSON, nullable=True),
    # assistant messages: research steps and tool calls/results, as sent (migration 0003)
    Column("steps", JSON, nullable=True),
    Column("coins_charged", Integer, nullable=False, default=0),
    Column("instance_id", String(64), nullable=True),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("heartbeat_at", TS, nullable=True),
    Index("ix_messages_conversation_created", "conversation_id", "created_at"),
    Index("ix_messages_status", "status"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("device_id", String(128), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("fingerprint", Text, nullable=False),
    Column("conversation_id", String(36), nullable=False),
    Column("user_message_id", String(36), nullable=False),
    Column("message_id", String(36), nullable=False),
    Column("created_at", TS, nullable=False),
)

coin_days = Table(
    "coin_days",
    metadata,
    Column("device_id", String(128), primary_key=True),
    Column("day", String(10), primary_key=True),  # UTC date, YYYY-MM-DD
    Column("allowance", Integer, nullable=False),
    Column("used", Integer, nullable=False, default=0),
)

coin_ledger = Table(
    "coin_ledger",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("device_id", String(128), nullable=False),
    Column("day", String(10), nullable=False),
    Column("amount", Integer, nullable=False),  # negative: spent; positive: refunded, granted
    Column("kind", String(16), nullable=False),  # charge | refund | grant (an admin's)
    Column("message_id", String(36), nullable=True),
    Column("created_at", TS, nullable=False),
    Index("ix_coin_ledger_device_created", "device_id", "created_at"),
)

preferences = Table(
    "preferences",
    metadata,
    Column("device_id", String(128), primary_key=True),
    Column("model_id", String(200), nullable=True),
    Column("preference_type", String(32), nullable=True),
    Column("usage_count", Integer, nullable=False, default=0),
    Column("updated_at", TS, nullable=False),
)

# ---------------------------------------------------------------- sources (migration 0002)

files = Table(
    "files",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("device_id", String(128), nullable=False),
    Column("name", String(255), nullable=False),  # as the person named it, cleaned; text only
    Column("size", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),  # pdf | docx | html | csv | markdown | text
    Column("content_type", String(100), nullable=False),  # from the content, not the client
    Column("pages", Integer, nullable=True),
    Column("chunks", Integer, nullable=False),
    Column("chars", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # ready
    Column("sha256", String(64), nullable=False),
    Column("created_at", TS, nullable=False),
    Index("ix_files_device_created", "device_id", "created_at"),
)

# The full-text index over passages is dialect-specific and lives only in the migration:
# SQLite: the FTS5 table `passages_fts` (external content, kept in step by triggers);
# PostgreSQL: the generated tsvector column `passages.tsv` with a GIN index.
passages = Table(
    "passages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("file_id", String(36), ForeignKey("files.id", ondelete="CASCADE"), nullable=False),
    # the owner again, so the full-text index can narrow a search to one device's passages
    Column("device_id", String(128), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("page", Integer, nullable=True),
    Column("section", String(300), nullable=True),
    Column("text", Text, nullable=False),
    Index("ix_passages_file_seq", "file_id", "seq"),
    Index("ix_passages_device", "device_id"),
)

passage_vectors = Table(
    "passage_vectors",
    metadata,
    Column(
        "passage_id",
        Integer,
        ForeignKey("passages.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("file_id", String(36), nullable=False, index=True),
    Column("model", String(200), nullable=False),
    Column("vector", LargeBinary, nullable=False),  # float32, unit length
)


# ---------------------------------------------- admin role and mail (migration 0006)

# One row at most: the first account created on a fresh server, an admin. Its primary
# key is a constant, so of two registrations racing only one insert can win
# (vedika.identity.roles.claim_first).
first_account = Table(
    "first_account",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1
    Column("account_id", String(36), nullable=False),
    Column("created_at", TS, nullable=False),
)

# Every admin action (vedika.identity.roles.audit): who, what, on whom, when, detail.
admin_audit = Table(
    "admin_audit",
    metadata,
    Column("id", String(36), primary_key=True),  # uuid7: sorts by time
    Column("admin_account_id", String(36), nullable=False),
    Column("admin_email", String(254), nullable=False),
    Column("action", String(32), nullable=False),
    Column("target", String(128), nullable=True),
    Column("detail", JSON, nullable=True),
    Column("created_at", TS, nullable=False),
    Index("ix_admin_audit_created", "created_at"),
)

# Password reset tokens, by their SHA-256 (the token itself is only in the mail).
password_resets = Table(
    "password_resets",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("account_id", String(36), nullable=False, index=True),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("used_at", TS, nullable=True),
)


# ---------------------------------------------------------------- API keys (issue 19)
# An account's API keys (migration 0010): only the SHA-256 of the secret is kept; the
# secret (`vk_` + 256 random bits) is shown once. `prefix` is its first characters, for
# people to tell their keys apart.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account_id", String(36), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=True),
    Column("last_used_at", TS, nullable=True),
    Column("revoked_at", TS, nullable=True),
)


# ---------------------------------------------------------------- OpenID Connect (migration 0007)

# An identity at a provider, (provider id, subject), signs in to one account.
oidc_identities = Table(
    "oidc_identities",
    metadata,
    Column("provider", String(40), primary_key=True),  # the id in VEDIKA_OIDC_PROVIDERS
    Column("subject", String(255), primary_key=True),  # the ID token's `sub`
    Column("account_id", String(36), nullable=False, index=True),
    Column("email", String(254), nullable=True),  # as the provider said, for the person
    Column("created_at", TS, nullable=False),
    Column("last_used_at", TS, nullable=False),
)

# A sign-in (or connect) begun and not yet come back: what the callback must check.
oidc_flows = Table(
    "oidc_flows",
    metadata,
    Column("state_hash", String(64), primary_key=True),  # SHA-256 of the `state` sent
    Column("browser_hash", String(64), nullable=False),  # SHA-256 of the browser's cookie
    Column("provider", String(40), nullable=False),
    Column("verifier", String(128), nullable=False),  # PKCE code verifier
    Column("nonce", String(64), nullable=False),
    Column("next_path", String(2000), nullable=False),
    Column("account_id", String(36), nullable=True),  # connecting to this account
    Column("expires_at", TS, nullable=False, index=True),
)


# ------------------------------------------------- edit and branch (migration 0009)
# A conversation is a tree of messages: each message's parent is the message it
# follows (a question: the answer it continues from, NULL for a first question; an
# answer: its question). `active_leaf_id` is the end of the path the conversation shows
# (NULL: a conversation written without parents, read as one linear chain); see
# vedika.store.tree and docs/protocol.md "Branches".
messages.append_column(Column("parent_id", String(36), nullable=True))
Index("ix_messages_parent_id", messages.c.parent_id)
conversations.append_column(Column("active_leaf_id", String(36), nullable=True))


# ---------------------------------------------------------------- share links (migration 0008)

# A public, read-only snapshot of a conversation: the id is the link's unguessable
# token (vedika.ids.share_id). `device_id` is the owner key of who shared it; who may
# re-share or revoke is decided by owning the conversation. Revoked: `revoked_at` set.
# The full text over messages is dialect-specific and lives only in the migration:
# SQLite: the FTS5 table `messages_fts` (triggers queue messages for it, 0013, and
# vedika.store.search_queue indexes the queue in batches); PostgreSQL: the generated
# tsvector column `messages.tsv` with a GIN index.
shares = Table(
    "shares",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("conversation_id", String(36), nullable=False, index=False),
    Column("device_id", String(128), nullable=False),
    Column("title", String(200), nullable=False),
    Column("snapshot", JSON, nullable=False),  # {"messages": [...]}, as at sharing
    Column("allow_indexing", Boolean, nullable=False, default=False, server_default=false()),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("revoked_at", TS, nullable=True),
    Index("ix_shares_conversation", "conversation_id"),
)


# ---------------------------------------------------------- granted coins (migration 0011)
# Coins an admin granted an owner (its key, as in `coin_days`), kept until spent rather
# than reset at midnight: a turn the day's allowance cannot pay is paid from here
# (vedika.credits.ledger). Every change is in `coin_ledger` too (`grant`, and the
# `charge_granted` / `refund` of the turns it paid).
coin_grants = Table(
    "coin_grants",
    metadata,
    Column("device_id", String(128), primary_key=True),
    Column("balance", Integer, nullable=False),
)
