package handlers

import (
	"compress/gzip"
	"context"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/replyrocket/replyrocket/db"
)

// TestEveryRouteSucceeds walks the API the way a client would.
func TestEveryRouteSucceeds(t *testing.T) {
	t.Parallel()
	forEachStore(t, testEveryRouteSucceeds)
}

func testEveryRouteSucceeds(t *testing.T, opts ...envOpt) {
	e := newEnv(t, opts...)
	u, key := e.user()

	var me userJSON
	e.do("GET", "/api/v1/me", key, nil).want(200).json(&me)
	if me.ID != u.ID || me.Email != u.Email {
		t.Fatalf("me = %+v, want %+v", me, u)
	}

	c := e.campaign(key, 3)
	if c.Name != "Launch" || c.Status != "active" {
		t.Fatalf("created %+v", c)
	}
	var got campaignJSON
	e.do("GET", "/api/v1/campaigns/"+c.ID.String(), key, nil).want(200).json(&got)
	if got != c {
		t.Fatalf("get = %+v, want %+v", got, c)
	}

	var patched campaignJSON
	e.do("PATCH", "/api/v1/campaigns/"+c.ID.String(), key, map[string]any{"status": "paused"}).want(200).json(&patched)
	if patched.Status != "paused" || patched.Name != "Launch" {
		t.Fatalf("patched = %+v", patched)
	}
	e.do("PATCH", "/api/v1/campaigns/"+c.ID.String(), key, map[string]any{"name": "Relaunch"}).want(200).json(&patched)
	if patched.Status != "paused" || patched.Name != "Relaunch" {
		t.Fatalf("patched = %+v", patched)
	}

	var list page[campaignJSON]
	e.do("GET", "/api/v1/campaigns", key, nil).want(200).json(&list)
	if len(list.Items) != 1 || list.Items[0].ID != c.ID || list.NextCursor != nil {
		t.Fatalf("list = %+v", list)
	}

	var ins map[string]int64
	e.do("POST", "/api/v1/campaigns/"+c.ID.String()+"/emails", key, map[string]any{"emails": sampleEmails(5)}).want(201).json(&ins)
	if ins["inserted"] != 5 {
		t.Fatalf("inserted = %v", ins)
	}

	var withStats page[campaignJSON]
	e.do("GET", "/api/v1/campaigns?include=stats", key, nil).want(200).json(&withStats)
	if len(withStats.Items) != 1 || withStats.Items[0].Stats == nil || withStats.Items[0].Stats.Total != 8 || withStats.Items[0].Name != "Relaunch" {
		t.Fatalf("list with stats = %+v", withStats)
	}
	if p := e.do("GET", "/api/v1/campaigns?include=everything", key, nil).want(400).problem(); len(p.Errors) != 1 || p.Errors[0].Field != "include" {
		t.Fatalf("bad include: %+v", p)
	}

	var emails page[emailJSON]
	e.do("GET", "/api/v1/campaigns/"+c.ID.String()+"/emails?limit=100", key, nil).want(200).json(&emails)
	if len(emails.Items) != 8 || emails.Items[0].Body != nil {
		t.Fatalf("emails = %d items (body %v)", len(emails.Items), emails.Items[0].Body)
	}
	id := emails.Items[0].ID.String()

	var em emailJSON
	e.do("GET", "/api/v1/emails/"+id, key, nil).want(200).json(&em)
	if em.Body == nil || *em.Body != "Hi!" || em.Subject != "Hello <there> & welcome" {
		t.Fatalf("email = %+v", em)
	}

	var opened, again emailJSON
	e.do("POST", "/api/v1/emails/"+id+"/opened", key, nil).want(200).json(&opened)
	if !opened.IsOpened || opened.OpenedAt == nil {
		t.Fatalf("opened = %+v", opened)
	}
	e.do("POST", "/api/v1/emails/"+id+"/opened", key, nil).want(200).json(&again)
	if !again.OpenedAt.Equal(*opened.OpenedAt) {
		t.Fatalf("a second open moved opened_at from %v to %v", opened.OpenedAt, again.OpenedAt)
	}
	var replied emailJSON
	e.do("POST", "/api/v1/emails/"+id+"/replied", key, nil).want(200).json(&replied)
	if !replied.IsReplied || replied.RepliedAt == nil || !replied.IsOpened {
		t.Fatalf("replied = %+v", replied)
	}
	e.do("POST", "/api/v1/emails/"+id+"/replied", key, nil).want(200).json(&again)
	if !again.RepliedAt.Equal(*replied.RepliedAt) {
		t.Fatal("a second reply moved replied_at")
	}

	var sum summaryJSON
	e.do("GET", "/api/v1/campaigns/"+c.ID.String()+"/summary", key, nil).want(200).json(&sum)
	if sum.Total != 8 || sum.Opened != 1 || sum.Replied != 1 || math.Abs(sum.OpenRate-0.125) > 1e-9 || math.Abs(sum.ReplyRate-0.125) > 1e-9 {
		t.Fatalf("summary = %+v", sum)
	}

	var days []dayCountJSON
	e.do("GET", "/api/v1/campaigns/"+c.ID.String()+"/daily-stats?days=7", key, nil).want(200).json(&days)
	today := time.Now().UTC().Format(time.DateOnly)
	if len(days) != 7 || days[6].Day != today || days[6].Count != 8 || days[0].Count != 0 {
		t.Fatalf("daily stats = %+v (today %s)", days, today)
	}
	e.do("GET", "/api/v1/campaigns/"+c.ID.String()+"/daily-stats", key, nil).want(200).json(&days)
	if len(days) != 30 {
		t.Fatalf("default daily stats has %d days, want 30", len(days))
	}

	var st statisticsJSON
	e.do("GET", "/api/v1/me/statistics", key, nil).want(200).json(&st)
	if st != (statisticsJSON{Campaigns: 1, Emails: 8, Opened: 1, Replied: 1}) {
		t.Fatalf("statistics = %+v", st)
	}

	e.do("DELETE", "/api/v1/campaigns/"+c.ID.String(), key, nil).want(204)
	e.do("GET", "/api/v1/campaigns/"+c.ID.String(), key, nil).want(404).problem()
	e.do("GET", "/api/v1/emails/"+id, key, nil).want(404).problem()
}

func TestDailyStatsCountsPastDaysInTheirPartitions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u, key := e.user()
	c := e.campaign(key, 0)
	now := time.Now().UTC()
	// Emails 0, 1 and 40 days ago: the last falls outside a 30-day window
	// and, most months, in another partition.
	var rows []db.InsertEmailsParams
	for _, ago := range []int{0, 1, 1, 40} {
		rows = append(rows, db.EmailRows(c.ID, []db.NewEmail{{Recipient: "a@b.co", Subject: "s", Body: "b"}}, now.AddDate(0, 0, -ago))...)
	}
	if _, err := e.store.InsertEmails(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	_ = u
	var days []dayCountJSON
	e.do("GET", "/api/v1/campaigns/"+c.ID.String()+"/daily-stats?days=30", key, nil).want(200).json(&days)
	var total int64
	for _, d := range days {
		total += d.Count
	}
	if total != 3 || days[29].Count != 1 || days[28].Count != 2 {
		t.Fatalf("daily stats = %+v", days)
	}
	e.do("GET", "/api/v1/campaigns/"+c.ID.String()+"/daily-stats?days=366", key, nil).want(200).json(&days)
	if len(days) != 366 || days[365-40].Count != 1 {
		t.Fatalf("366 days: %d entries, 40 days ago %+v", len(days), days[365-40])
	}
}

func TestAdminRoutes(t *testing.T) {
	t.Parallel()
	forEachStore(t, testAdminRoutes)
}

func testAdminRoutes(t *testing.T, opts ...envOpt) {
	e := newEnv(t, opts...)
	var created createdUserJSON
	e.do("POST", "/api/v1/users", testAdminKey, map[string]string{"email": "Ada@Example.com", "name": "Ada"}).want(201).json(&created)
	if created.User.Email != "Ada@Example.com" || len(created.APIKey.Key) < 40 || created.APIKey.Prefix != created.APIKey.Key[:len(created.APIKey.Prefix)] {
		t.Fatalf("created = %+v", created)
	}
	key1 := created.APIKey.Key
	e.do("GET", "/api/v1/me", key1, nil).want(200)

	// The same address in another case is the same user.
	p := e.do("POST", "/api/v1/users", testAdminKey, map[string]string{"email": "ada@example.COM", "name": "Ada 2"}).want(409).problem()
	if p.Detail == "" {
		t.Fatal("conflict without detail")
	}

	var k2 apiKeyJSON
	e.do("POST", "/api/v1/users/"+created.User.ID.String()+"/keys", testAdminKey, map[string]string{"name": "ci"}).want(201).json(&k2)
	if k2.Name != "ci" || k2.UserID != created.User.ID || k2.Key == key1 {
		t.Fatalf("second key = %+v", k2)
	}
	var k3 apiKeyJSON
	e.do("POST", "/api/v1/users/"+created.User.ID.String()+"/keys", testAdminKey, nil).want(201).json(&k3)
	if k3.Name != "default" {
		t.Fatalf("unnamed key = %+v", k3)
	}
	e.do("POST", "/api/v1/users/"+uuid.NewString()+"/keys", testAdminKey, nil).want(404).problem()

	e.do("GET", "/api/v1/me", k2.Key, nil).want(200) // a cache now holds the key
	e.do("DELETE", "/api/v1/keys/"+k2.ID.String(), testAdminKey, nil).want(204)
	e.do("DELETE", "/api/v1/keys/"+k2.ID.String(), testAdminKey, nil).want(204) // idempotent
	e.do("DELETE", "/api/v1/keys/"+uuid.NewString(), testAdminKey, nil).want(404).problem()
	e.do("GET", "/api/v1/me", k2.Key, nil).want(401).problem()
	e.do("GET", "/api/v1/me", key1, nil).want(200)

	// Only the hash is stored.
	var n int
	if err := e.pool.QueryRow(context.Background(), "SELECT count(*) FROM api_keys WHERE key_hash = sha256(convert_to($1, 'UTF8'))", key1).Scan(&n); err != nil || n != 1 {
		t.Fatalf("stored hash of key: %d rows, %v", n, err)
	}
	var leaked int
	if err := e.pool.QueryRow(context.Background(), "SELECT count(*) FROM api_keys WHERE prefix = $1 OR name = $1", key1).Scan(&leaked); err != nil || leaked != 0 {
		t.Fatalf("a plain key is stored: %d rows, %v", leaked, err)
	}
}

func TestHealthDocsAndMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var h healthJSON
	e.do("GET", "/health/db", "", nil).want(200).json(&h)
	if h.Status != "ok" || h.Pool.MaxConns == 0 {
		t.Fatalf("health = %+v", h)
	}
	_, key := e.user()
	e.do("GET", "/api/v1/me", key, nil).want(200)
	m := e.do("GET", "/metrics", "", nil).want(200).Body.String()
	for _, want := range []string{
		`replyrocket_http_requests_total{method="GET",route="/api/v1/me",status="200"} 1`,
		`replyrocket_http_request_duration_seconds_bucket{method="GET",route="/api/v1/me",status="200",le="+Inf"} 1`,
		"replyrocket_db_pool_max_conns",
		"replyrocket_db_pool_acquired_conns",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	doc := e.do("GET", "/docs", "", nil).want(200)
	if !strings.Contains(doc.Body.String(), "/api/v1/campaigns/{id}/daily-stats") || strings.Contains(doc.Body.String(), "<script src") {
		t.Fatal("docs page does not list the routes or pulls in a script")
	}
	e.do("GET", "/openapi.json", "", nil).want(200)
}

func TestHealthWhenDatabaseIsDown(t *testing.T) {
	t.Parallel()
	pool := deadPool(t)
	e := &env{t: t, e: New(Deps{Store: db.NewStore(pool, time.Second), Pool: pool}), pool: pool}
	start := time.Now()
	var h healthJSON
	r := e.do("GET", "/health/db", "", nil).want(http.StatusServiceUnavailable)
	r.json(&h)
	if h.Status != "unavailable" || h.Pool.MaxConns == 0 || r.Header().Get("Retry-After") == "" {
		t.Fatalf("health = %+v", h)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("health took %s; its timeout is 1s", d)
	}
}

func TestRequestIDAndCompression(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cases := []struct{ sent, want string }{
		{"trace-42.a:b_c", "trace-42.a:b_c"},
		{"has spaces\r\nInjected: yes", ""},
		{strings.Repeat("x", 65), ""},
	}
	for _, tc := range cases {
		req := newRequest("GET", "/openapi.json", "", nil, "")
		req.Header.Set("X-Request-ID", tc.sent)
		got := e.serve(req).want(200).Header().Get("X-Request-ID")
		if (tc.want != "" && got != tc.want) || (tc.want == "" && (got == tc.sent || len(got) != 36)) {
			t.Errorf("sent %q, got X-Request-ID %q", tc.sent, got)
		}
	}
	req := newRequest("GET", "/openapi.json", "", nil, "")
	req.Header.Set("Accept-Encoding", "gzip")
	if r := e.serve(req).want(200); r.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("openapi.json not compressed: %v", r.Header())
	}
}

// TestMetricsCompressOnce: /metrics read with gzip decodes to the text
// format (compressed once, not by both promhttp and the router).
func TestMetricsCompressOnce(t *testing.T) {
	t.Parallel()
	// With the Go collector, as the binary has, the text is large enough
	// for the router to compress it.
	e := newEnv(t, func(d *Deps) {
		d.Registry = prometheus.NewRegistry()
		d.Registry.MustRegister(collectors.NewGoCollector())
	})
	req := newRequest("GET", "/metrics", "", nil, "")
	req.Header.Set("Accept-Encoding", "gzip")
	r := e.serve(req).want(200)
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	text, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), "# TYPE replyrocket_db_pool_max_conns gauge") {
		t.Fatalf("not the text format after one gunzip: %.200q", text)
	}
}
