// Shared by the demo pages: a demo token for a name (served only by `switchboard serve --demo`),
// the name picker's stored name, the connection state in the header, and a banner for errors.

/** Shows (or, with '', hides) the page's error banner. */
export function showBanner(text) {
  let el = document.querySelector('#banner');
  if (!el) {
    el = Object.assign(document.createElement('p'), { id: 'banner', className: 'banner' });
    el.setAttribute('role', 'alert');
    document.querySelector('main').prepend(el);
  }
  el.textContent = text;
  el.hidden = text === '';
}

export async function demoToken(user) {
  let res;
  try {
    res = await fetch(`/demo/token?user=${encodeURIComponent(user)}`);
  } catch {
    throw new Error('server unreachable');
  }
  if (res.status === 404) {
    showBanner('This server is not in demo mode, so it hands out no demo tokens. Start it with `npm start` or `switchboard serve --demo` (local use only).');
    throw new Error('not in demo mode');
  }
  if (!res.ok) {
    const text = await res.text();
    showBanner(`No demo token for "${user}": ${text}`);
    throw new Error(`no demo token (${res.status})`);
  }
  showBanner('');
  return res.text();
}

/** Short words for the header; the full reason goes in its tooltip. */
function label(state, reason, code) {
  if (state === 'connected') return 'online';
  if (code === 4000 || /shutdown/.test(reason)) return 'server restarting…';
  if (state === 'connecting') return /connect\(\) called/.test(reason) ? 'connecting…' : 'reconnecting…';
  return 'offline';
}

export function showState(client) {
  const el = document.querySelector('.state');
  el.textContent = 'connecting…';
  client.on('state', ({ state, reason, code }) => {
    el.dataset.state = state;
    el.textContent = label(state, reason ?? '', code);
    el.title = reason ?? '';
  });
}

const NAME = /^[A-Za-z0-9_-]{1,32}$/;

/** The name from `?name=`, else the one picked last time in this browser, else undefined. */
export function chosenName() {
  const fromUrl = new URLSearchParams(location.search).get('name');
  if (fromUrl && NAME.test(fromUrl)) return fromUrl;
  const saved = localStorage.getItem('switchboard-demo-name');
  return saved && NAME.test(saved) ? saved : undefined;
}

export function isValidName(name) {
  return NAME.test(name);
}

export function rememberName(name) {
  localStorage.setItem('switchboard-demo-name', name);
}

/** A name for pages that need one but no picker (the dashboard). */
export function demoName() {
  const name = chosenName() ?? `guest-${Math.random().toString(36).slice(2, 6)}`;
  rememberName(name);
  return name;
}
