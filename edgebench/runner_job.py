"""The host's side of the runner protocol: the job schema version both ends must agree on."""

RUNNER_SCHEMA_VERSION = 1
