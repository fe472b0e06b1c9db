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
    # -- doctor (nanogrid/doctor.py) -------------------------------------------------------
    "doctor.likely_fix": {ENGLISH: "likely fix: {fix}", KOREAN: "조치: {fix}"},
    "doctor.summary_ok": {ENGLISH: "All checks passed.", KOREAN: "모든 점검을 통과했습니다."},
    "doctor.summary_failed": {ENGLISH: "{failed} check(s) failed; fix the first one first.",
                              KOREAN: "점검 {failed}개가 실패했습니다. 첫 번째 실패부터 고치세요."},
    "doctor.skipped": {ENGLISH: "skipped, because {prerequisite} failed", KOREAN: "{prerequisite} 점검이 실패해 건너뜀"},
    "doctor.settings_ok": {ENGLISH: "API {url}, Redis {redis}, queue {queue}",
                           KOREAN: "API {url}, Redis {redis}, 큐 {queue}"},
    "doctor.settings_missing": {ENGLISH: "missing {names}", KOREAN: "{names} 값이 없습니다"},
    "doctor.fix.settings": {
        ENGLISH: "set them; for a stack deployed with SAM, copy ApiUrl, JobQueueUrl and RedisEndpoint "
                 "from `sam list stack-outputs` (docs/deploy.md)",
        KOREAN: "값을 설정하세요. SAM으로 배포한 스택이면 `sam list stack-outputs`의 ApiUrl, JobQueueUrl, "
                "RedisEndpoint를 쓰면 됩니다 (docs/ko/deploy.md)",
    },
    "doctor.redis_ok": {ENGLISH: "PONG from {url}", KOREAN: "{url}에서 PONG 응답"},
    "doctor.redis_bad_url": {ENGLISH: "invalid NANOGRID_REDIS_URL {url}: {error}",
                             KOREAN: "NANOGRID_REDIS_URL {url} 형식이 잘못되었습니다: {error}"},
    "doctor.fix.redis_url": {ENGLISH: "use redis://HOST:PORT/0 locally or rediss://:TOKEN@HOST:6379/0 on ElastiCache",
                             KOREAN: "로컬은 redis://HOST:PORT/0, ElastiCache는 rediss://:TOKEN@HOST:6379/0 형식을 쓰세요"},
    "doctor.redis_refused": {ENGLISH: "connection refused by {url} ({error})",
                             KOREAN: "{url} 연결이 거부되었습니다(refused) ({error})"},
    "doctor.fix.redis_refused": {
        ENGLISH: "nothing listens there: check the port in NANOGRID_REDIS_URL, that Redis runs, and that the "
                 "Redis security group admits 6379 from this client's security group",
        KOREAN: "해당 포트에서 듣는 프로세스가 없습니다. NANOGRID_REDIS_URL의 포트, Redis 실행 여부, "
                "Redis security group이 이 클라이언트의 security group에서 오는 6379를 허용하는지 확인하세요",
    },
    "doctor.redis_timeout": {ENGLISH: "connection to {url} timed out ({error})",
                             KOREAN: "{url} 연결 시간이 초과되었습니다(timeout) ({error})"},
    "doctor.fix.redis_timeout": {
        ENGLISH: "packets are dropped: run from inside the VPC (private subnet), and check the route tables and "
                 "that the Redis security group admits 6379 from this client's security group",
        KOREAN: "패킷이 버려지고 있습니다. VPC 안(private subnet)에서 실행하는지, route table, 그리고 Redis "
                "security group이 이 클라이언트의 security group에서 오는 6379를 허용하는지 확인하세요",
    },
    "doctor.redis_tls": {ENGLISH: "TLS handshake with {url} failed ({error})",
                         KOREAN: "{url}와 TLS handshake에 실패했습니다 ({error})"},
    "doctor.fix.redis_tls": {
        ENGLISH: "ElastiCache with in-transit encryption needs rediss:// (two s); a local redis-server needs redis://",
        KOREAN: "in-transit encryption을 켠 ElastiCache는 rediss://(s 두 개), 로컬 redis-server는 redis://를 써야 합니다",
    },
    "doctor.redis_auth": {ENGLISH: "AUTH rejected by {url} ({error})", KOREAN: "{url}가 AUTH를 거부했습니다 ({error})"},
    "doctor.fix.redis_auth": {
        ENGLISH: "put the token from the RedisAuthSecretArn secret in the URL: rediss://:TOKEN@HOST:6379/0",
        KOREAN: "RedisAuthSecretArn secret의 token을 URL에 넣으세요: rediss://:TOKEN@HOST:6379/0",
    },
    "doctor.redis_dns": {ENGLISH: "cannot resolve the host of {url} ({error})",
                         KOREAN: "{url}의 호스트 이름을 찾을 수 없습니다 ({error})"},
    "doctor.fix.redis_dns": {ENGLISH: "copy the host from the RedisEndpoint output; it resolves only inside the VPC",
                             KOREAN: "RedisEndpoint output의 호스트를 그대로 쓰세요. VPC 안에서만 resolve됩니다"},
    "doctor.redis_other": {ENGLISH: "Redis at {url} failed: {error}", KOREAN: "{url}의 Redis 점검 실패: {error}"},
    "doctor.fix.redis_other": {ENGLISH: "read the error above and the Redis log", KOREAN: "위 오류와 Redis 로그를 확인하세요"},
    "doctor.sqs_ok": {ENGLISH: "{queue}: {visible} visible, {in_flight} in flight",
                      KOREAN: "{queue}: 대기 {visible}개, 처리 중 {in_flight}개"},
    "doctor.sqs_missing": {ENGLISH: "queue {queue} not found ({error})", KOREAN: "큐 {queue}를 찾을 수 없습니다 ({error})"},
    "doctor.fix.sqs_missing": {ENGLISH: "copy JobQueueUrl from the stack outputs; check the region",
                               KOREAN: "stack output의 JobQueueUrl을 그대로 쓰고 region을 확인하세요"},
    "doctor.sqs_denied": {ENGLISH: "access to {queue} denied ({error})", KOREAN: "{queue} 접근이 거부되었습니다 ({error})"},
    "doctor.fix.sqs_denied": {ENGLISH: "use credentials whose role may call sqs:GetQueueAttributes on this queue",
                              KOREAN: "이 큐에 sqs:GetQueueAttributes 권한이 있는 자격 증명을 쓰세요"},
    "doctor.sqs_refused": {ENGLISH: "connection to SQS refused for {queue} ({error})",
                           KOREAN: "{queue}의 SQS 연결이 거부되었습니다(refused) ({error})"},
    "doctor.fix.sqs_refused": {ENGLISH: "locally, check AWS_ENDPOINT_URL and that moto runs",
                               KOREAN: "로컬이면 AWS_ENDPOINT_URL과 moto 실행 여부를 확인하세요"},
    "doctor.sqs_timeout": {ENGLISH: "SQS timed out for {queue} ({error})", KOREAN: "{queue}의 SQS 응답 시간 초과 ({error})"},
    "doctor.fix.sqs_timeout": {
        ENGLISH: "in a private subnet, SQS needs the interface VPC endpoint with private DNS, and its security "
                 "group must admit 443 from this client's security group",
        KOREAN: "private subnet에서는 private DNS를 켠 SQS interface VPC endpoint가 필요하고, 그 security group이 "
                "이 클라이언트의 security group에서 오는 443을 허용해야 합니다",
    },
    "doctor.sqs_tls": {ENGLISH: "TLS to SQS failed for {queue} ({error})", KOREAN: "{queue}의 SQS TLS 연결 실패 ({error})"},
    "doctor.fix.sqs_tls": {ENGLISH: "check the system CA bundle and any proxy that intercepts HTTPS",
                           KOREAN: "시스템 CA 번들과 HTTPS를 가로채는 프록시가 있는지 확인하세요"},
    "doctor.sqs_dns": {ENGLISH: "cannot resolve the SQS endpoint for {queue} ({error})",
                       KOREAN: "{queue}의 SQS endpoint 이름을 찾을 수 없습니다 ({error})"},
    "doctor.fix.sqs_dns": {ENGLISH: "turn on private DNS for the SQS VPC endpoint, or check the region",
                           KOREAN: "SQS VPC endpoint의 private DNS를 켜거나 region을 확인하세요"},
    "doctor.sqs_other": {ENGLISH: "SQS failed for {queue}: {error}", KOREAN: "{queue}의 SQS 점검 실패: {error}"},
    "doctor.fix.sqs_other": {ENGLISH: "check AWS credentials and region (AWS_REGION)",
                             KOREAN: "AWS 자격 증명과 region(AWS_REGION)을 확인하세요"},
    "doctor.pubsub_ok": {ENGLISH: "round trip on {channel}, {receivers} subscriber(s) received it",
                         KOREAN: "{channel} 왕복 성공, 구독자 {receivers}명이 수신"},
    "doctor.pubsub_no_confirm": {ENGLISH: "Redis did not confirm SUBSCRIBE {channel}",
                                 KOREAN: "Redis가 SUBSCRIBE {channel}을 확인해 주지 않았습니다"},
    "doctor.pubsub_lost": {ENGLISH: "PUBLISH on {channel} reached {receivers} subscriber(s) but the message never arrived",
                           KOREAN: "{channel}에 PUBLISH했고 구독자 {receivers}명에게 전달되었다고 하지만 메시지가 오지 않았습니다"},
    "doctor.pubsub_error": {ENGLISH: "pub/sub on {channel} failed: {error}", KOREAN: "{channel} pub/sub 실패: {error}"},
    "doctor.fix.pubsub": {
        ENGLISH: "use the primary endpoint (not a reader or cluster-mode endpoint), and check that no proxy drops pub/sub",
        KOREAN: "reader나 cluster mode endpoint가 아닌 primary endpoint를 쓰고, pub/sub를 막는 프록시가 없는지 확인하세요",
    },
    "doctor.api_ok": {ENGLISH: "{url}/health?deep=1 reports every check ok",
                      KOREAN: "{url}/health?deep=1의 모든 점검이 정상입니다"},
    "doctor.api_refused": {ENGLISH: "connection to {url} refused ({error})", KOREAN: "{url} 연결이 거부되었습니다(refused) ({error})"},
    "doctor.fix.api_refused": {ENGLISH: "check --url; locally, start the stack with `nanogrid up`",
                               KOREAN: "--url을 확인하세요. 로컬이면 `nanogrid up`으로 스택을 띄우세요"},
    "doctor.api_timeout": {ENGLISH: "{url} timed out ({error})", KOREAN: "{url} 응답 시간 초과 ({error})"},
    "doctor.fix.api_timeout": {ENGLISH: "check --url and the controller's log group for a cold start or a hang",
                               KOREAN: "--url과 controller log group에서 cold start나 멈춤이 있는지 확인하세요"},
    "doctor.api_tls": {ENGLISH: "TLS to {url} failed ({error})", KOREAN: "{url} TLS 연결 실패 ({error})"},
    "doctor.fix.api_tls": {ENGLISH: "use the https:// ApiUrl output as is", KOREAN: "ApiUrl output의 https:// 주소를 그대로 쓰세요"},
    "doctor.api_other": {ENGLISH: "{url} failed: {error}", KOREAN: "{url} 점검 실패: {error}"},
    "doctor.fix.api_other": {ENGLISH: "check --url", KOREAN: "--url을 확인하세요"},
    "doctor.api_unhealthy": {ENGLISH: "{url}/health?deep=1 returned {status}; failing on the controller's side: {failing}; {body}",
                             KOREAN: "{url}/health?deep=1이 {status}를 반환했습니다. controller 쪽 실패 항목: {failing}. {body}"},
    "doctor.fix.api_unhealthy": {
        ENGLISH: "the controller cannot reach what is listed: check its VPC subnets, security group and environment "
                 "variables in the template, then read its log group",
        KOREAN: "controller가 위 항목에 닿지 못합니다. 템플릿의 VPC subnet, security group, 환경 변수를 확인하고 "
                "controller log group을 읽으세요",
    },
    "doctor.run_ok": {ENGLISH: "{function_id} returned SUCCESS, requestId {request_id}, workerId {worker_id}",
                      KOREAN: "{function_id}가 SUCCESS를 반환했습니다. requestId {request_id}, workerId {worker_id}"},
    "doctor.run_register_failed": {ENGLISH: "PUT /functions returned {status}: {body}",
                                   KOREAN: "PUT /functions가 {status}를 반환했습니다: {body}"},
    "doctor.fix.run_register": {ENGLISH: "check the API key (--api-key) and the code bucket permissions",
                                KOREAN: "API 키(--api-key)와 code bucket 권한을 확인하세요"},
    "doctor.run_unreachable": {ENGLISH: "the API stopped answering: {error}", KOREAN: "API가 응답하지 않습니다: {error}"},
    "doctor.run_not_finished": {ENGLISH: "run {request_id} is still {status} after the controller's wait",
                                KOREAN: "controller 대기 시간이 지나도 run {request_id}가 아직 {status} 상태입니다"},
    "doctor.fix.run_no_worker": {
        ENGLISH: "no worker took the job: check the Auto Scaling group's in-service instances and the worker log group",
        KOREAN: "잡을 가져간 워커가 없습니다. Auto Scaling group의 InService 인스턴스와 worker log group을 확인하세요",
    },
    "doctor.run_failed": {ENGLISH: "POST /run returned {status}: {body}", KOREAN: "POST /run이 {status}를 반환했습니다: {body}"},
    "doctor.fix.run_failed": {
        ENGLISH: "read the worker log group for this requestId; a missing runtime image is the usual cause",
        KOREAN: "worker log group에서 이 requestId를 찾아보세요. 런타임 이미지가 없는 경우가 가장 흔합니다",
    },
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
