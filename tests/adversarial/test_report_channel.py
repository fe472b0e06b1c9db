"""A function that writes garbage into the channel for its return value must still get a final
result, in a fresh container and in a resident one."""

from __future__ import annotations

import pytest
from nanogrid_protocol import RunStatus

from tests.adversarial.helpers import run_until_final

pytestmark = pytest.mark.docker

# A handler that writes text that is not JSON into the channel that carries its return value
# (the report FIFO of a fresh container, or the value pipe that the resident runtime gave this
# run), then returns normally, so the worker receives the garbage followed by the real value.
GARBAGE_REPORT_SOURCE = """
import os


def handler(event, context):
    if os.path.exists("/var/nanogrid/io/report"):
        with open("/var/nanogrid/io/report", "w") as fifo:
            fifo.write("not json {")
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if fd > 2 and os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:"):
                os.write(fd, b"not json {")
        except OSError:
            pass  # the descriptor that listed the folder is closed by now
    print("wrote garbage")
    return {"ok": True}
"""


def test_report_garbage_run_ends_failed(caller):
    function_id = caller.deploy(GARBAGE_REPORT_SOURCE)

    outcome = run_until_final(caller, function_id, {})

    assert outcome.status is RunStatus.FAILED
    assert "not valid JSON" in outcome.error_message
    assert outcome.result is None
    assert outcome.stdout == "wrote garbage\n"
