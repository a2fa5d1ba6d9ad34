package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/replyrocket/replyrocket/internal/config"
	"github.com/replyrocket/replyrocket/internal/logbuf"
)

// TestAccessLogFields: one line per request, with every field the access
// log promises, in its order, and the error of a failed request; through
// slog's record (any handler) and through the line the access log encodes
// itself (the served JSON log).
func TestAccessLogFields(t *testing.T) {
	if _, ok := servedLog(t, io.Discard).Handler().(jsonLineWriter); !ok {
		t.Fatal("the served JSON log does not take the access log's own lines")
	}
	for _, logger := range []struct {
		name string
		opt  envOpt
	}{
		{"served JSON log", func(*Deps) {}},
		// The same handler with only slog.Handler's methods.
		{"slog record", func(d *Deps) { d.Log = slog.New(struct{ slog.Handler }{d.Log.Handler()}) }},
	} {
		t.Run(logger.name, func(t *testing.T) { testAccessLogFields(t, newEnv(t, logger.opt)) })
	}
}

func testAccessLogFields(t *testing.T, e *env) {
	_, key := e.user()
	c := e.campaign(key, 0)
	cases := []struct {
		name, path, key, route string
		status                 int
		withError              bool
	}{
		{name: "ok", path: "/api/v1/campaigns/" + c.ID.String(), key: key, route: "/api/v1/campaigns/:id", status: 200},
		{name: "unauthorized", path: "/api/v1/campaigns/" + c.ID.String(), route: "/api/v1/campaigns/:id", status: 401, withError: true},
		{name: "unmatched", path: "/nowhere", key: key, route: "(unmatched)", status: 404, withError: true},
	}
	order := []string{"time", "level", "msg", "request_id", "method", "path", "route", "status", "bytes", "latency_us", "ip"}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.logs.String())
			r := e.do("GET", tc.path, tc.key, nil).want(tc.status)
			var line string
			for _, l := range strings.Split(e.logs.String()[before:], "\n") {
				if strings.Contains(l, `"msg":"request"`) {
					line = l
				}
			}
			if line == "" {
				t.Fatalf("no access-log line in %q", e.logs.String()[before:])
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(line), &got); err != nil {
				t.Fatalf("%v: %s", err, line)
			}
			want := map[string]any{
				"level": "INFO", "msg": "request", "method": "GET", "path": tc.path, "route": tc.route,
				"status": float64(tc.status), "request_id": r.Header().Get("X-Request-ID"),
				"bytes": float64(len(r.Body.Bytes())),
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v in %s", k, got[k], v, line)
				}
			}
			if _, ok := got["error"]; ok != tc.withError {
				t.Errorf("error field present %v, want %v in %s", ok, tc.withError, line)
			}
			// The fields in the order the log has always written them.
			at := -1
			for _, k := range order {
				i := strings.Index(line, `"`+k+`":`)
				if i <= at {
					t.Fatalf("field %q missing or out of order in %s", k, line)
				}
				at = i
			}
		})
	}
}

// slogLine is the line slog's JSON handler writes for a's record.
func slogLine(t testing.TB, a *accessEntry) string {
	var b bytes.Buffer
	if err := slog.NewJSONHandler(&b, nil).Handle(context.Background(), a.record()); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestAccessLineMatchesSlog: the line the access log encodes itself is
// slog's JSON handler's, byte for byte, whatever the strings hold.
func TestAccessLineMatchesSlog(t *testing.T) {
	at := time.Date(2026, 12, 5, 12, 0, 52, 197425931, time.UTC)
	base := accessEntry{
		time: at, level: slog.LevelInfo, requestID: "fb1a7ed4-c03c-4525-8053-d2f74038853d", method: "GET",
		path: "/api/v1/campaigns/d6ad2cf2", route: "/api/v1/campaigns/:id", status: 200, bytes: 177, latencyUS: 191, ip: "127.0.0.1",
	}
	cases := []struct {
		name string
		edit func(*accessEntry)
	}{
		{"plain", func(*accessEntry) {}},
		{"error at level error", func(a *accessEntry) {
			a.level, a.status, a.err = slog.LevelError, 503, "database unavailable: \"dial\"\n"
		}},
		{"whole second", func(a *accessEntry) { a.time = at.Truncate(time.Second) }},
		{"another zone", func(a *accessEntry) { a.time = at.In(time.FixedZone("x", -7*3600-1800)) }},
		{"escapes", func(a *accessEntry) { a.path = "/a\"b\\c\x00\x1f\x7f\t\r\n<>&" }},
		{"unicode", func(a *accessEntry) { a.path = "/é/日本/\u2028\u2029/😀" }},
		{"invalid utf-8", func(a *accessEntry) { a.path = "/\xff\xfe/\xe2\x80/x\xc3" }},
		{"negative and large", func(a *accessEntry) { a.bytes, a.latencyUS, a.status = -1, 1<<62, 999 }},
		{"empty strings", func(a *accessEntry) { a.requestID, a.ip, a.method = "", "", "" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := base
			tc.edit(&a)
			if got, want := string(a.appendJSON(nil)), slogLine(t, &a); got != want {
				t.Errorf("line\n got %s\nwant %s", got, want)
			}
		})
	}
}

// FuzzAccessLine holds the access log's own encoding to slog's JSON
// handler for any strings a request can bring (`task fuzz` runs it).
func FuzzAccessLine(f *testing.F) {
	f.Add("/api/v1/campaigns/x", "GET", "127.0.0.1", "", int64(1733400000123456789), 200)
	f.Add("/\xff\u2028\"\\\x01", "PO\nST", "::1", "boom", int64(0), 500)
	f.Fuzz(func(t *testing.T, path, method, ip, errText string, nanos int64, status int) {
		a := accessEntry{
			time: time.Unix(0, nanos).UTC(), level: slog.LevelInfo, requestID: method + ip, method: method,
			path: path, route: path, status: status, bytes: nanos, latencyUS: -nanos, ip: ip, err: errText,
		}
		if status >= 500 {
			a.level = slog.LevelError
		}
		if got, want := string(a.appendJSON(nil)), slogLine(t, &a); got != want {
			t.Fatalf("line\n got %q\nwant %q", got, want)
		}
	})
}

// TestServedLogTakesSlogsLine: the production log (config.Config.Logger's
// JSON through logbuf.ServerLogger) takes the access log's own lines, and
// writes them as its handler writes the record: an option added to that
// handler (ReplaceAttr, attributes) would break the encoding
// the access log does itself, and fails here.
func TestServedLogTakesSlogsLine(t *testing.T) {
	a := accessEntry{
		time: time.Date(2026, 12, 5, 12, 0, 52, 197425931, time.UTC), level: slog.LevelError, requestID: "r-1", method: "GET",
		path: "/a\"\u2028", route: "/a", status: 503, bytes: 10, latencyUS: 7, ip: "::1", err: "unavailable",
	}
	write := func(viaLine bool) string {
		var b bytes.Buffer
		log, closeLog := logbuf.ServerLogger(&b, config.Config{Env: "prod"}.Logger)
		h := log.Handler()
		lines, ok := h.(jsonLineWriter)
		if !ok {
			t.Fatal("the production log does not take the access log's own lines")
		}
		if viaLine {
			_ = lines.WriteJSONLine(a.level, a.appendJSON(nil))
		} else {
			_ = h.Handle(context.Background(), a.record())
		}
		closeLog()
		return b.String()
	}
	if got, want := write(true), write(false); got != want {
		t.Errorf("line\n got %s\nwant %s", got, want)
	}
}

// TestAppendLogTime: the access log's time is RFC3339Nano as AppendFormat
// writes it, whichever second and location the line before was in.
func TestAppendLogTime(t *testing.T) {
	at := time.Date(2026, 12, 5, 12, 0, 52, 197425931, time.UTC)
	east, odd := time.FixedZone("east", 5*3600+1800), time.FixedZone("odd", -(3600+17))
	times := []time.Time{
		at, at, at.Add(time.Nanosecond), at.Truncate(time.Second), at.Add(time.Second),
		at.In(east), at, at.In(odd), at.In(odd).Add(-at.Sub(at.Truncate(time.Second)) + 120*time.Millisecond),
		time.Unix(0, 0).UTC(), time.Unix(-1, 999_999_999).UTC(), time.Unix(0, -1).In(east),
		time.Date(12345, 1, 2, 3, 4, 5, 600, time.UTC), time.Date(-3, 1, 1, 0, 0, 0, 10, time.UTC),
		time.Now(), time.Now().Round(0),
	}
	for i, tm := range times {
		if got, want := string(appendLogTime([]byte("x"), tm)), "x"+tm.Format(time.RFC3339Nano); got != want {
			t.Errorf("time %d (%v): got %s, want %s", i, tm, got, want)
		}
	}
}
