"""Data that one run leaves for the next run of the same function in a resident container."""

from __future__ import annotations

import pytest
from nanogrid_protocol import RunStatus

from tests.adversarial.helpers import run_sync

pytestmark = pytest.mark.docker

# Returns what an earlier run left in the writable folders, then leaves a secret there in ways
# that a plain rmtree of /tmp does not remove.
LEFTOVER_SOURCE = """
import os

def leave(folder, mode, secret):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "secret"), "w") as f:
        f.write(secret)
    os.chmod(folder, mode)

def handler(event, context):
    found = {"tmp": sorted(os.listdir("/tmp")), "shm": sorted(os.listdir("/dev/shm"))}
    if found["tmp"] or found["shm"]:
        return found
    # A folder without write permission keeps its files from a plain rmtree.
    leave("/tmp/locked", 0o500, event["secret"])
    # A folder without any permission hides its files from listing too.
    leave("/tmp/sealed", 0, event["secret"])
    # /dev/shm is a tmpfs of its own that Docker mounts writable even on a read-only root.
    with open("/dev/shm/secret", "w") as f:
        f.write(event["secret"])
    return found
"""

# Leaves a secret in a System V shared memory segment, which lives as long as the container's
# IPC namespace, and returns what an earlier run left there.
SYSV_SHM_SOURCE = """
import ctypes

libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
KEY = 0x4E47
IPC_CREAT = 0o1000

def handler(event, context):
    found = None
    segment = libc.shmget(KEY, 4096, 0o600)
    if segment >= 0:
        found = ctypes.string_at(libc.shmat(segment, None, 0), 64).split(b"\\0")[0].decode()
    segment = libc.shmget(KEY, 4096, 0o600 | IPC_CREAT)
    data = event["secret"].encode() + b"\\0"
    ctypes.memmove(libc.shmat(segment, None, 0), data, len(data))
    return found
"""


def test_warm_scratch_files_not_inherited(caller, warm_worker_settings):
    function_id = caller.deploy(LEFTOVER_SOURCE)

    first = run_sync(caller, function_id, {"secret": "first-caller"})
    second = run_sync(caller, function_id, {"secret": "second-caller"})

    assert first.status is RunStatus.SUCCESS, first.stderr
    assert second.status is RunStatus.SUCCESS, second.stderr
    assert second.start_mode == "warm"
    assert second.result == {"tmp": [], "shm": []}


def test_warm_sysv_shm_not_inherited(caller, warm_worker_settings):
    function_id = caller.deploy(SYSV_SHM_SOURCE)

    first = run_sync(caller, function_id, {"secret": "first-caller"})
    second = run_sync(caller, function_id, {"secret": "second-caller"})

    assert first.status is RunStatus.SUCCESS, first.stderr
    assert second.status is RunStatus.SUCCESS, second.stderr
    assert second.start_mode == "warm"
    assert second.result is None


# Leaves a secret in a POSIX message queue, which lives in the container's IPC namespace and
# shows as a file under /dev/mqueue, and returns what an earlier run left there.
POSIX_MQUEUE_SOURCE = """
import ctypes
import os

rt = ctypes.CDLL("librt.so.1", use_errno=True)
NAME = b"/nanogrid-leftover"

def handler(event, context):
    found = sorted(os.listdir("/dev/mqueue"))
    queue = rt.mq_open(NAME, os.O_CREAT | os.O_RDWR, 0o600, None)
    if queue < 0:
        raise OSError(ctypes.get_errno(), "mq_open failed")
    data = event["secret"].encode()
    rt.mq_send(queue, data, len(data), 0)
    return found
"""


def test_warm_posix_mqueue_not_inherited(caller, warm_worker_settings):
    function_id = caller.deploy(POSIX_MQUEUE_SOURCE)

    first = run_sync(caller, function_id, {"secret": "first-caller"})
    second = run_sync(caller, function_id, {"secret": "second-caller"})

    assert first.status is RunStatus.SUCCESS, first.stderr
    assert second.status is RunStatus.SUCCESS, second.stderr
    assert second.start_mode == "warm"
    assert second.result == []
