// server.mjs runs the npm `cognito-local` Amazon Cognito emulator for ztproxy
// tests. It is started by internal/testenv.StartCognitoLocal; it is never used in
// production.
//
// Env: PORT      (required) port to listen on, bound to 127.0.0.1 only.
//      DATA_DIR  (required) directory for the emulator's .cognito state.
// Prints "READY http://127.0.0.1:<port>" on stdout when listening; exits 0 on
// SIGTERM/SIGINT.
//
// One correction, and only one, is made to the emulator's answers: its
// discovery document names http://localhost:9229 whatever the port, so this
// program serves /<pool>/.well-known/openid-configuration itself, with the same
// members (issuer, jwks_uri, id_token_signing_alg_values_supported) for the
// origin it really listens on. Like cognito-local's, and like a user pool
// without a domain, it names no authorization_endpoint, token_endpoint or
// userinfo_endpoint. Every other request goes to cognito-local unchanged.

import { mkdirSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import { createRequire } from 'node:module';
import * as path from 'node:path';

const require = createRequire(import.meta.url);

function fail(msg) {
  process.stderr.write(`cognitolocal: ${msg}\n`);
  process.exit(2);
}

const port = Number.parseInt(process.env.PORT ?? '', 10);
if (!Number.isInteger(port) || port <= 0 || port > 65535) fail('PORT must be set to a TCP port');
const dataDir = process.env.DATA_DIR;
if (!dataDir) fail('DATA_DIR must be set');
const origin = `http://127.0.0.1:${port}`;

// cognito-local reads .cognito/ under the working directory and takes its host
// and port from the environment when its config module loads.
mkdirSync(path.join(dataDir, '.cognito', 'db'), { recursive: true });
writeFileSync(path.join(dataDir, '.cognito', 'config.json'), JSON.stringify({
  TokenConfig: { IssuerDomain: origin },
  // Usernames are names, not email addresses, so username, email and sub differ.
  UserPoolDefaults: { UsernameAttributes: [] },
}));
process.chdir(dataDir);
process.env.HOST = '127.0.0.1';

const pino = require('pino');
const { createDefaultServer } = require('cognito-local/lib/server/defaults.js');

const logger = pino({ level: process.env.DEBUG ? 'debug' : 'warn' }, process.stderr);
const cognito = await createDefaultServer(logger);
const app = cognito.application;

const discoveryPath = /^\/([\w-]+)\/\.well-known\/openid-configuration$/;

const server = http.createServer((req, res) => {
  const { pathname } = new URL(req.url, origin);
  const m = discoveryPath.exec(pathname);
  if (req.method === 'GET' && m) {
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify({
      id_token_signing_alg_values_supported: ['RS256'],
      jwks_uri: `${origin}/${m[1]}/.well-known/jwks.json`,
      issuer: `${origin}/${m[1]}`,
    }));
    return;
  }
  app(req, res);
});
server.on('error', (err) => {
  process.stderr.write(`cognitolocal: ${err.stack}\n`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`READY ${origin}\n`);
});

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
