"""The client's answer reader: the same status, headers, framing and body as ``http.client``'s own
``HTTPResponse`` for every answer shape, without the email package's header parser."""

from __future__ import annotations

import http.client
import io

import pytest

from forwarder.client import MAX_HEADER_LINE, MAX_HEADERS, _ConnectionPool, _read_header_block, _Response


class _Socket:
    """What ``HTTPResponse`` needs of a socket: ``makefile`` over fixed bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def makefile(self, mode: str, *args: object, **kwargs: object) -> io.BufferedReader:
        return io.BufferedReader(io.BytesIO(self.data))  # type: ignore[arg-type]


def _read(cls: type[http.client.HTTPResponse], data: bytes, method: str = "POST") -> dict[str, object]:
    response = cls(_Socket(data), method=method)  # type: ignore[arg-type]
    response.begin()
    return {
        "status": response.status,
        "reason": response.reason,
        "version": response.version,
        # Folded values: the email package keeps the line break, this reader a space.
        "headers": [(name, " ".join(value.split())) for name, value in response.getheaders()],
        "request_id": response.getheader("x-request-id"),
        "chunked": response.chunked,
        "length": response.length,
        "will_close": response.will_close,
        "body": response.read(),
    }


ANSWERS = {
    "plain": b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
    b"X-Request-Id: abc\r\n\r\n[]",
    "case and spacing": b"HTTP/1.1 200 OK\r\ncontent-length:   5  \r\nX-REQUEST-ID:id-1\r\n\r\nhello",
    "duplicates": b"HTTP/1.1 200 OK\r\nX-Request-Id: one\r\nX-Request-Id: two\r\nContent-Length: 0\r\n\r\n",
    "folded": b"HTTP/1.1 400 Bad\r\nX-Note: first\r\n  second\r\n\tthird\r\nContent-Length: 1\r\n\r\nx",
    "continue first": b"HTTP/1.1 100 Continue\r\nX-Skip: yes\r\n\r\n"
    b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}",
    "chunked": b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    "chunked wins over length": b"HTTP/1.1 201 Created\r\nTransfer-Encoding: Chunked\r\n"
    b"Content-Length: 99\r\n\r\n1\r\nz\r\n0\r\n\r\n",
    "no length": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close",
    "bad length": b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\nrest",
    "negative length": b"HTTP/1.1 200 OK\r\nContent-Length: -4\r\n\r\nrest",
    "connection close": b"HTTP/1.1 429 Too Many\r\nRetry-After: 3\r\nConnection: close\r\n"
    b"Content-Length: 0\r\n\r\n",
    "http 1.0": b"HTTP/1.0 503 Unavailable\r\nContent-Length: 2\r\n\r\nno",
    "http 1.0 keep-alive": b"HTTP/1.0 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok",
    "no content": b"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n",
    "not a header line": b"HTTP/1.1 200 OK\r\nX-A: 1\r\nnot a header\r\nX-B: 2\r\nContent-Length: 0\r\n\r\n",
    "space in a name": b"HTTP/1.1 200 OK\r\nX-A: 1\r\nBad Name: 2\r\nContent-Length: 0\r\n\r\n",
    "latin-1": b"HTTP/1.1 500 Oops\r\nX-Text: caf\xe9\r\nContent-Length: 0\r\n\r\n",
    "bare newlines": b"HTTP/1.1 201 Created\nContent-Length: 2\n\n[]",
    # The line limit's edge: a line of exactly MAX_HEADER_LINE bytes (its CRLF included) is read.
    "longest header line": b"HTTP/1.1 200 OK\r\nX-Long: "
    + b"a" * (MAX_HEADER_LINE - len(b"X-Long: \r\n"))
    + b"\r\nContent-Length: 0\r\n\r\n",
    "closed inside the headers": b"HTTP/1.1 200 OK\r\nX-A: 1\r\n",
    # A blank folded line continues the header before it; the headers after it still count.
    "blank folded line": b"HTTP/1.1 200 OK\r\nX-A: 1\r\n \r\nX-B: 2\r\nContent-Length: 0\r\n\r\n",
    # A bare CR at a line's start ends the email parser's headers: the lines after it are ignored.
    "bare carriage return": b"HTTP/1.1 200 OK\r\nX-A: 1\r\n\rX-B: 2\r\nContent-Length: 3\r\n\r\nend",
    "value ending in X": b"HTTP/1.1 200 OK\r\nX-Request-Id: REQX\r\nContent-Length: 0\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_an_answer_reads_as_http_client_reads_it(name: str) -> None:
    assert _read(_Response, ANSWERS[name]) == _read(http.client.HTTPResponse, ANSWERS[name])


@pytest.mark.parametrize(
    "data",
    [
        b"",  # the server closed without a word
        b"garbage\r\n\r\n",
        b"HTTP/2 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"X-Many: 1\r\n" * (MAX_HEADERS + 1) + b"\r\n",
    ],
)
def test_a_broken_answer_raises_what_http_client_raises(data: bytes) -> None:
    with pytest.raises(http.client.HTTPException) as expected:
        _read(http.client.HTTPResponse, data)
    with pytest.raises(http.client.HTTPException) as got:
        _read(_Response, data)
    assert type(got.value) is type(expected.value)
    assert str(got.value) == str(expected.value)


def test_exactly_the_most_headers_are_read() -> None:
    # Not compared with http.client: Python 3.11's counts the empty line that ends the block as
    # a header too, so it refuses exactly MAX_HEADERS; this reader counts header lines only.
    block = b"".join(b"X-H%d: %d\r\n" % (n, n) for n in range(MAX_HEADERS)) + b"\r\n"
    message = _read_header_block(io.BytesIO(block))
    assert message.items() == [(f"X-H{n}", str(n)) for n in range(MAX_HEADERS)]


def test_a_too_long_header_line_is_refused_after_reading_one_byte_past_the_limit() -> None:
    # A server sending an endless header line costs MAX_HEADER_LINE + 1 bytes, as in http.client.
    data = b"X-Long: " + b"a" * (3 * MAX_HEADER_LINE) + b"\r\n\r\n"
    expected, got = io.BytesIO(data), io.BytesIO(data)
    with pytest.raises(http.client.LineTooLong):
        http.client.parse_headers(expected)
    with pytest.raises(http.client.LineTooLong):
        _read_header_block(got)
    assert got.tell() == expected.tell() == MAX_HEADER_LINE + 1


def test_the_client_reads_its_answers_with_it() -> None:
    conn = _ConnectionPool("http", "127.0.0.1", 9).new(1.0)
    assert conn.response_class is _Response


def _fields(read: dict[str, object], expected: dict[str, object]) -> dict[str, object]:
    return {key: read[key] for key in expected}


def test_an_http_0_9_status_line_reads_as_version_10_like_http_client() -> None:
    data = b"HTTP/0.9 200 OK\r\nContent-Length: 2\r\n\r\nok"
    expected = {"status": 200, "version": 10, "length": 2, "will_close": True, "body": b"ok"}
    assert _fields(_read(http.client.HTTPResponse, data, "POST"), expected) == expected
    assert _fields(_read(_Response, data, "POST"), expected) == expected


def test_a_head_answer_has_no_body_whatever_its_length_like_http_client() -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
    expected = {"status": 200, "version": 11, "length": 0, "will_close": False, "body": b""}
    assert _fields(_read(http.client.HTTPResponse, data, "HEAD"), expected) == expected
    assert _fields(_read(_Response, data, "HEAD"), expected) == expected
