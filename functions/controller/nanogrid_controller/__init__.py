"""Controller Lambda: the HTTP API in front of the queue, the function registry and the results."""
