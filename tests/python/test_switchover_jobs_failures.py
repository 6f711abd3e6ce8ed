"""The official SDK (`huaweicloudsdkdcs` 3.1.219) against `dcs-simulator` for the behaviours of
dcs-api.md §12: the switch-over words (EXCHANGE_SUCCESS / ROLLBACK_SUCCESS after 204 answers), the
provisioning job of an online task (`show_job_info`), a failed job, and a failure's reason in the
task list and the task log."""

import json
import time
import uuid

from huaweicloudsdkdcs.v2 import (
    CreateOnlineMigrationTaskBody,
    CreateOnlineMigrationTaskRequest,
    ExchangeInstanceIpRequest,
    IpExchangeRequest,
    ListMigrationTaskLogsRequest,
    ListMigrationTaskRequest,
    RollbackExchangeInstanceIpRequest,
    ShowJobInfoRequest,
    ShowMigrationTaskRequest,
    StopMigrationTaskSyncRequest,
)

from conftest import make_client, running_simulator, wait_for_status
from test_official_sdk import configure, online_task


def create_online(client):
    """Creates an online task; returns its id and the `job_id` the SDK model leaves out."""
    body = CreateOnlineMigrationTaskBody(name=f"job-{uuid.uuid4().hex[:12]}", vpc_id="vpc-1", subnet_id="subnet-1",
                                         security_group_id="sg-1")
    response = client.create_online_migration_task(CreateOnlineMigrationTaskRequest(body=body))
    return response.instance_id, json.loads(response.raw_content)["job_id"]


def switch_result(client, task_id, timeout=10.0):
    """Polls ShowMigrationTask until the top-level task_status is no longer EXCHANGING."""
    deadline = time.monotonic() + timeout
    while True:
        word = client.show_migration_task(ShowMigrationTaskRequest(task_id=task_id)).task_status
        if word != "EXCHANGING":
            return word
        assert time.monotonic() < deadline, f"the switch of {task_id} never ended"
        time.sleep(0.05)


def test_exchange_and_rollback_answer_204_and_end_in_their_success_words(client, simulator):
    task_id = online_task(client, "incremental_migration")
    wait_for_status(client, task_id, "INCRMIGEATING")
    exchanged = client.exchange_instance_ip(ExchangeInstanceIpRequest(
        task_id=task_id, body=IpExchangeRequest(exchanged_ip=["10.0.0.10"], is_exchange_domain=False)))
    assert exchanged.status_code == 204
    assert client.show_migration_task(ShowMigrationTaskRequest(task_id=task_id)).task_status == "EXCHANGING"
    assert switch_result(client, task_id) == "EXCHANGE_SUCCESS"

    rolled_back = client.rollback_exchange_instance_ip(RollbackExchangeInstanceIpRequest(task_id=task_id))
    assert rolled_back.status_code == 204
    assert switch_result(client, task_id) == "ROLLBACK_SUCCESS"
    switchover = simulator.state()["switchovers"][task_id]
    assert (switchover["exchanges"], switchover["rollbacks"], switchover["outcome"]) == (1, 1, "ROLLBACK_SUCCESS")
    client.stop_migration_task_sync(StopMigrationTaskSyncRequest(task_id=task_id))


def test_with_swap_ips_false_an_exchange_succeeds_and_the_instances_keep_their_ips():
    with running_simulator("--swap-ips", "false") as keeping:
        client = make_client(keeping.url)
        task_id = online_task(client, "incremental_migration")
        before = wait_for_status(client, task_id, "INCRMIGEATING")
        client.exchange_instance_ip(ExchangeInstanceIpRequest(
            task_id=task_id, body=IpExchangeRequest(exchanged_ip=["10.0.0.10"], is_exchange_domain=False)))
        assert switch_result(client, task_id) == "EXCHANGE_SUCCESS"
        after = client.show_migration_task(ShowMigrationTaskRequest(task_id=task_id))
        assert (after.source_instance.ip, after.target_instance.ip) == \
            (before.source_instance.ip, before.target_instance.ip)
        assert before.source_instance.ip != before.target_instance.ip


def test_a_failed_switch_reads_exchange_failed(client, simulator):
    task_id = online_task(client, "incremental_migration")
    wait_for_status(client, task_id, "INCRMIGEATING")
    simulator.admin("PUT", "/_sim/faults", {"switchFailRate": 1.0, "operations": ["ExchangeInstanceIp"]})
    try:
        client.exchange_instance_ip(ExchangeInstanceIpRequest(
            task_id=task_id, body=IpExchangeRequest(exchanged_ip=["10.0.0.10"], is_exchange_domain=False)))
    finally:
        simulator.admin("DELETE", "/_sim/faults")
    assert switch_result(client, task_id) == "EXCHANGE_FAILED"
    client.stop_migration_task_sync(StopMigrationTaskSyncRequest(task_id=task_id))


def test_the_provisioning_job_runs_while_the_task_is_created_then_succeeds(client, simulator):
    task_id, job_id = create_online(client)
    job = client.show_job_info(ShowJobInfoRequest(job_id=job_id))
    assert (job.job_id, job.status, job.end_time, job.fail_reason) == (job_id, "RUNNING", None, None)
    assert job.begin_time
    wait_for_status(client, task_id, "RUNNING")
    job = client.show_job_info(ShowJobInfoRequest(job_id=job_id))
    assert (job.status, job.fail_reason) == ("SUCCESS", None)
    assert job.end_time
    assert simulator.state()["calls"]["ShowJobInfo"] >= 2
    configure(client, task_id, "full_amount_migration")
    wait_for_status(client, task_id, "SUCCESS")


def test_a_failed_provisioning_job_says_why_and_fails_the_task(client, simulator):
    simulator.admin("PUT", "/_sim/faults", {"provisionFailRate": 1.0, "operations": ["CreateOnlineMigrationTask"]})
    try:
        task_id, job_id = create_online(client)
    finally:
        simulator.admin("DELETE", "/_sim/faults")
    wait_for_status(client, task_id, "FAILED")
    job = client.show_job_info(ShowJobInfoRequest(job_id=job_id))
    assert job.status == "FAIL"
    assert job.fail_reason
    errors = client.list_migration_task_logs(ListMigrationTaskLogsRequest(task_id=task_id, log_level="ERROR"))
    assert errors.migration_logs[0].message == job.fail_reason


def test_a_forced_failure_is_on_the_list_row_and_newest_in_the_error_log(client, simulator):
    task_id = online_task(client, "incremental_migration")
    wait_for_status(client, task_id, "INCRMIGEATING")
    for reason in ["first: source unreachable", "second: target out of memory"]:
        simulator.admin("PUT", f"/_sim/tasks/{task_id}", {"status": "FAILED", "errorMessage": reason})

    shown = client.show_migration_task(ShowMigrationTaskRequest(task_id=task_id))
    assert shown.status == "FAILED"
    assert "error_message" not in json.loads(shown.raw_content)
    name = shown.task_name
    rows = client.list_migration_task(ListMigrationTaskRequest(name=name, limit=1000)).migration_tasks
    row = next(r for r in rows if r.task_id == task_id)
    assert row.error_message == "second: target out of memory"

    errors = client.list_migration_task_logs(ListMigrationTaskLogsRequest(task_id=task_id, log_level="ERROR"))
    assert errors.log_num == 2
    assert {log.log_level for log in errors.migration_logs} == {"ERROR"}
    assert "second: target out of memory" in errors.migration_logs[0].message  # newest first
    assert "first: source unreachable" in errors.migration_logs[1].message
    everything = client.list_migration_task_logs(ListMigrationTaskLogsRequest(task_id=task_id, limit=100))
    assert everything.log_num > errors.log_num
