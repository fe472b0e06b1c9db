"""Human messages of the command line, in English and Korean.

JSON payloads and log lines stay as they are; only text written for a person goes through
`translate`. Field terms (SQS, Redis, requestId, functionId) stay in English in both languages,
because they are the words a reader searches for in logs and in the API.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

ENGLISH = "en"
KOREAN = "ko"
# POSIX order of precedence for the language of messages: the first non-empty one wins.
LOCALE_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")

MESSAGES: dict[str, dict[str, str]] = {
    # -- help text -------------------------------------------------------------------------
    "help.description": {
        ENGLISH: "NanoGrid Plus command line: run the local stack, deploy and invoke functions, read runs and logs.",
        KOREAN: "NanoGrid Plus 명령줄 도구: 로컬 스택 실행, 함수 배포와 호출, 실행 결과와 로그 조회.",
    },
    "help.url": {
        ENGLISH: "base URL of the NanoGrid API (env NANOGRID_URL, default %(default)s)",
        KOREAN: "NanoGrid API 기본 URL (환경 변수 NANOGRID_URL, 기본값 %(default)s)",
    },
    "help.api_key": {
        ENGLISH: "API key sent as 'Authorization: Bearer KEY' (env NANOGRID_API_KEY)",
        KOREAN: "'Authorization: Bearer KEY' 헤더로 보낼 API 키 (환경 변수 NANOGRID_API_KEY)",
    },
    "help.up": {
        ENGLISH: "start Redis, moto, the worker and the HTTP front on 127.0.0.1 and stay in the foreground",
        KOREAN: "127.0.0.1에 Redis, moto, 워커, HTTP 프런트를 띄우고 포그라운드에서 대기",
    },
    "help.up.port": {
        ENGLISH: "port of the HTTP front (default %(default)s)",
        KOREAN: "HTTP 프런트 포트 (기본값 %(default)s)",
    },
    "help.up.redis_port": {
        ENGLISH: "port of redis-server (default %(default)s)",
        KOREAN: "redis-server 포트 (기본값 %(default)s)",
    },
    "help.up.moto_port": {
        ENGLISH: "port of the moto server that serves SQS and S3 (default %(default)s)",
        KOREAN: "SQS와 S3를 제공하는 moto 서버 포트 (기본값 %(default)s)",
    },
    "help.up.concurrency": {
        ENGLISH: "runs the worker executes at once (default %(default)s)",
        KOREAN: "워커가 동시에 실행할 run 수 (기본값 %(default)s)",
    },
    "help.deploy": {
        ENGLISH: "zip a function folder (main.py, optional function.json) and register it",
        KOREAN: "함수 폴더(main.py, 선택 사항 function.json)를 zip으로 묶어 등록",
    },
    "help.deploy.dir": {
        ENGLISH: "folder that contains main.py",
        KOREAN: "main.py가 있는 폴더",
    },
    "help.deploy.id": {
        ENGLISH: "functionId (default: functionId in function.json, else the folder name)",
        KOREAN: "functionId (기본값: function.json의 functionId, 없으면 폴더 이름)",
    },
    "help.deploy.memory": {
        ENGLISH: "memory limit in MB, overrides memoryMB in function.json",
        KOREAN: "메모리 한도(MB). function.json의 memoryMB보다 우선",
    },
    "help.deploy.timeout": {
        ENGLISH: "run timeout in milliseconds, overrides timeoutMs in function.json",
        KOREAN: "실행 타임아웃(밀리초). function.json의 timeoutMs보다 우선",
    },
    "help.deploy.runtime": {
        ENGLISH: "runtime name such as python3.11, overrides runtime in function.json",
        KOREAN: "python3.11 같은 런타임 이름. function.json의 runtime보다 우선",
    },
    "help.invoke": {
        ENGLISH: "run a function through POST /run and print the JSON result "
                 "(exit 0 SUCCESS, 1 other final status, 2 usage or HTTP error, 3 still running)",
        KOREAN: "POST /run으로 함수를 실행하고 JSON 결과를 출력 "
                "(종료 코드 0 SUCCESS, 1 그 밖의 최종 상태, 2 사용법/HTTP 오류, 3 아직 실행 중)",
    },
    "help.invoke.id": {ENGLISH: "functionId to run", KOREAN: "실행할 functionId"},
    "help.invoke.data": {
        ENGLISH: "inputData as a JSON object, for example '{\"text\": \"a b a\"}'",
        KOREAN: "inputData로 보낼 JSON 객체. 예: '{\"text\": \"a b a\"}'",
    },
    "help.invoke.data_file": {
        ENGLISH: "file with the inputData JSON object; '-' reads standard input",
        KOREAN: "inputData JSON 객체가 담긴 파일. '-'이면 표준 입력에서 읽음",
    },
    "help.invoke.timeout": {
        ENGLISH: "run timeout in milliseconds for this run only",
        KOREAN: "이번 실행에만 적용할 타임아웃(밀리초)",
    },
    "help.invoke.async": {
        ENGLISH: "return the requestId at once (202) instead of waiting for the result",
        KOREAN: "결과를 기다리지 않고 바로 requestId를 받음 (202)",
    },
    "help.show": {
        ENGLISH: "print a run (GET /runs/{id}) and its controller and worker log lines",
        KOREAN: "run 정보(GET /runs/{id})와 컨트롤러/워커 로그를 함께 출력",
    },
    "help.logs": {
        ENGLISH: "print the controller and worker log lines of one requestId, in time order",
        KOREAN: "requestId 하나에 해당하는 컨트롤러/워커 로그를 시간순으로 출력",
    },
    "help.request_id": {ENGLISH: "requestId of the run", KOREAN: "run의 requestId"},
    "help.log_dir": {
        ENGLISH: "folder with the local stack's *.log files (env NANOGRID_LOG_DIR, default %(default)s)",
        KOREAN: "로컬 스택의 *.log 파일이 있는 폴더 (환경 변수 NANOGRID_LOG_DIR, 기본값 %(default)s)",
    },
    "help.functions": {ENGLISH: "list the registered functions", KOREAN: "등록된 함수 목록 출력"},
    "help.doctor": {
        ENGLISH: "check the local setup and a running stack, and say what to fix",
        KOREAN: "로컬 환경과 실행 중인 스택을 점검하고 고칠 점을 알려 줌",
    },
    # -- errors ----------------------------------------------------------------------------
    "error.api_unreachable": {
        ENGLISH: "cannot reach the NanoGrid API at {url} ({reason}). Start the local stack with `make up`, "
                 "or point --url or NANOGRID_URL at a running one.",
        KOREAN: "{url}의 NanoGrid API에 연결할 수 없습니다 ({reason}). `make up`으로 로컬 스택을 띄우거나, "
                "--url 또는 NANOGRID_URL로 실행 중인 API 주소를 지정하세요.",
    },
    "error.http": {
        ENGLISH: "{method} {path} failed with HTTP {status}: {detail}",
        KOREAN: "{method} {path} 요청이 HTTP {status}로 실패했습니다: {detail}",
    },
    "error.http_unauthorized_hint": {
        ENGLISH: "Pass the API key with --api-key or NANOGRID_API_KEY.",
        KOREAN: "--api-key 또는 NANOGRID_API_KEY로 API 키를 넘기세요.",
    },
    "error.data_invalid_json": {
        ENGLISH: "{source} is not valid JSON: {error}",
        KOREAN: "{source} 값이 올바른 JSON이 아닙니다: {error}",
    },
    "error.data_not_object": {
        ENGLISH: "{source} must be a JSON object such as '{{\"text\": \"a b\"}}', not a JSON {kind}",
        KOREAN: "{source} 값은 '{{\"text\": \"a b\"}}' 같은 JSON 객체여야 합니다. 받은 값: JSON {kind}",
    },
    "error.data_file_unreadable": {
        ENGLISH: "cannot read --data-file {path}: {error}",
        KOREAN: "--data-file {path} 파일을 읽을 수 없습니다: {error}",
    },
    "error.folder_invalid": {
        ENGLISH: "{path} is not a folder with main.py; pass a function folder such as examples/hello-python",
        KOREAN: "{path}: main.py가 있는 폴더가 아닙니다. examples/hello-python 같은 함수 폴더를 지정하세요.",
    },
    "error.function_json_invalid": {
        ENGLISH: "cannot read {path}: {error}",
        KOREAN: "{path} 파일을 읽을 수 없습니다: {error}",
    },
    "error.log_dir_missing": {
        ENGLISH: "log folder {log_dir} does not exist. The local stack (`make up`) writes it; "
                 "pass --log-dir or NANOGRID_LOG_DIR if it is elsewhere.",
        KOREAN: "로그 폴더가 없습니다: {log_dir}. 로컬 스택(`make up`)이 만드는 폴더이며, "
                "다른 곳에 있다면 --log-dir 또는 NANOGRID_LOG_DIR로 지정하세요.",
    },
    "error.doctor_missing": {
        ENGLISH: "doctor is not available: this checkout has no nanogrid/doctor.py.",
        KOREAN: "doctor를 사용할 수 없습니다: 이 체크아웃에 nanogrid/doctor.py가 없습니다.",
    },
    # -- results ---------------------------------------------------------------------------
    "deploy.new": {
        ENGLISH: "Deployed {function_id}: new version {version_id}.",
        KOREAN: "{function_id} 배포 완료: 새 버전 {version_id}.",
    },
    "deploy.unchanged": {
        ENGLISH: "Deployed {function_id}: code and settings unchanged, still version {version_id}.",
        KOREAN: "{function_id} 배포 완료: 코드와 설정이 그대로여서 기존 버전을 그대로 씁니다: {version_id}.",
    },
    "run.pending": {
        ENGLISH: "Run {request_id} has not finished yet (status {status}). Check it later with: nanogrid show {request_id}",
        KOREAN: "requestId {request_id} 실행이 아직 끝나지 않았습니다 (상태 {status}). "
                "나중에 `nanogrid show {request_id}`로 확인하세요.",
    },
    "logs.header": {
        ENGLISH: "Log lines with requestId {request_id} from {log_dir}:",
        KOREAN: "{log_dir}에서 찾은 requestId {request_id} 로그:",
    },
    "logs.none": {
        ENGLISH: "No log lines with requestId {request_id} in {log_dir}.",
        KOREAN: "{log_dir}에 requestId {request_id}가 들어간 로그가 없습니다.",
    },
    "functions.none": {
        ENGLISH: "No functions registered. Deploy one with: nanogrid deploy examples/hello-python",
        KOREAN: "등록된 함수가 없습니다. 배포 예: nanogrid deploy examples/hello-python",
    },
    # -- nanogrid up -----------------------------------------------------------------------
    "up.checking": {ENGLISH: "Checking prerequisites...", KOREAN: "사전 요구 사항을 확인하는 중..."},
    "up.missing_redis": {
        ENGLISH: "redis-server is not installed. Install it with: apt-get install -y redis-server "
                 "(or run scripts/setup-local.sh)",
        KOREAN: "redis-server가 설치되어 있지 않습니다. 설치: apt-get install -y redis-server "
                "(또는 scripts/setup-local.sh 실행)",
    },
    "up.docker_down": {
        ENGLISH: "Docker does not respond ({error}). Start it with scripts/setup-local.sh, or run dockerd as root.",
        KOREAN: "Docker가 응답하지 않습니다 ({error}). scripts/setup-local.sh를 실행하거나 root로 dockerd를 띄우세요.",
    },
    "up.image_missing": {
        ENGLISH: "runtime image {image} for {runtime} is missing. Build it with: make image",
        KOREAN: "{runtime} 런타임 이미지가 없습니다: {image}. `make image`로 빌드하세요.",
    },
    "up.image_settings_invalid": {
        ENGLISH: "NANOGRID_RUNTIME_IMAGES is invalid: {error}",
        KOREAN: "NANOGRID_RUNTIME_IMAGES 값이 잘못되었습니다: {error}",
    },
    "up.port_taken": {
        ENGLISH: "port {port} for {role} is already in use on 127.0.0.1. "
                 "Pick another with {flag} N, for example {flag} {suggestion}.",
        KOREAN: "127.0.0.1의 {port} 포트({role})를 이미 다른 프로세스가 쓰고 있습니다. "
                "{flag} N으로 다른 포트를 지정하세요. 예: {flag} {suggestion}",
    },
    "up.ports_same": {
        ENGLISH: "--port, --redis-port and --moto-port must differ, got {ports}.",
        KOREAN: "--port, --redis-port, --moto-port는 서로 달라야 합니다. 받은 값: {ports}",
    },
    "up.role.front": {ENGLISH: "the HTTP front", KOREAN: "HTTP 프런트"},
    "up.role.redis": {ENGLISH: "Redis", KOREAN: "Redis"},
    "up.role.moto": {ENGLISH: "moto (SQS and S3)", KOREAN: "moto(SQS, S3)"},
    "up.starting": {
        ENGLISH: "Starting the local stack (state and logs in {state_dir})...",
        KOREAN: "로컬 스택을 시작합니다 (상태와 로그 폴더: {state_dir})...",
    },
    "up.start_failed": {
        ENGLISH: "the local stack failed to start: {error}",
        KOREAN: "로컬 스택을 시작하지 못했습니다: {error}",
    },
    "up.registered": {
        ENGLISH: "Registered the examples: {names}",
        KOREAN: "예제 함수를 등록했습니다: {names}",
    },
    "up.ready": {
        ENGLISH: "NanoGrid Plus is running.\n"
                 "  front  {front_url}\n"
                 "  Redis  {redis_url}\n"
                 "  moto   {moto_url} (SQS, S3)\n"
                 "  queue  {queue_url}\n"
                 "  logs   {log_dir}\n"
                 "Try it:\n"
                 "  {curl}\n"
                 "Press Ctrl-C to stop.",
        KOREAN: "NanoGrid Plus가 실행 중입니다.\n"
                "  프런트  {front_url}\n"
                "  Redis   {redis_url}\n"
                "  moto    {moto_url} (SQS, S3)\n"
                "  큐      {queue_url}\n"
                "  로그    {log_dir}\n"
                "바로 실행해 보기:\n"
                "  {curl}\n"
                "종료하려면 Ctrl-C를 누르세요.",
    },
    "up.process_died": {
        ENGLISH: "{name} exited unexpectedly; see {log}. Stopping the stack.",
        KOREAN: "{name} 프로세스가 예기치 않게 종료되었습니다. 로그: {log}. 스택을 종료합니다.",
    },
    "up.stopping": {
        ENGLISH: "Stopping the local stack (the worker first finishes runs in flight)...",
        KOREAN: "로컬 스택을 종료하는 중입니다 (워커는 진행 중인 run을 마친 뒤 종료)...",
    },
    "up.stopped": {ENGLISH: "Stopped everything that nanogrid up started.", KOREAN: "nanogrid up이 띄운 프로세스를 모두 종료했습니다."},
}


def language(environ: Mapping[str, str] | None = None) -> str:
    """Return KOREAN when the locale that sets messages (LC_ALL, then LC_MESSAGES, then LANG)
    starts with 'ko', else ENGLISH."""
    environ = os.environ if environ is None else environ
    for name in LOCALE_VARIABLES:
        value = environ.get(name, "")
        if value:
            return KOREAN if value.lower().startswith("ko") else ENGLISH
    return ENGLISH


def translate(key: str, environ: Mapping[str, str] | None = None, **fields: object) -> str:
    """Return message `key` in the language of the environment, with `fields` filled in.

    Raises KeyError for an unknown key, so a typo fails in the unit tests, not in front of a user.
    """
    text = MESSAGES[key][language(environ)]
    return text.format(**fields) if fields else text
