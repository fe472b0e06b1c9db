"""Resident Python runtime for warm containers: load a function once, then serve runs one at a time.

The worker listens on a Unix socket in a folder it mounts read-only at /var/nanogrid/io; this
process connects to it at start. Linux lets a process connect to a socket on a read-only mount,
so the function gets a channel to the worker but no writable folder outside /tmp.

Each run is a child forked from this process after the function is loaded, so a run starts from
the state that module loading left, and nothing a run changes carries over to the next. The
child's stdout and stderr are pipes that this process relays to the worker as frames.

Frames in both directions: one type byte, a 4-byte big-endian length, then the payload.
Worker to runtime: b"L" load {"taskDir"}, b"R" run {"event", "env", "deadlineMs"}.
Runtime to worker: b"H" hello {"pid"}, b"D" loaded {"mode"} or load error {"error"},
b"O" stdout bytes, b"E" stderr bytes, b"V" the handler's JSON value, b"X" exit {"exitCode"}.
"""

import importlib.util
import json
import os
import select
import signal
import socket
import struct
import sys
import time
import traceback

SOCKET_PATH = os.environ.get("NANOGRID_CONTROL_SOCKET", "/var/nanogrid/io/control.sock")
TASK_DIR = "/var/task"
MAX_RESULT_BYTES = int(os.environ.get("NANOGRID_MAX_RESULT_BYTES", str(1024 * 1024)))
HEADER = struct.Struct(">cI")

# The one-shot bootstrap beside this file contains what both runtimes share.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from python_bootstrap import Context, defines_handler, print_user_traceback  # noqa: E402

EXIT_HANDLER_ERROR = 1


def send_frame(sock, kind, payload):
    sock.sendall(HEADER.pack(kind, len(payload)) + payload)


def recv_exact(sock, size):
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError("worker closed the control socket")
        data += chunk
    return data


def recv_frame(sock):
    kind, length = HEADER.unpack(recv_exact(sock, HEADER.size))
    return kind, recv_exact(sock, length)


class Function:
    """The loaded function: a handler module, or the path of a script to run per call."""

    def __init__(self):
        self.mode = None
        self.module = None
        self.load_error = None
        self.main_path = os.path.join(TASK_DIR, "main.py")
        # What module loading printed, handed to the first run's stdout and stderr.
        self.load_output = {b"O": b"", b"E": b""}

    def load_capturing_output(self):
        import io

        out, err = io.StringIO(), io.StringIO()
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = out, err
        try:
            self.load()
        except BaseException as exc:  # noqa: BLE001 - shown in every run's stderr
            print_user_traceback(exc)
            self.load_error = err.getvalue()
            err = io.StringIO()
        finally:
            sys.stdout, sys.stderr = saved
        self.load_output = {b"O": out.getvalue().encode(), b"E": err.getvalue().encode()}

    def load(self):
        with open(self.main_path, "rb") as f:
            source = f.read()
        sys.path.insert(0, TASK_DIR)
        if not defines_handler(source, self.main_path):
            self.mode = "script"
            return
        self.mode = "handler"
        spec = importlib.util.spec_from_file_location("main", self.main_path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["main"] = module
        spec.loader.exec_module(module)
        self.module = module


def child_main(function, request, value_fd):
    """Body of the forked child for one run. Never returns."""
    os.setsid()
    os.environ.update(request["env"])
    event_bytes = json.dumps(request["event"]).encode("utf-8")
    # Scripts read the event from stdin.
    read_end, write_end = os.pipe()
    if len(event_bytes) < 65536:
        os.write(write_end, event_bytes)
        os.close(write_end)
    else:
        writer_pid = os.fork()
        if writer_pid == 0:
            os.close(read_end)
            os.write(write_end, event_bytes)
            os._exit(0)
        os.close(write_end)
    os.dup2(read_end, 0)
    os.close(read_end)
    sys.stdin = open(0, "r", encoding="utf-8", closefd=False)

    exit_code = 0
    try:
        if function.load_error is not None:
            sys.stderr.write(function.load_error)
            exit_code = EXIT_HANDLER_ERROR
        elif function.mode == "handler":
            exit_code = call_handler(function, request, value_fd)
        else:
            import runpy

            # A script has no return value, so it gets no channel to send one.
            os.close(value_fd)
            runpy.run_path(function.main_path, run_name="__main__")
    except SystemExit as exc:
        # sys.exit() takes an int, None (success) or any other object, which Python prints to
        # stderr and turns into exit code 1.
        code = exc.code
        if code is None:
            exit_code = 0
        elif isinstance(code, int):
            exit_code = code
        else:
            print(code, file=sys.stderr)
            exit_code = 1
    except BaseException as exc:
        print_user_traceback(exc)
        exit_code = EXIT_HANDLER_ERROR
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)


def call_handler(function, request, value_fd):
    value = function.module.handler(request["event"], Context(request["deadlineMs"]))
    try:
        encoded = json.dumps(value, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError, RecursionError):
        traceback.print_exc()
        print("handler returned a value that is not JSON serialisable; return dicts, lists, "
              "strings, numbers, booleans or None", file=sys.stderr)
        return EXIT_HANDLER_ERROR
    if len(encoded) > MAX_RESULT_BYTES:
        print(f"handler returned {len(encoded)} bytes of JSON, more than the limit of "
              f"{MAX_RESULT_BYTES} bytes; return less, or write large output to stdout", file=sys.stderr)
        return EXIT_HANDLER_ERROR
    with os.fdopen(value_fd, "wb", closefd=False) as sink:
        sink.write(encoded)
    return 0


def serve_run(sock, function, request):
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    value_read, value_write = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        sock.close()
        for fd in (out_read, err_read, value_read):
            os.close(fd)
        os.dup2(out_write, 1)
        os.dup2(err_write, 2)
        os.close(out_write)
        os.close(err_write)
        child_main(function, request, value_write)

    for fd in (out_write, err_write, value_write):
        os.close(fd)
    for kind, data in function.load_output.items():
        if data:
            send_frame(sock, kind, data)
    function.load_output = {b"O": b"", b"E": b""}
    streams = {out_read: b"O", err_read: b"E", value_read: b"V"}
    value = b""
    exit_status = None
    while streams:
        # Poll for the child's exit too: a process it left behind may hold the pipes open, and
        # only killing it, once the child is gone, lets them reach end-of-file.
        ready, _, _ = select.select(list(streams), [], [], 0.05)
        for fd in ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                os.close(fd)
                del streams[fd]
            elif streams[fd] == b"V":
                value += chunk
            else:
                send_frame(sock, streams[fd], chunk)
        if exit_status is None:
            finished, status = os.waitpid(pid, os.WNOHANG)
            if finished:
                exit_status = status
                kill_leftovers()
    if exit_status is None:
        _, exit_status = os.waitpid(pid, 0)
    exit_code = os.waitstatus_to_exitcode(exit_status)
    if exit_code < 0:
        exit_code = 128 - exit_code
    kill_leftovers()
    clear_tmp()
    remove_sysv_ipc()
    if value and exit_code == 0:
        send_frame(sock, b"V", value)
    send_frame(sock, b"X", json.dumps({"exitCode": exit_code}).encode())


# The folders a run can write to. Docker mounts /dev/shm as a writable tmpfs even when the root
# file system is read-only.
SCRATCH_DIRS = ("/tmp", "/dev/shm", "/dev/mqueue")


def clear_tmp():
    """Empty /tmp, /dev/shm and /dev/mqueue (POSIX message queues), so a run finds none of the
    files or queues an earlier run left there."""
    import shutil

    for folder in SCRATCH_DIRS:
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            path = os.path.join(folder, name)
            try:
                if os.path.isdir(path) and not os.path.islink(path):
                    make_tree_removable(path)
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.unlink(path)
            except OSError:
                pass


def remove_sysv_ipc():
    """Remove the System V shared memory segments, semaphore sets and message queues that a
    run created. They live in the container's IPC namespace, not in a file system, so emptying
    /dev/shm does not reach them. /proc/sysvipc lists only this namespace's objects."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    ipc_rmid = 0
    for table, remove in (("shm", libc.shmctl), ("sem", libc.semctl), ("msg", libc.msgctl)):
        try:
            with open(f"/proc/sysvipc/{table}") as listing:
                rows = listing.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) < 2:
                continue
            object_id = int(fields[1])
            if table == "sem":
                remove(object_id, 0, ipc_rmid)
            else:
                remove(object_id, ipc_rmid, None)


def make_tree_removable(top):
    """Give every folder under top, and top itself, owner permissions, because a run can leave a
    folder it may not list or change, and rmtree then leaves the files inside it in place."""
    os.chmod(top, 0o700)
    # os.walk goes top-down, so each folder is listable before the walk descends into it.
    for root, folders, _ in os.walk(top):
        for name in folders:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                try:
                    os.chmod(path, 0o700)
                except OSError:
                    pass


def kill_leftovers():
    """Kill every process in the container but this one, so nothing a run started lives on
    into the next run. The worker also checks the container's process count afterwards."""
    me = os.getpid()
    for _ in range(10):
        others = [int(name) for name in os.listdir("/proc") if name.isdigit() and int(name) != me]
        if not others:
            return
        for pid in others:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        reap_children()
        time.sleep(0.01)


def reap_children():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def main():
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(SOCKET_PATH)
    send_frame(sock, b"H", json.dumps({"pid": os.getpid()}).encode())
    function = Function()
    while True:
        try:
            kind, payload = recv_frame(sock)
        except (EOFError, OSError):
            # The worker is gone; exiting lets Docker remove this container.
            return 0
        if kind == b"L":
            function.load_capturing_output()
            mode = function.mode if function.load_error is None else "error"
            send_frame(sock, b"D", json.dumps({"mode": mode}).encode())
        elif kind == b"R":
            serve_run(sock, function, json.loads(payload))


if __name__ == "__main__":
    sys.exit(main())
