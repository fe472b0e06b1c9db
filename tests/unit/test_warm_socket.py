"""The worker's control socket for resident containers binds under any cache folder depth."""

import socket

from worker_agent.warm import _bind_unix


def test_bind_unix_deep_folder(tmp_path):
    folder = tmp_path.joinpath("a" * 60, "b" * 60)
    folder.mkdir(parents=True)
    path = folder / "control.sock"
    assert len(str(path).encode()) > 108

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    _bind_unix(listener, path)
    listener.listen(1)

    assert path.is_socket()
    listener.close()
