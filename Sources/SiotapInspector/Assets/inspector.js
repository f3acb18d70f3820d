// siotap's inspector: the capture's records, live, by connection. Plain JavaScript, no library.
'use strict';

const ROW = 24;
const $ = (selector) => document.querySelector(selector);
const state = {
  conns: new Map(),       // id -> connection summary and its records
  all: [],                // every record, in order
  picked: null,           // the selected conn's id
  selected: null,         // the selected record
  view: [],               // the timeline's records
  showEngine: false,
  paused: false,
  waiting: [],            // lines that came while paused
  filter: '',
  filterSeqs: null,       // seqs the server says match the filter (the same reading as --filter)
  search: '',
  following: true,
  report: null,           // a replay's report: conn -> its diff, seq -> what changed or never came
  diagnoses: [],          // every diagnosis record, in order (the Problems panel)
};

// A JSON reader that keeps every literal as it was written: big integers, number forms and
// string escapes are shown exactly as captured (JSON.parse would round and unescape them).
function parseRaw(text) {
  let i = 0;
  const space = () => { while (i < text.length && ' \t\r\n'.includes(text[i])) i++; };
  const string = () => {
    const start = i++;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return text.slice(start, i);
  };
  const value = () => {
    space();
    const c = text[i];
    if (c === '{' || c === '[') {
      const object = c === '{';
      const node = object ? { t: 'obj', entries: [] } : { t: 'arr', items: [] };
      i++;
      space();
      if (text[i] === (object ? '}' : ']')) { i++; return node; }
      for (;;) {
        if (object) {
          space();
          const key = string();
          space();
          i++; // the colon
          node.entries.push([key, value()]);
        } else {
          node.items.push(value());
        }
        space();
        if (text[i++] !== ',') return node;
      }
    }
    if (c === '"') return { t: 'str', raw: string() };
    const start = i;
    while (i < text.length && !',]} \t\r\n'.includes(text[i])) i++;
    const raw = text.slice(start, i);
    return { t: /^[-0-9]/.test(raw) ? 'num' : 'lit', raw };
  };
  return value();
}

// A raw JSON node written back as its text, literals as they were.
function literal(node) {
  if (node.t === 'obj') return `{${node.entries.map(([key, value]) => `${key}:${literal(value)}`).join(',')}}`;
  if (node.t === 'arr') return `[${node.items.map(literal).join(',')}]`;
  return node.raw;
}

function member(node, key) {
  if (!node || node.t !== 'obj') return undefined;
  const quoted = JSON.stringify(key);
  const entry = node.entries.find(([k]) => k === quoted);
  return entry && entry[1];
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// A collapsible tree of a raw JSON value; the first levels open, and so does the way to any
// path in `marked` (a replay's changes, as `args[0].price`), which is highlighted.
function tree(node, label, path, marked, depth = 0) {
  const isMarked = marked.has(path);
  const leadsToMark = [...marked].some((m) => m.startsWith(path + '.') || m.startsWith(path + '['));
  if (node.t === 'obj' || node.t === 'arr') {
    const children = node.t === 'obj'
      ? node.entries.map(([key, child]) => [key, child, `${path}.${JSON.parse(key)}`])
      : node.items.map((item, index) => [String(index), item, `${path}[${index}]`]);
    const details = element('details', isMarked ? 'marked' : '');
    details.open = depth < 2 || leadsToMark;
    const summary = element('summary');
    if (label !== undefined) summary.append(element('span', 'key', label), ': ');
    summary.append(node.t === 'obj' ? `{${children.length}}` : `[${children.length}]`);
    details.append(summary);
    for (const [key, child, childPath] of children) details.append(tree(child, key, childPath, marked, depth + 1));
    return details;
  }
  const line = element('div', isMarked ? 'entry marked' : 'entry');
  if (label !== undefined) line.append(element('span', 'key', label), ': ');
  line.append(element('span', node.t, node.raw));
  return line;
}

function treeBox(node, label, marked = new Set()) {
  const box = element('div', 'tree');
  box.append(tree(node, label, label, marked));
  return box;
}

// Who a token is for, naming the claim that identifies them: `ada (sub 42)`, `ada`, `id 42`.
function userOf(claims) {
  if (!claims || typeof claims !== 'object') return '';
  const pick = (keys) => keys.find((key) => claims[key] !== undefined && claims[key] !== null && typeof claims[key] !== 'object');
  const name = pick(['name', 'username', 'preferred_username', 'email']);
  const id = pick(['sub', 'id', 'userId', 'user_id']);
  if (name && id) return `${claims[name]} (${id} ${claims[id]})`;
  if (name) return String(claims[name]);
  return id ? `${id} ${claims[id]}` : '';
}

// How a conn ends without anything having gone wrong: a close packet, a transport closed by
// either side, a client leaving mid-request, siotap stopping. Anything else is drawn as trouble.
const NORMAL_CLOSES = ['close packet', 'client closed the websocket', 'server closed the websocket', 'client went away mid-request', 'proxy stopped'];
function abnormalClose(record) {
  return record.kind === 'close' && !NORMAL_CLOSES.includes(record.reason);
}

function base64Size(text) {
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  return Math.floor(text.length * 3 / 4) - padding;
}

function connOf(id) {
  let conn = state.conns.get(id);
  if (!conn) {
    conn = { id, eio: '', transports: [], user: '', packets: 0, bytes: 0, errors: 0, problems: 0, closed: null, records: [], tokens: [] };
    state.conns.set(id, conn);
  }
  return conn;
}

function ingest(line) {
  let record;
  try { record = JSON.parse(line); } catch (error) { return; }
  if (record.inspector === 'hello') {
    $('#source').textContent = record.source;
    if (record.dropped > 0) {
      const notice = $('#dropped');
      notice.hidden = false;
      notice.textContent = `${record.dropped} older records are only in the file (the last ${record.capacity} are kept here)`;
    }
    return;
  }
  record._line = line;
  state.all.push(record);
  if (record.kind === 'diagnosis') state.diagnoses.push(record);
  if (!record.conn) return;
  const conn = connOf(record.conn);
  conn.records.push(record);
  if (record.transport && conn.transports[conn.transports.length - 1] !== record.transport) conn.transports.push(record.transport);
  switch (record.kind) {
    case 'session':
      conn.eio = record.eio; conn.url = record.url; conn.remote = record.remote;
      if (record.target) { conn.target = record.target; state.forward = true; }
      break;
    case 'packet':
      conn.packets += 1;
      conn.bytes += (record.raw || '').length + (record.attachments || []).reduce((sum, a) => sum + base64Size(a), 0);
      if ((record.type === 'ACK' || record.type === 'BINARY_ACK') && record.id !== undefined) linkAck(conn, record);
      break;
    case 'jwt': {
      conn.tokens.push(record);
      // The user is a verified token's; an unchecked or refused one's is shown as such.
      const user = userOf(record.claims);
      if (user && record.verified === true && !conn.userVerified) { conn.user = user; conn.userVerified = true; }
      else if (user && !conn.user) conn.user = `${user} (${record.verified === false ? 'refused' : 'unverified'})`;
      break;
    }
    case 'close': conn.closed = record; break;
    case 'error': conn.errors += 1; break;
    case 'diagnosis': conn.problems += 1; break;
    case 'intervention': {
      const packet = record.packet !== undefined ? conn.records.find((r) => r.seq === record.packet) : undefined;
      if (packet) { (packet._faults = packet._faults || []).push(record); record._packet = packet; }
      scheduleLiveRefresh();
      break;
    }
    case 'fault': {
      // A fault names its packet by seq: the packet shows what became of it.
      const packet = record.packet !== undefined ? conn.records.find((r) => r.seq === record.packet) : undefined;
      if (packet) { (packet._faults = packet._faults || []).push(record); record._packet = packet; }
      break;
    }
  }
}

// An ack is drawn to the event it answers: the latest one with its id, the other way.
function linkAck(conn, ack) {
  for (let index = conn.records.length - 2; index >= 0; index--) {
    const event = conn.records[index];
    if (event.kind === 'packet' && event.id === ack.id && event.dir !== ack.dir && event.nsp === ack.nsp
        && (event.type === 'EVENT' || event.type === 'BINARY_EVENT')) {
      event._ack = ack;
      ack._event = event;
      return;
    }
  }
}

function describe(record) {
  switch (record.kind) {
    case 'packet': {
      if (record.type === 'ACK' || record.type === 'BINARY_ACK') return `ack #${record.id}`;
      const name = record.event !== undefined ? record.event : record.type;
      return record.id !== undefined ? `${name} #${record.id}` : name;
    }
    case 'engine': return `engine ${record.type}`;
    case 'session': return `session (${record.transport}, EIO ${record.eio})`;
    case 'jwt': return `token ${record.verified === true ? 'verified' : record.verified === false ? 'not verified' : 'not checked'}`;
    case 'close': return `close by ${record.by}`;
    case 'error': return record.code;
    case 'info': return `info ${record.code}`;
    case 'fault': return `fault ${record.action}`;
    case 'intervention': return `✋ ${record.action} by ${record.by}`;
    case 'diagnosis': return `⚑ ${record.code}`;
    default: return record.kind;
  }
}

// A packet's decoded arguments (or CONNECT data) as captured, numbers and escapes as written;
// its wire text is in the detail ("as sent"). Worked out once per record (rows are drawn again
// on every scroll), and only as much as a row shows.
const PREVIEW_LENGTH = 300;
function preview(record) {
  if (record.kind === 'packet') {
    if (record._preview === undefined) {
      const raw = parseRaw(record._line);
      const args = member(raw, 'args');
      const data = member(raw, 'data');
      const text = args ? literal(args) : data ? literal(data) : '';
      record._preview = text.length > PREVIEW_LENGTH ? text.slice(0, PREVIEW_LENGTH) + '…' : text;
    }
    const text = record._preview;
    return record.latency_ms !== undefined ? `${record.latency_ms} ms${text ? ' · ' + text : ''}` : text;
  }
  if (record.kind === 'close') return record.reason || '';
  if (record.kind === 'error' || record.kind === 'info' || record.kind === 'diagnosis') return record.message || '';
  if (record.kind === 'fault') {
    const what = [record.delay_ms !== undefined ? `${record.delay_ms} ms` : '', record.detail || '', record.raw || ''].filter(Boolean).join(' · ');
    return `${what}${what ? ' · ' : ''}${record.rule}`;
  }
  if (record.kind === 'intervention') {
    return [record.packet !== undefined ? `#${record.packet}` : '', record.held_ms !== undefined ? `held ${record.held_ms} ms` : '',
      record.answers !== undefined ? `answers #${record.answers}` : '', record.detail || '', record.raw || ''].filter(Boolean).join(' · ');
  }
  if (record.kind === 'session') return record.url || '';
  if (record.kind === 'jwt') return record.reason || record.source || '';
  if (record.kind === 'engine') return record.data === undefined ? '' : JSON.stringify(record.data);
  return '';
}

function computeView() {
  const source = state.picked ? (state.conns.get(state.picked) || { records: [] }).records : state.all;
  const search = state.search.toLowerCase();
  state.view = source.filter((record) => {
    if (record.kind === 'engine' && !state.showEngine) return false;
    if (state.filterSeqs && !state.filterSeqs.has(record.seq)) return false;
    if (search && !record._line.toLowerCase().includes(search)) return false;
    return true;
  });
}

// Both lists are windowed: only the rows in view (and a few around) are in the page, so a
// capture of 100,000 records or thousands of conns stays quick to scroll and to update.
function windowOf(viewport, total) {
  const first = Math.max(0, Math.floor(viewport.scrollTop / ROW) - 10);
  const last = Math.min(total, Math.ceil((viewport.scrollTop + viewport.clientHeight) / ROW) + 10);
  return [first, last];
}

function renderConns() {
  const conns = [...state.conns.values()];
  const pane = $('#conns');
  pane.classList.toggle('forward', Boolean(state.forward));
  // Sized to its rows until the user resizes it.
  if (!state.connsSizedByUser) {
    state.connsHeight = (Math.min(Math.max(conns.length, 1), 12) + 1) * ROW + 6;
    pane.style.height = `${state.connsHeight}px`;
  }
  const viewport = $('#conn-viewport');
  $('#conn-spacer').style.height = `${conns.length * ROW}px`;
  const [first, last] = windowOf(viewport, conns.length);
  const body = $('#conn-rows');
  body.style.top = `${first * ROW}px`;
  const rows = [];
  for (const conn of conns.slice(first, last)) {
    const row = element('div', 'conn');
    row.dataset.conn = conn.id;
    if (conn.id === state.picked) row.classList.add('picked');
    const closed = conn.closed ? `closed by ${conn.closed.by}${conn.closed.reason ? ': ' + conn.closed.reason : ''}` : 'open';
    // A conn with a diagnosis says so where its errors are counted (the Problems panel explains).
    const errors = conn.problems ? `${conn.errors} ⚑${conn.problems}` : conn.errors;
    const cells = [conn.id, conn.eio, conn.transports.join(' → '), conn.user, conn.packets, conn.bytes, errors, closed];
    if (state.forward) cells.splice(1, 0, conn.target || '');
    for (const text of cells) row.append(element('span', '', String(text)));
    if (conn.errors > 0 || conn.problems > 0) row.children[state.forward ? 7 : 6].className = 'error';
    if (conn.closed && abnormalClose(conn.closed)) row.children[state.forward ? 8 : 7].className = 'error';
    if (state.report) {
      const diff = state.report.conns.get(conn.id);
      const differences = diff ? diff.changed.length + diff.missing.length + diff.unexpected.length : 0;
      row.append(element('span', !diff ? 'muted' : differences ? 'notice' : 'verdict-ok', !diff ? 'not replayed' : differences ? `${differences} difference${differences === 1 ? '' : 's'}` : 'same'));
    }
    rows.push(row);
  }
  body.replaceChildren(...rows);
}

function renderRows() {
  // Several conns in one timeline: each row says whose it is.
  $('#timeline').classList.toggle('multi', !state.picked && state.conns.size > 1);
  const viewport = $('#viewport');
  const total = state.view.length;
  $('#count').textContent = `${total} record${total === 1 ? '' : 's'}`;
  $('#spacer').style.height = `${total * ROW}px`;
  const [first, last] = windowOf(viewport, total);
  const rows = $('#rows');
  rows.style.top = `${first * ROW}px`;
  const made = [];
  for (let index = first; index < last; index++) {
    const record = state.view[index];
    const row = element('div', `row ${record.kind}-row${abnormalClose(record) ? ' abnormal' : ''}`);
    row.dataset.index = index;
    if (record === state.selected) row.classList.add('picked');
    // An event and its ack are drawn together: selecting one marks the other, joined by a bar.
    if (state.selected && (record === state.selected._ack || record === state.selected._event)) row.classList.add('paired');
    const replayed = state.report && state.report.bySeq.get(record.seq);
    if (replayed) row.classList.add(replayed.missing ? 'missing' : 'changed');
    const arrow = record.dir === 'c2s' ? '→' : record.dir === 's2c' ? '←' : '';
    row.append(
      element('span', 'time', (record.ts || '').slice(11, 23)),
      element('span', 'conn-id', record.conn || ''),
      element('span', record.dir || '', arrow),
      element('span', '', record.nsp || ''),
      element('span', 'what', describe(record)),
      element('span', 'args', preview(record)),
    );
    if (record._ack) row.lastChild.prepend(element('span', 'ack', `acked ${record._ack.latency_ms !== undefined ? record._ack.latency_ms + ' ms' : ''} · `));
    made.push(row);
  }
  rows.replaceChildren(...made);
}

function renderDetail() {
  const detail = $('#detail');
  const record = state.selected;
  if (!record) { detail.replaceChildren(element('p', 'muted', 'Select a record (j/k, enter).')); return; }
  const parts = [element('h3', '', `#${record.seq} ${describe(record)}`), element('div', 'muted', `${record.ts} · ${record.conn || ''} ${record.dir || ''} ${record.transport || ''}`)];
  const raw = parseRaw(record._line);
  if (record.kind === 'packet') {
    if (record._event) {
      const jump = element('a', 'jump', `answers #${record._event.seq} ${record._event.event || ''}`);
      jump.onclick = () => select(record._event);
      parts.push(element('div', 'ack', `ack after ${record.latency_ms !== undefined ? record.latency_ms + ' ms' : '?'} `), jump);
    }
    if (record._ack) {
      const jump = element('a', 'jump', `acked by #${record._ack.seq}${record._ack.latency_ms !== undefined ? ' after ' + record._ack.latency_ms + ' ms' : ''}`);
      jump.onclick = () => select(record._ack);
      parts.push(jump);
    }
    const replayed = state.report && state.report.bySeq.get(record.seq);
    const marked = new Set(replayed && replayed.changes ? replayed.changes.map((change) => change.path) : []);
    if (replayed) parts.push(replayView(replayed));
    const args = member(raw, 'args');
    const data = member(raw, 'data');
    if (args) parts.push(element('h3', '', 'arguments'), treeBox(args, 'args', marked));
    else if (data) parts.push(element('h3', '', 'data'), treeBox(data, 'data', marked));
    (record.attachments || []).forEach((attachment, index) => parts.push(attachmentView(attachment, index)));
    if (record.raw !== undefined) parts.push(element('h3', '', 'as sent'), element('pre', '', record.raw));
    if (live.available && record.event !== undefined && !isClosed(record.conn)) {
      const button = element('button', 'break-toggle', breakpointOn(record) ? 'Stop breaking on this event (b)' : 'Break on this event (b)');
      button.onclick = () => toggleBreak(record);
      parts.push(element('div', 'break-line'), button);
    }
    for (const fault of record._faults || []) {
      const jump = element('a', 'jump notice', `${describe(fault)} ${fault.rule ? 'by ' + fault.rule : ''} (#${fault.seq})`);
      jump.onclick = () => select(fault);
      parts.push(jump);
    }
  } else {
    if ((record.kind === 'fault' || record.kind === 'intervention') && record._packet) {
      const jump = element('a', 'jump', `on #${record._packet.seq} ${describe(record._packet)}`);
      jump.onclick = () => select(record._packet);
      parts.push(jump);
    }
    parts.push(...panels(record, raw));
  }
  detail.replaceChildren(...parts);
}

// The fields each kind of record is read by, in the order a person reads them.
const FIELDS = {
  session: ['url', 'path', 'eio', 'transport', 'sid', 'remote', 'upstream', 'target', 'scheme', 'parser', 'app'],
  jwt: ['source', 'nsp', 'verified', 'reason', 'exp', 'iat', 'nbf', 'expires_in_s', 'warnings'],
  fault: ['rule', 'action', 'dir', 'packet', 'delay_ms', 'detail', 'raw'],
  intervention: ['action', 'by', 'dir', 'packet', 'breakpoint', 'held_ms', 'answers', 'detail', 'raw', 'attachments'],
  close: ['by', 'reason'],
  error: ['code', 'dir', 'message', 'raw'],
  info: ['code', 'dir', 'message'],
  engine: ['type', 'dir', 'transport'],
};

function fieldTable(pairs, className = 'fields') {
  const table = element('table', className);
  for (const [key, value] of pairs) {
    const row = element('tr');
    row.append(element('th', '', key), element('td', '', typeof value === 'object' ? JSON.stringify(value) : String(value)));
    table.append(row);
  }
  return table;
}

// A record's detail as panels: its fields as a table, a session's headers and TLS as tables of
// their own, a token's header and claims as trees; the whole record stays a click away.
function panels(record, raw) {
  const out = [];
  const keys = FIELDS[record.kind] || [];
  const pairs = keys.filter((key) => record[key] !== undefined).map((key) => [key, record[key]]);
  if (pairs.length) out.push(fieldTable(pairs));
  if (record.kind === 'session' && record.headers) {
    out.push(element('h3', '', 'request headers'), fieldTable(Object.entries(record.headers), 'fields headers'));
  }
  if (record.kind === 'session' && record.tls) {
    const tls = record.tls;
    const certificate = tls.upstream_cert || {};
    out.push(element('h3', '', 'TLS'), fieldTable([['version', tls.version], ['cipher', tls.cipher], ['sni', tls.sni],
      ['upstream certificate', certificate.subject], ['issued by', certificate.issuer], ['valid until', certificate.not_after]]
      .filter(([, value]) => value !== undefined)));
  }
  if (record.kind === 'jwt') {
    for (const name of ['header', 'claims']) {
      const node = member(raw, name);
      if (node) out.push(element('h3', '', name), treeBox(node, name));
    }
  }
  if (record.kind === 'engine' && record.data !== undefined) out.push(element('h3', '', 'data'), treeBox(member(raw, 'data'), 'data'));
  const whole = element('details', 'whole');
  whole.append(element('summary', 'muted', 'the record as written'), treeBox(raw, record.kind));
  out.push(whole);
  return out;
}

// What the replay said of this record: the paths that changed, or that it never came.
function replayView(replayed) {
  const box = element('div', 'replay');
  if (replayed.missing) {
    box.append(element('h3', 'error', 'replay: never came'), element('div', 'muted', `expected as ${replayed.missing.key}`));
    return box;
  }
  box.append(element('h3', 'notice', `replay: ${replayed.changes.length} change${replayed.changes.length === 1 ? '' : 's'}`));
  for (const change of replayed.changes) {
    const line = element('div', 'change');
    line.append(element('span', 'key', change.path), ': expected ', element('code', 'num', JSON.stringify(change.expected)),
      ', came ', element('code', 'str', JSON.stringify(change.actual)));
    box.append(line);
  }
  return box;
}

function renderReplay() {
  const panel = $('#replay');
  const diff = state.report && state.picked && state.report.conns.get(state.picked);
  if (!diff) { panel.replaceChildren(); return; }
  const parts = [element('h3', '', 'Replay'), element('div', diff.missing.length + diff.unexpected.length + diff.changed.length ? 'notice' : 'verdict-ok',
    `${diff.matched} matched, ${diff.changed.length} changed, ${diff.missing.length} never came, ${diff.unexpected.length} came unrecorded`)];
  for (const extra of diff.unexpected) {
    parts.push(element('div', 'muted', `came unrecorded: ${extra.key}`), element('pre', '', JSON.stringify(extra.payload)));
  }
  panel.replaceChildren(...parts);
}

async function loadReport() {
  const response = await fetch(withToken('/report'));
  const report = await response.json();
  if (!report) return;
  const conns = new Map();
  const bySeq = new Map();
  for (const diff of report.connections || []) {
    conns.set(diff.conn, diff);
    for (const change of diff.changed) {
      const entry = bySeq.get(change.seq) || { changes: [] };
      entry.changes.push(change);
      bySeq.set(change.seq, entry);
    }
    for (const missing of diff.missing) bySeq.set(missing.seq, { missing });
  }
  state.report = { conns, bySeq, equal: report.equal };
  $('#replay-column').hidden = false;
  render();
}

function attachmentView(base64, index) {
  const box = element('div');
  box.append(element('h3', '', `attachment ${index}: ${base64Size(base64)} bytes`));
  const toggle = element('button', '', 'hex');
  const shown = element('pre', '', base64);
  toggle.onclick = () => {
    const hex = toggle.textContent === 'hex';
    shown.textContent = hex ? hexDump(base64) : base64;
    toggle.textContent = hex ? 'base64' : 'hex';
  };
  box.append(toggle, shown);
  return box;
}

function hexDump(base64) {
  const bytes = Array.from(atob(base64), (c) => c.charCodeAt(0));
  const lines = [];
  for (let offset = 0; offset < bytes.length; offset += 16) {
    const chunk = bytes.slice(offset, offset + 16);
    lines.push(offset.toString(16).padStart(6, '0') + '  ' + chunk.map((b) => b.toString(16).padStart(2, '0')).join(' '));
  }
  return lines.join('\n');
}

function renderTokens() {
  const panel = $('#tokens');
  const conn = state.picked && state.conns.get(state.picked);
  if (!conn || conn.tokens.length === 0) { panel.replaceChildren(); return; }
  const parts = [element('h3', '', 'Tokens')];
  for (const token of conn.tokens) {
    const verdict = token.verified === true ? ['verdict-ok', 'verified'] : token.verified === false ? ['verdict-bad', `not verified: ${token.reason || ''}`] : ['', 'not checked (no key given)'];
    parts.push(element('div', 'muted', `${token.source}${token.nsp ? ' · ' + token.nsp : ''}`), element('div', verdict[0], verdict[1]));
    const raw = parseRaw(token._line);
    if (member(raw, 'header')) parts.push(treeBox(member(raw, 'header'), 'header'));
    if (member(raw, 'claims')) parts.push(treeBox(member(raw, 'claims'), 'claims'));
    const times = [['iat', 'issued'], ['nbf', 'not before'], ['exp', 'expires']]
      .filter(([claim]) => token.claims && claim in token.claims)
      .map(([claim, label]) => `${label} ${claimDate(token.claims[claim])}`);
    if (times.length) parts.push(element('div', 'muted', times.join(' · ')));
    if (token.claims && dateOf(token.claims.exp)) {
      const countdown = element('div', 'countdown');
      countdown.dataset.exp = token.claims.exp;
      parts.push(countdown);
    }
    for (const warning of token.warnings || []) parts.push(element('div', 'notice', warning));
  }
  panel.replaceChildren(...parts);
  tick();
}

// A time claim as a Date, or null: claims are whatever the token's author wrote (1e300, "0", an
// object), and `new Date(…).toISOString()` throws on what no Date holds.
function dateOf(value) {
  if (typeof value !== 'number' || !Number.isFinite(value)) return null;
  const date = new Date(value * 1000);
  return Number.isNaN(date.getTime()) ? null : date;
}

function claimDate(value) {
  const date = dateOf(value);
  if (date) return date.toISOString().replace('.000Z', 'Z');
  const text = typeof value === 'string' ? JSON.stringify(value) : String(JSON.stringify(value) ?? value);
  return `${text.length > 40 ? text.slice(0, 40) + '…' : text} (no date)`;
}

function tick() {
  const now = Date.now() / 1000;
  for (const countdown of document.querySelectorAll('.countdown')) {
    const left = Math.round(Number(countdown.dataset.exp) - now);
    const span = (s) => (s >= 3600 ? `${Math.floor(s / 3600)}h ` : '') + (s >= 60 ? `${Math.floor((s % 3600) / 60)}m ` : '') + `${s % 60}s`;
    countdown.textContent = left >= 0 ? `expires in ${span(left)}` : `expired ${span(-left)} ago`;
    countdown.className = `countdown ${left >= 0 ? 'verdict-ok' : 'verdict-bad'}`;
  }
}

function select(record) {
  state.selected = record;
  const index = state.view.indexOf(record);
  if (index >= 0) {
    const viewport = $('#viewport');
    if (index * ROW < viewport.scrollTop || (index + 1) * ROW > viewport.scrollTop + viewport.clientHeight) {
      viewport.scrollTop = index * ROW - viewport.clientHeight / 2;
    }
  }
  renderRows();
  renderDetail();
}

let scheduled = false;
function render() {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    const viewport = $('#viewport');
    const atBottom = viewport.scrollTop + viewport.clientHeight >= viewport.scrollHeight - ROW;
    computeView();
    renderConns();
    renderRows();
    if (state.following && atBottom && !state.paused) viewport.scrollTop = viewport.scrollHeight;
    renderTokens();
    renderReplay();
    renderProblems();
    renderEmitForm();
  });
}

// What went wrong, as siotap worked it out: each diagnosis with its explanation, the socket.io
// documentation on the fix, and the records that show it, a click away. The newest 200 are drawn.
let problemsDrawn = -1;
function renderProblems() {
  if (problemsDrawn === state.diagnoses.length) return;
  problemsDrawn = state.diagnoses.length;
  const panel = $('#problems');
  if (state.diagnoses.length === 0) { panel.replaceChildren(); return; }
  const errors = state.diagnoses.filter((d) => d.severity === 'error').length;
  const parts = [element('h3', '', `Problems (${state.diagnoses.length}${errors ? `, ${errors} error${errors === 1 ? '' : 's'}` : ''})`)];
  for (const diagnosis of state.diagnoses.slice(-200)) {
    const box = element('div', `problem ${diagnosis.severity === 'error' ? 'problem-error' : 'problem-warn'}`);
    const head = element('div', 'problem-head');
    head.append(element('strong', '', diagnosis.code), element('span', 'muted', diagnosis.conn ? ` · ${diagnosis.conn}` : ''));
    box.append(head, element('div', '', diagnosis.message || ''));
    const links = element('div', 'muted', 'shown by ');
    for (const seq of (diagnosis.evidence || []).slice(0, 12)) {
      const jump = element('a', 'jump', `#${seq}`);
      jump.addEventListener('click', () => showSeq(seq));
      links.append(jump, ' ');
    }
    box.append(links);
    // Only the socket.io documentation: a capture from elsewhere could hold any URL.
    if (typeof diagnosis.docs === 'string' && diagnosis.docs.startsWith('https://socket.io/')) {
      const docs = element('a', '', 'how to fix it');
      docs.href = diagnosis.docs;
      docs.target = '_blank';
      docs.rel = 'noopener noreferrer';
      box.append(docs);
    }
    parts.push(box);
  }
  panel.replaceChildren(...parts);
}

// Picks the record's conn and selects the record (a diagnosis' evidence).
function showSeq(seq) {
  const record = state.all.find((r) => r.seq === seq);
  if (!record) return;
  if (record.conn && state.picked !== record.conn) {
    state.picked = record.conn;
    state.selected = null;
    saveLocation();
    computeView();
    renderConns();
  }
  if (!state.view.includes(record) && record.kind === 'engine') { state.showEngine = true; $('#show-engine').checked = true; computeView(); }
  select(record);
}

// The run's token, from the address siotap printed (`/?token=…`): the server answers nothing but
// the page itself without it. Kept for this tab, so a reload without it still works.
const token = new URLSearchParams(location.search).get('token') || sessionStorage.getItem('siotap-token') || '';
sessionStorage.setItem('siotap-token', token);

function withToken(path) {
  return `${path}${path.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
}

function saveLocation() {
  const params = new URLSearchParams();
  if (state.picked) params.set('conn', state.picked);
  if (state.filter) params.set('filter', state.filter);
  if (state.search) params.set('q', state.search);
  history.replaceState(null, '', location.pathname + location.search + (params.toString() ? `#${params}` : ''));
  const exported = new URLSearchParams();
  if (state.picked) exported.set('conn', state.picked);
  if (state.filter) exported.set('filter', state.filter);
  $('#export').href = withToken(`/export?${exported}`);
}

let matching = null;
let matchAgain = false;
async function applyFilter() {
  const error = $('#filter-error');
  if (!state.filter) {
    state.filterSeqs = null;
    error.hidden = true;
    render();
    return;
  }
  if (matching) { matchAgain = true; return; }
  matching = (async () => {
    const response = await fetch(withToken(`/match?${new URLSearchParams({ filter: state.filter })}`));
    const body = await response.json();
    if (body.seqs) {
      state.filterSeqs = new Set(body.seqs);
      error.hidden = true;
    } else {
      state.filterSeqs = new Set();
      error.hidden = false;
      error.textContent = body.error;
    }
    render();
  })();
  try { await matching; } finally { matching = null; }
  // Records that came while the server was asked are matched on the next ask.
  if (matchAgain) { matchAgain = false; applyFilter(); }
}

function pick(id) {
  state.picked = state.picked === id ? null : id;
  state.selected = null;
  saveLocation();
  render();
  renderDetail();
}

function connect() {
  const socket = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${withToken('/live')}`);
  socket.onopen = () => { $('#status').textContent = 'live'; };
  socket.onclose = () => { $('#status').textContent = 'disconnected: retrying…'; setTimeout(connect, 2000); resetRecords(); };
  socket.onmessage = (message) => {
    if (state.paused) { state.waiting.push(message.data); return; }
    ingest(message.data);
    if (state.filter) applyFilter();
    render();
  };
}

function resetRecords() {
  state.conns.clear();
  state.all = [];
  state.diagnoses = [];
  state.waiting = [];
}

function restoreLocation() {
  const params = new URLSearchParams(location.hash.slice(1));
  state.picked = params.get('conn');
  state.filter = params.get('filter') || '';
  state.search = params.get('q') || '';
  $('#filter').value = state.filter;
  $('#search').value = state.search;
  saveLocation();
}

// Acting on live conns (siotap proxy --ui, docs/api.md): the Held list, the breakpoints, the Emit
// form. Elsewhere (siotap view, import) the API answers 404 and the panel stays hidden.
const live = { available: false, held: [], breakpoints: [], editing: null, formConn: undefined, refreshing: false, again: false };

async function api(method, path, body) {
  const headers = { 'X-Siotap-By': 'ui' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(withToken(path), { method, headers, body });
  const text = await response.text();
  let answer = null;
  try { answer = JSON.parse(text); } catch (error) { answer = null; }
  return { ok: response.ok, status: response.status, answer, text };
}

let liveTimer = null;
function scheduleLiveRefresh() {
  if (live.available && !liveTimer) liveTimer = setTimeout(() => { liveTimer = null; refreshLive(); }, 50);
}

// Whether this inspector can act on live conns (siotap proxy) or only shows records.
async function probeLive() {
  const { ok, answer } = await api('GET', '/api');
  if (!ok || !answer || answer.live !== true) return;
  live.available = true;
  $('#live').hidden = false;
  renderDetail();
  refreshLive();
}

async function refreshLive() {
  if (!live.available) return;
  if (live.refreshing) { live.again = true; return; }
  live.refreshing = true;
  try {
    const [held, breakpoints] = await Promise.all([api('GET', '/api/held'), api('GET', '/api/breakpoints')]);
    if (!held.ok || !Array.isArray(held.answer)) return;
    live.held = held.answer;
    const before = live.breakpoints.map((b) => b.id).join();
    live.breakpoints = Array.isArray(breakpoints.answer) ? breakpoints.answer : [];
    if (live.breakpoints.map((b) => b.id).join() !== before) renderDetail();  // the toggle's label
    renderHeld();
    renderBreakpoints();
    renderEmitForm();
  } catch (error) {
    // The proxy stopped: the panel keeps what it last knew.
  } finally {
    live.refreshing = false;
    if (live.again) { live.again = false; refreshLive(); }
  }
}

function isClosed(id) {
  const conn = id && state.conns.get(id);
  return !conn || !!conn.closed;
}

// The held packets, oldest first, each with what to do with it: let it go (r), edit it, drop it (d).
function renderHeld() {
  if (live.editing !== null && live.held.some((h) => h.seq === live.editing)) return;  // not under the user's typing
  live.editing = null;
  const box = $('#held');
  if (!live.held.length) { box.replaceChildren(element('h3', '', 'Held'), element('div', 'muted', 'Nothing held. Break on an event (b) to hold its next packets.')); return; }
  const parts = [element('h3', '', `Held (${live.held.length})`)];
  live.held.forEach((held, index) => {
    const item = element('div', 'held-item');
    item.dataset.seq = held.seq;
    const what = held.event !== undefined ? held.event : held.type;
    const head = element('div');
    const jump = element('a', 'jump', `#${held.seq}`);
    jump.onclick = () => showSeq(held.seq);
    head.append(jump, ` ${held.conn} `, element('span', held.dir, held.dir === 'c2s' ? '→' : '←'), ` ${held.nsp} ${what}`,
      element('span', 'muted', ` · ${Math.round(held.held_ms / 1000)} s${held.waiting ? ` · ${held.waiting} waiting behind it` : ''}`));
    const args = element('pre', '', held.args !== undefined ? argsText(held) : held.raw);
    const buttons = element('div', 'buttons');
    const release = element('button', 'release', index === 0 ? 'Release (r)' : 'Release');
    release.onclick = () => decide(held.seq, 'release');
    const edit = element('button', 'edit', 'Edit');
    edit.onclick = () => editHeld(item, held);
    const drop = element('button', 'drop', index === 0 ? 'Drop (d)' : 'Drop');
    drop.onclick = () => decide(held.seq, 'drop');
    if (held.args === undefined) edit.disabled = true;
    buttons.append(release, edit, drop);
    item.append(head, args, buttons);
    parts.push(item);
  });
  box.replaceChildren(...parts);
}

// A held packet's arguments as captured (exact numbers and escapes), from its record when the
// page has it.
function argsText(held) {
  const record = state.all.find((r) => r.seq === held.seq);
  const node = record && member(parseRaw(record._line), 'args');
  return node ? literal(node) : JSON.stringify(held.args);
}

function editHeld(item, held) {
  live.editing = held.seq;
  const area = element('textarea');
  area.rows = 4;
  area.value = argsText(held);
  area.setAttribute('aria-label', `arguments of #${held.seq}`);
  const problem = element('div', 'error');
  const buttons = element('div', 'buttons');
  const send = element('button', 'send-edit', 'Release edited');
  send.onclick = () => {
    try {
      if (!Array.isArray(JSON.parse(area.value))) throw new Error('the arguments must be a JSON array');
    } catch (error) { problem.textContent = error.message; return; }
    // Sent as typed: JSON.parse would round big numbers.
    decide(held.seq, 'release', `{"args":${area.value}}`);
  };
  const cancel = element('button', '', 'Cancel');
  cancel.onclick = () => { live.editing = null; renderHeld(); };
  area.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) { event.preventDefault(); send.click(); }
    if (event.key === 'Escape') cancel.click();
  });
  buttons.append(send, cancel);
  item.replaceChildren(item.firstChild, area, problem, buttons);
  area.focus();
}

async function decide(seq, verb, body) {
  const { ok, answer } = await api('POST', `/api/held/${seq}/${verb}`, body);
  live.editing = null;
  if (!ok) $('#emit-result').textContent = answer && answer.error ? answer.error : `${verb} failed`;
  refreshLive();
}

function renderBreakpoints() {
  const box = $('#breakpoints');
  if (!live.breakpoints.length) { box.replaceChildren(); return; }
  const parts = [element('h3', '', 'Breakpoints')];
  for (const breakpoint of live.breakpoints) {
    const line = element('div', 'breakpoint');
    const remove = element('button', '', '×');
    remove.title = `Remove ${breakpoint.id}`;
    remove.onclick = async () => { await api('DELETE', `/api/breakpoints/${encodeURIComponent(breakpoint.id)}`); refreshLive(); };
    line.append(remove, element('span', '', `${breakpoint.id} ${breakpoint.filter}`), element('span', 'muted', breakpoint.by));
    parts.push(line);
  }
  box.replaceChildren(...parts);
}

// "Break on this event" is a toggle: the breakpoint for the record's event and direction.
function breakFilter(record) { return `event=${record.event},dir=${record.dir}`; }
function breakpointOn(record) { return live.breakpoints.find((b) => b.filter === breakFilter(record)); }

async function toggleBreak(record) {
  const existing = breakpointOn(record);
  if (existing) {
    await api('DELETE', `/api/breakpoints/${encodeURIComponent(existing.id)}`);
  } else {
    const { ok, answer } = await api('POST', '/api/breakpoints', JSON.stringify({ filter: breakFilter(record) }));
    if (!ok) $('#emit-result').textContent = (answer && answer.error) || 'no breakpoint';
  }
  refreshLive();
}

// The Emit form follows the selected conn while it is open; its lists are what the conn has seen.
function renderEmitForm() {
  const form = $('#emit');
  const id = state.picked;
  const show = live.available && !!id && !isClosed(id);
  form.hidden = !show;
  if (!show) { live.formConn = undefined; return; }
  $('#emit-conn').textContent = id;
  if (live.formConn === id) return;
  live.formConn = id;
  $('#emit-result').textContent = '';
  fillEmitLists();
}

function fillEmitLists() {
  const conn = state.conns.get(state.picked);
  if (!conn) return;
  const dir = $('#emit-to').value === 'server' ? 'c2s' : 's2c';
  const packets = conn.records.filter((r) => r.kind === 'packet');
  const namespaces = [...new Set(packets.filter((r) => r.type === 'CONNECT' && r.dir === 's2c').map((r) => r.nsp))];
  const events = [...new Set(packets.filter((r) => r.event !== undefined && r.dir === dir).map((r) => r.event))];
  const option = (value) => { const made = element('option'); made.value = value; return made; };
  $('#emit-nsps').replaceChildren(...namespaces.map(option));
  $('#emit-events').replaceChildren(...events.map(option));
}

// Choosing an event the conn has seen fills in its last arguments, as captured.
function prefillArgs() {
  const conn = state.conns.get(state.picked);
  const name = $('#emit-event').value;
  if (!conn || !name) return;
  const dir = $('#emit-to').value === 'server' ? 'c2s' : 's2c';
  for (let index = conn.records.length - 1; index >= 0; index--) {
    const record = conn.records[index];
    if (record.kind !== 'packet' || record.event !== name || record.dir !== dir) continue;
    const node = member(parseRaw(record._line), 'args');
    $('#emit-args').value = node ? literal(node) : '[]';
    $('#emit-nsp').value = record.nsp;
    return;
  }
}

async function sendEmit() {
  const result = $('#emit-result');
  const text = $('#emit-args').value.trim() || '[]';
  try {
    if (!Array.isArray(JSON.parse(text))) throw new Error('the arguments must be a JSON array');
  } catch (error) { result.textContent = error.message; result.className = 'error'; return; }
  const ack = $('#emit-ack').checked;
  const body = `{"to":${JSON.stringify($('#emit-to').value)},"nsp":${JSON.stringify($('#emit-nsp').value || '/')},`
    + `"event":${JSON.stringify($('#emit-event').value)},"ack":${ack},"args":${text}}`;
  result.className = 'muted';
  result.textContent = ack ? 'sent; waiting for the ack…' : 'sending…';
  const { ok, answer, text: answered } = await api('POST', `/api/conns/${encodeURIComponent(state.picked)}/emit`, body);
  if (!ok) { result.className = 'error'; result.textContent = (answer && answer.error) || 'not sent'; return; }
  result.className = answer.ack ? 'ack' : 'muted';
  result.textContent = !ack ? `sent (#${answer.seq})` : answer.timed_out ? `sent (#${answer.seq}); no ack within the timeout`
    : `ack: ${literal(member(parseRaw(answered), 'ack'))}`;  // as the peer wrote it: JSON.parse rounds
}

function setUp() {
  restoreLocation();
  $('#conn-rows').addEventListener('click', (event) => {
    const row = event.target.closest('.conn');
    if (row) pick(row.dataset.conn);
  });
  $('#conn-viewport').addEventListener('scroll', renderConns);
  // Dragging the pane's corner makes its height the user's (CSS resize: vertical).
  new ResizeObserver(() => {
    const pane = $('#conns');
    if (state.connsHeight !== undefined && Math.abs(pane.offsetHeight - state.connsHeight) > 2) state.connsSizedByUser = true;
  }).observe($('#conns'));
  $('#rows').addEventListener('click', (event) => {
    const row = event.target.closest('.row');
    if (row) select(state.view[Number(row.dataset.index)]);
  });
  $('#viewport').addEventListener('scroll', () => {
    const viewport = $('#viewport');
    state.following = viewport.scrollTop + viewport.clientHeight >= viewport.scrollHeight - ROW;
    renderRows();
  });
  $('#show-engine').addEventListener('change', (event) => { state.showEngine = event.target.checked; render(); });
  $('#filter').addEventListener('keydown', (event) => {
    if (event.key !== 'Enter') return;
    state.filter = event.target.value.trim();
    saveLocation();
    applyFilter();
  });
  $('#search').addEventListener('input', (event) => { state.search = event.target.value; saveLocation(); render(); });
  $('#pause').addEventListener('click', togglePause);
  document.addEventListener('keydown', (event) => {
    const typing = event.target instanceof HTMLInputElement || event.target instanceof HTMLTextAreaElement || event.target instanceof HTMLSelectElement;
    if (event.key === 'Escape' && typing) { event.target.blur(); return; }
    if (typing) return;
    if (event.key === '/') { event.preventDefault(); $('#filter').focus(); }
    else if (event.key === 'j' || event.key === 'k') {
      const index = state.view.indexOf(state.selected) + (event.key === 'j' ? 1 : -1);
      const bounded = Math.max(0, Math.min(state.view.length - 1, index));
      if (state.view[bounded]) select(state.view[bounded]);
    } else if (event.key === 'Enter' && state.selected) {
      for (const details of document.querySelectorAll('#detail details')) details.open = true;
    } else if (event.key === ' ') { event.preventDefault(); togglePause(); }
    else if (event.key === 'e' && !$('#emit').hidden) { event.preventDefault(); $('#emit-event').focus(); }
    else if (event.key === 'b' && state.selected && state.selected.event !== undefined && live.available) toggleBreak(state.selected);
    else if ((event.key === 'r' || event.key === 'd') && live.held.length) decide(live.held[0].seq, event.key === 'r' ? 'release' : 'drop');
  });
  $('#emit').addEventListener('submit', (event) => { event.preventDefault(); sendEmit(); });
  $('#emit-event').addEventListener('change', prefillArgs);
  $('#emit-to').addEventListener('change', () => { fillEmitLists(); prefillArgs(); });
  $('#emit-args').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) { event.preventDefault(); sendEmit(); }
  });
  probeLive();
  setInterval(tick, 1000);
  // Held times grow, and scripts set breakpoints through the API too: asked again each second.
  setInterval(() => { if (live.available) refreshLive(); }, 1000);
  loadReport();
  connect();
}

function togglePause() {
  state.paused = !state.paused;
  $('#pause').textContent = state.paused ? 'Resume' : 'Pause';
  $('#status').textContent = state.paused ? 'paused' : 'live';
  if (!state.paused) {
    for (const line of state.waiting.splice(0)) ingest(line);
    if (state.filter) applyFilter();
    render();
  }
}

setUp();
