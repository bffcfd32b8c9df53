"""CloudHSM v2 wire protocols (aws-behaviour.md section 0): awsJson1_1 (what botocore and the AWS
SDK for Rust send) and smithy rpc-v2-cbor; epoch-second timestamps; the error body shape."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import boto3
import botocore.model
import cbor2
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from test_cloudhsm_support import Toolbox, hsm_env  # noqa: F401

AUTH = ("AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/cloudhsm/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=0000")


def post(endpoint: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(endpoint + path, data=body, method="POST",
                                     headers={"Authorization": AUTH, "X-Amz-Date": "20260101T000000Z", **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def json_call(endpoint: str, op: str, params: dict) -> tuple[int, dict, dict]:
    status, headers, body = post(endpoint, "/", json.dumps(params).encode(), {
        "X-Amz-Target": f"BaldrApiService.{op}", "Content-Type": "application/x-amz-json-1.1"})
    return status, headers, json.loads(body)


def test_json_timestamps_are_epoch_seconds_and_nulls_are_omitted(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc(azs=("us-east-1a",))
    status, headers, body = json_call(hsm_env.emu.endpoint, "CreateCluster",
                                      {"HsmType": "hsm2m.medium", "SubnetIds": subnets})
    assert status == 200, body
    assert headers["Content-Type"] == "application/x-amz-json-1.1"
    assert isinstance(body["Cluster"]["CreateTimestamp"], (int, float))
    assert "SourceBackupId" not in body["Cluster"]
    status, _, described = json_call(hsm_env.emu.endpoint, "DescribeClusters", {})
    assert status == 200 and "NextToken" not in described


def test_json_error_shape(hsm_env: Toolbox):
    status, headers, body = json_call(hsm_env.emu.endpoint, "DeleteCluster", {"ClusterId": "cluster-abcdefghijk"})
    assert status == 400
    assert body["__type"] == "CloudHsmResourceNotFoundException"
    assert "cluster-abcdefghijk" in body["Message"]
    assert headers.get("x-amzn-RequestId")


def test_unknown_operation_is_an_error(hsm_env: Toolbox):
    status, _, body = json_call(hsm_env.emu.endpoint, "ActivateCluster", {})
    assert status == 400 and body["__type"] == "UnknownOperationException"


def test_raw_cbor_round_trip(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc(azs=("us-east-1a",))
    headers = {"Content-Type": "application/cbor", "Accept": "application/cbor", "smithy-protocol": "rpc-v2-cbor"}
    status, out_headers, body = post(hsm_env.emu.endpoint, "/service/BaldrApiService/operation/CreateCluster",
                                     cbor2.dumps({"HsmType": "hsm2m.medium", "SubnetIds": subnets}), headers)
    assert status == 200
    assert out_headers["smithy-protocol"] == "rpc-v2-cbor" and out_headers["Content-Type"] == "application/cbor"
    assert b"\xc1\xfb" in body  # tag 1 (epoch seconds) + float64, not tag 0 (a date string)
    assert cbor2.loads(body)["Cluster"]["CreateTimestamp"].year >= 2025
    status, _, body = post(hsm_env.emu.endpoint, "/service/BaldrApiService/operation/DeleteCluster",
                           cbor2.dumps({"ClusterId": "cluster-abcdefghijk"}), headers)
    error = cbor2.loads(body)
    assert status == 400
    assert error["__type"] == "com.amazonaws.cloudhsmv2#CloudHsmResourceNotFoundException"


@pytest.fixture
def cbor_client(hsm_env: Toolbox, monkeypatch: pytest.MonkeyPatch):
    """A botocore client that prefers rpc-v2-cbor (the model lists both protocols)."""
    monkeypatch.setattr(botocore.model, "PRIORITY_ORDERED_SUPPORTED_PROTOCOLS", ("smithy-rpc-v2-cbor", "json"))
    client = boto3.client("cloudhsmv2", endpoint_url=hsm_env.emu.endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing",
                          config=Config(retries={"total_max_attempts": 1}))
    assert client.meta.service_model.resolved_protocol == "smithy-rpc-v2-cbor"
    return client


def test_botocore_over_cbor(hsm_env: Toolbox, cbor_client):
    _, subnets = hsm_env.vpc(azs=("us-east-1a",))
    cluster = cbor_client.create_cluster(HsmType="hsm2m.medium", SubnetIds=subnets,
                                         TagList=[{"Key": "k", "Value": "v"}])["Cluster"]
    assert cluster["State"] == "CREATE_IN_PROGRESS" and cluster["CreateTimestamp"].year >= 2025
    described = cbor_client.describe_clusters(Filters={"clusterIds": [cluster["ClusterId"]]})["Clusters"]
    assert described[0]["TagList"] == [{"Key": "k", "Value": "v"}]
    with pytest.raises(ClientError) as info:
        cbor_client.create_hsm(ClusterId="cluster-abcdefghijk", AvailabilityZone="us-east-1a")
    assert info.value.response["Error"]["Code"] == "CloudHsmResourceNotFoundException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
