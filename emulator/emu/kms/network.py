"""The EC2 side of a CloudHSM key store, in moto's EC2 backend.

Checks KMS makes on the cluster's network (aws-behaviour.md 3.4) and the connection
infrastructure it builds on connect and removes on disconnect (3.5): a security group
``kms-<custom key store id>`` in the cluster VPC with a single inbound rule from the cluster
security group, and one ENI per cluster subnet, attached to that group and the cluster group,
described ``KMS managed ENI for cluster <cluster-ID>``.
"""

from __future__ import annotations

from typing import Any

from .hsm_view import ClusterView

HSM_PORTS = (2223, 2225)


def _ec2(account_id: str, region: str) -> Any:
    from moto.ec2.models import ec2_backends

    return ec2_backends[account_id][region]


def _subnet(ec2: Any, subnet_id: str) -> Any | None:
    try:
        return ec2.get_subnet(subnet_id)
    except Exception:  # moto raises InvalidSubnetIdError
        return None


def _self_rule(rules: list[Any], group_id: str) -> bool:
    """A TCP rule covering 2223-2225 whose peer is the group itself (or all traffic from it)."""
    for rule in rules:
        if (rule.source_group or {}).get("GroupId") != group_id:
            continue
        if rule.ip_protocol == "-1":
            return True
        if rule.ip_protocol == "tcp" and rule.from_port is not None:
            if int(rule.from_port) <= HSM_PORTS[0] and int(rule.to_port) >= HSM_PORTS[1]:
                return True
    return False


def security_group_ok(account_id: str, region: str, cluster: ClusterView) -> bool:
    """The cluster SG still has its self-referencing inbound and outbound TCP 2223-2225 rules."""
    if not cluster.security_group_id:
        return False
    group = _ec2(account_id, region).get_security_group_from_id(cluster.security_group_id)
    if group is None:
        return False
    sg = cluster.security_group_id
    return _self_rule(group.ingress_rules, sg) and _self_rule(group.egress_rules, sg)


def missing_subnets(account_id: str, region: str, cluster: ClusterView) -> list[str]:
    ec2 = _ec2(account_id, region)
    return [s for s in cluster.subnet_mapping.values() if _subnet(ec2, s) is None]


def subnets_without_free_address(account_id: str, region: str, cluster: ClusterView) -> list[str]:
    ec2 = _ec2(account_id, region)
    full = []
    for subnet_id in cluster.subnet_mapping.values():
        subnet = _subnet(ec2, subnet_id)
        if subnet is not None and subnet.available_ip_address_count < 1:
            full.append(subnet_id)
    return full


def create_connection_infrastructure(
    account_id: str, region: str, store_id: str, cluster: ClusterView
) -> tuple[str, list[str]]:
    """Create the ``kms-<id>`` group and one ENI per cluster subnet; return their ids."""
    ec2 = _ec2(account_id, region)
    group = ec2.create_security_group(
        name=f"kms-{store_id}",
        description=f"KMS managed security group for custom key store {store_id}",
        vpc_id=cluster.vpc_id,
    )
    # "a single rule that allows inbound traffic from the cluster security group" (KDG
    # disconnect-keystore.md). The protocol is not documented; TCP 2223-2225 is what the HSMs
    # speak (uncertain: AWS may allow all traffic from that group).
    ec2.authorize_security_group_ingress(
        group_name_or_id=group.id,
        ip_protocol="tcp",
        from_port=str(HSM_PORTS[0]),
        to_port=str(HSM_PORTS[1]),
        ip_ranges=[],
        source_groups=[{"GroupId": cluster.security_group_id}],
        vpc_id=cluster.vpc_id,
    )
    enis: list[str] = []
    try:
        for subnet_id in cluster.subnet_mapping.values():
            subnet = ec2.get_subnet(subnet_id)
            eni = ec2.create_network_interface(
                subnet=subnet,
                private_ip_address=_free_ip(ec2, subnet, store_id),
                group_ids=[group.id, cluster.security_group_id],
                description=f"KMS managed ENI for cluster {cluster.cluster_id}",
            )
            eni.requester_managed = True
            enis.append(eni.id)
    except BaseException:
        remove_connection_infrastructure(account_id, region, group.id, enis)
        raise
    return group.id, enis


def _free_ip(ec2: Any, subnet: Any, owner: str) -> str:
    """An address no ENI uses, reserved in the subnet (as the CloudHSM model allocates)."""
    used = {eni.private_ip_address for eni in ec2.enis.values() if eni.subnet.id == subnet.id}
    while True:
        ip = subnet.get_available_subnet_ip(owner)  # StopIteration when the subnet is full
        if ip not in used:
            return ip


def remove_connection_infrastructure(
    account_id: str, region: str, group_id: str | None, eni_ids: list[str]
) -> None:
    """Delete what :func:`create_connection_infrastructure` made (whatever is still there)."""
    ec2 = _ec2(account_id, region)
    for eni_id in eni_ids:
        eni = ec2.enis.get(eni_id)
        if eni is not None:
            ec2.delete_network_interface(eni_id)
            eni.subnet.del_subnet_ip(eni.private_ip_address)
    if group_id and ec2.get_security_group_from_id(group_id) is not None:
        ec2.delete_security_group(group_id=group_id)
