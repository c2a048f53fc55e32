// The status page's data layer: reads the Worker's read routes with the signed-in key and
// turns the answers into the model the page draws. Nothing here touches the DOM, and nothing
// reads a token: /v1/tokens lists metadata only, and /v1/tokens/{account} is never called.
//
// Sources today: /v1/status (counts, last sync), /v1/tokens (every token's metadata, paged)
// and /v1/runs (recent runs). A health-per-account route would replace listTokens() and
// accountFrom() only; the rest of the page reads the model.

/** Renewal starts this long before expiry unless the Worker says otherwise (RENEW_BEFORE_MINUTES). */
export const DEFAULT_RENEW_BEFORE_SECONDS = 15 * 60;
/** Status's "expiring soon" window unless the Worker says otherwise (EXPIRING_SOON_MINUTES). */
export const DEFAULT_EXPIRING_WITHIN_SECONDS = 10 * 60;
/** How many runs the page asks for. */
export const RUNS_SHOWN = 20;

const LIST_PAGE = 1000;
const LIST_MAX_PAGES = 20;

/** An answer of the API that is not a success, with the API's own code and message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** GETs `path` as JSON with the key as a bearer key; throws ApiError on anything but 2xx. */
export async function getJson(path, key) {
  let response;
  try {
    response = await fetch(path, {
      headers: { Authorization: `Bearer ${key}`, Accept: "application/json" },
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
  } catch (e) {
    throw new ApiError(0, "network", `the Worker did not answer (${e.message})`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON: reported below.
  }
  if (!response.ok) {
    throw new ApiError(
      response.status,
      body?.error?.code ?? `http_${response.status}`,
      body?.error?.message ?? `HTTP ${response.status} from ${path}`,
    );
  }
  if (body === null) {
    throw new ApiError(response.status, "not_json", `${path} did not answer JSON`);
  }
  return body;
}

/** Every token's metadata, following pages of /v1/tokens. */
async function listTokens(key) {
  const tokens = [];
  for (let page = 0; page < LIST_MAX_PAGES; page++) {
    const answer = await getJson(`/v1/tokens?limit=${LIST_PAGE}&offset=${page * LIST_PAGE}`, key);
    tokens.push(...answer.tokens);
    if (answer.tokens.length < LIST_PAGE || tokens.length >= answer.count) break;
  }
  return tokens;
}

const date = (value) => (value ? new Date(value) : null);

/** One account of the timeline, from a /v1/tokens row. */
function accountFrom(row) {
  return {
    name: row.account_name,
    main: row.main_account,
    active: row.is_active,
    expiresAt: date(row.expires_at),
    // The current token was stored (or last changed) then: the start of its bar.
    since: date(row.updated_at),
    lastSyncedAt: date(row.last_synced_at),
  };
}

function runFrom(row) {
  return {
    ...row,
    startedAt: date(row.started_at),
    finishedAt: date(row.finished_at),
  };
}

/**
 * Reads everything the page shows. Throws the ApiError of a 401 (the key is not accepted);
 * any other failure of a source is kept in `errors` and its part of the model is null.
 */
export async function loadModel(key) {
  const sources = [
    ["/v1/status", getJson("/v1/status", key)],
    ["/v1/tokens", listTokens(key)],
    ["/v1/runs", getJson(`/v1/runs?limit=${RUNS_SHOWN}`, key)],
  ];
  const results = await Promise.allSettled(sources.map(([, promise]) => promise));
  const refused = results.find((r) => r.status === "rejected" && r.reason?.status === 401);
  if (refused) throw refused.reason;
  const value = (i) => (results[i].status === "fulfilled" ? results[i].value : null);
  const errors = results.flatMap((r, i) =>
    r.status === "rejected" ? [{ source: sources[i][0], error: r.reason }] : [],
  );
  const status = value(0);
  const tokens = value(1);
  const runs = value(2);
  return {
    loadedAt: new Date(),
    status,
    accounts: tokens ? tokens.map(accountFrom) : null,
    runs: runs ? runs.runs.map(runFrom) : null,
    expiringWithinSeconds: status?.expiring_within_seconds ?? DEFAULT_EXPIRING_WITHIN_SECONDS,
    renewBeforeSeconds: status?.renew_before_seconds ?? DEFAULT_RENEW_BEFORE_SECONDS,
    errors,
  };
}

/** The states an account can be in, worst first, with the words the page shows for each. */
export const STATES = {
  expired: { label: "expired", rank: 0 },
  inactive: { label: "inactive", rank: 1 },
  soon: { label: "expiring soon", rank: 2 },
  renewal: { label: "renewal window", rank: 3 },
  unknown: { label: "expiry unknown", rank: 4 },
  active: { label: "active", rank: 5 },
};

/** The state of `account` at `now`: inactive, expired, expiring soon, in its renewal window, or active. */
export function stateOf(account, now, model) {
  if (!account.active) return "inactive";
  if (!account.expiresAt) return "unknown";
  const left = (account.expiresAt - now) / 1000;
  if (left <= 0) return "expired";
  if (left <= model.expiringWithinSeconds) return "soon";
  if (left <= model.renewBeforeSeconds) return "renewal";
  return "active";
}

/**
 * Accounts grouped by main account (sorted by name): the main account's own token first
 * (`own`, null when it has none), then its sub-accounts by name.
 */
export function groupAccounts(accounts) {
  const groups = new Map();
  for (const account of accounts) {
    if (!groups.has(account.main)) groups.set(account.main, { main: account.main, own: null, subs: [] });
    const group = groups.get(account.main);
    if (account.name === account.main) group.own = account;
    else group.subs.push(account);
  }
  const byName = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
  const sorted = [...groups.values()].sort((a, b) => byName(a.main, b.main));
  for (const group of sorted) group.subs.sort((a, b) => byName(a.name, b.name));
  return sorted;
}

/** The most recent failed run and whether a later run of the same kind succeeded. */
export function lastFailure(runs) {
  const index = runs.findIndex((r) => r.status === "failed");
  if (index < 0) return null;
  const run = runs[index];
  const recovered = runs.slice(0, index).find((r) => r.kind === run.kind && r.status === "succeeded");
  return { run, recoveredBy: recovered ?? null };
}
