"""Agency-system adapters: vendor and standard formats in and out of canonical messages."""
