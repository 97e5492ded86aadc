"""The Invoke entry point: ``inv -l`` lists the deploy tasks and the sandbox's.

Run ``inv`` from an app directory under this repository (``apps/NAME``):
Invoke finds this file by walking up, and the tasks act on the current
directory.
"""

from __future__ import annotations

from invoke import Collection

from fabfile.cli import tasks as deploy_tasks
from sandbox import demo as demo_tasks
from sandbox import tasks as sandbox_tasks

ns = deploy_tasks.namespace()
ns.add_collection(Collection.from_module(sandbox_tasks, name="sandbox"))
ns.add_task(demo_tasks.demo)
