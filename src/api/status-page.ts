/**
 * The status page of `GET /`: one small HTML page with its own script and style sheet (served
 * from this API, nothing from elsewhere; the Content-Security-Policy allows only 'self'). It shows
 * the node's state, its directory nodes, its peers and, on a maker or taker, the live orderbook
 * as JoinMarket's orderbook watcher lists it (maker, type, oid, min/max size, fee); on a directory
 * node, peers and relay rates. It follows `/v1/events` with the browser's EventSource and
 * re-reads `/v1/info` and `/v1/orderbook` when something changed, without reloading.
 */

/** The page. Element ids are what the script fills (and what the browser test waits on). */
export const STATUS_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>onionmc</title>
<link rel="stylesheet" href="/status.css">
<script src="/status.js" defer></script>
</head>
<body>
<h1>onionmc <span id="nick"></span></h1>
<p id="summary">loading…</p>
<p id="live" class="muted">events: connecting</p>
<section id="directories-section" hidden>
<h2>Directory nodes</h2>
<table id="directories"><thead><tr><th>location</th><th>nick</th><th>state</th><th>last message</th></tr></thead><tbody></tbody></table>
</section>
<section>
<h2>Peers</h2>
<table id="peers"><thead><tr><th>nick</th><th>location</th><th>state</th><th>detail</th></tr></thead><tbody></tbody></table>
</section>
<section id="relay-section" hidden>
<h2>Relay</h2>
<table id="relay"><thead><tr><th>type</th><th>total</th><th>last minute</th></tr></thead><tbody></tbody></table>
</section>
<section id="orderbook-section" hidden>
<h2>Orderbook <span id="orderbook-count" class="muted"></span></h2>
<table id="orderbook"><thead><tr><th>maker</th><th>type</th><th>oid</th><th>min size</th><th>max size</th><th>txfee</th><th>fee</th></tr></thead><tbody></tbody></table>
</section>
</body>
</html>
`;

/** The page's style sheet. */
export const STATUS_CSS = `body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.5em}
table{border-collapse:collapse}th,td{padding:.2em .8em;border-bottom:1px solid #ddd;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#777}
`;

/** The page's script: plain DOM and EventSource, no framework. */
export const STATUS_JS = `'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const relayTimes = new Map();
  let role;
  let pending;

  function cell(text, cls) {
    const td = document.createElement('td');
    td.textContent = text === undefined || text === null ? '' : String(text);
    if (cls) td.className = cls;
    return td;
  }
  function fill(tableId, rows) {
    const body = $(tableId).tBodies[0];
    body.replaceChildren(...rows.map((cells) => {
      const tr = document.createElement('tr');
      tr.append(...cells);
      return tr;
    }));
  }
  function ago(s) {
    return s === null || s === undefined ? 'never' : s + ' s ago';
  }
  function fee(o) {
    return /absoffer$/.test(o.type) ? o.cjfee + ' sat' : (Number(o.cjfee) * 100).toPrecision(4) + ' %';
  }

  async function getJson(path) {
    const res = await fetch(path, { cache: 'no-store' });
    if (!res.ok) throw new Error(path + ': ' + res.status);
    return res.json();
  }

  async function refresh() {
    pending = undefined;
    const info = await getJson('/v1/info');
    role = info.role;
    $('nick').textContent = info.nick || '';
    const tor = info.tor ? ', tor ' + (info.tor.version || '?') + ', PoW ' + (info.tor.powDefenses ? 'on' : 'off') : ', testing mode';
    $('summary').textContent = (info.role || 'node') + ' · ' + info.state + ' · up ' + info.uptimeSeconds + ' s · ' + info.network + tor + ' · onionmc ' + info.version + (info.location ? ' · ' + info.location : '');
    const dirs = info.directories || [];
    $('directories-section').hidden = role === 'directory' || role === undefined;
    fill('directories', dirs.map((d) => [cell(d.location), cell(d.nick), cell(d.state), cell(ago(d.lastMessageSecondsAgo))]));
    const peers = info.peers || [];
    fill('peers', peers.map((p) => role === 'directory'
      ? [cell(p.nick), cell(p.location), cell(p.state), cell((p.verified ? 'verified ' : '') + (p.features || []).join(' '))]
      : [cell(p.nick), cell(p.location), cell('handshaked'), cell(p.direction)]));
    if (role === 'directory') {
      $('relay-section').hidden = false;
      const counters = info.counters || {};
      const now = Date.now();
      fill('relay', ['privmsg', 'pubmsg'].map((kind) => {
        const times = (relayTimes.get(kind) || []).filter((t) => now - t < 60000);
        relayTimes.set(kind, times);
        return [cell(kind), cell(counters['relayed.' + kind] || 0, 'num'), cell(times.length, 'num')];
      }));
    } else if (role === 'maker' || role === 'taker') {
      $('orderbook-section').hidden = false;
      const book = await getJson('/v1/orderbook');
      $('orderbook-count').textContent = '(' + book.offers.length + ' offers)';
      fill('orderbook', book.offers.map((o) => [cell(o.nick), cell(o.type), cell(o.oid, 'num'), cell(o.minsize, 'num'), cell(o.maxsize, 'num'), cell(o.txfee, 'num'), cell(fee(o), 'num')]));
    }
  }

  function soon() {
    if (pending === undefined) pending = setTimeout(() => { refresh().catch(show); }, 200);
  }
  function show(err) {
    $('summary').textContent = 'cannot read the node: ' + err.message;
  }

  const events = new EventSource('/v1/events');
  events.onopen = () => { $('live').textContent = 'events: live'; };
  events.onerror = () => { $('live').textContent = 'events: reconnecting'; };
  for (const name of ['privmsg', 'pubmsg', 'nickLeave', 'directory', 'peer', 'peerlist']) {
    events.addEventListener(name, soon);
  }
  events.addEventListener('relay', (event) => {
    const kind = JSON.parse(event.data).kind;
    const times = relayTimes.get(kind) || [];
    times.push(Date.now());
    relayTimes.set(kind, times);
    soon();
  });
  refresh().catch(show);
  setInterval(soon, 5000);
})();
`;
