// Test OpenID Connect provider for socialauth's integration tests.
//
//   node server.js CONFIG.json        (or IDP_CONFIG=CONFIG.json node server.js)
//
// CONFIG.json:
//   {
//     "port": 0,                       // 0: any free port
//     "clients": [{ "client_id", "client_secret", "redirect_uris": [...],
//                   "grant_types"?: ["authorization_code", "refresh_token"],
//                   "token_endpoint_auth_method"?: "client_secret_basic" }],
//     "users": [{ "id", "username", "password", "email" (or null),
//                 "email_verified", "name", "given_name", "family_name" }],
//     "clock_tolerance": 0,            // seconds (oidc-provider's default is 15)
//     "ttl"?: { "AccessToken": 3600, "AuthorizationCode": 600, ... },  // seconds
//     "conform_id_token_claims"?: false,
//     "rotate_refresh_tokens"?: false  // true: every refresh rotates the refresh token
//   }
//
// Listens on 127.0.0.1 only; the issuer is http://127.0.0.1:<port>. When it is
// ready it prints exactly one line on stdout: `IDP_READY http://127.0.0.1:<port>`.
// Everything else (oidc-provider's notices and warnings) goes to stderr.
//
// Login and consent are plain HTML forms under /interaction/:uid so that an
// HTTP client with a cookie jar can sign in without a browser:
//   GET  /interaction/:uid           login form (login, password) or consent form
//   POST /interaction/:uid/login     checks the password; wrong → the form again (200)
//   POST /interaction/:uid/confirm   grants the requested scopes and claims
//   GET|POST /interaction/:uid/abort the user says no → error=access_denied
//
// With IDP_EXIT_ON_STDIN_CLOSE=1 the process exits when its stdin closes, so a
// test harness that dies without killing it does not leave it running.

import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';

// stdout carries only the ready line: send console output to stderr.
console.log = console.error;
console.info = console.error;

const { default: Provider, errors } = await import('oidc-provider');

// oidc-provider's in-memory adapter keeps its newest 1,000 entries only: a
// test signing in a few hundred users (each a session, a grant, codes and
// tokens) would lose the oldest grants, and their refresh tokens with
// them. Its adapter gets a store without that bound (entries still
// expire).
class UnboundedStore {
  constructor() { this.entries = new Map(); }
  get(key) {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }
  set(key, value, { maxAge } = {}) {
    const expiresAt = typeof maxAge === 'number' ? Date.now() + maxAge : undefined;
    this.entries.set(key, { value, expiresAt });
  }
  has(key) { return this.get(key) !== undefined; }
  delete(key) { return this.entries.delete(key); }
  clear() { this.entries.clear(); }
}
const { default: MemoryAdapter } = await import(
  new URL('./node_modules/oidc-provider/lib/adapters/memory_adapter.js', import.meta.url).href
);
const unboundedStore = new UnboundedStore();

const configPath = process.argv[2] || process.env.IDP_CONFIG;
if (!configPath) {
  console.error('usage: node server.js CONFIG.json (or IDP_CONFIG=CONFIG.json)');
  process.exit(2);
}
const config = JSON.parse(readFileSync(configPath, 'utf8'));
const port = config.port ?? 0;
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`invalid port ${JSON.stringify(config.port)}`);
  process.exit(2);
}
const users = config.users || [];
const clients = (config.clients || []).map((c) => {
  const client = {
    client_id: c.client_id,
    client_secret: c.client_secret,
    redirect_uris: c.redirect_uris,
    grant_types: c.grant_types || ['authorization_code', 'refresh_token'],
    response_types: ['code'],
  };
  if (c.token_endpoint_auth_method) {
    client.token_endpoint_auth_method = c.token_endpoint_auth_method;
  }
  if (c.id_token_signed_response_alg) {
    client.id_token_signed_response_alg = c.id_token_signed_response_alg;
  }
  return client;
});

function findUserById(id) {
  return users.find((u) => u.id === id);
}

function findUserByLogin(login) {
  return users.find((u) => u.username === login || (u.email && u.email === login));
}

// The claims of one user, without null values (a user without email has no
// `email` claim at all, as real providers do).
function userClaims(user) {
  const claims = {
    sub: user.id,
    email: user.email,
    email_verified: user.email ? Boolean(user.email_verified) : undefined,
    name: user.name,
    given_name: user.given_name,
    family_name: user.family_name,
    preferred_username: user.username,
  };
  for (const key of Object.keys(claims)) {
    if (claims[key] === null || claims[key] === undefined) delete claims[key];
  }
  return claims;
}

function htmlEscape(value) {
  return String(value)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>${htmlEscape(title)}</title></head>
<body>
<h1>${htmlEscape(title)}</h1>
${body}
</body>
</html>
`;
}

function loginPage(uid, clientId, error) {
  const u = encodeURIComponent(uid);
  return page('Sign in', `${error ? `<p id="error" class="error">${htmlEscape(error)}</p>\n` : ''}<p>Sign in to continue to <strong>${htmlEscape(clientId)}</strong>.</p>
<form id="login" method="post" action="/interaction/${u}/login" autocomplete="off">
<label>Username <input type="text" name="login" required autofocus></label>
<label>Password <input type="password" name="password" required></label>
<button type="submit">Sign in</button>
</form>
<form id="abort" method="post" action="/interaction/${u}/abort">
<button type="submit">Cancel</button>
</form>`);
}

function consentPage(uid, clientId, details) {
  const u = encodeURIComponent(uid);
  const scopes = [
    ...(details.missingOIDCScope || []),
    ...Object.values(details.missingResourceScopes || {}).flat(),
  ];
  const claims = details.missingOIDCClaims || [];
  return page('Authorize', `<p><strong>${htmlEscape(clientId)}</strong> asks for:</p>
<ul id="scopes">${scopes.map((s) => `<li>${htmlEscape(s)}</li>`).join('')}</ul>
${claims.length ? `<ul id="claims">${claims.map((c) => `<li>${htmlEscape(c)}</li>`).join('')}</ul>\n` : ''}<form id="consent" method="post" action="/interaction/${u}/confirm">
<button type="submit">Allow</button>
</form>
<form id="abort" method="post" action="/interaction/${u}/abort">
<button type="submit">Deny</button>
</form>`);
}

// Cookie-signing keys and the id_token signing key are made at start: a new
// JWKS for every process, which is what the tests want (no shared state).
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = {
  ...privateKey.export({ format: 'jwk' }),
  kid: randomBytes(8).toString('hex'),
  use: 'sig',
  alg: 'RS256',
};

const ttl = {
  AccessToken: 3600,
  AuthorizationCode: 600,
  IdToken: 3600,
  RefreshToken: 14 * 24 * 3600,
  Interaction: 3600,
  Session: 14 * 24 * 3600,
  Grant: 14 * 24 * 3600,
  ...(config.ttl || {}),
};

let provider;

function send(res, status, contentType, body, extraHeaders = {}) {
  res.writeHead(status, {
    'content-type': contentType,
    'cache-control': 'no-store',
    ...extraHeaders,
  });
  res.end(body);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function interaction(req, res, path) {
  const match = /^\/interaction\/([^/]+)(?:\/(login|confirm|abort))?\/?$/.exec(path);
  if (!match) {
    send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
    return;
  }
  const action = match[2];
  const details = await provider.interactionDetails(req, res);
  const { uid, prompt, params } = details;
  if (decodeURIComponent(match[1]) !== uid) {
    send(res, 400, 'text/plain; charset=utf-8', 'interaction mismatch\n');
    return;
  }

  if (!action) {
    if (req.method !== 'GET') {
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { allow: 'GET' });
      return;
    }
    if (prompt.name === 'login') {
      send(res, 200, 'text/html; charset=utf-8', loginPage(uid, params.client_id));
    } else if (prompt.name === 'consent') {
      send(res, 200, 'text/html; charset=utf-8', consentPage(uid, params.client_id, prompt.details));
    } else {
      send(res, 400, 'text/plain; charset=utf-8', `unsupported prompt ${prompt.name}\n`);
    }
    return;
  }

  if (action === 'abort') {
    if (req.method !== 'GET' && req.method !== 'POST') {
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { allow: 'GET, POST' });
      return;
    }
    await provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
    return;
  }

  if (req.method !== 'POST') {
    send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { allow: 'POST' });
    return;
  }

  if (action === 'login') {
    if (prompt.name !== 'login') {
      send(res, 400, 'text/plain; charset=utf-8', 'this interaction does not ask for a login\n');
      return;
    }
    const form = await readForm(req);
    const user = findUserByLogin(form.get('login') || '');
    if (!user || user.password !== (form.get('password') || '')) {
      send(res, 200, 'text/html; charset=utf-8', loginPage(uid, params.client_id, 'Invalid username or password.'));
      return;
    }
    await provider.interactionFinished(req, res, {
      login: { accountId: user.id },
    }, { mergeWithLastSubmission: false });
    return;
  }

  // confirm: grant what the prompt says is missing (oidc-provider's Grant API).
  if (prompt.name !== 'consent') {
    send(res, 400, 'text/plain; charset=utf-8', 'this interaction does not ask for consent\n');
    return;
  }
  await readForm(req);
  const missing = prompt.details;
  let grant;
  if (details.grantId) {
    grant = await provider.Grant.find(details.grantId);
  } else {
    grant = new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
  }
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  if (missing.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  }
  const grantId = await grant.save();
  const consent = details.grantId ? {} : { grantId };
  await provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
}

const server = createServer((req, res) => {
  if (!provider) {
    send(res, 503, 'text/plain; charset=utf-8', 'starting\n');
    return;
  }
  const path = (req.url || '/').split('?')[0];
  if (path === '/interaction' || path.startsWith('/interaction/')) {
    interaction(req, res, path).catch((err) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof errors.SessionNotFound) {
        // The interaction cookie is missing or the interaction expired.
        send(res, 400, 'text/plain; charset=utf-8', `${err.message}: ${err.error_description || ''}\n`);
      } else {
        console.error('interaction error:', err);
        send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
      }
    });
    return;
  }
  providerCallback(req, res);
});

let providerCallback;

server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;

  provider = new Provider(issuer, {
    clients,
    findAccount(ctx, sub) {
      const user = findUserById(sub);
      if (!user) return undefined;
      return {
        accountId: user.id,
        async claims() {
          return userClaims(user);
        },
      };
    },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name', 'preferred_username'],
    },
    // Like Google's and most providers' id_tokens, carry the scopes' claims
    // in the id_token too (OIDC Core's conform mode puts them in userinfo only).
    conformIdTokenClaims: Boolean(config.conform_id_token_claims),
    // true: every refresh grant gets a new refresh token and spends the old
    // one (as providers that rotate do); default: oidc-provider's own rule.
    ...(config.rotate_refresh_tokens ? { rotateRefreshToken: true } : {}),
    clockTolerance: Number(config.clock_tolerance ?? 0),
    adapter: (model) =>
      new MemoryAdapter(model, unboundedStore, Number(config.clock_tolerance ?? 0)),
    jwks: { keys: [signingKey] },
    // HS256 too (keyed with the client secret), for clients that ask for it:
    // the discovery document then lists it, as some providers' do.
    enabledJWA: {
      idTokenSigningAlgValues: ['RS256', 'HS256'],
    },
    cookies: {
      keys: [randomBytes(32).toString('base64url')],
      long: { httpOnly: true, sameSite: 'lax', secure: false },
      short: { httpOnly: true, sameSite: 'lax', secure: false },
    },
    features: {
      devInteractions: { enabled: false },
      userinfo: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
    },
    interactions: {
      url(ctx, interaction) {
        return `/interaction/${interaction.uid}`;
      },
    },
    pkce: {
      // S256 only (the default methods); required when the client is public.
      required: (ctx, client) => client.clientAuthMethod === 'none',
    },
    ttl,
    async renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = page('Error', Object.entries(out)
        .map(([key, value]) => `<p><strong>${htmlEscape(key)}</strong>: <span id="${htmlEscape(key)}">${htmlEscape(value)}</span></p>`)
        .join('\n'));
    },
  });
  providerCallback = provider.callback();

  // oidc-provider checks a client's metadata when it is first used: check
  // them all now, so a bad config fails the start instead of a later request.
  Promise.all(clients.map(async ({ client_id: id }) => {
    if (!(await provider.Client.find(id))) throw new Error(`client ${id} not found`);
  })).then(() => {
    process.stdout.write(`IDP_READY ${issuer}\n`);
  }, (err) => {
    console.error(`invalid client configuration: ${err.message}${err.error_description ? ` (${err.error_description})` : ''}`);
    process.exit(1);
  });
});

server.on('error', (err) => {
  console.error('listen error:', err);
  process.exit(1);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}

if (process.env.IDP_EXIT_ON_STDIN_CLOSE === '1') {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}
