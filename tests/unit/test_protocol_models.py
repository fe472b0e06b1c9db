"""Wire models: camelCase aliases, rejected extra fields and the final statuses."""

import pytest
from nanogrid_protocol import FunctionUpload, JobMessage, RunRequest, RunResult, RunStatus
from pydantic import ValidationError

SHA = "a" * 64


def test_run_request_reads_camel_case():
    request = RunRequest.model_validate({"functionId": "hello", "inputData": {"n": 3}, "timeoutMs": 500})

    assert request.function_id == "hello"
    assert request.input_data == {"n": 3}
    assert request.timeout_ms == 500


def test_run_request_dumps_camel_case():
    data = RunRequest(function_id="hello", input_data={"n": 3}).to_dict()

    assert data == {"functionId": "hello", "inputData": {"n": 3}, "timeoutMs": None}


def test_run_result_peak_memory_alias():
    data = RunResult(request_id="r1", function_id="f", status=RunStatus.SUCCESS, peak_memory_mb=12.5).to_dict()

    assert data["peakMemoryMB"] == 12.5
    assert "peakMemoryMb" not in data
    assert data["durationMillis"] == 0
    assert data["status"] == "SUCCESS"


def test_run_result_reads_peak_memory_alias():
    result = RunResult.model_validate(
        {"requestId": "r1", "functionId": "f", "status": "OOM", "peakMemoryMB": 64.0}
    )

    assert result.peak_memory_mb == 64.0
    assert result.status is RunStatus.OOM


def test_function_upload_memory_alias():
    upload = FunctionUpload.model_validate({"memoryMB": 256, "code": {"source": "print(1)"}})

    assert upload.memory_mb == 256
    assert upload.to_dict()["memoryMB"] == 256


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (RunRequest, {"functionId": "hello", "extra": 1}),
        (FunctionUpload, {"code": {"source": "x = 1", "language": "py"}}),
        (RunResult, {"requestId": "r", "functionId": "f", "status": "SUCCESS", "cost": 0}),
    ],
)
def test_models_reject_extra_fields(model, data):
    with pytest.raises(ValidationError) as excinfo:
        model.model_validate(data)

    assert excinfo.value.errors()[0]["type"] == "extra_forbidden"


def test_run_request_rejects_bad_function_id():
    with pytest.raises(ValidationError) as excinfo:
        RunRequest.model_validate({"functionId": "Bad_Id"})

    assert excinfo.value.errors()[0]["loc"] == ("functionId",)


def test_function_upload_rejects_memory_out_of_range():
    with pytest.raises(ValidationError) as excinfo:
        FunctionUpload.model_validate({"memoryMB": 8, "code": {"source": "x = 1"}})

    assert excinfo.value.errors()[0]["loc"] == ("memoryMB",)


def test_job_message_round_trip():
    job = JobMessage.model_validate(
        {
            "requestId": "r1",
            "function": {
                "functionId": "hello",
                "versionId": SHA,
                "runtime": "python3.11",
                "memoryMB": 128,
                "timeoutMs": 1000,
                "codeSha256": SHA,
                "codeSizeBytes": 10,
                "createdAtMs": 1,
            },
            "inputData": {},
            "enqueuedAtMs": 2,
        }
    )

    assert job.schema_version == 1
    assert JobMessage.model_validate_json(job.to_json()) == job


@pytest.mark.parametrize(
    ("status", "final"),
    [
        (RunStatus.QUEUED, False),
        (RunStatus.RUNNING, False),
        (RunStatus.SUCCESS, True),
        (RunStatus.FAILED, True),
        (RunStatus.TIMEOUT, True),
        (RunStatus.OOM, True),
        (RunStatus.ERROR, True),
    ],
)
def test_status_is_final(status, final):
    assert status.is_final is final
