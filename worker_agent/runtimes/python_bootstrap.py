"""Run one Python function inside its container.

The worker mounts this file read-only at /opt/nanogrid/bootstrap.py and starts it with
``python3 -I -u /opt/nanogrid/bootstrap.py``. It runs with the standard library only, because
the runtime image contains nothing else.

A ``main.py`` whose top level defines ``handler`` runs as a handler: ``handler(event, context)``
is called and its return value, encoded as JSON, is written as a report to the FIFO at
NANOGRID_REPORT_PATH. Any other ``main.py`` runs as a script under ``__name__ == "__main__"``.
Both see the event on stdin as JSON.
"""

import ast
import importlib.util
import json
import os
import sys
import time
import traceback

TASK_DIR = "/var/task"
MAIN_PATH = os.path.join(TASK_DIR, "main.py")
EVENT_PATH = os.environ.get("NANOGRID_EVENT_PATH", "/var/nanogrid/io/event.json")
REPORT_PATH = os.environ.get("NANOGRID_REPORT_PATH", "/var/nanogrid/io/report")
MAX_RESULT_BYTES = int(os.environ.get("NANOGRID_MAX_RESULT_BYTES", str(1024 * 1024)))

EXIT_HANDLER_ERROR = 1
EXIT_BOOTSTRAP_ERROR = 70


class Context:
    """Lambda-style context object passed to ``handler``."""

    def __init__(self, deadline_ms=None):
        self.aws_request_id = os.environ.get("NANOGRID_REQUEST_ID", "")
        self.request_id = self.aws_request_id
        self.function_name = os.environ.get("NANOGRID_FUNCTION_ID", "")
        self.function_version = os.environ.get("NANOGRID_VERSION_ID", "")
        self.memory_limit_in_mb = int(os.environ.get("NANOGRID_MEMORY_MB", "0"))
        if deadline_ms is None:
            deadline_ms = int(os.environ.get("NANOGRID_DEADLINE_MS", "0"))
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(0, self._deadline_ms - time.time_ns() // 1_000_000)


def defines_handler(source, path=MAIN_PATH):
    """Tell whether the module's top level binds the name ``handler``, without running it."""
    for node in ast.parse(source, path).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "handler":
            return True
        if isinstance(node, ast.Assign):
            if any(isinstance(t, ast.Name) and t.id == "handler" for t in node.targets):
                return True
        if isinstance(node, (ast.ImportFrom, ast.Import)):
            if any((alias.asname or alias.name) == "handler" for alias in node.names):
                return True
    return False


def print_user_traceback(exc):
    """Print the traceback without the bootstrap's own frames, as Lambda does."""
    summary = traceback.TracebackException.from_exception(exc)
    user_frames = [frame for frame in summary.stack if frame.filename.startswith(TASK_DIR + "/")]
    summary.stack = traceback.StackSummary.from_list(user_frames)
    if user_frames:
        print("Traceback (most recent call last):", file=sys.stderr)
    print("".join(summary.format()).replace("Traceback (most recent call last):\n", "", 1), end="", file=sys.stderr)


def run_handler(event):
    spec = importlib.util.spec_from_file_location("main", MAIN_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["main"] = module
    spec.loader.exec_module(module)

    value = module.handler(event, Context())

    try:
        encoded = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        traceback.print_exc()
        print("handler returned a value that is not JSON serialisable; return dicts, lists, "
              "strings, numbers, booleans or None", file=sys.stderr)
        return EXIT_HANDLER_ERROR
    if len(encoded.encode("utf-8")) > MAX_RESULT_BYTES:
        print(
            f"handler returned {len(encoded)} bytes of JSON, more than the limit of "
            f"{MAX_RESULT_BYTES} bytes; return less, or write large output to stdout",
            file=sys.stderr,
        )
        return EXIT_HANDLER_ERROR
    sys.stdout.flush()
    with open(REPORT_PATH, "w", encoding="utf-8") as fifo:
        fifo.write(encoded)
    return 0


def run_script():
    import runpy

    runpy.run_path(MAIN_PATH, run_name="__main__")
    return 0


def main():
    try:
        with open(EVENT_PATH, "rb") as f:
            event = json.loads(f.read())
        with open(MAIN_PATH, "rb") as f:
            source = f.read()
    except OSError as exc:
        print(f"nanogrid bootstrap: cannot read the function or its event: {exc}", file=sys.stderr)
        return EXIT_BOOTSTRAP_ERROR

    # Scripts read the event from stdin. The file replaces fd 0 before any user code runs.
    event_fd = os.open(EVENT_PATH, os.O_RDONLY)
    os.dup2(event_fd, 0)
    os.close(event_fd)
    sys.path.insert(0, TASK_DIR)

    try:
        if defines_handler(source):
            return run_handler(event)
        return run_script()
    except SystemExit:
        raise
    except BaseException as exc:
        print_user_traceback(exc)
        return EXIT_HANDLER_ERROR


if __name__ == "__main__":
    exit_code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(exit_code)
