// Shoal's web UI: the cluster as the agent serving this page sees it.
// It reads only the agent's public HTTP API, same-origin: a blocking query
// on the catalog wakes it on any change, a service's page also follows the
// service's Server-Sent Events stream. No build step, no dependencies.
'use strict';

(() => {
  window.shoalStartedAt = performance.now(); // for the tests' timings
  const $ = (sel, root = document) => root.querySelector(sel);
  const RANK = { passing: 0, warning: 1, critical: 2 };
  const TOKEN_KEY = 'shoal-token';
  const FEED_MAX = 100;

  // What this page knows, refreshed on every change of the catalog.
  const S = {
    self: '', // this agent's node name
    services: {}, // name -> tags, as catalog/services answers
    inst: new Map(), // service name -> {entries, at, index}: at is when it was read
    members: [], // agent/members, with at
    membersAt: 0,
    membersIndex: 0,
    nodeMeta: new Map(), // node -> Meta, from catalog/nodes
    conv: null, // the last shoal/convergence answer
    convErr: '',
    convAt: 0,
    originMoved: new Map(), // origin -> {known, at}: when its version last moved here
    // When an answer last said the agents disagree (0: not seen), and
    // since when this tab has asked; kept over reloads of the tab.
    lastDisagree: Number(sessionStorage.getItem('shoal-last-disagree')) || 0,
    watchStart: Number(sessionStorage.getItem('shoal-watch-start')) || Date.now(),
    coords: [],
    coordsErr: '',
    loaded: false, // the services in view have been read
    complete: false, // every service has been read once
  };

  // ---- the API ----

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }

  class APIError extends Error {
    constructor(status, msg) { super(msg); this.status = status; }
  }

  async function api(path, opts = {}) {
    const headers = {};
    const t = token();
    if (t) headers['X-Consul-Token'] = t;
    const r = await fetch('/v1/' + path, { method: opts.method || 'GET', headers, signal: opts.signal, cache: 'no-store' });
    if (!r.ok) {
      const text = (await r.text()).trim();
      throw new APIError(r.status, `${r.status}: ${text || r.statusText}`);
    }
    const index = Number(r.headers.get('X-Consul-Index')) || 0;
    if (opts.method && opts.method !== 'GET') return { index };
    // Reads say whether the agent is in self-preservation: serving the
    // instances of members that failed at once from its last copy.
    $('#preserve').hidden = r.headers.get('X-Shoal-Self-Preservation') !== 'true';
    return { body: await r.json(), index };
  }

  const enc = encodeURIComponent;
  const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

  // Runs fn over items, at most n at a time: the browser keeps few
  // connections to one origin, and two are held by the watches.
  async function pool(items, n, fn) {
    let i = 0;
    const work = async () => { while (i < items.length) { const it = items[i++]; await fn(it); } };
    await Promise.all(Array.from({ length: Math.min(n, items.length) }, work));
  }

  // ---- formatting ----

  function esc(s) {
    return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  }

  function fmtAge(ms) {
    if (ms < 1000) return `${Math.round(ms)} ms`;
    if (ms < 60e3) return `${(ms / 1000).toFixed(1)} s`;
    if (ms < 3600e3) return `${Math.floor(ms / 60e3)} min ${Math.floor(ms / 1000) % 60} s`;
    return `${Math.floor(ms / 3600e3)} h ${Math.floor(ms / 60e3) % 60} min`;
  }

  function ageClass(ms) { return ms < 3000 ? 'fresh' : ms < 15000 ? 'aging' : 'stale'; }

  // ages holds, per key (an instance or a member), the agent's
  // ShoalLastHeardMs and when it was read. The page counts them up every
  // second; keeping them out of the HTML keeps a row's HTML the same while
  // only its age moved, so the row is not redrawn.
  const ages = new Map();

  function ageSpan(key, heard, at) {
    if (heard == null) return '<span class="age" title="not heard from yet">—</span>';
    ages.set(key, { heard, at });
    return `<span class="age" data-age="${esc(key)}" title="how old this agent's copy is"></span>`;
  }

  function tickAges() {
    const now = Date.now();
    for (const el of document.querySelectorAll('[data-age]')) {
      const a = ages.get(el.dataset.age);
      if (!a) continue;
      const ms = a.heard + (now - a.at);
      el.textContent = fmtAge(ms);
      el.className = `age ${ageClass(ms)}`;
    }
    const since = $('#since');
    if (since) since.textContent = sinceText();
  }

  function chips(list) { return (list || []).map((t) => `<span class="chip">${esc(t)}</span>`).join(''); }

  function metaText(m) { return Object.entries(m || {}).map(([k, v]) => `${k}=${v}`).join(' '); }

  function stateSpan(s, label) { return `<span class="state ${esc(s)}">${esc(label || s)}</span>`; }

  function clock(d) { return d.toLocaleTimeString([], { hour12: false }); }

  // ---- the model ----

  function worst(checks) {
    let w = 'passing';
    for (const c of checks || []) if ((RANK[c.Status] ?? 2) > RANK[w]) w = RANK[c.Status] === undefined ? 'critical' : c.Status;
    return w;
  }

  function inMaintenance(e) {
    return (e.Checks || []).some((c) => c.CheckID === '_node_maintenance' || c.CheckID === `_service_maintenance:${e.Service.ID}`);
  }

  const instKey = (e) => `${e.Node.Node}/${e.Service.ID}`;

  // The status of a member as this page shows it: agent/members says
  // alive, failed or left; the convergence view refines alive to suspect.
  function memberStatus(m) {
    const st = { 1: 'alive', 2: 'leaving', 3: 'left', 4: 'failed' }[m.Status] || 'none';
    if (st === 'alive' && S.conv) {
      const d = (S.conv.Members || []).find((x) => x.Node === m.Name);
      if (d && d.Status === 'suspect') return 'suspect';
    }
    return st;
  }

  // ---- the feed of changes ----

  // event adds a line to the feed; tone colours it (the state a check
  // moved to, say), kind is what happened.
  function event(kind, text, tone = kind) {
    // The first full read is the start, not a change.
    if (!S.complete) return;
    const ol = $('#feed');
    const li = document.createElement('li');
    li.dataset.kind = kind;
    li.innerHTML = `<time>${clock(new Date())}</time><span class="kind ${esc(tone)}">${esc(kind)}</span> ${esc(text)}`;
    ol.prepend(li);
    while (ol.children.length > FEED_MAX) ol.lastChild.remove();
  }

  // applyService takes a service's new instance set, read at the
  // service's index. An answer older than the one held (two reads
  // crossed) is dropped.
  function applyService(name, entries, at, index) {
    const prev = S.inst.get(name);
    if (prev && index < prev.index) return;
    if (entries.length === 0) S.inst.delete(name);
    else S.inst.set(name, { entries, at, index });
  }

  // reported holds each service's instances as the feed last told them.
  // The feed is told by the catalog-wide reads only (report, below),
  // which read the members with the services: a stream event may come
  // before this page knows that a node failed, and would tell its
  // hidden instances as deregistered.
  const reported = new Map();
  const reportedIndex = new Map(); // service name -> the index of the read told

  // report tells the feed what changed in a service since the last read.
  // With checksOnly (a stream event, which may come before the page knows
  // that a node failed) it tells only the checks of instances it already
  // knows, and leaves instances that came or went to the next read.
  function report(name, entries, index, checksOnly) {
    // A read older than the one told (a stream event and a read crossed)
    // would tell changes backwards.
    if (index < (reportedIndex.get(name) || 0)) return;
    reportedIndex.set(name, index);
    const base = reported.get(name) || [];
    const before = new Map(base.map((e) => [instKey(e), e]));
    const after = new Map(entries.map((e) => [instKey(e), e]));
    if (checksOnly) {
      if (base.length) reported.set(name, base.map((e) => after.get(instKey(e)) || e));
    } else if (entries.length) {
      reported.set(name, entries);
    } else {
      reported.delete(name);
      reportedIndex.delete(name);
    }
    if (!S.loaded) return;
    const added = [];
    for (const [k, e] of after) {
      const p = before.get(k);
      if (!p) { added.push(e); continue; }
      const pc = new Map((p.Checks || []).filter((c) => c.ServiceID).map((c) => [c.CheckID, c.Status]));
      const what = `${name} (${e.Service.ID}) on ${e.Node.Node}`;
      for (const c of e.Checks || []) {
        // A node's checks show on each of its instances: they are told
        // once per node (applyNodeChecks), not per instance.
        if (!c.ServiceID) continue;
        const was = pc.get(c.CheckID);
        pc.delete(c.CheckID);
        if (!was && c.CheckID.startsWith('_service_maintenance:')) event('maintenance', `on for ${what}`, 'warning');
        else if (!was) event('check', `${c.Name || c.CheckID} added to ${what}: ${c.Status}`, c.Status);
        else if (was !== c.Status) event('check', `${c.Name || c.CheckID} of ${what}: ${was} → ${c.Status}`, c.Status);
      }
      for (const id of pc.keys()) {
        if (id.startsWith('_service_maintenance:')) event('maintenance', `off for ${what}`, 'passing');
        else event('check', `${id} removed from ${what}`, 'left');
      }
    }
    if (checksOnly) return;
    const gone = [];
    for (const [k, e] of before) {
      if (after.has(k)) continue;
      // The instances of a node that failed or left are hidden, not
      // deregistered: the node's event says so, once.
      if (down(e.Node.Node)) hidden.set(e.Node.Node, (hidden.get(e.Node.Node) || 0) + 1);
      else gone.push(e);
    }
    tell('registered', name, added);
    tell('deregistered', name, gone);
  }

  // applyNodeChecks tells the feed of changes of the nodes' own checks
  // (maintenance, say), read off their instances; serfHealth is told as
  // the member's state.
  let nodeChecks = null; // node/checkID -> status
  function applyNodeChecks() {
    const now = new Map();
    for (const [, v] of S.inst) {
      for (const e of v.entries) {
        for (const c of e.Checks || []) if (!c.ServiceID && c.CheckID !== 'serfHealth') now.set(`${e.Node.Node}/${c.CheckID}`, c);
      }
    }
    if (nodeChecks) {
      for (const [k, c] of now) {
        const was = nodeChecks.get(k);
        const maint = c.CheckID === '_node_maintenance';
        if (!was) event(maint ? 'maintenance' : 'check', maint ? `on for the node ${c.Node}` : `${c.Name || c.CheckID} added to ${c.Node}: ${c.Status}`, maint ? 'warning' : c.Status);
        else if (was.Status !== c.Status) event('check', `${c.Name || c.CheckID} of ${c.Node}: ${was.Status} → ${c.Status}`, c.Status);
      }
      for (const [k, c] of nodeChecks) {
        // A node with no instance left shows no checks: not a change.
        if (now.has(k) || !instancesOn(c.Node)) continue;
        if (c.CheckID === '_node_maintenance') event('maintenance', `off for the node ${c.Node}`, 'passing');
      }
    }
    nodeChecks = now;
  }

  function instancesOn(node) {
    for (const [, v] of S.inst) if (v.entries.some((e) => e.Node.Node === node)) return true;
    return false;
  }

  // tell adds instances that came or went to the feed: one line each, or
  // one for many (a deploy, a node back), so that the feed stays legible.
  function tell(kind, name, list) {
    if (list.length <= 3) {
      for (const e of list) event(kind, `${name} (${e.Service.ID}) on ${e.Node.Node}`);
      return;
    }
    const nodes = [...new Set(list.map((e) => e.Node.Node))].sort();
    event(kind, `${list.length} instances of ${name} on ${nodes.length > 3 ? `${nodes.length} nodes` : nodes.join(', ')}`);
  }

  // hidden counts, per node, the instances hidden since the last flush.
  const hidden = new Map();

  function flushHidden() {
    for (const [node, n] of hidden) event('hidden', `${n} instance${n === 1 ? '' : 's'} of ${node} no longer served`, 'left');
    hidden.clear();
  }

  function down(node) {
    const m = S.members.find((x) => x.Name === node);
    return m && (m.Status === 3 || m.Status === 4);
  }

  function applyMembers(members, at, index) {
    if (index < S.membersIndex) return;
    S.membersIndex = index;
    if (S.loaded) {
      const before = new Map(S.members.map((m) => [m.Name, m.Status]));
      for (const m of members) {
        const was = before.get(m.Name);
        const now = m.Status;
        if (was === now) continue;
        if (now === 1) event('joined', was === 4 ? `${m.Name} is alive again` : `${m.Name} joined`);
        else if (now === 4) event('failed', `${m.Name} failed`);
        else if (now === 3) event('left', `${m.Name} left`);
      }
    }
    S.members = members;
    S.membersAt = at;
  }

  // ---- reading the catalog ----
  //
  // A change anywhere moves the catalog's index, but nothing says which
  // services it touched, and the API answers one service at a time. So a
  // read goes in two steps. First, from one read of the names and tags
  // and one of every check (health/state/any), it finds the services that
  // changed: a name new or gone, other tags, a check of theirs that moved
  // (its ModifyIndex), or a check of a node they run on. It reads those,
  // and the page shows them. Then it sweeps every service, a chunk at a
  // time, for what no check shows (an instance without checks, another
  // port); a newer change interrupts the sweep, and the next read goes on
  // where it stopped.

  const sigs = { checks: new Map(), nodes: new Map(), tags: new Map() }; // what the last read saw
  let sweep = []; // the names left to read in this sweep

  // signatures sums up every check by service and by node: when it moved
  // (ModifyIndex) and its state.
  function signatures(checks) {
    const svc = new Map();
    const node = new Map();
    for (const c of checks) {
      const m = c.ServiceID ? svc : node;
      const k = c.ServiceID ? c.ServiceName : c.Node;
      if (!m.has(k)) m.set(k, []);
      m.get(k).push(`${c.Node}/${c.ServiceID}/${c.CheckID}=${c.Status}@${c.ModifyIndex}`);
    }
    for (const m of [svc, node]) for (const [k, v] of m) m.set(k, v.sort().join(';'));
    return { svc, node };
  }

  function forgetSignatures() {
    for (const m of Object.values(sigs)) m.clear();
    sweep = [];
  }

  // readServices reads the named services (four or five at a time), then
  // the members, and applies both. It stops early if aborted says so, and
  // returns the names it read.
  async function readServices(names, aborted) {
    const at = Date.now();
    const fetched = new Map();
    // Six connections to the origin: the watch of the catalog holds one,
    // a service's stream one.
    await pool(names, S.loaded ? 4 : 5, async (name) => {
      if (aborted()) return;
      try {
        fetched.set(name, await api(`health/service/${enc(name)}`));
      } catch (e) {
        if (e.status !== 403 && e.status !== 404) throw e;
        fetched.set(name, null);
      }
    });
    // The members after the services: an instance gone because its node
    // failed is then told as hidden with the node, never as deregistered.
    const members = await api('agent/members');
    applyMembers(members.body || [], at, members.index);
    for (const [name, r] of fetched) {
      if (!r) continue;
      applyService(name, r.body || [], at, r.index);
      report(name, r.body || [], r.index);
    }
    applyNodeChecks();
    flushHidden();
    return fetched;
  }

  // refresh brings the page up to the catalog as it is now; shown is
  // called once what changed is on the page, before the sweep.
  async function refresh(aborted, shown) {
    const [svcs, nodes, checks] = await Promise.all([api('catalog/services'), api('catalog/nodes'), api('health/state/any')]);
    S.services = svcs.body || {};
    S.nodeMeta = new Map((nodes.body || []).map((n) => [n.Node, n.Meta || {}]));
    const names = Object.keys(S.services);
    const sig = signatures(checks.body || []);
    // At first, the services in view come first (the list is sorted by
    // name, and a service's page shows one), the others with the sweep.
    const first = S.loaded ? null : new Set([...names].sort((x, y) => x.localeCompare(y)).slice(0, 60));
    if (first && route().page === 'service') first.add(route().a);
    const dirty = new Set();
    for (const name of names) {
      const tags = JSON.stringify(S.services[name] || []);
      if (first ? first.has(name) : !S.inst.has(name) || sigs.tags.get(name) !== tags || sigs.checks.get(name) !== sig.svc.get(name)) dirty.add(name);
      sigs.tags.set(name, tags);
    }
    const nodesMoved = new Set();
    for (const n of new Set([...sigs.nodes.keys(), ...sig.node.keys()])) if (sigs.nodes.get(n) !== sig.node.get(n)) nodesMoved.add(n);
    if (nodesMoved.size) {
      for (const [name, v] of S.inst) if (v.entries.some((e) => nodesMoved.has(e.Node.Node))) dirty.add(name);
    }
    sigs.checks = sig.svc;
    sigs.nodes = sig.node;
    for (const name of [...sigs.tags.keys()]) if (!(name in S.services)) sigs.tags.delete(name);
    await readServices([...dirty].filter((n) => n in S.services), () => false);
    for (const name of [...S.inst.keys()]) if (!(name in S.services)) applyService(name, [], Date.now(), svcs.index);
    for (const name of [...reported.keys()]) if (!(name in S.services)) report(name, [], svcs.index);
    flushHidden();
    if (!S.loaded) {
      S.loaded = true;
      window.shoalLoadedAt = performance.now();
    }
    shown();
    // Every name not read just now is swept again: first those the last
    // sweep had not reached, so that under steady changes every name is
    // still read in turn.
    const queued = new Set(sweep);
    sweep = [...sweep.filter((n) => n in S.services && !dirty.has(n)), ...names.filter((n) => !queued.has(n) && !dirty.has(n))];
    while (sweep.length && !aborted()) {
      const chunk = sweep.splice(0, 25);
      const got = await readServices(chunk, aborted);
      sweep.unshift(...chunk.filter((n) => !got.has(n)));
      render();
    }
    if (!sweep.length && !S.complete) {
      S.complete = true;
      render();
    }
  }

  async function whoAmI() {
    try {
      S.self = (await api('agent/self')).body.Config.NodeName;
    } catch {
      // Without agent:read, the member this agent heard from 0 ms ago is
      // itself.
      try {
        const m = (await api('agent/members')).body.find((x) => x.ShoalLastHeardMs === 0);
        if (m) S.self = m.Name;
      } catch { /* shown as unknown */ }
    }
    $('#agent').textContent = S.self ? `agent ${S.self}` : 'agent ?';
  }

  function setLive(ok, why) {
    const el = $('#live');
    el.className = `live ${ok ? 'on' : 'off'}`;
    el.textContent = ok ? 'live' : `reconnecting (${why})`;
  }

  // The watch: a blocking query on the catalog's index, which moves on
  // every change anywhere in the cluster that this agent serves. Each
  // move asks for a read (kick); reads run one at a time, and a newer
  // move cuts the sweep of the read before it short.
  let generation = 0; // bumped when the token changes: the old loops end
  let wanted = 0; // the catalog index the page should show
  let shown = -1; // the index of the last read whose changes are shown
  let reading = false;

  function kick(index) {
    wanted = index;
    if (!reading) read();
  }

  async function read() {
    reading = true;
    const gen = generation;
    try {
      while (gen === generation && shown !== wanted) {
        const target = wanted;
        const began = Date.now();
        try {
          await refresh(() => wanted !== target || gen !== generation, () => {
            if (gen !== generation) return;
            shown = target;
            render();
            pollConvergence();
          });
        } catch (e) {
          if (gen !== generation) break;
          forgetSignatures();
          setLive(false, e.status ? e.message.slice(0, 80) : 'agent unreachable');
          await sleep(1000);
          continue;
        }
        // Under a stream of changes, read at most about four times a
        // second.
        await sleep(250 - (Date.now() - began));
      }
    } finally {
      reading = false;
    }
    if (shown !== wanted) read(); // a newer watch asked meanwhile
  }

  async function watch() {
    const gen = ++generation;
    S.loaded = false;
    S.complete = false;
    shown = -1;
    forgetSignatures();
    let index = 0;
    while (gen === generation) {
      try {
        const r = await api(`catalog/services?index=${index}&wait=30s`);
        if (gen !== generation) return;
        setLive(true);
        if (r.index < index) forgetIndexes();
        if (r.index !== index) {
          index = r.index;
          kick(index);
          await sleep(100); // a burst of changes is one read, not one each
        }
      } catch (e) {
        if (gen !== generation) return;
        setLive(false, e.status ? e.message.slice(0, 80) : 'agent unreachable');
        index = 0;
        shown = -1; // read again once back, whatever the index then
        forgetIndexes();
        await sleep(1000);
      }
    }
  }

  // freshen re-reads what the page shows of last-heard ages. They move
  // all the time without moving any index (so neither the watch nor the
  // stream sends them): without it an age would only grow on the page
  // while the agent hears from the node every second.
  async function freshen() {
    const r = route();
    if (!S.loaded) return;
    try {
      if (r.page === 'service' && r.a) {
        const at = Date.now();
        const h = await api(`health/service/${enc(r.a)}`);
        applyService(r.a, h.body || [], at, h.index);
      } else if (r.page === 'nodes' || r.page === 'node') {
        const at = Date.now();
        const m = await api('agent/members');
        applyMembers(m.body || [], at, m.index);
      } else {
        return;
      }
    } catch {
      return; // the watch says when the agent is unreachable
    }
    if (route().page === r.page && route().a === r.a) render();
  }

  // forgetIndexes lets any answer in: the agent may have restarted, and
  // its indexes started again from 1.
  function forgetIndexes() {
    for (const v of S.inst.values()) v.index = 0;
    S.membersIndex = 0;
    reportedIndex.clear();
  }

  // ---- convergence and coordinates ----

  let convBusy = false;

  async function pollConvergence() {
    if (convBusy) return;
    convBusy = true;
    try {
      const c = (await api('shoal/convergence')).body;
      const now = Date.now();
      for (const o of c.Origins || []) {
        const m = S.originMoved.get(o.Origin);
        if (!m || m.known !== o.Known || m.epoch !== o.Epoch) S.originMoved.set(o.Origin, { known: o.Known, epoch: o.Epoch, at: m ? now : 0 });
      }
      if (!c.Converged) {
        S.lastDisagree = now;
        sessionStorage.setItem('shoal-last-disagree', String(now));
      }
      S.conv = c;
      S.convErr = '';
    } catch (e) {
      S.convErr = e.message;
    } finally {
      S.convAt = Date.now();
      convBusy = false;
    }
    badge();
    if (route().page === 'agreement') render();
  }

  function badge() {
    const b = $('#agree-badge');
    if (!S.conv || S.convErr) { b.textContent = ''; b.className = 'badge'; return; }
    b.textContent = S.conv.Converged ? '✓' : '✗';
    b.title = S.conv.Converged ? 'every agent serves the same catalog' : 'agents disagree';
    b.className = `badge ${S.conv.Converged ? 'ok' : 'bad'}`;
  }

  async function pollCoords() {
    try {
      S.coords = (await api('coordinate/nodes')).body || [];
      S.coordsErr = '';
    } catch (e) {
      S.coordsErr = e.message;
    }
    if (route().page === 'map') render();
  }

  // ---- routing ----

  function route() {
    const parts = location.hash.replace(/^#\/?/, '').split('/').map((p) => { try { return decodeURIComponent(p); } catch { return p; } });
    const page = parts[0] || 'services';
    return { page, a: parts[1] || '', b: parts[2] || '', c: parts[3] || '' };
  }

  let lastPage = '';
  let watchSrc = null; // the EventSource of the service shown, if any
  let watchName = '';

  function onRoute() {
    const r = route();
    for (const a of document.querySelectorAll('[data-nav]')) {
      const cur = a.dataset.nav === r.page || (a.dataset.nav === 'services' && r.page === 'service') || (a.dataset.nav === 'nodes' && r.page === 'node');
      if (cur) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
    followService(r.page === 'service' ? r.a : '');
    const key = `${r.page}/${r.a}`;
    const moved = key !== lastPage;
    lastPage = key;
    if (moved) lists.clear();
    render(moved);
    if (moved) {
      if (r.page === 'agreement') pollConvergence();
      if (r.page === 'map') pollCoords();
    }
  }

  // followService keeps an SSE stream on the service shown: its changes
  // reach the page as soon as the agent has them, without waiting for the
  // catalog-wide refresh.
  function followService(name) {
    if (name === watchName) return;
    if (watchSrc) watchSrc.close();
    watchSrc = null;
    watchName = name;
    if (!name) return;
    const t = token();
    watchSrc = new EventSource(`/v1/shoal/watch/service/${enc(name)}${t ? `?token=${enc(t)}` : ''}`);
    watchSrc.addEventListener('instances', (ev) => {
      try {
        const entries = JSON.parse(ev.data) || [];
        const prev = S.inst.get(name);
        const index = Number(ev.lastEventId) || 0;
        applyService(name, entries, Date.now(), index);
        // A check that flips and flips back before the next catalog-wide
        // read is told too, on the page of its service.
        if (!prev || index >= prev.index) report(name, entries, index, true);
      } catch { return; }
      if (route().page === 'service' && route().a === name) render();
    });
  }

  // ---- virtual lists: only the rows in view are in the document ----

  const lists = new Map(); // id -> VList, for the page shown

  class VList {
    constructor(el, rowHTML) {
      this.el = el;
      this.rowHTML = rowHTML;
      this.items = [];
      this.range = [-1, -1];
      this.spacer = document.createElement('div');
      this.spacer.className = 'spacer';
      el.append(this.spacer);
      this.h = parseFloat(getComputedStyle(el).getPropertyValue('--row-h')) || 58;
      el.addEventListener('scroll', () => this.draw(false), { passive: true });
      el.addEventListener('keydown', (ev) => this.key(ev));
      new ResizeObserver(() => this.draw(false)).observe(el);
    }

    set(items) {
      this.items = items;
      this.spacer.style.height = `${items.length * this.h}px`;
      this.draw(true);
    }

    draw(force) {
      const n = this.items.length;
      const top = this.el.scrollTop;
      const first = Math.max(0, Math.floor(top / this.h) - 4);
      const last = Math.min(n, Math.ceil((top + (this.el.clientHeight || 600)) / this.h) + 4);
      if (!force && first === this.range[0] && last === this.range[1]) return;
      this.range = [first, last];
      const focused = document.activeElement && this.spacer.contains(document.activeElement) ? document.activeElement.dataset.i : null;
      if (!n) {
        this.rows = new Map();
        this.spacer.innerHTML = '<div class="empty">Nothing to show.</div>';
        return;
      }
      // A row whose HTML is the same keeps its element: an update
      // touches only what changed, and a click or focus is never lost.
      const old = this.rows || new Map();
      const rows = new Map();
      const tpl = document.createElement('template');
      for (let i = first; i < last; i++) {
        const html = this.rowHTML(this.items[i], i);
        const prev = old.get(i);
        if (prev && prev.html === html) {
          rows.set(i, prev);
          old.delete(i);
          continue;
        }
        tpl.innerHTML = html;
        const el = tpl.content.firstElementChild;
        el.style.transform = `translateY(${i * this.h}px)`;
        rows.set(i, { html, el });
      }
      for (const { el } of old.values()) el.remove();
      const empty = this.spacer.querySelector('.empty');
      if (empty) empty.remove();
      for (const [, r] of rows) if (r.el.parentNode !== this.spacer) this.spacer.append(r.el);
      this.rows = rows;
      tickAges(); // rows scrolled into view show their ages at once
      if (focused !== null && !this.spacer.contains(document.activeElement)) {
        const again = rows.get(Number(focused));
        if (again) again.el.focus({ preventScroll: true });
      }
    }

    // Arrow keys, Page keys, Home and End move between rows, including
    // rows not yet in the document.
    key(ev) {
      const cur = document.activeElement;
      if (!cur || cur.dataset.i === undefined) return;
      const i = Number(cur.dataset.i);
      const page = Math.max(1, Math.floor(this.el.clientHeight / this.h) - 1);
      const to = { ArrowDown: i + 1, ArrowUp: i - 1, PageDown: i + page, PageUp: i - page, Home: 0, End: this.items.length - 1 }[ev.key];
      if (to === undefined) return;
      ev.preventDefault();
      this.focusRow(Math.max(0, Math.min(this.items.length - 1, to)));
    }

    // reveal scrolls row i into view.
    reveal(i) {
      const y = i * this.h;
      if (y < this.el.scrollTop) this.el.scrollTop = y;
      else if (y + this.h > this.el.scrollTop + this.el.clientHeight) this.el.scrollTop = y + this.h - this.el.clientHeight;
      this.draw(true);
    }

    focusRow(i) {
      this.reveal(i);
      const row = this.spacer.querySelector(`[data-i="${i}"]`);
      if (row) row.focus({ preventScroll: true });
    }
  }

  // list returns the page's virtual list in el (made on first use).
  function list(id, rowHTML) {
    let l = lists.get(id);
    const el = document.getElementById(id);
    if (!l || l.el !== el) {
      l = new VList(el, rowHTML);
      lists.set(id, l);
    }
    l.rowHTML = rowHTML;
    return l;
  }

  // ---- pages ----

  // setHTML replaces an element's content only when it changed, so that
  // an update does not take the focus from a button the user is on.
  const drawn = new WeakMap();
  function setHTML(el, html) {
    if (drawn.get(el) === html) return;
    el.innerHTML = html;
    drawn.set(el, html);
  }

  const main = $('#main');
  const searches = new Map(); // page -> the text in its search box

  // shell renders a page's frame once (header, search box, list) and
  // leaves it alone on updates, so focus and typing are never lost.
  function shell(key, html, setup) {
    if (main.dataset.shell === key) return false;
    main.dataset.shell = key;
    main.innerHTML = html;
    if (setup) setup();
    return true;
  }

  function searchBox(page, label, placeholder) {
    return `<label class="grow"><span class="sub">${esc(label)}</span>
      <input type="search" id="search" data-page="${esc(page)}" placeholder="${esc(placeholder)}" value="${esc(searches.get(page) || '')}" autocomplete="off" spellcheck="false"></label>`;
  }

  function wireSearch() {
    const s = $('#search');
    if (!s) return;
    s.addEventListener('input', () => { searches.set(s.dataset.page, s.value); render(); });
  }

  // matches: every word of the search occurs in hay.
  function matcher(page) {
    const words = (searches.get(page) || '').toLowerCase().split(/\s+/).filter(Boolean);
    return (hay) => words.every((w) => hay.includes(w));
  }

  function render(moved) {
    const r = route();
    main.setAttribute('aria-busy', String(!S.loaded));
    if (!S.loaded) {
      shell('loading', '<p class="sub">Loading…</p>');
      return;
    }
    const pages = { services: pageServices, service: pageService, nodes: pageNodes, node: pageNode, agreement: pageAgreement, map: pageMap };
    (pages[r.page] || pageServices)(r);
    tickAges();
    main.dataset.ready = r.page;
    // When the page first showed every service, for the tests.
    if (S.complete && !window.shoalRenderedAt) window.shoalRenderedAt = performance.now();
    if (moved && document.activeElement === document.body) main.focus({ preventScroll: true });
  }

  // Services: every service, its instances by state, tags; searchable by
  // name, tag, node and meta.
  function serviceSummaries() {
    const out = [];
    for (const [name, tags] of Object.entries(S.services)) {
      const entries = S.inst.get(name)?.entries || [];
      const c = { passing: 0, warning: 0, critical: 0 };
      const nodes = new Set();
      let hay = `${name} ${(tags || []).join(' ')}`;
      for (const e of entries) {
        c[worst(e.Checks)]++;
        nodes.add(e.Node.Node);
        hay += ` ${e.Node.Node} ${e.Service.ID} ${metaText(e.Service.Meta)}`;
      }
      out.push({ name, tags, c, total: entries.length, nodes: nodes.size, hay: hay.toLowerCase() });
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  function countsHTML(c) {
    return ['passing', 'warning', 'critical'].map((s) => `<span class="n ${s}${c[s] ? '' : ' zero'}" title="${c[s]} ${s}" data-count="${s}">${c[s]}</span>`).join('');
  }

  function pageServices() {
    shell('services', `
      <div class="bar"><h1>Services</h1><span class="sub" id="svc-sum"></span></div>
      <div class="bar">${searchBox('services', 'Search name, tag, node, meta', 'e.g. web v2 node-1 version=1.2')}</div>
      <div class="vlist" id="svc-list" aria-label="Services"></div>`, wireSearch);
    const match = matcher('services');
    const all = serviceSummaries();
    const shown = all.filter((s) => match(s.hay));
    const total = all.reduce((n, s) => n + s.total, 0);
    $('#svc-sum').textContent = `${shown.length} of ${all.length} services · ${total} instances`;
    $('#svc-list').dataset.instances = String(total);
    list('svc-list', (s, i) => `<a class="row svc" href="#/service/${enc(s.name)}" data-i="${i}" data-svc="${esc(s.name)}">
        <span class="name">${esc(s.name)}</span>
        <span class="counts" aria-label="${s.c.passing} passing, ${s.c.warning} warning, ${s.c.critical} critical" data-counts="${s.c.passing} ${s.c.warning} ${s.c.critical}">${countsHTML(s.c)}</span>
        <span class="nodes sub">${s.total} on ${s.nodes} node${s.nodes === 1 ? '' : 's'}</span>
        <span class="tags">${chips(s.tags)}</span></a>`).set(shown);
  }

  function checksSummary(e) {
    const bad = (e.Checks || []).filter((c) => c.Status !== 'passing');
    if (!bad.length) return (e.Checks || []).length === 1 ? '1 check passing' : `${(e.Checks || []).length} checks passing`;
    return bad.map((c) => `${c.Name || c.CheckID}: ${c.Status}${c.Output ? ` (${c.Output})` : ''}`).join('; ');
  }

  // A service: its instances, and the one selected in detail.
  function pageService(r) {
    const name = r.a;
    shell(`service/${name}`, `
      <div class="bar"><a href="#/services">Services</a> <span class="sub">/</span> <h1>${esc(name)}</h1><span class="sub" id="inst-sum"></span></div>
      <section id="detail" class="panel" hidden aria-live="polite"></section>
      <div class="bar">${searchBox(`service/${name}`, 'Filter instances by ID, node, address, tag, meta', 'e.g. node-2 v1')}</div>
      <div class="vlist" id="inst-list" aria-label="Instances of ${esc(name)}"></div>`, wireSearch);
    const cur = S.inst.get(name);
    const entries = cur ? [...cur.entries].sort((a, b) => a.Service.ID.localeCompare(b.Service.ID) || a.Node.Node.localeCompare(b.Node.Node)) : [];
    const at = cur ? cur.at : Date.now();
    const match = matcher(`service/${name}`);
    const shown = entries.filter((e) => match(`${e.Service.ID} ${e.Node.Node} ${e.Service.Address || e.Node.Address}:${e.Service.Port} ${(e.Service.Tags || []).join(' ')} ${metaText(e.Service.Meta)}`.toLowerCase()));
    const c = { passing: 0, warning: 0, critical: 0 };
    for (const e of entries) c[worst(e.Checks)]++;
    $('#inst-sum').innerHTML = entries.length ? `<span class="counts">${countsHTML(c)}</span> ${entries.length} instance${entries.length === 1 ? '' : 's'}` : 'no instances';
    const selKey = r.b ? `${r.b}/${r.c}` : '';
    const l = list('inst-list', (e, i) => {
      const st = worst(e.Checks);
      const maint = inMaintenance(e);
      const key = instKey(e);
      return `<a class="row inst${key === selKey ? ' sel' : ''}" href="#/service/${enc(name)}/${enc(e.Node.Node)}/${enc(e.Service.ID)}" data-i="${i}" data-inst="${esc(key)}" data-state="${st}">
        <span>${stateSpan(maint ? 'maint' : st, maint ? 'maintenance' : st)}</span>
        <span class="name">${esc(e.Service.ID)}</span>
        <span class="addr mono">${esc(e.Service.Address || e.Node.Address)}:${e.Service.Port}</span>
        <span class="nodec">${esc(e.Node.Node)}</span>
        ${ageSpan(`i:${key}`, e.ShoalLastHeardMs, at)}
        <span class="line2">${chips(e.Service.Tags)} ${esc(metaText(e.Service.Meta))} · ${esc(checksSummary(e))}</span></a>`;
    });
    const d = $('#detail');
    const sel = selKey && entries.find((e) => instKey(e) === selKey);
    d.hidden = !sel;
    // Redrawn only when it changed: a focused button must stay focused.
    if (sel) setHTML(d, instanceDetail(sel, at));
    l.set(shown);
    // A newly selected instance stays in view, though the details above
    // the list took room from it.
    if (selKey !== l.shownSel) {
      l.shownSel = selKey;
      const i = shown.indexOf(sel);
      if (i >= 0) l.reveal(i);
    }
  }

  function checksHTML(checks) {
    return `<ul class="checks">${(checks || []).map((c) => `<li data-check="${esc(c.CheckID)}" data-status="${esc(c.Status)}">${stateSpan(c.Status)} <strong>${esc(c.Name || c.CheckID)}</strong>
      <span class="sub mono">${esc(c.CheckID)}${c.Type ? ` · ${esc(c.Type)}` : ''}${c.ServiceID ? '' : ' · node check'}</span>
      ${c.Output ? `<pre>${esc(c.Output)}</pre>` : ''}${c.Notes ? `<div class="sub">${esc(c.Notes)}</div>` : ''}</li>`).join('')}</ul>`;
  }

  function kvHTML(m) {
    const e = Object.entries(m || {});
    if (!e.length) return '<span class="sub">none</span>';
    return `<dl class="kv">${e.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('')}</dl>`;
  }

  function instanceDetail(e, at) {
    const local = e.Node.Node === S.self;
    const maint = (e.Checks || []).some((c) => c.CheckID === `_service_maintenance:${e.Service.ID}`);
    const id = esc(e.Service.ID);
    return `<h2>${id} <span class="sub">on <a href="#/node/${enc(e.Node.Node)}">${esc(e.Node.Node)}</a></span></h2>
      <dl class="kv">
        <dt>Address</dt><dd class="mono">${esc(e.Service.Address || e.Node.Address)}:${e.Service.Port}</dd>
        <dt>Tags</dt><dd>${chips(e.Service.Tags) || '<span class="sub">none</span>'}</dd>
        <dt>Meta</dt><dd>${kvHTML(e.Service.Meta)}</dd>
        <dt>Copy's age</dt><dd>${ageSpan(`i:${instKey(e)}`, e.ShoalLastHeardMs, at)} <span class="sub">(ShoalLastHeardMs: since this agent last heard from ${esc(e.Node.Node)})</span></dd>
      </dl>
      ${checksHTML(e.Checks)}
      ${local ? `<div class="actions">
        <button type="button" data-act="svc-maint" data-id="${id}" data-enable="${!maint}">${maint ? 'End maintenance' : 'Maintenance…'}</button>
        <button type="button" class="danger" data-act="deregister" data-id="${id}">Deregister…</button></div>`
        : `<p class="sub">Registered with ${esc(e.Node.Node)}: change it through that agent.</p>`}`;
  }

  // Nodes: every member, its state, address, metadata, last heard.
  function pageNodes() {
    shell('nodes', `
      <div class="bar"><h1>Nodes</h1><span class="sub" id="node-sum"></span></div>
      <div class="bar">${searchBox('nodes', 'Search name, address, state, meta', 'e.g. failed rack=r1')}</div>
      <div class="vlist" id="node-list" aria-label="Nodes"></div>`, wireSearch);
    const perNode = instancesByNode();
    const match = matcher('nodes');
    const all = [...S.members].sort((a, b) => a.Name.localeCompare(b.Name));
    const shown = all.filter((m) => match(`${m.Name} ${m.Addr}:${m.Port} ${memberStatus(m)} ${metaText(S.nodeMeta.get(m.Name))}`.toLowerCase()));
    const by = {};
    for (const m of all) by[memberStatus(m)] = (by[memberStatus(m)] || 0) + 1;
    $('#node-sum').textContent = `${all.length} members · ${Object.entries(by).map(([k, v]) => `${v} ${k}`).join(', ')}`;
    list('node-list', (m, i) => {
      const st = memberStatus(m);
      const insts = perNode.get(m.Name) || [];
      return `<a class="row node" href="#/node/${enc(m.Name)}" data-i="${i}" data-node="${esc(m.Name)}" data-status="${st}">
        <span class="name">${esc(m.Name)}${m.Name === S.self ? ' <span class="sub">(this agent)</span>' : ''}</span>
        <span>${stateSpan(st)}</span>
        <span class="addr mono">${esc(m.Addr)}:${m.Port}</span>
        ${ageSpan(`m:${m.Name}`, m.ShoalLastHeardMs, S.membersAt)}
        <span class="line2">${[`${insts.length} instance${insts.length === 1 ? '' : 's'}`, metaText(S.nodeMeta.get(m.Name))].filter(Boolean).map(esc).join(' · ')}</span></a>`;
    }).set(shown);
  }

  function instancesByNode() {
    const out = new Map();
    for (const [, v] of S.inst) {
      for (const e of v.entries) {
        if (!out.has(e.Node.Node)) out.set(e.Node.Node, []);
        out.get(e.Node.Node).push(e);
      }
    }
    return out;
  }

  function pageNode(r) {
    const name = r.a;
    shell(`node/${name}`, `<div class="bar"><a href="#/nodes">Nodes</a> <span class="sub">/</span> <h1>${esc(name)}</h1></div><div id="node-body" class="stack"></div>`);
    const m = S.members.find((x) => x.Name === name);
    const body = $('#node-body');
    if (!m) { body.innerHTML = '<p class="sub">This agent knows no such member.</p>'; return; }
    const st = memberStatus(m);
    const insts = (instancesByNode().get(name) || []).sort((a, b) => a.Service.Service.localeCompare(b.Service.Service) || a.Service.ID.localeCompare(b.Service.ID));
    const nodeChecks = new Map();
    for (const e of insts) for (const c of e.Checks || []) if (!c.ServiceID) nodeChecks.set(c.CheckID, c);
    const maint = nodeChecks.has('_node_maintenance');
    const self = name === S.self;
    setHTML(body, `<section class="panel">
      <dl class="kv">
        <dt>State</dt><dd data-status="${st}">${stateSpan(st)}</dd>
        <dt>Address</dt><dd class="mono">${esc(m.Addr)}:${m.Port}</dd>
        <dt>Last heard</dt><dd>${ageSpan(`m:${m.Name}`, m.ShoalLastHeardMs, S.membersAt)}${self ? ' <span class="sub">(this agent)</span>' : ''}</dd>
        <dt>Metadata</dt><dd>${kvHTML(S.nodeMeta.get(name))}</dd>
        <dt>Epoch</dt><dd class="mono">${esc(m.Tags?.epoch)}</dd>
      </dl>
      ${self ? `<div class="actions"><button type="button" data-act="node-maint" data-enable="${!maint}">${maint ? 'End node maintenance' : 'Node maintenance…'}</button></div>` : ''}
      </section>
      <section class="panel"><h2>Node checks</h2>${nodeChecks.size ? checksHTML([...nodeChecks.values()]) : '<p class="sub">None known (it runs no instance this agent serves).</p>'}</section>
      <section class="panel"><h2>Instances (${insts.length})</h2>
      <div class="tablewrap"><table><thead><tr><th>Service</th><th>ID</th><th>Address</th><th>State</th><th>Checks</th></tr></thead><tbody>
      ${insts.map((e) => `<tr data-inst="${esc(instKey(e))}"><td><a href="#/service/${enc(e.Service.Service)}/${enc(name)}/${enc(e.Service.ID)}">${esc(e.Service.Service)}</a></td>
        <td>${esc(e.Service.ID)}</td><td class="mono">${esc(e.Service.Address || e.Node.Address)}:${e.Service.Port}</td>
        <td>${stateSpan(worst(e.Checks))}</td><td>${esc(checksSummary(e))}</td></tr>`).join('')}
      </tbody></table></div></section>`);
  }

  // Agreement: per origin, whether every member serves the same catalog.
  function sinceText() {
    if (!S.conv) return '';
    const now = Date.now();
    if (S.lastDisagree) {
      const ago = fmtAge(now - S.lastDisagree);
      return S.conv.Converged ? `Agreeing; last disagreement seen ${ago} ago.` : `Disagreeing now (checked ${ago} ago).`;
    }
    return `No disagreement seen since this tab began asking, ${fmtAge(now - S.watchStart)} ago.`;
  }

  function pageAgreement() {
    shell('agreement', `<div class="bar"><h1>Agreement</h1><span class="sub">Does every agent serve the same catalog? Asked of every member, about once a second.</span></div>
      <div id="agree-body" class="stack"></div>`);
    const body = $('#agree-body');
    const c = S.conv;
    if (!c) { body.innerHTML = `<div class="banner off">${S.convErr ? esc(S.convErr) : 'Asking the members…'}</div>`; return; }
    const members = [...(c.Members || [])].sort((a, b) => a.Node.localeCompare(b.Node));
    const now = Date.now();
    const differ = members.filter((m) => !m.Agrees);
    const banner = c.Converged
      ? `<div class="banner ok" id="agree-banner" data-converged="true">All ${members.length + 1} serving agents agree: catalog ${esc(c.Digest)}.</div>`
      : `<div class="banner bad" id="agree-banner" data-converged="false">${differ.length} of ${members.length + 1} agents serve a different catalog or did not answer: ${differ.map((m) => esc(m.Node)).join(', ')}.</div>`;
    const cell = (m, o) => {
      if (m.Agrees) return '<td class="cell ok" title="same catalog">✓</td>';
      if (!m.Digest) return '<td class="cell unknown" title="no answer in time">?</td>';
      const mv = S.originMoved.get(o.Origin);
      if (mv && mv.at && now - mv.at < 5000) return '<td class="cell moving" title="this origin changed here within 5 s: its news is most likely on its way">…</td>';
      return '<td class="cell differs" title="this member\'s catalog differs (a summary covers every origin)">✗</td>';
    };
    const origins = [...(c.Origins || [])].sort((a, b) => a.Origin.localeCompare(b.Origin));
    body.innerHTML = `${banner}<p class="sub" id="since">${esc(sinceText())}</p>
      <div class="tablewrap"><table class="matrix" aria-describedby="matrix-note">
      <thead><tr><th scope="col">Origin</th><th scope="col">Version here</th><th scope="col">Entries</th>
        <th scope="col">${esc(c.Node)} <span class="sub">(this agent)</span></th>
        ${members.map((m) => `<th scope="col">${esc(m.Node)} <span class="sub">${esc(m.Status)}</span></th>`).join('')}</tr></thead>
      <tbody>
      <tr><th scope="row">whole catalog</th><td class="mono">${esc(c.Digest)}</td><td></td><td class="cell ok">✓</td>
        ${members.map((m) => `<td class="cell ${m.Agrees ? 'ok' : m.Digest ? 'differs' : 'unknown'} mono" data-member="${esc(m.Node)}" data-agrees="${m.Agrees}">${esc(m.Digest || 'no answer')}</td>`).join('')}</tr>
      ${origins.map((o) => `<tr><th scope="row">${esc(o.Origin)}${o.Served ? '' : ' <span class="sub">(not served)</span>'}</th>
        <td class="mono" title="epoch ${esc(o.Epoch)}, watermark ${esc(o.Watermark)}">${esc(o.Known)} · ${esc(o.Digest)}</td><td>${o.Entries}</td>
        <td class="cell ok">✓</td>${members.map((m) => cell(m, o)).join('')}</tr>`).join('')}
      </tbody></table></div>
      <p class="sub" id="matrix-note">A member answers with one summary of its whole catalog, so a member that differs is marked on every origin;
      an origin whose version moved here in the last 5 s is marked … as the likely one in flight. Checked ${fmtAge(now - S.convAt)} ago.</p>`;
  }

  // Network map: the Vivaldi coordinates projected on their two main
  // axes (principal components), each node coloured by its state.
  function project(coords) {
    const n = coords.length;
    const dim = n ? coords[0].Coord.Vec.length : 0;
    const mean = new Array(dim).fill(0);
    for (const c of coords) c.Coord.Vec.forEach((v, i) => { mean[i] += v / n; });
    const X = coords.map((c) => c.Coord.Vec.map((v, i) => v - mean[i]));
    const cov = Array.from({ length: dim }, () => new Array(dim).fill(0));
    for (const x of X) for (let i = 0; i < dim; i++) for (let j = 0; j < dim; j++) cov[i][j] += x[i] * x[j];
    const axes = [];
    for (let k = 0; k < 2; k++) {
      let v = Array.from({ length: dim }, (_, i) => (i === k ? 1 : 0.1));
      for (let it = 0; it < 100; it++) {
        const w = cov.map((row) => row.reduce((s, a, j) => s + a * v[j], 0));
        for (const a of axes) { const d = w.reduce((s, x, i) => s + x * a[i], 0); for (let i = 0; i < dim; i++) w[i] -= d * a[i]; }
        const norm = Math.hypot(...w);
        if (norm < 1e-15) break;
        v = w.map((x) => x / norm);
      }
      axes.push(v);
    }
    return X.map((x) => axes.map((a) => x.reduce((s, xi, i) => s + xi * a[i], 0)));
  }

  // rtt estimates the round trip between two coordinates, as Serf does:
  // the distance of the vectors plus both heights, adjusted.
  function rtt(a, b) {
    const d = Math.hypot(...a.Vec.map((v, i) => v - b.Vec[i])) + a.Height + b.Height;
    const adj = d + a.Adjustment + b.Adjustment;
    return (adj > 0 ? adj : d) * 1000; // ms
  }

  let pinned = '';
  let hovered = '';

  function pageMap() {
    const fresh = shell('map', `<div class="bar"><h1>Network map</h1><span class="sub">Vivaldi coordinates, projected on their two main axes. Hover or focus a node for its round trip to
      <span id="map-from"></span>; click or press Enter to measure from it instead.</span></div>
      <p class="rtt" id="rtt" role="status"></p>
      <svg class="map" id="map" viewBox="0 0 1000 560" role="group" aria-label="Network map"></svg>
      <section class="panel"><h2>Round trips from <span id="tbl-from"></span></h2><div class="tablewrap" id="rtt-table"></div></section>`);
    if (fresh) {
      const svg = $('#map');
      const show = (ev) => { const g = ev.target.closest('g[data-node]'); if (g) hover(g.dataset.node); };
      svg.addEventListener('mouseover', show);
      svg.addEventListener('focusin', show);
      svg.addEventListener('click', (ev) => { const g = ev.target.closest('g[data-node]'); if (g) pin(g.dataset.node); });
      svg.addEventListener('keydown', (ev) => {
        const g = ev.target.closest('g[data-node]');
        if (g && (ev.key === 'Enter' || ev.key === ' ')) { ev.preventDefault(); pin(g.dataset.node); }
      });
    }
    const coords = S.coords.filter((c) => c.Coord && c.Coord.Vec);
    const svg = $('#map');
    if (S.coordsErr) { $('#rtt').textContent = S.coordsErr; return; }
    if (!pinned || !coords.some((c) => c.Node === pinned)) pinned = S.self;
    $('#map-from').textContent = $('#tbl-from').textContent = pinned || 'this agent';
    const status = new Map(S.members.map((m) => [m.Name, memberStatus(m)]));
    const pts = project(coords);
    const xs = pts.map((p) => p[0]);
    const ys = pts.map((p) => p[1]);
    const span = Math.max(Math.max(...xs) - Math.min(...xs), Math.max(...ys) - Math.min(...ys), 1e-6);
    const W = 1000;
    const H = 560;
    const pad = 90;
    const scale = Math.min(W - 2 * pad, H - 2 * pad) / span;
    const cx = (Math.max(...xs) + Math.min(...xs)) / 2;
    const cy = (Math.max(...ys) + Math.min(...ys)) / 2;
    const pos = new Map();
    coords.forEach((c, i) => pos.set(c.Node, [W / 2 + (pts[i][0] - cx) * scale, H / 2 + (pts[i][1] - cy) * scale]));
    const focusedNode = document.activeElement?.closest?.('g[data-node]')?.dataset.node;
    svg.innerHTML = `<line id="map-line" x1="0" y1="0" x2="0" y2="0" visibility="hidden"></line>${coords.map((c) => {
      const [x, y] = pos.get(c.Node);
      const st = status.get(c.Node) || 'none';
      return `<g data-node="${esc(c.Node)}" tabindex="0" role="button" aria-label="${esc(c.Node)}, ${st}">
        <circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${c.Node === pinned ? 16 : 12}" class="${st}${c.Node === pinned ? ' pinned' : ''}"><title>${esc(c.Node)} (${st})</title></circle>
        <text x="${(x + 20).toFixed(1)}" y="${(y + 7).toFixed(1)}">${esc(c.Node)}</text></g>`;
    }).join('')}`;
    if (focusedNode) svg.querySelector(`g[data-node="${CSS.escape(focusedNode)}"]`)?.focus();
    svg.dataset.pos = JSON.stringify([...pos]);
    if (hovered && pos.has(hovered)) hover(hovered);
    const from = coords.find((c) => c.Node === pinned);
    $('#rtt-table').innerHTML = from ? `<table><thead><tr><th>Node</th><th>State</th><th>Estimated RTT</th></tr></thead><tbody>${coords.filter((c) => c !== from)
      .map((c) => [c, rtt(from.Coord, c.Coord)]).sort((a, b) => a[1] - b[1])
      .map(([c, ms]) => `<tr><td>${esc(c.Node)}</td><td>${stateSpan(status.get(c.Node) || 'none')}</td><td>${ms.toFixed(3)} ms</td></tr>`).join('')}</tbody></table>` : '<p class="sub">No coordinates yet.</p>';
  }

  function hover(node) {
    hovered = node;
    const a = S.coords.find((c) => c.Node === pinned);
    const b = S.coords.find((c) => c.Node === node);
    const line = $('#map-line');
    if (!a || !b || a === b) { $('#rtt').textContent = node ? `${node}: pick another node to measure from ${pinned}` : ''; line?.setAttribute('visibility', 'hidden'); return; }
    $('#rtt').textContent = `Estimated ${pinned} ↔ ${node} rtt: ${rtt(a.Coord, b.Coord).toFixed(3)} ms`;
    const pos = new Map(JSON.parse($('#map').dataset.pos || '[]'));
    const [x1, y1] = pos.get(pinned);
    const [x2, y2] = pos.get(node);
    line.setAttribute('x1', x1); line.setAttribute('y1', y1); line.setAttribute('x2', x2); line.setAttribute('y2', y2);
    line.setAttribute('visibility', 'visible');
  }

  function pin(node) {
    pinned = node;
    hovered = '';
    render();
    $('#rtt').textContent = `Measuring from ${node}: hover another node.`;
  }

  // ---- actions, each behind a confirmation ----

  function confirmAction(text, withReason) {
    const dlg = $('#confirm');
    $('#confirm-text').textContent = text;
    $('#confirm-reason-label').hidden = !withReason;
    $('#confirm-reason').value = '';
    dlg.returnValue = '';
    dlg.showModal();
    (withReason ? $('#confirm-reason') : $('#confirm-cancel')).focus();
    return new Promise((res) => dlg.addEventListener('close', () => res(dlg.returnValue === 'ok' ? { reason: $('#confirm-reason').value } : null), { once: true }));
  }

  let toastTimer = 0;
  function toast(msg) {
    const t = $('#toast');
    t.textContent = msg;
    t.classList.add('show');
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => t.classList.remove('show'), 2500);
  }

  async function act(btn) {
    const { act: kind, id } = btn.dataset;
    const enable = btn.dataset.enable === 'true';
    let path;
    let done;
    if (kind === 'deregister') {
      if (!(await confirmAction(`Deregister the instance ${id} from ${S.self}? Every agent stops serving it.`, false))) return;
      path = `agent/service/deregister/${enc(id)}`;
      done = `Deregistered ${id}.`;
    } else if (kind === 'svc-maint' || kind === 'node-maint') {
      const what = kind === 'node-maint' ? `the node ${S.self}` : `the instance ${id}`;
      const ok = await confirmAction(enable ? `Put ${what} in maintenance? It is served as critical until maintenance ends.` : `End maintenance of ${what}?`, enable);
      if (!ok) return;
      const q = `enable=${enable}${enable && ok.reason ? `&reason=${enc(ok.reason)}` : ''}`;
      path = kind === 'node-maint' ? `agent/maintenance?${q}` : `agent/service/maintenance/${enc(id)}?${q}`;
      done = `${enable ? 'Maintenance on' : 'Maintenance off'}: ${what}.`;
    } else {
      return;
    }
    try {
      await api(path, { method: 'PUT' });
      toast(done);
    } catch (e) {
      toast(`Refused: ${e.message}`);
    }
  }

  // ---- start ----

  function tokenDialog() {
    const dlg = $('#token-dlg');
    $('#token-input').value = token();
    dlg.returnValue = '';
    dlg.showModal();
    dlg.addEventListener('close', () => {
      if (dlg.returnValue === 'save') sessionStorage.setItem(TOKEN_KEY, $('#token-input').value.trim());
      else if (dlg.returnValue === 'clear') sessionStorage.removeItem(TOKEN_KEY);
      else return;
      restart();
    }, { once: true });
  }

  function restart() {
    followService('');
    S.inst.clear();
    reported.clear();
    reportedIndex.clear();
    S.members = [];
    S.membersIndex = 0;
    S.conv = null;
    nodeChecks = null;
    main.dataset.shell = '';
    // Who this agent is matters only to the actions: ask beside the
    // first read, not before it.
    whoAmI().then(() => { if (S.loaded) render(); });
    watch();
    onRoute();
  }

  document.addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-act]');
    if (b) act(b);
  });
  document.addEventListener('keydown', (ev) => {
    if (ev.key === '/' && !ev.target.closest('input, textarea, dialog')) {
      const s = $('#search');
      if (s) { ev.preventDefault(); s.focus(); }
    }
  });
  sessionStorage.setItem('shoal-watch-start', String(S.watchStart));
  $('#token-btn').addEventListener('click', tokenDialog);
  window.addEventListener('hashchange', onRoute);
  setInterval(tickAges, 1000);
  // Agreement is asked about once a second on its page and while the
  // agents disagree (so the page sees when that ends), else every 5 s.
  let convTick = 0;
  setInterval(() => {
    if (route().page === 'agreement' || (S.conv && !S.conv.Converged) || ++convTick % 5 === 0) pollConvergence();
  }, 1000);
  setInterval(() => { if (route().page === 'map') pollCoords(); }, 3000);
  setInterval(freshen, 2000);
  restart();
})();
