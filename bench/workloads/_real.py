"""A real ERMrest + Hatrac as the server of the sync workloads (``python -m bench --remote ...``).

Each measurement gets a catalog of its own, made by :func:`satchel.testing.provision.provision`
with the administrator's cookie (the deriva-ml model of the emulator's catalog 1, write rights for
the pushing user, a Hatrac namespace per asset table). Object names are content-addressed and
Hatrac names are shared by all catalogs, so the workloads send bytes that no earlier run sent
(``Context.salt``).

What the emulator counts in ``server.stats`` is read here from Apache's access log, when it is
readable (``/var/log/apache2/access.log`` by default): requests per (method, kind) and the
request log, but not request-body sizes (the stock log format has none). The server's CPU time
is read from ``/proc`` for the processes of each part (mod_wsgi daemons by their user: ermrest,
hatrac, webauthn; Apache's own workers; PostgreSQL), on this machine only.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import httpx

#: process owner -> the part of the server it is (the real-deriva build runs each WSGI daemon as its own user)
PARTS = {"ermrest": "ermrest (mod_wsgi)", "hatrac": "hatrac (mod_wsgi)", "webauthn": "webauthn (mod_wsgi)",
         "www-data": "apache workers", "postgres": "postgresql"}
_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<target>\S+) HTTP/[\d.]+" (?P<status>\d{3}) \S+(?: (?P<micros>\d+))?$')


@dataclass(frozen=True)
class RealServer:
    """Where the real server is and who we are on it."""

    url: str
    cookie: str  # the pushing user's webauthn cookie value
    admin_cookie: str  # one who may create catalogs and top-level namespaces
    grant: str  # the pushing user's client id (written into the catalog ACLs)
    access_log: Path | None = Path("/var/log/apache2/access.log")

    @classmethod
    def login(cls, url: str, *, user: str = "test2", admin: str = "test1", password: str = "dummypassword",
              access_log: Path | None = Path("/var/log/apache2/access.log")) -> "RealServer":
        """Log in to webauthn2's database provider (the users of ``../shared/real-deriva``)."""
        return cls(url, _login(url, user, password), _login(url, admin, password), user, access_log)

    @classmethod
    def with_cookies(cls, url: str, cookie: str, admin_cookie: str | None = None,
                     access_log: Path | None = Path("/var/log/apache2/access.log")) -> "RealServer":
        cookie = cookie.removeprefix("webauthn=")
        admin_cookie = (admin_cookie or cookie).removeprefix("webauthn=")
        with httpx.Client(base_url=url, cookies={"webauthn": cookie}, timeout=30) as c:
            r = c.get("/authn/session")
            r.raise_for_status()
            grant = r.json()["client"]["id"]
        return cls(url, cookie, admin_cookie, grant, access_log)


def _login(url: str, user: str, password: str) -> str:
    with httpx.Client(base_url=url, timeout=30) as c:
        r = c.post("/authn/session", data={"username": user, "password": password})
        if r.status_code != 200:
            raise RuntimeError(f"login of {user!r} at {url} failed: {r.status_code} {r.text[:200]}")
        return r.cookies["webauthn"]


class AccessLog:
    """The requests Apache logged since a mark, as ``server.stats`` and ``server.log`` give them."""

    def __init__(self, path: Path | None):
        self.path = path if path is not None and os.access(path, os.R_OK) else None
        self.start = self._size()

    def _size(self) -> int:
        return self.path.stat().st_size if self.path else 0

    def entries(self) -> list[tuple[str, str, int, int | None]]:
        """(method, target, status, microseconds) of every request logged since the mark."""
        if self.path is None:
            return []
        with open(self.path, "rb") as f:
            f.seek(self.start)
            text = f.read().decode("latin-1")
        out = []
        for line in text.splitlines():
            m = _LINE.search(line)
            if m:
                out.append((m["method"], m["target"], int(m["status"]), int(m["micros"]) if m["micros"] else None))
        return out

    def snapshot(self) -> dict[tuple[str, str], tuple[int, int]]:
        """Requests per (method, kind) since the mark; bytes are not in the log (0)."""
        from satchel.testing.server import classify

        counts: dict[tuple[str, str], tuple[int, int]] = {}
        for method, target, _, _ in self.entries():
            key = (method, classify(method, target.partition("?")[0]))
            n, _ = counts.get(key, (0, 0))
            counts[key] = (n + 1, 0)
        return counts

    def seconds_by_kind(self) -> dict[str, float]:
        """Server time (Apache's %D) summed per (method, kind) since the mark."""
        from satchel.testing.server import classify

        out: dict[str, float] = {}
        for method, target, _, micros in self.entries():
            if micros is not None:
                key = f"{method} {classify(method, target.partition('?')[0])}"
                out[key] = out.get(key, 0.0) + micros / 1e6
        return {k: round(v, 3) for k, v in sorted(out.items())}


def server_cpu() -> dict[str, float]:
    """CPU seconds (user + system) used so far by the processes of each part of the server."""
    tick = os.sysconf("SC_CLK_TCK")
    users = {}
    out = {part: 0.0 for part in PARTS.values()}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            uid = os.stat(f"/proc/{pid}").st_uid
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if uid not in users:
            try:
                import pwd

                users[uid] = pwd.getpwuid(uid).pw_name
            except KeyError:
                users[uid] = str(uid)
        part = PARTS.get(users[uid])
        if part is not None:  # utime, stime, cutime, cstime (children that exited: PostgreSQL backends)
            out[part] += sum(int(x) for x in fields[11:15]) / tick
    return out


@dataclass
class RealCatalog:
    """One fresh catalog on the real server, for one measurement."""

    server: RealServer
    catalog_id: str
    log: AccessLog
    cpu_start: dict[str, float] = field(default_factory=server_cpu)

    @property
    def url(self) -> str:
        return self.server.url

    def cpu_delta(self) -> dict[str, float]:
        now = server_cpu()
        return {k: round(now[k] - self.cpu_start.get(k, 0.0), 2) for k in now}


def new_catalog(server: RealServer) -> RealCatalog:
    from satchel.remote import Credential
    from satchel.testing.provision import provision

    cid = provision(server.url, Credential.cookie(f"webauthn={server.admin_cookie}"), grant=[server.grant])
    return RealCatalog(server, cid, AccessLog(server.access_log))
