"""Sign-in with OpenID Connect on a real ``streamlit run``, in Chromium: "Sign in" sends the
browser to the identity provider (a local stand-in that serves its discovery document).

What AppTest cannot show: the login route runs in Streamlit's web server, with the libraries the
requirements install (Authlib and its HTTP client); one missing answered "Internal Server Error".
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from browser_support import BROWSER_MARKS, CHROMIUM, CHROMIUM_ARGS, streamlit_command, wait_until_serving
from reliability_support import free_port

from feedback_core import FeedbackSystem

pytestmark = BROWSER_MARKS
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")


class Discovery(BaseHTTPRequestHandler):
    """An identity provider's discovery document, and nothing else."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        base = f"http://127.0.0.1:{self.server.server_port}"
        if self.path != "/.well-known/openid-configuration":
            self.send_error(404)
            return
        body = json.dumps(
            {
                "issuer": base,
                "authorization_endpoint": f"{base}/authorize",
                "token_endpoint": f"{base}/token",
                "jwks_uri": f"{base}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def provider():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Discovery)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


@contextmanager
def dashboard(tmp_path, port: int, *options: str) -> Iterator[None]:
    """``streamlit run`` of the dashboard on a fresh database, on ``port``, with ``options``."""
    path = tmp_path / "dashboard.db"
    FeedbackSystem.from_url(f"sqlite:///{path}").init_feedback_tables()
    env = {**os.environ, "FEEDBACK_DB_URL": f"sqlite:///{path}"}
    log_path = tmp_path / "streamlit.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            streamlit_command(port, *options), cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_until_serving(port, process, log_path)
            yield
        finally:
            process.terminate()
            process.wait(timeout=20)


def test_sign_in_sends_the_browser_to_the_identity_provider(provider, tmp_path):
    port = free_port()
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(
        "[auth]\n"
        f'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
        'cookie_secret = "a-long-random-secret-for-the-test"\n'
        'client_id = "dashboard"\n'
        'client_secret = "x"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n'
    )
    with dashboard(tmp_path, port, "--server.address", "127.0.0.1", "--secrets.files", str(secrets)):
        with sync_api.sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = chromium.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_role("button", name="Sign in").click()
            # The provider's sign-in page (the stand-in answers it 404): the browser got there.
            page.wait_for_url(f"{provider}/authorize**", timeout=15_000)
            arrived = page.url
            chromium.close()
    location = urlsplit(arrived)
    query = parse_qs(location.query)
    assert query["client_id"] == ["dashboard"] and query["response_type"] == ["code"]
    assert query["redirect_uri"] == [f"http://127.0.0.1:{port}/oauth2callback"]


def test_local_mode_refuses_a_page_that_reached_it_under_another_name(tmp_path):
    # A page elsewhere whose name was made to point at 127.0.0.1 (DNS rebinding) reaches a
    # dashboard that listens on this machine only; without sign-in it would act as the operator.
    rebound = [*CHROMIUM_ARGS, "--host-resolver-rules=MAP rebind.attacker.test 127.0.0.1"]
    port = free_port()
    with dashboard(tmp_path, port, "--server.address", "127.0.0.1"):
        with sync_api.sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=CHROMIUM, args=rebound)
            page = chromium.new_page()
            page.goto(f"http://rebind.attacker.test:{port}/retrain")
            page.get_by_text("Sign-in is needed: other machines can reach this dashboard.").wait_for(
                timeout=30_000
            )
            said = page.locator('[data-testid="stText"]').first.inner_text()
            assert said.startswith(
                f"This dashboard was reached as rebind.attacker.test:{port}, not as this machine"
            )
            assert page.get_by_role("button", name="Start a retrain").count() == 0
            # The same dashboard as this machine's: served.
            page.goto(f"http://localhost:{port}/")
            page.get_by_text("Welcome: there is no feedback yet").wait_for(timeout=30_000)
            chromium.close()


def opened_by(port: int, origin: str) -> str:
    """What the dashboard's first page says to a session opened by a page of ``origin`` (the
    WebSocket a browser opens, with that page's Origin header)."""
    import asyncio

    import websockets
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    async def first_page() -> str:
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/_stcore/stream",
            subprotocols=["streamlit"],
            additional_headers={"Origin": origin},
        ) as ws:
            ask = BackMsg()
            ask.rerun_script.page_script_hash = ""
            await ws.send(ask.SerializeToString())
            said = []
            while True:
                message = ForwardMsg()
                message.ParseFromString(await asyncio.wait_for(ws.recv(), 30))
                said.append(str(message))
                if message.WhichOneof("type") == "script_finished":
                    return " ".join(said)

    return asyncio.run(first_page())


def test_local_mode_refuses_a_session_opened_by_a_page_of_another_port(tmp_path):
    # A page served elsewhere on this machine (another port: another origin) may open the
    # dashboard's WebSocket with the Host 127.0.0.1; its Origin gives it away.
    port = free_port()
    with dashboard(tmp_path, port, "--server.address", "127.0.0.1"):
        other = opened_by(port, f"http://127.0.0.1:{port + 1}")
        assert "Sign-in is needed: other machines can reach this dashboard." in other
        assert f"was opened by the page http://127.0.0.1:{port + 1}, not by its own" in other
        # Another server on this machine's other loopback name, with the same port (a browser
        # opens the session at its own page's address: name and port).
        assert "Sign-in is needed" in opened_by(port, f"http://localhost:{port}")
        own = opened_by(port, f"http://127.0.0.1:{port}")
        assert "Sign-in is needed" not in own and "Welcome: there is no feedback yet" in own


def test_local_mode_empties_itself_inside_another_sites_page(tmp_path):
    # Another site shows the dashboard in a frame (its own origin, so its Host and Origin pass)
    # and has the operator click through a disguise.
    port = free_port()

    class Framing(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = f'<h1>Win a prize</h1><iframe src="http://localhost:{port}/retrain" width="1200" height="800"></iframe>'
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args) -> None:
            pass

    evil = ThreadingHTTPServer(("127.0.0.1", 0), Framing)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    rules = [*CHROMIUM_ARGS, "--host-resolver-rules=MAP evil.test 127.0.0.1"]
    try:
        with dashboard(tmp_path, port, "--server.address", "127.0.0.1"):
            with sync_api.sync_playwright() as p:
                chromium = p.chromium.launch(executable_path=CHROMIUM, args=rules)
                page = chromium.new_page()
                page.goto(f"http://evil.test:{evil.server_port}/")
                framed = page.frame_locator("iframe").locator("body")
                framed.get_by_text("cannot be shown inside another page without sign-in").wait_for(
                    timeout=30_000
                )
                page.wait_for_timeout(1_000)
                assert framed.get_by_role("button").count() == 0
                # Opened by the other site's script, which keeps a hold on the window.
                with page.expect_popup() as opened:
                    page.evaluate(f"window.open('http://localhost:{port}/retrain')")
                popup = opened.value
                popup.get_by_text("was opened by another page, which could steer it").wait_for(timeout=30_000)
                assert popup.get_by_role("button").count() == 0
                popup.close()
                # On its own, as usual.
                page.goto(f"http://localhost:{port}/")
                page.get_by_text("Welcome: there is no feedback yet").wait_for(timeout=30_000)
                page.wait_for_timeout(1_000)
                assert page.get_by_text("cannot be shown inside another page").count() == 0
                chromium.close()
    finally:
        evil.shutdown()
        evil.server_close()
