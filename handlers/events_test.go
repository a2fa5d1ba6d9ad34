package handlers

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/replyrocket/replyrocket/internal/ratelimit"
)

// TestBulkEventsResults posts events request by request and checks every
// event's result and the answers to invalid requests.
func TestBulkEventsResults(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, key := e.user()
	_, otherKey := e.user()
	c := e.campaign(key, 3)
	theirs := e.campaign(otherKey, 1)
	var emails, their page[emailJSON]
	e.do("GET", "/api/v1/campaigns/"+c.ID.String()+"/emails", key, nil).want(200).json(&emails)
	e.do("GET", "/api/v1/campaigns/"+theirs.ID.String()+"/emails", otherKey, nil).want(200).json(&their)
	mine, other := emails.Items, their.Items[0].ID

	ids := map[string]string{}
	id := func(name string) string {
		if ids[name] == "" {
			ids[name] = uuid.NewString()
		}
		return ids[name]
	}
	ev := func(name string, email uuid.UUID, kind string, min int) map[string]any {
		return map[string]any{"id": id(name), "email_id": email.String(), "kind": kind,
			"at": time.Date(2026, 12, 1, 9, min, 0, 0, time.UTC).Format(time.RFC3339)}
	}
	type want struct{ result, status string }
	for _, step := range []struct {
		name   string
		events []map[string]any
		want   []want
	}{
		{"open before sent, then sent", []map[string]any{ev("o", mine[0].ID, "opened", 5), ev("s", mine[0].ID, "sent", 1)},
			[]want{{"applied", "sent"}, {"applied", "sent"}}},
		{"retries are duplicates", []map[string]any{ev("o", mine[0].ID, "opened", 5), ev("s", mine[0].ID, "sent", 1)},
			[]want{{"duplicate", ""}, {"duplicate", ""}}},
		{"unknown email, another tenant's email", []map[string]any{ev("u", uuid.New(), "opened", 1), ev("t", other, "replied", 1)},
			[]want{{"not_found", ""}, {"not_found", ""}}},
		{"bounce, then a contradicting failure", []map[string]any{ev("b", mine[1].ID, "bounced", 3), ev("f", mine[1].ID, "failed", 4)},
			[]want{{"applied", "bounced"}, {"refused", "bounced"}}},
	} {
		var out eventResultsJSON
		e.do("POST", "/api/v1/events", key, map[string]any{"events": step.events}).want(200).json(&out)
		if len(out.Results) != len(step.want) {
			t.Fatalf("%s: %d results for %d events", step.name, len(out.Results), len(step.want))
		}
		for i, w := range step.want {
			if r := out.Results[i]; r.Result != w.result || r.Status != w.status || r.ID.String() != step.events[i]["id"] {
				t.Errorf("%s: event %d: %+v, want %+v", step.name, i, r, w)
			}
		}
	}
	var got emailJSON
	e.do("GET", "/api/v1/emails/"+mine[0].ID.String(), key, nil).want(200).json(&got)
	if got.Status != "sent" || got.OpenedAt == nil || got.OpenedAt.Minute() != 5 || got.SentAt == nil || got.SentAt.Minute() != 1 {
		t.Errorf("email after its events: %+v", got)
	}
	var sum summaryJSON
	e.do("GET", "/api/v1/campaigns/"+c.ID.String()+"/summary", key, nil).want(200).json(&sum)
	if sum.Sent != 2 || sum.Bounced != 1 || sum.BounceRate != 0.5 || sum.Opened != 1 {
		t.Errorf("summary %+v", sum)
	}

	tooMany := make([]map[string]any, MaxBulkEvents+1)
	for i := range tooMany {
		tooMany[i] = ev("", mine[0].ID, "opened", 1)
		tooMany[i]["id"] = uuid.NewString()
	}
	for _, bad := range []struct {
		name  string
		body  any
		field string
	}{
		{"no events", map[string]any{"events": []any{}}, "events"},
		{"over 1 000", map[string]any{"events": tooMany}, "events"},
		{"bad id", map[string]any{"events": []any{map[string]any{"id": "x", "email_id": mine[0].ID, "kind": "opened", "at": "2026-12-01T00:00:00Z"}}}, "events[0].id"},
		{"bad kind", map[string]any{"events": []any{ev("k", mine[0].ID, "clicked", 1)}}, "events[0].kind"},
		{"bad time", map[string]any{"events": []any{map[string]any{"id": uuid.NewString(), "email_id": mine[0].ID, "kind": "opened", "at": "yesterday"}}}, "events[0].at"},
		{"reason too long", map[string]any{"events": []any{map[string]any{"id": uuid.NewString(), "email_id": mine[0].ID, "kind": "bounced", "at": "2026-12-01T00:00:00Z", "reason": strings.Repeat("x", 1001)}}}, "events[0].reason"},
	} {
		p := e.do("POST", "/api/v1/events", key, bad.body).want(400).problem()
		if len(p.Errors) == 0 || p.Errors[0].Field != bad.field {
			t.Errorf("%s: %+v, want an error on %s", bad.name, p.Errors, bad.field)
		}
	}
}

// The single-event routes answer 404 for another tenant's email, and a
// repeated open answers the unchanged email.
func TestSingleEventRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, key := e.user()
	_, otherKey := e.user()
	c := e.campaign(key, 1)
	var emails page[emailJSON]
	e.do("GET", "/api/v1/campaigns/"+c.ID.String()+"/emails", key, nil).want(200).json(&emails)
	id := emails.Items[0].ID.String()
	var first, again emailJSON
	e.do("POST", "/api/v1/emails/"+id+"/opened", key, nil).want(200).json(&first)
	e.do("POST", "/api/v1/emails/"+id+"/opened", key, nil).want(200).json(&again)
	if !first.IsOpened || first.OpenedAt == nil || again.OpenedAt == nil || !again.OpenedAt.Equal(*first.OpenedAt) {
		t.Fatalf("first open %+v, again %+v", first, again)
	}
	if p := e.do("POST", "/api/v1/emails/"+id+"/replied", otherKey, nil).want(404).problem(); p.Type == "" {
		t.Fatal("no problem type")
	}
	e.do("POST", "/api/v1/emails/"+uuid.NewString()+"/opened", key, nil).want(404)
}

// A bulk request is charged one unit per event, to the key's events
// budget.
func TestBulkEventsChargePerEvent(t *testing.T) {
	t.Parallel()
	lim, err := ratelimit.New(ratelimit.Config{}, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(d *Deps) {
		d.RateLimiter = lim
		d.KeyRateLimit = ratelimit.Limit{PerMinute: 30, Burst: 10}
	})
	_, key := e.user()
	c := e.campaign(key, 1)
	var emails page[emailJSON]
	e.do("GET", "/api/v1/campaigns/"+c.ID.String()+"/emails", key, nil).want(200).json(&emails)
	batch := func(n int) map[string]any {
		out := make([]map[string]any, n)
		for i := range out {
			out[i] = map[string]any{"id": uuid.NewString(), "email_id": emails.Items[0].ID, "kind": "opened", "at": "2026-12-01T00:00:00Z"}
		}
		return map[string]any{"events": out}
	}
	// 30 events per minute, so at most 30 per request.
	e.do("POST", "/api/v1/events", key, batch(31)).want(400)
	e.do("POST", "/api/v1/events", key, batch(25)).want(200)
	e.do("POST", "/api/v1/events", key, batch(6)).want(429)
}
