"""CappedBuffer: keeps the first bytes of a stream and counts the rest."""

from worker_agent.sandbox import CappedBuffer


def test_capped_buffer_under_limit():
    buffer = CappedBuffer(10)
    buffer.write(b"abc")
    buffer.write(b"def")

    assert buffer.getvalue() == b"abcdef"
    assert buffer.total_bytes == 6
    assert buffer.truncated is False


def test_capped_buffer_exactly_at_limit():
    buffer = CappedBuffer(6)
    buffer.write(b"abcdef")

    assert buffer.getvalue() == b"abcdef"
    assert buffer.truncated is False


def test_capped_buffer_cuts_across_chunks():
    buffer = CappedBuffer(5)
    buffer.write(b"abc")
    buffer.write(b"defgh")
    buffer.write(b"ijk")

    assert buffer.getvalue() == b"abcde"
    assert buffer.total_bytes == 11
    assert buffer.truncated is True


def test_capped_buffer_zero_limit():
    buffer = CappedBuffer(0)
    buffer.write(b"x")

    assert buffer.getvalue() == b""
    assert buffer.truncated is True
