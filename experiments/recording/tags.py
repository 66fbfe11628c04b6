"""The one vocabulary of MLflow tag names the suite writes and reads (`rnnlab.*`)."""

TAG_PREFIX = "rnnlab."
LEASE_TAG = f"{TAG_PREFIX}lease_until"
# who holds a claim or lease: host name, process id, and what tells that process from a later one
# with the same id (`claims.start_token`)
HOLDER_HOST = f"{TAG_PREFIX}holder_host"
HOLDER_PID = f"{TAG_PREFIX}holder_pid"
HOLDER_TOKEN = f"{TAG_PREFIX}holder_token"
