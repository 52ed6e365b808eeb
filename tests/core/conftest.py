"""The door-parity suites drive both doors: the web's signed-in clients and the API's fixtures."""

from tests.web.conftest import web_client, web_sign_in  # noqa: F401
