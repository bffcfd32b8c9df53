"""The leak test (issues 4 and 5): run the whole life of a stack with the key store — create,
grow, fail an update, delete — then scan everything the emulator recorded for every secret value
it stored (the admin password, the kmsuser password, generated passwords) and find none."""

from __future__ import annotations

from e2e_support import assert_no_leaks, secret_value


def test_no_secret_in_any_record(emu, network, stack_factory):
    stack = stack_factory()
    params = {"VpcId": network.vpc_id, "SubnetIds": network.hsm_subnets(2), "HsmsPerSubnet": 1,
              "ClientSubnetId": network.client_subnet, "EnableKeyStore": "true"}
    created = stack.deploy_ok(**params)
    admin_password = secret_value(emu, created.outputs["AdminPasswordSecretArn"])
    # Grow the fleet (client config refresh with the new HSMs, kmsuser cloned onto them).
    stack.deploy_ok(**{**params, "HsmsPerSubnet": 2})
    # A failing update records errors, causes and command output too: a client command fails.
    # One failure: the update fails, its rollback (which refreshes the client again) succeeds.
    rule = emu.add_fault(kind="client_command", count=1,
                         outcome={"exit_code": 1, "stderr": "cloudhsm-cli: injected failure"})
    failed = stack.deploy(**{**params, "HsmsPerSubnet": 1})
    assert emu.fault_hits(rule["id"]) == 1, "the injected command failure never happened"
    emu.clear_faults()
    assert failed.returncode != 0, failed.describe()
    destroyed = stack.destroy()
    assert destroyed.returncode == 0, destroyed.describe()

    scanned = assert_no_leaks(emu, expect_sources=("secretsmanager", "GetRandomPassword", "kms."))
    assert admin_password in scanned, "the admin password was not among the values scanned"
    # The scan also saw what synth printed: no secret in the deploy/destroy output either.
    for result in stack.history:
        for value in scanned:
            assert value not in result.stderr and value not in str(result.out), \
                f"a secret from {scanned[value]} appears in the output of {' '.join(result.command[:2])}"
