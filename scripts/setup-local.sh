#!/usr/bin/env bash
# Make sure that what the local stack and the tests need is present, and install what is missing:
#   1. Debian packages redis-server, docker.io, debootstrap and make (root with apt-get only;
#      otherwise print the command to run and exit 1),
#   2. a virtualenv .venv with the project installed editable with its dev extras,
#   3. a Docker engine that responds to `docker info` (starts dockerd in the background if needed),
#   4. the runtime image nanogrid/python:3.11 (built by scripts/build-runtime-image.sh).
# Safe to run again: each step checks first and does nothing when its part is already there.
# Messages are in Korean when LC_ALL, LC_MESSAGES or LANG starts with "ko".
#
# Environment: PYTHON (interpreter for the virtualenv, default python3.11), RUNTIME_IMAGE
# (default nanogrid/python:3.11), DOCKER_START_TIMEOUT_S (default 60).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

venv=.venv
runtime_image="${RUNTIME_IMAGE:-nanogrid/python:3.11}"
docker_start_timeout_s="${DOCKER_START_TIMEOUT_S:-60}"
log_dir=.nanogrid/logs
# pip reinstalls the project only when pyproject.toml changes; the stamp contains its checksum.
install_stamp="$venv/.nanogrid-install-stamp"
debian_packages=(redis-server docker.io debootstrap make)

locale_name="${LC_ALL:-${LC_MESSAGES:-${LANG:-}}}"
if [[ "$locale_name" == ko* ]]; then lang=ko; else lang=en; fi

# say EN KO: print one step line in the user's language.
say() {
    if [ "$lang" = ko ]; then echo "setup: $2"; else echo "setup: $1"; fi
}
fail() {
    if [ "$lang" = ko ]; then echo "setup: $2" >&2; else echo "setup: $1" >&2; fi
    exit 1
}

# -- 1. Debian packages ------------------------------------------------------------------------

command_for_package() {
    case "$1" in
        redis-server) echo redis-server ;;
        docker.io) echo dockerd ;;
        debootstrap) echo debootstrap ;;
        make) echo make ;;
    esac
}

missing_packages=()
for package in "${debian_packages[@]}"; do
    # debootstrap lives in /usr/sbin, which is not on every user's PATH.
    if ! PATH="$PATH:/usr/sbin:/sbin" command -v "$(command_for_package "$package")" >/dev/null 2>&1; then
        missing_packages+=("$package")
    fi
done
if [ ${#missing_packages[@]} -eq 0 ]; then
    say "Debian packages: present (${debian_packages[*]})" \
        "Debian 패키지: 이미 설치됨 (${debian_packages[*]})"
elif [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "Debian packages: installing ${missing_packages[*]}" \
        "Debian 패키지: ${missing_packages[*]} 설치 중"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing_packages[@]}" >/dev/null
else
    fail "Debian packages missing: ${missing_packages[*]}. Run: sudo apt-get update && sudo apt-get install -y ${missing_packages[*]}" \
         "Debian 패키지가 없습니다: ${missing_packages[*]}. 다음을 실행하세요: sudo apt-get update && sudo apt-get install -y ${missing_packages[*]}"
fi

# -- 2. virtualenv -----------------------------------------------------------------------------

python="${PYTHON:-python3.11}"
if [ ! -x "$venv/bin/python" ]; then
    if ! command -v "$python" >/dev/null 2>&1; then
        fail "$python not found. Install Python 3.11 or set PYTHON to a Python 3.11 interpreter." \
             "$python을(를) 찾을 수 없습니다. Python 3.11을 설치하거나 PYTHON에 Python 3.11 인터프리터를 지정하세요."
    fi
    say "virtualenv: creating $venv with $python" "virtualenv: $python으로 $venv 생성 중"
    "$python" -m venv "$venv"
fi
checksum=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ -f "$install_stamp" ] && [ "$(cat "$install_stamp")" = "$checksum" ] \
        && "$venv/bin/python" -c 'import nanogrid, worker_agent, moto, pytest' 2>/dev/null; then
    say "virtualenv: $venv up to date" "virtualenv: $venv 최신 상태"
else
    say "virtualenv: pip install -e '.[dev]' into $venv" "virtualenv: $venv에 pip install -e '.[dev]' 실행 중"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[dev]'
    echo "$checksum" >"$install_stamp"
fi

# -- 3. Docker engine --------------------------------------------------------------------------

if docker info >/dev/null 2>&1; then
    say "Docker: engine responds" "Docker: 엔진 응답 확인"
else
    if [ "$(id -u)" -ne 0 ]; then
        fail "Docker: no engine responds and only root can start dockerd. Run: sudo dockerd, or add yourself to the docker group." \
             "Docker: 응답하는 엔진이 없고 dockerd는 root만 띄울 수 있습니다. sudo dockerd를 실행하거나 docker 그룹에 사용자를 추가하세요."
    fi
    mkdir -p "$log_dir"
    say "Docker: starting dockerd (log: $log_dir/dockerd.log)" "Docker: dockerd 시작 중 (로그: $log_dir/dockerd.log)"
    # setsid and nohup keep dockerd running after this script and the shell that ran it exit.
    setsid nohup dockerd --storage-driver=overlay2 >>"$log_dir/dockerd.log" 2>&1 </dev/null &
    waited_s=0
    until docker info >/dev/null 2>&1; do
        if [ "$waited_s" -ge "$docker_start_timeout_s" ]; then
            fail "Docker: dockerd did not respond within ${docker_start_timeout_s} s; see $log_dir/dockerd.log" \
                 "Docker: dockerd가 ${docker_start_timeout_s}초 안에 응답하지 않았습니다. $log_dir/dockerd.log를 확인하세요."
        fi
        sleep 1
        waited_s=$((waited_s + 1))
    done
    say "Docker: engine responds after ${waited_s} s" "Docker: ${waited_s}초 만에 엔진 응답"
fi

# -- 4. runtime image --------------------------------------------------------------------------

if docker image inspect "$runtime_image" >/dev/null 2>&1; then
    say "runtime image: $runtime_image present" "런타임 이미지: $runtime_image 있음"
else
    say "runtime image: building $runtime_image (a few minutes)" "런타임 이미지: $runtime_image 빌드 중 (몇 분 걸림)"
    PATH="$PATH:/usr/sbin:/sbin" bash scripts/build-runtime-image.sh "$runtime_image"
fi

say "ready" "준비 완료"
