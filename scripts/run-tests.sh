#!/usr/bin/env bash
# What `make test` runs: the pytest suite, against a real Elasticsearch.
#
# Elasticsearch comes from, in this order: ELASTICSEARCH_URL; a Docker container that
# tests/es_node.py starts when a Docker engine answers; otherwise the local node of
# scripts/elasticsearch.sh, started here and stopped at exit (only if started here).
# Arguments go to pytest: bash scripts/run-tests.sh -k search -x
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
if [[ -n ${CI:-} ]]; then
    # In CI a missing Elasticsearch fails the tests that need it instead of skipping them.
    export CI_REQUIRE_ELASTICSEARCH=1
fi

ES_SCRIPT=scripts/elasticsearch.sh
we_started_es=0
# shellcheck disable=SC2317  # called by the EXIT trap
stop_es() {
    if ((we_started_es)); then
        bash "$ES_SCRIPT" down || echo "run-tests: could not stop Elasticsearch" >&2
    fi
}
trap stop_es EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

es_version() { # URL -> version of the node answering there
    curl -fsS --max-time 10 "$1/_nodes/_local?filter_path=nodes.*.version" 2>/dev/null \
        | grep -o '"version":"[^"]*"' | head -n 1 | cut -d'"' -f4
}

if [[ -z ${ELASTICSEARCH_URL:-} ]]; then
    if docker info >/dev/null 2>&1; then
        echo "Elasticsearch under test: a Docker container that the tests start (tests/es_node.py)"
    else
        if ! bash "$ES_SCRIPT" status >/dev/null 2>&1; then
            we_started_es=1
        fi
        ELASTICSEARCH_URL=$(bash "$ES_SCRIPT" up | tail -n 1)
        export ELASTICSEARCH_URL
    fi
fi

if [[ -n ${ELASTICSEARCH_URL:-} ]]; then
    version=$(es_version "$ELASTICSEARCH_URL" || true)
    if [[ -n $version ]]; then
        echo "Elasticsearch under test: $version at $ELASTICSEARCH_URL"
    elif [[ -n ${CI_REQUIRE_ELASTICSEARCH:-} ]]; then
        echo "run-tests: ERROR: ELASTICSEARCH_URL=$ELASTICSEARCH_URL does not answer" >&2
        exit 1
    else
        echo "run-tests: WARNING: ELASTICSEARCH_URL=$ELASTICSEARCH_URL does not answer;" \
            "tests that need Elasticsearch will skip" >&2
    fi
fi

set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e

if ((rc == 5)); then
    echo "run-tests: ERROR: pytest collected no tests (exit 5); that is a failure, not a pass." >&2
    exit 1
fi
exit "$rc"
