package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/internal/dbfixture"
	"github.com/replyrocket/replyrocket/internal/logbuf"
	"github.com/replyrocket/replyrocket/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const testAdminKey = "test-admin-key-0123456789"

// env is a router on a fresh database, as the binary wires it minus the
// cache (whose package tests it through this same router).
type env struct {
	t     testing.TB
	e     *echo.Echo
	pool  *pgxpool.Pool
	store db.Store
	logs  *lockedWriter
	// noSpec skips checking each exchange against the OpenAPI document
	// (the fuzz targets, for speed).
	noSpec bool
}

type envOpt func(*Deps)

func newEnv(t testing.TB, opts ...envOpt) *env {
	t.Helper()
	pool := pgtest.NewPool(t)
	store := db.NewStore(pool, 2*time.Second)
	if _, err := store.EnsureEmailPartitions(context.Background(), db.EnsureEmailPartitionsParams{FromMonth: time.Now().AddDate(0, -13, 0), Months: 15}); err != nil {
		t.Fatalf("ensure partitions: %v", err)
	}
	logs := &lockedWriter{w: &bytes.Buffer{}}
	d := Deps{
		Store: store, Pool: pool, AdminKey: testAdminKey, RequestTimeout: 5 * time.Second,
		Log: servedLog(t, logs),
	}
	for _, o := range opts {
		o(&d)
	}
	return &env{t: t, e: New(d), pool: pool, store: d.Store, logs: logs}
}

// servedLog logs as a served process does (JSON through internal/logbuf,
// so the access log encodes its own lines), every line written at once for
// the tests to read.
func servedLog(t testing.TB, w io.Writer) *slog.Logger {
	lw := logbuf.New(w, 64<<10, time.Hour)
	t.Cleanup(func() { _ = lw.Close() })
	return slog.New(logbuf.FlushAt(slog.NewJSONHandler(lw, nil), lw, slog.LevelDebug))
}

// lockedWriter lets parallel requests log into one buffer under -race.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

type resp struct {
	*httptest.ResponseRecorder
	t testing.TB
}

func (r resp) json(v any) {
	r.t.Helper()
	if err := json.Unmarshal(r.Body.Bytes(), v); err != nil {
		r.t.Fatalf("decode %q: %v", r.Body.String(), err)
	}
}

func (r resp) problem() Problem {
	r.t.Helper()
	if ct := r.Header().Get(echo.HeaderContentType); ct != ProblemContentType {
		r.t.Fatalf("content type %q, want %s; body %s", ct, ProblemContentType, r.Body)
	}
	var p Problem
	r.json(&p)
	if p.Status != r.Code || p.Type == "" || p.Title == "" || p.RequestID == "" {
		r.t.Fatalf("incomplete problem %+v for status %d", p, r.Code)
	}
	return p
}

func (r resp) want(code int) resp {
	r.t.Helper()
	if r.Code != code {
		r.t.Fatalf("status %d, want %d; body %s", r.Code, code, r.Body)
	}
	return r
}

func newRequest(method, path, key string, body any, contentType string) *http.Request {
	var rd io.Reader
	if s, ok := body.(string); ok {
		rd = strings.NewReader(s)
	}
	req := httptest.NewRequest(method, path, rd)
	if contentType != "" {
		req.Header.Set(echo.HeaderContentType, contentType)
	}
	if key != "" {
		req.Header.Set(echo.HeaderAuthorization, "Bearer "+key)
	}
	return req
}

// serve runs req through the router and checks what every response owes.
func (e *env) serve(req *http.Request) resp {
	e.t.Helper()
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			e.t.Fatal(err)
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	rec := httptest.NewRecorder()
	e.e.ServeHTTP(rec, req)
	if !e.noSpec && rec.Code != http.StatusMethodNotAllowed && !(rec.Code == http.StatusNotFound && strings.Contains(rec.Body.String(), "No route")) {
		checkAgainstSpec(e.t, req, body, rec)
	}
	if rec.Header().Get(echo.HeaderXRequestID) == "" {
		e.t.Fatalf("%s %s: no X-Request-ID", req.Method, req.URL)
	}
	if rec.Code >= 500 && strings.Contains(rec.Body.String(), "goroutine") {
		e.t.Fatalf("%s %s: stack trace in the response", req.Method, req.URL)
	}
	return resp{ResponseRecorder: rec, t: e.t}
}

// do sends a request through the router. body may be nil, a string (sent
// as is) or anything else (sent as JSON).
func (e *env) do(method, path, key string, body any) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, rd)
	if rd != nil {
		req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	}
	if key != "" {
		req.Header.Set(echo.HeaderAuthorization, "Bearer "+key)
	}
	return e.serve(req)
}

// user makes a user and returns it with its API key.
func (e *env) user() (db.User, string) {
	e.t.Helper()
	return dbfixture.UserWithKey(e.t, e.store, db.CreateUserParams{Name: "Tester"})
}

func (e *env) campaign(key string, emails int) campaignJSON {
	e.t.Helper()
	in := map[string]any{"name": "Launch", "status": "active", "emails": sampleEmails(emails)}
	var c campaignJSON
	e.do("POST", "/api/v1/campaigns", key, in).want(201).json(&c)
	return c
}

func sampleEmails(n int) []newEmailInput {
	out := make([]newEmailInput, n)
	for i := range out {
		out[i] = newEmailInput{Recipient: "lead" + strconv.Itoa(i) + "@example.com", Subject: "Hello <there> & welcome", Body: "Hi!"}
	}
	return out
}
