"""Test OAuth 1.0a provider, shaped like Twitter's, for socialauth's integration tests.

    .venv/bin/python server.py CONFIG.json

CONFIG.json:
    {
      "port": 0,                                   // 0: any free port
      "consumers": [{"key": "...", "secret": "..."}],
      "users": [{"id": "1001",                     // decimal digits (Twitter's ids are numbers)
                 "screen_name": "...", "password": "...", "name": "...",
                 "email": "..." or null}],
      "request_token_ttl": 600                     // optional, seconds (default 600)
    }

The protocol side is oauthlib's (RequestTokenEndpoint, AuthorizationEndpoint,
AccessTokenEndpoint, ResourceEndpoint with the RequestValidator below): HMAC-SHA1
signatures only, oauthlib's timestamp window (600 s) and a nonce store in memory.

Endpoints (Twitter's shape):
    POST /oauth/request_token      signed by the consumer, with oauth_callback
                                   -> oauth_token, oauth_token_secret, oauth_callback_confirmed=true
    GET  /oauth/authenticate       ?oauth_token=...: HTML login form (login, password,
                                   hidden oauth_token) posting to the same path;
                                   /oauth/authorize is an alias
    POST /oauth/authenticate       allow: wrong password -> the form again with an error (200);
                                   right password -> 302 callback?oauth_token=...&oauth_verifier=...
                                   deny (the "Cancel" button, no login needed):
                                   -> 302 callback?denied=<oauth_token>, the token is gone
    POST /oauth/access_token       signed with the request token, with oauth_verifier
                                   -> oauth_token, oauth_token_secret, user_id, screen_name;
                                   a request token (so a verifier) works once; anything else 401
    GET  /1.1/account/verify_credentials.json[?include_email=true]
                                   signed with the access token -> the user as JSON; `email`
                                   only when asked for and the user has one; 401
                                   {"errors":[{"code":32,...}]} on a bad signature (89 for an
                                   unknown access token)
    GET  /profile_images/<id>/avatar_normal.png   a 1x1 PNG

Listens on 127.0.0.1 only, several requests at a time (one thread each). When
ready it prints exactly one line on stdout, `OAUTH1_READY http://127.0.0.1:<port>`;
logs go to stderr, never with a token, secret, verifier or password in them.
With IDP_EXIT_ON_STDIN_CLOSE=1 the process exits when its stdin closes, so a
test harness that dies without killing it does not leave it running.
"""

import base64
import hmac
import html
import json
import logging
import os
import secrets
import socketserver
import string
import sys
import threading
import time
from urllib.parse import parse_qsl, urlencode, urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.util import request_uri

from oauthlib.common import add_params_to_uri, safe_string_equals
from oauthlib.oauth1 import (
    SIGNATURE_HMAC_SHA1,
    AccessTokenEndpoint,
    AuthorizationEndpoint,
    RequestTokenEndpoint,
    RequestValidator,
    ResourceEndpoint,
)

log = logging.getLogger("oauth1-idp")

DEFAULT_REQUEST_TOKEN_TTL = 600
MAX_BODY = 64 * 1024
AUTHORIZE_PATHS = ("/oauth/authenticate", "/oauth/authorize")
AVATAR_PREFIX = "/profile_images/"
AVATAR_SUFFIX = "/avatar_normal.png"
# A 1x1 transparent PNG.
AVATAR_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
# Twitter's answers when a signed request does not check out.
COULD_NOT_AUTHENTICATE = {"errors": [{"code": 32, "message": "Could not authenticate you."}]}
INVALID_TOKEN = {"errors": [{"code": 89, "message": "Invalid or expired token."}]}
NOT_FOUND = {"errors": [{"code": 34, "message": "Sorry, that page does not exist."}]}
# Characters allowed in keys, tokens, verifiers and nonces: RFC 3986's
# unreserved set less "." and "~" (oauthlib's default is letters and digits only).
SAFE_CHARACTERS = set(string.ascii_letters + string.digits + "-_")


def random_token():
    """43 URL-safe characters, 256 bits from the secrets module."""
    return secrets.token_urlsafe(32)


class Store:
    """Consumers, users and every issued credential, in memory. One lock
    guards it all; multi-step operations (authorize, exchange) hold it
    throughout so a request token or verifier cannot be used twice."""

    def __init__(self, config):
        self.lock = threading.RLock()
        self.request_token_ttl = config.get("request_token_ttl", DEFAULT_REQUEST_TOKEN_TTL)
        self.consumers = {c["key"]: c for c in config.get("consumers", [])}
        self.users = {u["id"]: u for u in config.get("users", [])}
        self.request_tokens = {}  # token -> dict(client_key, secret, callback, created, verifier, user_id)
        self.access_tokens = {}  # token -> dict(client_key, secret, user_id)
        self.nonces = {}  # (client_key, timestamp, nonce, token) -> time first seen

    def user_by_login(self, login):
        """Twitter takes the screen name (any case) or the email."""
        login = login.strip()
        for user in self.users.values():
            if user["screen_name"].lower() == login.lower():
                return user
            if user.get("email") and user["email"].lower() == login.lower():
                return user
        return None

    def live_request_token(self, token):
        """The unexpired request token record, or None (expired ones are dropped)."""
        record = self.request_tokens.get(token) if token else None
        if record is None:
            return None
        if time.monotonic() - record["created"] > self.request_token_ttl:
            del self.request_tokens[token]
            return None
        return record


class Validator(RequestValidator):
    """oauthlib's storage hooks over a Store (Twitter: no realms, HMAC-SHA1)."""

    def __init__(self, store):
        super().__init__()
        self.store = store
        # Random, so they never collide with a configured key or an issued token.
        self._dummy_client = "dummy-" + secrets.token_hex(12)
        self._dummy_request_token = "dummy-" + random_token()
        self._dummy_access_token = "dummy-" + random_token()
        self._dummy_secret = random_token()

    # --- formats -------------------------------------------------------------

    @property
    def allowed_signature_methods(self):
        return (SIGNATURE_HMAC_SHA1,)

    @property
    def enforce_ssl(self):
        # Plain http on 127.0.0.1.
        return False

    @property
    def safe_characters(self):
        return SAFE_CHARACTERS

    @property
    def client_key_length(self):
        return 1, 100

    @property
    def request_token_length(self):
        return 20, 100

    @property
    def access_token_length(self):
        return 20, 100

    @property
    def nonce_length(self):
        # Real clients send short nonces (oauth1-request: 12 base64url characters).
        return 1, 64

    @property
    def verifier_length(self):
        return 20, 100

    @property
    def dummy_client(self):
        return self._dummy_client

    @property
    def dummy_request_token(self):
        return self._dummy_request_token

    @property
    def dummy_access_token(self):
        return self._dummy_access_token

    # --- secrets ---------------------------------------------------------------

    def get_client_secret(self, client_key, request):
        consumer = self.store.consumers.get(client_key)
        return consumer["secret"] if consumer else self._dummy_secret

    def get_request_token_secret(self, client_key, token, request):
        with self.store.lock:
            record = self.store.live_request_token(token)
            if record is not None and record["client_key"] == client_key:
                return record["secret"]
        return self._dummy_secret

    def get_access_token_secret(self, client_key, token, request):
        with self.store.lock:
            record = self.store.access_tokens.get(token)
            if record is not None and record["client_key"] == client_key:
                return record["secret"]
        return self._dummy_secret

    def get_rsa_key(self, client_key, request):
        return None

    # --- realms (Twitter has none) --------------------------------------------

    def get_default_realms(self, client_key, request):
        return []

    def get_realms(self, token, request):
        return []

    def validate_requested_realms(self, client_key, realms, request):
        return True

    def validate_realms(self, client_key, token, request, uri=None, realms=None):
        return True

    def verify_realms(self, token, realms, request):
        return True

    # --- checks ------------------------------------------------------------------

    def validate_client_key(self, client_key, request):
        return client_key in self.store.consumers

    def validate_request_token(self, client_key, token, request):
        with self.store.lock:
            record = self.store.live_request_token(token)
            return record is not None and record["client_key"] == client_key

    def validate_access_token(self, client_key, token, request):
        with self.store.lock:
            record = self.store.access_tokens.get(token)
            return record is not None and record["client_key"] == client_key

    def validate_timestamp_and_nonce(
        self, client_key, timestamp, nonce, request, request_token=None, access_token=None
    ):
        # oauthlib has already refused timestamps outside its window
        # (timestamp_lifetime, 600 s); a nonce older than twice that can go.
        key = (client_key, timestamp, nonce, request_token or access_token)
        now = time.monotonic()
        horizon = 2 * self.timestamp_lifetime
        with self.store.lock:
            stale = [k for k, seen in self.store.nonces.items() if now - seen > horizon]
            for k in stale:
                del self.store.nonces[k]
            if key in self.store.nonces:
                log.info("refused a replayed nonce")
                return False
            self.store.nonces[key] = now
            return True

    def validate_redirect_uri(self, client_key, redirect_uri, request):
        # Absolute http(s) callbacks only ("oob", the PIN flow, is not offered).
        parts = urlsplit(redirect_uri or "")
        return parts.scheme in ("http", "https") and bool(parts.netloc)

    def validate_verifier(self, client_key, token, verifier, request):
        with self.store.lock:
            record = self.store.live_request_token(token)
            usable = (
                record is not None
                and record["client_key"] == client_key
                and record["verifier"] is not None
                and record["user_id"] is not None
            )
            expected = record["verifier"] if usable else self._dummy_secret
        return safe_string_equals(verifier, expected) and usable

    def verify_request_token(self, token, request):
        # The authorization page: a live request token not yet authorized.
        with self.store.lock:
            record = self.store.live_request_token(token)
            return record is not None and record["verifier"] is None

    def get_redirect_uri(self, token, request):
        with self.store.lock:
            return self.store.request_tokens[token]["callback"]

    def invalidate_request_token(self, client_key, request_token, request):
        with self.store.lock:
            self.store.request_tokens.pop(request_token, None)

    # --- saving -------------------------------------------------------------------

    def save_request_token(self, token, request):
        with self.store.lock:
            self.store.request_tokens[token["oauth_token"]] = {
                "client_key": request.client_key,
                "secret": token["oauth_token_secret"],
                "callback": request.redirect_uri,
                "created": time.monotonic(),
                "verifier": None,
                "user_id": None,
            }

    def save_verifier(self, token, verifier, request):
        with self.store.lock:
            self.store.request_tokens[token]["verifier"] = verifier["oauth_verifier"]

    def save_access_token(self, token, request):
        with self.store.lock:
            self.store.access_tokens[token["oauth_token"]] = {
                "client_key": request.client_key,
                "secret": token["oauth_token_secret"],
                "user_id": token["user_id"],
            }


class TwitterAccessTokenEndpoint(AccessTokenEndpoint):
    """Answers as Twitter does: the user's id and screen name instead of
    oauthlib's `oauth_authorized_realms`; the token is `<user id>-<random>`."""

    def __init__(self, validator, store):
        super().__init__(validator, token_generator=random_token)
        self.store = store

    def create_access_token(self, request, credentials):
        with self.store.lock:
            record = self.store.request_tokens[request.resource_owner_key]
            user = self.store.users[record["user_id"]]
        token = {
            "oauth_token": "{}-{}".format(user["id"], random_token()),
            "oauth_token_secret": random_token(),
            "user_id": user["id"],
            "screen_name": user["screen_name"],
        }
        self.request_validator.save_access_token(token, request)
        return urlencode(list(token.items()))


class Provider:
    def __init__(self, config):
        self.store = Store(config)
        self.validator = Validator(self.store)
        self.request_token_endpoint = RequestTokenEndpoint(self.validator, token_generator=random_token)
        self.authorization_endpoint = AuthorizationEndpoint(self.validator, token_generator=random_token)
        self.access_token_endpoint = TwitterAccessTokenEndpoint(self.validator, self.store)
        self.resource_endpoint = ResourceEndpoint(self.validator, token_generator=random_token)

    # --- WSGI ------------------------------------------------------------------------

    def __call__(self, environ, start_response):
        try:
            status, headers, body = self.route(environ)
        except Exception:  # noqa: BLE001 - a test server answers 500 and logs
            log.exception("internal error at %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
            status, headers, body = 500, [("Content-Type", "text/plain; charset=utf-8")], b"internal error\n"
        reason = {200: "OK", 302: "Found", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
                  405: "Method Not Allowed", 413: "Payload Too Large", 500: "Internal Server Error"}
        headers = list(headers) + [("Content-Length", str(len(body))), ("Cache-Control", "no-store")]
        start_response("{} {}".format(status, reason.get(status, "Status")), headers)
        return [body]

    def route(self, environ):
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        if path == "/oauth/request_token":
            if method != "POST":
                return not_allowed("POST")
            return self.request_token(environ)
        if path in AUTHORIZE_PATHS:
            if method == "GET":
                return self.authorize_page(environ, path)
            if method == "POST":
                return self.authorize_submit(environ, path)
            return not_allowed("GET, POST")
        if path == "/oauth/access_token":
            if method != "POST":
                return not_allowed("POST")
            return self.access_token(environ)
        if path == "/1.1/account/verify_credentials.json":
            if method != "GET":
                return not_allowed("GET")
            return self.verify_credentials(environ)
        if path.startswith(AVATAR_PREFIX) and path.endswith(AVATAR_SUFFIX) and method == "GET":
            return 200, [("Content-Type", "image/png")], AVATAR_PNG
        return json_response(404, NOT_FOUND)

    # --- endpoints -------------------------------------------------------------------

    def request_token(self, environ):
        uri, body, headers = oauth_request(environ)
        with self.store.lock:
            resp_headers, resp_body, status = self.request_token_endpoint.create_request_token_response(
                uri, http_method="POST", body=body, headers=headers
            )
        return token_endpoint_response(resp_headers, resp_body, status)

    def access_token(self, environ):
        uri, body, headers = oauth_request(environ)
        with self.store.lock:
            resp_headers, resp_body, status = self.access_token_endpoint.create_access_token_response(
                uri, http_method="POST", body=body, headers=headers
            )
        return token_endpoint_response(resp_headers, resp_body, status)

    def verify_credentials(self, environ):
        uri, body, headers = oauth_request(environ)
        with self.store.lock:
            valid, request = self.resource_endpoint.validate_protected_resource_request(
                uri, http_method="GET", body=body, headers=headers, realms=[]
            )
            if not valid:
                unknown_token = request is not None and request.validator_log.get("resource_owner") is False
                return json_response(401, INVALID_TOKEN if unknown_token else COULD_NOT_AUTHENTICATE)
            user = self.store.users[self.store.access_tokens[request.resource_owner_key]["user_id"]]
        query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        include_email = query.get("include_email", "").lower() in ("true", "t", "1")
        base = base_url(environ)
        profile = {
            "id": int(user["id"]),
            "id_str": user["id"],
            "screen_name": user["screen_name"],
            "name": user["name"],
            "profile_image_url_https": "{}{}{}{}".format(base, AVATAR_PREFIX, user["id"], AVATAR_SUFFIX),
        }
        if include_email and user.get("email"):
            profile["email"] = user["email"]
        return json_response(200, profile)

    def authorize_page(self, environ, path):
        query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        token = query.get("oauth_token", "")
        with self.store.lock:
            usable = self.validator.verify_request_token(token, None)
            consumer = self.store.request_tokens[token]["client_key"] if usable else None
        if not usable:
            return invalid_token_page()
        return html_response(200, login_page(path, token, consumer))

    def authorize_submit(self, environ, path):
        form = read_form(environ)
        if form is None:
            return 413, [("Content-Type", "text/plain; charset=utf-8")], b"request body too large\n"
        token = form.get("oauth_token", "")
        with self.store.lock:
            if not self.validator.verify_request_token(token, None):
                return invalid_token_page()
            record = self.store.request_tokens[token]
            if "deny" in form:
                # Twitter's "Cancel": back to the app with denied=<token>; the token is spent.
                del self.store.request_tokens[token]
                log.info("the user denied a request token")
                return redirect(add_params_to_uri(record["callback"], [("denied", token)]))
            user = self.store.user_by_login(form.get("login", ""))
            password = form.get("password", "")
            expected = user["password"] if user else secrets.token_hex(16)
            if user is None or not hmac.compare_digest(password.encode(), expected.encode()):
                log.info("refused a login")
                return html_response(
                    200, login_page(path, token, record["client_key"], "Invalid username or password.")
                )
            uri = "{}{}?{}".format(base_url(environ), path, urlencode([("oauth_token", token)]))
            resp_headers, _, status = self.authorization_endpoint.create_authorization_response(
                uri, http_method="GET", credentials={}
            )
            record["user_id"] = user["id"]
        if status != 302:
            raise RuntimeError("oauthlib answered {} to an authorization".format(status))
        log.info("user %s authorized a request token", user["id"])
        return redirect(resp_headers["Location"])


# --- HTTP helpers -------------------------------------------------------------------


def base_url(environ):
    return "{}://{}".format(environ["wsgi.url_scheme"], environ.get("HTTP_HOST") or "127.0.0.1")


def read_body(environ):
    """The request body as text, or None when it is too large."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY:
        return None
    return environ["wsgi.input"].read(length).decode("utf-8", "replace") if length > 0 else ""


def read_form(environ):
    body = read_body(environ)
    if body is None:
        return None
    return dict(parse_qsl(body, keep_blank_values=True))


def oauth_request(environ):
    """What oauthlib needs: the full URI as the client signed it, the body
    and the headers."""
    headers = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").title()] = value
    if environ.get("CONTENT_TYPE"):
        headers["Content-Type"] = environ["CONTENT_TYPE"]
    body = read_body(environ) or ""
    return request_uri(environ, include_query=True), body, headers


def token_endpoint_response(resp_headers, resp_body, status):
    if status == 200:
        return 200, [("Content-Type", "application/x-www-form-urlencoded")], resp_body.encode()
    if status == 401 and not resp_body:
        return json_response(401, COULD_NOT_AUTHENTICATE)
    content_type = resp_headers.get("Content-Type", "application/x-www-form-urlencoded")
    return status, [("Content-Type", content_type)], (resp_body or "").encode()


def json_response(status, value):
    return status, [("Content-Type", "application/json; charset=utf-8")], json.dumps(value, ensure_ascii=False).encode("utf-8")


def html_response(status, text):
    return status, [("Content-Type", "text/html; charset=utf-8")], text.encode()


def redirect(location):
    return 302, [("Location", location)], b""


def not_allowed(allow):
    return 405, [("Content-Type", "text/plain; charset=utf-8"), ("Allow", allow)], b"method not allowed\n"


def page(title, body):
    return """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{title}</title></head>
<body>
<h1>{title}</h1>
{body}
</body>
</html>
""".format(title=html.escape(title), body=body)


def login_page(path, token, consumer, error=None):
    error_html = '<p id="error" class="error">{}</p>\n'.format(html.escape(error)) if error else ""
    return page(
        "Authorize app",
        """{error}<p>Authorize <strong>{consumer}</strong> to use your account?</p>
<form id="oauth_form" method="post" action="{action}" autocomplete="off">
<input type="hidden" name="oauth_token" value="{token}">
<label>Username or email <input type="text" name="login" autofocus></label>
<label>Password <input type="password" name="password"></label>
<button type="submit" id="allow" name="allow" value="1">Authorize app</button>
<button type="submit" id="cancel" name="deny" value="1">Cancel</button>
</form>""".format(
            error=error_html,
            consumer=html.escape(consumer),
            action=html.escape(path),
            token=html.escape(token),
        ),
    )


def invalid_token_page():
    return html_response(
        400,
        page(
            "Whoa there!",
            '<p id="error" class="error">The request token for this page is invalid. '
            "It may have already been used, or expired because it is too old.</p>",
        ),
    )


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    """Logs method, path (never the query: it carries tokens) and status."""

    def log_request(self, code="-", size="-"):
        path = self.path.split("?", 1)[0]
        sys.stderr.write("{} {} {}\n".format(self.command, path, code))

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        sys.stderr.write("http: {}\n".format(format % args))


# --- startup -----------------------------------------------------------------------------


def load_config(path):
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    port = config.get("port", 0)
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError("invalid port {!r}".format(port))
    ttl = config.get("request_token_ttl", DEFAULT_REQUEST_TOKEN_TTL)
    if not isinstance(ttl, (int, float)) or ttl <= 0:
        raise ValueError("invalid request_token_ttl {!r}".format(ttl))
    for consumer in config.get("consumers", []):
        key = consumer.get("key")
        if not isinstance(key, str) or not key or not set(key) <= SAFE_CHARACTERS or len(key) > 100:
            raise ValueError("consumer key {!r}: 1 to 100 of A-Z a-z 0-9 - _".format(key))
        if not isinstance(consumer.get("secret"), str) or not consumer["secret"]:
            raise ValueError("consumer {!r} has no secret".format(key))
    for user in config.get("users", []):
        if not isinstance(user.get("id"), str) or not user["id"].isdigit() or not user["id"].isascii():
            raise ValueError("user id {!r}: decimal digits, as Twitter's".format(user.get("id")))
        for field in ("screen_name", "password", "name"):
            if not isinstance(user.get(field), str):
                raise ValueError("user {} has no {}".format(user["id"], field))
    return config


def main():
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(name)s %(levelname)s %(message)s")
    if len(sys.argv) != 2:
        sys.stderr.write("usage: server.py CONFIG.json\n")
        return 2
    try:
        config = load_config(sys.argv[1])
    except (OSError, ValueError) as e:
        sys.stderr.write("bad config {}: {}\n".format(sys.argv[1], e))
        return 2

    if os.environ.get("IDP_EXIT_ON_STDIN_CLOSE") == "1":

        def exit_on_stdin_close():
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            except OSError:
                pass
            os._exit(0)

        threading.Thread(target=exit_on_stdin_close, daemon=True).start()

    server = make_server(
        "127.0.0.1",
        config.get("port", 0),
        Provider(config),
        server_class=ThreadingWSGIServer,
        handler_class=QuietHandler,
    )
    port = server.server_address[1]
    sys.stdout.write("OAUTH1_READY http://127.0.0.1:{}\n".format(port))
    sys.stdout.flush()
    log.info("listening on 127.0.0.1:%d", port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
