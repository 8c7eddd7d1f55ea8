// The demo page: a button per provider (GET /providers); a click asks the
// service for the provider's authorization URL with this page as the
// redirect URI; back here with `code` and `state`, the page posts them to
// the service (the djoser flow) and shows the user and their linked
// accounts (GET /users/me). Everything shown is set as text, never as HTML.
'use strict';

const PENDING = 'socialauth-demo-pending';
const TOKEN = 'socialauth-demo-token';
const SECTIONS = ['providers', 'working', 'result', 'failure'];
const redirectUri = `${window.location.origin}/demo`;

const byId = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function show(section) {
  for (const id of SECTIONS) byId(id).hidden = id !== section;
}

function fail(message) {
  byId('failure-text').textContent = message;
  show('failure');
}

async function call(path, options = {}) {
  const response = await fetch(path, { credentials: 'same-origin', ...options });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  return { status: response.status, body };
}

function describe(status, body) {
  return `HTTP ${status}: ${body === null ? '(no JSON body)' : JSON.stringify(body)}`;
}

function date(ms) {
  return ms ? new Date(ms).toISOString().replace('T', ' ').replace(/:\d\d\.\d+Z$/, ' UTC') : '';
}

async function listProviders() {
  const { status, body } = await call('/providers');
  if (status !== 200) return fail(`GET /providers answered ${describe(status, body)}`);
  const list = byId('provider-list');
  list.replaceChildren();
  for (const provider of body.providers) {
    const button = document.createElement('button');
    button.type = 'button';
    button.dataset.provider = provider.name;
    button.textContent = `Sign in with ${provider.name}`;
    if (!provider.available) {
      button.disabled = true;
      button.title = `Paused for ${provider.retry_after ?? '?'} s: the provider keeps failing`;
    }
    button.addEventListener('click', () => start(provider.name));
    const item = document.createElement('li');
    item.append(button);
    list.append(item);
  }
  byId('no-providers').hidden = body.providers.length > 0;
  show('providers');
}

async function start(provider) {
  const query = new URLSearchParams({ redirect_uri: redirectUri });
  const path = `/auth/o/${encodeURIComponent(provider)}/?${query}`;
  const { status, body } = await call(path);
  if (status !== 200) {
    const codes = (body && body.non_field_errors) || [];
    if (codes.includes('redirect_uri_not_allowed')) {
      return fail(`This page's address, ${redirectUri}, is not an allowed redirect URI: add it to [security] allowed_redirect_uris (and register it at the provider).`);
    }
    return fail(`GET /auth/o/${provider}/ answered ${describe(status, body)}`);
  }
  // What the answer must carry back to be this tab's: the state (OAuth 2,
  // OpenID Connect) or the request token (OAuth 1.0a).
  const sent = new URL(body.authorization_url).searchParams;
  sessionStorage.setItem(PENDING, JSON.stringify({
    provider,
    state: sent.get('state'),
    oauthToken: sent.get('oauth_token'),
  }));
  window.location.assign(body.authorization_url);
}

// The provider sent the user back: trade its answer for an app token.
async function finish(params) {
  // The answer leaves the address bar (and the history) at once.
  window.history.replaceState(null, '', '/demo');
  let pending = null;
  try {
    pending = JSON.parse(sessionStorage.getItem(PENDING));
  } catch {
    pending = null;
  }
  sessionStorage.removeItem(PENDING);
  // Only the answer to the login this tab started is taken (login CSRF):
  // its state, or its request token, must come back.
  const ours = pending && (pending.state
    ? params.get('state') === pending.state
    : pending.oauthToken && (params.get('oauth_token') || params.get('denied')) === pending.oauthToken);
  if (!ours) return fail('This answer is not for a login this browser tab started: ignored.');
  const { provider } = pending;
  if (params.has('error')) {
    const detail = params.get('error_description');
    return fail(`${provider} answered ${params.get('error')}${detail ? `: ${detail}` : ''}`);
  }
  if (params.has('denied')) return fail(`The sign-in at ${provider} was cancelled.`);
  show('working');
  const form = new URLSearchParams();
  const fields = pending.state ? ['code', 'state', 'iss'] : ['oauth_token', 'oauth_verifier'];
  for (const field of fields) {
    if (params.has(field)) form.set(field, params.get(field));
  }
  let { status, body } = await call(`/auth/o/${encodeURIComponent(provider)}/`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: form,
  });
  // 202: the worker is still at it; poll the job.
  for (let polls = 0; status === 202 && polls < 120; polls += 1) {
    await sleep(500);
    const job = await call(body.status_url);
    if (job.status === 200 && job.body.status === 'succeeded') {
      ({ status, body } = { status: job.body.result.is_new ? 201 : 200, body: job.body.result });
    } else if (job.status === 200 && job.body.status === 'failed') {
      ({ status, body } = { status: 400, body: job.body.error });
    } else if (job.status !== 200) {
      ({ status, body } = job);
    }
  }
  if ((status !== 200 && status !== 201) || !body.token) {
    return fail(`POST /auth/o/${provider}/ answered ${describe(status, body)}`);
  }
  sessionStorage.setItem(TOKEN, body.token);
  await showUser(body.is_new ? `Signed up with ${provider}` : `Signed in with ${provider}`);
}

async function showUser(outcome) {
  const token = sessionStorage.getItem(TOKEN);
  const { status, body } = await call('/users/me', { headers: { Authorization: `Token ${token}` } });
  if (status !== 200) {
    sessionStorage.removeItem(TOKEN);
    return fail(`GET /users/me answered ${describe(status, body)}`);
  }
  byId('outcome').textContent = outcome;
  byId('user-id').textContent = String(body.id);
  byId('user-username').textContent = body.username;
  byId('user-email').textContent = body.email ?? '(none)';
  byId('user-email-verified').textContent = body.email_verified ? 'yes' : 'no';
  byId('user-name').textContent = `${body.first_name} ${body.last_name}`.trim();
  byId('user-referral-code').textContent = body.referral_code;
  const rows = body.social_accounts.map((account) => {
    const row = document.createElement('tr');
    row.dataset.provider = account.provider;
    const cells = [
      [account.provider, ''],
      [account.uid, 'id'],
      [account.email ?? '', ''],
      [date(account.created_at), ''],
      [date(account.last_login_at), ''],
    ];
    for (const [text, className] of cells) {
      const cell = document.createElement('td');
      cell.textContent = text;
      if (className) cell.className = className;
      row.append(cell);
    }
    return row;
  });
  byId('accounts').tBodies[0].replaceChildren(...rows);
  show('result');
}

async function signOut() {
  const token = sessionStorage.getItem(TOKEN);
  sessionStorage.removeItem(TOKEN);
  if (token) await call('/auth/logout', { method: 'POST', headers: { Authorization: `Token ${token}` } });
  await listProviders();
}

async function main() {
  byId('sign-out').addEventListener('click', signOut);
  const params = new URLSearchParams(window.location.search);
  if (['code', 'error', 'oauth_token', 'denied'].some((name) => params.has(name))) return finish(params);
  if (sessionStorage.getItem(TOKEN)) return showUser('Signed in');
  return listProviders();
}

main().catch((error) => fail(`The page failed: ${error}`));
