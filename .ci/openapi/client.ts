// A typed client of the API, type-checked against the OpenAPI document in
// CI (lint.sh): openapi-typescript turns the document into ./gen/api.d.ts
// and this file must compile against it. It fails when the document loses
// a route, a field, a required marker or an enum a client relies on.
import createClient from "openapi-fetch";
import type { paths, components } from "./gen/api";

type Campaign = components["schemas"]["Campaign"];
type Problem = components["schemas"]["Problem"];

export async function walk(baseUrl: string, key: string, adminKey: string): Promise<void> {
  const api = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${key}` } });

  const me = await api.GET("/api/v1/me");
  if (me.data) {
    const id: string = me.data.id;
    const active: boolean = me.data.is_active;
    void id, active;
  }

  const created = await api.POST("/api/v1/campaigns", {
    body: { name: "Q1 founders", status: "active", emails: [{ recipient: "ada@acme.io", subject: "Hi", body: "Hello Ada" }] },
  });
  if (created.error) {
    const p: Problem = created.error;
    const fields: string[] = (p.errors ?? []).map((e) => e.field);
    void fields;
    return;
  }
  const c: Campaign = created.data;
  const status: "draft" | "active" | "paused" | "completed" = c.status;
  void status;

  // @ts-expect-error: the status is the schema's enum, not any string.
  await api.PATCH("/api/v1/campaigns/{id}", { params: { path: { id: c.id } }, body: { status: "shouting" } });

  const page = await api.GET("/api/v1/campaigns", { params: { query: { limit: 5 } } });
  const next: string | null | undefined = page.data?.next_cursor;
  void next;

  const summary = await api.GET("/api/v1/campaigns/{id}/summary", { params: { path: { id: c.id } } });
  const rate: number | undefined = summary.data?.open_rate;
  void rate;

  const days = await api.GET("/api/v1/campaigns/{id}/daily-stats", { params: { path: { id: c.id }, query: { days: 7 } } });
  const counts: number[] = (days.data ?? []).map((d) => d.count);
  void counts;

  const emails = await api.GET("/api/v1/campaigns/{id}/emails", { params: { path: { id: c.id } } });
  const first = emails.data?.items?.[0];
  if (first) {
    const opened = await api.POST("/api/v1/emails/{id}/opened", { params: { path: { id: first.id } } });
    const at: string | null | undefined = opened.data?.opened_at;
    void at;
  }

  const admin = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${adminKey}` } });
  const user = await admin.POST("/api/v1/users", { body: { email: "grace@example.com", name: "Grace" } });
  const shownOnce: string | undefined = user.data?.api_key.key;
  void shownOnce;

  // The monitor's responses are typed field by field (internal/monitor,
  // internal/cache): a renamed or dropped field breaks this.
  const perf = await admin.GET("/db-monitor/performance");
  const checks: { name: string; status: string; message: string }[] = perf.data?.checks ?? [];
  const database: string | undefined = perf.data?.database;
  void checks, database;

  const slow = await admin.GET("/db-monitor/slow-queries", { params: { query: { window: "1h" } } });
  const p99s: number[] = (slow.data?.app_queries ?? []).map((q) => q.p99_ms);
  const enabled: boolean | undefined = slow.data?.pg_stat_statements.available;
  void p99s, enabled;

  const analysis = await admin.POST("/db-monitor/analyze-query", { body: { sql: "SELECT 1" } });
  const advice: string[] = (analysis.data?.recommendations ?? []).map((r) => r.message);
  void advice;

  const optimized = await admin.POST("/db-monitor/optimize-query", { body: { sql: "SELECT 1" } });
  const statements: string[] = (optimized.data?.suggestions ?? []).flatMap((s) => s.statements ?? []);
  void statements;

  const table = await admin.GET("/db-monitor/table-stats/{table_name}", { params: { path: { table_name: "emails" } } });
  const indexes: string[] = (table.data?.indexes ?? []).map((i) => i.name);
  void indexes;

  const cached = await admin.GET("/db-monitor/cache");
  const hitRate: number | undefined = cached.data?.hit_rate;
  const perQuery: string[] = (cached.data?.queries ?? []).map((q) => q.name);
  void hitRate, perQuery;

  const health = await api.GET("/health/db");
  const up: "ok" | "degraded" | "unavailable" | undefined = health.data?.status;
  void up;
}
