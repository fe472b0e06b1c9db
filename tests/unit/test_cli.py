"""Unit tests of the command line: argument parsing, exit codes, log search and the message language."""

from __future__ import annotations

import json
import socket
from datetime import datetime, timezone

import pytest

from nanogrid import cli, i18n
from nanogrid.client import ApiResponse

REQUEST_ID = "0f4c1a52-8d8e-4a36-9a3e-2f7d1b6c5e11"


@pytest.fixture(autouse=True)
def english_without_api_env(monkeypatch):
    for name in ("LC_ALL", "LC_MESSAGES", "LANG", "NANOGRID_URL", "NANOGRID_API_KEY", "NANOGRID_LOG_DIR"):
        monkeypatch.delenv(name, raising=False)


# -- parsing -----------------------------------------------------------------------------------


def test_parse_global_defaults():
    args = cli.build_parser().parse_args(["functions"])

    assert args.url == "http://127.0.0.1:8080"
    assert args.api_key == ""
    assert args.handler is cli.command_functions


def test_parse_global_options_from_env(monkeypatch):
    monkeypatch.setenv("NANOGRID_URL", "http://127.0.0.1:18080")
    monkeypatch.setenv("NANOGRID_API_KEY", "secret")

    args = cli.build_parser().parse_args(["functions"])

    assert args.url == "http://127.0.0.1:18080"
    assert args.api_key == "secret"


def test_parse_global_option_after_command():
    args = cli.build_parser().parse_args(["invoke", "word-count", "--url", "http://127.0.0.1:9"])

    assert args.url == "http://127.0.0.1:9"


def test_parse_global_option_before_command_kept():
    args = cli.build_parser().parse_args(["--url", "http://127.0.0.1:9", "invoke", "word-count"])

    assert args.url == "http://127.0.0.1:9"
    assert args.api_key == ""


def test_parse_up_defaults():
    args = cli.build_parser().parse_args(["up"])

    assert (args.port, args.redis_port, args.moto_port, args.concurrency) == (8080, 6399, 5055, 4)


def test_parse_up_ports():
    args = cli.build_parser().parse_args(
        ["up", "--port", "18080", "--redis-port", "16399", "--moto-port", "15055", "--concurrency", "2"]
    )

    assert (args.port, args.redis_port, args.moto_port, args.concurrency) == (18080, 16399, 15055, 2)


@pytest.mark.parametrize("argv", [
    ["up", "--port", "70000"],
    ["up", "--concurrency", "0"],
    ["invoke", "word-count", "--data", "{}", "--data-file", "input.json"],
    ["deploy"],
    [],
])
def test_parse_rejects_invalid(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.build_parser().parse_args(argv)

    assert exit_info.value.code == 2


def test_parse_deploy_options(tmp_path):
    args = cli.build_parser().parse_args(
        ["deploy", str(tmp_path), "--id", "fn", "--memory", "256", "--timeout", "3000", "--runtime", "python3.11"]
    )

    assert args.dir == tmp_path
    assert (args.function_id, args.memory_mb, args.timeout_ms, args.runtime) == ("fn", 256, 3000, "python3.11")


def test_parse_invoke_options():
    args = cli.build_parser().parse_args(["invoke", "primes", "--data", '{"n": 10}', "--timeout", "500", "--async"])

    assert (args.function_id, args.data, args.timeout_ms, args.run_async) == ("primes", '{"n": 10}', 500, True)


# -- input data --------------------------------------------------------------------------------


def test_input_data_absent_is_empty():
    assert cli.read_input_data(None, None) == {}


def test_input_data_from_file(tmp_path):
    path = tmp_path / "input.json"
    path.write_text('{"text": "a b a"}', encoding="utf-8")

    assert cli.read_input_data(None, str(path)) == {"text": "a b a"}


@pytest.mark.parametrize("text, expected", [("[1, 2]", "JSON array"), ("{not json", "not valid JSON")])
def test_input_data_rejects_non_object(text, expected):
    with pytest.raises(cli.CliError) as error_info:
        cli.read_input_data(text, None)

    assert expected in str(error_info.value)
    assert "--data" in str(error_info.value)


def test_input_data_missing_file(tmp_path):
    with pytest.raises(cli.CliError) as error_info:
        cli.read_input_data(None, str(tmp_path / "missing.json"))

    assert "missing.json" in str(error_info.value)


# -- exit codes --------------------------------------------------------------------------------


@pytest.mark.parametrize("http_status, run_status, expected", [
    (200, "SUCCESS", cli.EXIT_OK),
    (200, "FAILED", cli.EXIT_RUN_FAILED),
    (200, "TIMEOUT", cli.EXIT_RUN_FAILED),
    (200, "OOM", cli.EXIT_RUN_FAILED),
    (202, "QUEUED", cli.EXIT_RUN_PENDING),
    (202, "RUNNING", cli.EXIT_RUN_PENDING),
])
def test_run_exit_code(http_status, run_status, expected):
    response = ApiResponse(http_status, {"requestId": REQUEST_ID, "status": run_status}, {})

    assert cli.run_exit_code(response) == expected


def test_check_http_error_names_code():
    response = ApiResponse(404, {"code": "FUNCTION_NOT_FOUND", "message": "function 'x' is not registered"}, {})

    with pytest.raises(cli.CliError) as error_info:
        cli.check_http(response, "POST", "/run")

    assert "HTTP 404" in str(error_info.value)
    assert "FUNCTION_NOT_FOUND" in str(error_info.value)


def test_check_http_unauthorized_hint():
    response = ApiResponse(401, {"code": "UNAUTHORIZED", "message": "missing or invalid credentials"}, {})

    with pytest.raises(cli.CliError) as error_info:
        cli.check_http(response, "GET", "/functions")

    assert "NANOGRID_API_KEY" in str(error_info.value)


def test_unreachable_api_names_url(capsys):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{closed_port}"

    code = cli.main(["--url", url, "functions"])

    stderr = capsys.readouterr().err
    assert code == cli.EXIT_USAGE
    assert url in stderr
    assert "make up" in stderr


def test_doctor_missing_module(monkeypatch, capsys):
    import importlib

    def import_module(name):
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    monkeypatch.setattr(importlib, "import_module", import_module)

    code = cli.main(["doctor"])

    assert code == cli.EXIT_USAGE
    assert "doctor is not available" in capsys.readouterr().err


# -- logs --------------------------------------------------------------------------------------


def test_log_lines_merged_in_time_order(tmp_path):
    controller = [
        {"level": "INFO", "message": "job queued", "timestamp": "2026-01-31 12:00:00,100+0000", "requestId": REQUEST_ID},
        {"level": "INFO", "message": "other run", "timestamp": "2026-01-31 12:00:00,150+0000", "requestId": "other"},
        {"level": "INFO", "message": "run finished", "timestamp": "2026-01-31 12:00:00,900+0000", "requestId": REQUEST_ID},
    ]
    worker = [
        {"timestamp": "2026-01-31T12:00:00.200Z", "message": "job received", "requestId": REQUEST_ID},
        {"timestamp": "2026-01-31T12:00:00.800Z", "message": "job done", "requestId": REQUEST_ID},
    ]
    (tmp_path / "controller.log").write_text("".join(json.dumps(e) + "\n" for e in controller))
    (tmp_path / "worker.log").write_text("".join(json.dumps(e) + "\n" for e in worker))

    lines = cli.find_log_lines(REQUEST_ID, tmp_path)

    messages = [json.loads(entry.text)["message"] for entry in lines]
    assert messages == ["job queued", "job received", "job done", "run finished"]
    assert [entry.source for entry in lines] == ["controller", "worker", "worker", "controller"]


def test_log_line_without_timestamp_follows_previous(tmp_path):
    first = json.dumps({"timestamp": "2026-01-31T12:00:00.500Z", "message": "container started"})
    (tmp_path / "worker.log").write_text(f"{first}\nplain line about {REQUEST_ID}\n")
    early = json.dumps({"timestamp": "2026-01-31T12:00:00.100Z", "message": "queued", "requestId": REQUEST_ID})
    (tmp_path / "controller.log").write_text(early + "\n")

    lines = cli.find_log_lines(REQUEST_ID, tmp_path)

    assert [entry.source for entry in lines] == ["controller", "worker"]
    assert lines[1].timestamp == datetime(2026, 1, 31, 12, 0, 0, 500000, tzinfo=timezone.utc)


def test_log_dir_missing(tmp_path):
    with pytest.raises(cli.CliError) as error_info:
        cli.find_log_lines(REQUEST_ID, tmp_path / "absent")

    assert "absent" in str(error_info.value)


@pytest.mark.parametrize("line", ["not json", "{broken", '{"timestamp": 5}', '{"timestamp": "yesterday"}', "[1]"])
def test_log_timestamp_unreadable(line):
    assert cli.parse_log_timestamp(line) is None


# -- up helpers --------------------------------------------------------------------------------


def test_check_ports_reports_taken_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken_port = sock.getsockname()[1]

        problems = cli.check_ports({"front": ("--port", taken_port)})

    assert len(problems) == 1
    assert str(taken_port) in problems[0]
    assert "--port" in problems[0]


def test_check_ports_rejects_duplicates():
    problems = cli.check_ports({"front": ("--port", 18080), "redis": ("--redis-port", 18080)})

    assert len(problems) == 1
    assert "must differ" in problems[0]


def test_example_curl_hides_api_key():
    command = cli.example_curl("http://127.0.0.1:8080", with_api_key=True)

    assert command.startswith("curl ")
    assert "http://127.0.0.1:8080/run" in command
    assert "$NANOGRID_API_KEY" in command
    assert '"functionId": "hello-python"' in command


# -- language ----------------------------------------------------------------------------------


@pytest.mark.parametrize("environ, expected", [
    ({}, i18n.ENGLISH),
    ({"LANG": "C.UTF-8"}, i18n.ENGLISH),
    ({"LANG": "en_US.UTF-8"}, i18n.ENGLISH),
    ({"LANG": "ko_KR.UTF-8"}, i18n.KOREAN),
    ({"LANG": "ko"}, i18n.KOREAN),
    ({"LC_MESSAGES": "ko_KR.UTF-8", "LANG": "en_US.UTF-8"}, i18n.KOREAN),
    ({"LC_ALL": "ko_KR.UTF-8", "LANG": "en_US.UTF-8"}, i18n.KOREAN),
    ({"LC_ALL": "C", "LANG": "ko_KR.UTF-8"}, i18n.ENGLISH),
    ({"LC_ALL": "", "LANG": "ko_KR.UTF-8"}, i18n.KOREAN),
])
def test_language_from_locale(environ, expected):
    assert i18n.language(environ) == expected


def test_translate_korean():
    text = i18n.translate("error.api_unreachable", {"LANG": "ko_KR.UTF-8"}, url="http://127.0.0.1:8080", reason="refused")

    assert "연결할 수 없습니다" in text
    assert "http://127.0.0.1:8080" in text
    assert "make up" in text


def test_translate_english():
    text = i18n.translate("error.api_unreachable", {"LANG": "en_US.UTF-8"}, url="http://127.0.0.1:8080", reason="refused")

    assert text.startswith("cannot reach the NanoGrid API at http://127.0.0.1:8080")


def test_messages_have_both_languages():
    for key, texts in i18n.MESSAGES.items():
        assert set(texts) == {i18n.ENGLISH, i18n.KOREAN}, key
        assert texts[i18n.KOREAN].strip(), key


def test_messages_share_placeholders():
    import string

    formatter = string.Formatter()
    for key, texts in i18n.MESSAGES.items():
        fields = {language: {name for _, name, _, _ in formatter.parse(text) if name} for language, text in texts.items()}
        assert fields[i18n.ENGLISH] == fields[i18n.KOREAN], key


def test_help_follows_language(monkeypatch, capsys):
    monkeypatch.setenv("LANG", "ko_KR.UTF-8")

    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--help"])

    assert "로컬 스택" in capsys.readouterr().out
