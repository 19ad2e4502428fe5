// A real, certified OpenID Provider (the `oidc-provider` package) on
// loopback, for borne's single sign-on tests. It knows one client (borne)
// and three people: a teacher, an IT admin, and someone who matches no
// borne user. Its login form checks their passwords; consent is implied
// for the one first-party client, as schools' providers do.
//
//   node provider.mjs --port P --redirect-uri URL [--post-logout-redirect-uri URL]
//                     [--client-id borne] [--client-secret S | --public]
//                     [--auth-method client_secret_basic|client_secret_post]
//
// Only 127.0.0.1 is ever bound. When the provider is ready it prints
// "oidc-provider ready on http://127.0.0.1:P" on stdout.
//
// Test controls (a test peer only, never part of a real provider):
//   POST /__test/fault?mode=M   tamper with the ID tokens the token endpoint
//                               returns from now on: none, wrong-issuer,
//                               wrong-audience, expired, other-key, replay
//                               (hand back the previous ID token again)
//   POST /__test/rotate         rotate the signing key: a new key (new kid)
//                               signs from now on and the old one leaves the
//                               JWKS, as after a provider's key rollover

import http from 'node:http';
import { parseArgs } from 'node:util';
import { exportJWK, generateKeyPair, SignJWT, decodeJwt, decodeProtectedHeader } from 'jose';
import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    'redirect-uri': { type: 'string', multiple: true, default: [] },
    'post-logout-redirect-uri': { type: 'string', multiple: true, default: [] },
    'client-id': { type: 'string', default: 'borne' },
    'client-secret': { type: 'string', default: 'borne-test-secret' },
    public: { type: 'boolean', default: false },
    'auth-method': { type: 'string', default: 'client_secret_basic' },
  },
});
if (!args.port || !args['redirect-uri'].length) {
  console.error('usage: node provider.mjs --port P --redirect-uri URL [...]');
  process.exit(2);
}
const port = Number(args.port);
const issuer = `http://127.0.0.1:${port}`;

/** The people this provider knows; the tests sign in as them. */
export const ACCOUNTS = {
  'c.martin': {
    password: 'martin-password',
    claims: { name: 'Claire Martin', email: 'c.martin@ecole.example', groups: ['ecole-jules-ferry-enseignants'] },
  },
  'it.admin': {
    password: 'admin-password',
    claims: { name: 'Service informatique', email: 'it@ville.example', groups: ['dsi-ecoles'] },
  },
  'p.inconnu': {
    password: 'inconnu-password',
    claims: { name: 'Paul Inconnu', email: 'p.inconnu@ecole.example', groups: ['parents'] },
  },
};

let signing = await newKey(); // { privateJwk, kid }
let fault = 'none';
const cookieKey = (await import('node:crypto')).randomBytes(32).toString('hex');
let lastIdToken = null;

async function newKey() {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const privateJwk = await exportJWK(privateKey);
  privateJwk.kid = `k-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  privateJwk.alg = 'RS256';
  privateJwk.use = 'sig';
  return privateJwk;
}

function buildProvider() {
  const client = {
    client_id: args['client-id'],
    redirect_uris: args['redirect-uri'],
    post_logout_redirect_uris: args['post-logout-redirect-uri'],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: args.public ? 'none' : args['auth-method'],
  };
  if (!args.public) client.client_secret = args['client-secret'];
  const provider = new Provider(issuer, {
    clients: [client],
    // Random per run: the provider's cookies only have to outlive one test.
    cookies: { keys: [cookieKey] },
    jwks: { keys: [signing] },
    clientAuthMethods: args.public ? ['none'] : [args['auth-method']],
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email'],
      groups: ['groups'],
    },
    scopes: ['openid', 'profile', 'email', 'groups'],
    // Claims of the granted scopes in the ID token itself, as most schools'
    // providers are set up (borne reads them there).
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false } },
    pkce: { required: () => true },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, sub) {
      const account = ACCOUNTS[sub];
      if (!account) return undefined;
      return {
        accountId: sub,
        async claims() {
          return { sub, preferred_username: sub, ...account.claims };
        },
      };
    },
    // One first-party client: consent is implied.
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope('openid profile email groups');
      await grant.save();
      return grant;
    },
    renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = `<!doctype html><title>error</title><h1>${escape(out.error)}</h1><p>${escape(out.error_description || '')}</p>`;
    },
  });
  provider.use(tamper);
  return provider;
}

/** Rewrites the ID token of a token response when a fault is set. */
async function tamper(ctx, next) {
  await next();
  if (ctx.path !== '/token' || ctx.method !== 'POST' || !ctx.body || typeof ctx.body !== 'object' || !ctx.body.id_token) return;
  const issued = ctx.body.id_token;
  if (fault === 'replay' && lastIdToken) {
    ctx.body = { ...ctx.body, id_token: lastIdToken };
    return;
  }
  lastIdToken = issued;
  if (fault === 'none') return;
  const claims = decodeJwt(issued);
  const header = decodeProtectedHeader(issued);
  let key = signing;
  if (fault === 'wrong-issuer') claims.iss = 'http://127.0.0.1:1/realms/elsewhere';
  else if (fault === 'wrong-audience') claims.aud = 'another-client';
  else if (fault === 'expired') {
    claims.iat = Math.floor(Date.now() / 1000) - 3600;
    claims.exp = Math.floor(Date.now() / 1000) - 1800;
  } else if (fault === 'other-key') {
    // Same kid, another private key: only the signature can tell.
    key = { ...(await newKey()), kid: signing.kid };
  }
  const { importJWK } = await import('jose');
  const privateKey = await importJWK(key, 'RS256');
  ctx.body = {
    ...ctx.body,
    id_token: await new SignJWT(claims).setProtectedHeader({ ...header, kid: key.kid }).sign(privateKey),
  };
}

function escape(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

let provider = buildProvider();

/** The login form: checks the password, then hands the person back to the provider. */
async function interaction(req, res, uid, body) {
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (e) {
    res.writeHead(400, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><h1>session expired</h1><p>${escape(e.message)}</p>`);
    return;
  }
  if (details.uid !== uid) {
    res.writeHead(400).end('interaction mismatch');
    return;
  }
  let message = '';
  if (body) {
    const form = new URLSearchParams(body);
    const login = form.get('login') || '';
    const account = ACCOUNTS[login];
    if (account && form.get('password') === account.password) {
      await provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
      return;
    }
    message = '<p id="error" role="alert">Identifiant ou mot de passe incorrect.</p>';
  }
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>ENT — connexion</title></head>
<body><h1>Connexion à l'ENT</h1>${message}
<form method="post" action="/interaction/${escape(uid)}">
<label>Identifiant <input name="login" id="login" autocomplete="username" required></label>
<label>Mot de passe <input name="password" id="password" type="password" autocomplete="current-password" required></label>
<button type="submit" id="submit">Se connecter</button>
</form></body></html>`);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (c) => {
      data += c;
      if (data.length > 65536) req.destroy();
    });
    req.on('end', () => resolve(data));
    req.on('error', reject);
  });
}

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, issuer);
    if (url.pathname === '/__test/fault' && req.method === 'POST') {
      fault = url.searchParams.get('mode') || 'none';
      if (fault === 'none') lastIdToken = null;
      res.writeHead(204).end();
      return;
    }
    if (url.pathname === '/__test/rotate' && req.method === 'POST') {
      signing = await newKey();
      provider = buildProvider();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ kid: signing.kid }));
      return;
    }
    const m = url.pathname.match(/^\/interaction\/([A-Za-z0-9_-]+)$/);
    if (m) {
      await interaction(req, res, m[1], req.method === 'POST' ? await readBody(req) : null);
      return;
    }
    provider.callback()(req, res);
  } catch (e) {
    console.error(e);
    if (!res.headersSent) res.writeHead(500).end(String(e.message));
  }
});
server.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider ready on ${issuer}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
// A test that dies without stopping us must not leave us behind.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
