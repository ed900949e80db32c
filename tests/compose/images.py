"""Stand-ins for the base images ``docker-compose.yml`` needs and this machine cannot pull, built from Debian's
packages. They are test doubles of third-party images: tagged as the official ones so the Dockerfile builds
unchanged, labelled ``org.gozon.stand-in``, and never built over an image of that tag that is not one of ours."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import yaml

from stack.local import ROOT
from tests.compose import engine
from tests.compose.engine import CACHE, Unavailable, run, run_checked

HERE = Path(__file__).parent / "images"
LABEL = "org.gozon.stand-in"
MIRROR = os.environ.get("GOZON_DEBIAN_MIRROR", "http://deb.debian.org/debian")
CA_BUNDLE = Path(os.environ.get("GOZON_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt"))
# The Debian release whose own Python is each version the Dockerfile may name.
DEBIAN_PYTHON = {"3.11": "bookworm"}
# The same for PostgreSQL major versions; their images start from that release's root (which has its Python).
DEBIAN_POSTGRES = {"15": "bookworm"}
ROOT_PYTHON = {suite: version for version, suite in DEBIAN_PYTHON.items()}
COMPOSE = ROOT / "docker-compose.yml"
# The official image the Dockerfile's images start from, by default: python:<major.minor.patch>-slim-<suite>.
PYTHON_IMAGE = re.compile(r"^ARG PYTHON_IMAGE=(?P<tag>python:(?P<version>\d+\.\d+)\.\d+-slim(?:-\w+)?)$", re.MULTILINE)


def python_images() -> dict[str, str]:
    """Tag -> Python ``major.minor`` of the base images the Dockerfile names."""
    text = (ROOT / "Dockerfile").read_text()
    return {match["tag"]: match["version"] for match in PYTHON_IMAGE.finditer(text)}


def compose_images() -> set[str]:
    return {service["image"] for service in yaml.safe_load(COMPOSE.read_text())["services"].values()}


def ensure_python_standins() -> list[str]:
    return [ensure_python_standin(tag, version) for tag, version in sorted(python_images().items())]


def ensure_python_standin(tag: str, version: str) -> str:
    suite = DEBIAN_PYTHON.get(version)
    if suite is None:
        raise Unavailable(f"no Debian release ships Python {version} for a {tag} stand-in")
    base = imported_root(suite, version)
    build_standin(tag, "python.Dockerfile", {"ca-certificates.crt": CA_BUNDLE}, BASE=base, PYTHON=version)
    return tag


def ensure_postgres_standins() -> list[str]:
    tags = sorted(image for image in compose_images() if image.startswith("postgres:"))
    for tag in tags:
        major = tag.partition(":")[2].split(".")[0]
        if major not in DEBIAN_POSTGRES:
            raise Unavailable(f"no Debian release ships PostgreSQL {major} for a {tag} stand-in")
        base = imported_root(DEBIAN_POSTGRES[major], ROOT_PYTHON[DEBIAN_POSTGRES[major]])
        files = {"postgres-entrypoint.sh": HERE / "postgres-entrypoint.sh"}
        build_standin(tag, "postgres.Dockerfile", files, BASE=base, MAJOR=major)
    return tags


def ensure_kafka_standins() -> list[str]:
    tags = sorted(image for image in compose_images() if image.startswith("apache/kafka:"))
    for tag in tags:
        version = tag.partition(":")[2]
        files = {"jars": kafka_jars(version), "log4j2.xml": ROOT / "kafka" / "log4j2.xml"}
        files |= {name: HERE / "kafka" / name for name in ("bin", "run")}
        base = imported_root("bookworm", ROOT_PYTHON["bookworm"])
        build_standin(tag, "kafka.Dockerfile", files, BASE=base, VERSION=version)
    return tags


def kafka_jars(version: str) -> Path:
    """The stand-in's jars, resolved by Maven once per Kafka version into the cache."""
    jars = CACHE / f"kafka-stand-in-{version}"
    if not (jars / ".resolved").exists():
        mvn = shutil.which("mvn")
        if mvn is None:
            raise Unavailable("Maven is missing (Debian: apt-get install maven); the apache/kafka stand-in needs it")
        resolve = ("dependency:copy-dependencies", f"-DoutputDirectory={jars}", f"-Dkafka.version={version}")
        pom = str(HERE / "kafka" / "pom.xml")
        run_checked(mvn, "-q", "-B", "-f", pom, f"-Dmaven.repo.local={CACHE / 'maven'}", *resolve, timeout=1200)
        (jars / ".resolved").touch()
    return jars


def build_standin(tag: str, dockerfile: str, files: dict[str, Path], **arguments: str) -> None:
    """``docker build`` of ``images/<dockerfile>`` in a context holding only ``files`` (name there: source)."""
    if is_foreign(tag):
        return
    with tempfile.TemporaryDirectory(prefix="gozon-stand-in-") as context:
        shutil.copy(HERE / dockerfile, Path(context) / "Dockerfile")
        for name, source in files.items():
            copy = shutil.copytree if source.is_dir() else shutil.copy
            copy(source, Path(context) / name)
        build_arguments = [word for name, value in arguments.items() for word in ("--build-arg", f"{name}={value}")]
        run_checked("docker", "build", "-q", "-t", tag, *build_arguments, context, timeout=1800)


def is_foreign(tag: str) -> bool:
    """An image of that tag is there and is not a stand-in (the real one, pulled where that is possible)."""
    labels = run("docker", "image", "inspect", "--format", "{{json .Config.Labels}}", tag)
    return labels.returncode == 0 and LABEL not in labels.stdout


def imported_root(suite: str, version: str) -> str:
    """The debootstrap root as an image in the engine, imported from its cached tarball."""
    tag = f"gozon-stand-in/debian-python:{suite}-{version}"
    if run("docker", "image", "inspect", tag).returncode != 0:
        run_checked("docker", "import", str(root_tarball(suite, version)), tag)
    return tag


def root_tarball(suite: str, version: str) -> Path:
    tarball = CACHE / f"debootstrap-{suite}-python{version}.tar"
    if not tarball.exists():
        bootstrap(suite, version, tarball)
    return tarball


def bootstrap(suite: str, version: str, tarball: Path) -> None:
    if shutil.which("debootstrap") is None:
        engine.apt_install("debootstrap")
    packages = f"python{version},python3-venv,python3-pip,ca-certificates"
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gozon-debootstrap-", dir=tarball.parent) as root:
        run_checked("debootstrap", "--variant=minbase", f"--include={packages}", suite, root, MIRROR, timeout=1800)
        partial = tarball.with_name(f"{tarball.name}.partial")
        run_checked("tar", "-C", root, "-cf", str(partial), ".")
    partial.rename(tarball)
