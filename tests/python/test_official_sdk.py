"""Drives every one of the 15 migration-task operations of the official Huawei Cloud Python SDK
(`huaweicloudsdkdcs` 3.1.219, its own `DcsClient`, `BasicCredentials` and signer) against a running
`dcs-simulator`, checking lifecycles, quirks and error codes."""

import time
import uuid

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkdcs.v2 import (
    BackupFilesBody,
    BatchRestartOnlineMigrationTasksBody,
    BatchRestartOnlineMigrationTasksRequest,
    BatchStopMigrationTasksBody,
    BatchStopMigrationTasksRequest,
    ConfigMigrationInstanceBody,
    CreateMigrationTaskBody,
    CreateMigrationTaskRequest,
    CreateOnlineMigrationTaskBody,
    CreateOnlineMigrationTaskRequest,
    DeleteMigrateTaskRequest,
    DeleteMigrationTaskRequest,
    ExchangeInstanceIpRequest,
    Files,
    IpExchangeRequest,
    ListMigrationTaskLogsRequest,
    ListMigrationTaskRequest,
    MigrationUpdateRequestEntity,
    RollbackExchangeInstanceIpRequest,
    SetOnlineMigrationTaskBody,
    SetOnlineMigrationTaskRequest,
    ShowMigrationTaskRequest,
    ShowMigrationTaskStatsRequest,
    StopMigrationTaskRequest,
    StopMigrationTaskSyncRequest,
    TargetInstanceBody,
    UpdateMigrationTaskRequest,
)

from conftest import PHASE_SECONDS, make_client, wait_for_status

UNKNOWN_ID = "0123456789abcdef0123456789abcdef"


def unique_name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def create_backup_import(client, name=None, password="TargetPass1"):
    body = CreateMigrationTaskBody(
        task_name=name or unique_name("import"),
        description="backup import from OBS",
        migration_type="backupfile_import",
        migration_method="full_amount_migration",
        backup_files=BackupFilesBody(file_source="self_build_obs", bucket_name="my-bucket",
                                     files=[Files(file_name="dump.rdb", size="754.0MB")]),
        target_instance=TargetInstanceBody(id="d2c8399f-bdba-43c1-8069-3ff17a1a79d5", name="dcs-target",
                                           password=password),
    )
    return client.create_migration_task(CreateMigrationTaskRequest(body=body))


def create_online(client, name=None):
    body = CreateOnlineMigrationTaskBody(name=name or unique_name("online"), description="online",
                                         vpc_id="vpc-1", subnet_id="subnet-1", security_group_id="sg-1")
    return client.create_online_migration_task(CreateOnlineMigrationTaskRequest(body=body))


def configure(client, task_id, method, source_password="SourcePass1", target_password="TargetPass2"):
    body = SetOnlineMigrationTaskBody(
        migration_method=method,
        resume_mode="auto",
        bandwidth_limit_mb="100",
        source_instance=ConfigMigrationInstanceBody(addrs="10.0.0.10:6379", password=source_password),
        target_instance=ConfigMigrationInstanceBody(id="a1b2c3d4-0000-1111-2222-333344445555",
                                                    password=target_password),
    )
    return client.set_online_migration_task(SetOnlineMigrationTaskRequest(task_id=task_id, body=body))


def online_task(client, method):
    """An online task created, provisioned (RUNNING) and configured with `method`."""
    created = create_online(client)
    wait_for_status(client, created.instance_id, "RUNNING")
    configure(client, created.instance_id, method)
    return created.instance_id


def error_of(call):
    with pytest.raises(ClientRequestException) as info:
        call()
    return info.value


def test_backup_import_runs_from_migrating_to_success_and_names_the_target_instance(client):
    created = create_backup_import(client)
    assert created.status == "MIGRATING"
    assert created.name == "dcs-target"  # quirk: the target instance's name, not the task's
    assert len(created.id) == 32
    done = wait_for_status(client, created.id, "SUCCESS")
    assert done.migration_type == "backupfile_import"
    assert done.backup_files.bucket_name == "my-bucket"
    assert done.target_instance.password == "TargetPass1"  # echoed in clear, as the real API does
    stats = client.show_migration_task_stats(ShowMigrationTaskStatsRequest(task_id=created.id))
    assert stats.full_migration_progress == "100"  # sent as a JSON number, the SDK stringifies it
    assert stats.source_dbsize == stats.target_dbsize


def test_online_task_is_provisioned_then_configured_then_full_migration_succeeds(client):
    created = create_online(client)
    assert created.instance_id and len(created.instance_id) == 32
    first = client.show_migration_task(ShowMigrationTaskRequest(task_id=created.instance_id))
    assert first.status == "CREATING"
    assert first.ecs_tenant_private_ip is None
    running = wait_for_status(client, created.instance_id, "RUNNING")
    assert running.ecs_tenant_private_ip
    configured = configure(client, created.instance_id, "full_amount_migration")
    assert configured.status == "FULLMIGRATING"
    assert configured.id == created.instance_id
    progress = client.show_migration_task_stats(ShowMigrationTaskStatsRequest(task_id=created.instance_id))
    assert progress.is_migrating is True
    assert 0 <= int(progress.full_migration_progress) < 100
    done = wait_for_status(client, created.instance_id, "SUCCESS")
    assert done.source_instance.password == "SourcePass1"
    assert done.target_instance.password == "TargetPass2"
    assert done.resume_mode == "auto"
    assert done.bandwidth_limit_mb == "100"
    stats = client.show_migration_task_stats(ShowMigrationTaskStatsRequest(task_id=created.instance_id))
    assert stats.full_migration_progress == "100"
    assert stats.is_migrating is False


def test_incremental_task_streams_in_incrmigeating_until_stopped(client):
    task_id = online_task(client, "incremental_migration")
    wait_for_status(client, task_id, "INCRMIGEATING")
    time.sleep(3 * PHASE_SECONDS)
    still = client.show_migration_task(ShowMigrationTaskRequest(task_id=task_id))
    assert still.status == "INCRMIGEATING"
    stats = client.show_migration_task_stats(ShowMigrationTaskStatsRequest(task_id=task_id))
    assert stats.is_migrating is True
    assert int(stats.target_ops) > 0

    logs = client.list_migration_task_logs(ListMigrationTaskLogsRequest(task_id=task_id, offset=0, limit=100))
    assert logs.log_num >= 4
    assert len(logs.migration_logs) == logs.log_num
    assert all(entry.created_at and entry.message for entry in logs.migration_logs)

    client.update_migration_task(UpdateMigrationTaskRequest(
        task_id=task_id, body=MigrationUpdateRequestEntity(resume_mode="manual")))
    assert client.show_migration_task(ShowMigrationTaskRequest(task_id=task_id)).resume_mode == "manual"

    stopped = client.stop_migration_task(StopMigrationTaskRequest(task_id=task_id))
    assert stopped.status == "TERMINATING"
    assert stopped.source_instance.password == "SourcePass1"  # stop echoes passwords too
    wait_for_status(client, task_id, "TERMINATED")
    again = error_of(lambda: client.stop_migration_task(StopMigrationTaskRequest(task_id=task_id)))
    assert (again.status_code, again.error_code) == (400, "DCS.4957")


def test_ip_exchange_marks_the_task_exchanging_and_can_be_rolled_back(client):
    task_id = online_task(client, "incremental_migration")
    early = error_of(lambda: client.exchange_instance_ip(ExchangeInstanceIpRequest(
        task_id=task_id, body=IpExchangeRequest(exchanged_ip=["10.0.0.10"], is_exchange_domain=True))))
    assert early.error_code == "DCS.4957"  # not yet INCRMIGEATING
    wait_for_status(client, task_id, "INCRMIGEATING")
    client.exchange_instance_ip(ExchangeInstanceIpRequest(
        task_id=task_id, body=IpExchangeRequest(exchanged_ip=["10.0.0.10"], is_exchange_domain=True)))
    switching = client.show_migration_task(ShowMigrationTaskRequest(task_id=task_id))
    assert switching.task_status == "EXCHANGING"
    assert switching.target_instance.task_status == "EXCHANGING"
    deadline = time.monotonic() + 10
    while client.show_migration_task(ShowMigrationTaskRequest(task_id=task_id)).task_status == "EXCHANGING":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    client.rollback_exchange_instance_ip(RollbackExchangeInstanceIpRequest(task_id=task_id))
    assert client.show_migration_task(ShowMigrationTaskRequest(task_id=task_id)).task_status == "EXCHANGING"
    client.stop_migration_task_sync(StopMigrationTaskSyncRequest(task_id=task_id))


def test_sync_stop_answers_204_with_the_task_terminated(client):
    task_id = online_task(client, "incremental_migration")
    response = client.stop_migration_task_sync(StopMigrationTaskSyncRequest(task_id=task_id))
    assert response.status_code == 204
    assert client.show_migration_task(ShowMigrationTaskRequest(task_id=task_id)).status == "TERMINATED"


def test_batch_stop_answers_200_with_per_item_failures(client):
    running = online_task(client, "incremental_migration")
    ended = create_backup_import(client).id
    wait_for_status(client, ended, "SUCCESS")
    response = client.batch_stop_migration_tasks(BatchStopMigrationTasksRequest(
        body=BatchStopMigrationTasksBody(migration_tasks=[running, UNKNOWN_ID, ended])))
    results = {item.task_id: item for item in response.migration_tasks}
    assert results[running].result == "success"
    assert results[UNKNOWN_ID].result == "failed"
    assert results[UNKNOWN_ID].error_code == "DCS.4133"
    assert results[ended].result == "failed"
    assert results[ended].error_code == "DCS.4957"
    assert results[ended].error_msg
    wait_for_status(client, running, "TERMINATED")


def test_batch_restart_sends_terminated_online_tasks_back_through_full_sync(client):
    task_id = online_task(client, "incremental_migration")
    client.stop_migration_task_sync(StopMigrationTaskSyncRequest(task_id=task_id))
    backup = create_backup_import(client).id
    response = client.batch_restart_online_migration_tasks(BatchRestartOnlineMigrationTasksRequest(
        body=BatchRestartOnlineMigrationTasksBody(migration_tasks=[task_id, backup, UNKNOWN_ID])))
    results = {item.task_id: item for item in response.migration_tasks}
    assert results[task_id].result == "success"
    assert (results[backup].result, results[backup].error_code) == ("failed", "DCS.4957")
    assert (results[UNKNOWN_ID].result, results[UNKNOWN_ID].error_code) == ("failed", "DCS.4133")
    assert client.show_migration_task(ShowMigrationTaskRequest(task_id=task_id)).status == "FULLMIGRATING"
    wait_for_status(client, task_id, "INCRMIGEATING")
    client.stop_migration_task_sync(StopMigrationTaskSyncRequest(task_id=task_id))


def test_batch_calls_refuse_malformed_ids_with_4855_and_more_than_50_ids_with_4800(client):
    malformed = error_of(lambda: client.batch_stop_migration_tasks(BatchStopMigrationTasksRequest(
        body=BatchStopMigrationTasksBody(migration_tasks=["not-a-task-id"]))))
    assert (malformed.status_code, malformed.error_code) == (400, "DCS.4855")
    too_many = [uuid.uuid4().hex for _ in range(51)]
    big = error_of(lambda: client.batch_stop_migration_tasks(BatchStopMigrationTasksRequest(
        body=BatchStopMigrationTasksBody(migration_tasks=too_many))))
    assert (big.status_code, big.error_code) == (400, "DCS.4800")
    big_restart = error_of(lambda: client.batch_restart_online_migration_tasks(
        BatchRestartOnlineMigrationTasksRequest(body=BatchRestartOnlineMigrationTasksBody(migration_tasks=too_many))))
    assert big_restart.error_code == "DCS.4800"


def test_delete_removes_the_task_from_the_list_while_show_keeps_the_stale_status(client, simulator):
    name = unique_name("deleteme")
    task_id = create_backup_import(client, name=name).id
    wait_for_status(client, task_id, "SUCCESS")
    listed = client.list_migration_task(ListMigrationTaskRequest(name=name))
    assert [t.task_id for t in listed.migration_tasks] == [task_id]
    deleted = client.delete_migration_task(DeleteMigrationTaskRequest(body=DeleteMigrateTaskRequest(
        task_id_list=[task_id])))
    assert deleted.task_id_list == [task_id]
    after = client.list_migration_task(ListMigrationTaskRequest(name=name))
    assert after.count == 0 and after.migration_tasks == []
    assert task_id not in [t["task_id"] for t in simulator.state()["tasks"]]
    stale = client.show_migration_task(ShowMigrationTaskRequest(task_id=task_id))
    assert stale.status == "SUCCESS"  # quirk: the detail API still answers the last status


def test_list_matches_name_substrings_and_pages_with_offset_and_limit(client):
    stem = unique_name("listing")
    ids = [create_backup_import(client, name=f"{stem}-{i}").id for i in range(3)]
    page = client.list_migration_task(ListMigrationTaskRequest(name=stem, offset=0, limit=2))
    assert page.count == 3
    assert len(page.migration_tasks) == 2
    rest = client.list_migration_task(ListMigrationTaskRequest(name=stem, offset=2, limit=2))
    assert len(rest.migration_tasks) == 1
    seen = {t.task_id for t in page.migration_tasks} | {t.task_id for t in rest.migration_tasks}
    assert seen == set(ids)
    item = page.migration_tasks[0]
    assert item.task_name.startswith(stem)
    assert item.data_source == "my-bucket"
    assert not hasattr(item, "password")
    bad = error_of(lambda: client.list_migration_task(ListMigrationTaskRequest(limit=1001)))
    assert bad.status_code == 400


def test_unknown_task_ids_are_400_dcs_4133_everywhere(client):
    calls = [
        lambda: client.show_migration_task(ShowMigrationTaskRequest(task_id=UNKNOWN_ID)),
        lambda: client.show_migration_task_stats(ShowMigrationTaskStatsRequest(task_id=UNKNOWN_ID)),
        lambda: client.list_migration_task_logs(ListMigrationTaskLogsRequest(task_id=UNKNOWN_ID)),
        lambda: client.stop_migration_task(StopMigrationTaskRequest(task_id=UNKNOWN_ID)),
        lambda: client.stop_migration_task_sync(StopMigrationTaskSyncRequest(task_id=UNKNOWN_ID)),
        lambda: client.update_migration_task(UpdateMigrationTaskRequest(
            task_id=UNKNOWN_ID, body=MigrationUpdateRequestEntity(resume_mode="auto"))),
        lambda: configure(client, UNKNOWN_ID, "full_amount_migration"),
        lambda: client.exchange_instance_ip(ExchangeInstanceIpRequest(
            task_id=UNKNOWN_ID, body=IpExchangeRequest(exchanged_ip=["10.0.0.1"], is_exchange_domain=False))),
        lambda: client.rollback_exchange_instance_ip(RollbackExchangeInstanceIpRequest(task_id=UNKNOWN_ID)),
        lambda: client.delete_migration_task(DeleteMigrationTaskRequest(body=DeleteMigrateTaskRequest(
            task_id_list=[UNKNOWN_ID]))),
    ]
    for call in calls:
        error = error_of(call)
        assert (error.status_code, error.error_code) == (400, "DCS.4133")
        assert error.error_msg == "Instance job is not found."
        assert error.request_id


def test_malformed_task_ids_are_400_dcs_4070(client):
    error = error_of(lambda: client.show_migration_task(ShowMigrationTaskRequest(task_id="not a task id")))
    assert (error.status_code, error.error_code) == (400, "DCS.4070")


def test_a_request_signed_with_the_wrong_secret_key_is_refused_with_401_apigw_0301(simulator):
    wrong = make_client(simulator.url, secret_key="not-the-secret-key")
    error = error_of(lambda: wrong.list_migration_task(ListMigrationTaskRequest()))
    assert (error.status_code, error.error_code) == (401, "APIGW.0301")


def test_configure_refuses_a_task_that_is_not_awaiting_configuration(client):
    task_id = online_task(client, "full_amount_migration")
    error = error_of(lambda: configure(client, task_id, "full_amount_migration"))
    assert error.error_code == "DCS.4957"


def test_all_15_operations_were_driven_through_the_sdk(simulator):
    calls = simulator.state()["calls"]
    operations = [
        "CreateMigrationTask", "CreateOnlineMigrationTask", "SetOnlineMigrationTask", "ShowMigrationTask",
        "ShowMigrationTaskStats", "ListMigrationTask", "ListMigrationTaskLogs", "StopMigrationTask",
        "StopMigrationTaskSync", "BatchStopMigrationTasks", "BatchRestartOnlineMigrationTasks",
        "UpdateMigrationTask", "DeleteMigrationTask", "ExchangeInstanceIp", "RollbackExchangeInstanceIp",
    ]
    missing = [op for op in operations if calls.get(op, 0) == 0]
    assert not missing, f"operations never called: {missing}"
