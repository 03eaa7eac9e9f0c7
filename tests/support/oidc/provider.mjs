// A real, certified OpenID Provider (npm `oidc-provider`) on loopback for the tests
// (tests/support/oidc_provider.py starts it). One confidential client, PKCE required,
// the library's dev interactions: a login form where any login signs in (the login is
// the subject) and a consent form. The user's email is the login when it has an "@",
// else `<login>@example.test`.
//
//   node provider.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI [REDIRECT_URI...]
import Provider from 'oidc-provider';

const [port, clientId, clientSecret, ...redirectUris] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: redirectUris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
  },
  // Claims go into the ID token itself (no userinfo call needed).
  conformIdTokenClaims: false,
  cookies: { keys: ['vedika-test-oidc-provider-cookie-key'] },
  ttl: { Session: 600, Interaction: 600, Grant: 600, AuthorizationCode: 60, IdToken: 300, AccessToken: 300 },
  async findAccount(_ctx, sub) {
    const email = sub.includes('@') ? sub : `${sub}@example.test`;
    return {
      accountId: sub,
      async claims() {
        return { sub, email, email_verified: !sub.startsWith('unverified'), name: `Test ${sub.split('@')[0]}` };
      },
    };
  },
});
provider.proxy = false;

const server = provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => server.close(() => process.exit(0)));
}
