"""The jar of surestream's Java-side Flink operators (``java/``), built with ``javac``.

What Flink SQL cannot express with our semantics (keyed deduplication with an event-time
window restart and TTL, SEMANTICS §4) runs as Java process table functions; what Flink's
own connectors get wrong (the file formats' read position after a second restore) is
mended by our ``surestream-json`` format (``JsonFormatFactory`` on ``LineFormatFactory``:
the lines read through Flink's ``StreamFormatAdapter``, each parsed once by our typing
rules; registered in ``java/META-INF/services``). Their source is in this package
(``java/surestream/flink/*.java``, resources beside it); the jar is compiled against the jars of
the Flink distribution (``pyflink/lib``) into ``~/.cache/surestream/flink-operators/``
(``SURESTREAM_FLINK_OPERATORS``), named by the hash of the sources: a changed source is a new
jar, an unchanged one is built once. ``scripts/flink-deps.sh`` builds it; the runner builds
it too when missing (``ensure_operator_jar``), so a checkout whose sources changed never runs
a stale jar.

Stdlib only: ``scripts/flink-deps.sh`` runs this file as a script, before surestream's own
dependencies are installed (``python3 operator_jar.py --flink-lib DIR`` prints the jar).
Needs a JDK 17 (``javac``; Debian ``openjdk-17-jdk-headless``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

JAVA_SOURCES = Path(__file__).resolve().parent / "java"
DEFAULT_CACHE = Path.home() / ".cache" / "surestream" / "flink-operators"
#: part of the hash: a jar built for another Flink version is another jar
FLINK_VERSION = "2.3.0"
JAR_PREFIX = "surestream-flink-operators-"
JDK_HINT = ("install a JDK 17 (Debian: scripts/test-deps.sh openjdk-17-jdk-headless, which "
            "scripts/flink-deps.sh runs when javac is missing)")


class OperatorJarError(RuntimeError):
    """The operators' jar could not be built; the message says why and what to do."""


def operator_cache() -> Path:
    return Path(os.environ.get("SURESTREAM_FLINK_OPERATORS", DEFAULT_CACHE))


def java_sources() -> list[Path]:
    return sorted(JAVA_SOURCES.rglob("*.java"))


def java_resources() -> list[Path]:
    """What the jar carries as is (the ``META-INF/services`` registration of our format)."""
    return sorted(p for p in JAVA_SOURCES.rglob("*") if p.is_file() and p.suffix != ".java")


def source_hash() -> str:
    """The hash naming the jar: every source's and resource's path and bytes, and the Flink
    version."""
    digest = hashlib.sha256(f"flink-{FLINK_VERSION}\n".encode())
    for source in [*java_sources(), *java_resources()]:
        digest.update(str(source.relative_to(JAVA_SOURCES)).encode() + b"\0")
        digest.update(source.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def operator_jar_path() -> Path:
    """Where the jar of the current sources is (whether built yet or not)."""
    return operator_cache() / f"{JAR_PREFIX}{source_hash()}.jar"


def is_operator_jar(path: Path) -> bool:
    return Path(path).name.startswith(JAR_PREFIX)


def default_flink_lib() -> Path:
    """``pyflink/lib`` of the Flink distribution (``distribution.flink_home``)."""
    from surestream.runners.flink.distribution import flink_home
    return flink_home() / "lib"


def ensure_operator_jar(flink_lib: Path | None = None) -> Path:
    """The jar of the current sources, built first when missing (idempotent)."""
    jar = operator_jar_path()
    if jar.is_file():
        return jar
    return build_operator_jar(jar, flink_lib if flink_lib is not None else default_flink_lib())


def build_operator_jar(jar: Path, flink_lib: Path) -> Path:
    """Compile the sources against ``flink_lib/*.jar`` and write ``jar`` atomically."""
    javac = shutil.which("javac")
    if javac is None:
        raise OperatorJarError(f"javac not found: the Flink runner's Java operators are "
                               f"compiled on this machine; {JDK_HINT}")
    classpath = sorted(flink_lib.glob("*.jar"))
    if not classpath:
        raise OperatorJarError(f"no Flink jars in {flink_lib}: install Flink with "
                               "scripts/flink-deps.sh")
    jar.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=jar.parent) as tmp:
        classes = Path(tmp) / "classes"
        done = subprocess.run(
            [javac, "--release", "17", "-parameters", "-nowarn", "-d", str(classes),
             "-cp", os.pathsep.join(map(str, classpath)), *map(str, java_sources())],
            capture_output=True, text=True)
        if done.returncode != 0:
            raise OperatorJarError(f"javac failed on {JAVA_SOURCES}:\n{done.stderr[-4000:]}")
        staged = Path(tmp) / jar.name
        with zipfile.ZipFile(staged, "w", zipfile.ZIP_DEFLATED) as out:
            out.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n"
                                                 "Created-By: surestream\n\n")
            for path in sorted(classes.rglob("*.class")):
                out.write(path, path.relative_to(classes).as_posix())
            for path in java_resources():
                out.write(path, path.relative_to(JAVA_SOURCES).as_posix())
        os.replace(staged, jar)  # readers see the whole jar or none
    return jar


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Build the Flink runner's Java operators' "
                                                 "jar (idempotent); print its path.")
    parser.add_argument("--flink-lib", type=Path, required=True,
                        help="the Flink distribution's lib/ folder (pyflink/lib) "
                             "(default: none, required)")
    args = parser.parse_args(argv)
    try:
        print(ensure_operator_jar(args.flink_lib))
    except OperatorJarError as e:
        print(f"operator_jar: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
