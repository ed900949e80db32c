"""What each process reads from its environment beyond where it listens: the log level, and the UI's gateway."""

from gateway.settings import DocsSettings, Settings
from servicekit.service.settings import ServiceSettings
from streamlit_app.settings import DEFAULT_GATEWAY_URL
from streamlit_app.settings import Settings as UiSettings


def test_every_server_logs_at_the_level_of_log_level() -> None:
    env = {"LOG_LEVEL": "debug"}

    assert ServiceSettings.from_env("payments", 8002, env).log_level == "debug"
    assert Settings.from_env(env).log_level == "debug"
    assert DocsSettings.from_env(env).log_level == "debug"
    assert ServiceSettings.from_env("payments", 8002, {}).log_level == Settings.from_env({}).log_level == "INFO"


def test_the_swagger_server_listens_where_its_settings_say() -> None:
    assert DocsSettings.from_env({}) == DocsSettings(host="127.0.0.1", port=8082)
    assert DocsSettings.from_env({"SWAGGER_HOST": "0.0.0.0", "SWAGGER_PORT": "9000"}).port == 9000


def test_the_ui_finds_the_gateway_and_the_operator_token_in_its_settings() -> None:
    assert UiSettings.from_env({}) == UiSettings(DEFAULT_GATEWAY_URL, None, None)
    assert UiSettings.from_env({"GATEWAY_WS_URL": "", "GOZON_OPERATOR_TOKEN": ""}) == UiSettings.from_env({})
    configured = UiSettings.from_env(
        {"GATEWAY_URL": "http://gateway:8000", "GATEWAY_WS_URL": "ws://edge/", "GOZON_OPERATOR_TOKEN": "t"}
    )
    assert configured == UiSettings("http://gateway:8000", "ws://edge/", "t")
