// Shared by the demo pages: a demo token for a name (served only by `switchboard serve --demo`),
// and the connection state in the header.
export async function demoToken(user) {
  const res = await fetch(`/demo/token?user=${encodeURIComponent(user)}`);
  if (!res.ok) throw new Error(`no demo token (${res.status}): start the server with --demo`);
  return res.text();
}

export function showState(client) {
  const el = document.querySelector('.state');
  client.on('state', ({ state, reason }) => {
    el.dataset.state = state;
    el.textContent = reason && state !== 'connected' ? `${state} (${reason})` : state;
  });
}

export function demoName() {
  const saved = localStorage.getItem('switchboard-demo-name');
  const name = saved || `guest-${Math.random().toString(36).slice(2, 6)}`;
  localStorage.setItem('switchboard-demo-name', name);
  return name;
}
