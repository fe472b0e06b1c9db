"""Worker agent in-process against moto SQS and S3, real Redis and Docker."""

import json

import pytest
from nanogrid_protocol import RunResult, RunStatus, keys
from worker_agent.results import ResultStore

from tests.integration.helpers import make_job, register_function, wait_for_empty_queue, wait_for_stored_result

pytestmark = pytest.mark.docker


def test_agent_stores_result_and_deletes_message(start_agent, sqs_client, s3_client, code_bucket, queue_url, redis_client):
    function = register_function(s3_client, code_bucket, "agent-echo", "def handler(event, context):\n    return event\n")
    job = make_job(function, {"word": "grid"})
    start_agent()

    sqs_client.send_message(QueueUrl=queue_url, MessageBody=job.to_json())
    result = wait_for_stored_result(redis_client, job.request_id)

    assert result.status is RunStatus.SUCCESS
    assert result.result == {"word": "grid"}
    assert result.request_id == job.request_id
    assert result.version_id == function.version_id
    assert result.worker_id is not None
    assert wait_for_empty_queue(sqs_client, queue_url) == 0


def test_agent_skips_run_with_stored_result(start_agent, sqs_client, s3_client, code_bucket, queue_url, redis_client):
    function = register_function(s3_client, code_bucket, "agent-once", 'print("ran again")\n')
    job = make_job(function)
    # The result an earlier delivery stored before its worker died, ahead of the delete.
    earlier = RunResult(
        request_id=job.request_id, function_id=function.function_id, status=RunStatus.SUCCESS, stdout="first run\n"
    )
    ResultStore(redis_client).store_and_publish(earlier)
    pubsub = redis_client.pubsub()
    pubsub.subscribe(keys.run_channel(job.request_id))
    start_agent()

    sqs_client.send_message(QueueUrl=queue_url, MessageBody=job.to_json())
    remaining = wait_for_empty_queue(sqs_client, queue_url)
    notices = []
    while (message := pubsub.get_message(timeout=1)) is not None:
        if message["type"] == "message":
            notices.append(json.loads(message["data"]))
    pubsub.close()

    assert remaining == 0
    assert wait_for_stored_result(redis_client, job.request_id) == earlier
    # mark_running writes the state key; a skipped run never writes it.
    assert redis_client.get(keys.run_state_key(job.request_id)) is None
    assert notices == [{"requestId": job.request_id, "status": "SUCCESS"}]
