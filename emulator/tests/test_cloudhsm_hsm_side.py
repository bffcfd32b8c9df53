"""The HSM side (emu.cloudhsm.hsm_side) through /_emu/cloudhsm/hsm-side: network reach,
activation, users per HSM, lockout, coverage (aws-behaviour.md section 2)."""

from __future__ import annotations

from test_cloudhsm_support import CA, PASSWORD, Toolbox, hsm_env  # noqa: F401


def client_sg(toolbox: Toolbox, vpc: str, name: str = "client") -> str:
    return toolbox.ec2.create_security_group(GroupName=name, Description="client", VpcId=vpc)["GroupId"]


def allow(toolbox: Toolbox, cluster_sg: str, source_sg: str) -> None:
    toolbox.ec2.authorize_security_group_ingress(GroupId=cluster_sg, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 2223, "ToPort": 2225, "UserIdGroupPairs": [{"GroupId": source_sg}]}])


def test_client_reaches_hsms_only_when_the_cluster_sg_allows_it(hsm_env: Toolbox):
    vpc, subnets = hsm_env.vpc(azs=("us-east-1a",))
    cluster, anchor = hsm_env.initialized(subnets)
    cid, cluster_sg = cluster["ClusterId"], cluster["SecurityGroup"]
    sg = client_sg(hsm_env, vpc)
    assert hsm_env.side("reachable", cid, [sg]) == {"ok": True, "data": []}
    refused = hsm_env.side("cluster_activate", cid, [sg], password=PASSWORD, trust_anchor=anchor)
    assert refused["code"] == "CONNECTION_FAILED"
    allow(hsm_env, cluster_sg, sg)
    assert hsm_env.side("reachable", cid, [sg])["data"] == [cluster["Hsms"][0]["HsmId"]]
    # The cluster SG itself also reaches (self-referencing rule).
    assert hsm_env.side("reachable", cid, [cluster_sg])["data"] == [cluster["Hsms"][0]["HsmId"]]


def test_client_in_another_vpc_does_not_reach(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc(azs=("us-east-1a",))
    other_vpc, _ = hsm_env.vpc(azs=(), cidr="10.1.0.0/16")
    cluster = hsm_env.cluster(subnets)
    hsm_env.first_hsm(cluster["ClusterId"])
    sg = client_sg(hsm_env, other_vpc)
    assert hsm_env.side("reachable", cluster["ClusterId"], [sg])["data"] == []


def test_activation_needs_initialized_cluster(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc(azs=("us-east-1a",))
    cluster = hsm_env.cluster(subnets)
    hsm_env.first_hsm(cluster["ClusterId"])
    out = hsm_env.side("cluster_activate", cluster["ClusterId"], [cluster["SecurityGroup"]],
                       password=PASSWORD, trust_anchor=CA().pem)
    assert out["code"] == "INVALID_STATE" and "UNINITIALIZED" in out["message"]


def test_activation_needs_the_clusters_trust_anchor(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc(azs=("us-east-1a",))
    cluster, anchor = hsm_env.initialized(subnets)
    cid, sg = cluster["ClusterId"], [cluster["SecurityGroup"]]
    assert hsm_env.side("cluster_activate", cid, sg, password=PASSWORD, trust_anchor=CA().pem)["code"] == \
        "TRUST_ANCHOR_MISMATCH"
    assert hsm_env.side("cluster_activate", cid, sg, password=PASSWORD)["code"] == "TRUST_ANCHOR_MISMATCH"
    # 8-32 characters (older docs: 7).
    assert hsm_env.side("cluster_activate", cid, sg, password="short7c", trust_anchor=anchor)["code"] == \
        "INVALID_PASSWORD"
    assert hsm_env.describe(cid)["State"] == "INITIALIZED"
    # Line breaks/whitespace differences in the PEM do not matter.
    reflowed = anchor.replace("\n", "\r\n")
    assert hsm_env.side("cluster_activate", cid, sg, password=PASSWORD, trust_anchor=reflowed)["ok"]
    assert hsm_env.describe(cid)["State"] == "ACTIVE"
    again = hsm_env.side("cluster_activate", cid, sg, password=PASSWORD, trust_anchor=anchor)
    assert again["code"] == "INVALID_STATE"


def test_users_before_and_after_activation(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc(azs=("us-east-1a",))
    cluster, anchor = hsm_env.initialized(subnets)
    cid, sg = cluster["ClusterId"], [cluster["SecurityGroup"]]
    before = hsm_env.side("user_list", cid, sg)["data"]
    assert [(u["username"], u["role"]) for u in before] == [
        ("admin", "unactivated-admin"), ("app_user", "internal(APPLIANCE_USER)")]
    assert hsm_env.side("login", cid, sg, login={"username": "admin", "role": "admin",
                                                 "password": PASSWORD})["code"] == "INVALID_STATE"
    hsm_env.side("cluster_activate", cid, sg, password=PASSWORD, trust_anchor=anchor)
    after = hsm_env.side("user_list", cid, sg)["data"]
    assert after[0] == {"username": "admin", "role": "admin", "locked": "false", "mfa": [],
                        "cluster-coverage": "full"}
    assert hsm_env.side("login", cid, sg, login=hsm_env.as_admin()) == {
        "ok": True, "data": {"username": "admin", "role": "admin"}}


def test_user_create_change_password_delete(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc(azs=("us-east-1a",))
    cluster, _ = hsm_env.active(subnets)
    cid, sg = cluster["ClusterId"], [cluster["SecurityGroup"]]
    made = hsm_env.side("user_create", cid, sg, login=hsm_env.as_admin(), username="KmsUser",
                        role="crypto-user", password="kmsPassw0rd")
    assert made == {"ok": True, "data": {"username": "kmsuser", "role": "crypto-user"}}  # lower-cased
    assert hsm_env.side("user_create", cid, sg, login=hsm_env.as_admin(), username="kmsuser",
                        role="crypto-user", password="kmsPassw0rd")["code"] == "USER_EXISTS"
    assert hsm_env.side("user_create", cid, sg, login=hsm_env.as_admin(), username="bad-name!",
                        role="crypto-user", password="kmsPassw0rd")["code"] == "INVALID_USERNAME"
    # A crypto user cannot create users.
    as_kms = {"username": "kmsuser", "role": "crypto-user", "password": "kmsPassw0rd"}
    assert hsm_env.side("user_create", cid, sg, login=as_kms, username="x", role="crypto-user",
                        password="kmsPassw0rd")["code"] == "PERMISSION_DENIED"
    assert hsm_env.side("login", cid, sg, login=as_kms)["ok"]
    # Anyone may change their own password.
    assert hsm_env.side("user_change_password", cid, sg, login=as_kms, username="kmsuser", role="crypto-user",
                        password="newPassw0rd")["ok"]
    assert hsm_env.side("login", cid, sg, login=as_kms)["code"] == "INVALID_CREDENTIALS"
    assert hsm_env.side("user_delete", cid, sg, login=hsm_env.as_admin(), username="kmsuser",
                        role="crypto-user")["ok"]
    assert "kmsuser" not in [u["username"] for u in hsm_env.side("user_list", cid, sg)["data"]]
    assert hsm_env.side("user_delete", cid, sg, login=hsm_env.as_admin(), username="app_user",
                        role="appliance")["code"] == "PERMISSION_DENIED"


def test_five_failed_logins_lock_and_admin_unlocks(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc(azs=("us-east-1a",))
    cluster, _ = hsm_env.active(subnets)
    cid, sg = cluster["ClusterId"], [cluster["SecurityGroup"]]
    hsm_env.side("user_create", cid, sg, login=hsm_env.as_admin(), username="alice", role="crypto-user",
                 password="alicePassw0rd")
    wrong = {"username": "alice", "role": "crypto-user", "password": "wrongPassw0rd"}
    right = {**wrong, "password": "alicePassw0rd"}
    for _ in range(4):
        assert hsm_env.side("login", cid, sg, login=wrong)["code"] == "INVALID_CREDENTIALS"
    assert hsm_env.side("login", cid, sg, login=right)["ok"]  # a success resets the count
    for _ in range(5):
        assert hsm_env.side("login", cid, sg, login=wrong)["code"] == "INVALID_CREDENTIALS"
    assert hsm_env.side("login", cid, sg, login=right)["code"] == "USER_LOCKED"
    listed = {u["username"]: u for u in hsm_env.side("user_list", cid, sg)["data"]}
    assert listed["alice"]["locked"] == "true"
    assert hsm_env.side("user_change_password", cid, sg, login=hsm_env.as_admin(), username="alice",
                        role="crypto-user", password="alicePassw0rd2")["ok"]
    assert hsm_env.side("login", cid, sg, login={**right, "password": "alicePassw0rd2"})["ok"]


def test_password_change_refused_while_the_user_is_logged_in(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc(azs=("us-east-1a",))
    cluster, _ = hsm_env.active(subnets)
    cid, sg = cluster["ClusterId"], [cluster["SecurityGroup"]]
    hsm_env.side("user_create", cid, sg, login=hsm_env.as_admin(), username="kmsuser", role="crypto-user",
                 password="kmsPassw0rd")
    opened = hsm_env.side("session_open", cid, sg, login={"username": "kmsuser", "role": "crypto-user",
                                                          "password": "kmsPassw0rd"})
    out = hsm_env.side("user_change_password", cid, sg, login=hsm_env.as_admin(), username="kmsuser",
                       role="crypto-user", password="otherPassw0rd")
    assert out["code"] == "USER_LOGGED_IN"
    assert hsm_env.side("user_delete", cid, sg, login=hsm_env.as_admin(), username="kmsuser",
                        role="crypto-user")["code"] == "USER_LOGGED_IN"
    hsm_env.side("session_close", cid, sg, session=opened["data"]["session"])
    assert hsm_env.side("user_change_password", cid, sg, login=hsm_env.as_admin(), username="kmsuser",
                        role="crypto-user", password="otherPassw0rd")["ok"]


def test_user_created_on_some_hsms_has_partial_coverage(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc()
    cluster, _ = hsm_env.active(subnets)
    cid, sg = cluster["ClusterId"], [cluster["SecurityGroup"]]
    first = cluster["Hsms"][0]
    second = hsm_env.hsm.create_hsm(ClusterId=cid, AvailabilityZone="us-east-1b")["Hsm"]
    hsm_env.wait_hsm(cid, second["HsmId"], "ACTIVE")
    # The client is configured with the first HSM only (configure-cli -a <ip>).
    hsm_env.side("user_create", cid, sg, hsms=[first["EniIp"]], login=hsm_env.as_admin(),
                 username="kmsuser", role="crypto-user", password="kmsPassw0rd")
    listed = {u["username"]: u for u in hsm_env.side("user_list", cid, sg)["data"]}
    assert listed["kmsuser"]["cluster-coverage"] == "partial"
    assert listed["admin"]["cluster-coverage"] == "full"
    status, stores = hsm_env.emu.emu("GET", f"cloudhsm/hsm-users?cluster_id={cid}")
    assert status == 200
    assert "kmsuser" in stores[first["HsmId"]]["users"] and "kmsuser" not in stores[second["HsmId"]]["users"]
    assert "Passw0rd" not in str(stores) and PASSWORD not in str(stores)  # no passwords shown
    # Logging in through both HSMs fails: the user is missing on one.
    assert hsm_env.side("login", cid, sg, login={"username": "kmsuser", "role": "crypto-user",
                                                 "password": "kmsPassw0rd"})["code"] == "USER_NOT_FOUND"
    # Creating it on the other HSM makes coverage full.
    hsm_env.side("user_create", cid, sg, hsms=[second["EniIp"]], login=hsm_env.as_admin(),
                 username="kmsuser", role="crypto-user", password="kmsPassw0rd")
    listed = {u["username"]: u for u in hsm_env.side("user_list", cid, sg)["data"]}
    assert listed["kmsuser"]["cluster-coverage"] == "full"
