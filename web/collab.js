// The collaborative editor: a textarea bound to the Y.Text "text" of a Switchboard document, with
// the others' cursors and names from awareness. Yjs and the provider come from one bundle.
import { SwitchboardClient, Y } from '/collab-client.js';
import { demoName, demoToken } from '/demo.js';

const params = new URLSearchParams(location.search);
const me = params.get('name') || demoName();
const docName = params.get('doc') || 'docs:welcome';
const COLORS = ['#e4572e', '#3454d1', '#2fb55d', '#a23b72', '#f18f01', '#17a398', '#6c4ab6', '#c03221'];
const color = COLORS[[...me].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7) % COLORS.length];

document.querySelector('#me').textContent = me;
document.querySelector('#doc').textContent = docName;
const area = document.querySelector('#text');
const mirror = document.querySelector('#mirror');
const editorsList = document.querySelector('#editors');
const stateEl = document.querySelector('.state');

const ydoc = new Y.Doc();
const ytext = ydoc.getText('text');
// The document syncs over the SDK's regular connection (and again after each reconnect).
const client = new SwitchboardClient(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`, {
  getToken: () => demoToken(me),
  name: me,
});
const provider = client.document(docName, ydoc);
client.connect();
const awareness = provider.awareness;
awareness.setLocalStateField('user', { name: me, color });

provider.on('status', (s) => {
  stateEl.dataset.state = s;
  stateEl.textContent = s;
});
provider.on('denied', (reason) => {
  stateEl.dataset.state = 'disconnected';
  stateEl.textContent = `read-only (${reason})`;
});

// Local edits → Y.Text: the one changed span between the old and the new value.
let shown = '';
area.addEventListener('input', () => {
  const next = area.value;
  let start = 0;
  while (start < shown.length && start < next.length && shown[start] === next[start]) start++;
  let endOld = shown.length;
  let endNew = next.length;
  while (endOld > start && endNew > start && shown[endOld - 1] === next[endNew - 1]) {
    endOld--;
    endNew--;
  }
  ydoc.transact(() => {
    if (endOld > start) ytext.delete(start, endOld - start);
    if (endNew > start) ytext.insert(start, next.slice(start, endNew));
  }, 'local');
  shown = next;
  publishCursor();
});

// Remote edits → textarea, keeping our selection where it was in the text: its relative
// positions are taken before the remote change applies, and turned back into indices after.
let before = null;
ydoc.on('beforeTransaction', (tr) => {
  before = tr.origin === 'local' ? null : selectionRel();
});
ytext.observe((event) => {
  if (event.transaction.origin === 'local') return;
  const rel = before;
  shown = ytext.toString();
  area.value = shown;
  if (rel && document.activeElement === area) {
    area.setSelectionRange(absolute(rel.anchor), absolute(rel.head));
  }
  renderCursors();
});

// A caret sticks to the character before it (assoc -1): typing at the same spot as someone else
// keeps each one's words together instead of interleaving their letters.
function selectionRel() {
  return {
    anchor: Y.createRelativePositionFromTypeIndex(ytext, area.selectionStart, -1),
    head: Y.createRelativePositionFromTypeIndex(ytext, area.selectionEnd, -1),
  };
}

function absolute(rel) {
  const pos = Y.createAbsolutePositionFromRelativePosition(rel, ydoc);
  return pos ? pos.index : 0;
}

function publishCursor() {
  const { anchor, head } = selectionRel();
  awareness.setLocalStateField('cursor', { anchor: Y.relativePositionToJSON(anchor), head: Y.relativePositionToJSON(head) });
}

for (const ev of ['select', 'keyup', 'click', 'focus']) area.addEventListener(ev, publishCursor);
document.addEventListener('selectionchange', () => {
  if (document.activeElement === area) publishCursor();
});
area.addEventListener('scroll', () => {
  mirror.scrollTop = area.scrollTop;
});

// Others' cursors: a mirror of the text over the textarea, with a caret and name at each position.
function renderCursors() {
  const text = ytext.toString();
  const marks = [];
  const people = [];
  for (const [id, state] of awareness.getStates()) {
    if (!state.user) continue;
    people.push({ id, ...state.user, self: id === ydoc.clientID });
    if (id === ydoc.clientID || !state.cursor) continue;
    const head = Y.createAbsolutePositionFromRelativePosition(Y.createRelativePositionFromJSON(state.cursor.head), ydoc);
    if (head) marks.push({ index: head.index, name: state.user.name, color: state.user.color, id });
  }
  marks.sort((a, b) => a.index - b.index);
  mirror.replaceChildren();
  let at = 0;
  for (const m of marks) {
    mirror.append(document.createTextNode(text.slice(at, m.index)));
    const caret = document.createElement('span');
    caret.className = 'caret';
    caret.dataset.client = String(m.id);
    caret.style.borderColor = m.color;
    const label = document.createElement('span');
    label.className = 'label';
    label.style.background = m.color;
    label.textContent = m.name;
    caret.append(label);
    mirror.append(caret);
    at = m.index;
  }
  // A trailing newline needs a character after it to take up its line in the mirror.
  mirror.append(document.createTextNode(`${text.slice(at)}\u200b`));
  mirror.scrollTop = area.scrollTop;
  editorsList.replaceChildren(
    ...people.map((p) => {
      const li = document.createElement('li');
      const dot = document.createElement('span');
      dot.className = 'dot';
      dot.style.background = p.color;
      li.append(dot, document.createTextNode(p.self ? `${p.name} (you)` : p.name));
      return li;
    }),
  );
}

awareness.on('change', renderCursors);
provider.on('synced', () => {
  shown = ytext.toString();
  area.value = shown;
  renderCursors();
});
window.addEventListener('beforeunload', () => {
  provider.destroy();
  client.disconnect();
});
// For tests and the curious.
window.collab = { ydoc, provider, awareness };
