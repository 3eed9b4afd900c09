// Usage lines live here, apart from the commands, so `--help` and `--version` load none of the server.
export const SERVE_USAGE =
  'switchboard serve [--port N] [--host H] [--config FILE] [--memory] [--redis URL] [--redis-cluster HOST:PORT,…] [--redis-cluster-tls] [--redis-cluster-ca FILE] [--postgres URL] [--workers N|auto] [--demo] [--admin-port N]';
export const TOKEN_USAGE = 'switchboard token --user ID [--ttl 1h] [--channels a,b]';
export const TAIL_USAGE = 'switchboard tail CHANNEL [--url ws://127.0.0.1:7070] [--user ID] [--token JWT]';
export const PUBLISH_USAGE = 'switchboard publish CHANNEL JSON [--url http://127.0.0.1:7070] [--idempotency-key KEY]';
export const MIGRATE_USAGE = 'switchboard migrate [--config FILE] [--postgres URL] [--schema NAME] [--table NAME]';

/** `switchboard COMMAND --help`: the command's usage, what it does, and its options. */
export const COMMAND_HELP: Record<string, string> = {
  serve: `usage: ${SERVE_USAGE}

Runs a Switchboard server: WebSocket at /ws, SSE at /sse, the HTTP API at /api, the pages and the
admin UI at /admin. Configuration: the --config file, then SWITCHBOARD_* variables, then flags.
Without a token secret or API key it creates both once in <data dir>/secrets.json.

  --port N          port to listen on (default 7070; 0 picks a free one); also SWITCHBOARD_PORT
  --host H          interface (default all; 127.0.0.1 keeps it local)
  --config FILE     a JSON file of options (docs/operations.md)
  --memory          keep history in memory only (nothing under the data directory)
  --redis URL       scale out over Redis (broker, presence, store); also SWITCHBOARD_REDIS_URL
  --redis-cluster HOST:PORT,…
                    scale out over a Redis Cluster (seed nodes; sharded pub/sub); also SWITCHBOARD_REDIS_CLUSTER
  --redis-cluster-tls
                    TLS to every cluster node (system CAs); also SWITCHBOARD_REDIS_CLUSTER_TLS=1
  --redis-cluster-ca FILE
                    TLS with this CA (PEM); also SWITCHBOARD_REDIS_CLUSTER_CA. The nodes' password
                    only from SWITCHBOARD_REDIS_CLUSTER_PASSWORD (and _USERNAME) or the config
  --postgres URL    consume the PostgreSQL outbox (docs/postgres.md); also SWITCHBOARD_POSTGRES_URL
  --workers N|auto  run N processes sharing the port (auto: one per core); needs Redis
  --demo            demo mode: demo tokens for any name at /demo/token — local use only
  --admin-port N    a second listener (127.0.0.1) for /metrics, health and the admin UI`,
  token: `usage: ${TOKEN_USAGE}

Prints a connection token (JWT, HS256) for a user, signed with SWITCHBOARD_TOKEN_SECRET or the
data directory's secret.

  --user ID         the user (JWT sub); required
  --ttl T           lifetime: 90 (seconds), 30m, 1h (default) or 7d
  --channels a,b    a channels claim: channels or namespace:* patterns the token grants`,
  tail: `usage: ${TAIL_USAGE}

Subscribes to a channel and prints each publication's data as one JSON line; reconnects and
recovers missed publications by itself, and says on stderr when it cannot connect.

  --url URL         the server's WebSocket (or http) URL (default ws://127.0.0.1:7070)
  --user ID         the user to sign a token for (default cli)
  --token JWT       a token to use instead of signing one`,
  publish: `usage: ${PUBLISH_USAGE}

Publishes JSON to a channel through the HTTP API (with SWITCHBOARD_API_KEY or the data
directory's key) and prints the resulting position {"offset","epoch"}.

  --url URL                 the server's HTTP URL (default http://127.0.0.1:7070)
  --idempotency-key KEY     a retry with the same key is applied once`,
  migrate: `usage: ${MIGRATE_USAGE}

Creates or updates the PostgreSQL outbox table, its functions and the store tables (every
\`serve\` with PostgreSQL does it too). See docs/postgres.md.

  --config FILE     a JSON file of options (its postgres section)
  --postgres URL    the database (also SWITCHBOARD_POSTGRES_URL)
  --schema NAME     the schema (default public)
  --table NAME      the outbox table (default switchboard_outbox)`,
};
