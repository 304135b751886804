"""What the scripts that drive a real balancer on loopback share: one request, and the name
of the server that answered it."""

from __future__ import annotations

import http.client


def server_of_next_request(port: int) -> str:
    """Send one GET on a new connection to 127.0.0.1:``port``; return the body, which each
    test server sets to its own name."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", "/")
    name = connection.getresponse().read().decode()
    connection.close()
    return name
