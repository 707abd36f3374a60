"""One signed webhook through ingest, RabbitMQ, dispatcher, predictors and store, each its own process."""

import json
import urllib.error
import urllib.request

import pytest

from services.samples import issue_payload, signed_request
from tests.harness import free_port
from tests.processes import Pipeline, get_json, wait_http
from tests.waiting import eventually

SECRET, API_KEY = "e2e-webhook-secret", "e2e-api-key"
pytestmark = pytest.mark.e2e


@pytest.fixture
def pipeline(amqp_url, pg_url, s3_url, s3_endpoint, tmp_path):
    env = {"WCML_BROKER_URL": amqp_url, "WCML_DATABASE_URL": pg_url, "WCML_BLOB_URL": s3_url,
           "WCML_WEBHOOK_SECRETS": SECRET, "WCML_API_KEYS": API_KEY,
           "WCML_MODELS_DIR": str(tmp_path / "models"), "WCML_VAR_DIR": str(tmp_path / "var"),
           **s3_endpoint.env}
    p = Pipeline(env, tmp_path)
    trained = p.run("models", "demo")
    assert trained.returncode == 0, trained.stderr
    p.ingest_url = f"http://127.0.0.1:{free_port()}"
    p.api_url = f"http://127.0.0.1:{free_port()}"
    p.ingest_metrics_url = f"http://127.0.0.1:{free_port()}"  # ingest's second listener: /metrics, no key
    p.start("ingest", "ingest", "--bind", p.ingest_url[7:], "--workers", "2",
            env={"WCML_METRICS_BIND": p.ingest_metrics_url[7:]})
    p.start("dispatcher", "dispatcher")
    p.start("predictor-needsdiagnosis", "predictor", "--task", "needsdiagnosis")
    p.start("predictor-issuetype", "predictor", "--task", "issuetype")
    p.start("store", "store")
    p.start("api", "api", "--bind", p.api_url[7:], "--workers", "1")
    try:
        wait_http(p.ingest_url + "/healthz")
        wait_http(p.api_url + "/healthz")
        yield p
    except BaseException:
        print(p.diagnostics())
        raise
    finally:
        exit_codes = p.stop_all()
    # SIGTERM: every service finishes its batch and exits 0.
    if any(exit_codes.values()):
        print(exit_codes, p.diagnostics())
    assert not any(exit_codes.values()), exit_codes
    logs = p.all_logs()
    assert logs and SECRET not in logs and API_KEY not in logs and "sha256=" not in logs


def test_signed_webhook_becomes_a_queryable_prediction_and_an_s3_document(pipeline, s3_url, s3_endpoint):
    payload = issue_payload(number=4242, title="www.example.com - site is not usable",
                            body="The login button does nothing in Firefox; works in Chrome.")
    request = signed_request(pipeline.ingest_url + "/webhooks/github", SECRET, "issues", payload,
                             delivery_id="e2e-delivery-1")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202
        assert json.loads(response.read())["position"] >= 1

    url = pipeline.api_url + "/api/v1/issues/webcompat/web-bugs/4242"
    def both_predicted() -> dict:
        status, body = get_json(url, API_KEY)
        assert status == 200 and set(body.get("predictions", {})) >= {"needsdiagnosis", "issuetype"}, body
        return body

    body = eventually(both_predicted, timeout=60, interval=0.2,
                      message=lambda: f"a prediction for both tasks\n{pipeline.diagnostics()}")

    by_task = body["predictions"]
    assert by_task["needsdiagnosis"]["label"] in ("needsdiagnosis", "not-needsdiagnosis")
    assert by_task["issuetype"]["label"] in ("bug", "feature", "question")
    assert by_task["needsdiagnosis"]["delivery_id"] == "e2e-delivery-1"

    bucket, prefix = s3_url[5:].split("/", 1)
    client = s3_endpoint.client()
    key = f"{prefix}/needsdiagnosis/webcompat/web-bugs/4242.json"
    # the row commits first, then the document is written
    eventually(lambda: client.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount"), timeout=10,
               message=f"the document s3://{bucket}/{key}")
    latest = client.get_object(Bucket=bucket, Key=key)
    assert latest["ContentType"] == "application/json"
    document = json.loads(latest["Body"].read())
    assert document["label"] == by_task["needsdiagnosis"]["label"]
    assert document["model_version"] == by_task["needsdiagnosis"]["model_version"]

    status, _ = get_json(url, "wrong-key")
    assert status == 401

    # ingest's /metrics sums its gunicorn workers (the relay beside them serves its own): on the webhook
    # port with a key only, on WCML_METRICS_BIND's listener without one (and nothing else there).
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(pipeline.ingest_url + "/metrics", timeout=5)
    assert refused.value.code == 401
    keyed = urllib.request.Request(pipeline.ingest_url + "/metrics",
                                   headers={"Authorization": f"Bearer {API_KEY}"})
    with urllib.request.urlopen(keyed, timeout=5) as response:
        assert "wcml_ingest_deliveries_total" in response.read().decode()
    with pytest.raises(urllib.error.HTTPError) as elsewhere:
        urllib.request.urlopen(pipeline.ingest_metrics_url + "/webhooks/github", data=b"{}", timeout=5)
    assert elsewhere.value.code == 404
    with urllib.request.urlopen(pipeline.ingest_metrics_url + "/metrics", timeout=5) as response:
        metrics = response.read().decode()
    assert 'wcml_ingest_deliveries_total{event="issues",outcome="accepted"} 1.0' in metrics
    assert "wcml_relay_" not in metrics
    with urllib.request.urlopen(pipeline.metrics_url("ingest", "relay"), timeout=5) as response:
        relay_metrics = response.read().decode()
    assert "wcml_relay_lag_events" in relay_metrics and "wcml_relay_events_published_total" in relay_metrics
