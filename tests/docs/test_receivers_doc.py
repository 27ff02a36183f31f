"""docs/receivers.md: its signature checks accept a real signed callback and refuse altered ones."""

import base64
import importlib.util
import json
import subprocess
import time
from pathlib import Path

import pytest

from callbacks.delivery.executor import send_attempt
from callbacks.models import CallbackTask
from tests.docs.snippets import snippet


@pytest.fixture
def delivered(api, new_tenant, receiver):
    """One callback sent by the service's own sender to a receiver on 127.0.0.1, as received."""
    created = api.post("/api/v1/callbacks/", {"url": receiver.url, "body": {"order": 42}}, format="json")
    assert created.status_code == 201, created.content
    task = CallbackTask.objects.select_related("tenant").get(id=created.json()["id"])
    assert send_attempt(task, attempt=1).outcome == "success"
    (request,) = receiver.wait_for(1)
    return new_tenant.signing_secret, request.headers, request.body


def _cases(secret, headers, body):
    """(secret, headers, body, now, expected): the real request, then each way it can be wrong."""
    now = time.time()
    other_secret = "whsec_" + base64.b64encode(b"x" * 32).decode()
    return [
        (secret, headers, body, now, True),
        (secret, headers, body + b" ", now, False),
        (other_secret, headers, body, now, False),
        (secret, {**headers, "webhook-id": headers["webhook-id"] + "0"}, body, now, False),
        (secret, headers, body, now + 3600, False),  # replayed an hour later
        (
            secret,
            {**headers, "webhook-signature": "v2," + headers["webhook-signature"][3:]},
            body,
            now,
            False,
        ),
    ]


def _python_snippet(tmp_path):
    path = tmp_path / "receiver.py"
    path.write_text(snippet("receivers.md", "verify-v1-python"))
    spec = importlib.util.spec_from_file_location("receiver_snippet", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_python_snippet_verifies_a_real_callback(delivered, tmp_path):
    verify = _python_snippet(tmp_path).verify
    cases = _cases(*delivered)
    assert [verify(s, h, b, now=n) for s, h, b, n, _ in cases] == [expected for *_, expected in cases]


def test_the_python_snippet_accepts_either_secret_during_a_rotation(delivered, tmp_path):
    from callbacks.delivery.signing import signature_header

    secret, headers, body = delivered
    module = _python_snippet(tmp_path)
    previous = "whsec_" + base64.b64encode(b"p" * 32).decode()
    both = signature_header(
        [secret, previous],
        msg_id=headers["webhook-id"],
        timestamp=int(headers["webhook-timestamp"]),
        body=body,
    )
    assert module.verify(previous, {**headers, "webhook-signature": both}, body)
    assert module.verify(secret, {**headers, "webhook-signature": both}, body)


def test_the_node_snippet_verifies_a_real_callback(delivered, tmp_path):
    (tmp_path / "receiver.js").write_text(snippet("receivers.md", "verify-v1-node"))
    cases = _cases(*delivered)
    given = [
        {"secret": s, "headers": h, "body": base64.b64encode(b).decode(), "now": n} for s, h, b, n, _ in cases
    ]
    harness = (
        "const { verify } = require('./receiver.js');"
        "const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "console.log(JSON.stringify(cases.map(c => verify(c.secret, c.headers, Buffer.from(c.body, 'base64'), c.now))));"
    )
    done = subprocess.run(
        ["node", "-e", harness],
        cwd=tmp_path,
        input=json.dumps(given),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [expected for *_, expected in cases]


_GO_HARNESS = """package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"
)

func TestSnippet(t *testing.T) {
	var cases []struct {
		Secret  string            `json:"secret"`
		Headers map[string]string `json:"headers"`
		Body    string            `json:"body"`
		Now     float64           `json:"now"`
	}
	raw, _ := os.ReadFile("cases.json")
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	results := []bool{}
	for _, c := range cases {
		header := http.Header{}
		for name, value := range c.Headers {
			header.Set(name, value)
		}
		body, _ := base64.StdEncoding.DecodeString(c.Body)
		results = append(results, verify(c.Secret, header, body, time.Unix(int64(c.Now), 0)))
	}
	out, _ := json.Marshal(results)
	fmt.Println("RESULTS", string(out))
}
"""


def test_the_go_snippet_verifies_a_real_callback(delivered, tmp_path):
    (tmp_path / "receiver.go").write_text(snippet("receivers.md", "verify-v1-go"))
    (tmp_path / "receiver_test.go").write_text(_GO_HARNESS)
    (tmp_path / "go.mod").write_text("module receiver\n\ngo 1.19\n")
    cases = _cases(*delivered)
    given = [
        {"secret": s, "headers": h, "body": base64.b64encode(b).decode(), "now": n} for s, h, b, n, _ in cases
    ]
    (tmp_path / "cases.json").write_text(json.dumps(given))
    done = subprocess.run(
        ["go", "test", "-count=1", "-v", "."],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(Path.home()),
            "GOFLAGS": "-mod=mod",
            "GOTOOLCHAIN": "local",
        },
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("RESULTS ")]
    assert json.loads(line.removeprefix("RESULTS ")) == [expected for *_, expected in cases]


def test_the_v1a_python_snippet_verifies_a_real_ed25519_signed_callback(api, new_tenant, receiver, tmp_path):
    assert api.patch("/api/v1/signing/", {"scheme": "v1a"}, format="json").status_code == 200
    public_key = api.get("/api/v1/signing/").json()["v1a"]["public_key"]
    created = api.post("/api/v1/callbacks/", {"url": receiver.url, "body": {"order": 42}}, format="json")
    task = CallbackTask.objects.select_related("tenant").get(id=created.json()["id"])
    assert send_attempt(task, attempt=1).outcome == "success"
    (request,) = receiver.wait_for(1)
    headers = {name.lower(): value for name, value in request.headers.items()}
    assert headers["webhook-signature"].startswith("v1a,")

    path = tmp_path / "receiver_v1a.py"
    path.write_text(snippet("receivers.md", "verify-v1a-python"))
    spec = importlib.util.spec_from_file_location("receiver_v1a_snippet", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    other_key = "whpk_" + base64.b64encode(b"k" * 32).decode()
    assert module.verify_v1a([public_key], headers, request.body)
    assert not module.verify_v1a([public_key], headers, request.body + b" ")
    assert not module.verify_v1a([other_key], headers, request.body)
