/* infinigram web page: plain DOM, no framework, no network access but this server.
 *
 * Everything that comes from the corpus or the server is inserted with
 * textContent / setAttribute (never innerHTML): documents are untrusted.
 */
(function () {
  'use strict';

  const $ = (id) => document.getElementById(id);

  const state = {
    key: '',
    index: null,          // name of the selected index
    indexes: [],          // answer of /v1/indexes
    seq: {},              // per-view request counters: a late answer never overwrites a newer one
    trace: null,          // {text, score, matches, ids}
    selectedMatch: -1,
  };

  // Suffix-length colour buckets (upper bounds, inclusive) and their labels.
  const BUCKETS = [0, 1, 2, 4, 8, 16, 32, Infinity];
  const BUCKET_LABELS = ['0', '1', '2', '3–4', '5–8', '9–16', '17–32', '33+'];
  const NTD_ROWS = 25;
  const DOCS_MAXNUM = 10;

  // ------------------------------------------------------------------ helpers
  class ApiError extends Error {
    constructor(status, type, message) {
      super(message);
      this.status = status;
      this.type = type;
    }
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function fmtInt(n) {
    return typeof n === 'number' ? n.toLocaleString('en-US') : String(n);
  }

  function fmtMs(x) {
    if (typeof x !== 'number' || !isFinite(x)) return '–';
    if (x < 1) return x.toFixed(2) + ' ms';
    if (x < 100) return x.toFixed(1) + ' ms';
    return Math.round(x).toLocaleString('en-US') + ' ms';
  }

  function fmtLatency(r) {
    const parts = [];
    if (typeof r.latency_ms === 'number') parts.push('engine ' + fmtMs(r.latency_ms));
    if (typeof r._rtt === 'number') parts.push('round trip ' + fmtMs(r._rtt));
    return parts.join(' · ');
  }

  function fmtProb(p) {
    if (typeof p !== 'number' || !isFinite(p)) return '–';
    const pc = p * 100;
    if (pc >= 10) return pc.toFixed(1) + '%';
    if (pc >= 0.1) return pc.toFixed(2) + '%';
    if (pc === 0) return '0%';
    return pc.toExponential(1) + '%';
  }

  function fmtCompact(n) {
    if (typeof n !== 'number') return String(n);
    const units = [[1e12, 'T'], [1e9, 'B'], [1e6, 'M'], [1e3, 'k']];
    for (const [v, u] of units) {
      if (n >= v) return (n / v).toFixed(n / v < 10 ? 2 : 1).replace(/\.?0+$/, '') + u;
    }
    return String(n);
  }

  // A token piece made visible: whitespace shown as symbols (for chips and bars).
  function visiblePiece(s) {
    if (s === null || s === undefined) return '∅';
    if (s === '') return '∅';
    return String(s).replace(/ /g, '␣').replace(/\n/g, '↵').replace(/\r/g, '␍').replace(/\t/g, '⇥');
  }

  function bucketOf(len) {
    for (let b = 0; b < BUCKETS.length; b++) if (len <= BUCKETS[b]) return b;
    return BUCKETS.length - 1;
  }

  function setState(card, s) {
    card.dataset.state = s;
    card.setAttribute('aria-busy', s === 'loading' ? 'true' : 'false');
  }

  function nextSeq(view) {
    state.seq[view] = (state.seq[view] || 0) + 1;
    return state.seq[view];
  }

  function isCurrent(view, seq) {
    return state.seq[view] === seq;
  }

  // ---------------------------------------------------------------------- API
  async function api(path, body) {
    const headers = { 'Accept': 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (state.key) headers['X-API-Key'] = state.key;
    const t0 = performance.now();
    let resp;
    try {
      resp = await fetch(path, {
        method: body === undefined ? 'GET' : 'POST',
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
      });
    } catch (e) {
      throw new ApiError(0, 'network_error', 'Could not reach the server (' + e.message + ').');
    }
    const text = await resp.text();
    const rtt = performance.now() - t0;
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!resp.ok) {
      const err = data && data.error;
      if (err && typeof err === 'object') {
        throw new ApiError(err.code || resp.status, err.type || 'error', err.message || JSON.stringify(err));
      }
      if (err && typeof err === 'string') throw new ApiError(resp.status, 'error', err);
      if (data && data.detail !== undefined) {
        const d = typeof data.detail === 'string' ? data.detail : JSON.stringify(data.detail);
        throw new ApiError(resp.status, resp.statusText || 'error', d);
      }
      throw new ApiError(resp.status, resp.statusText || 'error', (text || 'HTTP ' + resp.status).slice(0, 500));
    }
    if (data === null || typeof data !== 'object') {
      throw new ApiError(resp.status, 'bad_response', 'The server did not answer with JSON.');
    }
    data._rtt = rtt;
    return data;
  }

  function indexPath(endpoint) {
    return '/v1/' + encodeURIComponent(state.index) + '/' + endpoint;
  }

  // ------------------------------------------------------------------- errors
  function showError(err) {
    const box = $('error');
    let title = 'Error';
    if (err instanceof ApiError) {
      title = (err.status ? err.status + ' ' : '') + err.type;
      box.dataset.status = String(err.status);
      box.dataset.type = err.type;
    } else {
      box.dataset.status = '';
      box.dataset.type = err && err.name === 'UserError' ? 'input' : 'client';
      if (err && err.name === 'UserError') title = 'Check the input';
    }
    $('error-title').textContent = title;
    $('error-message').textContent = (err && err.message) || String(err);
    box.hidden = false;
    if (err instanceof ApiError && err.status === 401) {
      $('key-box').open = true;
      $('api-key').focus();
    }
  }

  function clearError() {
    $('error').hidden = true;
  }

  function userError(msg) {
    const e = new Error(msg);
    e.name = 'UserError';
    return e;
  }

  // ------------------------------------------------------------------ indexes
  async function loadIndexes() {
    const sel = $('index-select');
    let r;
    try {
      r = await api('/v1/indexes');
    } catch (e) {
      $('index-info').textContent = '';
      showError(e);
      return;
    }
    clearError();
    state.indexes = Array.isArray(r.indexes) ? r.indexes : [];
    sel.replaceChildren();
    for (const ix of state.indexes) {
      const o = el('option', null, ix.name);
      o.value = ix.name;
      sel.appendChild(o);
    }
    const wanted = new URLSearchParams(location.search).get('index');
    const names = state.indexes.map((x) => x.name);
    state.index = names.includes(wanted) ? wanted : (names.includes(state.index) ? state.index : names[0] || null);
    if (state.index !== null) sel.value = state.index;
    showIndexInfo();
    applyMinLenDefault();
    document.body.dataset.ready = 'true';
  }

  function currentIndex() {
    return state.indexes.find((x) => x.name === state.index) || null;
  }

  function showIndexInfo() {
    const ix = currentIndex();
    const info = $('index-info');
    info.replaceChildren();
    if (!ix) {
      info.textContent = 'no index';
      return;
    }
    const bits = [
      [fmtCompact(ix.n_tokens), 'tokens', fmtInt(ix.n_tokens) + ' tokens'],
      [fmtCompact(ix.n_docs), 'docs', fmtInt(ix.n_docs) + ' documents'],
      [ix.backend === 'fm' ? 'FM-index' : 'suffix array', '', 'backend: ' + ix.backend],
      [shortTokenizer(ix.tokenizer), '', 'tokenizer: ' + ix.tokenizer],
    ];
    if (ix.n_shards > 1) bits.push([String(ix.n_shards), 'shards', ix.n_shards + ' shards']);
    for (const [v, unit, title] of bits) {
      const s = el('span', 'info-bit');
      s.title = title;
      s.appendChild(el('b', null, v));
      if (unit) s.appendChild(document.createTextNode(' ' + unit));
      info.appendChild(s);
    }
  }

  function shortTokenizer(t) {
    if (t === null || t === undefined) return '?';
    const s = String(t);
    const base = s.split(/[\\/]/).filter(Boolean);
    const name = base.length > 1 && /tokenizer\.json$/.test(s) ? base[base.length - 2] : base[base.length - 1] || s;
    return name.length > 28 ? name.slice(0, 27) + '…' : name;
  }

  function docsContext() {
    const ix = currentIndex();
    return ix && ix.token_width === 1 ? 120 : 40;   // bytes vs. subword tokens
  }

  // Default shortest maximal match: a few subword tokens, or a dozen bytes.
  function defaultMinLen() {
    const ix = currentIndex();
    return ix && ix.token_width === 1 ? 12 : 4;
  }

  function applyMinLenDefault() {
    const f = $('min-len');
    if (f.dataset.touched !== 'true') f.value = String(defaultMinLen());
  }

  // ------------------------------------------------------------------ queries
  function queryMode() {
    return $('mode-ids').checked ? 'ids' : 'text';
  }

  function readQuery() {
    const raw = $('query-input').value;
    if (queryMode() === 'ids') {
      const parts = raw.trim().replace(/^\[/, '').replace(/\]$/, '').split(/[\s,]+/).filter(Boolean);
      const ids = parts.map((p) => {
        if (!/^\d+$/.test(p)) throw userError('"' + p + '" is not a token id: give non-negative integers separated by spaces or commas.');
        return Number(p);
      });
      return { query_ids: ids };
    }
    return { query: raw };
  }

  function needIndex() {
    if (state.index === null) throw userError('No index is selected (the server lists none, or /v1/indexes failed).');
  }

  async function withButton(btn, fn) {
    btn.disabled = true;
    btn.classList.add('loading');
    try {
      await fn();
    } catch (e) {
      showError(e);
    } finally {
      btn.disabled = false;
      btn.classList.remove('loading');
    }
  }

  function hideHelp() {
    $('search-help').hidden = true;
  }

  async function runCount() {
    needIndex();
    const q = readQuery();
    const seq = nextSeq('count');
    const card = $('count-result');
    card.hidden = false;
    hideHelp();
    setState(card, 'loading');
    syncUrl();
    let r;
    try {
      r = await api(indexPath('count'), q);
    } catch (e) {
      if (isCurrent('count', seq)) setState(card, 'error');
      throw e;
    }
    if (!isCurrent('count', seq)) return;
    clearError();
    const v = $('count-value');
    v.textContent = fmtInt(r.count);
    v.dataset.count = String(r.count);
    $('count-latency').textContent = fmtLatency(r);
    renderChips($('query-tokens'), r.query_tokens || [], r.query_ids || []);
    setState(card, 'done');
  }

  function renderChips(box, pieces, ids) {
    box.replaceChildren();
    const n = Math.max(pieces.length, ids.length);
    const shown = Math.min(n, 200);
    for (let i = 0; i < shown; i++) {
      const c = el('span', 'chip', visiblePiece(pieces[i]));
      if (ids[i] !== undefined) {
        c.dataset.tokenId = String(ids[i]);
        c.title = 'token id ' + ids[i];
      }
      box.appendChild(c);
    }
    if (n > shown) box.appendChild(el('span', 'muted small', '… ' + (n - shown) + ' more'));
    if (n === 0) box.appendChild(el('span', 'muted small', '(empty query)'));
  }

  // ---------------------------------------------------------------- documents
  async function runDocs() {
    needIndex();
    const q = readQuery();
    const seq = nextSeq('docs');
    const card = $('docs-result');
    card.hidden = false;
    hideHelp();
    setState(card, 'loading');
    syncUrl();
    let r;
    try {
      r = await api(indexPath('search_docs'), Object.assign({ maxnum: DOCS_MAXNUM, context: docsContext() }, q));
    } catch (e) {
      if (isCurrent('docs', seq)) setState(card, 'error');
      throw e;
    }
    if (!isCurrent('docs', seq)) return;
    clearError();
    $('docs-latency').textContent = fmtLatency(r);
    const docs = Array.isArray(r.documents) ? r.documents : [];
    $('docs-summary').textContent = docs.length === 0
      ? 'No document contains this query.'
      : 'Showing ' + docs.length + ' of ' + fmtInt(r.count) + ' occurrence' + (r.count === 1 ? '' : 's') + '.';
    renderDocs($('docs-list'), docs);
    setState(card, 'done');
  }

  function renderDocs(box, docs) {
    box.replaceChildren();
    const tpl = $('doc-template');
    for (const d of docs) {
      const node = tpl.content.firstElementChild.cloneNode(true);
      node.dataset.docIx = String(d.doc_ix);
      if (d.offset !== undefined) node.dataset.offset = String(d.offset);
      const ixEl = node.querySelector('.doc-ix');
      ixEl.textContent = 'doc ' + fmtInt(d.doc_ix);
      if (d.offset !== undefined) ixEl.title = 'match at token ' + fmtInt(d.offset);
      renderMeta(node.querySelector('.doc-meta'), d.metadata);
      fillWindow(node.querySelector('.doc-text'), d.before || '', d.match || '', d.after || '');
      const btn = node.querySelector('.doc-full');
      btn.addEventListener('click', () => toggleFullDoc(node, d, btn));
      box.appendChild(node);
    }
  }

  function fillWindow(textEl, before, match, after, leadEllipsis, tailEllipsis) {
    textEl.replaceChildren();
    const lead = leadEllipsis === undefined ? before.length > 0 : leadEllipsis;
    const tail = tailEllipsis === undefined ? after.length > 0 : tailEllipsis;
    if (lead) textEl.appendChild(el('span', 'ell', '…'));
    textEl.appendChild(el('span', 'before', before));
    textEl.appendChild(el('mark', 'match', match));
    textEl.appendChild(el('span', 'after', after));
    if (tail) textEl.appendChild(el('span', 'ell', '…'));
  }

  const URL_RE = /^https?:\/\/[^\s]+$/i;

  function renderMeta(box, meta) {
    box.replaceChildren();
    if (!meta || typeof meta !== 'object') return;
    const keys = Object.keys(meta);
    // the usual identifiers first
    const order = ['id', 'title', 'url', 'source'];
    keys.sort((a, b) => {
      const ia = order.indexOf(a), ib = order.indexOf(b);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
    });
    for (const k of keys.slice(0, 12)) {
      const v = meta[k];
      const item = el('span', 'meta');
      item.dataset.key = k;
      item.appendChild(el('span', 'meta-k', k));
      let vs = typeof v === 'string' ? v : JSON.stringify(v);
      if (vs === undefined) vs = String(v);
      const short = vs.length > 120 ? vs.slice(0, 119) + '…' : vs;
      if (typeof v === 'string' && URL_RE.test(v)) {
        const a = el('a', 'meta-v', short);
        a.setAttribute('href', v);
        a.setAttribute('rel', 'noopener noreferrer nofollow');
        a.setAttribute('target', '_blank');
        item.appendChild(a);
      } else {
        const s = el('span', 'meta-v', short);
        if (short !== vs) s.title = vs.slice(0, 2000);
        item.appendChild(s);
      }
      box.appendChild(item);
    }
    if (keys.length > 12) box.appendChild(el('span', 'meta muted', '+' + (keys.length - 12) + ' more'));
  }

  async function toggleFullDoc(node, d, btn) {
    const textEl = node.querySelector('.doc-text');
    if (node.classList.contains('full')) {
      node.classList.remove('full');
      fillWindow(textEl, d.before || '', d.match || '', d.after || '');
      btn.textContent = 'Full document';
      return;
    }
    await withButton(btn, async () => {
      // the server caps the length (its max_doc_tokens) and says when it did
      const r = await api(indexPath('document'), { doc_ix: d.doc_ix });
      const text = typeof r.text === 'string' ? r.text : '';
      const before = d.before || '', match = d.match || '';
      // locate the window in the full text to keep the match highlighted
      let at = -1;
      const probe = text.indexOf(before + match);
      if (probe >= 0 && match) at = probe + before.length;
      if (at < 0 && match) at = text.indexOf(match);
      if (at >= 0) {
        fillWindow(textEl, text.slice(0, at), match, text.slice(at + match.length), false, !!r.truncated);
      } else {
        textEl.replaceChildren(el('span', 'before', text));
        if (r.truncated) textEl.appendChild(el('span', 'ell', '…'));
      }
      if (r.truncated && typeof r.length === 'number') {
        const shown = typeof r.shown_tokens === 'number' ? r.shown_tokens : null;
        textEl.appendChild(el('span', 'trunc-note',
          '\n[' + (shown !== null ? 'the first ' + fmtInt(shown) + ' of ' : '') + fmtInt(r.length) + ' tokens shown]'));
      }
      node.classList.add('full');
      btn.textContent = 'Show less';
      clearError();
    });
  }

  // ---------------------------------------------------------------------- ntd
  async function runNtd() {
    needIndex();
    const q = readQuery();
    const infgram = $('ntd-infgram').checked;
    const seq = nextSeq('ntd');
    const card = $('ntd-result');
    card.hidden = false;
    hideHelp();
    setState(card, 'loading');
    syncUrl();
    let r;
    try {
      r = await api(indexPath(infgram ? 'infgram_ntd' : 'ntd'), Object.assign({ top: NTD_ROWS }, q));
    } catch (e) {
      if (isCurrent('ntd', seq)) setState(card, 'error');
      throw e;
    }
    if (!isCurrent('ntd', seq)) return;
    clearError();
    $('ntd-latency').textContent = fmtLatency(r);
    card.dataset.kind = infgram ? 'infgram_ntd' : 'ntd';
    const dist = Array.isArray(r.distribution) ? r.distribution : [];
    const sum = $('ntd-summary');
    sum.replaceChildren();
    const parts = [];
    if (infgram && typeof r.suffix_len === 'number') {
      parts.push('∞-gram context: the last ' + fmtInt(r.suffix_len) + ' token' + (r.suffix_len === 1 ? '' : 's') + ' of the query');
    }
    if (typeof r.prompt_count === 'number') parts.push('context occurs ' + fmtInt(r.prompt_count) + '×');
    if (typeof r.denom === 'number') parts.push(fmtInt(r.denom) + ' continuation' + (r.denom === 1 ? '' : 's'));
    const nDistinct = typeof r.n_distinct === 'number' ? r.n_distinct : dist.length;
    parts.push(fmtInt(nDistinct) + ' distinct next token' + (nDistinct === 1 ? '' : 's'));
    if (r.approx) parts.push('counts estimated from a sample');
    sum.textContent = parts.join(' · ') + '.';
    state.ntdQueryIds = Array.isArray(r.query_ids) ? r.query_ids : null;
    renderBars($('ntd-chart'), dist, nDistinct);
    setState(card, 'done');
  }

  function renderBars(box, dist, nDistinct) {
    box.replaceChildren();
    if (dist.length === 0) {
      box.appendChild(el('p', 'muted', 'Nothing follows this context in the corpus.'));
      return;
    }
    const rows = dist.slice(0, NTD_ROWS);
    const max = Math.max(...rows.map((d) => d.prob || 0)) || 1;
    for (const d of rows) {
      const row = el('div', 'bar-row');
      row.setAttribute('role', 'listitem');
      row.dataset.tokenId = String(d.token_id);
      row.dataset.count = String(d.count);
      row.dataset.prob = String(d.prob);
      if (typeof d.token === 'string') row.dataset.piece = d.token;
      row.title = 'token id ' + d.token_id + (typeof d.token === 'string' ? ' ' + JSON.stringify(d.token) : '') +
        ': click to append it to the query';
      const label = el('span', 'bar-label', visiblePiece(d.token));
      const track = el('span', 'bar-track');
      const fill = el('span', 'bar-fill');
      fill.style.width = Math.max(0.5, (100 * (d.prob || 0)) / max).toFixed(2) + '%';
      track.appendChild(fill);
      const val = el('span', 'bar-val');
      val.appendChild(el('b', null, fmtProb(d.prob)));
      val.appendChild(el('span', 'muted', ' ' + fmtInt(d.count)));
      for (const c of [label, track, val]) c.title = row.title;
      row.append(label, track, val);
      box.appendChild(row);
    }
    const more = Math.max(nDistinct || 0, dist.length) - rows.length;
    if (more > 0) {
      const shownP = rows.reduce((a, d) => a + (d.prob || 0), 0);
      box.appendChild(el('p', 'muted small', '+ ' + fmtInt(more) + ' more token' + (more === 1 ? '' : 's') +
        ' (' + fmtProb(Math.max(0, 1 - shownP)) + ' together)'));
    }
  }

  // Clicking a bar appends its token to the query and asks again (count and
  // next tokens, and the documents if they are open).
  function extendQuery(row) {
    const id = Number(row.dataset.tokenId);
    const piece = row.dataset.piece;
    const input = $('query-input');
    if (queryMode() === 'text' && typeof piece === 'string' && !/\\x[0-9a-f]{2}/i.test(piece)) {
      input.value += piece;
    } else if (state.ntdQueryIds) {
      $('mode-ids').checked = true;
      updatePlaceholder();
      input.value = state.ntdQueryIds.concat([id]).join(' ');
    } else {
      return;
    }
    const jobs = [runCount(), runNtd()];
    if (!$('docs-result').hidden) jobs.push(runDocs());
    Promise.all(jobs).catch(showError);
  }

  // ---------------------------------------------------------------- trace text
  async function runTrace() {
    needIndex();
    const text = $('text-input').value;
    if (!text) throw userError('Paste a text first.');
    let minLen = parseInt($('min-len').value, 10);
    if (!(minLen >= 1)) minLen = 1;
    const seq = nextSeq('trace');
    const sCard = $('score-result'), mCard = $('mm-result');
    sCard.hidden = false;
    mCard.hidden = false;
    $('mm-docs-result').hidden = true;
    setState(sCard, 'loading');
    setState(mCard, 'loading');
    syncUrl();
    const [s, m] = await Promise.allSettled([
      api(indexPath('score'), { text }),
      api(indexPath('maximal_matches'), { text, min_len: minLen, max_docs: DOCS_MAXNUM }),
    ]);
    if (!isCurrent('trace', seq)) return;
    state.trace = {
      text,
      score: s.status === 'fulfilled' ? s.value : null,
      matches: m.status === 'fulfilled' && Array.isArray(m.value.matches) ? m.value.matches : [],
    };
    state.selectedMatch = -1;
    let firstErr = null;
    if (s.status === 'fulfilled') {
      renderScore(s.value);
      setState(sCard, 'done');
    } else {
      firstErr = s.reason;
      $('score-tokens').replaceChildren();
      setState(sCard, 'error');
    }
    if (m.status === 'fulfilled') {
      renderMatches(m.value, minLen);
      setState(mCard, 'done');
    } else {
      firstErr = firstErr || m.reason;
      $('mm-list').replaceChildren();
      setState(mCard, 'error');
    }
    markMatchesOnTokens();
    if (firstErr) throw firstErr;
    clearError();
  }

  function renderLegend() {
    const box = $('legend');
    box.replaceChildren(el('span', 'legend-title', 'suffix length'));
    BUCKET_LABELS.forEach((lab, b) => {
      const sw = el('span', 'legend-item b' + b, lab);
      box.appendChild(sw);
    });
  }

  function renderScore(r) {
    $('score-latency').textContent = fmtLatency(r);
    const box = $('score-tokens');
    box.replaceChildren();
    const toks = Array.isArray(r.tokens) ? r.tokens : [];
    const frag = document.createDocumentFragment();
    toks.forEach((t, i) => {
      const piece = typeof t.piece === 'string' ? t.piece : '';
      const L = typeof t.suffix_len === 'number' ? t.suffix_len : 0;
      const span = el('span', 'tok b' + bucketOf(L), piece);
      span.dataset.i = String(i);
      span.dataset.suffixLen = String(L);
      if (t.id !== undefined) span.dataset.tokenId = String(t.id);
      if (piece === '') span.classList.add('empty');
      else if (piece.indexOf('\n') >= 0) span.classList.add('nl');
      frag.appendChild(span);
    });
    box.appendChild(frag);
    $('tok-info').textContent = toks.length
      ? toks.length + ' tokens. Tap or hover a token for its numbers.'
      : 'The text has no tokens.';
  }

  function tokenInfo(i) {
    const r = state.trace && state.trace.score;
    if (!r || !r.tokens || !r.tokens[i]) return '';
    const t = r.tokens[i];
    const parts = ['token ' + (i + 1) + ' ' + JSON.stringify(t.piece)];
    if (t.id !== undefined) parts.push('id ' + t.id);
    parts.push('context of ' + t.suffix_len + ' token' + (t.suffix_len === 1 ? '' : 's') + ' found');
    if (typeof t.logprob === 'number') parts.push('P = ' + fmtProb(Math.exp(t.logprob)));
    else if (t.logprob === null) parts.push('P = 0');
    if (typeof t.count === 'number') parts.push('seen ' + fmtInt(t.count) + '× after it');
    return parts.join(' · ');
  }

  function renderMatches(r, minLen) {
    $('mm-latency').textContent = fmtLatency(r);
    const list = $('mm-list');
    list.replaceChildren();
    const ms = Array.isArray(r.matches) ? r.matches : [];
    const nTok = state.trace && state.trace.score && state.trace.score.tokens ? state.trace.score.tokens.length : 0;
    let covered = 0;
    if (nTok) {
      const cov = new Uint8Array(nTok);
      for (const m of ms) for (let i = m.start; i < m.end && i < nTok; i++) cov[i] = 1;
      covered = cov.reduce((a, b) => a + b, 0);
    }
    $('mm-summary').textContent = ms.length === 0
      ? 'No span of ' + minLen + ' or more tokens occurs in the corpus.'
      : ms.length + ' maximal span' + (ms.length === 1 ? '' : 's') + ' of ≥ ' + minLen + ' tokens occur in the corpus' +
        (nTok ? ', covering ' + Math.round((100 * covered) / nTok) + '% of the tokens' : '') + '. Click one for its documents.';
    ms.forEach((m, k) => {
      const li = el('li', 'mm-item');
      li.dataset.mmIx = String(k);
      li.dataset.start = String(m.start);
      li.dataset.end = String(m.end);
      const b = el('button', 'mm-span');
      b.type = 'button';
      b.dataset.mmIx = String(k);
      b.appendChild(el('span', 'mm-text', String(m.text).replace(/\r?\n/g, '↵')));
      const meta = el('span', 'mm-meta');
      meta.appendChild(el('b', null, (m.end - m.start) + ' tokens'));
      meta.appendChild(document.createTextNode(' · ' + fmtInt(m.count) + '× in corpus · tokens ' + (m.start + 1) + '–' + m.end));
      b.appendChild(meta);
      b.addEventListener('click', () => selectMatch(k));
      li.appendChild(b);
      list.appendChild(li);
    });
  }

  // Underline the tokens covered by maximal matches; a token belongs to the
  // longest match that covers it (for clicks) and alternates colour by match.
  function markMatchesOnTokens() {
    const tr = state.trace;
    const toks = $('score-tokens').children;
    if (!tr || !toks.length) return;
    const best = new Int32Array(toks.length).fill(-1);
    tr.matches.forEach((m, k) => {
      for (let i = Math.max(0, m.start); i < m.end && i < toks.length; i++) {
        const cur = best[i];
        if (cur < 0 || (tr.matches[cur].end - tr.matches[cur].start) < (m.end - m.start)) best[i] = k;
      }
    });
    for (let i = 0; i < toks.length; i++) {
      const t = toks[i];
      t.classList.remove('in-mm', 'mm-odd', 'mm-start', 'sel');
      delete t.dataset.mm;
      if (best[i] >= 0) {
        t.classList.add('in-mm');
        if (best[i] % 2) t.classList.add('mm-odd');
        if (i === 0 || best[i - 1] !== best[i]) t.classList.add('mm-start');
        t.dataset.mm = String(best[i]);
      }
    }
  }

  async function selectMatch(k) {
    const tr = state.trace;
    if (!tr || !tr.matches[k]) return;
    const m = tr.matches[k];
    state.selectedMatch = k;
    for (const li of $('mm-list').children) li.classList.toggle('active', li.dataset.mmIx === String(k));
    const toks = $('score-tokens').children;
    for (let i = 0; i < toks.length; i++) toks[i].classList.toggle('sel', i >= m.start && i < m.end);

    const seq = nextSeq('mmdocs');
    const card = $('mm-docs-result');
    card.hidden = false;
    card.dataset.mmIx = String(k);
    setState(card, 'loading');
    const title = $('mm-docs-title');
    title.replaceChildren(document.createTextNode('Documents containing '));
    const shown = String(m.text).replace(/\r?\n/g, '↵');
    const q = el('q', 'mm-quote', shown.length > 80 ? shown.slice(0, 79) + '…' : shown);
    title.appendChild(q);
    let body;
    const sc = tr.score && tr.score.tokens;
    if (sc && sc.length >= m.end && sc.slice(m.start, m.end).every((t) => typeof t.id === 'number')) {
      body = { query_ids: sc.slice(m.start, m.end).map((t) => t.id) };
    } else {
      body = { query: m.text };
    }
    let r;
    try {
      r = await api(indexPath('search_docs'), Object.assign({ maxnum: DOCS_MAXNUM, context: docsContext() }, body));
    } catch (e) {
      if (isCurrent('mmdocs', seq)) setState(card, 'error');
      showError(e);
      return;
    }
    if (!isCurrent('mmdocs', seq)) return;
    clearError();
    $('mm-docs-latency').textContent = fmtLatency(r);
    const docs = Array.isArray(r.documents) ? r.documents : [];
    $('mm-docs-summary').textContent = 'This span of ' + (m.end - m.start) + ' tokens occurs ' + fmtInt(r.count) +
      ' time' + (r.count === 1 ? '' : 's') + (docs.length < r.count ? '; the first ' + docs.length + ' are shown.' : '.');
    renderDocs($('mm-docs'), docs);
    setState(card, 'done');
    if (window.matchMedia('(max-width: 720px)').matches) card.scrollIntoView({ behavior: 'smooth', block: 'start' });
  }

  // --------------------------------------------------------------- tabs & URL
  function showTab(name) {
    for (const t of document.querySelectorAll('.tab')) {
      const on = t.dataset.tab === name;
      t.setAttribute('aria-selected', on ? 'true' : 'false');
      t.tabIndex = on ? 0 : -1;
    }
    $('panel-search').hidden = name !== 'search';
    $('panel-text').hidden = name !== 'text';
    document.body.dataset.tab = name;
    syncUrl();
  }

  function syncUrl() {
    const p = new URLSearchParams(location.search);
    if (state.index !== null) p.set('index', state.index);
    const tab = document.body.dataset.tab || 'search';
    if (tab === 'search') p.delete('tab'); else p.set('tab', tab);
    const q = $('query-input').value;
    if (q && q.length <= 500) p.set('q', q); else p.delete('q');
    if (queryMode() === 'ids') p.set('mode', 'ids'); else p.delete('mode');
    const s = p.toString();
    history.replaceState(null, '', location.pathname + (s ? '?' + s : ''));
  }

  function resetResults() {
    for (const id of ['count-result', 'docs-result', 'ntd-result', 'score-result', 'mm-result', 'mm-docs-result']) {
      $(id).hidden = true;
    }
    $('search-help').hidden = false;
    state.trace = null;
  }

  // ---------------------------------------------------------------------- init
  function init() {
    const params = new URLSearchParams(location.search);
    state.key = params.get('key') || sessionStorage.getItem('infinigram-key') || '';
    if (params.has('key')) {
      // keep the key for this tab, but out of the address bar (and of links copied from it)
      if (state.key) sessionStorage.setItem('infinigram-key', state.key);
      const rest = new URLSearchParams(location.search);
      rest.delete('key');
      const q = rest.toString();
      history.replaceState(null, '', location.pathname + (q ? '?' + q : ''));
    }
    $('api-key').value = state.key;
    if (params.get('mode') === 'ids') $('mode-ids').checked = true;
    updatePlaceholder();
    if (params.get('q')) $('query-input').value = params.get('q');
    renderLegend();

    $('query-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      withButton($('btn-count'), runCount);
    });
    $('btn-docs').addEventListener('click', () => withButton($('btn-docs'), runDocs));
    $('btn-ntd').addEventListener('click', () => withButton($('btn-ntd'), runNtd));
    $('ntd-chart').addEventListener('click', (ev) => {
      const row = ev.target.closest('.bar-row');
      if (row) extendQuery(row);
    });
    $('ntd-infgram').addEventListener('change', () => {
      if (!$('ntd-result').hidden) withButton($('btn-ntd'), runNtd);
    });
    for (const r of document.querySelectorAll('input[name=mode]')) {
      r.addEventListener('change', () => { updatePlaceholder(); syncUrl(); });
    }
    $('text-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      withButton($('btn-trace'), runTrace);
    });
    $('text-input').addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) {
        ev.preventDefault();
        withButton($('btn-trace'), runTrace);
      }
    });
    const toks = $('score-tokens');
    const onTok = (ev) => {
      const t = ev.target.closest('.tok');
      if (!t) return;
      $('tok-info').textContent = tokenInfo(Number(t.dataset.i));
      return t;
    };
    toks.addEventListener('mouseover', onTok);
    toks.addEventListener('click', (ev) => {
      const t = onTok(ev);
      if (t && t.dataset.mm !== undefined) selectMatch(Number(t.dataset.mm));
    });

    for (const t of document.querySelectorAll('.tab')) {
      t.addEventListener('click', () => showTab(t.dataset.tab));
      t.addEventListener('keydown', (ev) => {
        if (ev.key === 'ArrowRight' || ev.key === 'ArrowLeft') {
          const other = t.dataset.tab === 'search' ? 'text' : 'search';
          showTab(other);
          $('tab-' + other).focus();
        }
      });
    }
    $('index-select').addEventListener('change', (ev) => {
      state.index = ev.target.value;
      showIndexInfo();
      applyMinLenDefault();
      resetResults();
      clearError();
      syncUrl();
    });
    const applyKey = () => {
      state.key = $('api-key').value.trim();
      if (state.key) sessionStorage.setItem('infinigram-key', state.key);
      else sessionStorage.removeItem('infinigram-key');
      loadIndexes();
    };
    $('api-key-apply').addEventListener('click', applyKey);
    $('api-key').addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') { ev.preventDefault(); applyKey(); }
    });
    $('error-close').addEventListener('click', clearError);
    $('min-len').addEventListener('input', () => { $('min-len').dataset.touched = 'true'; });

    showTab(params.get('tab') === 'text' ? 'text' : 'search');
    loadIndexes().then(() => {
      // a shared link (?q=...) shows its count and documents at once
      if (state.index !== null && params.get('q')) {
        withButton($('btn-count'), runCount);
        withButton($('btn-docs'), runDocs);
      }
    });
  }

  function updatePlaceholder() {
    $('query-input').placeholder = queryMode() === 'ids'
      ? 'token ids, e.g.  464 1917 373'
      : 'an n-gram, e.g.  import os';
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
