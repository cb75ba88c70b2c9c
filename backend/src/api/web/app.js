// The self-service page of smimea-api: every answer comes from the API (/api/v1), with the
// token the person signed in with. Text from the server or a certificate is only ever set as
// textContent, never parsed as HTML. The token lives in this tab's session storage.
'use strict';

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = 'smimea-token';
const state = { token: null, scope: null, inspected: [], timer: null, autoAddress: true };

// --- talking to the API ---

function explain(status, message) {
  switch (status) {
    case 401: return 'This token is not valid (unknown, expired or removed). Sign in again.';
    case 403: return 'Your token may not do this: ' + (message || 'outside its scope') + '.';
    case 413: return 'This is too large to be a certificate.';
    case 422: return 'The certificate was refused: ' + message + '.';
    case 429: return 'Too many requests: wait a moment and try again.';
    case 503: return 'The server is busy: try again in a moment.';
    default: return message ? message + '.' : 'Something went wrong (HTTP ' + status + ').';
  }
}

async function api(method, path, body) {
  const headers = { Authorization: 'Bearer ' + state.token };
  const init = { method, headers, cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw Object.assign(new Error('The server cannot be reached.'), { status: 0 });
  }
  let data = null;
  if (response.status !== 204) {
    try { data = await response.json(); } catch (e) { data = null; }
  }
  if (!response.ok) {
    throw Object.assign(new Error(explain(response.status, data && data.error)),
                        { status: response.status });
  }
  return data;
}

// --- showing things ---

function setStatus(text, kind) {
  const status = $('status');
  status.textContent = text;
  status.className = kind || '';
}

function fieldError(id, text) {
  const input = $(id);
  let error = $(id + '-error');
  if (!error) {
    error = document.createElement('p');
    error.id = id + '-error';
    error.className = 'field-error';
    input.insertAdjacentElement('afterend', error);
  }
  error.textContent = text || '';
  if (text) input.setAttribute('aria-describedby', error.id);
  else input.removeAttribute('aria-describedby');
  input.setAttribute('aria-invalid', text ? 'true' : 'false');
}

function fact(list, name, value) {
  const dt = document.createElement('dt');
  dt.textContent = name;
  const dd = document.createElement('dd');
  dd.textContent = value;
  list.append(dt, dd);
}

function describeScope(t) {
  let text = 'Signed in with token ' + t.name + '. ';
  if (t.admin) text += 'It may publish in every zone.';
  else {
    const parts = [];
    if (t.zones.length) parts.push('addresses in ' + t.zones.join(', '));
    if (t.addresses.length) parts.push(t.addresses.join(', '));
    text += 'It may publish for ' + parts.join(' and ') + '.';
  }
  if (t.read_only) text += ' It is read-only: you can check a certificate, not publish it.';
  if (t.expires) text += ' It expires on ' + t.expires.replace('T', ' ').replace('Z', ' UTC') + '.';
  return text;
}

function clearCheck() {
  $('check').hidden = true;
  $('owner-name').textContent = '';
  $('records').textContent = '';
  $('warnings').replaceChildren();
  $('publish').disabled = true;
}

// --- signing in ---

async function signIn(token) {
  state.token = token;
  try {
    state.scope = await api('GET', '/api/v1/token');
  } catch (e) {
    state.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    fieldError('token', e.message);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  fieldError('token', '');
  $('token').value = '';
  $('signin-form').hidden = true;
  $('scope').textContent = describeScope(state.scope);
  $('whoami').hidden = false;
  $('give').hidden = false;
  if (state.scope.addresses.length === 1 && !state.scope.zones.length && !state.scope.admin) {
    $('address').value = state.scope.addresses[0];
  }
  await loadPublished();
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  location.reload();
}

// --- the certificate ---

function bytesToBase64(bytes) {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

async function readFile(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  const textual = /-----BEGIN |^[A-Za-z-]+:/m.test(text.slice(0, 4096)) &&
                  !text.slice(0, 4096).includes('\ufffd');
  $('certificate').value = textual ? text : bytesToBase64(bytes);
  await inspect();
}

function suggestAddress(emails) {
  if (!state.autoAddress && $('address').value) return;
  const mine = (state.scope.addresses || []).map((a) => a.toLowerCase());
  const choice = emails.find((e) => mine.includes(e.toLowerCase())) || emails[0];
  if (choice) $('address').value = choice;
}

async function inspect() {
  const text = $('certificate').value.trim();
  $('details').hidden = true;
  clearCheck();
  setStatus('');  // a confirmation or error about the previous certificate no longer applies
  if (!text) { fieldError('certificate', ''); return; }
  let result;
  try {
    result = await api('POST', '/api/v1/inspect', { certificate: text });
  } catch (e) {
    fieldError('certificate', e.message);
    return;
  }
  fieldError('certificate', '');
  state.inspected = result.certificates;
  const leaf = state.inspected.find((c) => !c.ca) || state.inspected[0];
  const facts = $('facts');
  facts.replaceChildren();
  fact(facts, 'Subject', leaf.subject);
  fact(facts, 'Issuer', leaf.issuer);
  fact(facts, 'Valid from', leaf.not_before.replace('T', ' ').replace('Z', ' UTC'));
  fact(facts, 'Valid until', leaf.not_after.replace('T', ' ').replace('Z', ' UTC') +
                             (leaf.expired ? ' (expired)' : ''));
  fact(facts, 'Addresses', leaf.emails.length ? leaf.emails.join(', ') : 'none');
  if (state.inspected.length > 1) fact(facts, 'Certificates', String(state.inspected.length));
  $('details').hidden = false;
  suggestAddress(leaf.emails);
  await preview();
}

function request(allowExpired) {
  const body = { address: $('address').value.trim(), certificate: $('certificate').value.trim() };
  const records = [...document.querySelectorAll('input[name="record"]:checked')].map((r) => r.value);
  if (records.length) body.records = records;
  const ttl = $('ttl').value.trim();
  if (ttl !== '') body.ttl = Number(ttl);
  if (allowExpired) body.allow_expired = true;
  return body;
}

async function preview() {
  clearCheck();
  const body = request(true);
  if (!body.certificate || !state.inspected.length) return;
  if (!body.address) { fieldError('address', 'Give the email address to publish it for.'); return; }
  fieldError('address', '');
  let result;
  try {
    result = await api('POST', '/api/v1/preview', body);
  } catch (e) {
    fieldError(e.status === 422 ? 'certificate' : 'address', e.message);
    return;
  }
  const warnings = $('warnings');
  const expired = state.inspected.some((c) => !c.ca && c.expired);
  if (expired) {
    const li = document.createElement('li');
    li.textContent = 'This certificate has expired: senders will not use it. Publish a current one.';
    warnings.append(li);
  }
  for (const w of result.warnings) {
    const li = document.createElement('li');
    li.textContent = w.replace(/; --[a-z-]+ publishes it anyway/, '');
    warnings.append(li);
  }
  const owners = [...new Set(result.records.map((r) => r.owner))];
  $('owner-name').textContent = owners.join('\n');
  $('records').textContent = result.records.map((r) =>
    [r.owner, r.ttl, 'IN SMIMEA', r.usage, r.selector, r.matching_type, r.data].join(' ')).join('\n');
  $('anyway-label').hidden = !expired;
  $('anyway').checked = false;
  $('check').hidden = false;
  $('publish').disabled = state.scope.read_only || expired;
}

async function publish() {
  const expired = state.inspected.some((c) => !c.ca && c.expired);
  $('publish').disabled = true;
  let result;
  try {
    result = await api('POST', '/api/v1/certificates', request(expired && $('anyway').checked));
  } catch (e) {
    setStatus(e.message, 'error');
    $('publish').disabled = false;
    return;
  }
  const n = result.records.length;
  setStatus(result.changed
    ? 'Published: ' + n + ' record' + (n === 1 ? '' : 's') + ' for ' + result.address +
      ' in zone ' + result.zone + '. Senders will find it within a few minutes.'
    : 'Already published for ' + result.address + ': nothing changed.', 'ok');
  await loadPublished();
}

// --- what is published ---

async function loadPublished() {
  let certs;
  try {
    certs = await api('GET', '/api/v1/certificates');
  } catch (e) {
    setStatus(e.message, 'error');
    return;
  }
  const rows = certs.map((c) => {
    const tr = document.createElement('tr');
    for (const text of [c.address, c.subject, c.not_after.slice(0, 10)]) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.append(td);
    }
    const td = document.createElement('td');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'secondary';
    button.textContent = 'Remove';
    button.setAttribute('aria-label', 'Remove the certificate of ' + c.address);
    button.disabled = state.scope.read_only;
    button.addEventListener('click', () => remove(c));
    td.append(button);
    tr.append(td);
    return tr;
  });
  $('published-list').replaceChildren(...rows);
  $('published').hidden = false;
}

async function remove(c) {
  if (!confirm('Remove the certificate "' + c.subject + '" of ' + c.address +
               ' from DNS? Senders will no longer find it.')) return;
  try {
    await api('DELETE', '/api/v1/certificates/' + c.sha256 + '?address=' +
                        encodeURIComponent(c.address));
  } catch (e) {
    setStatus(e.message, 'error');
    return;
  }
  setStatus('Removed the certificate of ' + c.address + '.', 'ok');
  await loadPublished();
}

// --- wiring ---

function later(fn) {
  clearTimeout(state.timer);
  state.timer = setTimeout(fn, 300);
}

document.addEventListener('DOMContentLoaded', () => {
  $('signin-form').addEventListener('submit', (e) => {
    e.preventDefault();
    signIn($('token').value.trim());
  });
  $('signout').addEventListener('click', signOut);
  $('certificate').addEventListener('input', () => later(inspect));
  $('file').addEventListener('change', (e) => {
    if (e.target.files.length) readFile(e.target.files[0]);
  });
  $('address').addEventListener('input', () => {
    state.autoAddress = false;
    later(preview);
  });
  $('ttl').addEventListener('input', () => later(preview));
  for (const box of document.querySelectorAll('input[name="record"]')) {
    box.addEventListener('change', preview);
  }
  $('anyway').addEventListener('change', () => {
    $('publish').disabled = state.scope.read_only || !$('anyway').checked;
  });
  $('publish').addEventListener('click', publish);
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) signIn(saved);
});
