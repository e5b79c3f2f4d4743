"""A real single-node Apache Kafka 4.1.1 broker (KRaft) from Maven Central jars, started with `java`.

Used when WF_KAFKA_BOOTSTRAP is unset (development, tests, benchmarks). No Docker and no release
tarball here, so the broker runs from its Maven Central jars (`wf/kafka/pom.xml`, fetched with Maven
into .cache/) on Java 17; `log4j-slf4j-impl` is added because no POM pulls it in and without it every
broker log line, fatal start-up errors included, is dropped. aiokafka 0.14 speaks protocol versions
Kafka 4.x still accepts. AGENTS.md (Tests) says how the test suite uses it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from wf.procs import free_port, pid_alive, port_open

KAFKA_VERSION = "4.1.1"
POM = Path(__file__).parent / "kafka" / "pom.xml"
_DEPENDENCY_GOAL = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies"

LOG4J2 = """\
Configuration:
  status: warn
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: warn
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.server.KafkaRaftServer
        level: info
      - name: kafka.Kafka
        level: info
"""


def ensure_jars(cache_root: Path) -> Path:
    """Fetch the broker jars once into ``cache_root`` (git-ignored); later runs need no Maven."""
    libs = cache_root.resolve() / KAFKA_VERSION / "libs"
    stamp = libs / ".complete"
    # The stamp names the POM's content: a jar added to the POM is fetched on the next start.
    wanted = hashlib.sha256(POM.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted:
        return libs
    if libs.exists():
        shutil.rmtree(libs)
    libs.mkdir(parents=True)
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError(
            "Maven (mvn) is needed once to fetch the Kafka jars; install it (apt-get install maven)"
        )
    subprocess.run(
        [
            mvn,
            "-B",
            "-q",
            "-U",
            "-f",
            str(POM),
            _DEPENDENCY_GOAL,
            "-DincludeScope=runtime",
            "-Dmdep.overWriteReleases=true",
            f"-DoutputDirectory={libs}",
        ],
        check=True,
    )
    stamp.write_text(wanted)
    return libs


def java_executable() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise RuntimeError("Java 17 is needed to run the local Kafka broker")
    return java


@dataclass(frozen=True)
class SecureListener:
    """A second listener, SASL_SSL with SCRAM logins, beside the plain one (tests of secured clusters).

    ``keystore`` is a PEM file holding the broker's private key (PKCS#8, unencrypted) and certificate
    chain; ``users`` (name: password) are created for SCRAM-SHA-256 and SCRAM-SHA-512 when the storage is
    formatted (``kafka-storage format --add-scram``), so they exist before the broker first starts."""

    keystore: Path
    users: dict[str, str]


@dataclass
class LocalKafka:
    """One broker+controller in ``home``; ports chosen at first start and kept in server.properties."""

    home: Path
    cache_root: Path
    heap: str = "512m"
    fast_start: bool = True
    secure: SecureListener | None = None

    @property
    def properties(self) -> Path:
        return self.home / "server.properties"

    @property
    def pid_file(self) -> Path:
        return self.home / "kafka.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "kafka.log"

    def bootstrap(self, listener: str = "PLAINTEXT") -> str:
        for line in self.properties.read_text().splitlines():
            if line.startswith("advertised.listeners="):
                for entry in line.split("=", 1)[1].split(","):
                    if entry.startswith(f"{listener}://"):
                        return entry.split("//", 1)[1]
        raise RuntimeError(f"no {listener} entry in advertised.listeners of {self.properties}")

    def secure_bootstrap(self) -> str:
        """The SASL_SSL listener's address (with ``secure``)."""
        return self.bootstrap("SASL_SSL")

    def _secure_config(self, port: int) -> list[str]:
        assert self.secure is not None
        scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        return [
            "sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512",
            f"listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config={scram}",
            f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={scram}",
            "listener.name.sasl_ssl.ssl.keystore.type=PEM",
            f"listener.name.sasl_ssl.ssl.keystore.location={self.secure.keystore}",
        ]

    def _write_config(self) -> None:
        port, controller = free_port(), free_port()
        data = self.home / "data"
        listeners = f"PLAINTEXT://127.0.0.1:{port}"
        protocols = "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
        secure: list[str] = []
        if self.secure is not None:
            secure_port = free_port()
            listeners += f",SASL_SSL://127.0.0.1:{secure_port}"
            protocols += ",SASL_SSL:SASL_SSL"
            secure = self._secure_config(secure_port)
        self.properties.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{controller}",
                    f"listeners={listeners},CONTROLLER://127.0.0.1:{controller}",
                    f"advertised.listeners={listeners}",
                    "inter.broker.listener.name=PLAINTEXT",
                    "controller.listener.names=CONTROLLER",
                    f"listener.security.protocol.map={protocols}",
                    *secure,
                    f"log.dirs={data}",
                    "num.partitions=1",
                    "default.replication.factor=1",
                    "min.insync.replicas=1",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=1",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "transaction.state.log.num.partitions=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    # Topics are created explicitly by the services; never rely on auto-creation.
                    "auto.create.topics.enable=false",
                    "message.max.bytes=2097152",
                    "num.network.threads=2",
                    "num.io.threads=2",
                    "background.threads=2",
                    "num.recovery.threads.per.data.dir=1",
                    "log.cleaner.threads=1",
                    "log.cleaner.dedupe.buffer.size=8388608",
                    "",
                ]
            )
        )
        (self.home / "log4j2.yaml").write_text(LOG4J2)

    def _format(self, libs: Path) -> None:
        cluster_id = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        if cluster_id.startswith("-"):
            cluster_id = "A" + cluster_id[1:]
        subprocess.run(
            [
                java_executable(),
                "-cp",
                f"{libs}/*",
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(self.properties),
                *self._scram_users(),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def _scram_users(self) -> list[str]:
        args: list[str] = []
        for name, password in (self.secure.users if self.secure else {}).items():
            for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
                args += ["--add-scram", f"{mechanism}=[name={name},password={password}]"]
        return args

    def running_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def start(self, timeout: float = 90.0) -> str:
        """Start (or reuse a running) broker; returns the bootstrap address once it accepts connections."""
        libs = ensure_jars(self.cache_root)
        self.home.mkdir(parents=True, exist_ok=True)
        if self.running_pid() is not None:
            return self.bootstrap()
        if not self.properties.exists():
            self._write_config()
        if not (self.home / "data" / "meta.properties").exists():
            self._format(libs)
        cmd = [
            java_executable(),
            "-Xms256m",
            f"-Xmx{self.heap}",
            "-XX:+UseSerialGC",
            "-XX:+ExitOnOutOfMemoryError",
        ]
        if self.fast_start:
            cmd.append("-XX:TieredStopAtLevel=1")
        cmd += [
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.yaml'}",
            "-cp",
            f"{libs}/*",
            "kafka.Kafka",
            str(self.properties),
        ]
        log = self.log_file.open("ab")
        seen = log.tell()  # a restart appends to the log: only this start's lines count
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.home,
        )
        self.pid_file.write_text(str(proc.pid))
        host, port = self.bootstrap().rsplit(":", 1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = self.log_file.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"Kafka exited with code {proc.returncode}:\n{tail}")
            started = "Kafka Server started" in self.log_file.read_bytes()[seen:].decode(errors="replace")
            if started and port_open(host, int(port)):
                return self.bootstrap()
            time.sleep(0.2)
        raise RuntimeError(f"Kafka did not start within {timeout:.0f} s; see {self.log_file}")
