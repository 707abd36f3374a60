"""The distributed pipeline as processes, for the end-to-end tests that break it or feed it."""

import pytest

from tests.faults import FaultPipeline


@pytest.fixture
def pipeline(request, amqp_url, pg_url, s3_url, s3_endpoint, tmp_path):
    """The distributed pipeline, running; an indirect parameter gives ``start_all``'s options."""
    env = {"WCML_BROKER_URL": amqp_url, "WCML_DATABASE_URL": pg_url, "WCML_BLOB_URL": s3_url,
           "WCML_MODELS_DIR": str(tmp_path / "models"), **s3_endpoint.env}
    p = FaultPipeline(env, tmp_path, pg_url)
    try:
        p.start_all(**getattr(request, "param", {}))
        yield p
    except BaseException:
        print(p.diagnostics())
        raise
    finally:
        codes = p.close()
    if any(codes.values()):
        print(codes, p.diagnostics())
    assert not any(codes.values()), codes
