// server.mjs runs the certified npm `oidc-provider` as a real OpenID Provider for
// ztproxy tests. It is started by internal/testenv.StartOIDC; it is never used in
// production.
//
// Usage: node server.mjs <config.json>
// Env:   PORT   (required) port to listen on, bound to 127.0.0.1 only.
//        ISSUER (optional) defaults to http://127.0.0.1:$PORT (no trailing slash:
//               oidc-provider compares the issuer byte for byte).
//
// The config file (JSON) lists clients, users, resource servers and TTLs; see
// config.example.json next to this file. When listening, the program prints
// "READY <issuer>" on stdout. It exits 0 on SIGTERM/SIGINT.
//
// Interactions: a small custom login page replaces devInteractions, because
// devInteractions cannot set acr/amr. The consent prompt is granted
// automatically (all requested scopes, claims and resource scopes).
//
// Cognito mode ("cognito": true in the config) shapes user access tokens as
// Amazon Cognito's: no email, token_use "access", username and cognito:groups,
// and a scope claim naming the OpenID scopes as well as the resource's. Like
// Cognito's, such a JWT access token is then also accepted at the userinfo
// endpoint: oidc-provider only accepts its opaque, audience-less access tokens
// there, so every JWT access token with the openid scope gets an opaque twin
// with the same account, grant, OpenID scopes and expiry, and a userinfo request
// bearing a JWT this OP signed is answered for its twin. The userinfo answer
// itself is oidc-provider's own (claims by granted scope).

import * as crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';

import Provider, { errors, interactionPolicy } from 'oidc-provider';

const ACR_PASSWORD = 'urn:ztp:loa:1';
const ACR_MFA = 'urn:ztp:loa:mfa';

function fail(msg) {
  process.stderr.write(`oidcprovider: ${msg}\n`);
  process.exit(2);
}

const configPath = process.argv[2] || process.env.CONFIG;
if (!configPath) fail('usage: node server.mjs <config.json>');
const port = Number.parseInt(process.env.PORT ?? '', 10);
if (!Number.isInteger(port) || port <= 0 || port > 65535) fail('PORT must be set to a TCP port');
const issuer = process.env.ISSUER || `http://127.0.0.1:${port}`;

let cfg;
try {
  cfg = JSON.parse(readFileSync(configPath, 'utf8'));
} catch (err) {
  fail(`reading config ${configPath}: ${err.message}`);
}

const users = new Map((cfg.users ?? []).map((u) => [u.sub, u]));
const usersByName = new Map();
for (const u of users.values()) {
  usersByName.set(u.sub, u);
  if (u.email) usersByName.set(u.email.toLowerCase(), u);
}
const resources = new Map((cfg.resources ?? []).map((r) => [r.indicator, r]));
const cognito = cfg.cognito === true;
// jti of a Cognito-mode JWT access token -> the opaque twin accepted at userinfo.
const userinfoTwins = new Map();
const ttl = cfg.ttl ?? {};
const acrValues = cfg.acrValues ?? [ACR_PASSWORD, ACR_MFA];

function toClientMetadata(c) {
  const grantTypes = c.grant_types ?? ['authorization_code', 'refresh_token'];
  const isWeb = grantTypes.includes('authorization_code');
  return {
    client_id: c.client_id,
    client_secret: c.client_secret,
    grant_types: grantTypes,
    response_types: isWeb ? ['code'] : [],
    redirect_uris: isWeb ? (c.redirect_uris ?? []) : [],
    post_logout_redirect_uris: c.post_logout_redirect_uris ?? [],
    token_endpoint_auth_method: c.token_endpoint_auth_method ?? 'client_secret_basic',
    ...(c.scope ? { scope: c.scope } : undefined),
    // OpenID Connect Back-Channel Logout 1.0: the OP POSTs a logout token
    // (with the session's sid) here when the user's OP session ends.
    ...(c.backchannel_logout_uri ? {
      backchannel_logout_uri: c.backchannel_logout_uri,
      backchannel_logout_session_required: true,
    } : undefined),
  };
}

function userClaims(u) {
  return {
    sub: u.sub,
    email: u.email,
    email_verified: u.email_verified ?? true,
    groups: u.groups ?? [],
    name: u.name ?? u.email ?? u.sub,
    preferred_username: u.preferred_username ?? u.email ?? u.sub,
    username: u.username ?? u.sub,
  };
}

// Keys are generated per process: tests fetch them from jwks_uri, as any RP must.
const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
function signingKeys() {
  const jwk = privateKey.export({ format: 'jwk' });
  return [{ ...jwk, kid: `rs256-${crypto.randomBytes(6).toString('hex')}`, alg: 'RS256', use: 'sig' }];
}

// cognitoShape turns a user's JWT access token into Cognito's shape and
// registers its opaque twin for the userinfo endpoint (Cognito mode only).
async function cognitoShape(ctx, token, jwt) {
  if (!cognito || token.kind !== 'AccessToken' || !token.accountId || !token.grantId) return;
  const grant = await provider.Grant.find(token.grantId);
  const oidcScope = grant?.getOIDCScope() ?? '';
  jwt.payload.scope = [oidcScope, jwt.payload.scope ?? ''].join(' ').trim();
  if (!oidcScope.split(' ').includes('openid')) return;
  const twin = new provider.AccessToken({
    accountId: token.accountId,
    client: token.client ?? await provider.Client.find(token.clientId),
    grantId: token.grantId,
    scope: oidcScope,
    claims: token.claims,
    expiresIn: Math.max(1, jwt.payload.exp - Math.floor(Date.now() / 1000)),
  });
  userinfoTwins.set(jwt.payload.jti, await twin.save());
}

// userinfoTwin returns the opaque twin of a Cognito-mode JWT access token this
// OP signed and that has not expired, or undefined.
function userinfoTwin(authorization) {
  const m = /^Bearer ([\w-]+)\.([\w-]+)\.([\w-]+)$/.exec(authorization ?? '');
  if (!m) return undefined;
  const ok = crypto.verify('RSA-SHA256', Buffer.from(`${m[1]}.${m[2]}`), publicKey, Buffer.from(m[3], 'base64url'));
  if (!ok) return undefined;
  const payload = JSON.parse(Buffer.from(m[2], 'base64url').toString('utf8'));
  if (!(payload.exp > Date.now() / 1000)) return undefined;
  return userinfoTwins.get(payload.jti);
}

// A login is forced when the RP asks (acr_values) for an assurance level that the
// current session does not have, as step-up capable IdPs do. oidc-provider itself
// only enforces *essential* acr requests made via the claims parameter.
function loginPolicy() {
  const policy = interactionPolicy.base();
  const login = policy.get('login');
  login.checks.push(new interactionPolicy.Check(
    'acr_values_not_satisfied',
    'requested acr_values could not be obtained',
    'login_required',
    (ctx) => {
      const requested = ctx.oidc.params.acr_values;
      if (!requested) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      if (ctx.oidc.result?.login) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      const wanted = String(requested).split(' ').filter(Boolean);
      return wanted.includes(ctx.oidc.acr)
        ? interactionPolicy.Check.NO_NEED_TO_PROMPT
        : interactionPolicy.Check.REQUEST_PROMPT;
    },
  ));
  return policy;
}

const provider = new Provider(issuer, {
  clients: (cfg.clients ?? []).map(toClientMetadata),
  jwks: { keys: signingKeys() },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  acrValues,
  // oidc-provider puts acr and auth_time into an ID token only when the RP asked
  // for them (acr_values, max_age, claims parameter). Listing them under the
  // openid scope puts acr, amr and auth_time into every ID token, which ztproxy's
  // policy context relies on. The standalone (null) entries are the defaults
  // that replacing this object would otherwise drop.
  claims: {
    acr: null,
    amr: null,
    sid: null,
    auth_time: null,
    iss: null,
    openid: ['sub', 'acr', 'amr', 'auth_time'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
    profile: ['name', 'preferred_username', 'groups', 'username'],
  },
  scopes: ['openid', 'offline_access', 'email', 'groups', 'profile'],
  // Put scope-requested claims into the ID token too (as Cognito and most IdPs do),
  // not only into the userinfo response.
  conformIdTokenClaims: false,
  responseTypes: ['code'],
  // oidc-provider refuses outgoing requests to special-use addresses (SSRF
  // protection); this test OP must reach the proxy under test on loopback
  // for back-channel logout, so its requests use the plain dispatcher.
  fetch: (url, options) => {
    delete options.dispatcher;
    return globalThis.fetch(url, options);
  },
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    backchannelLogout: { enabled: true },
    claimsParameter: { enabled: true },
    userinfo: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      logoutSource,
      postLogoutSuccessSource,
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf ?? cfg.defaultResource,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, indicator) => {
        const r = resources.get(indicator);
        if (!r) throw new errors.InvalidTarget(`unknown resource ${indicator}`);
        return {
          scope: r.scope ?? '',
          audience: r.audience ?? indicator,
          accessTokenTTL: r.accessTokenTTL ?? ttl.AccessToken ?? 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  interactions: {
    url: async (_ctx, interaction) => `/interaction/${interaction.uid}`,
    policy: loginPolicy(),
  },
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: cfg.rotateRefreshToken ?? true,
  // Copy the user's identity into JWT access tokens so bearer-token tests see the
  // same facts a browser session does; in Cognito mode, what Cognito puts there.
  extraTokenClaims: async (_ctx, token) => {
    if (!token.accountId) return cognito ? { token_use: 'access' } : undefined;
    const u = users.get(token.accountId);
    if (!u) return undefined;
    if (cognito) {
      return { token_use: 'access', username: u.username ?? u.sub, 'cognito:groups': u.groups ?? [] };
    }
    return { email: u.email, email_verified: u.email_verified ?? true, groups: u.groups ?? [] };
  },
  formats: { customizers: { jwt: cognitoShape } },
  findAccount: async (_ctx, sub) => {
    const u = users.get(sub);
    if (!u) return undefined;
    return {
      accountId: sub,
      claims: async () => userClaims(u),
    };
  },
  ttl: {
    AccessToken: ttl.AccessToken ?? 600,
    IdToken: ttl.IdToken ?? 600,
    Session: ttl.Session ?? 3600,
    Grant: ttl.Grant ?? 3600,
    Interaction: ttl.Interaction ?? 600,
    AuthorizationCode: ttl.AuthorizationCode ?? 60,
    RefreshToken: ttl.RefreshToken ?? 86400,
    ClientCredentials: ttl.ClientCredentials ?? ttl.AccessToken ?? 600,
  },
  renderError: async (ctx, out) => {
    ctx.type = 'html';
    ctx.body = page('Error', Object.entries(out)
      .map(([k, v]) => `<p><strong id="${esc(k)}">${esc(k)}</strong>: ${esc(v)}</p>`).join(''));
  },
});

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[c]);
}

function page(title, body) {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${esc(title)}</title></head>`
    + `<body><h1>${esc(title)}</h1>${body}</body></html>`;
}

// The logout confirmation is submitted automatically by script so that browser
// tests need no click; a non-browser client can POST the same form itself.
async function logoutSource(ctx, form) {
  ctx.body = page('Sign out', `${form}`
    + '<button id="submit" type="submit" form="op.logoutForm" value="yes" name="logout">Sign out</button>'
    + '<script>var f=document.getElementById("op.logoutForm");'
    + 'var i=document.createElement("input");i.type="hidden";i.name="logout";i.value="yes";'
    // The button's id "submit" shadows form.submit, so call the prototype.
    + 'f.appendChild(i);HTMLFormElement.prototype.submit.call(f);</script>');
}

async function postLogoutSuccessSource(ctx) {
  ctx.body = page('Signed out', '<p id="signed-out">You are signed out.</p>');
}

function loginForm(uid, details, error) {
  const wantsMFA = String(details.params.acr_values ?? '').split(' ').includes(ACR_MFA);
  return page('Sign in', `${error ? `<p id="error" role="alert">${esc(error)}</p>` : ''}`
    + `<form id="login" method="post" action="/interaction/${esc(uid)}/login" autocomplete="off">`
    + `<label>Username <input id="username" name="username" value="${esc(details.params.login_hint ?? '')}" required></label><br>`
    + '<label>Password <input id="password" type="password" name="password" required></label><br>'
    + `<label><input id="mfa" type="checkbox" name="mfa" value="1"${wantsMFA ? ' checked' : ''}> I used my second factor</label><br>`
    + '<button id="submit" type="submit">Sign in</button></form>');
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function sendHTML(res, status, body) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(body);
}

// grantEverything grants all that the consent prompt reports as missing.
async function grantEverything(details) {
  const { accountId } = details.session;
  const clientId = details.params.client_id;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId, clientId });
  const missing = details.prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  return grant.save();
}

async function handleInteraction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    sendHTML(res, 400, page('Error', '<p id="error">interaction mismatch</p>'));
    return;
  }
  if (details.prompt.name === 'consent') {
    const grantId = await grantEverything(details);
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return;
  }
  if (details.prompt.name !== 'login') {
    sendHTML(res, 400, page('Error', `<p id="error">unsupported prompt ${esc(details.prompt.name)}</p>`));
    return;
  }
  if (req.method === 'GET' && action === '') {
    sendHTML(res, 200, loginForm(uid, details));
    return;
  }
  if (req.method !== 'POST' || action !== 'login') {
    sendHTML(res, 405, page('Error', '<p id="error">method not allowed</p>'));
    return;
  }
  const form = await readForm(req);
  const username = (form.get('username') ?? '').trim();
  const user = usersByName.get(username) ?? usersByName.get(username.toLowerCase());
  const password = Buffer.from(form.get('password') ?? '');
  const ok = user && password.length === Buffer.byteLength(user.password)
    && crypto.timingSafeEqual(password, Buffer.from(user.password));
  if (!ok) {
    sendHTML(res, 200, loginForm(uid, details, 'Invalid username or password.'));
    return;
  }
  const mfa = ['1', 'on', 'true', 'yes'].includes(form.get('mfa') ?? '');
  const login = {
    accountId: user.sub,
    acr: mfa ? ACR_MFA : ACR_PASSWORD,
    amr: mfa ? ['pwd', 'otp'] : ['pwd'],
    remember: true,
  };
  await provider.interactionFinished(req, res, { login }, { mergeWithLastSubmission: false });
}

const providerHandler = provider.callback();
const interactionPath = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login))?\/?$/;

const server = http.createServer((req, res) => {
  const { pathname } = new URL(req.url, issuer);
  if (cognito && pathname === '/me') {
    const twin = userinfoTwin(req.headers.authorization);
    if (twin) req.headers.authorization = `Bearer ${twin}`;
  }
  const m = interactionPath.exec(pathname);
  if (!m) {
    providerHandler(req, res);
    return;
  }
  handleInteraction(req, res, m[1], m[2] ?? '').catch((err) => {
    if (res.headersSent) {
      res.end();
      return;
    }
    sendHTML(res, err.statusCode ?? 500, page('Error',
      `<p id="error">${esc(err.error ?? 'server_error')}: ${esc(err.error_description ?? err.message)}</p>`));
  });
});

provider.on('backchannel.error', (_ctx, err, client) => process.stderr.write(`oidcprovider backchannel.error ${client.clientId}: ${err.message} ${err.cause?.code ?? ""} ${err.cause?.message ?? ""}\n`));
provider.on('server_error', (_ctx, err) => process.stderr.write(`oidcprovider server_error: ${err.stack}\n`));

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`READY ${issuer}\n`);
});

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
