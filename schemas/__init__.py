"""Versioned canonical records and everything that produces them.

Modules (import the one you need; this package imports nothing on its own):
`fields` (email/phone/name/time/tag normalizers), `contact` and
`conversation`, `appointment` (canonical shapes), `agentclara`, `clairo`, `agentpro`
(per-source normalizers), `identity` (matching rule and survivorship),
`hashing` (content hashes), `registry` + `migrations` (schema versions),
`errors` (InvalidRecord reasons, MigrationError).
"""
