package handlers

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/replyrocket/replyrocket/internal/monitor"
	"github.com/replyrocket/replyrocket/internal/monitor/sqlguard"
)

// withMonitor wires the monitor into the router as cmd/replyrocket does.
func withMonitor(t *testing.T, cfg monitor.Config, out **monitor.Monitor) envOpt {
	return func(d *Deps) {
		if cfg.SnapshotInterval == 0 {
			cfg.SnapshotInterval = time.Hour
		}
		m := monitor.New(d.Pool, cfg, monitor.Sources{})
		t.Cleanup(m.Close)
		d.Monitor = m
		if out != nil {
			*out = m
		}
	}
}

func TestMonitorRoutes(t *testing.T) {
	t.Parallel()
	var m *monitor.Monitor
	e := newEnv(t, withMonitor(t, monitor.Config{}, &m))
	_, userKey := e.user()
	key := userKey
	e.campaign(key, 20)
	if _, err := e.pool.Exec(context.Background(), "ANALYZE"); err != nil {
		t.Fatal(err)
	}

	t.Run("admin key required", func(t *testing.T) {
		for _, path := range []string{"/db-monitor/performance", "/db-monitor/slow-queries", "/db-monitor/table-stats/emails"} {
			e.do("GET", path, "", nil).want(401).problem()
			e.do("GET", path, userKey, nil).want(401).problem()
		}
		e.do("POST", "/db-monitor/analyze-query", "", map[string]any{"sql": "SELECT 1"}).want(401).problem()
	})

	t.Run("performance", func(t *testing.T) {
		var p monitor.Performance
		e.do("GET", "/db-monitor/performance", testAdminKey, nil).want(200).json(&p)
		if len(p.Checks) < 10 || p.Links["health"] != "/health/db" || p.Pool.MaxConns == 0 {
			t.Errorf("performance: %d checks, links %v, pool %+v", len(p.Checks), p.Links, p.Pool)
		}
	})

	t.Run("slow queries", func(t *testing.T) {
		var s monitor.SlowQueries
		e.do("GET", "/db-monitor/slow-queries?window=1h", testAdminKey, nil).want(200).json(&s)
		if !s.PgStatStatements.Available || s.Window == nil || s.Window.Requested != "1h0m0s" {
			t.Errorf("slow queries: %+v window %+v", s.PgStatStatements, s.Window)
		}
		for _, bad := range []string{"soon", "-1h", "9999h"} {
			p := e.do("GET", "/db-monitor/slow-queries?window="+bad, testAdminKey, nil).want(400).problem()
			if len(p.Errors) != 1 || p.Errors[0].Field != "window" {
				t.Errorf("window=%s: %+v", bad, p)
			}
		}
	})

	t.Run("analyze query", func(t *testing.T) {
		var a monitor.Analysis
		e.do("POST", "/db-monitor/analyze-query", testAdminKey, map[string]any{"sql": "SELECT id FROM emails WHERE recipient = $1", "params": []any{"lead1@example.com"}}).want(200).json(&a)
		if len(a.Plan) == 0 || a.TotalCost <= 0 {
			t.Errorf("analysis %+v", a)
		}
		p := e.do("POST", "/db-monitor/analyze-query", testAdminKey, map[string]any{"sql": "DELETE FROM emails"}).want(400).problem()
		if p.Detail != sqlguard.ErrNotSelect.Error() {
			t.Errorf("detail %q, want the guard's fixed reason", p.Detail)
		}
		p = e.do("POST", "/db-monitor/analyze-query", testAdminKey, map[string]any{"sql": "SELECT pg_sleep(60)"}).want(400).problem()
		if p.Detail != sqlguard.ErrDeniedFunction.Error() {
			t.Errorf("detail %q", p.Detail)
		}
		e.do("POST", "/db-monitor/analyze-query", testAdminKey, map[string]any{"sql": "SELECT 1", "analyze": true}).want(403).problem()
		e.do("POST", "/db-monitor/analyze-query", testAdminKey, map[string]any{"sql": "SELECT 1", "explain": true}).want(400).problem()
		e.do("POST", "/db-monitor/analyze-query", testAdminKey, map[string]any{}).want(400).problem()
		// The database's own message would quote the value; the client gets
		// a fixed text and the SQLSTATE only.
		r := e.do("POST", "/db-monitor/analyze-query", testAdminKey, map[string]any{"sql": "SELECT 'secret-value-42'::int"}).want(400)
		p = r.problem()
		if strings.Contains(r.Body.String(), "secret-value-42") || !strings.Contains(p.Detail, "22P02") {
			t.Errorf("error leaks database text or lacks the SQLSTATE: %s", r.Body)
		}
	})

	t.Run("optimize query", func(t *testing.T) {
		var o monitor.Optimization
		e.do("POST", "/db-monitor/optimize-query", testAdminKey, map[string]any{"sql": "SELECT id FROM emails WHERE recipient = 'x'"}).want(200).json(&o)
		if o.Method == "" || o.Note == "" || len(o.Candidates) == 0 {
			t.Errorf("optimization %+v", o)
		}
		e.do("POST", "/db-monitor/optimize-query", testAdminKey, map[string]any{"sql": "UPDATE emails SET body = ''"}).want(400).problem()
	})

	t.Run("table stats", func(t *testing.T) {
		var ts monitor.TableStat
		e.do("GET", "/db-monitor/table-stats/emails", testAdminKey, nil).want(200).json(&ts)
		if ts.Kind != "partitioned table" || len(ts.Partitions) < 2 {
			t.Errorf("emails: kind %q, %d partitions", ts.Kind, len(ts.Partitions))
		}
		e.do("GET", "/db-monitor/table-stats/no_such_table", testAdminKey, nil).want(404).problem()
		e.do("GET", "/db-monitor/table-stats/users%3B%20DROP%20TABLE%20users", testAdminKey, nil).want(404).problem()
		e.do("GET", "/db-monitor/table-stats/users", testAdminKey, nil).want(200)
	})

	t.Run("dashboard page needs no key", func(t *testing.T) {
		r := e.do("GET", "/db-monitor/", "", nil).want(200)
		if ct := r.Header().Get(echo.HeaderContentType); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("content type %q", ct)
		}
		if csp := r.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'sha256-") {
			t.Errorf("CSP %q", csp)
		}
		if strings.Contains(r.Body.String(), "/*SCRIPT*/") || !strings.Contains(r.Body.String(), "drawChart") {
			t.Error("the page's script was not inlined")
		}
	})
}
