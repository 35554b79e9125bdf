"""Drive one of the example services with a fixed, deterministic request mix.

    python load.py --base-url http://127.0.0.1:8000 --requests-per-route 20 \
        [--routes users,slow,error,call] [--slow-ms 200] [--timeout 30]

Requests are sent one at a time, round-robin over the routes, so every run
sends exactly N requests to each route in the same order:

    users     GET /users/{1..5}        (ids cycle 1,2,3,4,5,1,...)  -> 200
    slow      GET /slow?ms=<slow-ms>                                -> 200
    error     GET /error                                            -> 500
    call      GET /call                                             -> 200
    healthz   GET /healthz             (optional)                   -> 200
    notfound  GET /no/such/route       (optional, unmatched route)  -> 404

The last stdout line is a JSON summary, e.g.
    {"base_url": "...", "requests_per_route": 2, "total": 8, "transport_errors": 0,
     "routes": {"users": {"sent": 2, "statuses": {"200": 2}}, ...}}
Requests that got no HTTP response count under status "error". The exit code is
0 when every request got an HTTP response (whatever its status), 1 otherwise.
Only the standard library is used: the load itself is not traced.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from collections import Counter

KNOWN_ROUTES = ("users", "slow", "error", "call", "healthz", "notfound")
DEFAULT_ROUTES = "users,slow,error,call"
USER_IDS = 5


def path_for(route: str, i: int, slow_ms: int) -> str:
    if route == "users":
        return f"/users/{i % USER_IDS + 1}"
    if route == "slow":
        return f"/slow?ms={slow_ms}"
    if route == "error":
        return "/error"
    if route == "call":
        return "/call"
    if route == "healthz":
        return "/healthz"
    if route == "notfound":
        return "/no/such/route"
    raise ValueError(route)


def send(url: str, timeout: float) -> str:
    """Returns the HTTP status as a string, or "error" if there was no response."""
    req = urllib.request.Request(url, method="GET", headers={"User-Agent": "routelens-load/1"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resp.read()
            return str(resp.status)
    except urllib.error.HTTPError as exc:  # 4xx/5xx still are responses
        exc.read()
        return str(exc.code)
    except (urllib.error.URLError, OSError) as exc:
        print(f"load: GET {url}: {exc}", file=sys.stderr)
        return "error"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8000")
    p.add_argument("--requests-per-route", type=int, required=True, help="requests sent to each route")
    p.add_argument("--routes", default=DEFAULT_ROUTES, help=f"comma list of {', '.join(KNOWN_ROUTES)}")
    p.add_argument("--slow-ms", type=int, default=200, help="server-side delay for /slow (ms)")
    p.add_argument("--timeout", type=float, default=30.0, help="per-request timeout (s)")
    args = p.parse_args(argv)
    args.routes = [r.strip() for r in args.routes.split(",") if r.strip()]
    unknown = [r for r in args.routes if r not in KNOWN_ROUTES]
    if unknown or not args.routes:
        p.error(f"--routes: unknown {unknown}; choose from {', '.join(KNOWN_ROUTES)}")
    if args.requests_per_route < 0:
        p.error("--requests-per-route must be >= 0")
    if args.slow_ms < 0:
        p.error("--slow-ms must be >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base = args.base_url.rstrip("/")
    statuses: dict[str, Counter[str]] = {r: Counter() for r in args.routes}
    started = time.monotonic()
    for i in range(args.requests_per_route):
        for route in args.routes:
            statuses[route][send(base + path_for(route, i, args.slow_ms), args.timeout)] += 1
    elapsed = time.monotonic() - started

    transport_errors = sum(c["error"] for c in statuses.values())
    summary = {
        "base_url": base,
        "requests_per_route": args.requests_per_route,
        "slow_ms": args.slow_ms,
        "total": sum(sum(c.values()) for c in statuses.values()),
        "transport_errors": transport_errors,
        "elapsed_s": round(elapsed, 3),
        "routes": {
            r: {"sent": sum(c.values()), "statuses": dict(sorted(c.items()))} for r, c in statuses.items()
        },
    }
    print(json.dumps(summary, sort_keys=False), flush=True)
    return 1 if transport_errors else 0


if __name__ == "__main__":
    sys.exit(main())
