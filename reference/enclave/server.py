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


async def serve(enclave, address: str, *, ready=None) -> None:
    family, sockaddr = parse_address(address)

    async def on_connection(reader, writer):
        try:
            while True:
                kind, body = await read_request(reader)
                status, reply = enclave.handle_message(kind, body)
                writer.write(encode_reply(status, reply))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except (FramingError, UnicodeDecodeError) as error:
            _log.warning("closing a connection after a bad frame: %s", error)
        finally:
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
