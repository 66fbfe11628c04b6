"""The one vocabulary of MLflow tag names the suite writes and reads (`rnnlab.*`)."""

TAG_PREFIX = "rnnlab."
LEASE_TAG = f"{TAG_PREFIX}lease_until"
