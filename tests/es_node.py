"""Where the tests find an Elasticsearch: a given URL, a Docker container, or none.

``elasticsearch_url()`` answers, in this order:

1. ``ELASTICSEARCH_URL`` when it is set (``scripts/run-tests.sh`` sets it to the
   node of ``scripts/elasticsearch.sh`` when there is no Docker);
2. with a working Docker engine, the URL of an official Elasticsearch container
   started with testcontainers, kept for the whole test session and removed when
   the process exits;
3. otherwise ``None``: tests then skip, or fail if ``CI_REQUIRE_ELASTICSEARCH``.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess

ES_IMAGE = "docker.elastic.co/elasticsearch/elasticsearch:9.2.0"
ES_HEAP = os.environ.get("ES_HEAP", "512m")
START_TIMEOUT_S = 180
HEALTH_PATH = "/_cluster/health?wait_for_status=yellow&timeout=1s"


def docker_available() -> bool:
    """True when a Docker engine answers ``docker info``."""
    if shutil.which("docker") is None:
        return False
    try:
        done = subprocess.run(
            ["docker", "info"], capture_output=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _start_container() -> str:
    from testcontainers.community.elasticsearch import ElasticSearchContainer
    from testcontainers.core.wait_strategies import HttpWaitStrategy

    # ElasticSearchContainer already sets xpack.security.enabled=false for 9.x.
    container = (
        ElasticSearchContainer(ES_IMAGE, port=9200)
        .with_env("discovery.type", "single-node")
        .with_env("ES_JAVA_OPTS", f"-Xms{ES_HEAP} -Xmx{ES_HEAP}")
        .with_env("cluster.routing.allocation.disk.threshold_enabled", "false")
        .waiting_for(
            HttpWaitStrategy(9200, HEALTH_PATH).with_startup_timeout(START_TIMEOUT_S)
        )
    )
    container.start()
    atexit.register(container.stop)
    host = container.get_container_host_ip()
    return f"http://{host}:{container.get_exposed_port(9200)}"


@functools.cache
def elasticsearch_url() -> str | None:
    """URL of the Elasticsearch to test against, or None (see the module doc)."""
    url = os.environ.get("ELASTICSEARCH_URL", "").strip()
    if url:
        return url.rstrip("/")
    if docker_available():
        return _start_container()
    return None
