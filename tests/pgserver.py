# SPDX-License-Identifier: Apache-2.0
"""A scratch PostgreSQL 15 server (Debian's postgresql-15) for tests and the bench: initdb
and pg_ctl as the `postgres` user in a temp dir, a private port on 127.0.0.1, password
(SCRAM) authentication over TLS only, with a CA and server certificate made here with
openssl (CN localhost, SAN DNS:localhost and IP:127.0.0.1, so sslmode=verify-full holds for
either name). Stopped and removed by close().

As a program (for bench/run.sh):  pgserver.py start DIR  -> prints URI and password file;
pgserver.py stop DIR."""
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time

PGBIN = "/usr/lib/postgresql/15/bin"
ROLE = "twostep"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_postgres(*cmd, **kw):
    r = subprocess.run(["runuser", "-u", "postgres", "--", *cmd], capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stdout}{r.stderr}")
    return r


class PostgresServer:
    def __init__(self, root=None):
        self.root = root or tempfile.mkdtemp(prefix="twostep-pg-")
        os.makedirs(self.root, exist_ok=True)
        os.chmod(self.root, 0o711)  # postgres traverses; only root reads the client files
        self.data = os.path.join(self.root, "data")
        self.sock = os.path.join(self.root, "sock")
        self.log = os.path.join(self.root, "server.log")
        self.ca = os.path.join(self.root, "ca.crt")
        self.password_file = os.path.join(self.root, "db.password")
        self.port = free_port()
        self.password = secrets.token_urlsafe(24)
        for d in (self.data, self.sock):
            os.makedirs(d, mode=0o700)
            shutil.chown(d, "postgres", "postgres")
        open(self.log, "w").close()
        shutil.chown(self.log, "postgres", "postgres")
        as_postgres(f"{PGBIN}/initdb", "-D", self.data, "-U", "postgres", "--auth-local=peer",
                    "--auth-host=scram-sha-256", "-E", "UTF8", "--no-instructions")
        self._certificates()
        with open(os.path.join(self.data, "pg_hba.conf"), "w") as f:
            f.write("local all postgres peer\n"
                    "hostssl all all 127.0.0.1/32 scram-sha-256\n"
                    "hostssl all all ::1/128 scram-sha-256\n")
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                    f"unix_socket_directories = '{self.sock}'\nssl = on\n"
                    "ssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
                    "password_encryption = 'scram-sha-256'\nmax_connections = 300\n")
        self.start()
        self.psql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{self.password}'")
        with open(self.password_file, "w") as f:
            f.write(self.password + "\n")
        os.chmod(self.password_file, 0o600)

    def _certificates(self):
        def ossl(*args):
            subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=self.root)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        ossl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=twostep test CA")
        ossl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
        with open(os.path.join(self.root, "san.ext"), "w") as f:
            f.write("subjectAltName = DNS:localhost, IP:127.0.0.1\n")
        ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext")
        for name in ("server.crt", "server.key"):
            dest = os.path.join(self.data, name)
            shutil.move(os.path.join(self.root, name), dest)
            os.chmod(dest, 0o600)
            shutil.chown(dest, "postgres", "postgres")

    def start(self):
        as_postgres(f"{PGBIN}/pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "30", "start")

    def stop(self, mode="fast"):
        as_postgres(f"{PGBIN}/pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "30", "stop")

    def running(self):
        r = subprocess.run(["runuser", "-u", "postgres", "--", f"{PGBIN}/pg_ctl", "-D", self.data, "status"],
                           capture_output=True)
        return r.returncode == 0

    def psql(self, sql, db="postgres"):
        """Runs SQL as the superuser over the Unix socket; returns unaligned, tuples-only output."""
        return as_postgres("psql", "-h", self.sock, "-p", str(self.port), "-d", db, "-X", "-q",
                           "-v", "ON_ERROR_STOP=1", "-At", "-c", sql).stdout.strip()

    def create_database(self):
        name = "ts_" + secrets.token_hex(4)
        self.psql(f"CREATE DATABASE {name} OWNER {ROLE}")
        return name

    def uri(self, db, host="localhost"):
        return (f"postgresql://{ROLE}@{host}:{self.port}/{db}"
                f"?sslmode=verify-full&sslrootcert={self.ca}")

    def close(self):
        if self.running():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


if __name__ == "__main__":
    what, root = sys.argv[1], sys.argv[2]
    if what == "start":
        pg = PostgresServer(root)
        db = pg.create_database()
        print(pg.uri(db))
        print(pg.password_file)
    elif what == "stop":
        data = os.path.join(root, "data")
        subprocess.run(["runuser", "-u", "postgres", "--", f"{PGBIN}/pg_ctl", "-D", data, "-m", "immediate",
                        "-w", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
