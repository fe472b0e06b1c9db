"""The `nanogrid` command line: run the local stack, deploy and invoke functions, read runs and logs.

Exit codes of the commands that talk to the API: 0 success, 1 a run that ended in a final status
other than SUCCESS, 2 a usage error, an HTTP error or an unreachable API, 3 a run still going.
Human messages come from nanogrid.i18n; JSON payloads and log lines are printed as they are.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import signal
import socket
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from nanogrid.client import ApiError, ApiResponse, Client, read_function_folder
from nanogrid.i18n import translate

logger = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:8080"
EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_USAGE = 2
EXIT_RUN_PENDING = 3
FINAL_STATUSES = {"SUCCESS", "FAILED", "TIMEOUT", "OOM", "ERROR"}
# Extra seconds the HTTP client waits beyond a run's timeout, for queueing and container start.
CLIENT_TIMEOUT_MARGIN_S = 10
DEFAULT_CLIENT_TIMEOUT_S = 35
UP_POLL_INTERVAL_S = 1.0


class CliError(Exception):
    """A failure to report to the user as one message, with exit code 2."""


# -- parser ------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from nanogrid.stack import StackConfig

    defaults = StackConfig()
    default_log_dir = os.environ.get("NANOGRID_LOG_DIR") or str(defaults.log_dir)

    parser = argparse.ArgumentParser(prog="nanogrid", description=translate("help.description"))
    parser.add_argument("--url", default=os.environ.get("NANOGRID_URL") or DEFAULT_URL, help=translate("help.url"))
    parser.add_argument("--api-key", default=os.environ.get("NANOGRID_API_KEY", ""), help=translate("help.api_key"))

    # The same two options after the subcommand, so `nanogrid invoke X --url U` works too.
    # SUPPRESS keeps a subcommand from resetting a value given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument("--api-key", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser("up", parents=[common], help=translate("help.up"), description=translate("help.up"))
    up.add_argument("--port", type=port_number, default=defaults.front_port, help=translate("help.up.port"))
    up.add_argument("--redis-port", type=port_number, default=defaults.redis_port, help=translate("help.up.redis_port"))
    up.add_argument("--moto-port", type=port_number, default=defaults.moto_port, help=translate("help.up.moto_port"))
    up.add_argument("--concurrency", type=positive_int, default=defaults.worker_concurrency,
                    help=translate("help.up.concurrency"))
    up.set_defaults(handler=command_up)

    deploy = commands.add_parser("deploy", parents=[common], help=translate("help.deploy"),
                                 description=translate("help.deploy"))
    deploy.add_argument("dir", metavar="DIR", type=Path, help=translate("help.deploy.dir"))
    deploy.add_argument("--id", dest="function_id", help=translate("help.deploy.id"))
    deploy.add_argument("--memory", dest="memory_mb", type=positive_int, metavar="MB", help=translate("help.deploy.memory"))
    deploy.add_argument("--timeout", dest="timeout_ms", type=positive_int, metavar="MS",
                        help=translate("help.deploy.timeout"))
    deploy.add_argument("--runtime", help=translate("help.deploy.runtime"))
    deploy.set_defaults(handler=command_deploy)

    invoke = commands.add_parser("invoke", parents=[common], help=translate("help.invoke"),
                                 description=translate("help.invoke"))
    invoke.add_argument("function_id", metavar="ID", help=translate("help.invoke.id"))
    data = invoke.add_mutually_exclusive_group()
    data.add_argument("--data", help=translate("help.invoke.data"))
    data.add_argument("--data-file", metavar="FILE", help=translate("help.invoke.data_file"))
    invoke.add_argument("--timeout", dest="timeout_ms", type=positive_int, metavar="MS",
                        help=translate("help.invoke.timeout"))
    invoke.add_argument("--async", dest="run_async", action="store_true", help=translate("help.invoke.async"))
    invoke.set_defaults(handler=command_invoke)

    show = commands.add_parser("show", parents=[common], help=translate("help.show"), description=translate("help.show"))
    show.add_argument("request_id", metavar="REQUEST_ID", help=translate("help.request_id"))
    show.add_argument("--log-dir", type=Path, default=default_log_dir, help=translate("help.log_dir"))
    show.set_defaults(handler=command_show)

    logs = commands.add_parser("logs", parents=[common], help=translate("help.logs"), description=translate("help.logs"))
    logs.add_argument("request_id", metavar="REQUEST_ID", help=translate("help.request_id"))
    logs.add_argument("--log-dir", type=Path, default=default_log_dir, help=translate("help.log_dir"))
    logs.set_defaults(handler=command_logs)

    functions = commands.add_parser("functions", parents=[common], help=translate("help.functions"),
                                    description=translate("help.functions"))
    functions.set_defaults(handler=command_functions)

    # -- doctor ---------------------------------------------------------------------------
    # nanogrid/doctor.py (written separately) provides run(args) -> int. Options that doctor
    # needs are added to this subparser; args also carries the global --url and --api-key.
    doctor = commands.add_parser("doctor", parents=[common], help=translate("help.doctor"),
                                 description=translate("help.doctor"))
    doctor.set_defaults(handler=command_doctor)

    return parser


def port_number(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} is out of range 1-65535")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except CliError as exc:
        print(f"nanogrid: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ApiError as exc:
        print(f"nanogrid: {translate('error.api_unreachable', url=args.url, reason=_unreachable_reason(exc))}",
              file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader went away (`nanogrid logs ID | head`). Point stdout at /dev/null so the
        # interpreter's final flush does not raise a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_RUN_FAILED


def _unreachable_reason(exc: ApiError) -> str:
    # ApiError's message is "BASE_URL: reason"; the URL is already in the sentence around it.
    text = str(exc)
    return text.split(": ", 1)[1] if ": " in text else text


# -- API commands -----------------------------------------------------------------------------


def make_client(args: argparse.Namespace, timeout_s: float = DEFAULT_CLIENT_TIMEOUT_S) -> Client:
    return Client(args.url, args.api_key, timeout_s=timeout_s)


def command_deploy(args: argparse.Namespace) -> int:
    folder: Path = args.dir
    if not (folder / "main.py").is_file():
        raise CliError(translate("error.folder_invalid", path=folder))
    try:
        function_id, upload = read_function_folder(folder, args.function_id)
    except (OSError, ValueError) as exc:
        raise CliError(translate("error.function_json_invalid", path=folder / "function.json", error=exc)) from exc
    if args.memory_mb is not None:
        upload["memoryMB"] = args.memory_mb
    if args.timeout_ms is not None:
        upload["timeoutMs"] = args.timeout_ms
    if args.runtime:
        upload["runtime"] = args.runtime

    path = f"/functions/{function_id}"
    response = make_client(args).request("PUT", path, upload)
    check_http(response, "PUT", path)
    key = "deploy.new" if response.status == 201 else "deploy.unchanged"
    print(translate(key, function_id=function_id, version_id=response.body.get("versionId")))
    return EXIT_OK


def command_invoke(args: argparse.Namespace) -> int:
    input_data = read_input_data(args.data, args.data_file)
    timeout_s = DEFAULT_CLIENT_TIMEOUT_S
    if args.timeout_ms:
        timeout_s = max(timeout_s, args.timeout_ms / 1000 + CLIENT_TIMEOUT_MARGIN_S)
    response = make_client(args, timeout_s).run(args.function_id, input_data, args.timeout_ms, wait=not args.run_async)
    path = "/run?async=true" if args.run_async else "/run"
    check_http(response, "POST", path)
    print(json.dumps(response.body, indent=2, ensure_ascii=False))
    return run_exit_code(response)


def command_show(args: argparse.Namespace) -> int:
    path = f"/runs/{args.request_id}"
    response = make_client(args).get_run(args.request_id)
    check_http(response, "GET", path)
    print(json.dumps(response.body, indent=2, ensure_ascii=False))
    print()
    print_log_lines(args.request_id, args.log_dir, header=True)
    return run_exit_code(response)


def command_logs(args: argparse.Namespace) -> int:
    return EXIT_OK if print_log_lines(args.request_id, args.log_dir, header=False) else EXIT_RUN_FAILED


def command_functions(args: argparse.Namespace) -> int:
    response = make_client(args).list_functions()
    check_http(response, "GET", "/functions")
    functions = response.body.get("functions", [])
    if not functions:
        print(translate("functions.none"))
        return EXIT_OK
    width = max(len(item["functionId"]) for item in functions)
    for item in functions:
        print(f"{item['functionId']:<{width}}  {item['runtime']:<10}  {item['memoryMB']:>5} MB  "
              f"{item['timeoutMs']:>7} ms  {item['versionId'][:12]}")
    return EXIT_OK


def command_doctor(args: argparse.Namespace) -> int:
    import importlib

    try:
        doctor = importlib.import_module("nanogrid.doctor")
    except ModuleNotFoundError as exc:
        if exc.name != "nanogrid.doctor":
            raise
        print(f"nanogrid: {translate('error.doctor_missing')}", file=sys.stderr)
        return EXIT_USAGE
    return doctor.run(args)


def read_input_data(data: str | None, data_file: str | None) -> dict:
    """Parse inputData from --data or --data-file; both absent means an empty object."""
    if data is None and data_file is None:
        return {}
    if data is not None:
        source, text = "--data", data
    else:
        source = f"--data-file {data_file}"
        try:
            text = sys.stdin.read() if data_file == "-" else Path(data_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(translate("error.data_file_unreadable", path=data_file, error=exc)) from exc
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(translate("error.data_invalid_json", source=source, error=exc)) from exc
    if not isinstance(value, dict):
        raise CliError(translate("error.data_not_object", source=source, kind=_json_kind(value)))
    return value


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def check_http(response: ApiResponse, method: str, path: str) -> None:
    """Raise CliError for an HTTP error status, with the API's own code and message."""
    if response.status < 400:
        return
    body = response.body
    detail = f"{body.get('code', 'ERROR')}: {body.get('message', body)}" if isinstance(body, dict) else str(body)
    message = translate("error.http", method=method, path=path, status=response.status, detail=detail)
    if response.status == 401:
        message += " " + translate("error.http_unauthorized_hint")
    raise CliError(message)


def run_exit_code(response: ApiResponse) -> int:
    """Map a /run or /runs response to an exit code, and tell the user how to follow a run still going."""
    status = response.body.get("status")
    if response.status == 202 or status not in FINAL_STATUSES:
        request_id = response.body.get("requestId", "?")
        print(translate("run.pending", request_id=request_id, status=status), file=sys.stderr)
        return EXIT_RUN_PENDING
    return EXIT_OK if status == "SUCCESS" else EXIT_RUN_FAILED


# -- logs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogLine:
    timestamp: datetime
    source: str
    text: str


def find_log_lines(request_id: str, log_dir: Path) -> list[LogLine]:
    """Return the lines of log_dir/*.log that contain request_id, oldest first.

    Controller and worker lines both carry the id under "requestId", so a plain substring search
    finds both sides. Lines without a readable timestamp (a traceback continuation, a plain print)
    take the timestamp of the line before them in the same file.
    """
    if not log_dir.is_dir():
        raise CliError(translate("error.log_dir_missing", log_dir=log_dir))
    found: list[LogLine] = []
    for path in sorted(log_dir.glob("*.log")):
        last_timestamp = datetime.fromtimestamp(0, timezone.utc)
        with path.open(encoding="utf-8", errors="replace") as log_file:
            for raw_line in log_file:
                line = raw_line.rstrip("\n")
                timestamp = parse_log_timestamp(line)
                if timestamp is not None:
                    last_timestamp = timestamp
                if request_id in line:
                    found.append(LogLine(timestamp or last_timestamp, path.stem, line))
    # sorted() is stable, so lines with equal timestamps keep their order within a file.
    return sorted(found, key=lambda entry: entry.timestamp)


def parse_log_timestamp(line: str) -> datetime | None:
    """Read the "timestamp" of a JSON log line: ISO 8601, as the worker and the controller write
    it, or Powertools' default "2024-01-31 12:00:00,123+0000". Return None for any other line."""
    if not line.startswith("{"):
        return None
    try:
        value = json.loads(line).get("timestamp")
    except (ValueError, AttributeError):
        return None
    if not isinstance(value, str):
        return None
    try:
        timestamp = datetime.fromisoformat(value.replace(",", "."))
    except ValueError:
        return None
    return timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=timezone.utc)


def print_log_lines(request_id: str, log_dir: Path, header: bool) -> bool:
    lines = find_log_lines(request_id, log_dir)
    if not lines:
        print(translate("logs.none", request_id=request_id, log_dir=log_dir), file=sys.stderr)
        return False
    if header:
        print(translate("logs.header", request_id=request_id, log_dir=log_dir))
    width = max(len(entry.source) for entry in lines)
    for entry in lines:
        print(f"{entry.source:<{width}} | {entry.text}")
    return True


# -- up ---------------------------------------------------------------------------------------


class StopRequested(Exception):
    """SIGINT or SIGTERM arrived while `nanogrid up` was running."""


def command_up(args: argparse.Namespace) -> int:
    from nanogrid.stack import LocalStack, StackConfig, StackError, wait_until_healthy

    ports = {"front": ("--port", args.port), "redis": ("--redis-port", args.redis_port),
             "moto": ("--moto-port", args.moto_port)}
    print(translate("up.checking"))
    problems = check_ports(ports) + check_prerequisites()
    if problems:
        for problem in problems:
            print(f"nanogrid: {problem}", file=sys.stderr)
        return EXIT_USAGE

    config = StackConfig(front_port=args.port, redis_port=args.redis_port, moto_port=args.moto_port,
                         worker_concurrency=args.concurrency, api_key=args.api_key)
    stack = LocalStack(config)
    previous_handlers = install_stop_handlers()
    try:
        print(translate("up.starting", state_dir=config.state_dir))
        try:
            stack.start()
            wait_until_healthy(config.front_url)
            names = stack.register_examples()
        except (StackError, ApiError) as exc:
            print(f"nanogrid: {translate('up.start_failed', error=exc)}", file=sys.stderr)
            return EXIT_RUN_FAILED
        print(translate("up.registered", names=", ".join(names)))
        print(translate("up.ready", front_url=config.front_url, redis_url=config.redis_url, moto_url=config.moto_url,
                        queue_url=stack.queue_url, log_dir=config.log_dir,
                        curl=example_curl(config.front_url, bool(args.api_key))), flush=True)
        return watch_stack(stack)
    except StopRequested:
        return EXIT_OK
    finally:
        # A second Ctrl-C must not cut the shutdown short and leave processes behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print(translate("up.stopping"), flush=True)
        stack.stop()
        print(translate("up.stopped"), flush=True)
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)


def install_stop_handlers() -> dict[int, object]:
    """Turn SIGINT and SIGTERM into StopRequested. SIGINT is set explicitly because a shell
    starts background jobs with SIGINT ignored, and `nanogrid up &` must still stop on it."""

    def on_signal(signum, _frame):
        raise StopRequested(signal.Signals(signum).name)

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.getsignal(signum)
        signal.signal(signum, on_signal)
    return previous


def watch_stack(stack) -> int:
    """Wait until a stop signal or until a process of the stack exits on its own."""
    while True:
        for name, alive in stack.processes_alive().items():
            if not alive:
                log = stack.config.log_dir / f"{name}.log"
                print(f"nanogrid: {translate('up.process_died', name=name, log=log)}", file=sys.stderr)
                return EXIT_RUN_FAILED
        time.sleep(UP_POLL_INTERVAL_S)


def check_ports(ports: dict[str, tuple[str, int]]) -> list[str]:
    """Return one message per port that is taken on 127.0.0.1, each with a free alternative."""
    numbers = [port for _flag, port in ports.values()]
    if len(set(numbers)) != len(numbers):
        return [translate("up.ports_same", ports=", ".join(map(str, numbers)))]
    from nanogrid.stack import free_port

    problems = []
    for role, (flag, port) in ports.items():
        if not port_is_free(port):
            problems.append(translate("up.port_taken", port=port, role=translate(f"up.role.{role}"),
                                      flag=flag, suggestion=free_port()))
    return problems


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        # SO_REUSEADDR as the servers themselves bind, so a port in TIME_WAIT counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def check_prerequisites() -> list[str]:
    """Return one message per missing prerequisite: redis-server, a Docker engine, runtime images."""
    import shutil

    problems = []
    if shutil.which("redis-server") is None:
        problems.append(translate("up.missing_redis"))

    import docker
    import docker.errors

    try:
        client = docker.from_env(timeout=5)
        client.ping()
    except docker.errors.DockerException as exc:
        problems.append(translate("up.docker_down", error=exc))
        return problems

    from worker_agent.errors import SettingsError
    from worker_agent.settings import DEFAULT_RUNTIME_IMAGES, ENV_RUNTIME_IMAGES, parse_runtime_images

    try:
        images = parse_runtime_images(os.environ[ENV_RUNTIME_IMAGES]) if os.environ.get(ENV_RUNTIME_IMAGES) \
            else dict(DEFAULT_RUNTIME_IMAGES)
    except SettingsError as exc:
        problems.append(translate("up.image_settings_invalid", error=exc))
        return problems
    for runtime, image in images.items():
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            problems.append(translate("up.image_missing", image=image, runtime=runtime))
    client.close()
    return problems


def example_curl(front_url: str, with_api_key: bool) -> str:
    """Return a curl command line that runs hello-python, ready to paste into a shell."""
    parts = ["curl", "-sS", "-X", "POST", f"{front_url}/run", "-H", "Content-Type: application/json"]
    command = " ".join(shlex.quote(part) for part in parts)
    if with_api_key:
        # The key itself stays out of the output; the shell expands the variable when pasted.
        command += ' -H "Authorization: Bearer $NANOGRID_API_KEY"'
    body = json.dumps({"functionId": "hello-python", "inputData": {}})
    return f"{command} -d {shlex.quote(body)}"
