"""The Terraform CI: state in S3 (given at init, locked S3-natively), and a workflow that
checks fmt, validate and tflint and posts the plan against that state on the pull request."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"
WORKFLOW = ROOT / ".github" / "workflows" / "terraform.yml"
MARKER = "<!-- coldchain-terraform-plan -->"
COMMENT_LIMIT = 65536  # GitHub's maximum comment body, in characters


def unquote(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def backends() -> list[tuple[str, str, dict[str, Any]]]:
    """Every backend declared in the module, as (file, type, settings)."""
    found = []
    for path in sorted(TERRAFORM.glob("*.tf")):
        for block in hcl2.loads(path.read_text()).get("terraform", []):
            for backend in block.get("backend", []):
                for kind, body in backend.items():
                    if kind != "__is_block__":
                        found.append((path.name, unquote(kind), body))
    return found


def test_the_state_backend_is_s3_partial_and_locked() -> None:
    [(_, kind, settings)] = backends()  # only one block may declare a backend
    assert kind == "s3"
    for per_deployment in ("bucket", "key", "region", "profile", "role_arn"):
        assert per_deployment not in settings, f"{per_deployment} is given at init"
    assert settings.get("use_lockfile") is True  # S3-native locking
    assert "dynamodb_table" not in settings  # the deprecated lock table


def test_terraform_is_new_enough_for_s3_native_locking() -> None:
    versions = hcl2.loads((TERRAFORM / "versions.tf").read_text())
    [block] = versions["terraform"]
    minimum = re.fullmatch(r">=\s*1\.(\d+)(?:\.\d+)?", unquote(block["required_version"]))
    assert minimum is not None
    assert int(minimum.group(1)) >= 10


def test_the_backend_example_has_every_setting_and_the_real_file_is_ignored() -> None:
    example = hcl2.loads((TERRAFORM / "backend.hcl.example").read_text())
    assert {"bucket", "key", "region"} <= set(example)
    assert example["use_lockfile"] is True
    assert example["encrypt"] is True
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "terraform/backend.hcl" in ignored
    assert not any(line.startswith("terraform/backend.hcl.") for line in ignored)


def test_tflint_runs_the_recommended_preset_and_a_pinned_aws_ruleset() -> None:
    config = hcl2.loads((TERRAFORM / ".tflint.hcl").read_text())
    plugins = {
        unquote(name): body
        for block in config["plugin"]
        for name, body in block.items()
        if name != "__is_block__"
    }
    assert plugins["terraform"]["enabled"] is True
    assert unquote(plugins["terraform"]["preset"]) == "recommended"
    aws = plugins["aws"]
    assert aws["enabled"] is True
    assert unquote(aws["source"]) == "github.com/terraform-linters/tflint-ruleset-aws"
    assert re.fullmatch(r"\d+\.\d+\.\d+", unquote(aws["version"]))


# The workflow.


@cache
def workflow() -> dict[Any, Any]:
    loaded = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(loaded, dict)
    return loaded


def steps(job: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = workflow()["jobs"][job]["steps"]
    return found


def all_steps() -> list[tuple[str, int, dict[str, Any]]]:
    return [(job, i, step) for job in workflow()["jobs"] for i, step in enumerate(steps(job))]


def step_running(command: str, job: str | None = None) -> tuple[str, int, dict[str, Any]]:
    """The first step whose script runs `command` (at the start of a line or after `&&`)."""
    pattern = re.compile(rf"(^|&&)\s*{re.escape(command)}(\s|$)", re.MULTILINE)
    for found in all_steps():
        if (job is None or found[0] == job) and pattern.search(found[2].get("run", "")):
            return found
    pytest.fail(f"no step runs {command!r}")


def step_using(action: str) -> tuple[str, int, dict[str, Any]]:
    for found in all_steps():
        if found[2].get("uses", "").startswith(action + "@"):
            return found
    pytest.fail(f"no step uses {action}")


def resolve(value: str) -> str:
    """A value written as `${{ env.NAME }}` and the workflow's env, resolved."""
    match = re.fullmatch(r"\$\{\{\s*env\.(\w+)\s*\}\}", value)
    return str(workflow()["env"][match.group(1)]) if match else value


def test_the_workflow_runs_on_pull_requests_touching_the_module() -> None:
    triggers = workflow()["on" if "on" in workflow() else True]  # YAML 1.1 reads `on` as true
    assert "terraform/**" in triggers["pull_request"]["paths"]


def test_every_action_is_pinned_to_a_version() -> None:
    for job, _, step in all_steps():
        if "uses" in step:
            assert re.search(r"@(v\d+(\.\d+)*|[0-9a-f]{40})$", step["uses"]), (job, step["uses"])


def test_the_workflow_uses_a_terraform_with_s3_native_locking() -> None:
    for job, _, step in all_steps():
        if step.get("uses", "").startswith("hashicorp/setup-terraform@"):
            version = resolve(step["with"]["terraform_version"])
            minor = re.fullmatch(r"[~^]?1\.(\d+)(\.\d+)?(\.x)?", version)
            assert minor is not None, (job, version)
            assert int(minor.group(1)) >= 10, (job, version)


def test_fmt_check_validate_and_tflint_run() -> None:
    fmt = step_running("terraform fmt -check")[2]["run"]
    assert "-recursive" in fmt
    job, init_at, init = step_running("terraform init")
    assert "-backend=false" in init["run"]
    validate_job, validate_at, _ = step_running("terraform validate")
    assert validate_job == job
    assert validate_at > init_at
    lint_job, setup_at, setup = step_using("terraform-linters/setup-tflint")
    assert re.fullmatch(r"v\d+\.\d+\.\d+", resolve(setup["with"]["tflint_version"]))
    tflint_init = step_running("tflint --init")
    tflint = step_running("tflint --format compact")
    assert tflint_init[0] == tflint[0] == lint_job
    assert setup_at < tflint_init[1] < tflint[1]


def backend_config(step: dict[str, Any]) -> dict[str, str]:
    """The -backend-config settings of an init step, each with its expression, shell variables
    resolved through the step's env (values stay `${{ vars.X }}` expressions)."""
    script = step["run"].replace("\\\n", " ")
    settings = dict(re.findall(r'-backend-config="?(\w+)=([^"\s]+)"?', script))
    env = step.get("env", {})
    return {
        name: re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m[1] or m[2], m[0]), value)
        for name, value in settings.items()
    }


def test_the_plan_initialises_the_s3_backend_from_repository_variables() -> None:
    job, init_at, init = step_running("terraform init", job="plan")
    settings = backend_config(init)
    assert settings["bucket"] == "${{ vars.TF_STATE_BUCKET }}"
    assert settings["key"] == "${{ vars.TF_STATE_KEY }}"
    assert settings["region"] == "${{ vars.AWS_REGION }}"
    assert settings["use_lockfile"] == "true"
    assert "-input=false" in init["run"]
    _, credentials_at, _ = step_using("aws-actions/configure-aws-credentials")
    assert credentials_at < init_at  # the backend needs the role to read the state
    plan_job = workflow()["jobs"][job]
    assert "vars.PLAN_ROLE_ARN != ''" in plan_job["if"]


def test_the_plan_is_saved_waits_for_the_lock_and_is_shown() -> None:
    job, plan_at, plan = step_running("terraform plan", job="plan")
    assert "-out=tfplan" in plan["run"]
    assert re.search(r"-lock-timeout=\d+[sm]", plan["run"])
    assert "-lock=false" not in plan["run"]
    _, show_at, _ = step_running("terraform show -no-color tfplan", job="plan")
    assert show_at > plan_at
    concurrency = workflow().get("concurrency") or workflow()["jobs"][job]["concurrency"]
    assert concurrency["group"]
    assert concurrency["cancel-in-progress"] is False  # a cancelled plan could keep the lock


def comment_step() -> dict[str, Any]:
    job, at, step = step_using("actions/github-script")
    assert job == "plan"
    assert at > step_running("terraform show -no-color tfplan", job="plan")[1]
    return step


def test_the_plan_is_posted_as_one_pull_request_comment() -> None:
    step = comment_step()
    script = step["with"]["script"]
    assert MARKER in script
    assert "updateComment" in script
    assert "createComment" in script
    assert str(COMMENT_LIMIT) in script
    permissions = workflow()["jobs"]["plan"]["permissions"]
    assert permissions["pull-requests"] == "write"
    assert permissions["id-token"] == "write"
    assert workflow()["permissions"] == {"contents": "read"}  # the checks job gets no more


# The comment script itself, run by node against a stand-in for github-script's objects.
HARNESS = """
const fs = require("fs");
const [script, plan, existing] = JSON.parse(fs.readFileSync(0, "utf8"));
const calls = [];
const github = {
  paginate: async () => existing,
  rest: { issues: {
    listComments: () => {},
    updateComment: async (args) => calls.push(["update", args]),
    createComment: async (args) => calls.push(["create", args]),
  } },
};
const context = {
  serverUrl: "https://github.example", runId: 42, repo: { owner: "o", repo: "r" },
  payload: { pull_request: { number: 7, head: { sha: "0123456789abcdef" } } },
};
fs.writeFileSync(process.env.PLAN_FILE, plan);
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
new AsyncFunction("require", "github", "context", script)(require, github, context)
  .then(() => process.stdout.write(JSON.stringify(calls)));
"""


def post(plan: str, existing: list[dict[str, Any]], tmp_path: Path) -> list[Any]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the comment script is checked statically only")
    done = subprocess.run(
        [node, "-e", HARNESS],
        input=json.dumps([comment_step()["with"]["script"], plan, existing]),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"PLAN_FILE": str(tmp_path / "plan.txt"), "PATH": "/usr/bin:/bin"},
    )
    calls: list[Any] = json.loads(done.stdout)
    return calls


def test_a_first_plan_creates_the_comment_with_its_summary(tmp_path: Path) -> None:
    plan = "  # aws_sqs_queue.dlq will be created\n\nPlan: 1 to add, 0 to change, 0 to destroy.\n"
    [(verb, args)] = post(plan, [{"id": 1, "user": {"type": "User"}, "body": "LGTM"}], tmp_path)
    assert verb == "create"
    assert args["issue_number"] == 7
    assert args["body"].startswith(MARKER)
    assert "**Plan: 1 to add, 0 to change, 0 to destroy.**" in args["body"]
    assert plan in args["body"]


def test_a_later_plan_replaces_the_comment_and_a_long_one_is_cut_to_fit(tmp_path: Path) -> None:
    plan = ("  + policy = <<-EOT ```json ``` EOT\n" * 4000) + "Plan: 9 to add, 0 to change.\n"
    ours = {"id": 5, "user": {"type": "Bot"}, "body": MARKER + "\nan older plan"}
    [(verb, args)] = post(plan, [ours], tmp_path)
    assert (verb, args["comment_id"]) == ("update", 5)
    body = args["body"]
    assert len(body) <= COMMENT_LIMIT
    assert "Truncated" in body
    assert "https://github.example/o/r/actions/runs/42" in body
    assert "````text" in body  # a fence the plan's own backticks cannot close


# fmt, run for real where Terraform is installed.


def test_terraform_fmt_check_passes() -> None:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip(
            "terraform is not installed (no Debian or PyPI package ships it; "
            "the workflow's fmt step checks the same)"
        )
    done = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", "terraform"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout
