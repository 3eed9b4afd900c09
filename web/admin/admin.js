/* global uPlot, EventSource, FormData */
// The admin UI: every request carries the session cookie (HttpOnly, set at login); state-changing
// ones also carry the session's CSRF token in X-CSRF-Token.
const $ = (sel) => document.querySelector(sel);
const status = $('#status');
let csrf = '';

async function api(path, { method = 'GET', body } = {}) {
  const headers = {};
  if (method !== 'GET') {
    headers['x-csrf-token'] = csrf;
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(`/admin/api/${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401) {
    location.reload(); // the session expired: back to the login page
    throw new Error('logged out');
  }
  const json = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(json.error ? `error ${json.error.code}: ${json.error.message}` : `HTTP ${res.status}`);
  return json;
}

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

function duration(seconds) {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : m ? `${m}m ${seconds % 60}s` : `${seconds}s`;
}

function showError(err) {
  status.textContent = err.message;
  status.dataset.kind = 'error';
}

// ---- tabs ---------------------------------------------------------------------------------
function showTab() {
  const name = location.hash.slice(1) || 'overview';
  for (const tab of document.querySelectorAll('.tab')) tab.hidden = tab.id !== name;
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.tab === name);
  if (name === 'channels') void loadChannels();
  if (name === 'users') void loadUsers();
  if (name === 'overview') resizeCharts();
}
window.addEventListener('hashchange', showTab);

// ---- overview -----------------------------------------------------------------------------
const CARDS = [
  ['nodes', 'nodes', (o) => o.totals.nodes],
  ['connections', 'connections', (o) => o.totals.connections],
  ['users', 'users', (o) => o.totals.users],
  ['channels', 'channels', (o) => o.channels],
  ['pubs', 'publications/s', (o) => o.totals.publicationsPerSecond],
  ['deliveries', 'deliveries/s', (o) => o.totals.deliveriesPerSecond],
  ['drops', 'slow-consumer drops', (o) => o.totals.slowConsumerDrops],
  ['errors', 'error replies', (o) => o.totals.errors],
  ['redis', 'Redis', (o) => (o.redis === null ? 'not used' : o.redis.ok ? `ok, ${o.redis.latencyMs} ms` : 'DOWN')],
  ['uptime', 'uptime', (o) => duration(o.uptimeSeconds)],
  ['version', 'version', (o) => o.version],
];
for (const [key, label] of CARDS) {
  $('#cards').append(el('div', { className: 'panel card' }, el('div', { className: 'value', id: `card-${key}`, textContent: '–' }), el('div', { className: 'label', textContent: label })));
}

const charts = [];
function makeChart(target, title, series, unit) {
  const opts = {
    title,
    width: Math.max(200, target.clientWidth),
    height: 180,
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
    axes: [
      { space: 90, values: (u, vals) => vals.map((v) => new Date(v * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' })) },
      {
        label: unit,
        size: 60,
        values: (u, vals) => vals.map((v) => String(+v.toFixed(1))),
        // Counts are whole numbers: no 2.5 ticks.
        ...(unit === 'count' ? { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 1e6] } : {}),
      },
    ],
    series: [{}, ...series.map(([label, stroke]) => ({ label, stroke, width: 2, value: (u, v) => (v == null ? '–' : `${v} ${unit}`) }))],
  };
  const chart = new uPlot(opts, [[], ...series.map(() => [])], target);
  charts.push([chart, target]);
  return chart;
}
const ratesChart = makeChart($('#chart-rates'), 'Messages per second (this node)', [['publications', '#3454d1'], ['deliveries', '#2fb55d']], 'msg/s');
const connsChart = makeChart($('#chart-conns'), 'Connections and users (this node)', [['connections', '#d1345b'], ['users', '#b58a2f']], 'count');

function resizeCharts() {
  for (const [chart, target] of charts) if (target.clientWidth > 0) chart.setSize({ width: target.clientWidth, height: 180 });
}
window.addEventListener('resize', resizeCharts);

let lastOverview;
function drawCharts() {
  if (!lastOverview) return;
  const windowSeconds = Number($('#window').value);
  const since = Date.now() - windowSeconds * 1000;
  const samples = lastOverview.samples.filter((s) => s.at >= since);
  const x = samples.map((s) => s.at / 1000);
  ratesChart.setData([x, samples.map((s) => s.publicationsPerSecond), samples.map((s) => s.deliveriesPerSecond)]);
  connsChart.setData([x, samples.map((s) => s.connections), samples.map((s) => s.users)]);
}
$('#window').addEventListener('change', drawCharts);

async function loadOverview() {
  try {
    const [overview, channels] = await Promise.all([api('overview'), api('channels')]);
    overview.channels = channels.channels.length;
    lastOverview = overview;
    for (const [key, , pick] of CARDS) $(`#card-${key}`).textContent = String(pick(overview));
    $('#card-redis').dataset.kind = overview.redis === null ? '' : overview.redis.ok ? 'ok' : 'error';
    $('#nodes tbody').replaceChildren(
      ...overview.nodes.map((n) =>
        el(
          'tr',
          {},
          el('td', { className: 'user', textContent: n.id + (n.id === overview.node ? ' (this)' : '') }),
          labelled('version', n.version),
          labelled('uptime', duration(n.uptimeSeconds)),
          labelled('connections', String(n.sample.connections)),
          labelled('publications/s', String(n.sample.publicationsPerSecond)),
          labelled('deliveries/s', String(n.sample.deliveriesPerSecond)),
        ),
      ),
    );
    $('#features').replaceChildren(
      ...overview.features.map((f) =>
        el(
          'li',
          { className: f.enabled ? 'on' : 'off' },
          el('strong', { textContent: f.name }),
          el('span', {
            textContent: !f.enabled
              ? 'not enabled'
              : f.error
                ? `error: ${f.error}`
                : Object.entries(f.status ?? {})
                    .map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`)
                    .join(' · ') || 'enabled',
          }),
        ),
      ),
    );
    drawCharts();
    status.textContent = '';
  } catch (err) {
    showError(err);
  }
}

// ---- channels -----------------------------------------------------------------------------
let allChannels = [];
let selected;
let tail;

async function loadChannels() {
  try {
    allChannels = (await api('channels')).channels;
    renderChannels();
  } catch (err) {
    showError(err);
  }
}

function renderChannels() {
  const q = $('#channel-search').value.trim().toLowerCase();
  const rows = allChannels.filter((c) => c.channel.toLowerCase().includes(q));
  $('#channel-list tbody').replaceChildren(
    ...rows.map((c) => {
      const link = el('a', { href: '#channels', textContent: c.channel });
      link.addEventListener('click', (e) => {
        e.preventDefault();
        void openChannel(c.channel);
      });
      return el('tr', {}, el('td', {}, link), el('td', { textContent: String(c.subscribers) }));
    }),
  );
  $('#channel-empty').hidden = rows.length > 0;
  $('#channel-empty').textContent = allChannels.length ? 'No channel matches.' : 'No channel has subscribers right now.';
}
$('#channel-search').addEventListener('input', renderChannels);

function stopTail() {
  tail?.close();
  tail = undefined;
  $('#tail-toggle').textContent = 'Live tail';
}

async function openChannel(name) {
  stopTail();
  selected = name;
  $('#channel-detail').hidden = false;
  $('#detail-name').textContent = name;
  $('#detail-tail').replaceChildren(el('li', { className: 'empty', textContent: 'Press "Live tail" to follow new publications.' }));
  const q = encodeURIComponent(name);
  const presence = api(`presence?channel=${q}`).then(
    (p) => (p.users.length ? p.users.map((u) => el('li', { textContent: u })) : [el('li', { className: 'empty', textContent: 'nobody present' })]),
    (err) => [el('li', { className: 'empty', textContent: err.message })],
  );
  const history = api(`history?channel=${q}&limit=20`).then(
    (h) => {
      $('#detail-position').textContent = `top offset ${h.position.offset}, epoch ${h.position.epoch || '–'}`;
      if (!h.publications.length) return [el('tr', {}, el('td', { colSpan: 3, className: 'empty', textContent: 'no publications in history' }))];
      return h.publications
        .slice()
        .reverse()
        .map((p) => el('tr', {}, el('td', { textContent: String(p.offset) }), el('td', { textContent: p.info?.user ?? 'server' }), el('td', {}, el('code', { textContent: JSON.stringify(p.data) }))));
    },
    (err) => {
      $('#detail-position').textContent = '';
      return [el('tr', {}, el('td', { colSpan: 3, className: 'empty', textContent: err.message }))];
    },
  );
  $('#detail-presence').replaceChildren(...(await presence));
  $('#detail-history tbody').replaceChildren(...(await history));
}

$('#tail-toggle').addEventListener('click', () => {
  if (tail) return stopTail();
  if (!selected) return;
  const list = $('#detail-tail');
  list.replaceChildren(el('li', { className: 'empty', textContent: 'opening the tail…' }));
  tail = new EventSource(`/admin/api/tail?channel=${encodeURIComponent(selected)}`);
  $('#tail-toggle').textContent = 'Stop tail';
  const channel = selected;
  tail.addEventListener('subscribed', () => {
    const first = list.querySelector('.empty');
    if (first) first.textContent = 'subscribed: waiting for publications…';
  });
  // Publications arrive as events named after the channel.
  tail.addEventListener(channel, (e) => {
    list.querySelector('.empty')?.remove();
    const at = new Date().toLocaleTimeString();
    list.prepend(el('li', {}, el('span', { className: 'muted', textContent: `${at} #${e.lastEventId || '–'} ` }), el('code', { textContent: e.data })));
    while (list.children.length > 100) list.lastChild.remove();
  });
  tail.addEventListener('error', () => {
    if (tail?.readyState === EventSource.CONNECTING) list.prepend(el('li', { className: 'empty', textContent: 'tail reconnecting…' }));
  });
});

// ---- users --------------------------------------------------------------------------------
async function loadUsers() {
  try {
    const q = encodeURIComponent($('#user-search').value.trim());
    const { users } = await api(`connections?q=${q}`);
    const rows = [];
    for (const { user, connections } of users) {
      connections.forEach((c, i) => {
        const kick = el('button', { className: 'small danger', textContent: 'Disconnect' });
        kick.addEventListener('click', () => void disconnect(user));
        rows.push(
          el(
            'tr',
            {},
            el('td', { className: 'user', textContent: i === 0 ? user || '(anonymous)' : '' }),
            labelled('connection', c.name ? `${c.id} (${c.name})` : c.id),
            labelled('transport', c.transport),
            labelled('node', c.node),
            labelled('subscriptions', c.channels.join(', ') || '–'),
            el('td', {}, i === 0 && user ? kick : ''),
          ),
        );
      });
    }
    $('#user-list tbody').replaceChildren(...rows);
    $('#user-empty').hidden = rows.length > 0;
  } catch (err) {
    showError(err);
  }
}
$('#user-search').addEventListener('input', () => void loadUsers());

/** A cell that names its column, for the stacked layout of narrow screens. */
function labelled(label, text) {
  const td = el('td', { textContent: text });
  td.dataset.label = label;
  return td;
}

async function disconnect(user) {
  try {
    await api('disconnect', { method: 'POST', body: { user, reason: 'disconnected by admin' } });
    status.textContent = `disconnected ${user}`;
    status.dataset.kind = 'ok';
    setTimeout(() => void loadUsers(), 300);
  } catch (err) {
    showError(err);
  }
}

// ---- actions ------------------------------------------------------------------------------
for (const form of document.querySelectorAll('form.action')) {
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const out = form.querySelector('output');
    const f = Object.fromEntries(new FormData(form));
    let body;
    try {
      switch (form.dataset.action) {
        case 'publish':
          body = { channel: f.channel.trim(), data: JSON.parse(f.data) };
          break;
        case 'broadcast':
          body = { channels: f.channels.split(',').map((c) => c.trim()).filter(Boolean), data: JSON.parse(f.data) };
          break;
        case 'unsubscribe':
          body = { user: f.user.trim(), channel: f.channel.trim() };
          break;
        case 'disconnect':
          body = { user: f.user.trim(), ...(f.reason ? { reason: f.reason } : {}) };
          break;
      }
    } catch (err) {
      out.textContent = `data is not valid JSON: ${err.message}`;
      out.dataset.kind = 'error';
      return;
    }
    try {
      const result = await api(form.dataset.action, { method: 'POST', body });
      out.textContent = `done ${JSON.stringify(result)}`;
      out.dataset.kind = 'ok';
    } catch (err) {
      out.textContent = err.message;
      out.dataset.kind = 'error';
    }
  });
}

$('#logout').addEventListener('click', async () => {
  await api('../logout', { method: 'POST' }).catch(() => undefined);
  location.reload();
});

// ---- start --------------------------------------------------------------------------------
csrf = (await api('session')).csrf;
showTab();
await loadOverview();
setInterval(() => {
  if (document.hidden) return;
  const tab = location.hash.slice(1) || 'overview';
  if (tab === 'overview') void loadOverview();
  if (tab === 'users') void loadUsers();
  if (tab === 'channels') void loadChannels();
}, 2000);
