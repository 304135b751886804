"""Which server real NGINX's upstream round robin sends each of N requests to: the vectors
``tests/test_policies.py`` checks lbsim's ``weighted_round_robin`` (smooth weighted round
robin) against.

NGINX (``nginx`` on PATH; Debian 12's package is 1.22.1) runs with one worker process, an
upstream of servers with the given weights, and each server a virtual server of the same
process that answers its own number. Requests are sent one at a time on new connections.

Usage: python benchmarks/real/nginx_round_robin.py WEIGHTS N
Example: python benchmarks/real/nginx_round_robin.py 5,1,1 14
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from loopback import server_of_next_request

FRONT = 18180
FIRST_SERVER = 19100


def config(weights: list[int], folder: Path) -> str:
    upstream = "\n".join(
        f"    server 127.0.0.1:{FIRST_SERVER + i} weight={w};" for i, w in enumerate(weights)
    )
    servers = "\n".join(
        f"  server {{ listen 127.0.0.1:{FIRST_SERVER + i}; location / {{ return 200 '{i}'; }} }}"
        for i in range(len(weights))
    )
    temp = " ".join(
        f"{kind}_temp_path {folder};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  {temp}
  upstream be {{
{upstream}
  }}
  server {{ listen 127.0.0.1:{FRONT}; location / {{ proxy_pass http://be; }} }}
{servers}
}}
"""


def main() -> None:
    weights = [int(w) for w in sys.argv[1].split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "nginx.conf").write_text(config(weights, folder))
        command = ["nginx", "-c", str(folder / "nginx.conf"), "-p", str(folder)]
        nginx = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            print(" ".join(server_of_next_request(FRONT) for _ in range(int(sys.argv[2]))))
        finally:
            nginx.terminate()
            nginx.wait()


if __name__ == "__main__":
    main()
