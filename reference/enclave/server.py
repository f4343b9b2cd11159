"""The enclave as its own process: answer framed requests from the host (spec §2.4).

Inside a Nitro enclave this listens on AF_VSOCK; under Docker or in tests, on TCP. Frames are
answered one at a time per connection, in order. A malformed frame closes that connection only.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from ..framing import FramingError, encode_reply, parse_address, read_request

_log = logging.getLogger("vault.enclave.server")

# The host keeps one connection (a few during restarts); anything beyond is refused, so held
# frames cannot grow memory without bound (each may buffer up to framing.MAX_FRAME).
MAX_CONNECTIONS = 16
# Once a frame's first byte has arrived, the rest must follow within this many seconds; an idle
# connection between frames is normal (the host's persistent link) and has no deadline.
FRAME_TIMEOUT = 10.0


async def serve(enclave, address: str, *, ready=None, max_connections: int = MAX_CONNECTIONS,
                frame_timeout: float = FRAME_TIMEOUT) -> None:
    family, sockaddr = parse_address(address)
    open_connections = 0

    async def on_connection(reader, writer):
        nonlocal open_connections
        if open_connections >= max_connections:
            _log.warning("refusing a connection: %d already open", open_connections)
            writer.close()
            return
        open_connections += 1
        try:
            while True:
                kind, body = await read_request(reader, frame_timeout=frame_timeout)
                status, reply = enclave.handle_message(kind, body)
                writer.write(encode_reply(status, reply))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.TimeoutError:
            _log.warning("closing a connection: a frame was not completed within %.0f s", frame_timeout)
        except (FramingError, UnicodeDecodeError) as error:
            _log.warning("closing a connection after a bad frame: %s", error)
        finally:
            open_connections -= 1
            writer.close()

    if family == "tcp":
        server = await asyncio.start_server(on_connection, *sockaddr)
    else:
        sock = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        sock.bind(sockaddr)
        server = await asyncio.start_server(on_connection, sock=sock)
    if ready is not None:
        ready(server)
    async with server:
        await server.serve_forever()
