"""The administration client: emulated EC2 instances as SSM managed nodes, SSM Run Command
executed in a per-instance sandbox, and the stand-in ``cloudhsm-cli`` / ``configure-cli``.

Modules: :mod:`.instances` (boot, user-data, SSM registration), :mod:`.sandbox` (the instance's
filesystem and running scripts in it), :mod:`.documents` (SSM documents and parameters),
:mod:`.ssm_run` (SendCommand and friends), :mod:`.cli.cloudhsm_cli` (the HSM-facing half of the
CLI stand-in), :mod:`.routes` (``/_emu/client/...``). The executables live in ``bin/``.
"""

from __future__ import annotations


def install() -> None:
    from . import cfn_models, iam_policies, instances, routes, ssm_run  # noqa: F401

    iam_policies.install()
    cfn_models.install()

    instances.install()
    ssm_run.install()


def reset() -> None:
    from . import instances, ssm_run

    ssm_run.reset()
    instances.reset()


def shutdown() -> None:
    """On exit: kill scripts still running in instances, remove the temporary state dir."""
    from . import instances, sandbox, ssm_run

    ssm_run.reset()
    instances.reset()
    sandbox.remove_state_dir()
