#!/usr/bin/env python3
"""A three-node RabbitMQ cluster on this machine, beside whatever RabbitMQ already runs here.

For tests and `make chaos-cluster`, and to try quorum queues on a laptop:

    python3 deploy/rabbitmq_cluster.py start [--dir var/rabbitmq-cluster]   # prints the URLs
    python3 deploy/rabbitmq_cluster.py status | stop [--dir …]

Each node gets its own name (`alliance-<tag>-<n>@localhost`), AMQP and distribution ports
(free ones, chosen at start), data, log and configuration files under --dir, and the cluster
its own Erlang cookie, so neither the CLI nor the nodes can talk to another node on the machine
(a packaged `rabbit@localhost` on 5672 is never touched: its /etc/rabbitmq files are not read).
Nodes 2 and 3 join node 1 with `rabbitmqctl join_cluster`. Only epmd, the Erlang port mapper
on 4369, is shared: it maps node names to ports, and the names are unique.

Needs the RabbitMQ server package (Debian: rabbitmq-server) and root or the rabbitmq user's
rights to run it; only the standard library.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

SCRIPTS = Path(os.environ.get("RABBITMQ_SCRIPTS_DIR", "/usr/lib/rabbitmq/bin"))
HOST = "localhost"


# Below Linux's ephemeral range (32768+), so no client socket holds a node's port when the
# node starts again; not RabbitMQ's usual 5672, 25672 or the CLI's 35672-35682.
PORT_RANGE = range(21000, 32000)
AVOID = {25672}
_taken: set[int] = set()


def free_port() -> int:
    """A port nothing listens on now, from PORT_RANGE."""
    rng = random.Random()
    for _ in range(200):
        port = rng.choice(PORT_RANGE)
        if port in AVOID or port in _taken:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _taken.add(port)
        return port
    raise RuntimeError("no free port found for a RabbitMQ node")


class Node:
    """One RabbitMQ node: its files under `home`, its process, and `rabbitmqctl` against it."""

    def __init__(self, cluster: LocalCluster, index: int, name: str, amqp_port: int,
                 dist_port: int):
        self.cluster, self.index, self.name = cluster, index, name
        self.amqp_port, self.dist_port = amqp_port, dist_port
        self.home = cluster.folder / f"node-{index}"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("RABBITMQ_", "ERL_")) and k != "NOTIFY_SOCKET"}
        env.update({
            "HOME": str(self.cluster.folder),  # where Erlang finds this cluster's cookie
            "RABBITMQ_CONF_ENV_FILE": str(self.cluster.folder / "rabbitmq-env.conf"),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_CONFIG_FILE": str(self.home / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.home / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.cluster.folder / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.home / "data"),
            "RABBITMQ_LOG_BASE": str(self.home / "log"),
            "RABBITMQ_PID_FILE": str(self.home / "node.pid"),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        })
        return env

    def write_files(self) -> None:
        (self.home / "log").mkdir(parents=True, exist_ok=True)
        (self.home / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.amqp_port}\n"
            "loopback_users.guest = true\n"
            # Small machines: do not refuse publishes because other programs use the disk.
            "disk_free_limit.absolute = 50MB\n")

    def start(self) -> None:
        """Start the node in the background (it keeps running after this process exits)."""
        self.home.mkdir(parents=True, exist_ok=True)
        log = open(self.home / "log" / "console.log", "ab")
        self.process = subprocess.Popen([SCRIPTS / "rabbitmq-server"], env=self.env(),
                                        stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True,
                                        cwd=self.home)
        log.close()

    def await_running(self, timeout: float = 300.0) -> None:
        """Until the node has booted: its AMQP listener opens last, after the node has rejoined
        its cluster and its queues. (A TCP check, because a CLI call can take tens of seconds
        on a machine under load.)"""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start; see {self.home / 'log'}")
            if self.alive() and self.accepting():
                return
            time.sleep(0.5)
        raise TimeoutError(f"{self.name} did not start in {timeout:.0f} s; see {self.home / 'log'}")

    def accepting(self) -> bool:
        """The node's AMQP port takes connections."""
        try:
            with socket.create_connection(("127.0.0.1", self.amqp_port), timeout=1):
                return True
        except OSError:
            return False

    def _running(self) -> bool:
        """The node runs RabbitMQ (not only the Erlang VM). A CLI call can take tens of
        seconds on a machine under load: a slow answer is 'not yet', not a failure."""
        try:
            done = subprocess.run([SCRIPTS / "rabbitmq-diagnostics", "-q", "-n", self.name,
                                   "check_running"], env=self.env(), capture_output=True,
                                  timeout=90, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0

    def os_pid(self) -> int | None:
        """The Erlang VM's process id (the start script is only its parent)."""
        try:
            return int((self.home / "node.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def alive(self) -> bool:
        pid = self.os_pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        try:  # the pid file may outlive the VM, and the pid be reused
            return b"beam" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL of the Erlang VM: a crashed host, no goodbye to the cluster."""
        pid = self.os_pid()
        if pid and self.alive():
            os.kill(pid, signal.SIGKILL)
        self._reap()

    def stop(self, timeout: float = 120.0) -> None:
        """A graceful stop (`rabbitmqctl stop`), as for a rolling upgrade."""
        if self.alive():
            self.ctl("stop", timeout=timeout, check=False)
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        if self.alive():
            self.kill()
        self._reap()

    def restart(self) -> None:
        self.stop()
        self.start()
        self.await_running()

    def _reap(self) -> None:
        if self.process is not None:
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                pass
            self.process = None

    def ctl(self, *args: str, timeout: float = 120.0, check: bool = True) -> str:
        env = self.env()
        done = subprocess.run([SCRIPTS / "rabbitmqctl", "-n", self.name, *args], env=env,
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        if check and done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {self.name} failed: "
                               f"{done.stdout}{done.stderr}")
        return done.stdout


class LocalCluster:
    """Three nodes joined into one cluster; their names and ports are kept in cluster.json."""

    def __init__(self, folder: Path, size: int = 3, tag: str | None = None):
        self.folder = Path(folder).resolve()
        self.tag = tag or secrets.token_hex(3)
        self.nodes: list[Node] = []
        if (self.folder / "cluster.json").exists():
            self._load()
        else:
            self.nodes = [Node(self, n, f"alliance-{self.tag}-{n}@{HOST}", free_port(), free_port())
                          for n in range(1, size + 1)]

    def urls(self, vhost: str = "/") -> str:
        """ALLIANCE_BROKER_URL for this cluster: every node, `;`-separated (kombu failover)."""
        path = "/" if vhost == "/" else vhost
        return ";".join(node.url + path for node in self.nodes)

    def start(self) -> LocalCluster:
        self._write_files()
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            node.await_running()
        first = self.nodes[0]
        for node in self.nodes[1:]:
            node.ctl("stop_app")
            node.ctl("join_cluster", first.name)
            node.ctl("start_app")
        self.await_members(len(self.nodes))
        return self

    def await_members(self, count: int, timeout: float = 300.0) -> None:
        """Until `count` nodes run in the cluster (as node 1, or any running node, sees it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.alive():
                    try:
                        status = node.ctl("cluster_status", "--formatter", "json", check=False)
                        if len(json.loads(status).get("running_nodes", [])) >= count:
                            return
                    except (ValueError, subprocess.TimeoutExpired):
                        pass
                    break
            time.sleep(1)
        raise TimeoutError(f"the cluster did not reach {count} running nodes in {timeout:.0f} s")

    def add_vhost(self, vhost: str) -> None:
        first = next(node for node in self.nodes if node.alive())
        first.ctl("add_vhost", vhost)
        first.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")

    def queues(self, vhost: str = "/") -> list[dict]:
        """`rabbitmqctl list_queues name type leader members` as a list of dicts."""
        first = next(node for node in self.nodes if node.alive())
        listed = first.ctl("list_queues", "-q", "-p", vhost, "name", "type", "leader", "members",
                           "messages", "--formatter", "json")
        return json.loads(listed)

    def stop(self, remove: bool = False) -> None:
        for node in reversed(self.nodes):
            node.stop()
        if remove:
            shutil.rmtree(self.folder, ignore_errors=True)

    def status(self) -> dict:
        return {"urls": self.urls(), "nodes": [
            {"name": n.name, "amqp_port": n.amqp_port, "dist_port": n.dist_port,
             "pid": n.os_pid(), "running": n.alive()} for n in self.nodes]}

    def _write_files(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        cookie = self.folder / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(secrets.token_hex(20).upper())
            cookie.chmod(0o400)
        (self.folder / "rabbitmq-env.conf").write_text(
            "# Empty on purpose: the packaged /etc/rabbitmq/rabbitmq-env.conf names another node."
            "\n")
        (self.folder / "enabled_plugins").write_text("[].\n")
        for node in self.nodes:
            node.write_files()
        (self.folder / "cluster.json").write_text(json.dumps({"tag": self.tag, "nodes": [
            {"index": n.index, "name": n.name, "amqp_port": n.amqp_port,
             "dist_port": n.dist_port} for n in self.nodes]}, indent=2))

    def _load(self) -> None:
        saved = json.loads((self.folder / "cluster.json").read_text())
        self.tag = saved["tag"]
        self.nodes = [Node(self, n["index"], n["name"], n["amqp_port"], n["dist_port"])
                      for n in saved["nodes"]]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--dir", default="var/rabbitmq-cluster", type=Path,
                        help="folder for the nodes' data, logs and configuration")
    args = parser.parse_args(argv)
    cluster = LocalCluster(args.dir)
    if args.command == "start":
        if any(node.alive() for node in cluster.nodes):
            sys.exit(f"a cluster already runs from {args.dir}: stop it first")
        cluster.start()
        print(json.dumps(cluster.status(), indent=2))
        print(f"\nexport ALLIANCE_BROKER_URL='{cluster.urls()}'\n"
              "export ALLIANCE_RABBITMQ_QUEUE_TYPE=quorum")
    elif args.command == "stop":
        cluster.stop(remove=True)
        print(f"stopped; removed {args.dir}")
    else:
        print(json.dumps(cluster.status(), indent=2))


if __name__ == "__main__":
    main()
