/**
 * The bench's tiny backend: the connect proxy (a `session=<user>` cookie is the user) and the
 * publish proxy (stores nothing, gives each message an id), each checking the signature.
 * Run: `node --import tsx bench/proxy/backend.ts SECRET`; prints `ready <port>`.
 */
import { createServer } from 'node:http';
import { verifySignature } from '../../src/backend-http/signed-post.js';

const secret = process.argv[2] ?? '';
let nextId = 1;
const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const raw = Buffer.concat(chunks).toString('utf8');
    const header = req.headers['x-switchboard-signature'];
    if (!verifySignature(raw, secret, typeof header === 'string' ? header : undefined)) {
      res.writeHead(401).end();
      return;
    }
    const body = JSON.parse(raw) as { headers: Record<string, string>; data?: Record<string, unknown> };
    let answer: unknown;
    if (req.url === '/connect') {
      const user = /(?:^|;\s*)session=([^;]+)/.exec(body.headers.cookie ?? '')?.[1];
      answer = user ? { result: { user } } : { error: { code: 1401, message: 'not logged in' } };
    } else {
      answer = { result: { data: { ...body.data, id: nextId++ } } };
    }
    const text = JSON.stringify(answer);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`ready ${typeof address === 'object' && address ? address.port : 0}\n`);
});
