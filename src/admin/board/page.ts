/**
 * The board's page and style. They hold no data (the script fetches it from
 * /board/data) and load nothing but /board.js and /board.css from the admin
 * port itself, so the page works offline and under `default-src 'none'`.
 */

export const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Migration board · strangler-proxy</title>
<link rel="stylesheet" href="/board.css">
<script src="/board.js" defer></script>
</head>
<body>
<header>
  <h1>Migration board</h1>
  <p id="config" class="muted">Loading…</p>
  <form id="token-form" autocomplete="off">
    <label for="token">Admin token</label>
    <input id="token" type="password" autocomplete="off" spellcheck="false">
    <button type="submit" id="token-use">Use token</button>
    <button type="button" id="token-forget">Forget</button>
    <span id="token-state" class="muted"></span>
  </form>
</header>
<p id="message" role="status" hidden></p>
<section id="lock" role="alert" hidden></section>
<main id="board">
  <section id="summary">
    <p class="share"><span id="share" class="big">…</span> <span id="share-text"></span></p>
    <div id="stages" role="group" aria-label="Filter by stage"></div>
  </section>
  <section id="controls">
    <input id="search" type="search" placeholder="Search contexts, stages, upstreams" aria-label="Search contexts">
    <span id="shown" class="muted"></span>
  </section>
  <table>
    <thead>
      <tr>
        <th rowspan="2" data-sort="name">Context</th>
        <th rowspan="2" data-sort="stage">Stage</th>
        <th rowspan="2" data-sort="weight">Weight to new<br><span class="muted">effective (config)</span></th>
        <th colspan="3" class="side">Legacy</th>
        <th colspan="4" class="side">New</th>
        <th rowspan="2" data-sort="shadow">Shadow match</th>
        <th rowspan="2">Override</th>
        <th rowspan="2">Guard · ramp</th>
        <th rowspan="2">Actions</th>
      </tr>
      <tr>
        <th data-sort="legacyRps">req/s</th><th data-sort="legacyErr">5xx</th><th data-sort="legacyP99">p99</th>
        <th data-sort="newRps">req/s</th><th data-sort="newErr">5xx</th><th data-sort="newP99">p99</th><th data-sort="newFallback" title="Requests sent to new that legacy answered instead (fallback)">fallback</th>
      </tr>
    </thead>
    <tbody id="rows"></tbody>
  </table>
  <p id="footnote" class="muted"></p>
</main>
<dialog id="confirm" aria-labelledby="confirm-title">
  <h2 id="confirm-title"></h2>
  <label id="confirm-weight-label" hidden>Weight to new (%) <input id="confirm-weight" type="number" min="0" max="100" step="0.01"></label>
  <p id="confirm-text"></p>
  <label>Reason <input id="confirm-reason" maxlength="500"></label>
  <p id="confirm-error" class="bad" role="alert" hidden></p>
  <div class="buttons">
    <button type="button" id="confirm-cancel">Cancel</button>
    <button type="button" id="confirm-ok" class="danger"></button>
  </div>
</dialog>
<noscript>The board needs JavaScript. Its script comes from this admin port; nothing is loaded from anywhere else.</noscript>
</body>
</html>
`

export const css = `:root {
  --fg: #1c2128; --muted: #5d6672; --line: #d9dee4; --bg: #ffffff; --head: #f3f5f7;
  --bad: #b42318; --warn: #9a6700; --good: #1a7f37;
  font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg);
}
body { margin: 0 1.5rem 2rem; }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: .5rem 1.5rem; padding: 1rem 0 .5rem; border-bottom: 1px solid var(--line); }
h1 { font-size: 1.3rem; margin: 0; }
h2 { font-size: 1.1rem; margin: 0 0 .75rem; }
.muted { color: var(--muted); }
.bad { color: var(--bad); }
.warn { color: var(--warn); }
#token-form { margin-left: auto; display: flex; gap: .4rem; align-items: center; }
input, button { font: inherit; }
input { padding: .2rem .4rem; border: 1px solid var(--line); border-radius: 4px; }
button { padding: .2rem .6rem; border: 1px solid #b8c0ca; border-radius: 4px; background: #f6f8fa; cursor: pointer; }
button:disabled { cursor: default; opacity: .45; }
button.danger { background: var(--bad); border-color: var(--bad); color: #fff; }
#message, #lock { margin: .75rem 0; padding: .5rem .75rem; border-radius: 4px; background: #eef6ff; }
#message.bad, #lock { background: #fdecea; color: var(--bad); }
body.locked #board { display: none; }
#summary { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 2rem; margin: 1rem 0 .5rem; }
.share { margin: 0; }
.big { font-size: 2rem; font-weight: 650; }
#stages { display: flex; gap: .4rem; flex-wrap: wrap; }
#stages button[aria-pressed="true"] { outline: 2px solid var(--fg); }
#controls { display: flex; gap: 1rem; align-items: center; margin: .5rem 0; }
#search { width: 22rem; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
thead th { position: sticky; background: var(--head); text-align: left; font-weight: 600; border-bottom: 1px solid var(--line); padding: .3rem .5rem; white-space: nowrap; }
thead tr:first-child th { top: 0; }
thead tr:nth-child(2) th { top: 1.9rem; }
th.side { text-align: center; }
th[data-sort] { cursor: pointer; }
th[aria-sort="ascending"]::after { content: " ▲"; }
th[aria-sort="descending"]::after { content: " ▼"; }
td { padding: .3rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
td.num { text-align: right; white-space: nowrap; }
tbody tr:hover { background: #f8fafc; }
tr.tripped { background: #fff4f2; }
.name { font-weight: 600; }
td.context { white-space: nowrap; }
.small { font-size: .85em; }
.badge { display: inline-block; padding: 0 .45rem; border-radius: 999px; font-size: .85em; white-space: nowrap; border: 1px solid transparent; }
.stage-legacy-only { background: #eceff2; color: #3d4651; }
.stage-shadowing { background: #efe9fb; color: #5b3a9c; }
.stage-ramping { background: #fff3d6; color: #7a5200; }
.stage-migrated { background: #dcf3e3; color: #17643a; }
.stage-retired { background: #17643a; color: #fff; }
.actions { white-space: nowrap; }
.actions button { margin-right: .25rem; }
dialog { border: 1px solid var(--line); border-radius: 6px; padding: 1.25rem; max-width: 32rem; }
dialog label { display: block; margin: .5rem 0; }
dialog input { width: 100%; box-sizing: border-box; margin-top: .2rem; }
dialog .buttons { display: flex; justify-content: flex-end; gap: .5rem; margin-top: 1rem; }
`
