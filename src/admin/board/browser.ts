/// <reference lib="dom" />
/**
 * The board's script: plain DOM, no framework. It polls /board/data, renders every value with
 * textContent (names come from YAML) and acts through the admin API, the token in sessionStorage.
 * A classic script (no import or export), built to browser.js and served as /board.js.
 */
'use strict';
(function () {
  type BoardData = import('./rows.ts').BoardData
  type BoardRow = import('./rows.ts').BoardRow
  type Stage = import('./rows.ts').Stage
  type Side = 'legacy' | 'new'
  type ActionKind = 'rollback' | 'weight' | 'clear'
  type SortKey = keyof typeof SORTS
  /** A cell's line: text, class. */
  type Line = [string, string]
  interface Pending { kind: ActionKind; name: string; from: number; configured: number; rps: number | null }
  /** What the admin API answers: an error's code and message, or a change's row. */
  interface Answer { code?: string; message?: string; effectiveWeight?: number; warning?: string }

  const EVERY_MS = 2000
  const TOKEN_KEY = 'strangler-admin-token'
  const STAGE_NAMES: Record<Stage, string> = { 'legacy-only': 'legacy only', shadowing: 'shadowing', ramping: 'ramping', migrated: 'migrated', retired: 'legacy retired' }
  const STAGE_RANK: Record<Stage, number> = { 'legacy-only': 0, shadowing: 1, ramping: 2, migrated: 3, retired: 4 }
  const $ = function <T extends HTMLElement = HTMLElement> (id: string): T { return document.getElementById(id) as T }
  const state: { data: BoardData | null; sort: { key: SortKey; dir: number }; stage: Stage | null; query: string; pending: Pending | null; timer: ReturnType<typeof setTimeout> | undefined } =
    { data: null, sort: { key: 'name', dir: 1 }, stage: null, query: '', pending: null, timer: undefined }

  function el<K extends keyof HTMLElementTagNameMap> (tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
    const e = document.createElement(tag)
    if (className) e.className = className
    if (text !== undefined) e.textContent = text
    return e
  }

  function token () { return sessionStorage.getItem(TOKEN_KEY) || '' }
  function headers (json: boolean): Record<string, string> {
    const h: Record<string, string> = {}
    if (token() !== '') h.authorization = 'Bearer ' + token()
    if (json) h['content-type'] = 'application/json'
    return h
  }

  function round (n: number, digits: number) { const f = Math.pow(10, digits); return Math.round(n * f) / f }
  function rate (rps: number) { return rps === 0 ? '0' : rps >= 100 ? String(Math.round(rps)) : rps >= 10 ? rps.toFixed(1) : rps.toFixed(2) }
  function percent (n: number | null | undefined) { return n === null || n === undefined ? '—' : round(n, n < 10 ? 2 : 1) + '%' }
  function latency (s: number | null | undefined) {
    if (s === null || s === undefined) return '—'
    const ms = s * 1000
    return ms < 10 ? ms.toFixed(1) + ' ms' : ms < 1000 ? Math.round(ms) + ' ms' : s.toFixed(2) + ' s'
  }
  function clock (iso: string) { return new Date(iso).toLocaleTimeString() }
  function until (iso: string) {
    const s = Math.round((Date.parse(iso) - Date.now()) / 1000)
    if (s <= 0) return 'now'
    return s < 120 ? 'in ' + s + ' s' : s < 7200 ? 'in ' + Math.round(s / 60) + ' min' : 'in ' + Math.round(s / 3600) + ' h'
  }

  function say (text: string, kind?: string) {
    const m = $('message')
    m.textContent = text
    m.className = kind || ''
    m.hidden = text === ''
  }

  function lock (text: string) {
    document.body.classList.add('locked')
    $('lock').textContent = text
    $('lock').hidden = false
  }

  function unlock () {
    document.body.classList.remove('locked')
    $('lock').hidden = true
  }

  function showTokenState () {
    $('token-state').textContent = token() === '' ? 'no token: read-only' : 'token set for this browser session'
  }

  // The traffic of a context that a change from one weight to another moves, in words.
  function moveText (name: string, from: number, to: number, rps: number | null) {
    if (!(to >= 0 && to <= 100)) return 'Enter a weight from 0 to 100.'
    const moved = round(Math.abs(to - from), 2)
    if (moved === 0) return 'Nothing moves: ' + name + ' already sends ' + from + '% of its traffic to new.'
    const live = rps === null ? 'no live numbers yet' : rps === 0 ? 'no traffic in the last window' : '≈' + rate(rps * moved / 100) + ' req/s'
    return moved + '% of the traffic of ' + name + ' (' + live + ') moves ' + (to < from ? 'from new to legacy' : 'from legacy to new') + ': weight to new ' + from + '% → ' + to + '%.'
  }

  const SORTS = {
    name: function (r: BoardRow): string | number | null | undefined { return r.name },
    stage: function (r: BoardRow) { return STAGE_RANK[r.stage] * 1000 + r.effectiveWeight },
    weight: function (r: BoardRow) { return r.effectiveWeight },
    shadow: function (r: BoardRow) { return r.shadow === null ? null : r.shadow.matchRate },
    legacyRps: function (r: BoardRow) { return r.traffic && r.traffic.legacy.rps },
    legacyErr: function (r: BoardRow) { return r.traffic && r.traffic.legacy.errorRate },
    legacyP99: function (r: BoardRow) { return r.traffic && r.traffic.legacy.p99 },
    newRps: function (r: BoardRow) { return r.traffic && r.traffic.new.rps },
    newErr: function (r: BoardRow) { return r.traffic && r.traffic.new.errorRate },
    newP99: function (r: BoardRow) { return r.traffic && r.traffic.new.p99 },
    newFallback: function (r: BoardRow) { return r.traffic && r.traffic.new.fallbackRate }
  }

  function visibleRows () {
    const q = state.query.trim().toLowerCase()
    const rows = (state.data as BoardData).contexts.filter(function (r) {
      if (state.stage !== null && r.stage !== state.stage) return false
      return q === '' || (r.name + ' ' + r.stageLabel + ' ' + r.legacy + ' ' + r.new).toLowerCase().indexOf(q) >= 0
    })
    const key: (r: BoardRow) => string | number | null | undefined = SORTS[state.sort.key]
    const dir = state.sort.dir
    return rows.sort(function (a, b) {
      const x = key(a)
      const y = key(b)
      const absent = Number(x === null || x === undefined) - Number(y === null || y === undefined)
      if (absent !== 0) return absent // rows without a value go last either way
      const c = (x as number) < (y as number) ? -1 : (x as number) > (y as number) ? 1 : 0
      return c * dir || (a.name < b.name ? -1 : 1)
    })
  }

  function cell (tr: HTMLTableRowElement, className: string, text?: string) {
    const td = el('td', className, text)
    tr.appendChild(td)
    return td
  }

  function lines (td: HTMLElement, texts: Line[]) {
    texts.forEach(function (t) { td.appendChild(el('div', t[1], t[0])) })
  }

  function sideCells (tr: HTMLTableRowElement, r: BoardRow, side: Side) {
    const s = r.traffic && r.traffic[side]
    cell(tr, 'num ' + side + '-rps', s ? rate(s.rps) : '…')
    cell(tr, 'num ' + side + '-err' + (s && (s.errorRate ?? 0) > 0 ? ' bad' : ''), s ? percent(s.errorRate) : '…')
    cell(tr, 'num ' + side + '-p99', s ? latency(s.p99) : '…')
    if (side === 'new') cell(tr, 'num new-fallback' + (s && (s.fallbackRate ?? 0) > 0 ? ' warn' : ''), s ? percent(s.fallbackRate) : '…')
  }

  function button (action: ActionKind, text: string, disabled: boolean, title: string) {
    const b = el('button', '', text)
    b.type = 'button'
    b.dataset.action = action
    b.disabled = disabled
    if (title) b.title = title
    return b
  }

  function row (r: BoardRow) {
    const tr = el('tr', r.guard && r.guard.tripped ? 'tripped' : '')
    tr.dataset.context = r.name
    const context: Line[] = [[r.name, 'name'], [r.legacy + ' → ' + r.new, 'muted small']]
    if (r.segments) {
      context.push(r.segments.inForce ? ['segments, before the weight:', 'small'] : ['segments off: rolled back', 'warn small'])
      r.segments.pins.forEach(function (p) { context.push([p, 'muted small segment']) })
    }
    lines(cell(tr, 'context'), context)
    cell(tr, 'stage').appendChild(el('span', 'badge stage-' + r.stage, r.stageLabel))
    const w = cell(tr, 'num weight')
    w.appendChild(el('strong', 'effective', r.effectiveWeight + '%'))
    w.appendChild(el('span', 'muted configured', ' (' + r.configuredWeight + '%)'))
    sideCells(tr, r, 'legacy')
    sideCells(tr, r, 'new')
    const sh = r.shadow
    lines(cell(tr, 'shadow'), sh === null
      ? [['—', 'muted']]
      : ([
          [sh.matchRate === null ? 'nothing compared yet' : percent(sh.matchRate * 100) + ' of ' + sh.compared, sh.matchRate !== null && sh.matchRate < 0.99 ? 'warn' : ''],
          sh.noisyRate ? [percent(sh.noisyRate * 100) + ' noisy: legacy varies', 'warn small'] : null,
          [sh.percent + '% mirrored' + (sh.over === 'since start' ? ', since start' : ''), 'muted small']
        ] as Array<Line | null>).filter((l): l is Line => Boolean(l)))
    const o = r.override
    lines(cell(tr, 'override'), o === null
      ? [['—', 'muted']]
      : [
          [(o.weight === 0 ? 'rolled back' : 'weight ' + o.weight + '%') + ' by ' + o.by, 'warn'],
          [o.reason, 'small reason'],
          [o.expiresAt === null ? 'no expiry' : 'expires ' + until(o.expiresAt) + ' (' + clock(o.expiresAt) + ')', 'muted small']
        ])
    const safety: Line[] = []
    if (r.guard) {
      safety.push(r.guard.tripped ? ['guard TRIPPED', 'bad'] : ['guard holding', 'good'])
      if (r.guard.new.requests > 0) safety.push(['new ' + percent(r.guard.new.errorRate) + ' 5xx or fallback vs legacy ' + percent(r.guard.legacy.errorRate), 'muted small'])
    }
    if (r.ramp) safety.push(r.ramp.running ? ['ramp step ' + r.ramp.step + '/' + r.ramp.of + (r.ramp.nextAt ? ', next ' + clock(r.ramp.nextAt) : ', last step'), ''] : ['ramp stopped by an override', 'warn'])
    lines(cell(tr, 'safety'), safety.length === 0 ? [['—', 'muted']] : safety)
    const actions = cell(tr, 'actions')
    actions.appendChild(button('rollback', 'Roll back', r.effectiveWeight === 0 || r.stage === 'retired', r.stage === 'retired' ? 'Legacy and new are the same upstream: nothing to roll back to' : 'All of ' + r.name + ' to legacy'))
    actions.appendChild(button('weight', 'Weight…', false, 'Set the weight of ' + r.name))
    actions.appendChild(button('clear', 'Clear override', r.override === null, 'Back to the configured ' + r.configuredWeight + '%'))
    return tr
  }

  function renderSummary (d: BoardData) {
    const c = d.config
    $('config').textContent = 'config ' + c.hash + ' · loaded ' + clock(c.loadedAt) + ' · last reload ' +
      (c.lastReload === 'ok' ? 'ok' : 'REJECTED: ' + c.errors[0] + (c.errors.length > 1 ? ' (and ' + (c.errors.length - 1) + ' more)' : '') + '; the config above keeps serving') +
      ' · reloads ' + c.reloads.success + ' ok, ' + c.reloads.failure + ' rejected' +
      d.dormantOverrides.map(function (o) { return ' · dormant override of ' + o.context + ': ' + o.weight + '% (' + o.reason + ', by ' + o.by + '), applies again if it comes back with the same YAML' }).join('')
    $('config').className = c.lastReload === 'ok' ? (d.dormantOverrides.length === 0 ? 'muted' : 'warn') : 'bad'
    const t = d.traffic
    if (t !== null && t.newShare !== null) {
      $('share').textContent = percent(t.newShare)
      $('share-text').textContent = 'of all traffic served by new services: ' + rate(t.newRps) + ' of ' + rate(t.rps) + ' req/s over the last ' + Math.round(d.window ?? 0) + ' s (' + rate(t.unmatchedRps) + ' req/s matched no context)'
    } else {
      $('share').textContent = percent(d.meanWeight)
      $('share-text').textContent = (t === null ? 'measuring traffic…' : 'no traffic in the last ' + Math.round(d.window ?? 0) + ' s') + ' · mean weight to new across ' + d.contexts.length + ' contexts'
    }
    const stages = $('stages')
    stages.textContent = '';
    (Object.keys(STAGE_NAMES) as Stage[]).forEach(function (s) {
      const b = el('button', 'badge stage-' + s, STAGE_NAMES[s] + ' ' + d.stages[s])
      b.type = 'button'
      b.dataset.stage = s
      b.setAttribute('aria-pressed', String(state.stage === s))
      stages.appendChild(b)
    })
    $('footnote').textContent = 'Live numbers: ' + (d.window === null ? 'from the next refresh' : 'the last ' + Math.round(d.window) + ' s') +
      ', refreshed every ' + EVERY_MS / 1000 + ' s. p99 is interpolated within the latency histogram’s buckets. A request new failed and legacy answered (fallback) counts in legacy’s req/s and in new’s fallback, not in new’s 5xx; the guard counts it as an error of new. Shadow match: answers verified equal, over the last 1,000 comparisons; noisy ones count against it.'
  }

  function render () {
    const d = state.data
    if (d === null) return
    renderSummary(d)
    const rows = visibleRows()
    const body = document.createDocumentFragment()
    rows.forEach(function (r) { body.appendChild(row(r)) })
    $('rows').replaceChildren(body)
    $('shown').textContent = rows.length === d.contexts.length ? d.contexts.length + ' contexts' : rows.length + ' of ' + d.contexts.length + ' contexts'
    document.querySelectorAll<HTMLElement>('th[data-sort]').forEach(function (th) {
      th.setAttribute('aria-sort', th.dataset.sort === state.sort.key ? (state.sort.dir === 1 ? 'ascending' : 'descending') : 'none')
    })
  }

  async function refresh () {
    clearTimeout(state.timer)
    try {
      const res = await fetch('/board/data', { headers: headers(false), cache: 'no-store' })
      const body = await res.json().catch(function () { return {} }) as BoardData & Answer
      if (res.status === 401) lock(token() === '' ? 'This board needs the admin token (server.boardAuth is on): enter it above.' : 'The admin token was refused: ' + body.message)
      else if (!res.ok) lock('The admin API answered ' + res.status + ': ' + (body.message || 'no message'))
      else {
        unlock()
        if ($('message').dataset.offline === '1') { say(''); $('message').dataset.offline = '' }
        state.data = body
        render()
      }
    } catch {
      say('The admin API cannot be reached; retrying every ' + EVERY_MS / 1000 + ' s.', 'bad')
      $('message').dataset.offline = '1'
    }
    state.timer = setTimeout(refresh, EVERY_MS)
  }

  const ACTIONS: Record<ActionKind, { title: string; ok: string; reason: string; method: string; path: string }> = {
    rollback: { title: 'Roll back ', ok: 'Roll back', reason: 'rolled back from the board', method: 'POST', path: '/rollback' },
    weight: { title: 'Set the weight of ', ok: 'Set weight', reason: 'weight set from the board', method: 'PUT', path: '/weight' },
    clear: { title: 'Clear the override of ', ok: 'Clear override', reason: '', method: 'DELETE', path: '/override' }
  }

  // An empty or unreadable weight is NaN, never 0: it must not become a rollback.
  function target () {
    const p = state.pending as Pending
    const typed = $<HTMLInputElement>('confirm-weight').value.trim()
    return p.kind === 'rollback' ? 0 : p.kind === 'clear' ? p.configured : typed === '' ? NaN : Number(typed)
  }

  function describe () {
    const p = state.pending as Pending
    $('confirm-text').textContent = moveText(p.name, p.from, target(), p.rps)
  }

  function open (kind: ActionKind, name: string) {
    const r = (state.data as BoardData).contexts.find(function (c) { return c.name === name })
    if (r === undefined) return
    if (token() === '') {
      say('Enter the admin token above first: actions need it.', 'bad')
      $('token').focus()
      return
    }
    const a = ACTIONS[kind]
    state.pending = { kind: kind, name: r.name, from: r.effectiveWeight, configured: r.configuredWeight, rps: r.traffic ? r.traffic.legacy.rps + r.traffic.new.rps : null }
    $('confirm-title').textContent = a.title + r.name + '?'
    $('confirm-ok').textContent = a.ok
    $('confirm-weight-label').hidden = kind !== 'weight'
    $<HTMLInputElement>('confirm-weight').value = String(r.effectiveWeight)
    $<HTMLInputElement>('confirm-reason').value = a.reason;
    ($('confirm-reason').parentElement as HTMLElement).hidden = kind === 'clear'
    $('confirm-error').hidden = true
    describe()
    $<HTMLDialogElement>('confirm').showModal();
    (kind === 'weight' ? $('confirm-weight') : $('confirm-ok')).focus()
  }

  async function confirm () {
    const p = state.pending as Pending
    const a = ACTIONS[p.kind]
    const to = target()
    if (!(to >= 0 && to <= 100)) {
      $('confirm-error').textContent = 'Enter a weight from 0 to 100.'
      $('confirm-error').hidden = false
      return
    }
    const body = p.kind === 'clear' ? undefined : JSON.stringify(p.kind === 'weight' ? { weight: to, reason: $<HTMLInputElement>('confirm-reason').value } : { reason: $<HTMLInputElement>('confirm-reason').value })
    $<HTMLButtonElement>('confirm-ok').disabled = true
    try {
      const res = await fetch('/contexts/' + encodeURIComponent(p.name) + a.path, { method: a.method, headers: headers(body !== undefined), body: body })
      const answer = await res.json().catch(function () { return {} }) as Answer
      if (!res.ok) {
        const text = res.status === 401 ? 'The admin token was refused: ' + answer.message : res.status + ' ' + (answer.code || '') + ': ' + (answer.message || 'no message')
        $('confirm-error').textContent = text
        $('confirm-error').hidden = false
        say(text, 'bad')
        return
      }
      $<HTMLDialogElement>('confirm').close()
      say(p.name + ': weight to new ' + p.from + '% → ' + answer.effectiveWeight + '%' + (answer.warning ? '. Warning: ' + answer.warning : ''), answer.warning ? 'bad' : '')
      await refresh()
    } catch {
      $('confirm-error').textContent = 'The admin API cannot be reached: nothing was changed by this page.'
      $('confirm-error').hidden = false
    } finally {
      $<HTMLButtonElement>('confirm-ok').disabled = false
    }
  }

  document.addEventListener('DOMContentLoaded', function () {
    showTokenState()
    $('token-form').addEventListener('submit', function (e) {
      e.preventDefault()
      const value = $<HTMLInputElement>('token').value.trim()
      if (value === '') return
      sessionStorage.setItem(TOKEN_KEY, value)
      $<HTMLInputElement>('token').value = ''
      showTokenState()
      say('')
      refresh()
    })
    $('token-forget').addEventListener('click', function () {
      sessionStorage.removeItem(TOKEN_KEY)
      showTokenState()
      refresh()
    })
    $('search').addEventListener('input', function (e) { state.query = (e.target as HTMLInputElement).value; render() })
    $('stages').addEventListener('click', function (e) {
      const b = (e.target as Element).closest<HTMLElement>('button[data-stage]')
      if (!b) return
      state.stage = state.stage === b.dataset.stage ? null : b.dataset.stage as Stage
      render()
    });
    (document.querySelector('thead') as HTMLTableSectionElement).addEventListener('click', function (e) {
      const th = (e.target as Element).closest<HTMLElement>('th[data-sort]')
      if (!th) return
      state.sort = { key: th.dataset.sort as SortKey, dir: state.sort.key === th.dataset.sort ? -state.sort.dir : 1 }
      render()
    })
    $('rows').addEventListener('click', function (e) {
      const b = (e.target as Element).closest<HTMLElement>('button[data-action]')
      if (b) open(b.dataset.action as ActionKind, (b.closest('tr') as HTMLTableRowElement).dataset.context as string)
    })
    $('confirm-weight').addEventListener('input', describe)
    $('confirm-cancel').addEventListener('click', function () { $<HTMLDialogElement>('confirm').close() })
    $('confirm-ok').addEventListener('click', confirm)
    refresh()
  })
})()
