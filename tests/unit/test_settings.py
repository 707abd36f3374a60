import pytest

from shared.settings import SettingsError, load, require


def test_embedded_defaults_generate_secrets_once(tmp_path):
    said = []
    env = {"WCML_VAR_DIR": str(tmp_path)}
    first = load(env, embedded_defaults=True, announce=said.append, create_secrets=True)
    second = load(env, embedded_defaults=True, announce=said.append, create_secrets=True)
    assert first.embedded and first.broker_url == f"sqlite:///{tmp_path}/queue.db"  # durable queues
    assert first.webhook_secrets == second.webhook_secrets and first.api_keys == second.api_keys
    assert len(said) == 2  # printed at first start only


def test_only_a_first_start_creates_secrets_and_never_over_a_kept_one(tmp_path):
    said, env = [], {"WCML_VAR_DIR": str(tmp_path / "var")}
    other = load(env, embedded_defaults=True, announce=said.append)  # any command but `wcml run`
    assert (other.webhook_secrets, other.api_keys, said) == ((), (), [])
    assert not (tmp_path / "var").exists()

    (tmp_path / "var").mkdir(exist_ok=True)
    (tmp_path / "var/webhook_secret").write_text("kept-secret\n")
    first = load(env, embedded_defaults=True, announce=said.append, create_secrets=True)
    assert first.webhook_secrets == ("kept-secret",) and len(first.api_keys) == 1
    assert (tmp_path / "var/webhook_secret").read_text() == "kept-secret\n"  # used as it is
    assert len(said) == 1 and "api key" in said[0]  # the missing one only
    again = load(env, embedded_defaults=True, announce=said.append)
    assert (again.webhook_secrets, again.api_keys) == (first.webhook_secrets, first.api_keys)
    assert len(said) == 1


def test_a_first_start_refuses_an_empty_kept_secret(tmp_path):
    (tmp_path / "webhook_secret").write_text("\n")
    with pytest.raises(SettingsError, match="WCML_WEBHOOK_SECRETS: is not set and .* holds none"):
        load({"WCML_VAR_DIR": str(tmp_path)}, embedded_defaults=True, announce=print, create_secrets=True)
    assert (tmp_path / "webhook_secret").read_text() == "\n" and not (tmp_path / "api_key").exists()


def test_set_secrets_win_over_kept_ones_and_create_nothing(tmp_path):
    env = {"WCML_VAR_DIR": str(tmp_path), "WCML_WEBHOOK_SECRETS": "s", "WCML_API_KEYS": "k"}
    s = load(env, embedded_defaults=True, announce=print, create_secrets=True)
    assert (s.webhook_secrets, s.api_keys) == (("s",), ("k",)) and list(tmp_path.iterdir()) == []


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
