// The console: a hash router over five views, and the sign-in that keeps a token in this
// tab's sessionStorage. Every view reads the public API (see docs/console.md).

import { setToken, token, whenUnauthorized, getJson, ApiError } from './api.js';
import { route } from './dom.js';
import { scansView } from './scans.js';
import { scanView } from './scan.js';
import { subscriptionsView, subscriptionView } from './subscription.js';
import { complianceView } from './compliance.js';
import { operationsView } from './operations.js';

// What the Content-Security-Policy refused, for whoever looks (the browser tests do).
window.cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
});

const main = document.getElementById('main');
const signin = document.getElementById('signin');
const signout = document.getElementById('signout');

// Each render gets a signal that aborts when the page moves on (long-polls, timers).
let current = null;

const views = {
  scans: scansView,
  scan: scanView,
  subscriptions: subscriptionsView,
  subscription: subscriptionView,
  compliance: complianceView,
  operations: operationsView,
};

async function render() {
  if (current) current.abort();
  current = new AbortController();
  const { parts, query } = route();
  const name = parts[0] || 'scans';
  const view = views[name] || scansView;
  for (const a of document.querySelectorAll('#nav a')) {
    const active = a.dataset.view === name || (name === 'scan' && a.dataset.view === 'scans')
      || (name === 'subscription' && a.dataset.view === 'subscriptions');
    a.classList.toggle('active', active);
  }
  main.replaceChildren();
  main.dataset.view = name;
  try {
    await view(main, parts.slice(1), query, current.signal);
  } catch (e) {
    if (e.name === 'AbortError' || current.signal.aborted) return;
    if (e instanceof ApiError && e.status === 401) return; // the sign-in is showing
    console.error(e);
  }
}

function askForToken(message) {
  signin.hidden = false;
  main.hidden = true;
  document.getElementById('signin-error').textContent = message || '';
  document.getElementById('token').focus();
}

whenUnauthorized(() => {
  const had = token();
  setToken(null);
  askForToken(had ? 'The token was refused (unknown, revoked or mistyped).' : '');
});

document.getElementById('signin-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const input = document.getElementById('token');
  setToken(input.value);
  input.value = '';
  try {
    await getJson('/api/operations?limit=1');
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) {
      document.getElementById('signin-error').textContent = `The API answered ${e.status || e.message}.`;
    }
    return;
  }
  signin.hidden = true;
  main.hidden = false;
  signout.hidden = false;
  render();
});

signout.addEventListener('click', () => {
  setToken(null);
  signout.hidden = true;
  askForToken('Signed out.');
});

window.addEventListener('hashchange', render);

// Signed in already, or an API without authentication (`--no-auth`): go straight in.
(async () => {
  try {
    await getJson('/api/operations?limit=1');
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;
  }
  signout.hidden = !token();
  main.hidden = false;
  render();
})();
