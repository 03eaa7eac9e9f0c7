"""OpenID Connect sign-on (docs/accounts.md): `discovery` (the providers' metadata and
keys, cached), `flow` (the authorization URL with state, nonce and PKCE, the code
exchange, the ID token's checks), `identities` (who a (provider, subject) is, and the
flows begun)."""
