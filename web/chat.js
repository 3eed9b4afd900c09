import { SwitchboardClient } from '/client.js';
import { demoName, demoToken, showState } from '/demo.js';

const me = new URLSearchParams(location.search).get('name') || demoName();
document.querySelector('#me').textContent = me;
const messages = document.querySelector('#messages');
const people = document.querySelector('#people');
const typingLine = document.querySelector('#typing');
const typing = new Map();
const shown = new Set();

function addPublication(pub) {
  if (shown.has(pub.offset)) return;
  shown.add(pub.offset);
  add(pub.data.text, pub.data.from);
}

function add(text, who) {
  const li = document.createElement('li');
  if (who) {
    const b = document.createElement('span');
    b.className = 'who';
    b.textContent = who;
    li.append(b, document.createTextNode(text));
  } else {
    li.className = 'system';
    li.textContent = text;
  }
  messages.append(li);
  messages.scrollTop = messages.scrollHeight;
}

function renderTyping() {
  const names = [...typing.keys()].filter((u) => u !== me);
  typingLine.textContent = names.length ? `${names.join(', ')} ${names.length > 1 ? 'are' : 'is'} typing…` : '';
}

const client = new SwitchboardClient(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`, {
  getToken: () => demoToken(me),
});
showState(client);

async function refreshPeople() {
  const { users } = await room.presence();
  people.replaceChildren(...users.map((u) => Object.assign(document.createElement('li'), { textContent: u })));
}

const room = client.subscribe('chat:lobby', {
  onPublication: addPublication,
  onJoin: (who) => {
    add(`${who.user} joined`);
    void refreshPeople();
  },
  onLeave: (who) => {
    add(`${who.user} left`);
    void refreshPeople();
  },
  onTyping: ({ user, typing: on }) => {
    if (on) typing.set(user, true);
    else typing.delete(user);
    renderTyping();
  },
  onRecoveryFailed: () => add('Some messages could not be recovered; showing new ones from here.'),
  onSubscribed: () => void refreshPeople(),
});
client.connect();

// The last messages, once.
room.ready().then(async () => {
  const { publications } = await room.history({ limit: 30 });
  const live = [...messages.children];
  messages.replaceChildren();
  for (const pub of publications) addPublication(pub);
  messages.append(...live);
});

const input = document.querySelector('#text');
input.addEventListener('input', () => room.typing(input.value.length > 0));
document.querySelector('#send').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = input.value.trim();
  if (!text) return;
  input.value = '';
  room.typing(false);
  // Queued while offline and sent exactly once when back.
  room.publish({ from: me, text }).catch((err) => add(`not sent: ${err.message}`));
});
