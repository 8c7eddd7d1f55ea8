"""A login with the Python client that openapi-python-client generated from
socialauth's OpenAPI document (importable as `socialauth_client`).

    python login.py <base URL> <provider> <redirect URI>

It speaks on stdout and stdin with tests/tests/openapi_client.rs, which
plays the user at the provider: for each login it prints
`AUTHORIZE <authorization URL>` and reads `CALLBACK <URL the provider sent
the user back to>`. At the end it prints `RESULT <JSON>`: what it read
through the generated models (responses of a type the document does not
give for that status fail here).
"""

import json
import sys
from urllib.parse import parse_qs, urlparse

from socialauth_client import AuthenticatedClient, Client
from socialauth_client.api.social import authorize_url, complete_login
from socialauth_client.api.users import me
from socialauth_client.models import (
    AuthorizationUrl,
    CallbackForm,
    Detail,
    MeView,
    TokenResponse,
    ValidationErrors,
)
from socialauth_client.types import UNSET


def login(client, provider, redirect_uri):
    """One login: the authorization URL, the user at the provider, the code."""
    started = authorize_url.sync_detailed(provider, client=client, redirect_uri=redirect_uri)
    assert started.status_code == 200, started
    assert isinstance(started.parsed, AuthorizationUrl), started
    print("AUTHORIZE", started.parsed.authorization_url, flush=True)
    line = sys.stdin.readline().strip()
    assert line.startswith("CALLBACK "), line
    query = parse_qs(urlparse(line.removeprefix("CALLBACK ")).query)
    form = CallbackForm(
        code=query["code"][0],
        state=query["state"][0],
        iss=query.get("iss", [UNSET])[0],
    )
    done = complete_login.sync_detailed(provider, client=client, body=form)
    assert isinstance(done.parsed, TokenResponse), (done.status_code, done.content)
    return done


def main():
    base_url, provider, redirect_uri = sys.argv[1:4]
    client = Client(base_url=base_url, raise_on_unexpected_status=True)
    result = {}

    signup = login(client, provider, redirect_uri)
    token = signup.parsed.token
    result["signup"] = {
        "status": signup.status_code,
        "is_new": signup.parsed.is_new,
        "email": signup.parsed.user.email,
    }
    signed_in = AuthenticatedClient(base_url=base_url, token=token, prefix="Token")
    shown = me.sync_detailed(client=signed_in)
    assert isinstance(shown.parsed, MeView), (shown.status_code, shown.content)
    result["me"] = shown.parsed.to_dict()

    again = login(client, provider, redirect_uri)
    result["again"] = {"status": again.status_code, "is_new": again.parsed.is_new}

    # The contract's errors, read as the document's schemas.
    bad_state = complete_login.sync_detailed(
        provider, client=client, body=CallbackForm(code="not-a-code", state="never-issued")
    )
    assert isinstance(bad_state.parsed, ValidationErrors), bad_state
    result["bad_state"] = {"status": bad_state.status_code, **bad_state.parsed.to_dict()}
    unknown = authorize_url.sync_detailed("no-such-provider", client=client, redirect_uri=redirect_uri)
    assert isinstance(unknown.parsed, ValidationErrors), unknown
    result["unknown_provider"] = {"status": unknown.status_code, **unknown.parsed.to_dict()}
    no_token = me.sync_detailed(client=client)
    assert isinstance(no_token.parsed, Detail), no_token
    result["no_token"] = {"status": no_token.status_code, **no_token.parsed.to_dict()}

    print("RESULT", json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
