// Shared cursors on `game:room` (namespace `game`: delivery "latest", clientEvents).
/* global performance, requestAnimationFrame */
// Moves go out as client events (emit, key "pos") at most 30 times a second; the position is
// also published with key = the player's name (at most 4 times a second while moving, and every
// 2 s while still), so a page that joins or reconnects gets everyone's current position at once.
import { SwitchboardClient } from '/client.js';
import { demoName, demoToken, showState } from '/demo.js';

const CHANNEL = 'game:room';
const SEND_HZ = 30;
const PUBLISH_MS = 250;
const HEARTBEAT_MS = 2000;
const GONE_MS = 10_000;

const params = new URLSearchParams(location.search);
const name = params.get('name') || demoName();
const board = document.querySelector('#board');
const players = new Map(); // name → { el, x, y, seen }
const stats = { fps: 0, received: 0, latencies: [], initial: 0, initialLatest: 0 };
// Read by the browser tests.
window.__game = { name, players, stats };

const me = { x: Math.random() * 0.8 + 0.1, y: Math.random() * 0.8 + 0.1, dirty: true, lastPublish: 0, lastPublished: '', acked: '' };
window.__game.me = me;

function colour(user) {
  let h = 0;
  for (const ch of user) h = (h * 31 + ch.charCodeAt(0)) % 360;
  return `hsl(${h} 70% 50%)`;
}

function dotFor(user) {
  let p = players.get(user);
  if (!p) {
    const el = document.createElement('div');
    el.className = user === name ? 'dot me' : 'dot';
    el.dataset.user = user;
    el.style.background = colour(user);
    const tag = document.createElement('span');
    tag.className = 'tag';
    tag.textContent = user;
    el.append(tag);
    board.append(el);
    p = { el, x: 0.5, y: 0.5, seen: Date.now() };
    players.set(user, p);
    document.querySelector('#players').textContent = String(players.size);
  }
  return p;
}

function place(user, x, y) {
  if (!Number.isFinite(x) || !Number.isFinite(y)) return;
  const p = dotFor(user);
  p.x = Math.min(1, Math.max(0, x));
  p.y = Math.min(1, Math.max(0, y));
  p.seen = Date.now();
  p.el.dataset.x = p.x.toFixed(3);
  p.el.dataset.y = p.y.toFixed(3);
  p.moved = true;
}

place(name, me.x, me.y);

const client = new SwitchboardClient(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`, {
  getToken: () => demoToken(name),
  name: 'game',
  codec: 'msgpack',
});
showState(client);

const sub = client.subscribe(CHANNEL, {
  onSubscribed: () => {
    me.dirty = true;
    me.lastPublished = '';
  },
  onPublication: (pub) => {
    const user = pub.info?.key;
    if (!user || user === name) return;
    if (pub.latest) {
      stats.initial += 1;
      stats.initialLatest += 1;
    }
    place(user, pub.data.x, pub.data.y);
  },
  onEvent: (event) => {
    const user = event.info?.user;
    if (!user || user === name || !event.data) return;
    stats.received += 1;
    if (typeof event.data.t === 'number') stats.latencies.push(Date.now() - event.data.t);
    place(user, event.data.x, event.data.y);
  },
});
client.connect();

// ---- input ------------------------------------------------------------------------------
function moveTo(clientX, clientY) {
  const r = board.getBoundingClientRect();
  me.x = (clientX - r.left) / r.width;
  me.y = (clientY - r.top) / r.height;
  me.dirty = true;
  place(name, me.x, me.y);
}
board.addEventListener('pointermove', (e) => moveTo(e.clientX, e.clientY));
board.addEventListener('pointerdown', (e) => {
  board.focus();
  moveTo(e.clientX, e.clientY);
});
const STEP = 0.02;
const keys = { ArrowLeft: [-STEP, 0], ArrowRight: [STEP, 0], ArrowUp: [0, -STEP], ArrowDown: [0, STEP] };
board.addEventListener('keydown', (e) => {
  const d = keys[e.key];
  if (!d) return;
  e.preventDefault();
  me.x = Math.min(1, Math.max(0, me.x + d[0]));
  me.y = Math.min(1, Math.max(0, me.y + d[1]));
  me.dirty = true;
  place(name, me.x, me.y);
});

// ---- sending: events at 30 Hz, the keyed position at most 4 Hz ------------------------------
setInterval(() => {
  const now = Date.now();
  if (me.dirty) {
    me.dirty = false;
    sub.emit({ x: me.x, y: me.y, t: now }, { key: 'pos' });
  }
  const state = `${me.x.toFixed(4)},${me.y.toFixed(4)}`;
  const due = state !== me.lastPublished ? now - me.lastPublish >= PUBLISH_MS : now - me.lastPublish >= HEARTBEAT_MS;
  if (due && client.state === 'connected') {
    me.lastPublish = now;
    me.lastPublished = state;
    const started = performance.now();
    sub.publish({ x: me.x, y: me.y }, { key: name }).then(
      () => {
        me.acked = state;
        document.querySelector('#rtt').textContent = String(Math.round(performance.now() - started));
      },
      () => undefined,
    );
  }
}, 1000 / SEND_HZ);

// ---- drawing and readout --------------------------------------------------------------------
let frames = 0;
function frame() {
  frames += 1;
  const w = board.clientWidth;
  const h = board.clientHeight;
  for (const p of players.values()) {
    if (!p.moved && p.w === w && p.h === h) continue;
    p.moved = false;
    p.w = w;
    p.h = h;
    p.el.style.transform = `translate(${p.x * w}px, ${p.y * h}px)`;
  }
  requestAnimationFrame(frame);
}
requestAnimationFrame(frame);

let lastReceived = 0;
setInterval(() => {
  stats.fps = frames;
  frames = 0;
  document.querySelector('#fps').textContent = String(stats.fps);
  document.querySelector('#rate').textContent = String(stats.received - lastReceived);
  lastReceived = stats.received;
  const l = stats.latencies.splice(0).sort((a, b) => a - b);
  if (l.length) document.querySelector('#latency').textContent = String(l[Math.floor(l.length / 2)]);
  const now = Date.now();
  for (const [user, p] of players) {
    if (user !== name && now - p.seen > GONE_MS) {
      p.el.remove();
      players.delete(user);
    }
  }
  document.querySelector('#players').textContent = String(players.size);
}, 1000);
