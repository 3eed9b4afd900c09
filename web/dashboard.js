import { SwitchboardClient } from '/client.js';
import { demoName, demoToken, showState } from '/demo.js';

const METRICS = [
  ['connections', 'connections'],
  ['channels', 'channels with subscribers'],
  ['rssMb', 'memory (RSS, MB)'],
  ['cpuPercent', 'CPU (%)'],
];
const series = new Map(METRICS.map(([key]) => [key, []]));
const cards = document.querySelector('#cards');
const els = new Map();
for (const [key, label] of METRICS) {
  const card = document.createElement('div');
  card.className = 'panel card';
  card.innerHTML = `<div class="value" data-metric="${key}">–</div><div class="label"></div><svg class="spark" viewBox="0 0 60 20" preserveAspectRatio="none"><polyline fill="none" stroke="#3454d1" stroke-width="0.6"/></svg>`;
  card.querySelector('.label').textContent = label;
  cards.append(card);
  els.set(key, card);
}

const seen = new Set();

function render(pub) {
  if (seen.has(pub.offset)) return;
  seen.add(pub.offset);
  const sample = pub.data;
  for (const [key] of METRICS) {
    const values = series.get(key);
    values.push(Number(sample[key]) || 0);
    if (values.length > 60) values.shift();
    const card = els.get(key);
    card.querySelector('.value').textContent = String(sample[key]);
    const max = Math.max(1, ...values);
    card.querySelector('polyline').setAttribute('points', values.map((v, i) => `${i},${20 - (v / max) * 19}`).join(' '));
  }
}

const client = new SwitchboardClient(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`, {
  getToken: () => demoToken(demoName()),
});
showState(client);
// Live samples wait until the last minute of history is drawn, so the charts stay in order.
let early = [];
const sub = client.subscribe('dashboard:server', { onPublication: (pub) => (early ? early.push(pub) : render(pub)) });
client.connect();
sub.ready().then(async () => {
  const { publications } = await sub.history({ limit: 60 });
  const all = [...publications, ...early].sort((a, b) => a.offset - b.offset);
  early = null;
  for (const pub of all) render(pub);
});
