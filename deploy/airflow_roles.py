"""Create (or bring up to date) the two Airflow roles of CPR Abonnement under the FAB
auth manager: ``operator`` and ``viewer``.

Run by ``airflow-init`` in docker-compose.yml after ``airflow db migrate`` (and by the
tests), with the same environment as Airflow: ``python deploy/airflow_roles.py``.
Idempotent: each run makes each role hold exactly the permissions below, so a role a
person edited by hand in Security → List Roles is put back (and a permission removed
here is taken away on the next deployment).

* **operator**: Airflow's own *Viewer* and *User* permissions (trigger, clear,
  mark, read logs) plus backfills: what the runbook's steps need, nothing of the
  Admin menu (connections, variables, users stay with Airflow's *Admin* role).
* **viewer**: Airflow's *Viewer* permissions without task logs and XCom, which name
  files and folders of the delivery machinery: a read-only look at runs, tasks, the
  DAG and the CPR Abonnement console.

Users come from Airflow's database: ``airflow users create --role operator ...``.
Independent of the ``cpr_abonnement`` package on purpose: it needs only Airflow and
its FAB provider.
"""

from __future__ import annotations

from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder
from airflow.providers.fab.auth_manager.security_manager.override import (
    FabAirflowSecurityManagerOverride as Fab,
)
from airflow.providers.fab.www.security import permissions as p

Permission = tuple[str, str]

#: What a viewer must not see: task logs and XCom carry paths and file names.
HIDDEN_FROM_VIEWER: frozenset[Permission] = frozenset({
    (p.ACTION_CAN_READ, p.RESOURCE_TASK_LOG),
    (p.ACTION_CAN_READ, p.RESOURCE_XCOM),
})
BACKFILLS: list[Permission] = [
    (p.ACTION_CAN_CREATE, p.RESOURCE_BACKFILL),
    (p.ACTION_CAN_EDIT, p.RESOURCE_BACKFILL),
    (p.ACTION_CAN_DELETE, p.RESOURCE_BACKFILL),
]

ROLES: dict[str, list[Permission]] = {
    "operator": [*Fab.VIEWER_PERMISSIONS, *Fab.USER_PERMISSIONS, *BACKFILLS],
    "viewer": [perm for perm in Fab.VIEWER_PERMISSIONS if perm not in HIDDEN_FROM_VIEWER],
}


def sync_role(sm, name: str, wanted: list[Permission]) -> tuple[int, int]:
    """Make role ``name`` hold exactly ``wanted``; returns (added, removed)."""
    role = sm.find_role(name) or sm.add_role(name)
    have = {(perm.action.name, perm.resource.name): perm for perm in role.permissions}
    added = removed = 0
    for action, resource in dict.fromkeys(wanted):
        if (action, resource) not in have:
            sm.add_permission_to_role(role, sm.create_permission(action, resource))
            added += 1
    for key, perm in have.items():
        if key not in wanted:
            sm.remove_permission_from_role(role, perm)
            removed += 1
    return added, removed


def main() -> int:
    with get_application_builder() as appbuilder:
        for name, wanted in ROLES.items():
            added, removed = sync_role(appbuilder.sm, name, wanted)
            print(f"role {name}: {len(set(wanted))} permissions "
                  f"({added} added, {removed} removed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
