/**
 * The frames the WebSocket fuzz (test/fuzz-ws.test.ts) sends, as fast-check arbitraries: random
 * frames (text, binary, invalid UTF-8, oversized), batches of lines split by `\n` (or `\r\n`),
 * random JSON shapes, deeply nested JSON (up to 5,000 levels), huge numbers, and, for every
 * method of docs/protocol.md, params with wrong types, missing or extra fields. How a frame is
 * rendered and what the server owes for it is in test/support/fuzz-lane.ts.
 */
import fc from 'fast-check';

/** The largest `limits.maxJsonDepth` a hub may be configured with. */
export const MAX_ALLOWED_DEPTH = 1000;
/** The hub's default `limits.maxMessageBytes`. */
export const MAX_MESSAGE_BYTES = 64 * 1024;

// ---- rendering ---------------------------------------------------------------------------

/** A JSON token written as is (numbers JSON.stringify cannot make: 1e400, 30 digits, -0). */
export class Raw {
  constructor(readonly text: string) {}
}

export function toJson(v: unknown): string {
  if (v instanceof Raw) return v.text;
  if (Array.isArray(v)) return `[${v.map(toJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.entries(v)
      .map(([k, x]) => `${JSON.stringify(k)}:${toJson(x)}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

export function nested(depth: number, shape: 'array' | 'object' | 'mixed'): string {
  let open = '';
  let close = '';
  for (let i = 0; i < depth; i++) {
    const arr = shape === 'array' || (shape === 'mixed' && i % 2 === 0);
    open += arr ? '[' : '{"a":';
    close = (arr ? ']' : '}') + close;
  }
  return `${open}1${close}`;
}

// ---- arbitraries -------------------------------------------------------------------------

const hugeNumber = fc.constantFrom(
  new Raw('1e400'),
  new Raw('-1e400'),
  new Raw('123456789012345678901234567890'),
  new Raw('-0'),
  new Raw('1e-400'),
  new Raw('0.0000000000000000000001'),
  1e308,
  -1e308,
  2 ** 53,
  2 ** 53 + 2,
  2 ** 64,
  Number.MAX_SAFE_INTEGER,
  Number.MIN_SAFE_INTEGER,
  5e-324,
);

const weirdString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('', ' ', '\u0000', '\u2028\u2029', '\ud800', '\udfff', 'é'.repeat(200), '💥'.repeat(70), 'x'.repeat(300)),
);

const anyJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: hugeNumber },
  { weight: 1, arbitrary: weirdString },
);

const channelName = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom(
      'chat:a',
      'chat:b',
      'room:a',
      'room:b',
      'fuzz:x',
      'fuzz:y',
      'nohist:n',
      'plain',
      'notifications:#alice',
      'notifications:#fuzzer',
      'status:alice',
      'dm:#fuzzer,bob',
      'unknown:x',
      'chat:#someone',
      'chat:sentinel',
    ),
  },
  { weight: 2, arbitrary: fc.stringMatching(/^(chat|room|fuzz|nohist):[A-Za-z0-9_.\-:@#,=/~]{1,20}$/) },
  { weight: 1, arbitrary: weirdString },
);

const position = fc.record({ offset: fc.oneof(fc.nat(100), hugeNumber, fc.integer({ min: -5, max: -1 })), epoch: weirdString });

/** Values of any type but `type`. */
function wrongType(type: 'string' | 'number' | 'int' | 'boolean' | 'object' | 'array'): fc.Arbitrary<unknown> {
  const options: Array<fc.Arbitrary<unknown>> = [fc.constant(null)];
  if (type !== 'string') options.push(weirdString);
  if (type !== 'number' && type !== 'int') options.push(fc.double(), hugeNumber);
  if (type === 'int') options.push(fc.double({ noInteger: true }), fc.integer({ min: -1000, max: -1 }), hugeNumber);
  if (type !== 'boolean') options.push(fc.boolean());
  if (type !== 'object') options.push(fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }));
  if (type !== 'array') options.push(fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 }));
  return fc.oneof(...options);
}

interface FieldSpec {
  arb: fc.Arbitrary<unknown>;
  type: 'string' | 'number' | 'int' | 'boolean' | 'object' | 'array' | 'any';
  required: boolean;
}

const f = (arb: fc.Arbitrary<unknown>, type: FieldSpec['type'], required = true): FieldSpec => ({ arb, type, required });
const optional = (arb: fc.Arbitrary<unknown>, type: FieldSpec['type']): FieldSpec => f(arb, type, false);

/** The params of every method of docs/protocol.md, field by field. */
const METHODS: Record<string, Record<string, FieldSpec>> = {
  connect: { token: optional(fc.constantFrom('not.a.jwt', ''), 'string'), name: optional(fc.string({ maxLength: 10 }), 'string') },
  refresh: { token: f(fc.constantFrom('not.a.jwt', 'eyJhbGciOiJub25lIn0.e30.'), 'string') },
  subscribe: { channel: f(channelName, 'string'), since: optional(position, 'object') },
  unsubscribe: { channel: f(channelName, 'string') },
  publish: {
    channel: f(channelName, 'string'),
    data: f(anyJson, 'any'),
    idempotencyKey: optional(fc.string({ minLength: 1, maxLength: 10 }), 'string'),
  },
  history: { channel: f(channelName, 'string'), since: optional(position, 'object'), limit: optional(fc.nat(2000), 'int') },
  presence: { channel: f(channelName, 'string') },
  rpc: { method: f(fc.string({ minLength: 1, maxLength: 10 }), 'string'), data: optional(anyJson, 'any') },
  ping: {},
  typing: { channel: f(channelName, 'string'), typing: f(fc.boolean(), 'boolean') },
  markRead: { channel: f(channelName, 'string'), offset: optional(fc.nat(200), 'int') },
  readState: { channel: f(channelName, 'string') },
  readers: { channel: f(channelName, 'string') },
  setStatus: { status: f(fc.constantFrom('online', 'away', 'busy', 'offline', 'ONLINE'), 'string') },
  statuses: {
    users: f(fc.array(fc.string({ minLength: 1, maxLength: 8 }), { minLength: 0, maxLength: 101 }), 'array'),
  },
};
const METHOD_NAMES = Object.keys(METHODS);

/** Params for `method`: valid, one field of a wrong type, a required one missing, an extra one, or not an object. */
function paramsFor(method: string): fc.Arbitrary<unknown> {
  const spec = METHODS[method]!;
  const names = Object.keys(spec);
  const valid = fc.record(Object.fromEntries(names.map((n) => [n, spec[n]!.arb])), {
    requiredKeys: names.filter((n) => spec[n]!.required),
  }) as fc.Arbitrary<Record<string, unknown>>;
  const variants: Array<{ weight: number; arbitrary: fc.Arbitrary<unknown> }> = [
    { weight: 5, arbitrary: valid },
    { weight: 1, arbitrary: fc.oneof(fc.constant(null), fc.array(fc.nat(), { maxLength: 2 }), weirdString, hugeNumber, fc.boolean()) },
    {
      weight: 1,
      arbitrary: fc.tuple(valid, fc.string({ minLength: 1, maxLength: 6 }), anyJson).map(([p, k, v]) => (k in spec ? p : { ...p, [k]: v })),
    },
  ];
  const typed = names.filter((n) => spec[n]!.type !== 'any');
  if (typed.length > 0) {
    variants.push({
      weight: 4,
      arbitrary: fc
        .tuple(valid, fc.constantFrom(...typed))
        .chain(([p, n]) => wrongType(spec[n]!.type as Exclude<FieldSpec['type'], 'any'>).map((v) => ({ ...p, [n]: v }))),
    });
  }
  const required = names.filter((n) => spec[n]!.required);
  if (required.length > 0) {
    variants.push({
      weight: 1,
      arbitrary: fc.tuple(valid, fc.constantFrom(...required)).map(([p, n]) => {
        const { [n]: _gone, ...rest } = p;
        return rest;
      }),
    });
  }
  return fc.oneof(...variants);
}

/** One line of a frame, before ids are given out. */
export type Line =
  | { kind: 'command'; method: string; params: unknown; omitParams: boolean }
  | { kind: 'noId'; method: string; params: unknown }
  | { kind: 'badId'; id: unknown; method: string }
  | { kind: 'extraField'; method: string; field: string; value: unknown }
  | { kind: 'badMethod'; method: unknown }
  | { kind: 'deep'; depth: number; shape: 'array' | 'object' | 'mixed'; where: 'data' | 'rpc' | 'extra' }
  | { kind: 'notObject'; value: unknown }
  | { kind: 'garbage'; text: string }
  | { kind: 'pong' }
  | { kind: 'blank'; text: string };

const commandLine: fc.Arbitrary<Line> = fc
  .constantFrom(...METHOD_NAMES)
  .chain((method) =>
    fc.record({ kind: fc.constant('command' as const), method: fc.constant(method), params: paramsFor(method), omitParams: fc.boolean() }),
  )
  .map((l) => (l.omitParams && METHODS[l.method]!.channel === undefined ? l : { ...l, omitParams: false }));

const deepDepth = fc.oneof(
  fc.integer({ min: 1, max: 64 }),
  fc.integer({ min: 65, max: MAX_ALLOWED_DEPTH }),
  fc.integer({ min: MAX_ALLOWED_DEPTH + 1, max: 5000 }),
);

export const deepLine: fc.Arbitrary<Line> = fc.record({
  kind: fc.constant('deep' as const),
  depth: deepDepth,
  shape: fc.constantFrom('array' as const, 'object' as const, 'mixed' as const),
  where: fc.constantFrom('data' as const, 'data' as const, 'rpc' as const, 'extra' as const),
});

const line: fc.Arbitrary<Line> = fc.oneof(
  { weight: 12, arbitrary: commandLine },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('noId' as const), method: fc.constantFrom(...METHOD_NAMES), params: fc.constant({}) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('badId' as const),
      // Never a positive safe integer: those are valid ids.
      id: fc.constantFrom(
        0,
        -1,
        1.5,
        '7',
        null,
        true,
        [],
        {},
        2 ** 53,
        2 ** 64,
        1e300,
        -1e308,
        new Raw('1e400'),
        new Raw('-0'),
        new Raw('1e-400'),
        new Raw('123456789012345678901234567890'),
      ),
      method: fc.constantFrom(...METHOD_NAMES),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('extraField' as const),
      method: fc.constantFrom(...METHOD_NAMES),
      field: fc.string({ minLength: 1, maxLength: 8 }).filter((k) => k !== 'id' && k !== 'method' && k !== 'params'),
      value: anyJson,
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('badMethod' as const), method: fc.oneof(weirdString, anyJson) }) },
  { weight: 2, arbitrary: deepLine },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('notObject' as const),
      value: fc.oneof(
        fc.jsonValue({ maxDepth: 2 }).filter((v) => typeof v !== 'object' || v === null || Array.isArray(v)),
        hugeNumber,
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('garbage' as const),
      text: fc.oneof(
        fc.string({ unit: 'binary', minLength: 1, maxLength: 60 }),
        fc.constantFrom(
          '{',
          '}',
          '{"id":1',
          '{"id":1,"method":"ping"',
          'nul',
          '[1,]',
          '{"a":1,}',
          "{'id':1}",
          '\u0000',
          'NaN',
          'Infinity',
          '{"id":1}{"id":2}',
        ),
      ),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'pong' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('blank' as const), text: fc.constantFrom('', ' ', '\t', '\r', '  \t ') }) },
);

export type Frame =
  | { kind: 'text'; lines: Line[]; crlf: boolean; trailingNewline: boolean }
  | { kind: 'binary'; bytes: Uint8Array }
  | { kind: 'invalidUtf8'; prefix: string; bad: readonly number[] }
  | { kind: 'oversize'; extra: number };

export const frame: fc.Arbitrary<Frame> = fc.oneof(
  {
    weight: 120,
    arbitrary: fc.record({
      kind: fc.constant('text' as const),
      lines: fc.array(line, { minLength: 1, maxLength: 6 }),
      crlf: fc.boolean(),
      trailingNewline: fc.boolean(),
    }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('binary' as const), bytes: fc.uint8Array({ minLength: 0, maxLength: 64 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('invalidUtf8' as const),
      prefix: fc.constantFrom(
        '',
        '{"id":1,"method":"ping","params":{"x":"',
        '{"id":1,"method":"publish","params":{"channel":"fuzz:x","data":"',
      ),
      bad: fc.constantFrom([0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xe2, 0x82], [0xc0, 0xaf]),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('oversize' as const), extra: fc.integer({ min: 1, max: 4096 }) }) },
);
