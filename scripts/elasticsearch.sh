#!/usr/bin/env bash
# A single-node Elasticsearch on 127.0.0.1 for tests, CI and `make es-up`, without Docker.
#
#   scripts/elasticsearch.sh up       start it (no-op when it already runs), print its URL last on stdout
#   scripts/elasticsearch.sh down     stop it and wait until it has exited
#   scripts/elasticsearch.sh status   print cluster health, or "not running" (exit 3)
#   scripts/elasticsearch.sh url      print the URL
#
# `ES_URL=$(bash scripts/elasticsearch.sh up | tail -1)` works: progress and errors go to stderr.
#
# The node is the minimal Elasticsearch distribution from Maven Central (the Maven local repository is
# the download cache), unpacked outside the clone, plus the es_plugin/ analysis plugin, which adds the
# token filters porter_stem, asciifolding, kstem and stemmer (English) that this distribution lacks.
# Security is off, the disk watermarks are off, and it listens on 127.0.0.1 only.
#
# Settings (environment):
#   ES_PORT       HTTP port (9200)
#   ES_HEAP       JVM heap, -Xms and -Xmx (512m)
#   ES_JAVA_HOME  JDK 21 or newer to run it with (default: the newest one found in /usr/lib/jvm)
#   ES_HOME_DIR   where the distribution is unpacked
#   ES_RUN_DIR    data, logs and pid file of the node on ES_PORT
#   ES_RUN_AS     user to run it as when invoked as root, which Elasticsearch refuses (nobody)
#   ES_START_TIMEOUT  seconds `up` waits for yellow health (120)
#   ES_MAVEN_REPO     Maven local repository used as the download cache (~/.m2/repository)
# As root the defaults are under /var/cache/shop-recommender, since ES_RUN_AS cannot enter /root;
# otherwise under ~/.cache/shop-recommender.
set -euo pipefail

readonly ES_VERSION=9.2.0
readonly ES_ARTIFACT="org.elasticsearch.distribution.integ-test-zip:elasticsearch:${ES_VERSION}:zip"
readonly PLUGIN_NAME=shop-analysis
readonly START_TIMEOUT=${ES_START_TIMEOUT:-120}

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO_DIR PLUGIN_SRC="$REPO_DIR/es_plugin"

if [[ $(id -u) == 0 ]]; then
    CACHE_ROOT=/var/cache/shop-recommender
    RUN_AS=${ES_RUN_AS:-nobody}
else
    CACHE_ROOT=${XDG_CACHE_HOME:-${HOME:?HOME is not set}/.cache}/shop-recommender
    RUN_AS=
fi
ES_PORT=${ES_PORT:-9200}
ES_HEAP=${ES_HEAP:-512m}
ES_HOME_DIR=${ES_HOME_DIR:-$CACHE_ROOT/elasticsearch-$ES_VERSION}
ES_RUN_DIR=${ES_RUN_DIR:-$CACHE_ROOT/es-run/$ES_PORT}
M2_REPO=${ES_MAVEN_REPO:-${HOME:?HOME is not set}/.m2/repository}
readonly URL="http://127.0.0.1:$ES_PORT"
readonly PID_FILE="$ES_RUN_DIR/elasticsearch.pid"
readonly LOG_DIR="$ES_RUN_DIR/logs"
readonly CLUSTER_NAME=shop-recommender

say() { printf 'elasticsearch: %s\n' "$*" >&2; }
die() {
    printf 'elasticsearch: ERROR: %s\n' "$*" >&2
    exit 1
}
need() {
    command -v "$1" >/dev/null 2>&1 || die "'$1' is required ($2) but was not found on PATH"
}

[[ $ES_PORT =~ ^[0-9]+$ ]] || die "ES_PORT must be a port number, got '$ES_PORT'"

# --- the running node ---------------------------------------------------------------------------

# Pid of the node this script started on ES_PORT, if that process is still alive; nothing otherwise.
node_pid() {
    local pid
    [[ -s $PID_FILE ]] || return 1
    pid=$(<"$PID_FILE")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    # Guard against a recycled pid: it must be an Elasticsearch JVM of this home.
    [[ -r /proc/$pid/cmdline ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "-Des.path.home=$ES_HOME_DIR " || return 1
    echo "$pid"
}

# Cluster health JSON once the node is at least yellow; fails while it is not.
health() {
    curl -fsS --max-time "${1:-5}" "$URL/_cluster/health?wait_for_status=yellow&timeout=${1:-5}s" 2>/dev/null \
        | grep -v '"timed_out":true'
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$ES_PORT") 2>/dev/null
}

log_tail() {
    local f
    for f in "$ES_RUN_DIR/startup.log" "$LOG_DIR/$CLUSTER_NAME.log"; do
        [[ -s $f ]] || continue
        printf -- '--- last lines of %s ---\n' "$f" >&2
        tail -n 40 "$f" >&2
    done
}

# --- install ------------------------------------------------------------------------------------

jdk_major() { # JDK dir -> feature version (21, 25, ...); fails if it is not a JDK
    local dir=$1 v
    [[ -x $dir/bin/java ]] || return 1
    if [[ -r $dir/release ]]; then
        v=$(sed -n 's/^JAVA_VERSION="\([^"]*\)".*/\1/p' "$dir/release")
    fi
    if [[ -z ${v:-} ]]; then
        v=$("$dir/bin/java" -version 2>&1 | sed -n 's/.* version "\([^"]*\)".*/\1/p' | head -n 1)
    fi
    v=${v#1.}
    v=${v%%[.+-]*}
    [[ $v =~ ^[0-9]+$ ]] || return 1
    echo "$v"
}

find_jdk() {
    local dir v best="" best_v=0
    if [[ -n ${ES_JAVA_HOME:-} ]]; then
        v=$(jdk_major "$ES_JAVA_HOME") || die "ES_JAVA_HOME=$ES_JAVA_HOME is not a JDK (no bin/java)"
        ((v >= 21)) || die "ES_JAVA_HOME=$ES_JAVA_HOME is Java $v; Elasticsearch $ES_VERSION needs Java 21 or newer"
        echo "$ES_JAVA_HOME"
        return
    fi
    for dir in ${JAVA_HOME:+"$JAVA_HOME"} /usr/lib/jvm/*; do
        [[ -d $dir && ! -L $dir ]] || continue
        v=$(jdk_major "$dir") || continue
        if ((v >= 21 && v > best_v)); then
            best=$dir best_v=$v
        fi
    done
    [[ -n $best ]] || die "no JDK 21 or newer found: Elasticsearch $ES_VERSION needs one." \
        "Looked at \$JAVA_HOME and /usr/lib/jvm/* (found: $(cd /usr/lib/jvm 2>/dev/null && echo *))." \
        "Install one (e.g. apt-get install openjdk-21-jdk-headless) or set ES_JAVA_HOME."
    echo "$best"
}

# The distribution zip from the Maven local repository, fetched with mvn when it is not there yet.
fetch_distribution() {
    local out zip="$M2_REPO/org/elasticsearch/distribution/integ-test-zip/elasticsearch/$ES_VERSION/elasticsearch-$ES_VERSION.zip"
    if [[ ! -s $zip ]]; then
        need mvn "to download Elasticsearch $ES_VERSION from Maven Central"
        say "downloading $ES_ARTIFACT with mvn (about 100 MB, cached in $M2_REPO)"
        if ! out=$(mvn -q -B -Dstyle.color=never "-Dmaven.repo.local=$M2_REPO" dependency:get \
            "-Dartifact=$ES_ARTIFACT" -Dtransitive=false 2>&1); then
            printf '%s\n' "$out" >&2
            die "mvn could not download $ES_ARTIFACT"
        fi
        [[ -s $zip ]] || die "mvn reported success but $zip is missing"
    fi
    echo "$zip"
}

unpack_distribution() {
    [[ -x $ES_HOME_DIR/bin/elasticsearch ]] && return
    local zip tmp
    need unzip "to unpack the Elasticsearch distribution"
    zip=$(fetch_distribution)
    say "unpacking $zip into $ES_HOME_DIR"
    mkdir -p "$(dirname "$ES_HOME_DIR")"
    tmp=$(mktemp -d "$ES_HOME_DIR.unpack.XXXXXX")
    unzip -q "$zip" -d "$tmp" || { rm -rf "$tmp"; die "could not unpack $zip (delete it to download it again)"; }
    rm -rf "$ES_HOME_DIR"
    mv "$tmp/elasticsearch-$ES_VERSION" "$ES_HOME_DIR"
    rm -rf "$tmp"
}

# Builds es_plugin/ unless its zip is newer than every source file; prints the zip's path.
build_plugin() {
    local jdk=$1 zip="$PLUGIN_SRC/target/$PLUGIN_NAME-1.0.0.zip" # artifactId-version of the pom
    [[ -f $PLUGIN_SRC/pom.xml ]] || die "the analysis plugin sources are missing: $PLUGIN_SRC/pom.xml"
    if [[ ! -s $zip ]] || [[ -n $(find "$PLUGIN_SRC/pom.xml" "$PLUGIN_SRC/src" -newer "$zip" -print -quit) ]]; then
        need mvn "to build the analysis plugin in $PLUGIN_SRC"
        say "building the analysis plugin ($PLUGIN_SRC) with $jdk"
        local out
        if ! out=$(JAVA_HOME=$jdk mvn -q -B -Dstyle.color=never "-Dmaven.repo.local=$M2_REPO" -f "$PLUGIN_SRC/pom.xml" package 2>&1); then
            printf '%s\n' "$out" | grep -v -e '^WARNING: .*sun.misc.Unsafe' -e '^WARNING: Please consider' >&2
            die "building the analysis plugin failed (see above)"
        fi
        [[ -s $zip ]] || die "the plugin build finished but $zip is missing"
    fi
    echo "$zip"
}

# (Re)installs the plugin into the unpacked node when the built zip differs from the installed one.
install_plugin() {
    local jdk=$1 zip=$2 sum marker="$ES_HOME_DIR/.$PLUGIN_NAME.sha256" out
    sum=$(sha256sum "$zip" | cut -d' ' -f1)
    if [[ -d $ES_HOME_DIR/plugins/$PLUGIN_NAME && -f $marker && $(<"$marker") == "$sum" ]]; then
        return
    fi
    say "installing the analysis plugin into $ES_HOME_DIR"
    if [[ -d $ES_HOME_DIR/plugins/$PLUGIN_NAME ]]; then
        if ! out=$(ES_JAVA_HOME=$jdk "$ES_HOME_DIR/bin/elasticsearch-plugin" remove --purge "$PLUGIN_NAME" 2>&1); then
            printf '%s\n' "$out" >&2
            die "could not remove the old $PLUGIN_NAME plugin"
        fi
    fi
    if ! out=$(ES_JAVA_HOME=$jdk "$ES_HOME_DIR/bin/elasticsearch-plugin" install --batch "file://$zip" 2>&1); then
        printf '%s\n' "$out" >&2
        die "could not install the analysis plugin $zip"
    fi
    echo "$sum" >"$marker"
}

# --- commands -----------------------------------------------------------------------------------

# Runs a command as the unprivileged user when we are root.
as_node_user() {
    if [[ -z $RUN_AS ]]; then
        "$@"
    elif command -v setpriv >/dev/null 2>&1; then
        setpriv --reuid="$RUN_AS" --regid="$(id -gn "$RUN_AS")" --clear-groups -- "$@"
    else
        need runuser "to run Elasticsearch as $RUN_AS (it refuses to run as root)"
        runuser -u "$RUN_AS" -- "$@"
    fi
}

wait_healthy() { # launcher pid (0: none) -> waits until yellow, dies with the log tail otherwise
    local launcher=$1 deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
        health 2 >/dev/null && return 0
        if ((launcher != 0)) && ! kill -0 "$launcher" 2>/dev/null; then
            # The launcher exits once the node has started; a failure exit means it never came up.
            if ! wait "$launcher"; then
                log_tail
                die "Elasticsearch failed to start (logs in $ES_RUN_DIR)"
            fi
            launcher=0
        fi
        if ((launcher == 0)) && ! node_pid >/dev/null; then
            log_tail
            die "Elasticsearch exited during start-up (logs in $ES_RUN_DIR)"
        fi
        sleep 1
    done
    log_tail
    ((launcher != 0)) && kill "$launcher" 2>/dev/null
    cmd_down >/dev/null 2>&1 || true
    die "Elasticsearch did not reach yellow health within ${START_TIMEOUT}s at $URL (logs in $ES_RUN_DIR)"
}

report_up() {
    say "Elasticsearch $ES_VERSION is up at $URL (${1}s)"
    echo "$URL"
}

cmd_up() {
    local started=$SECONDS pid jdk plugin_zip launcher
    need curl "to talk to Elasticsearch"

    mkdir -p "$(dirname "$ES_HOME_DIR")" "$ES_RUN_DIR"
    # Serialise concurrent `up`/`down` calls on this home; the node itself must not inherit the lock.
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$ES_HOME_DIR.lock"
        flock 9
    fi

    if pid=$(node_pid); then
        if health 2 >/dev/null; then
            say "already running (pid $pid)"
            report_up $((SECONDS - started))
            return
        fi
        say "pid $pid is starting; waiting for it"
        wait_healthy 0
        report_up $((SECONDS - started))
        return
    fi
    rm -f "$PID_FILE"
    if port_in_use; then
        die "port $ES_PORT on 127.0.0.1 is taken by something that is not the node of this script" \
            "($(ss -Hltnp "sport = :$ES_PORT" 2>/dev/null | grep -o 'users:.*' | head -n 1 || true))." \
            "Stop it or choose another port with ES_PORT=..."
    fi

    jdk=$(find_jdk)
    unpack_distribution
    plugin_zip=$(build_plugin "$jdk")
    install_plugin "$jdk" "$plugin_zip"

    mkdir -p "$ES_RUN_DIR/data" "$LOG_DIR" "$ES_RUN_DIR/tmp"
    if [[ -n $RUN_AS ]]; then
        id "$RUN_AS" >/dev/null 2>&1 || die "user '$RUN_AS' does not exist; set ES_RUN_AS to an unprivileged user"
        # The node writes its keystore into config/ and needs its data, logs and temp dirs.
        chown -R "$RUN_AS:$(id -gn "$RUN_AS")" "$ES_HOME_DIR" "$ES_RUN_DIR"
        as_node_user test -r "$ES_HOME_DIR/lib/elasticsearch-$ES_VERSION.jar" -a -w "$ES_RUN_DIR" \
            || die "user $RUN_AS cannot reach $ES_HOME_DIR or $ES_RUN_DIR (is a parent directory private?);" \
                "set ES_HOME_DIR and ES_RUN_DIR to paths it can enter"
    fi

    say "starting Elasticsearch $ES_VERSION on 127.0.0.1:$ES_PORT (heap $ES_HEAP, Java $(jdk_major "$jdk")${RUN_AS:+, as $RUN_AS})"
    # -d: the launcher returns once the node runs and writes the node's pid to -p.
    # Every fd is redirected so the node holds neither our stdout (a $(...) pipe) nor the lock.
    as_node_user env -i \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME="$ES_RUN_DIR" LANG=C.UTF-8 \
        ES_JAVA_HOME="$jdk" \
        ES_JAVA_OPTS="-Xms$ES_HEAP -Xmx$ES_HEAP" \
        ES_TMPDIR="$ES_RUN_DIR/tmp" \
        "$ES_HOME_DIR/bin/elasticsearch" -d -p "$PID_FILE" \
        -E cluster.name="$CLUSTER_NAME" \
        -E node.name="shop-es-$ES_PORT" \
        -E discovery.type=single-node \
        -E xpack.security.enabled=false \
        -E network.host=127.0.0.1 \
        -E http.port="$ES_PORT" \
        -E path.data="$ES_RUN_DIR/data" \
        -E path.logs="$LOG_DIR" \
        -E cluster.routing.allocation.disk.threshold_enabled=false \
        </dev/null >"$ES_RUN_DIR/startup.log" 2>&1 9>&- &
    launcher=$!
    wait_healthy "$launcher"
    report_up $((SECONDS - started))
}

cmd_down() {
    local pid i
    if command -v flock >/dev/null 2>&1 && [[ -d $(dirname "$ES_HOME_DIR") ]]; then
        exec 9>"$ES_HOME_DIR.lock"
        flock 9
    fi
    if ! pid=$(node_pid); then
        rm -f "$PID_FILE"
        say "not running"
        return 0
    fi
    say "stopping pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 600; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "still running after 60s; killing pid $pid"
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    rm -f "$PID_FILE"
    say "stopped"
}

cmd_status() {
    local pid h
    if pid=$(node_pid) && h=$(health 2); then
        say "Elasticsearch $ES_VERSION running at $URL (pid $pid)"
        echo "$h"
    elif [[ -n ${pid:-} ]]; then
        say "pid $pid is running but $URL does not answer with yellow or green health yet"
        echo "starting"
        return 1
    else
        echo "not running"
        return 3
    fi
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    url) echo "$URL" ;;
    *)
        echo "usage: $0 up|down|status|url" >&2
        exit 2
        ;;
esac
