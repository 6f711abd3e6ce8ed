"""A RedisMigration operator as a team would write it in an afternoon: Kopf + the official Huawei Cloud SDK.

The peer that benches/operator_scale.rs measures ours against (issue 17). On purpose plain, the way Terraform's
provider and most in-house operators do it:
- create: one CreateMigrationTask / CreateOnlineMigrationTask per resource, the task id written to status;
- a Kopf timer per resource polls its task with ShowMigrationTask every 10 s (Terraform's refresh interval) while it
  is not ended (a streaming incremental task is never ended: it is polled for as long as it streams);
- an online task seen RUNNING is configured (SetOnlineMigrationTask) once;
- status (phase, remoteStatus, a Ready condition) is patched when the remote status changes;
- delete: the task is stopped unless it ended.

Simplifications that favour the peer: credentials and Redis passwords come from the environment (no Secret reads),
one SDK client per endpoint, no lookup by name before create (a lost reply can duplicate a task), no progress.

Run: kopf run --standalone --namespace NS benches/peer/kopf_peer.py, with KUBECONFIG and
PEER_ACCESS_KEY, PEER_SECRET_KEY, PEER_PROJECT_ID, PEER_SOURCE_PASSWORD, PEER_TARGET_PASSWORD.
"""

import datetime
import os
import threading

import kopf
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkdcs.v2 import (
    BackupFilesBody,
    ConfigMigrationInstanceBody,
    CreateMigrationTaskBody,
    CreateMigrationTaskRequest,
    CreateOnlineMigrationTaskBody,
    CreateOnlineMigrationTaskRequest,
    DcsClient,
    Files,
    SetOnlineMigrationTaskBody,
    SetOnlineMigrationTaskRequest,
    ShowMigrationTaskRequest,
    StopMigrationTaskRequest,
    TargetInstanceBody,
)

GROUP, VERSION, PLURAL = "dcs.migration.io", "v1alpha1", "redismigrations"
POLL_SECONDS = 10

PHASES = {
    "CREATING": "Provisioning",
    "RUNNING": "AwaitingConfiguration",
    "MIGRATING": "FullMigrating",
    "FULLMIGRATING": "FullMigrating",
    "INCRMIGEATING": "IncrementalMigrating",
    "INCRMIGRATING": "IncrementalMigrating",
    "SUCCESS": "Succeeded",
    "MIGRATION_SUCCESS": "Succeeded",
    "FAILED": "Failed",
    "MIGRATION_FAILED": "Failed",
    "ERROR": "Failed",
    "TERMINATING": "Terminating",
    "TERMINATED": "Terminated",
    "DELETED": "Terminated",
}
READY = {"IncrementalMigrating", "Succeeded"}
ENDED = {"Succeeded", "Failed", "Terminated"}

_clients = {}
_lock = threading.Lock()


def client_for(spec):
    endpoint = spec.get("endpoint") or f"https://dcs.{spec['region']}.myhuaweicloud.com"
    with _lock:
        if endpoint not in _clients:
            credentials = BasicCredentials(
                os.environ["PEER_ACCESS_KEY"], os.environ["PEER_SECRET_KEY"], os.environ["PEER_PROJECT_ID"]
            )
            _clients[endpoint] = DcsClient.new_builder().with_credentials(credentials).with_endpoints([endpoint]).build()
        return _clients[endpoint]


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_status(patch, status, remote, phase, message=""):
    ready = phase in READY
    patch.status["remoteStatus"] = remote
    patch.status["phase"] = phase
    old = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    if old is None or (old.get("status") == "True") != ready:
        patch.status["conditions"] = [{
            "type": "Ready",
            "status": "True" if ready else "False",
            "reason": phase,
            "message": message or phase,
            "lastTransitionTime": now(),
        }]


@kopf.on.create(GROUP, VERSION, PLURAL)
def create(spec, name, namespace, patch, **_):
    client = client_for(spec)
    task_name = f"rmig-{namespace}-{name}"[:64]
    target = spec["target"]
    if spec["type"] == "BackupImport":
        backup = spec["backupImport"]
        if backup["source"] == "ObsBucket":
            files = BackupFilesBody(
                file_source="self_build_obs",
                bucket_name=backup["bucket"],
                files=[Files(file_name=f["name"], size=f.get("size")) for f in backup["files"]],
            )
        else:
            files = BackupFilesBody(file_source="backup_record", backup_id=backup["backupId"])
        body = CreateMigrationTaskBody(
            task_name=task_name,
            description=spec.get("description"),
            migration_type="backupfile_import",
            migration_method="full_amount_migration",
            backup_files=files,
            target_instance=TargetInstanceBody(
                id=target["instanceId"], password=os.environ.get("PEER_TARGET_PASSWORD")
            ),
        )
        task_id = client.create_migration_task(CreateMigrationTaskRequest(body=body)).id
        phase = "FullMigrating"
    else:
        network = spec["online"]["network"]
        body = CreateOnlineMigrationTaskBody(
            name=task_name,
            vpc_id=network["vpcId"],
            subnet_id=network["subnetId"],
            security_group_id=network["securityGroupId"],
        )
        task_id = client.create_online_migration_task(CreateOnlineMigrationTaskRequest(body=body)).instance_id
        phase = "Provisioning"
    patch.status["taskId"] = task_id
    patch.status["taskName"] = task_name
    set_status(patch, {}, "", phase)


def configure(client, spec, task_id):
    def instance(side, password):
        return ConfigMigrationInstanceBody(id=side.get("instanceId"), addrs=side.get("address"), password=password)

    online = spec["online"]
    limit = online.get("bandwidthLimitMB")
    body = SetOnlineMigrationTaskBody(
        migration_method="incremental_migration" if spec["method"] == "Incremental" else "full_amount_migration",
        resume_mode=online.get("resumeMode", "Auto").lower(),
        bandwidth_limit_mb=str(limit) if limit else None,
        source_instance=instance(spec["source"], os.environ.get("PEER_SOURCE_PASSWORD")),
        target_instance=instance(spec["target"], os.environ.get("PEER_TARGET_PASSWORD")),
    )
    client.set_online_migration_task(SetOnlineMigrationTaskRequest(task_id=task_id, body=body))


@kopf.timer(GROUP, VERSION, PLURAL, interval=POLL_SECONDS)
def poll(spec, status, patch, **_):
    task_id = status.get("taskId")
    if not task_id or status.get("phase") in ENDED:
        return
    client = client_for(spec)
    task = client.show_migration_task(ShowMigrationTaskRequest(task_id=task_id))
    remote = task.status
    if remote == "RUNNING" and spec["type"] == "Online":
        configure(client, spec, task_id)
        remote = "FULLMIGRATING"
    phase = PHASES.get(remote, "FullMigrating")
    if remote != status.get("remoteStatus"):
        set_status(patch, status, remote, phase, getattr(task, "error_message", None) or "")


@kopf.on.delete(GROUP, VERSION, PLURAL)
def delete(spec, status, **_):
    task_id = status.get("taskId")
    if not task_id or status.get("phase") in ENDED:
        return
    try:
        client_for(spec).stop_migration_task(StopMigrationTaskRequest(task_id=task_id))
    except ClientRequestException as e:
        if e.status_code != 400:
            raise
