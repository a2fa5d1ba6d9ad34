package handlers

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
)

// TestCompress: a client that accepts gzip gets large bodies compressed and
// small ones (almost every API response), problems and panics as plain,
// intact documents.
func TestCompress(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(d *Deps) { d.Store = panicStore{d.Store} })
	_, key := e.user()
	c := e.campaign(key, 1)
	cases := []struct {
		name    string
		path    string
		status  int
		gzipped bool
		want    string // a field or text the decoded body holds
	}{
		{"small JSON", "/api/v1/campaigns/" + c.ID.String(), 200, false, `"name":"Launch"`},
		{"large document", "/openapi.json", 200, true, `"openapi"`},
		{"problem", "/api/v1/campaigns/00000000-0000-0000-0000-000000000000", 404, false, `"status":404`},
		{"panic", "/api/v1/me", 500, false, `"status":500`},
	}
	// Without Accept-Encoding nothing is compressed, and Vary is there all
	// the same (the middleware skips gzhttp then, and adds it itself).
	for _, accept := range []string{"gzip", ""} {
		for _, tc := range cases {
			tc.gzipped = tc.gzipped && accept != ""
			t.Run(tc.name+", Accept-Encoding "+accept, func(t *testing.T) {
				compressedResponse(t, e, key, accept, tc.path, tc.status, tc.gzipped, tc.want)
			})
		}
	}
}

// compressedResponse GETs path with Accept-Encoding accept (none when
// empty) and checks the status, the encoding, the decoded body and Vary.
func compressedResponse(t *testing.T, e *env, key, accept, path string, status int, gzipped bool, want string) {
	t.Helper()
	req := newRequest("GET", path, key, nil, "")
	if accept != "" {
		req.Header.Set("Accept-Encoding", accept)
	}
	r := e.serve(req).want(status)
	if got := r.Header().Get("Content-Encoding") == "gzip"; got != gzipped {
		t.Fatalf("gzipped = %v, want %v (headers %v)", got, gzipped, r.Header())
	}
	var body io.Reader = r.Body
	if gzipped {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(b) || !strings.Contains(string(b), want) {
		t.Fatalf("body %.300q does not hold %s", b, want)
	}
	if !strings.Contains(r.Header().Get("Vary"), "Accept-Encoding") {
		t.Fatalf("no Vary: Accept-Encoding: %v", r.Header())
	}
}

// TestPprof: the profiles are off by default, and behind the admin key when
// on.
func TestPprof(t *testing.T) {
	t.Parallel()
	off := newEnv(t)
	off.noSpec = true
	off.serve(newRequest("GET", "/debug/pprof/heap", testAdminKey, nil, "")).want(http.StatusNotFound)

	on := newEnv(t, func(d *Deps) { d.Pprof = true })
	on.noSpec = true
	_, userKey := on.user()
	for _, tc := range []struct {
		path, key string
		status    int
	}{
		{"/debug/pprof/heap", "", http.StatusUnauthorized},
		{"/debug/pprof/heap", userKey, http.StatusUnauthorized},
		{"/debug/pprof/", testAdminKey, http.StatusOK},
		{"/debug/pprof/heap?debug=1", testAdminKey, http.StatusOK},
		{"/debug/pprof/cmdline", testAdminKey, http.StatusOK},
		{"/debug/pprof/block?seconds=1", testAdminKey, http.StatusOK},
		{"/debug/pprof/nosuch", testAdminKey, http.StatusNotFound},
	} {
		on.serve(newRequest("GET", tc.path, tc.key, nil, "")).want(tc.status)
	}
	// Contention sampling is on only while a block or mutex profile runs.
	if r := runtime.SetMutexProfileFraction(-1); r != 0 {
		t.Fatalf("mutex profile fraction %d after the profile ended, want 0", r)
	}
}
