import { SwitchboardClient } from '/client.js';
import { chosenName, demoToken, isValidName, rememberName, showState } from '/demo.js';

const $ = (sel) => document.querySelector(sel);
const params = new URLSearchParams(location.search);
const me = params.has('pick') ? undefined : chosenName();

if (!me) {
  // The name picker: a name per tab is what makes two tabs two users.
  const picker = $('#picker');
  picker.hidden = false;
  $('.state').textContent = 'not connected';
  $('.state').dataset.state = 'idle';
  $('#name').value = localStorage.getItem('switchboard-demo-name') ?? '';
  $('#name').focus();
  picker.addEventListener('submit', (e) => {
    e.preventDefault();
    const name = $('#name').value.trim();
    if (!isValidName(name)) return;
    rememberName(name);
    location.search = `?name=${encodeURIComponent(name)}`;
  });
} else {
  startChat(me);
}

function startChat(me) {
  rememberName(me);
  $('#chat').hidden = false;
  $('#me').textContent = me;
  document.title = `${me} · Switchboard chat`;
  const messages = $('#messages');
  const people = $('#people');
  const typingLine = $('#typing');
  const typing = new Map();
  /** offset → li of each publication shown. */
  const shown = new Map();
  /** user → offset read up to (read receipts). */
  const readers = new Map();
  /** users shown present lately: a join of one of them is a reconnect, not news. */
  const recentlyPresent = new Map();
  let lastRead = 0;
  let top = 0;

  const time = (ms) => new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

  function bubble({ who, at, body, mine, pending }) {
    const li = document.createElement('li');
    li.className = `msg${mine ? ' mine' : ''}${pending ? ' pending' : ''}`;
    const meta = document.createElement('div');
    meta.className = 'meta';
    const name = Object.assign(document.createElement('span'), { className: 'who', textContent: who });
    const when = Object.assign(document.createElement('time'), { textContent: at ? time(at) : '' });
    if (at) when.dateTime = new Date(at).toISOString();
    const state = Object.assign(document.createElement('span'), { className: 'receipt' });
    meta.append(name, when, state);
    li.append(meta, body);
    return li;
  }

  /** Chat messages are `{from, text, at}`; anything else a publisher sent is shown as its JSON. */
  function bodyOf(data) {
    if (data && typeof data === 'object' && typeof data.text === 'string') {
      return Object.assign(document.createElement('div'), { className: 'text', textContent: data.text });
    }
    return Object.assign(document.createElement('pre'), { className: 'json', textContent: JSON.stringify(data, null, 2) });
  }

  function place(li) {
    $('#empty')?.remove();
    // Keep offset order (history arrives after the first live messages sometimes).
    const offset = Number(li.dataset.offset);
    const after = [...messages.children].find((c) => c.dataset.offset && Number(c.dataset.offset) > offset);
    if (Number.isFinite(offset) && after) messages.insertBefore(li, after);
    else messages.append(li);
    messages.scrollTop = messages.scrollHeight;
  }

  function addPublication(pub) {
    if (shown.has(pub.offset)) return;
    const data = pub.data;
    const from = data && typeof data === 'object' && typeof data.from === 'string' ? data.from : (pub.info?.user ?? 'server');
    const at = data && typeof data === 'object' && typeof data.at === 'number' ? data.at : undefined;
    const li = bubble({ who: from, at, body: bodyOf(data), mine: from === me });
    li.dataset.offset = String(pub.offset);
    li.dataset.from = from;
    shown.set(pub.offset, li);
    place(li);
    top = Math.max(top, pub.offset);
    renderReceipts();
    markReadSoon();
  }

  function notice(text) {
    $('#empty')?.remove();
    const li = Object.assign(document.createElement('li'), { className: 'system', textContent: text });
    messages.append(li);
    messages.scrollTop = messages.scrollHeight;
  }

  /** Under each of my messages: who else has read it. */
  function renderReceipts() {
    for (const [offset, li] of shown) {
      if (li.dataset.from !== me) continue;
      const by = [...readers].filter(([user, upTo]) => user !== me && upTo >= offset).map(([user]) => user);
      li.querySelector('.receipt').textContent = by.length ? `✓ read by ${by.join(', ')}` : '✓ sent';
    }
  }

  function renderUnread() {
    const unread = Math.max(0, top - lastRead);
    $('#unread').textContent = String(unread);
    document.title = `${unread ? `(${unread}) ` : ''}${me} · Switchboard chat`;
  }

  let readTimer;
  function markReadSoon() {
    renderUnread();
    if (document.hidden || readTimer) return;
    readTimer = setTimeout(() => {
      readTimer = undefined;
      if (top <= lastRead) return;
      room.markRead(top).then(
        (state) => {
          lastRead = state.lastRead;
          top = Math.max(top, state.top);
          renderUnread();
        },
        () => undefined, // offline: marked again on the next message or visit
      );
    }, 300);
  }
  document.addEventListener('visibilitychange', markReadSoon);

  function renderTyping() {
    const names = [...typing.keys()].filter((u) => u !== me);
    typingLine.textContent = names.length ? `${names.join(', ')} ${names.length > 1 ? 'are' : 'is'} typing…` : '';
  }

  async function refreshPeople() {
    const { users } = await room.presence();
    const now = Date.now();
    for (const u of users) recentlyPresent.set(u, now);
    people.replaceChildren(...users.map((u) => Object.assign(document.createElement('li'), { textContent: u === me ? `${u} (you)` : u })));
  }

  const client = new SwitchboardClient(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`, {
    getToken: () => demoToken(me),
    backoff: { maxMs: 5_000 }, // a local demo: come back quickly after a restart
  });
  showState(client);

  const room = client.subscribe('chat:lobby', {
    onPublication: addPublication,
    onJoin: (who) => {
      // Someone seen here in the last minute is reconnecting (a server restart, a network blip).
      const seen = recentlyPresent.get(who.user);
      if (who.user !== me && (seen === undefined || Date.now() - seen > 60_000)) notice(`${who.user} joined`);
      void refreshPeople();
    },
    onLeave: (who) => {
      notice(`${who.user} left`);
      recentlyPresent.delete(who.user);
      typing.delete(who.user);
      renderTyping();
      void refreshPeople();
    },
    onTyping: ({ user, typing: on }) => {
      if (on) typing.set(user, true);
      else typing.delete(user);
      renderTyping();
    },
    onRead: ({ user, offset }) => {
      readers.set(user, Math.max(readers.get(user) ?? 0, offset));
      renderReceipts();
    },
    onRecoveryFailed: () => notice('Some messages could not be recovered; showing new ones from here.'),
    onSubscribed: () => {
      void refreshPeople();
      void room.readers().then((all) => {
        for (const [user, offset] of Object.entries(all)) readers.set(user, Math.max(readers.get(user) ?? 0, offset));
        renderReceipts();
      });
      void room.readState().then((state) => {
        lastRead = Math.max(lastRead, state.lastRead);
        top = Math.max(top, state.top);
        markReadSoon();
      });
    },
  });
  client.connect();

  // The last messages, once.
  room.ready().then(async () => {
    const { publications } = await room.history({ limit: 30 });
    for (const pub of publications) addPublication(pub);
  });

  const input = $('#text');
  input.addEventListener('input', () => room.typing(input.value.length > 0));
  $('#send').addEventListener('submit', (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = '';
    room.typing(false);
    const data = { from: me, text, at: Date.now() };
    // Shown at once as pending; queued while offline and sent exactly once when back.
    const li = bubble({ who: me, at: data.at, body: bodyOf(data), mine: true, pending: true });
    li.querySelector('.receipt').textContent = client.state === 'connected' ? 'sending…' : 'pending: will send when back online';
    place(li);
    room.publish(data).then(
      ({ offset }) => {
        if (shown.has(offset)) {
          li.remove(); // the publication itself arrived first
          return;
        }
        li.classList.remove('pending');
        li.dataset.offset = String(offset);
        li.dataset.from = me;
        shown.set(offset, li);
        top = Math.max(top, offset);
        renderReceipts();
        markReadSoon();
      },
      (err) => {
        li.classList.replace('pending', 'failed');
        li.querySelector('.receipt').textContent = `not sent: ${err.message}`;
      },
    );
  });
}
