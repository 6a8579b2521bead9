"""The version of what an enrichment means: bump either number and older ones become stale."""

#: Version of the enrichment JSON schema.
SCHEMA_VERSION = 2
#: Version of the prompts that produce it.
PROMPT_VERSION = 3
#: What the store keys enrichments by, with the content hash.
ENRICHMENT_VERSION = f"s{SCHEMA_VERSION}.p{PROMPT_VERSION}"
