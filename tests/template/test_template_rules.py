"""Rules that template.yaml must keep, read from the YAML itself (no AWS, no SAM CLI needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from nanogrid.local_front import build_event
from nanogrid_protocol import limits

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
EVENTS_DIR = REPO_ROOT / "events"
INTRINSIC_TAGS = ("Ref", "GetAtt", "Sub", "If", "Equals", "Not", "And", "Or", "Select", "Split", "Join",
                  "FindInMap", "GetAZs", "Cidr", "Base64", "ImportValue", "Condition")


class CloudFormationLoader(yaml.SafeLoader):
    """SafeLoader that turns short-form intrinsics (!Ref X) into their long form ({"Ref": "X"})."""


def _intrinsic(tag: str):
    name = "Ref" if tag in ("Ref", "Condition") else f"Fn::{tag}"

    def construct(loader: yaml.SafeLoader, node: yaml.Node):
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name if tag != "Condition" else "Condition": value}

    return construct


for _tag in INTRINSIC_TAGS:
    CloudFormationLoader.add_constructor(f"!{_tag}", _intrinsic(_tag))


@pytest.fixture(scope="module")
def template() -> dict:
    return yaml.load(TEMPLATE_PATH.read_text(), Loader=CloudFormationLoader)


def resources_of_type(template: dict, resource_type: str) -> dict[str, dict]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == resource_type}


def all_ingress_rules(template: dict) -> list[tuple[str, dict]]:
    rules = []
    for name, resource in resources_of_type(template, "AWS::EC2::SecurityGroup").items():
        rules += [(name, rule) for rule in resource["Properties"].get("SecurityGroupIngress", [])]
    for name, resource in resources_of_type(template, "AWS::EC2::SecurityGroupIngress").items():
        rules.append((name, resource["Properties"]))
    return rules


def test_template_uses_sam_transform(template):
    assert template["Transform"] == "AWS::Serverless-2016-10-31"


def test_redis_ingress_only_from_two_groups(template):
    redis_group = template["Resources"]["RedisSecurityGroup"]
    rules = redis_group["Properties"]["SecurityGroupIngress"]
    sources = sorted(rule["SourceSecurityGroupId"]["Ref"] for rule in rules)
    ports = {(rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) for rule in rules}

    assert sources == ["ControllerSecurityGroup", "WorkerSecurityGroup"]
    assert ports == {("tcp", 6379, 6379)}
    assert all("CidrIp" not in rule and "CidrIpv6" not in rule for rule in rules)
    # No stand-alone ingress resource may open the Redis group to anything else.
    extra = [r for _, r in all_ingress_rules(template) if r.get("GroupId") == {"Ref": "RedisSecurityGroup"}]
    assert extra == []


def test_redis_uses_group_and_tls(template):
    redis = template["Resources"]["Redis"]["Properties"]

    assert redis["SecurityGroupIds"] == [{"Ref": "RedisSecurityGroup"}]
    assert redis["TransitEncryptionEnabled"] is True
    assert "{{resolve:secretsmanager:" in redis["AuthToken"]["Fn::Sub"]
    assert redis["CacheSubnetGroupName"] == {"Ref": "RedisSubnetGroup"}


def test_no_open_ingress_anywhere(template):
    open_rules = [
        (name, rule) for name, rule in all_ingress_rules(template)
        if rule.get("CidrIp") == "0.0.0.0/0" or rule.get("CidrIpv6") == "::/0"
    ]
    cidr_rules = [(name, rule) for name, rule in all_ingress_rules(template) if "CidrIp" in rule or "CidrIpv6" in rule]

    assert open_rules == []
    assert cidr_rules == []


def test_lambda_has_vpc_access(template):
    function = template["Resources"]["ControllerFunction"]["Properties"]

    assert "AWSLambdaVPCAccessExecutionRole" in function["Policies"]
    assert function["VpcConfig"]["SecurityGroupIds"] == [{"Ref": "ControllerSecurityGroup"}]
    assert "SubnetIds" in function["VpcConfig"]


def test_lambda_runtime_and_timeout(template):
    function = template["Resources"]["ControllerFunction"]["Properties"]

    assert template["Globals"]["Function"]["Runtime"] == "python3.11"
    assert function["CodeUri"] == "functions/controller/"
    assert function["Handler"] == "nanogrid_controller.app.lambda_handler"
    # API Gateway ends an HTTP API integration after 30 s.
    assert function["Timeout"] == 29
    assert function["Layers"] == [{"Ref": "ProtocolLayer"}]


def test_lambda_declares_every_setting(template):
    variables = template["Resources"]["ControllerFunction"]["Properties"]["Environment"]["Variables"]
    settings_source = (REPO_ROOT / "functions/controller/nanogrid_controller/settings.py").read_text()
    read_names = {line.split('"')[1] for line in settings_source.splitlines() if line.startswith("ENV_")}

    assert read_names - set(variables) == set()
    assert variables["NANOGRID_REDIS_URL"]["Fn::Sub"].startswith("rediss://:{{resolve:secretsmanager:")
    assert "POWERTOOLS_SERVICE_NAME" in variables


def test_protocol_layer_built_by_sam(template):
    layer = template["Resources"]["ProtocolLayer"]

    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Properties"]["ContentUri"] == "protocol/"
    assert layer["Metadata"]["BuildMethod"] == "python3.11"


def test_api_routes_match_controller(template):
    events = template["Resources"]["ControllerFunction"]["Properties"]["Events"].values()
    routes = {(e["Properties"]["Method"], e["Properties"]["Path"]) for e in events if e["Type"] == "HttpApi"}

    assert routes == {
        ("POST", "/run"), ("GET", "/runs/{requestId}"), ("PUT", "/functions/{functionId}"),
        ("GET", "/functions/{functionId}"), ("GET", "/functions"), ("GET", "/health"),
    }
    assert all(e["Properties"]["ApiId"] == {"Ref": "HttpApi"} for e in events)


def test_queue_has_dead_letter_queue(template):
    queue = template["Resources"]["JobQueue"]["Properties"]

    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["JobDeadLetterQueue", "Arn"]}
    assert queue["RedrivePolicy"]["maxReceiveCount"] == {"Ref": "MaxReceiveCount"}


def test_visibility_exceeds_function_timeout(template):
    parameter = template["Parameters"]["MaxFunctionTimeoutSeconds"]
    mapping = template["Mappings"]["VisibilityTimeouts"]
    queue = template["Resources"]["JobQueue"]["Properties"]

    assert queue["VisibilityTimeout"] == {"Fn::FindInMap": ["VisibilityTimeouts", {"Ref": "MaxFunctionTimeoutSeconds"}, "Seconds"]}
    for allowed in parameter["AllowedValues"]:
        assert mapping[str(allowed)]["Seconds"] > allowed, f"visibility timeout for {allowed} s functions"
        assert mapping[str(allowed)]["Seconds"] <= 43_200, "SQS caps the visibility timeout at 12 h"
    # The default must cover the longest timeout that the platform accepts for a function.
    assert parameter["Default"] * 1000 >= limits.MAX_FUNCTION_TIMEOUT_MS


def test_code_bucket_locked_down(template):
    bucket = template["Resources"]["CodeBucket"]["Properties"]
    block = bucket["PublicAccessBlockConfiguration"]

    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert block == {"BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
                     "RestrictPublicBuckets": True}


def test_vpc_endpoints_for_sqs_and_s3(template):
    endpoints = resources_of_type(template, "AWS::EC2::VPCEndpoint")
    by_service = {e["Properties"]["ServiceName"]["Fn::Sub"].rsplit(".", 1)[1]: e["Properties"] for e in endpoints.values()}

    assert by_service["sqs"]["VpcEndpointType"] == "Interface"
    assert by_service["sqs"]["PrivateDnsEnabled"] is True
    assert by_service["s3"]["VpcEndpointType"] == "Gateway"


def test_worker_role_scoped_to_stack(template):
    statements = template["Resources"]["WorkerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    resources = [s["Resource"] for s in statements]
    flattened = json.dumps(resources)

    assert "*" not in [r for r in resources if isinstance(r, str)]
    assert '"JobQueue"' in flattened
    assert "CodeBucket.Arn" in flattened
    assert '"WorkerLogGroup"' in flattened


def test_worker_scales_on_backlog_per_instance(template):
    policy = template["Resources"]["WorkerBacklogScaling"]["Properties"]
    metrics = policy["TargetTrackingConfiguration"]["CustomizedMetricSpecification"]["Metrics"]
    returned = [m for m in metrics if m.get("ReturnData")]

    assert policy["PolicyType"] == "TargetTrackingScaling"
    assert len(returned) == 1
    assert "backlog" in returned[0]["Expression"]
    assert "instances" in returned[0]["Expression"]


def test_worker_user_data_runs_agent(template):
    launch = template["Resources"]["WorkerLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    script = launch["UserData"]["Fn::Base64"]["Fn::Sub"][0]

    assert template["Parameters"]["WorkerImageId"]["Default"].startswith("/aws/service/ami-amazon-linux-latest/al2023")
    assert "dnf install -y docker" in script
    assert "systemctl enable --now nanogrid-worker" in script
    assert "NANOGRID_RUNTIME_IMAGES=${WorkerRuntimeImages}" in script
    assert template["Parameters"]["WorkerRuntimeImages"]["Default"] == "python3.11=python:3.11-slim"


def test_outputs_present(template):
    assert {"ApiUrl", "JobQueueUrl", "RedisEndpoint"} <= set(template["Outputs"])


@pytest.mark.parametrize("name", ["run", "run-async", "get-run", "register-function", "health", "health-deep", "bad-request"])
def test_event_matches_local_front(name):
    event = json.loads((EVENTS_DIR / f"{name}.json").read_text())
    reference = build_event("GET", "/health?x=1", {"host": "h"}, b"{}", "127.0.0.1")

    assert set(reference) - {"queryStringParameters", "body"} <= set(event)
    assert set(reference["requestContext"]) <= set(event["requestContext"])
    assert set(reference["requestContext"]["http"]) == set(event["requestContext"]["http"])
    assert event["version"] == "2.0"
    assert event["requestContext"]["http"]["path"] == event["rawPath"]
