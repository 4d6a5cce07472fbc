"""`coldchain aws cost` with the packaged data files: the prices' dates and sources, the
$1.00-a-million target, the command's output and errors, and the Terraform the model assumes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import click
import hcl2
import pytest
from click.testing import CliRunner

from coldchain.adapters.dynamodb import FLEET_INDEX
from coldchain.apps.cli import aws_cost
from coldchain.apps.cli.aws_cost import cost
from coldchain.cost.data import MEASURED_FILE, PRICES_FILE, data_path, load_measured, load_prices
from coldchain.cost.inputs import CostInputError
from coldchain.cost.model import bill, cheapest
from coldchain.cost.scenario import (
    DEFAULT_MAX_DELAY_S,
    PRICE_KEYS,
    Capacity,
    Deployment,
    FleetIndex,
    Mode,
    Scenario,
    TableClass,
)

TERRAFORM = Path(__file__).resolve().parents[2] / "terraform"
TARGET = 1.00  # dollars per million readings, all in (issue 15)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cost, list(args))
    return result.exit_code, result.output


# ---------------------------------------------------------------------------------------------
# The data files
# ---------------------------------------------------------------------------------------------
def test_every_price_has_its_unit_date_and_source() -> None:
    document = json.loads(data_path(PRICES_FILE).read_text())
    date.fromisoformat(document["date"])
    assert document["region"] == "us-east-1"
    for key, price in document["prices"].items():
        assert price["usd"] >= 0, key
        assert price["per"] > 0, key
        assert price["unit"].strip(), key
        date.fromisoformat(price["date"])
        assert len(price["source"]) > 15, key  # a page or a section of aws-facts.md
        assert isinstance(price["verified"], bool), key
    assert set(document["prices"]) >= PRICE_KEYS
    prices = load_prices()
    # Both capacity modes and both table classes, for writes and storage.
    for table_class in ("standard", "ia"):
        for kind in ("on_demand_write", "provisioned_wcu_hour", "storage"):
            assert f"dynamodb_{kind}_{table_class}" in prices.items


def test_the_measured_figures_say_when_how_and_by_what_command() -> None:
    measured = load_measured()
    date.fromisoformat(measured.date)
    assert measured.command == "python -m benchmarks.aws_cost_inputs"
    assert "moto" in measured.method
    assert "moto timing is not Lambda timing" in measured.method
    # The per-reading log line echoes no payload and stays small.
    line = json.loads(measured.reading_log_line)
    assert line["event_type"] == "READING"
    assert not {"coldchain_payload_b64", "payload", "readings"} & set(line)
    assert measured.reading_log_bytes < 400
    # A reading's item is under 1 KB: one write unit.
    assert measured.telemetry_item_bytes < 1024


def test_the_model_imports_no_sdk_and_no_cli() -> None:
    code = (
        "import sys, coldchain.cost.model, coldchain.cost.data; "
        "print(sorted(m for m in ('boto3', 'botocore', 'click', 'aws_lambda_powertools') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_broken_data_file_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"prices": {"lambda_requests": {"usd": 0.2, "per": 1}}}))
    with pytest.raises(CostInputError, match="lambda_requests"):
        load_prices(path)
    with pytest.raises(CostInputError):
        load_measured(tmp_path / "missing.json")


# ---------------------------------------------------------------------------------------------
# The target
# ---------------------------------------------------------------------------------------------
def test_the_cheapest_documented_mode_is_at_most_a_dollar_a_million_readings() -> None:
    """1,000 devices every 10 s, uploads at most 150 s apart: the model's choice, with the
    fleet index dropped (or sparse), is under $1.00 a million readings all in."""
    prices, measured = load_prices(), load_measured()
    best = cheapest(Scenario(1000, 10, fleet_index=FleetIndex.NONE), prices, measured)
    assert best.per_million <= TARGET, [(x.name, round(x.per_million, 3)) for x in best.lines]
    assert best.scenario.upload_delay_s <= DEFAULT_MAX_DELAY_S
    # What the documented command prints is that bill.
    code, out = run(*aws_cost.command_line(best).split()[3:], "--format", "json")
    assert code == 0, out
    assert json.loads(out)["per_million_readings_usd"] == pytest.approx(best.per_million, abs=1e-4)


def test_the_fleet_index_is_what_keeps_the_deployed_index_above_the_target() -> None:
    """As deployed (every reading copied into the fleet index), the same choice costs its
    index lines more; the table names them."""
    prices, measured = load_prices(), load_measured()
    lean = cheapest(Scenario(1000, 10, fleet_index=FleetIndex.NONE), prices, measured)
    indexed = bill(
        Scenario(1000, 10, lean.scenario.mode, lean.scenario.batch, FleetIndex.ALL),
        prices,
        measured,
    )
    index_lines = [line for line in indexed.lines if "fleet index" in line.name]
    assert {line.name for line in index_lines} == {
        "DynamoDB writes: fleet index",
        "DynamoDB storage: fleet index (90 d)",
    }
    index_cost = sum(line.per_million for line in index_lines)
    others = indexed.per_million - lean.per_million - index_cost  # its read minimum, alarms
    assert 0 <= others < 0.02
    assert indexed.per_million > lean.per_million


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------
def test_the_table_prints_each_line_the_total_and_what_is_measured() -> None:
    code, out = run("--devices", "1000", "--interval", "10", "--mode", "lambda", "--batch", "1")
    assert code == 0, out
    for name in (
        "IoT messaging",
        "IoT rules triggered",
        "IoT rule actions",
        "Lambda requests",
        "Lambda compute",
        "DynamoDB writes: readings",
        "DynamoDB writes: fleet index",
        "DynamoDB storage: readings (90 d)",
        "DynamoDB PITR: readings",
        "CloudWatch Logs ingestion",
        "CloudWatch metrics",
        "CloudWatch alarms",
        "CloudWatch dashboard",
        "X-Ray traces",
        "SQS (dead letters)",
        "TOTAL",
    ):
        assert name in out, name
    assert "measured on moto" in out
    assert "moto timing is not Lambda timing" in out
    assert "No free tier" in out
    assert re.search(r"per-reading log line is \d+ B", out)


def test_json_lines_add_up_and_name_their_prices() -> None:
    code, out = run("--mode", "kinesis", "--batch", "10", "--format", "json")
    assert code == 0, out
    document: dict[str, Any] = json.loads(out)
    lines = document["lines"]
    assert sum(line["monthly_usd"] for line in lines) == pytest.approx(
        document["monthly_usd"], abs=0.01
    )
    assert {line["price"] for line in lines} <= PRICE_KEYS
    assert any(line["name"].startswith("Kinesis") for line in lines)
    assert document["command"].startswith("coldchain aws cost --devices 1000 --interval 10s")


def test_intervals_in_seconds_or_with_a_unit() -> None:
    outputs = [json.loads(run("--interval", i, "--format", "json")[1]) for i in ("60", "1m")]
    assert outputs[0]["per_million_readings_usd"] == outputs[1]["per_million_readings_usd"]
    assert outputs[0]["scenario"]["interval_s"] == 60


def test_explicit_storage_choices_are_kept() -> None:
    code, out = run("--capacity", "on-demand", "--table-class", "standard", "--format", "json")
    assert code == 0, out
    scenario = json.loads(out)["scenario"]
    assert (scenario["capacity"], scenario["table_class"]) == (
        Capacity.ON_DEMAND,
        TableClass.STANDARD,
    )


def test_cheapest_searches_modes_and_batches() -> None:
    code, out = run("--cheapest", "--fleet-index", "none", "--format", "json")
    assert code == 0, out
    document = json.loads(out)
    assert document["per_million_readings_usd"] <= TARGET
    assert document["scenario"]["batch"] * 10 <= DEFAULT_MAX_DELAY_S


@pytest.mark.parametrize(
    "args",
    [
        ["--batch", "0"],
        ["--batch", "101"],
        ["--devices", "0"],
        ["--interval", "0"],
        ["--interval", "-5s"],
        ["--interval", "soon"],
        ["--mode", "pigeon"],
        ["--fleet-index", "half"],
    ],
)
def test_bad_arguments_are_one_line_usage_errors(args: list[str]) -> None:
    with pytest.raises(click.UsageError) as raised:
        cost.main(args, standalone_mode=False)
    message = raised.value.format_message()
    assert "\n" not in message
    assert run(*args)[0] == 2


def test_missing_data_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise CostInputError(f"{MEASURED_FILE}: no such file")

    monkeypatch.setattr(aws_cost, "load_measured", broken)
    with pytest.raises(click.ClickException) as raised:
        cost.main([], standalone_mode=False)
    assert raised.value.format_message() == f"cost model data: {MEASURED_FILE}: no such file"


# ---------------------------------------------------------------------------------------------
# What the model assumes about terraform/
# ---------------------------------------------------------------------------------------------
def _parsed() -> dict[str, dict[str, Any]]:
    return {path.name: hcl2.loads(path.read_text()) for path in sorted(TERRAFORM.glob("*.tf"))}


def _unquote(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _blocks(kind: str) -> dict[str, dict[str, Any]]:
    """Variables, or resources of one type, by name, across the module."""
    found: dict[str, dict[str, Any]] = {}
    for document in _parsed().values():
        if kind == "variable":
            for block in document.get("variable", []):
                found.update({_unquote(k): v for k, v in block.items()})
            continue
        for block in document.get("resource", []):
            for resource_type, named in block.items():
                if _unquote(resource_type) == kind:
                    found.update({_unquote(name): body for name, body in named.items()})
    return found


def _locals() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for document in _parsed().values():
        for block in document.get("locals", []):
            merged.update(block)
    return merged


def test_the_deployment_the_model_assumes_is_terraform_s() -> None:
    variables = _blocks("variable")
    deployment = Deployment()
    assert variables["lambda_memory_mb"]["default"] == deployment.memory_mb
    assert variables["telemetry_ttl_days"]["default"] == deployment.ttl_days
    assert variables["log_retention_days"]["default"] == deployment.log_retention_days
    assert variables["kinesis_retention_hours"]["default"] == deployment.kinesis_retention_hours
    assert variables["readings_target_utilisation"]["default"] == round(
        100 * deployment.target_utilisation
    )
    assert variables["readings_write_capacity"]["default"]["min"] == deployment.min_write_capacity
    assert variables["readings_read_capacity"]["default"]["min"] == deployment.min_read_capacity
    mapping = _blocks("aws_lambda_event_source_mapping")["kinesis"]
    assert mapping["batch_size"] == deployment.kinesis_batch_size
    assert mapping["maximum_batching_window_in_seconds"] == deployment.kinesis_window_s
    assert mapping["parallelization_factor"] == deployment.kinesis_parallelization
    assert len(_blocks("aws_cloudwatch_dashboard")) == deployment.dashboards
    assert len(_blocks("aws_kms_key")) == deployment.kms_keys


def test_the_alarms_and_metrics_the_model_counts_are_the_deployed_ones() -> None:
    from coldchain.apps.lambda_handler import METRIC_NAMES

    deployment = Deployment()
    assert len(METRIC_NAMES) == deployment.custom_metrics
    always = kinesis_only = 0
    for alarm in _blocks("aws_cloudwatch_metric_alarm").values():
        if "for_each" in alarm:
            name = re.fullmatch(r"\$\{local\.(\w+)\}", alarm["for_each"])
            assert name is not None
            always += len(_locals()[name.group(1)])
        elif "kinesis_enabled" in str(alarm.get("count", "")):
            kinesis_only += 1
        else:
            always += 1
    assert (always, kinesis_only) == (deployment.alarms, deployment.kinesis_alarms)


def test_the_readings_table_takes_the_model_s_capacity_mode_and_class() -> None:
    variables = _blocks("variable")
    telemetry = _blocks("aws_dynamodb_table")["telemetry"]
    assert telemetry["billing_mode"] == "${var.readings_billing_mode}"
    assert telemetry["table_class"] == "${var.readings_table_class}"
    assert _unquote(variables["readings_billing_mode"]["default"]) == "PAY_PER_REQUEST"
    validation = str(variables["readings_billing_mode"]["validation"])
    assert "PAY_PER_REQUEST" in validation
    assert "PROVISIONED" in validation  # the two of Capacity
    classes = {
        TableClass.STANDARD: "STANDARD",
        TableClass.STANDARD_IA: "STANDARD_INFREQUENT_ACCESS",
    }
    assert all(
        value in str(variables["readings_table_class"]["validation"]) for value in classes.values()
    )
    # Autoscaling covers the table and each of its indexes, writes and reads; the model counts
    # two alarms for each of those policies.
    # The fleet index is a dynamic block (var.fleet_index): autoscaling follows the same switch.
    dynamic = {_unquote(k): v for block in telemetry["dynamic"] for k, v in block.items()}
    gsi = dynamic["global_secondary_index"]
    assert FLEET_INDEX in gsi["for_each"]
    assert "var.fleet_index" in gsi["for_each"]
    assert _locals()["readings_indexes"] == gsi["for_each"]
    for index in gsi["content"]:
        assert "readings_provisioned" in index["write_capacity"]
    provisioned = bill(
        Scenario(
            1000, 10, Mode.LAMBDA, capacity=Capacity.PROVISIONED, table_class=TableClass.STANDARD
        ),
        load_prices(),
        load_measured(),
    )
    on_demand = bill(
        Scenario(
            1000, 10, Mode.LAMBDA, capacity=Capacity.ON_DEMAND, table_class=TableClass.STANDARD
        ),
        load_prices(),
        load_measured(),
    )
    alarms = [b.line("CloudWatch alarms") for b in (provisioned, on_demand)]
    assert alarms[0] is not None
    assert alarms[1] is not None
    policies = 2 * (1 + len(gsi["content"]))  # (table + indexes) x (write, read)
    assert alarms[0].quantity - alarms[1].quantity == 2 * policies
    assert "ignore_changes" in str(telemetry["lifecycle"])  # autoscaling owns the capacity
