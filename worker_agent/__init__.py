"""Worker agent: runs queued functions in Docker containers."""
