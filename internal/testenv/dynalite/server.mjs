// server.mjs runs the npm `dynalite` DynamoDB API server for ztproxy tests. It is
// started by internal/testenv.StartDynalite; it is never used in production.
//
// Env: PORT        (required) port to listen on, bound to 127.0.0.1 only.
//      DATA_DIR    (optional) LevelDB directory; in-memory storage when empty.
//      TABLE_MS    (optional) ms that tables stay CREATING/DELETING/UPDATING
//                  (dynalite's default is 500).
// Prints "READY http://127.0.0.1:<port>" on stdout when listening; exits 0 on
// SIGTERM/SIGINT.

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const dynalite = require('dynalite');

const port = Number.parseInt(process.env.PORT ?? '', 10);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  process.stderr.write('dynalite: PORT must be set to a TCP port\n');
  process.exit(2);
}

const options = {};
if (process.env.DATA_DIR) options.path = process.env.DATA_DIR;
if (process.env.TABLE_MS !== undefined && process.env.TABLE_MS !== '') {
  const ms = Number.parseInt(process.env.TABLE_MS, 10);
  options.createTableMs = ms;
  options.deleteTableMs = ms;
  options.updateTableMs = ms;
}

const server = dynalite(options);
server.on('error', (err) => {
  process.stderr.write(`dynalite: ${err.stack}\n`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`READY http://127.0.0.1:${port}\n`);
});

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
