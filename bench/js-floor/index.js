// The floor of a get under `wrangler dev`: a Worker in plain JavaScript that makes the one
// subrequest token-manager's get makes (POST /rpc/token_manager_get_recorded to PostgREST with
// the service-role key: the read and its audit row) and answers its body. No auth, no
// decryption, no logging: what is left is the runtime's own cost of one subrequest.
// scripts/bench.sh starts it beside the Worker.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/health") {
      return new Response('{"status":"ok"}', { headers: { "content-type": "application/json" } });
    }
    const account = url.searchParams.get("account");
    const answer = await fetch(`${env.SUPABASE_URL}/rpc/token_manager_get_recorded`, {
      method: "POST",
      headers: {
        apikey: env.SUPABASE_SERVICE_ROLE_KEY,
        authorization: `Bearer ${env.SUPABASE_SERVICE_ROLE_KEY}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({
        p_account: account,
        p_mains: null,
        p_now: new Date().toISOString(),
        p_read: { account_name: account, key_name: "bench-js-floor", outcome: 0 },
        p_durable: false,
      }),
    });
    return new Response(await answer.text(), {
      status: answer.status,
      headers: { "content-type": "application/json" },
    });
  },
};
