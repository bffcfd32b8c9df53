"""What the end-to-end tests share: the emulator handle, the test network, `synth deploy|destroy`
run as a subprocess exactly as a user runs it, and the assertions on the deployed state."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]
SYNTH = Path(os.environ.get("E2E_SYNTH", REPO / "target" / "debug" / "synth"))
LOG_DIR_DEFAULT = Path(os.environ.get("E2E_LOG_DIR", REPO / "target" / "e2e-logs"))
SYNTH_DIR = Path(os.environ.get("E2E_SYNTH_DIR", REPO / "target" / "e2e-cdk.out"))
REGION = "us-east-1"
AZS = ("us-east-1a", "us-east-1b", "us-east-1c")
# Real seconds one synth command may take before the test gives up on it (not a timing assert:
# a hung deploy must fail the test instead of hanging the suite).
COMMAND_TIMEOUT = float(os.environ.get("E2E_COMMAND_TIMEOUT", "900"))

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
               "AWS_EC2_METADATA_DISABLED": "true"}


class Emulator:
    """Handle on the running emulator: boto3 clients and the `/_emu/` control API."""

    def __init__(self, endpoint: str, log_path: Path | None):
        self.endpoint = endpoint
        self.log_path = log_path

    def client(self, service: str) -> Any:
        return boto3.client(
            service, endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id="testing", aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 3, "mode": "standard"},
                          s3={"addressing_style": "path"}))

    def emu(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.endpoint}/_emu/{path.lstrip('/')}", data=data,
                                         method=method.upper(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, payload = self.emu(method, path, body)
        assert status == 200, f"{method} /_emu/{path} -> {status}: {payload}"
        return payload

    def reset(self) -> None:
        self.ok("POST", "reset")

    def introspect(self) -> dict[str, Any]:
        return self.ok("GET", "introspect")

    def add_fault(self, **rule: Any) -> dict[str, Any]:
        """Adds a fault rule (POST /_emu/faults); returns it with its id."""
        return self.ok("POST", "faults", rule)

    def fault_hits(self, rule_id: int) -> int:
        for rule in self.ok("GET", "faults")["rules"]:
            if rule["id"] == rule_id:
                return int(rule["hits"])
        raise AssertionError(f"fault rule {rule_id} is gone")

    def clear_faults(self) -> None:
        self.ok("DELETE", "faults")

    def hsm_users(self, cluster_id: str) -> dict[str, Any]:
        return self.ok("GET", f"cloudhsm/hsm-users?cluster_id={cluster_id}")


@dataclass
class Network:
    vpc_id: str
    subnets: dict[str, str]  # AZ -> HSM subnet id
    client_subnet: str
    spare_subnets: dict[str, str] = field(default_factory=dict)  # AZ -> a second subnet there

    def hsm_subnets(self, n: int) -> list[str]:
        return [self.subnets[az] for az in AZS[:n]]


def make_network(emu: Emulator, cidr_octet: int = 0) -> Network:
    """A VPC with one HSM subnet per AZ, a spare subnet per AZ and a client subnet, via the EC2 API."""
    ec2 = emu.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock=f"10.{cidr_octet}.0.0/16")["Vpc"]["VpcId"]
    subnets, spares = {}, {}
    for i, az in enumerate(AZS):
        subnets[az] = ec2.create_subnet(VpcId=vpc_id, AvailabilityZone=az,
                                        CidrBlock=f"10.{cidr_octet}.{i}.0/24")["Subnet"]["SubnetId"]
        spares[az] = ec2.create_subnet(VpcId=vpc_id, AvailabilityZone=az,
                                       CidrBlock=f"10.{cidr_octet}.{i + 10}.0/24")["Subnet"]["SubnetId"]
    client = ec2.create_subnet(VpcId=vpc_id, AvailabilityZone=AZS[0],
                               CidrBlock=f"10.{cidr_octet}.100.0/24")["Subnet"]["SubnetId"]
    return Network(vpc_id, subnets, client, spares)


@dataclass
class Result:
    """One synth command: exit code, parsed JSON (stdout), progress (stderr)."""
    command: list[str]
    returncode: int
    out: dict[str, Any]
    stderr: str

    @property
    def status(self) -> str | None:
        return self.out.get("status")

    @property
    def outputs(self) -> dict[str, str]:
        return self.out.get("outputs") or {}

    def describe(self) -> str:
        return (f"$ {' '.join(self.command)}\nexit {self.returncode}\n"
                f"stdout: {json.dumps(self.out, indent=1)[:6000]}\nstderr (tail):\n{self.stderr[-6000:]}")

    def root_cause_text(self) -> str:
        """Everything a user is shown about why it failed (JSON root cause + error + stderr)."""
        return json.dumps({k: self.out.get(k) for k in ("root_cause", "error", "status_reason")}) \
            + "\n" + self.stderr


class Stack:
    """A stack operated through `synth deploy|destroy|status --endpoint-url`."""

    def __init__(self, emu: Emulator, name: str, log_dir: Path, app: str | None = None):
        self.emu = emu
        self.name = name
        self.log_dir = log_dir
        # The example app `synth deploy` synthesizes (None: synth's default, dev); each app gets
        # its own synthesis directory so two stacks of different apps can live side by side.
        self.app = app
        self.params: dict[str, str] = {}
        self.history: list[Result] = []

    def _run(self, args: list[str]) -> Result:
        command = [str(SYNTH)] + args
        env = {**os.environ, **CREDENTIALS}
        started = time.time()
        proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO,
                              timeout=COMMAND_TIMEOUT)
        try:
            out = json.loads(proc.stdout) if proc.stdout.strip() else {}
        except json.JSONDecodeError:
            out = {"unparsed_stdout": proc.stdout}
        result = Result(command, proc.returncode, out, proc.stderr)
        self.history.append(result)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"{self.name}.log", "a") as log:
            log.write(f"\n===== {time.strftime('%H:%M:%S')} ({time.time() - started:.1f}s)\n"
                      f"$ {' '.join(command)}\nexit {proc.returncode}\nstdout:\n{proc.stdout}\n"
                      f"stderr:\n{proc.stderr}\n")
            arn = ((out.get("root_cause") or {}).get("workflow") or {}).get("execution_arn")
            if proc.returncode != 0 and arn:  # the failed workflow's history, for diagnosis
                try:
                    events = self.emu.client("stepfunctions").get_execution_history(
                        executionArn=arn, maxResults=1000)["events"]
                    log.write(f"history of {arn}:\n{json.dumps(events, default=str, indent=1)}\n")
                except Exception as err:  # diagnosis only
                    log.write(f"(history of {arn} unavailable: {err})\n")
        return result

    def deploy(self, **params: Any) -> Result:
        """`synth deploy` with these parameter overrides (lists comma-joined, as the AWS CLI takes them)."""
        overrides = []
        for key, value in params.items():
            if isinstance(value, (list, tuple)):
                value = ",".join(value)
            if isinstance(value, bool):
                value = "true" if value else "false"
            overrides.append(f"{key}={value}")
            self.params[key] = str(value)
        app = ["--app", self.app] if self.app else []
        synth_dir = SYNTH_DIR if not self.app else SYNTH_DIR.with_name(f"{SYNTH_DIR.name}-{self.app}")
        return self._run(["deploy", "--stack-name", self.name, "--endpoint-url", self.emu.endpoint,
                          *app, "--synth-dir", str(synth_dir), "--output", "json",
                          "--timeout-minutes", "15", "--parameter-overrides", *overrides])

    def deploy_ok(self, **params: Any) -> Result:
        result = self.deploy(**params)
        assert result.returncode == 0 and result.status in ("CREATE_COMPLETE", "UPDATE_COMPLETE"), \
            result.describe()
        return result

    def destroy(self) -> Result:
        return self._run(["destroy", "--stack-name", self.name, "--endpoint-url", self.emu.endpoint,
                          "--output", "json", "--timeout-minutes", "15"])

    def status_cmd(self) -> Result:
        return self._run(["status", "--stack-name", self.name, "--endpoint-url", self.emu.endpoint,
                          "--output", "json"])

    def events(self) -> list[dict[str, Any]]:
        cfn = self.emu.client("cloudformation")
        return cfn.describe_stack_events(StackName=self.name)["StackEvents"]

    def cfn_status(self) -> str | None:
        cfn = self.emu.client("cloudformation")
        for s in cfn.describe_stacks()["Stacks"]:  # listed by name; a deleted stack is absent or DELETE_COMPLETE
            if s["StackName"] == self.name:
                return s["StackStatus"]
        return None


# ------------------------------------------------------------------------------------------------
# State of the account

def clusters(emu: Emulator) -> list[dict[str, Any]]:
    hsm = emu.client("cloudhsmv2")
    out, token = [], None
    while True:
        page = hsm.describe_clusters(**({"NextToken": token} if token else {}))
        out += page["Clusters"]
        token = page.get("NextToken")
        if not token:
            return out


def live_clusters(emu: Emulator) -> list[dict[str, Any]]:
    return [c for c in clusters(emu) if c["State"] not in ("DELETED",)]


def cluster(emu: Emulator, cluster_id: str) -> dict[str, Any]:
    found = emu.client("cloudhsmv2").describe_clusters(
        Filters={"clusterIds": [cluster_id]})["Clusters"]
    assert len(found) == 1, f"cluster {cluster_id}: {found}"
    return found[0]


def enis(emu: Emulator, vpc_id: str) -> list[dict[str, Any]]:
    ec2 = emu.client("ec2")
    return ec2.describe_network_interfaces(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["NetworkInterfaces"]


def live_instances(emu: Emulator, vpc_id: str) -> list[dict[str, Any]]:
    ec2 = emu.client("ec2")
    out = []
    for r in ec2.describe_instances(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Reservations"]:
        out += [i for i in r["Instances"] if i["State"]["Name"] not in ("terminated", "shutting-down")]
    return out


def key_stores(emu: Emulator) -> list[dict[str, Any]]:
    return emu.client("kms").describe_custom_key_stores()["CustomKeyStores"]


def assert_nothing_billing(emu: Emulator, network: Network, allow_key_stores: bool = False) -> None:
    """No cluster, no HSM, no HSM/KMS ENI, no running client, no key store (unless retained)."""
    left = live_clusters(emu)
    assert not left, f"clusters left: {[(c['ClusterId'], c['State'], len(c.get('Hsms', []))) for c in left]}"
    billed = [e for e in enis(emu, network.vpc_id)
              if "CloudHSM" in (e.get("Description") or "") or "KMS" in (e.get("Description") or "")]
    assert not billed, f"HSM/KMS ENIs left: {[(e['NetworkInterfaceId'], e.get('Description')) for e in billed]}"
    assert not live_instances(emu, network.vpc_id), "client instance still running"
    if not allow_key_stores:
        assert not key_stores(emu), f"key stores left: {key_stores(emu)}"


def assert_no_cluster_created(emu: Emulator) -> None:
    assert clusters(emu) == [], f"a cluster was created: {clusters(emu)}"


def secret_value(emu: Emulator, arn: str) -> str:
    return emu.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]


def verify_trust_anchor(trust_anchor_pem: str, cluster_certificate_pem: str) -> None:
    """The cluster certificate is issued and signed by the trust anchor, which is a CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import padding, rsa, ec

    anchor = x509.load_pem_x509_certificate(trust_anchor_pem.encode())
    cert = x509.load_pem_x509_certificate(cluster_certificate_pem.encode())
    assert cert.issuer == anchor.subject, f"cluster cert issuer {cert.issuer} != anchor {anchor.subject}"
    key = anchor.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                   cert.signature_hash_algorithm)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    else:
        raise AssertionError(f"unexpected trust anchor key type {type(key)}")
    basic = anchor.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert basic.ca, "the trust anchor is not a CA certificate"


def assert_converged(emu: Emulator, result: Result, network: Network, subnets: list[str],
                     per_subnet: int) -> dict[str, Any]:
    """Cluster ACTIVE in exactly these subnets, `per_subnet` ACTIVE HSMs in each, activated,
    outputs pointing at the live resources; returns the cluster."""
    out = result.outputs
    for name in ("ClusterId", "ClusterSecurityGroupId", "AdminPasswordSecretArn",
                 "TrustAnchorSecretArn", "ClientInstanceId"):
        assert out.get(name), f"output {name} missing: {out}"
    c = cluster(emu, out["ClusterId"])
    assert c["State"] == "ACTIVE", f"cluster {c['ClusterId']} is {c['State']}: {c.get('StateMessage')}"
    assert c["VpcId"] == network.vpc_id
    assert sorted(c["SubnetMapping"].values()) == sorted(subnets), c["SubnetMapping"]
    assert c["SecurityGroup"] == out["ClusterSecurityGroupId"]
    subnet_az = {s: az for az, s in network.subnets.items()}
    hsms = c.get("Hsms", [])
    states = [(h["HsmId"], h["AvailabilityZone"], h["State"]) for h in hsms]
    assert all(h["State"] == "ACTIVE" for h in hsms), f"HSMs not all ACTIVE: {states}"
    for s in subnets:
        in_subnet = [h for h in hsms if h["SubnetId"] == s]
        assert len(in_subnet) == per_subnet, \
            f"subnet {s} ({subnet_az.get(s)}) has {len(in_subnet)} HSMs, want {per_subnet}: {states}"
        assert all(h["AvailabilityZone"] == subnet_az[s] for h in in_subnet), states
    assert len(hsms) == per_subnet * len(subnets), states
    # Every HSM is activated: the admin (crypto officer) has a password on each.
    if hsms:
        users = emu.hsm_users(c["ClusterId"])
        for hsm_id, hsm_view in users.items():
            admin = hsm_view["users"].get("admin")
            assert admin and admin["has_password"], f"HSM {hsm_id} is not activated: {hsm_view['users']}"
    # Secrets: the admin password exists (generated, 32 characters); the trust anchor is the
    # CA that signed the cluster certificate.
    assert len(secret_value(emu, out["AdminPasswordSecretArn"])) >= 32
    verify_trust_anchor(secret_value(emu, out["TrustAnchorSecretArn"]),
                        c["Certificates"]["ClusterCertificate"])
    # The client instance is up in the client subnet.
    ec2 = emu.client("ec2")
    inst = ec2.describe_instances(InstanceIds=[out["ClientInstanceId"]])["Reservations"][0]["Instances"][0]
    assert inst["State"]["Name"] == "running", inst["State"]
    return c


# ------------------------------------------------------------------------------------------------
# Leaks

def secret_values(snapshot: dict[str, Any]) -> dict[str, list[str]]:
    """Every secret value the emulator stored (Secrets Manager strings, GetRandomPassword results,
    KMS key store passwords, rotated kmsuser passwords), as value -> where it came from.
    The trust anchor secret is not a secret (a public CA certificate, and a placeholder until
    initialization writes it) and is left out, as is any certificate; JSON secrets contribute
    their string fields."""
    found: dict[str, list[str]] = {}

    def add(value: Any, source: str) -> None:
        if not isinstance(value, str) or len(value) < 8:
            return
        if "BEGIN CERTIFICATE" in value or "TrustAnchor" in source:
            return
        found.setdefault(value, []).append(source)
        try:
            parsed = json.loads(value)
        except ValueError:
            return
        if isinstance(parsed, dict):
            for key, inner in parsed.items():
                add(inner, f"{source} (field {key})")

    for entry in snapshot.get("secrets", []):
        add(entry.get("value"), f"{entry.get('source')} {entry.get('secret_id') or entry.get('custom_key_store_id') or ''}")
    for entry in snapshot.get("records", []):
        if entry.get("kind") == "secret_value":
            add(entry.get("value"), f"{entry.get('source')} {entry.get('secret_id') or ''}")
    return found


def leak_haystacks(snapshot: dict[str, Any]) -> dict[str, str]:
    """Everything recorded that must never hold a secret: execution histories (inputs, outputs,
    every event), logs, SSM command history (parameters, scripts, output), user-data, stack
    events/parameters/outputs/resource properties, Lambda configurations, CFN requests/responses."""
    hay: dict[str, str] = {}
    for i, entry in enumerate(snapshot.get("records", [])):
        if entry.get("kind") == "secret_value":
            continue
        hay[f"record[{i}] {entry.get('kind')}"] = json.dumps(entry, default=str)
    for machine in snapshot.get("state_machines", []):
        for ex in machine.get("executions", []):
            hay[f"execution {ex.get('name')}"] = json.dumps(ex, default=str)
    for s in snapshot.get("stacks", []):
        hay[f"stack {s.get('StackName')}"] = json.dumps(s, default=str)
    for fn in snapshot.get("lambda_functions", []):
        hay[f"lambda {fn.get('FunctionName')}"] = json.dumps(fn, default=str)
    return hay


def assert_no_leaks(emu: Emulator, expect_sources: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """No stored secret value appears anywhere else in the emulator's records, and no private key
    is recorded at all. `expect_sources`: substrings of sources that must be among the secrets
    (so the scan is known to cover them). Returns the secrets scanned."""
    snapshot = emu.introspect()
    secrets = secret_values(snapshot)
    sources = sorted({src for srcs in secrets.values() for src in srcs})
    for wanted in expect_sources:
        assert any(wanted in src for src in sources), \
            f"no stored secret from {wanted!r} to scan for; sources: {sources}"
    hay = leak_haystacks(snapshot)
    assert hay, "the emulator recorded nothing: the scan would be vacuous"
    leaks = []
    for value, source in secrets.items():
        for where, text in hay.items():
            if value in text or json.dumps(value)[1:-1] in text:
                leaks.append(f"secret from {', '.join(source)} appears in {where}")
    assert not leaks, "secret values leaked:\n" + "\n".join(leaks[:50])
    everything = json.dumps(snapshot, default=str)
    assert "PRIVATE KEY-----" not in everything, "a private key (the throwaway CA's?) was recorded"
    return secrets
