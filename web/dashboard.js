/* global uPlot */
import { SwitchboardClient } from '/client.js';
import { demoName, demoToken, showState } from '/demo.js';

const METRICS = [
  ['publicationsPerSecond', 'publications/s'],
  ['deliveriesPerSecond', 'deliveries/s'],
  ['connections', 'connections'],
  ['channels', 'channels with subscribers'],
  ['rssMb', 'memory (RSS, MB)'],
  ['cpuPercent', 'CPU (%)'],
];
const WINDOW = 120;
const cards = document.querySelector('#cards');
for (const [key, label] of METRICS) {
  const card = document.createElement('div');
  card.className = 'panel card';
  const value = Object.assign(document.createElement('div'), { className: 'value', textContent: '–' });
  value.dataset.metric = key;
  card.append(value, Object.assign(document.createElement('div'), { className: 'label', textContent: label }));
  cards.append(card);
}

const clock = (u, vals) => vals.map((v) => new Date(v * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' }));
function chart(target, title, unit, series) {
  return new uPlot(
    {
      title,
      width: Math.max(200, target.clientWidth),
      height: 200,
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [{ space: 90, values: clock }, { label: unit, size: 56 }],
      series: [{}, ...series.map(([label, stroke]) => ({ label, stroke, width: 2 }))],
    },
    [[], ...series.map(() => [])],
    target,
  );
}
const rates = chart(document.querySelector('#chart-rates'), 'Messages per second', 'msg/s', [
  ['publications/s', '#3454d1'],
  ['deliveries/s', '#2fb55d'],
]);
const load = chart(document.querySelector('#chart-load'), 'Connections and channels', 'count', [
  ['connections', '#d1345b'],
  ['channels', '#b58a2f'],
]);
window.addEventListener('resize', () => {
  for (const c of [rates, load]) c.setSize({ width: c.root.parentElement.clientWidth, height: 200 });
});

const samples = [];
const seen = new Set();

function render(pub) {
  if (seen.has(pub.offset)) return;
  seen.add(pub.offset);
  const sample = pub.data;
  samples.push(sample);
  if (samples.length > WINDOW) samples.shift();
  for (const [key] of METRICS) {
    if (sample[key] !== undefined) document.querySelector(`[data-metric="${key}"]`).textContent = String(sample[key]);
  }
  const x = samples.map((s) => s.at / 1000);
  rates.setData([x, samples.map((s) => s.publicationsPerSecond ?? null), samples.map((s) => s.deliveriesPerSecond ?? null)]);
  load.setData([x, samples.map((s) => s.connections), samples.map((s) => s.channels)]);
}

const client = new SwitchboardClient(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`, {
  getToken: () => demoToken(demoName()),
  backoff: { maxMs: 5_000 },
});
showState(client);
// Live samples wait until the history is drawn, so the charts stay in order.
let early = [];
const sub = client.subscribe('dashboard:server', { onPublication: (pub) => (early ? early.push(pub) : render(pub)) });
client.connect();
sub.ready().then(async () => {
  const { publications } = await sub.history({ limit: WINDOW });
  const all = [...publications, ...early].sort((a, b) => a.offset - b.offset);
  early = null;
  for (const pub of all) render(pub);
});
