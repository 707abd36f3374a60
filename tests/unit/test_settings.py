import pytest

from shared.settings import SettingsError, load, require


def test_embedded_defaults_generate_secrets_once(tmp_path):
    said = []
    env = {"WCML_VAR_DIR": str(tmp_path)}
    first = load(env, embedded_defaults=True, announce=said.append)
    second = load(env, embedded_defaults=True, announce=said.append)
    assert first.embedded and first.broker_url == f"sqlite:///{tmp_path}/queue.db"  # durable queues
    assert first.webhook_secrets == second.webhook_secrets and first.api_keys == second.api_keys
    assert len(said) == 2  # printed at first start only


def test_distributed_mode_requires_its_variables():
    with pytest.raises(SettingsError, match="WCML_BROKER_URL: is not set"):
        load({})
    settings = load({"WCML_BROKER_URL": "amqp://g:g@h/", "WCML_DATABASE_URL": "postgresql://h/db",
                     "WCML_BLOB_URL": "s3://bucket/p"})
    with pytest.raises(SettingsError, match="WCML_WEBHOOK_SECRETS"):
        require(settings, "WCML_WEBHOOK_SECRETS")


@pytest.mark.parametrize("name, value", [
    ("WCML_BROKER_URL", "redis://x"), ("WCML_DATABASE_URL", "mysql://x"), ("WCML_BLOB_URL", "s3://"),
    ("WCML_MAX_BODY_BYTES", "-1"), ("WCML_ROUTES", "/no/such/file.toml"),
])
def test_malformed_values_name_the_variable(tmp_path, name, value):
    with pytest.raises(SettingsError) as err:
        load({"WCML_VAR_DIR": str(tmp_path), name: value}, embedded_defaults=True, announce=lambda _: None)
    assert err.value.variable == name and "\n" not in str(err.value)


def test_secrets_are_comma_separated_for_rotation(tmp_path):
    s = load({"WCML_WEBHOOK_SECRETS": "a, b,,", "WCML_VAR_DIR": str(tmp_path)}, embedded_defaults=True,
             announce=lambda _: None)
    assert s.webhook_secrets == ("a", "b")
