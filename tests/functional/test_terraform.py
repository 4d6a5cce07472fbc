"""Terraform, checked statically: it parses, checkov passes, and it agrees with the code."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest

from coldchain import config
from coldchain.adapters import dynamodb, dynamodb_audit, iot_provisioning, iot_rule_output
from coldchain.apps import lambda_handler
from coldchain.config import profile_from_text
from coldchain.core.alarm_profile import default_profile, profile_mapping
from coldchain.core.topics import TELEMETRY_FILTER, aws_device_topics, telemetry_topic

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"


def unquote(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


@cache
def parsed() -> dict[str, dict[str, Any]]:
    return {path.name: hcl2.loads(path.read_text()) for path in sorted(TERRAFORM.glob("*.tf"))}


def resources(kind: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for document in parsed().values():
        for block in document.get("resource", []):
            for resource_type, named in block.items():
                if unquote(resource_type) == kind:
                    found.update({unquote(name): body for name, body in named.items()})
    return found


def tf_locals() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for document in parsed().values():
        for block in document.get("locals", []):
            merged.update({key: unquote(value) for key, value in block.items()})
    return merged


def test_every_file_parses() -> None:
    assert set(parsed()) >= {
        "versions.tf",
        "variables.tf",
        "outputs.tf",
        "iot.tf",
        "lambda.tf",
        "storage.tf",
        "observability.tf",
        "iam.tf",
    }


def test_every_variable_has_a_description_and_a_type() -> None:
    for block in parsed()["variables.tf"]["variable"]:
        for name, body in block.items():
            assert "description" in body, name
            assert "type" in body, name


def checkov() -> str:
    candidates = [
        os.environ.get("CHECKOV", ""),
        str(ROOT / ".venv" / "checkov" / "bin" / "checkov"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    pytest.fail("checkov is not installed: `make test` installs it into .venv/checkov")


def test_checkov_finds_nothing_but_reasoned_skips() -> None:
    done = subprocess.run(
        [
            checkov(),
            "-d",
            str(TERRAFORM),
            "--framework",
            "terraform",
            "--output",
            "json",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(done.stdout)
    summary = report["summary"]
    failed = [f"{c['check_id']} {c['resource']}" for c in report["results"]["failed_checks"]]
    assert summary["failed"] == 0, failed
    assert summary["passed"] > 50
    assert summary["parsing_errors"] == 0
    for skipped in report["results"]["skipped_checks"]:
        reason = skipped["check_result"]["suppress_comment"]
        assert len(reason) > 20, skipped["check_id"]  # a written reason


def test_rule_sql_is_the_one_the_handler_expects() -> None:
    local = tf_locals()
    assert local["telemetry_filter"] == TELEMETRY_FILTER
    assert local["payload_field"] == iot_rule_output.PAYLOAD_FIELD
    assert local["topic_field"] == iot_rule_output.TOPIC_FIELD
    assert local["received_at_field"] == iot_rule_output.RECEIVED_AT_FIELD
    sql = re.sub(r"\$\{local\.(\w+)\}", lambda m: str(local[m.group(1)]), local["rule_sql"])
    assert sql == iot_rule_output.RULE_SQL
    rule = resources("aws_iot_topic_rule")["telemetry"]
    assert rule["sql"] == "${local.rule_sql}"


def topic_matches(topic_filter: str, topic: str) -> bool:
    pattern = "^" + re.escape(topic_filter).replace(r"\+", "[^/]+").replace("\\#", ".*") + "$"
    return re.match(pattern, topic) is not None


def test_simulator_topic_rule_filter_and_policy_agree() -> None:
    assert topic_matches(tf_locals()["telemetry_filter"], telemetry_topic("reefer-0001"))
    policy = (TERRAFORM / "iot.tf").read_text()
    assert "${local.iot_arn}:client/${local.thing}" in policy
    assert '"iot:Connection.Thing.IsAttached" = "true"' in policy
    assert tf_locals()["thing"] == "$${iot:Connection.Thing.ThingName}"


def test_the_device_policy_is_the_code_s_list_of_topics() -> None:
    """Publish, subscribe and receive: exactly aws_device_topics, nothing wider."""
    expected = aws_device_topics("${local.thing}", "${local.rule_name}")
    assert [unquote(t) for t in tf_locals()["device_publish"]] == expected["publish"]
    assert [unquote(t) for t in tf_locals()["device_subscribe"]] == expected["subscribe"]
    policy = (TERRAFORM / "iot.tf").read_text()
    for action, names, kind in (
        ("iot:Publish", "device_publish", "topic"),
        ("iot:Subscribe", "device_subscribe", "topicfilter"),
        ("iot:Receive", "device_subscribe", "topic"),
    ):
        statement = re.search(rf'Action += "{action}"\n\s+Resource += (.+)', policy)
        assert statement is not None, action
        assert statement.group(1) == (
            f'[for topic in local.{names} : "${{local.iot_arn}}:{kind}/${{topic}}"]'
        )
    assert "iot:*" not in policy
    # Another device's topics match none of them (the policy variable is the only device).
    for topics in expected.values():
        assert all("${local.thing}" in t for t in topics)


def test_the_firmware_bucket_is_private_versioned_and_encrypted() -> None:
    assert (
        resources("aws_s3_bucket_versioning")["firmware"]["versioning_configuration"][0]["status"]
        == '"Enabled"'
    )
    block = resources("aws_s3_bucket_public_access_block")["firmware"]
    assert all(
        block[k] is True
        for k in (
            "block_public_acls",
            "block_public_policy",
            "ignore_public_acls",
            "restrict_public_buckets",
        )
    )
    rule = resources("aws_s3_bucket_server_side_encryption_configuration")["firmware"]["rule"][0]
    assert unquote(rule["apply_server_side_encryption_by_default"][0]["sse_algorithm"]) == "aws:kms"
    presign = (TERRAFORM / "firmware.tf").read_text()
    assert '"s3:GetObject"' in presign
    assert "iot.amazonaws.com" in presign


def test_handlers_exist_in_the_built_zip(tmp_path: Path) -> None:
    zip_path = ROOT / "dist" / "lambda.zip"
    subprocess.run(
        [str(ROOT / "scripts" / "build-lambda")],
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
    )
    handlers = {unquote(body["handler"]) for body in resources("aws_lambda_function").values()}
    assert handlers == {
        "coldchain.apps.lambda_handler.iot_rule_handler",
        "coldchain.apps.lambda_handler.kinesis_handler",
        "coldchain.apps.lambda_handler.sweep_handler",
    }
    with zipfile.ZipFile(zip_path) as archive:
        names = set(archive.namelist())
    assert "coldchain/apps/lambda_handler.py" in names
    assert not any(name.startswith(("paho/", "boto3/", "pydantic/")) for name in names)
    assert zip_path.stat().st_size < 200_000
    # Import the handlers from the zip alone (plus what the runtime and layer provide).
    code = (
        f"import sys; sys.path.insert(0, {str(zip_path)!r});"
        "import coldchain.apps.lambda_handler as h;"
        "assert h.__file__.startswith(" + repr(str(zip_path)) + ");"
        "print(callable(h.iot_rule_handler) and callable(h.kinesis_handler)"
        " and callable(h.sweep_handler))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "AWS_DEFAULT_REGION": "eu-west-1"},
    )
    assert done.stdout.strip() == "True", done.stderr


def test_environment_names_are_the_ones_the_code_reads() -> None:
    environment = tf_locals()["processor_environment"]
    names = set(environment)
    coldchain_names = {n for n in names if n.startswith("COLDCHAIN_")}
    assert coldchain_names == {
        config.ENV_TELEMETRY_TABLE,
        config.ENV_DEVICES_TABLE,
        config.ENV_EVENTS_TABLE,
        config.ENV_DLQ_URL,
        config.ENV_ALARMS_TABLE,
        config.ENV_ALARM_TOPIC_ARN,
        config.ENV_TTL_DAYS,
        config.ENV_ALARM_PROFILE,
    }
    assert unquote(environment["POWERTOOLS_SERVICE_NAME"]) == "${local.service_name}"
    assert tf_locals()["service_name"] == lambda_handler.SERVICE
    assert tf_locals()["metrics_namespace"] == lambda_handler.NAMESPACE


def test_table_keys_are_the_adapter_keys() -> None:
    tables = resources("aws_dynamodb_table")
    telemetry, devices, events = tables["telemetry"], tables["devices"], tables["events"]
    alarms = tables["alarms"]
    assert unquote(alarms["hash_key"]) == dynamodb.ALARMS_PK
    assert unquote(alarms["global_secondary_index"][0]["name"]) == dynamodb.ALARMS_DEVICE_INDEX
    active = alarms["global_secondary_index"][1]
    assert unquote(active["name"]) == dynamodb.ALARMS_ACTIVE_INDEX
    assert unquote(active["hash_key"]) == dynamodb.ALARMS_ACTIVE_KEY  # sparse: active only
    assert unquote(telemetry["hash_key"]) == dynamodb.TELEMETRY_PK
    assert unquote(telemetry["range_key"]) == dynamodb.TELEMETRY_SK
    assert unquote(telemetry["ttl"][0]["attribute_name"]) == dynamodb.TTL_ATTRIBUTE
    # The fleet index is optional (var.fleet_index, kept by default): a dynamic block.
    dynamic = {unquote(k): v for block in telemetry["dynamic"] for k, v in block.items()}
    gsi = dynamic["global_secondary_index"]
    assert gsi["for_each"] == '${var.fleet_index ? ["%s"] : []}' % dynamodb.FLEET_INDEX  # noqa: UP031
    [index] = gsi["content"]
    assert unquote(index["hash_key"]) == dynamodb.FLEET_INDEX_PK
    assert unquote(index["range_key"]) == dynamodb.TELEMETRY_SK
    assert unquote(devices["hash_key"]) == dynamodb.DEVICES_PK
    assert unquote(events["hash_key"]) == dynamodb.EVENTS_PK
    assert unquote(events["range_key"]) == dynamodb.EVENTS_SK
    audit = tables["audit"]
    assert (unquote(audit["hash_key"]), unquote(audit["range_key"])) == (
        dynamodb_audit.AUDIT_PK,
        dynamodb_audit.AUDIT_SK,
    )
    indexes = {unquote(i["name"]): i for i in audit["global_secondary_index"]}
    assert set(indexes) == {dynamodb_audit.AUDIT_KIND_INDEX, dynamodb_audit.AUDIT_TIME_INDEX}
    kind, log = indexes[dynamodb_audit.AUDIT_KIND_INDEX], indexes[dynamodb_audit.AUDIT_TIME_INDEX]
    assert (unquote(kind["hash_key"]), unquote(kind["range_key"])) == (
        dynamodb_audit.AUDIT_KIND,
        dynamodb_audit.AUDIT_PK,
    )
    assert (unquote(log["hash_key"]), unquote(log["range_key"])) == (
        dynamodb_audit.AUDIT_LOG,
        dynamodb_audit.AUDIT_AT,
    )
    assert "ttl" not in audit  # audit records are never expired by the store
    for table in tables.values():
        assert table["point_in_time_recovery"][0]["enabled"] is True
        # (The readings table's mode is a variable, on demand by default: capacity.tf.)
        mode = table["billing_mode"]
        variable = table is telemetry and mode == "${var.readings_billing_mode}"
        assert variable or unquote(mode) == "PAY_PER_REQUEST"
        declared = {unquote(a["name"]) for a in table["attribute"]}
        assert dynamodb.TTL_ATTRIBUTE not in declared  # only key attributes are declared
    # Readings and cleared alarms expire; the alarm adapter writes the same attribute.
    assert unquote(alarms["ttl"][0]["attribute_name"]) == dynamodb.TTL_ATTRIBUTE


def test_alarm_and_dashboard_metrics_are_emitted_by_the_code() -> None:
    alarms = resources("aws_cloudwatch_metric_alarm")
    local = tf_locals()
    ours = [
        body
        for body in alarms.values()
        if unquote(body["namespace"]) == "${local.metrics_namespace}"
    ]
    assert ours
    event_alarms = local["event_alarms"]
    metric_names = {unquote(v["metric"]) for v in event_alarms.values()}
    metric_names |= {unquote(b["metric_name"]) for b in ours if "each" not in str(b["metric_name"])}
    assert metric_names <= lambda_handler.METRIC_NAMES
    assert "ReadingsStored" in metric_names
    assert local["service_dimension"] == {"service": "${local.service_name}"}
    dashboard = (TERRAFORM / "observability.tf").read_text()
    widget_metrics = set(re.findall(r'\[local\.metrics_namespace, "(\w+)"\]', dashboard))
    assert widget_metrics
    assert widget_metrics <= lambda_handler.METRIC_NAMES


def test_missing_data_is_treated_as_each_alarm_means() -> None:
    alarms = resources("aws_cloudwatch_metric_alarm")
    for name in ("ingest_stopped", "sweeper_heartbeat"):
        assert unquote(alarms[name]["treat_missing_data"]) == "breaching"
    for name in ("event", "processor_errors", "dlq_depth", "sweeper_errors", "silent_devices"):
        assert unquote(alarms[name]["treat_missing_data"]) == "notBreaching"


def test_retries_and_destinations_are_finite() -> None:
    invoke = resources("aws_lambda_function_event_invoke_config")["processor"]
    assert invoke["maximum_retry_attempts"] == 2
    assert (
        "aws_sqs_queue.dlq.arn" in invoke["destination_config"][0]["on_failure"][0]["destination"]
    )
    mapping = resources("aws_lambda_event_source_mapping")["kinesis"]
    assert 0 <= mapping["maximum_retry_attempts"] <= 10
    assert unquote(mapping["function_response_types"][0]) == "ReportBatchItemFailures"
    permission = resources("aws_lambda_permission")["iot"]
    assert "aws_iot_topic_rule.telemetry.arn" in permission["source_arn"]


def test_the_processor_role_allows_every_dynamodb_call_the_adapter_makes() -> None:
    source = (ROOT / "src" / "coldchain" / "adapters" / "dynamodb.py").read_text()
    calls = set(re.findall(r"self\._client\.([a-z_]+)\(", source))
    actions = set(
        re.findall(r'"dynamodb:([A-Za-z]+)"', (ROOT / "terraform" / "iam.tf").read_text())
    )
    needed = {"".join(part.title() for part in call.split("_")) for call in calls}
    assert needed <= actions, f"missing in iam.tf: {sorted(needed - actions)}"


def test_the_profile_terraform_deploys_is_the_built_in_one_and_gives_the_band() -> None:
    """The band is written once, in the profile: Terraform reads the exported profile (the
    Lambda's rules and the dashboard's band lines) instead of variables of its own."""
    exported = json.loads((TERRAFORM / "alarm-profile.json").read_text())
    profile = default_profile()
    assert exported == {**profile_mapping(profile), "band": list(profile.band)}
    assert profile_from_text(json.dumps(exported), "alarm-profile.json") == profile
    lambda_tf = (TERRAFORM / "lambda.tf").read_text()
    assert "COLDCHAIN_ALARM_PROFILE      = jsonencode(local.alarm_profile)" in lambda_tf
    assert "local.alarm_band" in (TERRAFORM / "observability.tf").read_text()
    variables = (TERRAFORM / "variables.tf").read_text()
    assert "temperature_high_c" not in variables
    assert "temperature_low_c" not in variables


def variables() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for document in parsed().values():
        for block in document.get("variable", []):
            found.update({unquote(name): body for name, body in block.items()})
    return found


def test_no_reserved_concurrency_is_written_in_by_default() -> None:
    """Reserving concurrency fails on accounts with a small quota (new ones often have 10):
    each function's reservation is a variable, unset by default."""
    for name, function in resources("aws_lambda_function").items():
        value = function.get("reserved_concurrent_executions")
        assert isinstance(value, str), (name, value)
        assert value.startswith("${var."), (name, value)
        assert value.endswith("_concurrency}"), (name, value)
        assert variables()[value[6:-1]]["default"] is None, name


def test_alarms_and_widgets_follow_the_ingest_mode() -> None:
    """In kinesis mode the Kinesis processor is watched, not the idle IoT-rule one."""
    active = tf_locals()["active_processor"]
    assert "local.kinesis_enabled" in active
    assert "aws_lambda_function.kinesis[0].function_name" in active
    observability = (TERRAFORM / "observability.tf").read_text()
    assert observability.count("aws_lambda_function.processor") == 1  # in the local only
    alarms = resources("aws_cloudwatch_metric_alarm")
    errors = alarms["processor_errors"]["dimensions"]
    assert errors == {"FunctionName": "${local.active_processor}"}
    age = alarms["iterator_age"]
    assert unquote(age["metric_name"]) == "IteratorAge"
    assert age["count"] == "${local.kinesis_enabled ? 1 : 0}"
    assert age["dimensions"] == {"FunctionName": "${local.active_processor}"}
    assert '"IteratorAge", "FunctionName", local.active_processor' in observability


def test_the_sweeper_is_watched_its_errors_its_absence_and_the_silent_devices() -> None:
    alarms = resources("aws_cloudwatch_metric_alarm")
    sweeper = {"FunctionName": "${aws_lambda_function.sweeper.function_name}"}
    assert alarms["sweeper_errors"]["dimensions"] == sweeper
    assert unquote(alarms["sweeper_errors"]["metric_name"]) == "Errors"
    assert alarms["sweeper_heartbeat"]["dimensions"] == sweeper
    assert unquote(alarms["sweeper_heartbeat"]["metric_name"]) == "Invocations"
    silent = alarms["silent_devices"]
    assert unquote(silent["metric_name"]) == lambda_handler.SILENT_DEVICES_METRIC
    assert "dimensions" in silent  # the service dimension only: one metric for the fleet


def test_the_key_lets_cloudwatch_in_only_for_this_account() -> None:
    kms = (TERRAFORM / "kms.tf").read_text()
    alarms = kms[kms.index('sid       = "AlarmsPublishToTopic"') :]
    assert '"cloudwatch.amazonaws.com"' in alarms
    assert 'variable = "aws:SourceAccount"' in alarms
    assert "values   = [local.account_id]" in alarms


def test_terraform_devices_get_the_registry_shape_provisioning_gives() -> None:
    """Thing type, searchable attributes and the fleet/firmware groups jobs target are the
    ones `coldchain aws provision` makes (adapters/iot_provisioning.py)."""
    sensor = resources("aws_iot_thing_type")["sensor"]
    assert unquote(sensor["name"]) == "${var.name_prefix}-logger"
    assert iot_provisioning.DEFAULT_THING_TYPE == "coldchain-logger"  # name_prefix's default
    searchable = [unquote(a) for a in sensor["properties"][0]["searchable_attributes"]]
    assert searchable == iot_provisioning.SEARCHABLE
    thing = resources("aws_iot_thing")["device"]
    assert set(thing["attributes"]) == set(iot_provisioning.Registry("t", "f", "v").attributes())
    source = (TERRAFORM / "iot.tf").read_text()
    for kind in ("fleet", "firmware"):
        assert f'"{kind}-${{replace(' in source
        assert '"/[^A-Za-z0-9:_-]/", "_")' in source
        assert iot_provisioning.group_name(kind, "2.1.4") == f"{kind}-2_1_4"
