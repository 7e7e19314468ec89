// A real OpenID Provider for cocov's OIDC sign-in tests (tests/oidc.rs): the certified
// `oidc-provider` package with its own development login and consent pages, which the tests
// drive over HTTP like a browser would.
//
//   node server.js '{"port": 4000, "clients": [...], "accounts_file": "/tmp/accounts.json"}'
//
// `clients` is oidc-provider client metadata. `accounts_file` maps an account id (the ID
// token's `sub`, and what one types as login on the login page) to its claims, e.g.
// {"alice-sub": {"preferred_username": "alice", "groups": ["devs"]}}. It is read on every
// lookup, so a test changes a user's groups or login by rewriting the file. An unknown id
// signs in as nobody (the provider refuses it). Each start makes a fresh RS256 key, so two
// instances never share a signing key. Prints "listening <issuer>" once it serves.

import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';

import Provider from 'oidc-provider';

const options = JSON.parse(process.argv[2] ?? '{}');
const port = options.port ?? 0;
const issuer = `http://127.0.0.1:${port}`;

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), use: 'sig', alg: 'RS256' };

function accounts() {
  return JSON.parse(readFileSync(options.accounts_file, 'utf8'));
}

const provider = new Provider(issuer, {
  clients: options.clients ?? [],
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomUUID()] },
  scopes: ['openid', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    groups: ['groups'],
  },
  // ID tokens carry the scope's claims themselves, as Keycloak's do; a test that wants the
  // userinfo path asks for it with "claims_in_userinfo_only".
  conformIdTokenClaims: options.claims_in_userinfo_only === true,
  async findAccount(ctx, id) {
    const claims = accounts()[id];
    if (!claims) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...claims }; } };
  },
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
});
// Plain http on loopback: tell the provider the tests are not behind a TLS proxy.
provider.proxy = false;

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
